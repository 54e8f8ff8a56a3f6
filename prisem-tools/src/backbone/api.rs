//! The HTTP API (axum): clients, tokens, send, notify, receive. Every failure is a JSON body
//! `{"error": …, "detail": …}` with its status.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amqp_client::options::GetOptions;
use amqp_client::{BasicProperties, Channel, ShortStr};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Query, State};
use axum::http::{header, request::Parts, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Digest as _;
use subtle::ConstantTimeEq as _;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::bus::{self, Bus};
use super::store::{ClientRecord, Store, StoreError};
use super::stream::{self as ws_stream, Session, DEFAULT_PREFETCH, MAX_CLIENT_FRAME, MAX_PREFETCH};
use super::token::{Claims, Signer, TokenError};
use crate::daemon::Shutdown;

/// The largest request body accepted.
pub const MAX_BODY: usize = 1 << 20;
/// The most messages one `/receive` returns.
pub const MAX_RECEIVE: usize = 100;
/// Token requests allowed per client id per minute.
pub const TOKEN_RATE: u32 = 30;

/// An API failure: status, short error and detail.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    error: &'static str,
    detail: String,
}

impl ApiError {
    fn new(status: StatusCode, error: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            error,
            detail: detail.into(),
        }
    }
    fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad request", detail)
    }
    fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }
    fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }
    fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not found", detail)
    }
    fn unavailable(e: &amqp_client::Error) -> Self {
        tracing::warn!("broker: {e}");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "broker unavailable",
            "the message broker cannot be reached; try again later",
        )
    }
    fn internal(what: &str, e: impl std::fmt::Display) -> Self {
        tracing::error!("{what}: {e}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error",
            format!("{what} failed"),
        )
    }
}

/// The body of every failure.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A short name of the failure, e.g. `unauthorized`.
    pub error: String,
    /// What was wrong, in a sentence.
    pub detail: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            axum::Json(ErrorBody {
                error: self.error.to_owned(),
                detail: self.detail,
            }),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        r
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Duplicate => Self::new(
                StatusCode::CONFLICT,
                "conflict",
                "a client with this id already exists",
            ),
            StoreError::NotFound => Self::not_found("no such client"),
            other => Self::internal("client database", other),
        }
    }
}

/// A JSON body whose rejections are [`ApiError`]s (400 for bad JSON, 413 over the limit, 415).
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;
    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(rej) => Err(json_rejection(rej)),
        }
    }
}

fn json_rejection(rej: JsonRejection) -> ApiError {
    // Well-formed JSON of the wrong shape is a 400 like any other bad body, not axum's 422.
    let status = match rej.status() {
        StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
        s => s,
    };
    let error = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "payload too large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported media type",
        _ => "bad request",
    };
    let detail = match status {
        StatusCode::PAYLOAD_TOO_LARGE => format!("the body is over {MAX_BODY} bytes"),
        _ => rej.body_text(),
    };
    ApiError::new(status, error, detail)
}

/// Query parameters whose rejections are [`ApiError`]s.
#[derive(Debug)]
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(Self(v)),
            Err(rej) => Err(ApiError::bad_request(query_detail(&rej))),
        }
    }
}

/// A path parameter whose rejections are [`ApiError`]s (400, e.g. for invalid UTF-8).
#[derive(Debug)]
pub struct PathParam<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> FromRequestParts<S> for PathParam<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(Self(v)),
            Err(rej) => Err(ApiError::bad_request(rej.body_text())),
        }
    }
}

fn query_detail(rej: &QueryRejection) -> String {
    rej.body_text()
}

/// Settings of the API.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Token lifetime.
    pub token_lifetime: Duration,
    /// The admin token (compared in constant time via its argon2 hash).
    pub admin_token_hash: String,
}

#[derive(Debug)]
struct RateLimiter {
    window: Duration,
    limit: u32,
    seen: HashMap<String, (Instant, u32)>,
}

impl RateLimiter {
    fn allow(&mut self, key: &str) -> bool {
        let now = Instant::now();
        if self.seen.len() > 10_000 {
            let window = self.window;
            self.seen
                .retain(|_, (t, _)| now.duration_since(*t) < window);
            // Still full within one window: a flood of ids. Stay bounded; known ids go on.
            if self.seen.len() > 10_000 && !self.seen.contains_key(key) {
                return false;
            }
        }
        let e = self.seen.entry(key.to_owned()).or_insert((now, 0));
        if now.duration_since(e.0) >= self.window {
            *e = (now, 0);
        }
        e.1 += 1;
        e.1 <= self.limit
    }
}

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    store: Store,
    signer: Signer,
    bus: Bus,
    publisher: Arc<tokio::sync::Mutex<Option<Channel>>>,
    config: Arc<ApiConfig>,
    limiter: Arc<Mutex<RateLimiter>>,
    closing: Shutdown,
    /// SHA-256 of the admin token once it verified against its argon2 hash, so later admin
    /// calls cost a hash rather than an argon2 verification.
    admin_seen: Arc<Mutex<Option<[u8; 32]>>>,
}

impl AppState {
    /// The state of an API over `store`, signing with `signer`, publishing through `bus`.
    pub fn new(store: Store, signer: Signer, bus: Bus, config: ApiConfig) -> Self {
        Self {
            store,
            signer,
            bus,
            publisher: Arc::new(tokio::sync::Mutex::new(None)),
            config: Arc::new(config),
            limiter: Arc::new(Mutex::new(RateLimiter {
                window: Duration::from_secs(60),
                limit: TOKEN_RATE,
                seen: HashMap::new(),
            })),
            closing: Shutdown::new(),
            admin_seen: Arc::new(Mutex::new(None)),
        }
    }

    /// Ends every open `/stream` socket (close code 1001); the server calls it on shutdown.
    pub fn close_streams(&self) {
        self.closing.trigger();
    }

    /// A channel in confirm mode for publishing, opened again if it closed.
    async fn channel(&self) -> Result<Channel, ApiError> {
        let mut slot = self.publisher.lock().await;
        if let Some(ch) = slot.as_ref() {
            if ch.is_open() {
                return Ok(ch.clone());
            }
        }
        let conn = self.bus.connection();
        if !conn.is_open() {
            return Err(ApiError::unavailable(&amqp_client::Error::Recovering));
        }
        let ch = conn
            .create_channel()
            .await
            .map_err(|e| ApiError::unavailable(&e))?;
        ch.confirm_select()
            .await
            .map_err(|e| ApiError::unavailable(&e))?;
        *slot = Some(ch.clone());
        Ok(ch)
    }

    async fn reconcile(&self) -> Result<(), ApiError> {
        let clients = self.store.list()?;
        self.bus
            .reconcile(&clients)
            .await
            .map_err(|e| ApiError::unavailable(&e))
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "PRISEM Communications Backbone",
        description = "Send and receive messages through the bus without speaking AMQP. Every failure is a JSON body {error, detail} with its status."
    ),
    modifiers(&SecuritySchemes),
    components(schemas(ErrorBody))
)]
struct ApiDoc;

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A client token from GET /token"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "admin",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The admin token (BACKBONE_ADMIN_TOKEN, or the one printed on first run)",
                    ))
                    .build(),
            ),
        );
    }
}

/// Every route with its OpenAPI description; [`router`] and [`openapi`] both come from here.
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health))
        .routes(routes!(create_client, list_clients))
        .routes(routes!(get_client, update_client, delete_client))
        .routes(routes!(token))
        .routes(routes!(send))
        .routes(routes!(notify))
        .routes(routes!(receive))
        .routes(routes!(stream))
        .routes(routes!(openapi_json))
}

/// The OpenAPI 3 description of every route (served as `GET /openapi.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().into_openapi()
}

/// The router with every route, the body limit and the JSON fallback. More routes can be added
/// to the result (`.route(…)`, `.merge(…)`) before serving.
pub fn router(state: AppState) -> Router {
    let (router, _) = routes().split_for_parts();
    router
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed",
                "this endpoint does not take this method",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(crate::metrics::track_http))
        .with_state(state)
}

/// `{"status": …}` of `/health`.
#[derive(Debug, Serialize, ToSchema)]
struct Health {
    /// `ok`.
    status: String,
}

/// Whether the service can reach the broker.
#[utoipa::path(get, path = "/health", tag = "service",
    responses(
        (status = 200, description = "Up, the broker reachable", body = Health),
        (status = 503, description = "The broker is unreachable", body = ErrorBody),
    )
)]
async fn health(State(st): State<AppState>) -> Result<axum::Json<Health>, ApiError> {
    if st.bus.connection().is_open() {
        Ok(axum::Json(Health {
            status: "ok".to_owned(),
        }))
    } else {
        Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "broker unavailable",
            "the message broker cannot be reached",
        ))
    }
}

/// This description.
#[utoipa::path(get, path = "/openapi.json", tag = "service",
    responses((status = 200, description = "The OpenAPI 3 description of the API", body = Object))
)]
async fn openapi_json() -> Response {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let doc = DOC.get_or_init(|| openapi().to_json().unwrap_or_default());
    (
        [(header::CONTENT_TYPE, "application/json")],
        doc.as_str().to_owned(),
    )
        .into_response()
}

// ----- authentication -------------------------------------------------------------------------

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    bearer_header(&parts.headers)
}

fn bearer_header(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("an Authorization: Bearer token is required"))?;
    value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| ApiError::unauthorized("the Authorization header is not a Bearer token"))
}

/// A request from the administrator.
#[derive(Debug)]
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts)?.to_owned();
        let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let seen = st.admin_seen.lock().ok().and_then(|g| *g);
        if let Some(seen) = seen {
            if bool::from(seen.ct_eq(&digest)) {
                return Ok(Self);
            }
        }
        let store = st.store.clone();
        let hash = st.config.admin_token_hash.clone();
        let ok = tokio::task::spawn_blocking(move || store.verify_secret(&token, &hash))
            .await
            .unwrap_or(false);
        if ok {
            if let Ok(mut g) = st.admin_seen.lock() {
                *g = Some(digest);
            }
            Ok(Self)
        } else {
            Err(ApiError::forbidden("this call needs the admin token"))
        }
    }
}

/// A request from an authenticated client.
#[derive(Debug)]
pub struct Caller(pub ClientRecord);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        authenticate(st, bearer(parts)?).map(Self)
    }
}

/// The client a bearer token belongs to, if the token is good.
fn authenticate(st: &AppState, token: &str) -> Result<ClientRecord, ApiError> {
    let now = chrono::Utc::now().timestamp();
    let claims = st.signer.verify(token, now).map_err(|e| match e {
        TokenError::Expired => ApiError::unauthorized("the token has expired"),
        other => ApiError::unauthorized(other.to_string()),
    })?;
    match st.store.get(&claims.sub) {
        Ok(rec) if rec.created == claims.gen => Ok(rec),
        Ok(_) | Err(StoreError::NotFound) => Err(ApiError::unauthorized(
            "the token's client no longer exists",
        )),
        Err(e) => Err(e.into()),
    }
}

// ----- validation -----------------------------------------------------------------------------

fn check_id(id: &str) -> Result<(), ApiError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "client_id must be 1 to 64 characters of letters, digits, '-', '_' or '.'",
        ))
    }
}

fn check_words(what: &str, s: &str, wildcards: bool) -> Result<(), ApiError> {
    let ok = !s.is_empty()
        && s.len() <= 255
        && s.split('.').all(|w| {
            (wildcards && (w == "*" || w == "#"))
                || (!w.is_empty()
                    && w.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_')))
        });
    if ok {
        Ok(())
    } else if wildcards {
        Err(ApiError::bad_request(format!(
            "{what} must be dot-separated words of letters, digits, '-' or '_', or '*' or '#' (at most 255 characters)"
        )))
    } else {
        Err(ApiError::bad_request(format!(
            "{what} must be dot-separated words of letters, digits, '-' or '_' (at most 255 characters)"
        )))
    }
}

fn check_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "client_name must be 1 to 200 characters without control characters",
        ));
    }
    Ok(())
}

// ----- clients --------------------------------------------------------------------------------

/// A client to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewClient {
    /// 1 to 64 of `A-Z a-z 0-9 . _ -`; also the prefix of its queue names.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    client_id: String,
    /// 1 to 200 characters, no control characters.
    #[schema(min_length = 1, max_length = 200)]
    client_name: String,
    /// Dot-separated words; `*` matches one word, `#` zero or more.
    #[schema(
        pattern = "^([A-Za-z0-9_-]+|[*#])([.]([A-Za-z0-9_-]+|[*#]))*$",
        max_length = 255
    )]
    subscription: String,
}

/// A client just registered, with its secret (shown this once).
#[derive(Debug, Serialize, ToSchema)]
struct CreatedClient {
    #[serde(flatten)]
    record: ClientRecord,
    /// The client's secret, for `GET /token`; only its hash is kept.
    secret: String,
}

/// Registers a client.
#[utoipa::path(post, path = "/client", tag = "clients", security(("admin" = [])),
    request_body = NewClient,
    responses(
        (status = 201, description = "Registered; the secret is shown only here", body = CreatedClient),
        (status = 400, description = "Bad JSON or fields", body = ErrorBody),
        (status = 401, description = "No admin token", body = ErrorBody),
        (status = 403, description = "Not the admin token", body = ErrorBody),
        (status = 409, description = "The id exists", body = ErrorBody),
        (status = 413, description = "The body is over 1 MiB", body = ErrorBody),
        (status = 415, description = "The body is not application/json", body = ErrorBody),
        (status = 503, description = "The broker is unreachable", body = ErrorBody),
    )
)]
async fn create_client(
    _: Admin,
    State(st): State<AppState>,
    JsonBody(c): JsonBody<NewClient>,
) -> Result<Response, ApiError> {
    check_id(&c.client_id)?;
    check_name(&c.client_name)?;
    check_words("subscription", &c.subscription, true)?;
    let store = st.store.clone();
    let (rec, secret) = tokio::task::spawn_blocking(move || {
        store.create(&c.client_id, &c.client_name, &c.subscription)
    })
    .await
    .map_err(|e| ApiError::internal("creating the client", e))??;
    tracing::info!(client = ?rec.client_id, "client created");
    st.reconcile().await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatedClient {
            record: rec,
            secret,
        }),
    )
        .into_response())
}

/// Every registered client (never a secret).
#[utoipa::path(get, path = "/client", tag = "clients", security(("admin" = [])),
    responses(
        (status = 200, description = "The clients", body = [ClientRecord]),
        (status = 401, description = "No admin token", body = ErrorBody),
        (status = 403, description = "Not the admin token", body = ErrorBody),
    )
)]
async fn list_clients(
    _: Admin,
    State(st): State<AppState>,
) -> Result<axum::Json<Vec<ClientRecord>>, ApiError> {
    Ok(axum::Json(st.store.list()?))
}

/// One client (never its secret).
#[utoipa::path(get, path = "/client/{id}", tag = "clients", security(("admin" = [])),
    params(("id" = String, Path, description = "The client id")),
    responses(
        (status = 200, description = "The client", body = ClientRecord),
        (status = 401, description = "No admin token", body = ErrorBody),
        (status = 403, description = "Not the admin token", body = ErrorBody),
        (status = 400, description = "The id is not valid UTF-8", body = ErrorBody),
        (status = 404, description = "No such client", body = ErrorBody),
    )
)]
async fn get_client(
    _: Admin,
    State(st): State<AppState>,
    PathParam(id): PathParam<String>,
) -> Result<axum::Json<ClientRecord>, ApiError> {
    Ok(axum::Json(st.store.get(&id)?))
}

/// What to change in a client; absent fields stay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ClientChange {
    /// A new name.
    #[schema(min_length = 1, max_length = 200)]
    client_name: Option<String>,
    /// A new subscription pattern (rebound live).
    #[schema(
        pattern = "^([A-Za-z0-9_-]+|[*#])([.]([A-Za-z0-9_-]+|[*#]))*$",
        max_length = 255
    )]
    subscription: Option<String>,
}

/// Changes a client's name or subscription.
#[utoipa::path(put, path = "/client/{id}", tag = "clients", security(("admin" = [])),
    params(("id" = String, Path, description = "The client id")),
    request_body = ClientChange,
    responses(
        (status = 200, description = "The changed client", body = ClientRecord),
        (status = 400, description = "Bad JSON or fields", body = ErrorBody),
        (status = 401, description = "No admin token", body = ErrorBody),
        (status = 403, description = "Not the admin token", body = ErrorBody),
        (status = 404, description = "No such client", body = ErrorBody),
        (status = 413, description = "The body is over 1 MiB", body = ErrorBody),
        (status = 415, description = "The body is not application/json", body = ErrorBody),
        (status = 503, description = "The broker is unreachable", body = ErrorBody),
    )
)]
async fn update_client(
    _: Admin,
    State(st): State<AppState>,
    PathParam(id): PathParam<String>,
    JsonBody(c): JsonBody<ClientChange>,
) -> Result<axum::Json<ClientRecord>, ApiError> {
    if let Some(n) = &c.client_name {
        check_name(n)?;
    }
    if let Some(s) = &c.subscription {
        check_words("subscription", s, true)?;
    }
    let rec = st
        .store
        .update(&id, c.client_name.as_deref(), c.subscription.as_deref())?;
    st.reconcile().await?;
    Ok(axum::Json(rec))
}

/// Deletes a client, its queues and (in effect) its tokens.
#[utoipa::path(delete, path = "/client/{id}", tag = "clients", security(("admin" = [])),
    params(("id" = String, Path, description = "The client id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No admin token", body = ErrorBody),
        (status = 403, description = "Not the admin token", body = ErrorBody),
        (status = 400, description = "The id is not valid UTF-8", body = ErrorBody),
        (status = 404, description = "No such client", body = ErrorBody),
        (status = 503, description = "The broker is unreachable", body = ErrorBody),
    )
)]
async fn delete_client(
    _: Admin,
    State(st): State<AppState>,
    PathParam(id): PathParam<String>,
) -> Result<StatusCode, ApiError> {
    st.store.delete(&id)?;
    tracing::info!(client = ?id, "client deleted");
    st.reconcile().await?;
    Ok(StatusCode::NO_CONTENT)
}

// ----- tokens ---------------------------------------------------------------------------------

/// The client's credentials.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct TokenQuery {
    /// The client id.
    client_id: String,
    /// The client's secret.
    secret: String,
}

/// A bearer token.
#[derive(Debug, Serialize, ToSchema)]
struct TokenResponse {
    /// Send it as `Authorization: Bearer <token>`.
    token: String,
    /// When it stops working (RFC 3339, UTC).
    expiry: String,
}

/// A token for a client's credentials.
#[utoipa::path(get, path = "/token", tag = "messages", params(TokenQuery),
    responses(
        (status = 200, description = "A token", body = TokenResponse),
        (status = 400, description = "A parameter is missing", body = ErrorBody),
        (status = 401, description = "Unknown client or wrong secret (not told apart)", body = ErrorBody),
        (status = 429, description = "Over 30 token requests a minute for this client id", body = ErrorBody),
    )
)]
async fn token(
    State(st): State<AppState>,
    QueryParams(q): QueryParams<TokenQuery>,
) -> Result<axum::Json<TokenResponse>, ApiError> {
    let allowed = st
        .limiter
        .lock()
        .map(|mut l| l.allow(&q.client_id))
        .unwrap_or(false);
    if !allowed {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too many requests",
            format!("at most {TOKEN_RATE} token requests a minute per client"),
        ));
    }
    let store = st.store.clone();
    let id = q.client_id.clone();
    // An unknown client is checked against a dummy hash so both cases take the same time.
    let record =
        tokio::task::spawn_blocking(move || -> Result<Option<ClientRecord>, StoreError> {
            let hash = store.secret_hash(&id)?;
            let known = hash.is_some();
            let hash = match hash {
                Some(h) => h,
                None => store.hash_secret("not a secret")?,
            };
            if store.verify_secret(&q.secret, &hash) && known {
                store.get(&id).map(Some)
            } else {
                Ok(None)
            }
        })
        .await
        .map_err(|e| ApiError::internal("checking the secret", e))??;
    let Some(rec) = record else {
        return Err(ApiError::unauthorized("unknown client or wrong secret"));
    };
    let exp = chrono::Utc::now().timestamp()
        + i64::try_from(st.config.token_lifetime.as_secs()).unwrap_or(i64::MAX / 2);
    let token = st.signer.sign(&Claims {
        sub: rec.client_id,
        exp,
        gen: rec.created,
    });
    let expiry = chrono::DateTime::from_timestamp(exp, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default();
    Ok(axum::Json(TokenResponse { token, expiry }))
}

// ----- messages -------------------------------------------------------------------------------

/// A message to publish.
#[derive(Debug, Deserialize, ToSchema)]
struct SendBody {
    /// The routing topic: dot-separated words of `A-Z a-z 0-9 _ -`; taken from
    /// `message.header.destination` when absent.
    #[schema(pattern = "^[A-Za-z0-9_-]+([.][A-Za-z0-9_-]+)*$", max_length = 255)]
    topic: Option<String>,
    /// Any JSON.
    message: Value,
}

/// A message for every client.
#[derive(Debug, Deserialize, ToSchema)]
struct NotifyBody {
    /// Any JSON.
    message: Value,
}

/// The broker has the message.
#[derive(Debug, Serialize, ToSchema)]
struct Accepted {
    /// `accepted`.
    status: String,
    /// The topic it was published with (`/send` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    topic: Option<String>,
}

async fn publish(st: &AppState, queue: &str, topic: &str, body: &Value) -> Result<(), ApiError> {
    let bytes = serde_json::to_vec(body).map_err(|e| ApiError::internal("encoding", e))?;
    let props = BasicProperties {
        content_type: Some(ShortStr::from_static("application/json")),
        delivery_mode: Some(2),
        kind: if topic.is_empty() {
            None
        } else {
            ShortStr::new(topic).ok()
        },
        ..Default::default()
    };
    let ch = st.channel().await?;
    let confirm = ch
        .publish(amqp_client::Publish::to_queue(queue), &props, &bytes)
        .await
        .map_err(|e| ApiError::unavailable(&e))?;
    match confirm.await.inspect(crate::metrics::confirmation) {
        Ok(c) if c.is_ack() => Ok(()),
        Ok(_) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "broker unavailable",
            "the broker refused the message; try again later",
        )),
        Err(e) => Err(ApiError::unavailable(&e)),
    }
}

/// The topic of a `/send` body: its `topic`, or else `message.header.destination`.
fn send_topic(b: &SendBody) -> Result<String, ApiError> {
    let topic = match &b.topic {
        Some(t) => t.clone(),
        None => b
            .message
            .pointer("/header/destination")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| {
                ApiError::bad_request("a topic is required (topic, or message.header.destination)")
            })?,
    };
    check_words("topic", &topic, false)?;
    Ok(topic)
}

/// Publishes a message by topic to the subscribed inboxes.
#[utoipa::path(post, path = "/send", tag = "messages", security(("bearer" = [])),
    request_body = SendBody,
    responses(
        (status = 202, description = "Confirmed by the broker into the outbox", body = Accepted),
        (status = 400, description = "Bad JSON, or no or a bad topic", body = ErrorBody),
        (status = 401, description = "Missing, bad or expired token", body = ErrorBody),
        (status = 413, description = "The body is over 1 MiB", body = ErrorBody),
        (status = 415, description = "The body is not application/json", body = ErrorBody),
        (status = 503, description = "The broker is unreachable", body = ErrorBody),
    )
)]
async fn send(
    Caller(me): Caller,
    State(st): State<AppState>,
    JsonBody(b): JsonBody<SendBody>,
) -> Result<Response, ApiError> {
    let topic = send_topic(&b)?;
    publish(&st, &bus::outbox(&me.client_id), &topic, &b.message).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(Accepted {
            status: "accepted".to_owned(),
            topic: Some(topic),
        }),
    )
        .into_response())
}

/// Broadcasts a message to every inbox.
#[utoipa::path(post, path = "/notify", tag = "messages", security(("bearer" = [])),
    request_body = NotifyBody,
    responses(
        (status = 202, description = "Confirmed by the broker", body = Accepted),
        (status = 400, description = "Bad JSON", body = ErrorBody),
        (status = 401, description = "Missing, bad or expired token", body = ErrorBody),
        (status = 413, description = "The body is over 1 MiB", body = ErrorBody),
        (status = 415, description = "The body is not application/json", body = ErrorBody),
        (status = 503, description = "The broker is unreachable", body = ErrorBody),
    )
)]
async fn notify(
    Caller(me): Caller,
    State(st): State<AppState>,
    JsonBody(b): JsonBody<NotifyBody>,
) -> Result<Response, ApiError> {
    publish(&st, &bus::broadcast(&me.client_id), "", &b.message).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(Accepted {
            status: "accepted".to_owned(),
            topic: None,
        }),
    )
        .into_response())
}

/// How many messages to take.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ReceiveQuery {
    /// 1 to 100, default 10.
    #[param(minimum = 1, maximum = 100)]
    max_messages: Option<usize>,
}

/// How many messages a `/receive` may return: `max_messages` (default 10), 1 to
/// [`MAX_RECEIVE`].
fn receive_max(q: &ReceiveQuery) -> Result<usize, ApiError> {
    let max = q.max_messages.unwrap_or(10);
    if max == 0 || max > MAX_RECEIVE {
        return Err(ApiError::bad_request(format!(
            "max_messages must be between 1 and {MAX_RECEIVE}"
        )));
    }
    Ok(max)
}

/// Takes messages from the caller's inbox.
#[utoipa::path(get, path = "/receive", tag = "messages", security(("bearer" = [])),
    params(ReceiveQuery),
    responses(
        (status = 200, description = "At most max_messages messages, oldest first (each the JSON sent, or a string)", body = Vec<Value>),
        (status = 400, description = "Bad max_messages", body = ErrorBody),
        (status = 401, description = "Missing, bad or expired token", body = ErrorBody),
        (status = 503, description = "The broker is unreachable", body = ErrorBody),
    )
)]
async fn receive(
    Caller(me): Caller,
    State(st): State<AppState>,
    QueryParams(q): QueryParams<ReceiveQuery>,
) -> Result<axum::Json<Vec<Value>>, ApiError> {
    let max = receive_max(&q)?;
    let ch = st.channel().await?;
    let queue = bus::inbox(&me.client_id);
    let mut out = Vec::new();
    let mut taken = Vec::new();
    while out.len() < max {
        let got = ch
            .basic_get(&queue, GetOptions::default())
            .await
            .map_err(|e| ApiError::unavailable(&e))?;
        let Some(m) = got else { break };
        let v = serde_json::from_slice(&m.delivery.body).unwrap_or_else(|_| {
            Value::String(String::from_utf8_lossy(&m.delivery.body).into_owned())
        });
        out.push(v);
        taken.push(m.delivery);
    }
    // One ack each: the channel is shared, so `multiple` could settle another request's gets.
    for d in taken {
        d.ack().map_err(|e| ApiError::unavailable(&e))?;
    }
    Ok(axum::Json(out))
}

/// Stream settings.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct StreamQuery {
    /// Unacknowledged messages at most (1 to 1000, default 16).
    #[param(minimum = 1, maximum = 1000)]
    prefetch: Option<u16>,
    /// The client token, for callers that cannot set the Authorization header (browsers).
    token: Option<String>,
}

/// The caller's inbox over a websocket: `{id, redelivered, message}` frames, acknowledged with
/// `{"ack": id}`; see docs/BACKBONE.md.
#[utoipa::path(get, path = "/stream", tag = "messages", security(("bearer" = []), ()),
    params(StreamQuery),
    responses(
        (status = 101, description = "Switched to the websocket protocol"),
        (status = 400, description = "Bad prefetch, or not a websocket handshake", body = ErrorBody),
        (status = 401, description = "Missing, bad or expired token", body = ErrorBody),
        (status = 426, description = "Not a websocket upgrade request", body = ErrorBody),
        (status = 503, description = "The broker is unreachable", body = ErrorBody),
    )
)]
async fn stream(
    State(st): State<AppState>,
    headers: HeaderMap,
    QueryParams(q): QueryParams<StreamQuery>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    // Browsers cannot set headers on a websocket: the token may come as ?token= instead.
    let me = match (headers.get(header::AUTHORIZATION), q.token.as_deref()) {
        (Some(_), _) => authenticate(&st, bearer_header(&headers)?)?,
        (None, Some(t)) => authenticate(&st, t)?,
        (None, None) => {
            return Err(ApiError::unauthorized(
                "an Authorization: Bearer token or a token query parameter is required",
            ))
        }
    };
    let prefetch = q.prefetch.unwrap_or(DEFAULT_PREFETCH);
    if prefetch == 0 || prefetch > MAX_PREFETCH {
        return Err(ApiError::bad_request(format!(
            "prefetch must be between 1 and {MAX_PREFETCH}"
        )));
    }
    let upgrade = upgrade.map_err(|rej| {
        let status = rej.status();
        let error = match status {
            StatusCode::UPGRADE_REQUIRED => "upgrade required",
            StatusCode::METHOD_NOT_ALLOWED => "method not allowed",
            _ => "bad request",
        };
        ApiError::new(status, error, rej.body_text())
    })?;
    let conn = st.bus.connection();
    if !conn.is_open() {
        return Err(ApiError::unavailable(&amqp_client::Error::Recovering));
    }
    let session = Session::open(conn, &bus::inbox(&me.client_id), prefetch)
        .await
        .map_err(|e| ApiError::unavailable(&e))?;
    let closing = st.closing.clone();
    Ok(upgrade
        .max_message_size(MAX_CLIENT_FRAME)
        .max_frame_size(MAX_CLIENT_FRAME)
        .on_upgrade(move |socket| ws_stream::run(socket, session, closing)))
}

// ----- decoding without a server --------------------------------------------------------------

/// An untrusted part of a request, for [`decode_request`].
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestPart {
    /// The JSON body of `POST /client`.
    NewClient,
    /// The JSON body of `PUT /client/{id}`.
    ClientChange,
    /// The JSON body of `POST /send`.
    Send,
    /// The JSON body of `POST /notify`.
    Notify,
    /// The query string of `GET /token`.
    TokenQuery,
    /// The query string of `GET /receive`.
    ReceiveQuery,
    /// The value of an `Authorization` header.
    Authorization,
}

/// Decodes and checks one request part exactly as the handlers do, up to the point where they
/// would need the client register or the broker: the fuzz targets' entry point. `Ok` carries
/// what the handler goes on with (the topic of a send, the count of a receive, the client id of
/// a token request, the bearer token).
#[doc(hidden)]
pub fn decode_request(part: RequestPart, input: &[u8]) -> Result<Option<String>, ApiError> {
    fn body<T: serde::de::DeserializeOwned>(input: &[u8]) -> Result<T, ApiError> {
        axum::Json::<T>::from_bytes(input)
            .map(|axum::Json(v)| v)
            .map_err(json_rejection)
    }
    fn query<T: serde::de::DeserializeOwned>(input: &[u8]) -> Result<T, ApiError> {
        let uri: axum::http::Uri = [b"/x?".as_slice(), input]
            .concat()
            .try_into()
            .map_err(|_| ApiError::bad_request("not a URI"))?;
        Query::<T>::try_from_uri(&uri)
            .map(|Query(v)| v)
            .map_err(|rej| ApiError::bad_request(query_detail(&rej)))
    }
    match part {
        RequestPart::NewClient => {
            let c: NewClient = body(input)?;
            check_id(&c.client_id)?;
            check_name(&c.client_name)?;
            check_words("subscription", &c.subscription, true)?;
            Ok(Some(c.client_id))
        }
        RequestPart::ClientChange => {
            let c: ClientChange = body(input)?;
            if let Some(n) = &c.client_name {
                check_name(n)?;
            }
            if let Some(s) = &c.subscription {
                check_words("subscription", s, true)?;
            }
            Ok(None)
        }
        RequestPart::Send => send_topic(&body(input)?).map(Some),
        RequestPart::Notify => body::<NotifyBody>(input).map(|_| None),
        RequestPart::TokenQuery => query::<TokenQuery>(input).map(|q| Some(q.client_id)),
        RequestPart::ReceiveQuery => receive_max(&query(input)?).map(|n| Some(n.to_string())),
        RequestPart::Authorization => {
            let value = header::HeaderValue::from_bytes(input)
                .map_err(|_| ApiError::bad_request("not a header value"))?;
            let mut request = axum::http::Request::new(());
            request.headers_mut().insert(header::AUTHORIZATION, value);
            let (parts, ()) = request.into_parts();
            bearer(&parts).map(|t| Some(t.to_owned()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_per_key_and_window() {
        let mut l = RateLimiter {
            window: Duration::from_secs(60),
            limit: 3,
            seen: HashMap::new(),
        };
        assert!((0..3).all(|_| l.allow("a")));
        assert!(!l.allow("a"));
        assert!(l.allow("b"));
        l.window = Duration::ZERO;
        assert!(l.allow("a"));
    }

    #[test]
    fn topics_patterns_and_ids() {
        assert!(check_words("topic", "soar.noc.autosub.ah1", false).is_ok());
        assert!(check_words("topic", "soar.*", false).is_err());
        assert!(check_words("subscription", "soar.*.noc.#", true).is_ok());
        let long = "a".repeat(256);
        for bad in ["", "a..b", ".a", "a.", "a b", "a.#x", long.as_str()] {
            assert!(check_words("subscription", bad, true).is_err(), "{bad:?}");
        }
        assert!(check_id("site-1_a.b").is_ok());
        assert!(check_id("a/b").is_err() && check_id("").is_err());
    }
}
