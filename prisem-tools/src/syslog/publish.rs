//! The publishing side of the bridge: an in-memory buffer bounded in bytes, publishing with
//! confirms, and republishing in order whatever the broker did not confirm.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use amqp_client::options::{ExchangeDeclareOptions, ExchangeKind, PublishOptions};
use amqp_client::{BasicProperties, Channel, Confirmation, Connection, PublishConfirm};
use tokio::sync::mpsc;

use super::parse::Outgoing;

/// The counters of the bridge, shared by the listeners and the publisher.
#[derive(Debug, Default)]
pub struct Stats {
    /// Lines received (including truncated and unparsed ones).
    pub received: AtomicU64,
    /// `basic.publish` sent (a message republished after a loss counts again).
    pub published: AtomicU64,
    /// Messages the broker confirmed (acked and routed).
    pub confirmed: AtomicU64,
    /// Messages the broker returned as unroutable (no queue bound for their key).
    pub unrouted: AtomicU64,
    /// Lines that could not be parsed (published under `unparsed`).
    pub unparsed: AtomicU64,
    /// Lines cut at the maximum size.
    pub truncated: AtomicU64,
    /// Datagrams dropped because the buffer was full.
    pub dropped: AtomicU64,
    /// Messages waiting in memory or in flight.
    pub pending: AtomicU64,
    /// Messages written to the spool at shutdown (this run).
    pub spooled: AtomicU64,
}

impl Stats {
    /// The stats line: `received=N published=N confirmed=N …`.
    pub fn line(&self) -> String {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "received={} published={} confirmed={} unrouted={} pending={} spooled={} unparsed={} truncated={} dropped={}",
            g(&self.received),
            g(&self.published),
            g(&self.confirmed),
            g(&self.unrouted),
            g(&self.pending),
            g(&self.spooled),
            g(&self.unparsed),
            g(&self.truncated),
            g(&self.dropped),
        )
    }
}

/// Declares the durable topic exchange `exchange`.
pub async fn declare_exchange(channel: &Channel, exchange: &str) -> amqp_client::Result<()> {
    channel
        .exchange_declare(
            exchange,
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
        )
        .await
}

struct Slot {
    msg: Outgoing,
    confirm: Option<PublishConfirm>,
}

/// Messages replayed from the spool before anything received: their segment files are
/// deleted once the broker confirmed all of them.
#[derive(Debug, Default)]
pub struct Replay {
    /// The messages, oldest first.
    pub messages: Vec<Outgoing>,
    /// The segment files they came from.
    pub files: Vec<std::path::PathBuf>,
}

/// How the publisher ended.
#[derive(Debug)]
pub struct Finished {
    /// Messages not confirmed by the broker (in order): to be kept on disk.
    pub leftover: Vec<Outgoing>,
    /// Replayed segment files not yet deleted (their messages are in `leftover`).
    pub replay_files: Vec<std::path::PathBuf>,
    /// Why it ended early, if it did (the connection closed for good).
    pub error: Option<String>,
}

/// Publishes the `replay` messages, then what arrives on `rx`, to `exchange`, persistent and
/// mandatory, with confirms, keeping at most `window` messages unconfirmed. Messages the broker
/// did not confirm (the connection was lost, or a nack) are published again, in their order.
/// Ends when `rx` is closed and everything was confirmed, when `stop` turns true, or when the
/// connection is closed for good; the unconfirmed messages are handed back.
pub async fn run_publisher(
    conn: Connection,
    exchange: String,
    mut rx: mpsc::Receiver<Outgoing>,
    stats: Arc<Stats>,
    window: usize,
    replay: Replay,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<Finished, String> {
    let channel = conn
        .open_channel()
        .await
        .map_err(|e| format!("cannot open a channel: {e}"))?;
    declare_exchange(&channel, &exchange)
        .await
        .map_err(|e| format!("cannot declare exchange {exchange:?}: {e}"))?;
    channel
        .confirm_select()
        .await
        .map_err(|e| format!("cannot enable publisher confirms: {e}"))?;
    let window = window.max(1);
    let mut replay_left = replay.messages.len();
    let mut replay_files = replay.files;
    let mut inflight: VecDeque<Slot> = replay
        .messages
        .into_iter()
        .map(|msg| Slot { msg, confirm: None })
        .collect();
    stats
        .pending
        .fetch_add(replay_left as u64, Ordering::Relaxed);
    let finish = |inflight: VecDeque<Slot>,
                  rx: &mut mpsc::Receiver<Outgoing>,
                  replay_files: Vec<std::path::PathBuf>,
                  error: Option<String>| {
        let mut leftover: Vec<Outgoing> = inflight.into_iter().map(|s| s.msg).collect();
        rx.close();
        while let Ok(m) = rx.try_recv() {
            leftover.push(m);
        }
        Finished {
            leftover,
            replay_files,
            error,
        }
    };
    let mut open = true;
    let mut connected = true;
    let props = BasicProperties::default().with_delivery_mode(2);
    loop {
        if connected {
            // Publish every slot not yet sent (they follow the sent ones), up to the window.
            let mut sent = inflight.iter().filter(|s| s.confirm.is_some()).count();
            for slot in inflight.iter_mut() {
                if sent >= window {
                    break;
                }
                if slot.confirm.is_some() {
                    continue;
                }
                let props = props.clone().with_headers(slot.msg.field_table());
                let opts = PublishOptions {
                    mandatory: true,
                    ..Default::default()
                };
                match channel
                    .basic_publish(
                        &exchange,
                        &slot.msg.routing_key,
                        opts,
                        &props,
                        &slot.msg.body,
                    )
                    .await
                {
                    Ok(c) => {
                        slot.confirm = Some(c);
                        sent += 1;
                        stats.published.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) if e.is_retryable() => {
                        tracing::warn!("publishing paused: {e}");
                        connected = false;
                        break;
                    }
                    Err(e) => {
                        let e = Some(format!("cannot publish: {e}"));
                        return Ok(finish(inflight, &mut rx, replay_files, e));
                    }
                }
            }
        }
        if replay_left == 0 && !replay_files.is_empty() {
            for f in replay_files.drain(..) {
                if let Err(e) = std::fs::remove_file(&f) {
                    tracing::warn!("cannot remove replayed spool segment {}: {e}", f.display());
                }
            }
        }
        if !open && inflight.is_empty() {
            return Ok(finish(inflight, &mut rx, replay_files, None));
        }
        let sent_front = inflight.front().is_some_and(|s| s.confirm.is_some());
        let has_room = open && inflight.len() < window;
        tokio::select! {
            biased;
            verdict = async {
                match inflight.front_mut().and_then(|s| s.confirm.as_mut()) {
                    Some(c) => c.await,
                    None => std::future::pending().await,
                }
            }, if sent_front => {
                if let Ok(c) = &verdict { crate::metrics::confirmation(c) }
                match verdict {
                    Ok(Confirmation::Ack) | Ok(Confirmation::NotRequested) => {
                        inflight.pop_front();
                        replay_left = replay_left.saturating_sub(1);
                        stats.confirmed.fetch_add(1, Ordering::Relaxed);
                        stats.pending.fetch_sub(1, Ordering::Relaxed);
                    }
                    Ok(Confirmation::Returned(r)) => {
                        inflight.pop_front();
                        replay_left = replay_left.saturating_sub(1);
                        stats.unrouted.fetch_add(1, Ordering::Relaxed);
                        stats.pending.fetch_sub(1, Ordering::Relaxed);
                        tracing::debug!("unroutable: no queue bound for {:?}", r.routing_key);
                    }
                    Ok(_) => {
                        // A nack: the broker lost it; send it and everything after it again.
                        tracing::warn!("the broker refused a message; publishing it again");
                        for s in inflight.iter_mut() {
                            s.confirm = None;
                        }
                    }
                    Err(e) if e.is_retryable() => {
                        tracing::warn!("connection lost ({e}); republishing unconfirmed messages after recovery");
                        for s in inflight.iter_mut() {
                            s.confirm = None;
                        }
                        connected = false;
                    }
                    Err(e) => {
                        let e = Some(format!("publish failed: {e}"));
                        return Ok(finish(inflight, &mut rx, replay_files, e));
                    }
                }
            }
            _ = stop.wait_for(|s| *s) => {
                return Ok(finish(inflight, &mut rx, replay_files, None));
            }
            r = conn.wait_for_recovery(), if !connected => {
                match r {
                    Ok(()) => {
                        tracing::info!("broker back; republishing {} messages", inflight.len());
                        connected = true;
                    }
                    Err(e) => {
                        let e = Some(format!("connection closed: {e}"));
                        return Ok(finish(inflight, &mut rx, replay_files, e));
                    }
                }
            }
            msg = rx.recv(), if has_room => match msg {
                Some(m) => inflight.push_back(Slot { msg: m, confirm: None }),
                None => open = false,
            },
            _ = tokio::time::sleep(Duration::from_millis(200)), if !connected => {}
        }
    }
}
