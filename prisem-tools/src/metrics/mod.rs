//! Prometheus metrics for every long-running PRISEM program: one registry per process
//! ([`global`]), the hooks the daemons call (a request answered, a confirm, a ban…), and a small
//! HTTP endpoint serving it at `/metrics` ([`serve`], started by `--metrics ADDR`).
//!
//! The endpoint answers in the Prometheus text format (0.0.4), or in OpenMetrics text when the
//! scraper asks for `application/openmetrics-text`. Every metric name starts with `prisem_`;
//! docs/OPERATIONS.md lists them all.
//!
//! ```
//! use prisem_tools::metrics;
//!
//! let request = metrics::rpc_request("anon");
//! request.finish(true);
//! let text = metrics::global().encode_text();
//! assert!(text.contains("prisem_rpc_requests_total{service=\"anon\",outcome=\"ok\"}"));
//! ```

mod http;
mod syslog;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use amqp_client::{Confirmation, Connection, ConnectionEvent};
use futures_util::StreamExt;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

pub use http::{serve, track_http};
pub use syslog::register_syslog;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabel {
    service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    service: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabel {
    action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InfoLabels {
    program: String,
    version: &'static str,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms to about 16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// The process's metrics: the registry and every metric the hooks update.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    info: Family<InfoLabels, Gauge>,
    rpc_requests: Family<RpcLabels, Counter>,
    rpc_duration: Family<ServiceLabel, Histogram>,
    rpc_in_flight: Family<ServiceLabel, Gauge>,
    recoveries: Counter,
    reconnects: Counter,
    reconnect_failures: Counter,
    consumers_lost: Counter,
    recovering: Gauge,
    blocked: Gauge,
    confirms: Family<OutcomeLabel, Counter>,
    bans_issued: Family<ActionLabel, Counter>,
    bans_applied: Family<ActionLabel, Counter>,
    ban_failures: Counter,
    firewall_rejected: Counter,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Family<RouteLabel, Histogram>,
}

impl Metrics {
    fn new() -> Self {
        let m = Self {
            registry: Mutex::new(Registry::default()),
            info: Family::default(),
            rpc_requests: Family::default(),
            rpc_duration: Family::new_with_constructor(latency_histogram),
            rpc_in_flight: Family::default(),
            recoveries: Counter::default(),
            reconnects: Counter::default(),
            reconnect_failures: Counter::default(),
            consumers_lost: Counter::default(),
            recovering: Gauge::default(),
            blocked: Gauge::default(),
            confirms: Family::default(),
            bans_issued: Family::default(),
            bans_applied: Family::default(),
            ban_failures: Counter::default(),
            firewall_rejected: Counter::default(),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(latency_histogram),
        };
        m.with_registry(|r| {
            r.register(
                "prisem_build_info",
                "The program serving these metrics and its version (always 1)",
                m.info.clone(),
            );
            r.register(
                "prisem_rpc_requests",
                "RPC requests answered, by service (queue base) and outcome: ok (retcode 0), error (an error reply), unanswered (the connection failed before the reply)",
                m.rpc_requests.clone(),
            );
            r.register(
                "prisem_rpc_request_duration_seconds",
                "Time from a request's delivery to its ack, by service",
                m.rpc_duration.clone(),
            );
            r.register(
                "prisem_rpc_in_flight",
                "RPC requests being handled now, by service",
                m.rpc_in_flight.clone(),
            );
            r.register(
                "prisem_amqp_recoveries",
                "Times the broker connection failed and automatic recovery started",
                m.recoveries.clone(),
            );
            r.register(
                "prisem_amqp_reconnects",
                "Times recovery opened a new connection to the broker",
                m.reconnects.clone(),
            );
            r.register(
                "prisem_amqp_reconnect_failures",
                "Connection attempts that failed during recovery",
                m.reconnect_failures.clone(),
            );
            r.register(
                "prisem_amqp_consumers_lost",
                "Consumers that recovery could not restore",
                m.consumers_lost.clone(),
            );
            r.register(
                "prisem_amqp_recovering",
                "1 while the broker connection is being recovered, else 0",
                m.recovering.clone(),
            );
            r.register(
                "prisem_amqp_blocked",
                "1 while the broker blocks publishing on the connection (memory or disk alarm), else 0",
                m.blocked.clone(),
            );
            r.register(
                "prisem_amqp_publish_confirms",
                "Publisher confirms received, by outcome: ack, nack, returned (unroutable)",
                m.confirms.clone(),
            );
            r.register(
                "prisem_bans_issued",
                "Firewall messages sshwatch published (and the broker confirmed), by action: block, unblock",
                m.bans_issued.clone(),
            );
            r.register(
                "prisem_bans_applied",
                "Firewall actions blockd applied (or printed, with --dry-run), by action: block, unblock",
                m.bans_applied.clone(),
            );
            r.register(
                "prisem_ban_failures",
                "Failed runs of blockd's firewall command (each is retried)",
                m.ban_failures.clone(),
            );
            r.register(
                "prisem_firewall_rejected",
                "Firewall messages blockd rejected as invalid",
                m.firewall_rejected.clone(),
            );
            r.register(
                "prisem_http_requests",
                "HTTP requests answered, by route template, method and status",
                m.http_requests.clone(),
            );
            r.register(
                "prisem_http_request_duration_seconds",
                "Time to answer an HTTP request, by route template",
                m.http_duration.clone(),
            );
        });
        m
    }

    fn with_registry<T>(&self, f: impl FnOnce(&mut Registry) -> T) -> T {
        let mut r = self
            .registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut r)
    }

    /// The metrics in the Prometheus text format (version 0.0.4).
    pub fn encode_text(&self) -> String {
        let mut out = String::new();
        self.with_registry(|r| {
            // Writing to a String cannot fail.
            let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, r);
        });
        out
    }

    /// The metrics in the OpenMetrics text format.
    pub fn encode_openmetrics(&self) -> String {
        let mut out = String::new();
        self.with_registry(|r| {
            let _ = prometheus_client::encoding::text::encode(&mut out, r);
        });
        out
    }
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// The process's metrics.
pub fn global() -> &'static Metrics {
    METRICS.get_or_init(Metrics::new)
}

/// Names the program in `prisem_build_info`.
pub fn set_program(program: &str) {
    global()
        .info
        .get_or_create(&InfoLabels {
            program: program.to_owned(),
            version: env!("CARGO_PKG_VERSION"),
        })
        .set(1);
}

/// One RPC request being handled: counted in flight until [`finish`](Self::finish)ed or
/// dropped (then its outcome is `unanswered`).
#[derive(Debug)]
pub struct RpcRequest {
    service: String,
    started: Instant,
    done: bool,
}

/// Starts timing a request of `service` (its queue base).
pub fn rpc_request(service: &str) -> RpcRequest {
    let label = ServiceLabel {
        service: service.to_owned(),
    };
    global().rpc_in_flight.get_or_create(&label).inc();
    RpcRequest {
        service: service.to_owned(),
        started: Instant::now(),
        done: false,
    }
}

impl RpcRequest {
    /// The request was answered (and acked): `ok` when its retcode was 0.
    pub fn finish(mut self, ok: bool) {
        self.record(if ok { "ok" } else { "error" });
    }

    fn record(&mut self, outcome: &'static str) {
        if self.done {
            return;
        }
        self.done = true;
        let m = global();
        let label = ServiceLabel {
            service: self.service.clone(),
        };
        m.rpc_in_flight.get_or_create(&label).dec();
        m.rpc_duration
            .get_or_create(&label)
            .observe(self.started.elapsed().as_secs_f64());
        m.rpc_requests
            .get_or_create(&RpcLabels {
                service: self.service.clone(),
                outcome,
            })
            .inc();
    }
}

impl Drop for RpcRequest {
    fn drop(&mut self) {
        self.record("unanswered");
    }
}

/// Counts a publisher confirm.
pub fn confirmation(c: &Confirmation) {
    let outcome = match c {
        Confirmation::Nack => "nack",
        Confirmation::Returned(_) => "returned",
        _ => "ack",
    };
    global()
        .confirms
        .get_or_create(&OutcomeLabel { outcome })
        .inc();
}

/// Counts a firewall message sshwatch published (`block` or `unblock`).
pub fn ban_issued(action: &str) {
    global()
        .bans_issued
        .get_or_create(&ActionLabel {
            action: action.to_owned(),
        })
        .inc();
}

/// Counts a firewall action blockd applied (`block` or `unblock`).
pub fn ban_applied(action: &str) {
    global()
        .bans_applied
        .get_or_create(&ActionLabel {
            action: action.to_owned(),
        })
        .inc();
}

/// Counts a failed run of blockd's firewall command.
pub fn ban_failed() {
    global().ban_failures.inc();
}

/// Counts a firewall message blockd rejected.
pub fn firewall_rejected() {
    global().firewall_rejected.inc();
}

/// Counts the recovery events of `conn` (recoveries, reconnects, failed attempts, lost
/// consumers) and tracks whether it is recovering or blocked, until it closes. Must be called
/// inside a tokio runtime.
pub fn watch_connection(conn: &Connection) {
    let mut events = conn.events();
    tokio::spawn(async move {
        while let Some(event) = events.next().await {
            record_event(&event);
        }
    });
}

fn record_event(event: &ConnectionEvent) {
    let m = global();
    match event {
        ConnectionEvent::Blocked(_) => {
            m.blocked.set(1);
        }
        ConnectionEvent::Unblocked => {
            m.blocked.set(0);
        }
        ConnectionEvent::RecoveryStarted { .. } => {
            m.recoveries.inc();
            m.recovering.set(1);
        }
        ConnectionEvent::AttemptFailed { .. } => {
            m.reconnect_failures.inc();
        }
        ConnectionEvent::Reconnected { .. } => {
            m.reconnects.inc();
        }
        ConnectionEvent::ConsumerLost { .. } => {
            m.consumers_lost.inc();
        }
        ConnectionEvent::Recovered => {
            m.recovering.set(0);
            // A new connection starts unblocked.
            m.blocked.set(0);
        }
        _ => {}
    }
}

/// Where `--metrics` serves: `PORT` or `:PORT` (loopback), `HOST:PORT`, `[V6]:PORT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsAddr(pub SocketAddr);

impl FromStr for MetricsAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let port_only = s.strip_prefix(':').unwrap_or(s);
        if let Ok(port) = port_only.parse::<u16>() {
            return Ok(Self(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)));
        }
        s.parse::<SocketAddr>().map(Self).map_err(|_| {
            format!("{s:?} is not PORT, :PORT, HOST:PORT or [IPV6]:PORT (HOST an IP address)")
        })
    }
}

/// The `--metrics` option of every long-running program.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct MetricsOpts {
    /// (added) Serve Prometheus metrics at http://ADDR/metrics (`9100` or `:9100` means
    /// 127.0.0.1:9100). Off by default.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<MetricsAddr>,
}

impl MetricsOpts {
    /// Names the program in the metrics and, when `--metrics` was given, starts serving them.
    /// Returns the address served, or why it could not listen.
    pub async fn start(&self, program: &str) -> Result<Option<SocketAddr>, String> {
        set_program(program);
        match self.metrics {
            None => Ok(None),
            Some(MetricsAddr(addr)) => serve(addr).await.map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_addresses() {
        let lo = |p| MetricsAddr(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p));
        assert_eq!("9100".parse::<MetricsAddr>(), Ok(lo(9100)));
        assert_eq!(":9100".parse::<MetricsAddr>(), Ok(lo(9100)));
        assert_eq!(
            "0.0.0.0:9100".parse::<MetricsAddr>().unwrap().0,
            "0.0.0.0:9100".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            "[::1]:9100".parse::<MetricsAddr>().unwrap().0,
            "[::1]:9100".parse::<SocketAddr>().unwrap()
        );
        assert!("host.example:9100".parse::<MetricsAddr>().is_err());
        assert!("99999".parse::<MetricsAddr>().is_err());
        assert!("".parse::<MetricsAddr>().is_err());
    }

    #[test]
    fn rpc_requests_are_counted_timed_and_in_flight() {
        let service = "unit-test-rpc";
        let count = |outcome: &str| {
            let needle = format!(
                "prisem_rpc_requests_total{{service=\"{service}\",outcome=\"{outcome}\"}} "
            );
            global()
                .encode_text()
                .lines()
                .find_map(|l| l.strip_prefix(&needle).map(str::to_owned))
        };
        let a = rpc_request(service);
        let text = global().encode_text();
        assert!(text.contains(&format!("prisem_rpc_in_flight{{service=\"{service}\"}} 1")));
        a.finish(true);
        rpc_request(service).finish(false);
        drop(rpc_request(service));
        assert_eq!(count("ok").as_deref(), Some("1"));
        assert_eq!(count("error").as_deref(), Some("1"));
        assert_eq!(count("unanswered").as_deref(), Some("1"));
        let text = global().encode_text();
        assert!(text.contains(&format!("prisem_rpc_in_flight{{service=\"{service}\"}} 0")));
        assert!(text.contains(&format!(
            "prisem_rpc_request_duration_seconds_count{{service=\"{service}\"}} 3"
        )));
    }

    #[test]
    fn recovery_events_move_the_gauges() {
        record_event(&ConnectionEvent::RecoveryStarted {
            cause: "test".into(),
        });
        assert_eq!(global().recovering.get(), 1);
        record_event(&ConnectionEvent::Recovered);
        assert_eq!(global().recovering.get(), 0);
        assert!(global().recoveries.get() >= 1);
    }
}
