//! The HTTP API (axum): clients, tokens, send, notify, receive. Every failure is a JSON body
//! `{"error": …, "detail": …}` with its status.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amqp_client::options::{GetOptions, PublishOptions};
use amqp_client::{BasicProperties, Channel, ShortStr};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Query, State};
use axum::http::{header, request::Parts, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::bus::{self, Bus};
use super::store::{ClientRecord, Store, StoreError};
use super::token::{Claims, Signer, TokenError};

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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            axum::Json(json!({"error": self.error, "detail": self.detail})),
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
    let status = rej.status();
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
        }
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

/// The router with every route, the body limit and the JSON fallback.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/client", post(create_client).get(list_clients))
        .route(
            "/client/{id}",
            get(get_client).put(update_client).delete(delete_client),
        )
        .route("/token", get(token))
        .route("/send", post(send))
        .route("/notify", post(notify))
        .route("/receive", get(receive))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed",
                "this endpoint does not take this method",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

async fn health(State(st): State<AppState>) -> Response {
    let up = st.bus.connection().is_open();
    let status = if up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        axum::Json(json!({"status": if up {"ok"} else {"broker unavailable"}})),
    )
        .into_response()
}

// ----- authentication -------------------------------------------------------------------------

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
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
        let store = st.store.clone();
        let hash = st.config.admin_token_hash.clone();
        let ok = tokio::task::spawn_blocking(move || store.verify_secret(&token, &hash))
            .await
            .unwrap_or(false);
        if ok {
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
        let token = bearer(parts)?;
        let now = chrono::Utc::now().timestamp();
        let claims = st.signer.verify(token, now).map_err(|e| match e {
            TokenError::Expired => ApiError::unauthorized("the token has expired"),
            other => ApiError::unauthorized(other.to_string()),
        })?;
        match st.store.get(&claims.sub) {
            Ok(rec) if rec.created == claims.gen => Ok(Self(rec)),
            Ok(_) | Err(StoreError::NotFound) => Err(ApiError::unauthorized(
                "the token's client no longer exists",
            )),
            Err(e) => Err(e.into()),
        }
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewClient {
    client_id: String,
    client_name: String,
    subscription: String,
}

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
    let mut body = serde_json::to_value(&rec).unwrap_or_default();
    if let Value::Object(m) = &mut body {
        m.insert("secret".into(), Value::String(secret));
    }
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

async fn list_clients(
    _: Admin,
    State(st): State<AppState>,
) -> Result<axum::Json<Vec<ClientRecord>>, ApiError> {
    Ok(axum::Json(st.store.list()?))
}

async fn get_client(
    _: Admin,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<ClientRecord>, ApiError> {
    Ok(axum::Json(st.store.get(&id)?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientChange {
    client_name: Option<String>,
    subscription: Option<String>,
}

async fn update_client(
    _: Admin,
    State(st): State<AppState>,
    Path(id): Path<String>,
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

async fn delete_client(
    _: Admin,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    st.store.delete(&id)?;
    tracing::info!(client = ?id, "client deleted");
    st.reconcile().await?;
    Ok(StatusCode::NO_CONTENT)
}

// ----- tokens ---------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct TokenQuery {
    client_id: String,
    secret: String,
}

async fn token(
    State(st): State<AppState>,
    QueryParams(q): QueryParams<TokenQuery>,
) -> Result<axum::Json<Value>, ApiError> {
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
    Ok(axum::Json(json!({"token": token, "expiry": expiry})))
}

// ----- messages -------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct SendBody {
    topic: Option<String>,
    message: Value,
}

#[derive(Debug, Deserialize)]
struct NotifyBody {
    message: Value,
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
        .basic_publish("", queue, PublishOptions::default(), &props, &bytes)
        .await
        .map_err(|e| ApiError::unavailable(&e))?;
    match confirm.await {
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

async fn send(
    Caller(me): Caller,
    State(st): State<AppState>,
    JsonBody(b): JsonBody<SendBody>,
) -> Result<Response, ApiError> {
    let topic = send_topic(&b)?;
    publish(&st, &bus::outbox(&me.client_id), &topic, &b.message).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({"status": "accepted", "topic": topic})),
    )
        .into_response())
}

async fn notify(
    Caller(me): Caller,
    State(st): State<AppState>,
    JsonBody(b): JsonBody<NotifyBody>,
) -> Result<Response, ApiError> {
    publish(&st, &bus::broadcast(&me.client_id), "", &b.message).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({"status": "accepted"})),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
struct ReceiveQuery {
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

// ----- decoding without a server --------------------------------------------------------------

/// An untrusted part of a request, for [`decode_request`].
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestPart {
    /// The JSON body of `POST /clients`.
    NewClient,
    /// The JSON body of `PATCH /clients/{id}`.
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
