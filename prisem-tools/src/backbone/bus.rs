//! The bus: the backbone's topology on the broker and the forwarders that move each client's
//! outbox to the topic exchange and its broadcast queue to the fanout.
//!
//! Per client `<id>-inbox`, `<id>-outbox` and `<id>-broadcast` (durable). The inbox is bound
//! to [`PUBLISH_EXCHANGE`] with the client's subscription and to [`BROADCAST_EXCHANGE`]. A
//! forwarder consumes the outbox and the broadcast queue on a channel in confirm mode,
//! republishes each message (to the topic exchange with the message's topic as routing key, or
//! to the fanout) and acknowledges the source only once the broker confirmed the copy; a nack
//! puts the source back. [`Bus::reconcile`] brings the running set of clients in line with the
//! register at any time, so clients added, changed or removed take effect without a restart.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use amqp_client::options::{
    BindOptions, ConsumeOptions, ExchangeDeclareOptions, ExchangeKind, QosOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use amqp_client::{Channel, Connection, Delivery};
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt as _;
use tokio::sync::Mutex;

use super::store::ClientRecord;
use crate::daemon::Shutdown;

/// The topic exchange published messages go through (the original's `soar-publish`).
pub const PUBLISH_EXCHANGE: &str = "soar-publish";
/// The fanout exchange broadcasts go through.
pub const BROADCAST_EXCHANGE: &str = "soar-broadcast";

/// Messages a forwarder may hold unconfirmed per source queue.
const PREFETCH: u16 = 64;

/// The name of a client's inbox.
pub fn inbox(client_id: &str) -> String {
    format!("{client_id}-inbox")
}
/// The name of a client's outbox.
pub fn outbox(client_id: &str) -> String {
    format!("{client_id}-outbox")
}
/// The name of a client's broadcast queue.
pub fn broadcast(client_id: &str) -> String {
    format!("{client_id}-broadcast")
}

#[derive(Debug)]
struct Worker {
    subscription: String,
    stop: Shutdown,
    task: tokio::task::JoinHandle<()>,
}

/// The running bus. Cloning shares it.
#[derive(Debug, Clone)]
pub struct Bus {
    conn: Connection,
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug)]
struct Inner {
    topology: Option<Channel>,
    workers: HashMap<String, Worker>,
}

impl Bus {
    /// Declares the two exchanges on `conn`; clients are added by [`reconcile`](Self::reconcile).
    pub async fn start(conn: Connection) -> amqp_client::Result<Self> {
        let bus = Self {
            conn,
            inner: Arc::new(Mutex::new(Inner {
                topology: None,
                workers: HashMap::new(),
            })),
        };
        let mut inner = bus.inner.lock().await;
        let ch = bus.topology_channel(&mut inner).await?;
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        ch.exchange_declare(PUBLISH_EXCHANGE, ExchangeKind::Topic, durable.clone())
            .await?;
        ch.exchange_declare(BROADCAST_EXCHANGE, ExchangeKind::Fanout, durable)
            .await?;
        drop(inner);
        Ok(bus)
    }

    /// The connection the bus runs on.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    async fn topology_channel(&self, inner: &mut Inner) -> amqp_client::Result<Channel> {
        if let Some(ch) = &inner.topology {
            if ch.is_open() {
                return Ok(ch.clone());
            }
        }
        let ch = self.conn.create_channel().await?;
        inner.topology = Some(ch.clone());
        Ok(ch)
    }

    /// Makes the broker's topology and the forwarders match `clients`: declares and binds the
    /// queues of new clients and starts their forwarders, rebinds changed subscriptions, stops
    /// the forwarders of removed clients and deletes their queues.
    pub async fn reconcile(&self, clients: &[ClientRecord]) -> amqp_client::Result<()> {
        let mut inner = self.inner.lock().await;
        let wanted: HashMap<&str, &str> = clients
            .iter()
            .map(|c| (c.client_id.as_str(), c.subscription.as_str()))
            .collect();
        let gone: Vec<String> = inner
            .workers
            .keys()
            .filter(|id| !wanted.contains_key(id.as_str()))
            .cloned()
            .collect();
        for id in gone {
            if let Some(w) = inner.workers.remove(&id) {
                w.stop.trigger();
                let _ = w.task.await;
            }
            let ch = self.topology_channel(&mut inner).await?;
            for q in [inbox(&id), outbox(&id), broadcast(&id)] {
                ch.queue_delete(&q, QueueDeleteOptions::default()).await?;
            }
            tracing::info!(client = ?id, "client removed from the bus");
        }
        for (id, sub) in wanted {
            let old = inner.workers.get(id).map(|w| w.subscription.clone());
            match old {
                Some(old) if old == sub => {}
                Some(old) => {
                    let ch = self.topology_channel(&mut inner).await?;
                    ch.queue_bind(&inbox(id), PUBLISH_EXCHANGE, sub, BindOptions::default())
                        .await?;
                    ch.queue_unbind(&inbox(id), PUBLISH_EXCHANGE, &old, BindOptions::default())
                        .await?;
                    if let Some(w) = inner.workers.get_mut(id) {
                        w.subscription = sub.to_owned();
                    }
                    tracing::info!(client = ?id, subscription = ?sub, "subscription changed");
                }
                None => {
                    let ch = self.topology_channel(&mut inner).await?;
                    declare_client(&ch, id, sub).await?;
                    let stop = Shutdown::new();
                    let task =
                        tokio::spawn(forward(self.conn.clone(), id.to_owned(), stop.clone()));
                    inner.workers.insert(
                        id.to_owned(),
                        Worker {
                            subscription: sub.to_owned(),
                            stop,
                            task,
                        },
                    );
                    tracing::info!(client = ?id, subscription = ?sub, "client added to the bus");
                }
            }
        }
        Ok(())
    }

    /// Stops every forwarder (the queues stay).
    pub async fn stop(&self) {
        let mut inner = self.inner.lock().await;
        for (_, w) in inner.workers.drain() {
            w.stop.trigger();
            let _ = w.task.await;
        }
    }
}

async fn declare_client(ch: &Channel, id: &str, subscription: &str) -> amqp_client::Result<()> {
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    for q in [inbox(id), outbox(id), broadcast(id)] {
        ch.queue_declare(&q, durable.clone()).await?;
    }
    ch.queue_bind(
        &inbox(id),
        PUBLISH_EXCHANGE,
        subscription,
        BindOptions::default(),
    )
    .await?;
    ch.queue_bind(&inbox(id), BROADCAST_EXCHANGE, "", BindOptions::default())
        .await?;
    Ok(())
}

/// Runs one client's forwarder until `stop`, starting over after any failure.
async fn forward(conn: Connection, id: String, stop: Shutdown) {
    loop {
        match forward_once(&conn, &id, &stop).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(client = ?id, "forwarder: {e}; starting again");
                tokio::select! {
                    _ = stop.requested() => return,
                    _ = async {
                        let _ = conn.wait_for_recovery().await;
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    } => {}
                }
            }
        }
    }
}

enum Source {
    Outbox,
    Broadcast,
}

async fn forward_once(conn: &Connection, id: &str, stop: &Shutdown) -> Result<(), String> {
    let s = |e: amqp_client::Error| e.to_string();
    let ch = conn.create_channel().await.map_err(s)?;
    ch.confirm_select().await.map_err(s)?;
    ch.basic_qos(PREFETCH, QosOptions::default())
        .await
        .map_err(s)?;
    let mut out = ch
        .basic_consume(&outbox(id), ConsumeOptions::default())
        .await
        .map_err(s)?;
    let mut bc = ch
        .basic_consume(&broadcast(id), ConsumeOptions::default())
        .await
        .map_err(s)?;
    // Copies published and waiting for the broker's verdict: up to the prefetch per source,
    // so one confirm round trip is not paid per message.
    let mut confirms = FuturesUnordered::new();
    loop {
        let (next, source) = tokio::select! {
            _ = stop.requested() => {
                let _ = ch.close().await;
                return Ok(());
            }
            Some(settled) = confirms.next(), if !confirms.is_empty() => {
                match settled {
                    Ok(()) => continue,
                    Err(e) if is_transient(&e) => continue,
                    Err(e) => {
                        let _ = ch.close().await;
                        return Err(e.to_string());
                    }
                }
            }
            d = out.next() => (d, Source::Outbox),
            d = bc.next() => (d, Source::Broadcast),
        };
        // A lost connection is not the end: the library restores this channel and its
        // consumers on the same streams, and the broker redelivers what was not acked.
        let failure = match next {
            None => "the consumer ended".to_owned(),
            Some(Err(e)) if e.is_retryable() => continue,
            Some(Err(e)) => e.to_string(),
            Some(Ok(d)) => match relay(&ch, d, source).await {
                Ok(settle) => {
                    confirms.push(settle);
                    continue;
                }
                Err(e) if e.is_retryable() => continue,
                Err(e) => e.to_string(),
            },
        };
        // Close before starting over, so no abandoned consumer keeps messages unacked.
        let _ = ch.close().await;
        return Err(failure);
    }
}

/// A failure that recovery takes care of: the connection went away (the broker redelivers the
/// source), or the source can no longer be settled because it did.
fn is_transient(e: &amqp_client::Error) -> bool {
    e.is_retryable() || matches!(e, amqp_client::Error::StaleDelivery { .. })
}

/// Republishes one delivery; the returned future settles the source by the broker's verdict on
/// the copy.
async fn relay(
    ch: &Channel,
    d: Delivery,
    source: Source,
) -> amqp_client::Result<impl std::future::Future<Output = amqp_client::Result<()>>> {
    let (exchange, key) = match source {
        Source::Outbox => (
            PUBLISH_EXCHANGE,
            d.properties()
                .kind
                .as_deref()
                .unwrap_or_default()
                .to_owned(),
        ),
        Source::Broadcast => (BROADCAST_EXCHANGE, String::new()),
    };
    let published = ch
        .publish(
            amqp_client::Publish::exchange(exchange).routing_key(&key),
            d.properties(),
            &d.body,
        )
        .await;
    let confirm = match published {
        Ok(confirm) => confirm,
        Err(e) if e.is_retryable() => return Err(e),
        Err(e) => {
            let _ = d.nack(true);
            return Err(e);
        }
    };
    Ok(async move {
        let verdict = confirm.await;
        if let Ok(c) = &verdict {
            crate::metrics::confirmation(c);
        }
        match verdict {
            Ok(c) if c.is_ack() => d.ack(),
            Ok(_) => d.nack(true),
            // The connection went away: the source is redelivered once it is back.
            Err(e) if e.is_retryable() => Err(e),
            Err(e) => {
                let _ = d.nack(true);
                Err(e)
            }
        }
    })
}
