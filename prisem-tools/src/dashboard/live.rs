//! The dashboard's live sources: the `logs` exchange, the `firewall` exchange (the block list),
//! and a poller of the broker's management API and our metrics endpoints.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amqp_client::options::{
    BindOptions, ConsumeOptions, ExchangeDeclareOptions, ExchangeKind, QueueDeclareOptions,
};
use amqp_client::{Channel, Connection, Consumer};
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::{broadcast, watch};

use super::DashboardConfig;
use crate::blockd::{parse_action, Verb};
use crate::daemon::Shutdown;
use crate::rpc::queue_name;

/// A PRISEM service the dashboard shows: its queue base, and where its server's metrics are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceTarget {
    /// The queue base (`anon`, `crosscor`, …).
    pub name: String,
    /// `http://host:port/metrics` of its server, if it serves metrics.
    pub metrics_url: Option<String>,
}

impl std::str::FromStr for ServiceTarget {
    type Err = String;

    /// `NAME` or `NAME=METRICS_URL`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, url) = match s.split_once('=') {
            Some((n, u)) => (n, Some(u)),
            None => (s, None),
        };
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(format!("{s:?}: expected NAME or NAME=METRICS_URL"));
        }
        if let Some(u) = url {
            if !u.starts_with("http://") {
                return Err(format!("{s:?}: the metrics URL must start with http://"));
            }
        }
        Ok(Self {
            name: name.to_owned(),
            metrics_url: url.map(str::to_owned),
        })
    }
}

/// Binds an exclusive server-named queue to `exchange` with `keys` and consumes it (no-ack).
async fn tap(
    conn: &Connection,
    exchange: &str,
    kind: ExchangeKind,
    keys: &[&str],
) -> Result<(Channel, Consumer), String> {
    let ch = conn.open_channel().await.map_err(|e| e.to_string())?;
    // The log fanout is not durable (as the originals declared it); the firewall topic is.
    let durable = matches!(kind, ExchangeKind::Topic);
    ch.exchange_declare(
        exchange,
        kind,
        ExchangeDeclareOptions {
            durable,
            ..Default::default()
        },
    )
    .await
    .map_err(|e| format!("cannot declare exchange {exchange:?}: {e}"))?;
    let q = ch
        .queue_declare(
            "",
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| e.to_string())?
        .name;
    for k in keys {
        ch.queue_bind(&q, exchange, k, BindOptions::default())
            .await
            .map_err(|e| format!("cannot bind to {exchange:?}: {e}"))?;
    }
    let consumer = ch
        .basic_consume(
            &q,
            ConsumeOptions {
                no_ack: true,
                exclusive: true,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok((ch, consumer))
}

type Blocks = Arc<Mutex<BTreeMap<String, Option<chrono::DateTime<chrono::Utc>>>>>;

/// Starts the feeds; returns the status snapshots (refreshed every `cfg.refresh`).
pub(super) async fn start(
    conn: &Connection,
    cfg: &DashboardConfig,
    logs: broadcast::Sender<Arc<str>>,
    shutdown: Shutdown,
) -> Result<watch::Receiver<Value>, String> {
    let (log_ch, mut log_consumer) =
        tap(conn, &cfg.log_exchange, ExchangeKind::Fanout, &[""]).await?;
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _keep = log_ch;
        loop {
            let d = tokio::select! {
                () = stop.requested() => return,
                d = log_consumer.next() => d,
            };
            match d {
                Some(Ok(d)) => {
                    for raw in String::from_utf8_lossy(&d.body).lines() {
                        // Nobody watching is fine.
                        let _ = logs.send(Arc::from(raw));
                    }
                }
                Some(Err(e)) if e.is_retryable() => continue,
                Some(Err(e)) => {
                    tracing::warn!("log feed stopped: {e}");
                    return;
                }
                None => return,
            }
        }
    });

    let blocks: Blocks = Arc::default();
    let (fw_ch, mut fw_consumer) = tap(
        conn,
        &cfg.firewall_exchange,
        ExchangeKind::Topic,
        &["block", "unblock"],
    )
    .await?;
    let stop = shutdown.clone();
    let fw_blocks = Arc::clone(&blocks);
    tokio::spawn(async move {
        let _keep = fw_ch;
        loop {
            let d = tokio::select! {
                () = stop.requested() => return,
                d = fw_consumer.next() => d,
            };
            match d {
                Some(Ok(d)) => {
                    let Ok(action) = parse_action(&d.body) else {
                        continue;
                    };
                    let mut map = fw_blocks
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    match action.verb {
                        Verb::Block => {
                            let ttl = i64::try_from(action.ttl).unwrap_or(i64::MAX);
                            let until = (ttl > 0)
                                .then(|| chrono::Utc::now() + chrono::Duration::seconds(ttl));
                            map.insert(action.ip.to_string(), until);
                        }
                        Verb::Unblock => {
                            map.remove(&action.ip.to_string());
                        }
                    }
                }
                Some(Err(e)) if e.is_retryable() => continue,
                Some(Err(e)) => {
                    tracing::warn!("firewall feed stopped: {e}");
                    return;
                }
                None => return,
            }
        }
    });

    let (tx, rx) = watch::channel(json!({}));
    let mut poller = Poller {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?,
        management: cfg.management_url.as_deref().map(Management::parse),
        vhost: cfg.vhost.clone(),
        services: cfg.services.clone(),
        syslog_metrics: cfg.syslog_metrics.clone(),
        blocks,
        previous: HashMap::new(),
    };
    let refresh = cfg.refresh;
    tokio::spawn(async move {
        loop {
            let snapshot = poller.snapshot().await;
            if tx.send(snapshot).is_err() {
                return;
            }
            tokio::select! {
                () = shutdown.requested() => return,
                () = tokio::time::sleep(refresh) => {}
            }
        }
    });
    Ok(rx)
}

/// The management API's base URL and credentials, from `http://user:password@host:port`.
#[derive(Debug, Clone)]
struct Management {
    base: String,
    user: String,
    password: String,
}

impl Management {
    fn parse(url: &str) -> Self {
        let url = url.trim_end_matches('/');
        let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
        let (auth, host) = rest.rsplit_once('@').unwrap_or(("guest:guest", rest));
        let (user, password) = auth.split_once(':').unwrap_or((auth, ""));
        let dec = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        Self {
            base: format!("{scheme}://{host}"),
            user: dec(user),
            password: dec(password),
        }
    }
}

struct Poller {
    http: reqwest::Client,
    management: Option<Management>,
    vhost: String,
    services: Vec<ServiceTarget>,
    syslog_metrics: Option<String>,
    blocks: Blocks,
    /// Per metrics URL: when, requests total, latency sum and count at the last poll.
    previous: HashMap<String, (Instant, f64, f64, f64)>,
}

/// The sum over samples of `metric` (every label set).
fn sum(scrape: &prometheus_parse::Scrape, metric: &str) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .fold(0.0, |a, b| a + b)
}

impl Poller {
    async fn scrape(&self, url: &str) -> Result<prometheus_parse::Scrape, String> {
        let text = self
            .http
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| e.to_string())?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
            .map_err(|e| format!("{url}: {e}"))
    }

    async fn queues(&self) -> Result<Vec<Value>, String> {
        let Some(m) = &self.management else {
            return Err("no management API configured".into());
        };
        let vhost =
            percent_encoding::utf8_percent_encode(&self.vhost, percent_encoding::NON_ALPHANUMERIC);
        let url = format!(
            "{}/api/queues/{vhost}?columns=name,messages,consumers",
            m.base
        );
        self.http
            .get(&url)
            .basic_auth(&m.user, Some(&m.password))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| format!("management API: {e}"))?
            .json::<Vec<Value>>()
            .await
            .map_err(|e| format!("management API: {e}"))
    }

    async fn snapshot(&mut self) -> Value {
        let (queues, queue_error) = match self.queues().await {
            Ok(q) => (q, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        let queue = |name: &str| queues.iter().find(|q| q["name"] == name);
        let mut services = Vec::new();
        for svc in self.services.clone() {
            let qname = queue_name(&svc.name);
            let q = queue(&qname);
            let mut row = serde_json::Map::new();
            row.insert("name".into(), json!(svc.name));
            row.insert("queue".into(), json!(qname));
            row.insert("messages".into(), json!(q.map(|q| q["messages"].clone())));
            row.insert("consumers".into(), json!(q.map(|q| q["consumers"].clone())));
            if let Some(url) = &svc.metrics_url {
                match self.scrape(url).await {
                    Ok(s) => {
                        let now = Instant::now();
                        let total = sum(&s, "prisem_rpc_requests_total");
                        let lat_sum = sum(&s, "prisem_rpc_request_duration_seconds_sum");
                        let lat_count = sum(&s, "prisem_rpc_request_duration_seconds_count");
                        row.insert("requests".into(), json!(total));
                        row.insert("in_flight".into(), json!(sum(&s, "prisem_rpc_in_flight")));
                        row.insert(
                            "errors".into(),
                            json!(s
                                .samples
                                .iter()
                                .filter(|x| x.metric == "prisem_rpc_requests_total"
                                    && x.labels.get("outcome") != Some("ok"))
                                .map(|x| match x.value {
                                    prometheus_parse::Value::Counter(v)
                                    | prometheus_parse::Value::Untyped(v) => v,
                                    _ => 0.0,
                                })
                                .fold(0.0, |a, b| a + b)),
                        );
                        if lat_count > 0.0 {
                            row.insert(
                                "mean_latency_ms".into(),
                                json!(1000.0 * lat_sum / lat_count),
                            );
                        }
                        if let Some((then, t0, s0, c0)) = self.previous.get(url) {
                            let secs = now.duration_since(*then).as_secs_f64();
                            if secs > 0.0 {
                                row.insert(
                                    "rate_per_s".into(),
                                    json!((total - t0).max(0.0) / secs),
                                );
                            }
                            if lat_count > *c0 {
                                row.insert(
                                    "recent_latency_ms".into(),
                                    json!(1000.0 * (lat_sum - s0) / (lat_count - c0)),
                                );
                            }
                        }
                        self.previous
                            .insert(url.clone(), (now, total, lat_sum, lat_count));
                    }
                    Err(e) => {
                        row.insert("metrics_error".into(), json!(e));
                    }
                }
            }
            services.push(Value::Object(row));
        }
        let syslog = match &self.syslog_metrics {
            None => Value::Null,
            Some(url) => match self.scrape(url).await {
                Ok(s) => {
                    let mut o = serde_json::Map::new();
                    for name in [
                        "received",
                        "replayed",
                        "sent",
                        "published",
                        "unrouted",
                        "unparsed",
                        "truncated",
                        "dropped",
                        "kernel_drops",
                    ] {
                        o.insert(
                            name.into(),
                            json!(sum(&s, &format!("prisem_syslog_{name}_total"))),
                        );
                    }
                    for name in ["buffered", "buffered_bytes", "spooled", "spool_bytes"] {
                        o.insert(
                            name.into(),
                            json!(sum(&s, &format!("prisem_syslog_{name}"))),
                        );
                    }
                    Value::Object(o)
                }
                Err(e) => json!({ "error": e }),
            },
        };
        let now = chrono::Utc::now();
        let blocks: Vec<Value> = {
            let mut map = self
                .blocks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            map.retain(|_, until| until.is_none_or(|u| u > now));
            map.iter()
                .map(|(ip, until)| {
                    json!({
                        "ip": ip,
                        "expires": until.map(|u| u.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                        "seconds_left": until.map(|u| (u - now).num_seconds()),
                    })
                })
                .collect()
        };
        let inboxes: Vec<Value> = queues
            .iter()
            .filter_map(|q| {
                let name = q["name"].as_str()?;
                let client = name.strip_suffix("-inbox")?;
                Some(json!({
                    "client": client,
                    "inbox": name,
                    "messages": q["messages"],
                    "consumers": q["consumers"],
                }))
            })
            .collect();
        json!({
            "time": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "services": services,
            "syslog": syslog,
            "blocks": blocks,
            "backbone": inboxes,
            "management_error": queue_error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_targets() {
        let t: ServiceTarget = "anon=http://127.0.0.1:9745/metrics".parse().unwrap();
        assert_eq!(t.name, "anon");
        assert_eq!(
            t.metrics_url.as_deref(),
            Some("http://127.0.0.1:9745/metrics")
        );
        let t: ServiceTarget = "crosscor".parse().unwrap();
        assert_eq!(t.metrics_url, None);
        assert!("anon=ftp://x".parse::<ServiceTarget>().is_err());
        assert!("=http://x".parse::<ServiceTarget>().is_err());
    }

    #[test]
    fn management_urls() {
        let m = Management::parse("http://ops:p%40ss@127.0.0.1:15672/");
        assert_eq!(m.base, "http://127.0.0.1:15672");
        assert_eq!(m.user, "ops");
        assert_eq!(m.password, "p@ss");
    }
}
