//! `prisem-dashboard`: a web page showing the bus live — the `logs` stream with filters, each
//! PRISEM service's queue and request rate, the syslog bridge's counters, the current block
//! list, the backbone's inboxes — and a form running anon and crosscor on pasted text.
//!
//! One page and its script and style are embedded in the binary (no build step, no network).
//! The page gets a status snapshot and the log lines over server-sent events (`/events`).
//! Bound to loopback it is open; bound elsewhere it requires a token: the login form exchanges
//! it for a session cookie (`HttpOnly`, `SameSite=Strict`).

mod live;

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use amqp_client::Connection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use futures_util::stream::Stream;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::{broadcast, watch};

use crate::daemon::Shutdown;
use crate::dimslog::{Level, LogLine};
use crate::identity::Identity;
use crate::logmon::Filter;
use crate::rpc::{queue_name, AppData, Client};

pub use live::ServiceTarget;

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/style.css");
const LOGIN: &str = include_str!("assets/login.html");
const COOKIE: &str = "prisem_session";
/// The largest text the form accepts.
pub const MAX_TEXT: usize = 4 << 20;

/// What the dashboard shows and where it finds it.
#[derive(Debug, Clone)]
pub struct DashboardConfig {
    /// Where the page is served.
    pub listen: SocketAddr,
    /// The login token; required when `listen` is not a loopback address.
    pub token: Option<String>,
    /// The DIMS log exchange (`logs`).
    pub log_exchange: String,
    /// The firewall exchange sshwatch publishes to (`firewall`).
    pub firewall_exchange: String,
    /// The broker's management API, `http://user:password@host:port`.
    pub management_url: Option<String>,
    /// The virtual host whose queues are shown.
    pub vhost: String,
    /// The PRISEM services shown, with their metrics endpoints.
    pub services: Vec<ServiceTarget>,
    /// The syslog bridge's metrics endpoint.
    pub syslog_metrics: Option<String>,
    /// Network maps offered by the form: name and contents.
    pub netmaps: Vec<(String, Vec<u8>)>,
    /// How long a form request waits for its reply.
    pub rpc_timeout: Duration,
    /// How often the status is refreshed.
    pub refresh: Duration,
}

impl DashboardConfig {
    /// Checks that a non-loopback address comes with a token.
    pub fn validate(&self) -> Result<(), String> {
        if !self.listen.ip().is_loopback() && self.token.as_deref().is_none_or(str::is_empty) {
            return Err(format!(
                "listening on {} (not loopback) needs a login token: give --token-file FILE or set PRISEM_DASHBOARD_TOKEN",
                self.listen
            ));
        }
        Ok(())
    }
}

#[derive(Clone)]
struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    token_hash: Option<[u8; 32]>,
    sessions: Mutex<HashSet<String>>,
    logs: broadcast::Sender<Arc<str>>,
    status: watch::Receiver<Value>,
    netmaps: Vec<(String, Vec<u8>)>,
    client: Client,
    rpc_timeout: Duration,
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

impl AppState {
    fn authorised(&self, headers: &HeaderMap) -> bool {
        if self.inner.token_hash.is_none() {
            return true;
        }
        let Some(session) = session_cookie(headers) else {
            return false;
        };
        self.inner
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(session)
    }
}

fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
}

fn new_session() -> Result<String, String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| format!("no randomness for a session: {e}"))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Runs the dashboard on `conn` until `shutdown`.
pub async fn run(
    conn: &Connection,
    cfg: DashboardConfig,
    shutdown: Shutdown,
) -> Result<(), String> {
    cfg.validate()?;
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", cfg.listen))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    let (logs, _) = broadcast::channel(1024);
    let status = live::start(conn, &cfg, logs.clone(), shutdown.clone()).await?;
    let client = Client::new(conn, Identity::for_program("prisem-dashboard"), "")
        .await
        .map_err(|e| format!("cannot set up the RPC client: {e}"))?;
    let state = AppState {
        inner: Arc::new(Inner {
            token_hash: cfg.token.as_deref().map(digest),
            sessions: Mutex::default(),
            logs,
            status,
            netmaps: cfg.netmaps.clone(),
            client,
            rpc_timeout: cfg.rpc_timeout,
        }),
    };
    let app = router(state);
    tracing::info!("dashboard on http://{bound}/");
    eprintln!("prisem-dashboard: serving http://{bound}/");
    let stop = shutdown.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.requested().await })
        .await
        .map_err(|e| format!("serving the dashboard: {e}"))
}

fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/app.js", get(script))
        .route("/style.css", get(style))
        .route("/login", get(login_page).post(login))
        .route("/events", get(events))
        .route("/api/maps", get(maps))
        .route("/api/run", post(run_service))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_TEXT + (64 << 10)))
        .with_state(state)
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn index(State(st): State<AppState>, headers: HeaderMap) -> Response {
    if !st.authorised(&headers) {
        return Redirect::to("/login").into_response();
    }
    (
        [
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data:; style-src 'self'",
            ),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Html(INDEX),
    )
        .into_response()
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

async fn login_page() -> Response {
    Html(LOGIN).into_response()
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(State(st): State<AppState>, Form(f): Form<LoginForm>) -> Response {
    let Some(want) = st.inner.token_hash else {
        return Redirect::to("/").into_response();
    };
    // Comparing digests: the time taken says nothing about the token.
    if digest(&f.token) != want {
        return (StatusCode::UNAUTHORIZED, Html(LOGIN)).into_response();
    }
    let session = match new_session() {
        Ok(s) => s,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
    };
    st.inner
        .sessions
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(session.clone());
    (
        [(
            header::SET_COOKIE,
            format!("{COOKIE}={session}; HttpOnly; SameSite=Strict; Path=/"),
        )],
        Redirect::to("/"),
    )
        .into_response()
}

fn unauthorised() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"error": "log in first"})),
    )
        .into_response()
}

#[derive(Debug, Default, Deserialize)]
struct LogQuery {
    level: Option<String>,
    host: Option<String>,
    component: Option<String>,
}

impl LogQuery {
    fn filter(&self) -> Filter {
        let nonempty = |s: &Option<String>| s.clone().filter(|v| !v.trim().is_empty());
        Filter {
            level: self.level.as_deref().and_then(|l| l.parse::<Level>().ok()),
            host: nonempty(&self.host),
            component: nonempty(&self.component),
            grep: None,
        }
    }
}

/// One line for the page: the text as logmon prints it, and its fields.
fn log_event(raw: &str) -> Value {
    let line = LogLine::parse(raw);
    json!({
        "text": line.render(true),
        "level": line.level().name(),
        "host": line.host(),
        "component": line.component(),
    })
}

async fn events(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LogQuery>,
) -> Response {
    if !st.authorised(&headers) {
        return unauthorised();
    }
    let filter = q.filter();
    let logs = st.inner.logs.subscribe();
    let status = st.inner.status.clone();
    Sse::new(event_stream(logs, status, filter))
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn event_stream(
    logs: broadcast::Receiver<Arc<str>>,
    status: watch::Receiver<Value>,
    filter: Filter,
) -> impl Stream<Item = Result<Event, Infallible>> {
    futures_util::stream::unfold(
        (logs, status, filter, true),
        |(mut logs, mut status, filter, first)| async move {
            if first {
                let snapshot = status.borrow_and_update().clone();
                let ev = Event::default().event("status").data(snapshot.to_string());
                return Some((Ok(ev), (logs, status, filter, false)));
            }
            loop {
                tokio::select! {
                    line = logs.recv() => match line {
                        Ok(raw) => {
                            if filter.accepts(&LogLine::parse(&raw), &raw) {
                                let ev = Event::default().event("log").data(log_event(&raw).to_string());
                                return Some((Ok(ev), (logs, status, filter, false)));
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            let ev = Event::default().event("lagged").data(n.to_string());
                            return Some((Ok(ev), (logs, status, filter, false)));
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    },
                    changed = status.changed() => {
                        if changed.is_err() {
                            return None;
                        }
                        let snapshot = status.borrow_and_update().clone();
                        let ev = Event::default().event("status").data(snapshot.to_string());
                        return Some((Ok(ev), (logs, status, filter, false)));
                    }
                }
            }
        },
    )
}

async fn maps(State(st): State<AppState>, headers: HeaderMap) -> Response {
    if !st.authorised(&headers) {
        return unauthorised();
    }
    let names: Vec<&str> = st.inner.netmaps.iter().map(|(n, _)| n.as_str()).collect();
    Json(json!({ "maps": names })).into_response()
}

#[derive(Debug, Deserialize)]
struct RunRequest {
    service: String,
    text: String,
    #[serde(default)]
    map: String,
    #[serde(default)]
    iff: Option<String>,
}

/// crosscor's statistics as cumdist computes them: `[{site, count, pct, cum}]`.
fn cumulative(stdout: &[u8]) -> Result<Vec<Value>, String> {
    let text = crate::cumdist::render(stdout).map_err(|e| e.to_string())?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.as_slice() {
                [site, count, pct, cum] => Some(json!({
                    "site": site,
                    "count": count.parse::<u64>().unwrap_or(0),
                    "pct": pct.parse::<f64>().unwrap_or(0.0),
                    "cum": cum.parse::<f64>().unwrap_or(0.0),
                })),
                _ => None,
            }
        })
        .collect())
}

async fn run_service(
    State(st): State<AppState>,
    headers: HeaderMap,
    Json(req): Json<RunRequest>,
) -> Response {
    if !st.authorised(&headers) {
        return unauthorised();
    }
    let bad = |m: String| (StatusCode::BAD_REQUEST, Json(json!({"error": m}))).into_response();
    if req.text.len() > MAX_TEXT {
        return bad(format!("the text is over {MAX_TEXT} bytes"));
    }
    let map = if req.map.is_empty() {
        None
    } else {
        match st.inner.netmaps.iter().find(|(n, _)| *n == req.map) {
            Some((_, m)) => Some(m.clone()),
            None => return bad(format!("no network map named {:?}", req.map)),
        }
    };
    let mut appdata = AppData::new()
        .with_file("data", req.text.as_bytes())
        .with_file("netmap", map.as_deref().unwrap_or_default())
        .with_flag("usage", false);
    match req.service.as_str() {
        "anon" => appdata = appdata.with_flag("stats", true),
        "crosscor" => {
            let iff = req.iff.as_deref().unwrap_or("foe");
            if iff != "friend" && iff != "foe" {
                return bad(format!("iff {iff:?} is neither friend nor foe"));
            }
            appdata = appdata.with("iff", iff).with_flag("stats", true);
        }
        other => return bad(format!("unknown service {other:?} (anon or crosscor)")),
    }
    let queue = queue_name(&req.service);
    match st
        .inner
        .client
        .call(&queue, appdata, st.inner.rpc_timeout)
        .await
    {
        Ok(reply) => {
            let cumdist = (req.service == "crosscor" && reply.retcode == 0)
                .then(|| cumulative(&reply.stdout));
            let (chart, chart_error) = match cumdist {
                Some(Ok(rows)) => (Some(rows), None),
                Some(Err(e)) => (None, Some(e)),
                None => (None, None),
            };
            Json(json!({
                "retcode": reply.retcode,
                "stdout": String::from_utf8_lossy(&reply.stdout),
                "stderr": String::from_utf8_lossy(&reply.stderr),
                "cumdist": chart,
                "cumdist_error": chart_error,
            }))
            .into_response()
        }
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            Json(json!({"error": format!("{queue}: {e}")})),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_address_needs_a_token() {
        let mut cfg = DashboardConfig {
            listen: "0.0.0.0:8089".parse().unwrap(),
            token: None,
            log_exchange: "logs".into(),
            firewall_exchange: "firewall".into(),
            management_url: None,
            vhost: "/".into(),
            services: vec![],
            syslog_metrics: None,
            netmaps: vec![],
            rpc_timeout: Duration::from_secs(1),
            refresh: Duration::from_secs(1),
        };
        assert!(cfg.validate().unwrap_err().contains("needs a login token"));
        cfg.token = Some(String::new());
        assert!(cfg.validate().is_err());
        cfg.token = Some("s3cret-token".into());
        assert!(cfg.validate().is_ok());
        cfg.token = None;
        cfg.listen = "[::1]:8089".parse().unwrap();
        assert!(cfg.validate().is_ok());
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; prisem_session=abc; b=2".parse().unwrap(),
        );
        assert_eq!(session_cookie(&h), Some("abc"));
        h.insert(header::COOKIE, "prisem_sessionx=1".parse().unwrap());
        assert_eq!(session_cookie(&h), None);
    }

    #[test]
    fn cumulative_rows_from_crosscor_output() {
        let rows = cumulative(
            br#"{"matching_stats": [{"site": "SEA", "count": "1"}, {"site": "ARIN", "count": "3"}, {"site": "All_Sites", "count": "4"}]}"#,
        )
        .unwrap();
        assert_eq!(rows[0]["site"], "ARIN");
        assert_eq!(rows[0]["cum"], 75.0);
        assert_eq!(rows[1]["site"], "SEA");
        assert_eq!(rows[1]["cum"], 100.0);
    }
}
