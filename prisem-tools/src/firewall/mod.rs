//! The two AMQP daemons around the `firewall` topic exchange: [`run_sshwatch`] turns sshd
//! failures from the `syslog` exchange into `block` messages, and [`run_blockd`] applies them
//! with one fixed command per action.

use std::time::Duration;

use amqp_client::options::{
    ConsumeOptions, ExchangeDeclareOptions, ExchangeKind, QueueDeclareOptions,
};
use amqp_client::{BasicProperties, Channel, Connection, Delivery};
use futures_util::StreamExt;

use crate::blockd::{
    nft_absent, nft_argv, nft_setup, parse_action, run_argv, Action, Template, Verb,
};
use crate::daemon::Shutdown;
use crate::sshwatch::{trusted_origin, WatchConfig, Watcher};

async fn topic(ch: &Channel, name: &str) -> Result<(), String> {
    ch.exchange_declare(
        name,
        ExchangeKind::Topic,
        ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
    )
    .await
    .map_err(|e| format!("cannot declare exchange {name:?}: {e}"))
}

fn header<'a>(d: &'a Delivery, name: &str) -> &'a str {
    d.properties()
        .headers
        .as_ref()
        .and_then(|h| h.get(name))
        .and_then(|v| v.as_str())
        .unwrap_or("")
}

/// The watcher's AMQP settings.
#[derive(Debug, Clone)]
pub struct SshwatchConfig {
    /// The window, threshold, ban time and allow-list.
    pub watch: WatchConfig,
    /// The syslog exchange (`syslog`).
    pub syslog_exchange: String,
    /// Routing keys bound (`sshd`, `sshd-session`).
    pub keys: Vec<String>,
    /// The firewall exchange (`firewall`).
    pub firewall_exchange: String,
    /// Count events from any origin, not only unix sockets and loopback peers.
    pub trust_all: bool,
    /// Publish `unblock` when a ban expires (for firewalls that cannot expire entries).
    pub send_unblock: bool,
}

impl Default for SshwatchConfig {
    fn default() -> Self {
        Self {
            watch: WatchConfig::default(),
            syslog_exchange: "syslog".into(),
            keys: vec!["sshd".into(), "sshd-session".into()],
            firewall_exchange: "firewall".into(),
            trust_all: false,
            send_unblock: false,
        }
    }
}

async fn publish_confirmed(
    conn: &Connection,
    ch: &Channel,
    exchange: &str,
    key: &str,
    body: &[u8],
) -> Result<(), String> {
    let props = BasicProperties::default().with_delivery_mode(2);
    loop {
        let r = match ch
            .publish(
                amqp_client::Publish::exchange(exchange).routing_key(key),
                &props,
                body,
            )
            .await
        {
            Ok(c) => c.await,
            Err(e) => Err(e),
        };
        if let Ok(c) = &r {
            crate::metrics::confirmation(c);
        }
        match r {
            Ok(c) if c.is_nack() => tracing::warn!("broker refused a {key} message; resending"),
            Ok(_) => return Ok(()),
            Err(e) if e.is_retryable() => conn
                .wait_for_recovery()
                .await
                .map_err(|e| format!("connection closed: {e}"))?,
            Err(e) => return Err(format!("cannot publish {key}: {e}")),
        }
    }
}

/// Runs the sshd watcher until `shutdown`.
pub async fn run_sshwatch(
    conn: &Connection,
    cfg: SshwatchConfig,
    shutdown: Shutdown,
    log: impl Fn(&str),
) -> Result<(), String> {
    let ch = conn.open_channel().await.map_err(|e| e.to_string())?;
    topic(&ch, &cfg.syslog_exchange).await?;
    topic(&ch, &cfg.firewall_exchange).await?;
    ch.confirm_select().await.map_err(|e| e.to_string())?;
    let q = ch
        .queue_declare(
            "",
            QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| format!("cannot declare the queue: {e}"))?;
    for k in &cfg.keys {
        ch.queue_bind(&q.name, &cfg.syslog_exchange, k, Default::default())
            .await
            .map_err(|e| format!("cannot bind {k:?}: {e}"))?;
    }
    let mut consumer = ch
        .basic_consume(&q.name, ConsumeOptions::default())
        .await
        .map_err(|e| format!("cannot consume: {e}"))?;
    crate::daemon::notify_ready();
    let mut watcher = Watcher::new(cfg.watch.clone());
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = shutdown.requested() => return Ok(()),
            _ = tick.tick() => {
                let expired = watcher.expired(chrono::Utc::now());
                if cfg.send_unblock {
                    for ip in expired {
                        let body = serde_json::json!({"action": "unblock", "ip": ip.to_string()});
                        publish_confirmed(conn, &ch, &cfg.firewall_exchange, "unblock", body.to_string().as_bytes()).await?;
                        crate::metrics::ban_issued("unblock");
                        log(&format!("unblock {ip}"));
                    }
                }
            }
            d = consumer.next() => {
                let d = match d {
                    Some(Ok(d)) => d,
                    Some(Err(e)) if e.is_retryable() => continue,
                    Some(Err(e)) => return Err(format!("consumer failed: {e}")),
                    None => return Err("consumer ended".into()),
                };
                let trusted = cfg.trust_all || trusted_origin(header(&d, "transport"), header(&d, "peer"));
                if trusted {
                    let body: serde_json::Value = serde_json::from_slice(&d.body).unwrap_or_default();
                    let message = body.get("message").and_then(|m| m.as_str()).unwrap_or("");
                    if let Some(b) = watcher.observe(message, chrono::Utc::now()) {
                        publish_confirmed(conn, &ch, &cfg.firewall_exchange, "block", b.to_json().to_string().as_bytes()).await?;
                        crate::metrics::ban_issued("block");
                        log(&format!("block {} ({}, {} failures)", b.ip, b.reason, b.count));
                    }
                }
                // A stale delivery (from before a recovery) is redelivered by the broker.
                let _ = d.ack();
            }
        }
    }
}

/// How blockd applies actions.
#[derive(Debug, Clone)]
pub enum Applier {
    /// Print each argv as a JSON line on standard output; run nothing.
    DryRun,
    /// nftables (table and sets created at start).
    Nft,
    /// Operator templates for block and unblock.
    Templates {
        /// The block command.
        block: Template,
        /// The unblock command.
        unblock: Template,
    },
}

impl Applier {
    fn argv(&self, a: &Action) -> Vec<String> {
        match self {
            Self::DryRun | Self::Nft => nft_argv(a),
            Self::Templates { block, unblock } => match a.verb {
                Verb::Block => block.argv(a),
                Verb::Unblock => unblock.argv(a),
            },
        }
    }
}

/// Runs blockd until `shutdown`: consumes `queue` bound to `block` and `unblock` on `exchange`,
/// applies each action and acks it only once applied (or rejected as invalid).
pub async fn run_blockd(
    conn: &Connection,
    exchange: &str,
    queue: &str,
    applier: Applier,
    shutdown: Shutdown,
    log: impl Fn(&str),
) -> Result<(), String> {
    if matches!(applier, Applier::Nft) {
        for argv in nft_setup() {
            run_argv(&argv)
                .await
                .map_err(|e| format!("{}: {e}", argv.join(" ")))?;
        }
    }
    let ch = conn.open_channel().await.map_err(|e| e.to_string())?;
    topic(&ch, exchange).await?;
    ch.queue_declare(
        queue,
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
    )
    .await
    .map_err(|e| format!("cannot declare queue {queue:?}: {e}"))?;
    for k in ["block", "unblock"] {
        ch.queue_bind(queue, exchange, k, Default::default())
            .await
            .map_err(|e| format!("cannot bind {k:?}: {e}"))?;
    }
    ch.basic_qos(1, Default::default())
        .await
        .map_err(|e| e.to_string())?;
    let mut consumer = ch
        .basic_consume(queue, ConsumeOptions::default())
        .await
        .map_err(|e| format!("cannot consume: {e}"))?;
    crate::daemon::notify_ready();
    loop {
        let d = tokio::select! {
            _ = shutdown.requested() => return Ok(()),
            d = consumer.next() => match d {
                Some(Ok(d)) => d,
                Some(Err(e)) if e.is_retryable() => continue,
                Some(Err(e)) => return Err(format!("consumer failed: {e}")),
                None => return Err("consumer ended".into()),
            },
        };
        let action = match parse_action(&d.body) {
            Ok(a) => a,
            Err(e) => {
                crate::metrics::firewall_rejected();
                log(&format!("rejected a firewall message: {e}"));
                let _ = d.reject(false);
                continue;
            }
        };
        let argv = applier.argv(&action);
        if matches!(applier, Applier::DryRun) {
            println!("{}", crate::blockd::dry_run_line(&action, &argv));
            crate::metrics::ban_applied(action.verb.name());
            let _ = d.ack();
            continue;
        }
        let mut delay = Duration::from_secs(1);
        loop {
            match run_argv(&argv).await {
                Ok(()) => break,
                Err(e) if action.verb == Verb::Unblock && nft_absent(&e) => break,
                Err(e) => {
                    crate::metrics::ban_failed();
                    log(&format!(
                        "{} failed ({e}); retrying in {delay:?}",
                        argv.join(" ")
                    ));
                    tokio::select! {
                        _ = shutdown.requested() => return Ok(()),
                        _ = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(Duration::from_secs(60));
                }
            }
        }
        crate::metrics::ban_applied(action.verb.name());
        log(&format!("{} {}", action.verb.name(), action.ip));
        let _ = d.ack();
    }
}
