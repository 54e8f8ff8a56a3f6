//! The publishing side of the bridge: publishing with confirms what the queue holds, and
//! republishing in order whatever the broker did not confirm.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::queue::{Origin, Queue};
use super::spool::Record;
use amqp_client::options::{ExchangeDeclareOptions, ExchangeKind, PublishOptions};
use amqp_client::{BasicProperties, Channel, Confirmation, Connection, PublishConfirm};

/// The counters of the bridge, shared by the listeners, the queue and the publisher.
///
/// At any moment, up to the updates in progress:
/// `received + replayed = published + buffered + spooled + dropped`
/// (`buffered` and `spooled` are the messages still waiting for the broker's confirm, in
/// memory and on disk). With the broker up and nothing arriving, `buffered` and `spooled`
/// fall to zero and every received line is either published or dropped.
#[derive(Debug, Default)]
pub struct Stats {
    /// Lines received (including truncated and unparsed ones).
    pub received: AtomicU64,
    /// Messages found in the spool at start (received by an earlier run).
    pub replayed: AtomicU64,
    /// Messages the broker confirmed: acked, or returned as unroutable.
    pub published: AtomicU64,
    /// Of those, the messages the broker returned as unroutable (no queue bound for their key).
    pub unrouted: AtomicU64,
    /// `basic.publish` sent (a message published again after a lost connection counts again).
    pub sent: AtomicU64,
    /// Messages in memory (queued or in flight), not yet confirmed.
    pub buffered: AtomicU64,
    /// Bytes of the in-memory buffer (queued, not counting those in flight).
    pub buffered_bytes: AtomicU64,
    /// Messages in the spool, not yet confirmed.
    pub spooled: AtomicU64,
    /// Bytes of the spool's segment files.
    pub spool_bytes: AtomicU64,
    /// Datagrams dropped because memory and spool were full (or too many were waiting to be
    /// parsed), spool records that could not be read back, and without a spool, messages not
    /// confirmed when the bridge stopped.
    pub dropped: AtomicU64,
    /// Datagrams the kernel dropped before the bridge read them (UDP receive buffers full, as
    /// Linux reports in /proc/net/udp; not part of `received`).
    pub kernel_drops: AtomicU64,
    /// Lines that could not be parsed (published under `unparsed`).
    pub unparsed: AtomicU64,
    /// Lines cut at the maximum size.
    pub truncated: AtomicU64,
}

impl Stats {
    /// The stats line: `received=N replayed=N published=N …`.
    pub fn line(&self) -> String {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "received={} replayed={} published={} unrouted={} sent={} buffered={} buffered_bytes={} spooled={} spool_bytes={} dropped={} kernel_drops={} unparsed={} truncated={}",
            g(&self.received),
            g(&self.replayed),
            g(&self.published),
            g(&self.unrouted),
            g(&self.sent),
            g(&self.buffered),
            g(&self.buffered_bytes),
            g(&self.spooled),
            g(&self.spool_bytes),
            g(&self.dropped),
            g(&self.kernel_drops),
            g(&self.unparsed),
            g(&self.truncated),
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
    rec: Record,
    origin: Origin,
    confirm: Option<PublishConfirm>,
}

/// How the publisher ended.
#[derive(Debug)]
pub struct Finished {
    /// Messages not confirmed by the broker, in order, with where they were taken from: those
    /// from memory are to be kept on disk (those from the spool are still there).
    pub unconfirmed: Vec<(Record, Origin)>,
    /// Why it ended early, if it did (the connection closed for good).
    pub error: Option<String>,
}

/// Publishes what `queue` holds, oldest first, to `exchange`, persistent and mandatory, with
/// confirms, keeping at most `window` messages unconfirmed, and tells the queue of each
/// confirm. Messages the broker did not confirm (the connection was lost, or a nack) are
/// published again, in their order. Ends when the queue is closed and everything was
/// confirmed, when `stop` turns true, or when the connection is closed for good; the
/// unconfirmed messages are handed back.
pub async fn run_publisher(
    conn: Connection,
    exchange: String,
    queue: Arc<Queue>,
    stats: Arc<Stats>,
    window: usize,
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
    let mut inflight: VecDeque<Slot> = VecDeque::new();
    let finish = |inflight: VecDeque<Slot>, error: Option<String>| Finished {
        unconfirmed: inflight.into_iter().map(|s| (s.rec, s.origin)).collect(),
        error,
    };
    let mut connected = true;
    let props = BasicProperties::default().with_delivery_mode(2);
    loop {
        // Take what the window has room for.
        while inflight.len() < window {
            match queue.take() {
                Some((rec, origin)) => inflight.push_back(Slot {
                    rec,
                    origin,
                    confirm: None,
                }),
                None => break,
            }
        }
        if connected {
            // Publish every slot not yet sent (they follow the sent ones).
            for slot in inflight.iter_mut().filter(|s| s.confirm.is_none()) {
                let msg = &slot.rec.msg;
                let props = props.clone().with_headers(msg.field_table());
                let opts = PublishOptions {
                    mandatory: true,
                    ..Default::default()
                };
                match channel
                    .publish(
                        amqp_client::Publish::exchange(&exchange)
                            .routing_key(&msg.routing_key)
                            .options(opts),
                        &props,
                        &msg.body,
                    )
                    .await
                {
                    Ok(c) => {
                        slot.confirm = Some(c);
                        stats.sent.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) if e.is_retryable() => {
                        tracing::warn!("publishing paused: {e}");
                        connected = false;
                        break;
                    }
                    Err(e) => {
                        return Ok(finish(inflight, Some(format!("cannot publish: {e}"))));
                    }
                }
            }
        }
        if inflight.is_empty() && queue.finished() {
            return Ok(finish(inflight, None));
        }
        let sent_front = inflight.front().is_some_and(|s| s.confirm.is_some());
        let has_room = inflight.len() < window;
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
                        if let Some(s) = inflight.pop_front() {
                            queue.confirmed(s.rec.id, s.origin);
                        }
                    }
                    Ok(Confirmation::Returned(r)) => {
                        if let Some(s) = inflight.pop_front() {
                            stats.unrouted.fetch_add(1, Ordering::Relaxed);
                            queue.confirmed(s.rec.id, s.origin);
                        }
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
                        return Ok(finish(inflight, Some(format!("publish failed: {e}"))));
                    }
                }
            }
            _ = stop.wait_for(|s| *s) => {
                return Ok(finish(inflight, None));
            }
            r = conn.wait_for_recovery(), if !connected => {
                match r {
                    Ok(()) => {
                        tracing::info!("broker back; republishing {} messages", inflight.len());
                        connected = true;
                    }
                    Err(e) => {
                        return Ok(finish(inflight, Some(format!("connection closed: {e}"))));
                    }
                }
            }
            _ = queue.wait_ready(), if has_room => {}
            _ = tokio::time::sleep(Duration::from_millis(200)), if !connected || has_room => {}
        }
    }
}
