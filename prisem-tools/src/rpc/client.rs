//! The calling end of PRISEM RPC.
//!
//! A [`Client`] declares an exclusive, server-named reply queue and consumes it with no-ack; its
//! channel is in confirm mode. Each call gets a fresh correlation id, is published *mandatory*
//! to the service's queue, and waits for the reply with that id (replies to other ids are
//! ignored). Many calls may be in flight on one client.
//!
//! Before the first call to a queue the client checks that the queue exists and has a consumer:
//! a request to a queue nobody serves fails at once with [`CallError::NoServer`] instead of
//! waiting out its time limit (the mandatory flag covers a queue deleted later).

use core::fmt;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use amqp_client::options::{ConsumeOptions, PublishOptions, QueueDeclareOptions};
use amqp_client::{BasicProperties, Channel, Connection, ReplyCode, ShortStr};
use futures_util::StreamExt;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{AppData, Envelope, Reply};
use crate::identity::Identity;

/// Exit status of a client whose call timed out.
pub const EXIT_TIMEOUT: u8 = 124;
/// Exit status of a client whose request no server is there to take.
pub const EXIT_NO_SERVER: u8 = 69;
/// Exit status of a client that could not connect or lost its connection.
pub const EXIT_CONNECTION: u8 = 1;

/// Why a call got no usable reply.
#[derive(Debug, Clone)]
pub enum CallError {
    /// The connection or channel failed (or the broker refused something).
    Amqp(amqp_client::Error),
    /// No server consumes the queue (it does not exist, or has no consumer).
    NoServer {
        /// The queue.
        queue: String,
    },
    /// The broker did not accept the request (a publisher nack).
    Nacked {
        /// The queue.
        queue: String,
    },
    /// No reply within the time limit.
    Timeout {
        /// The queue.
        queue: String,
        /// The limit.
        after: Duration,
    },
    /// A reply came but is not a PRISEM reply envelope.
    BadReply(String),
    /// The client stopped (its reply consumer ended).
    Closed,
}

impl CallError {
    /// The exit status a command-line client ends with for this error.
    pub fn exit_status(&self) -> u8 {
        match self {
            Self::Timeout { .. } => EXIT_TIMEOUT,
            Self::NoServer { .. } => EXIT_NO_SERVER,
            _ => EXIT_CONNECTION,
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Amqp(e) => write!(f, "{e}"),
            Self::NoServer { queue } => write!(f, "no server is serving {queue}"),
            Self::Nacked { queue } => write!(f, "the broker refused the request to {queue}"),
            Self::Timeout { queue, after } => write!(
                f,
                "no reply from {queue} within {} s (is the server overloaded or stuck?)",
                after.as_secs_f64()
            ),
            Self::BadReply(e) => write!(f, "unusable reply: {e}"),
            Self::Closed => f.write_str("the client's reply consumer stopped"),
        }
    }
}

impl std::error::Error for CallError {}

impl From<amqp_client::Error> for CallError {
    fn from(e: amqp_client::Error) -> Self {
        Self::Amqp(e)
    }
}

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Result<Envelope, String>>>>>;

/// Calls PRISEM services.
#[derive(Debug)]
pub struct Client {
    conn: Connection,
    channel: Channel,
    /// The reply queue's name; a recovered connection redeclares it under a new one.
    reply_queue: Arc<Mutex<String>>,
    exchange: String,
    identity: Identity,
    pending: Pending,
    served: Mutex<HashSet<String>>,
    reader: JoinHandle<()>,
    renames: JoinHandle<()>,
}

impl Client {
    /// Sets up the reply queue on a channel of its own; requests go to `exchange` (PRISEM's
    /// `RPC_RPCEXCHANGE`, normally `""`).
    pub async fn new(
        conn: &Connection,
        identity: Identity,
        exchange: &str,
    ) -> Result<Self, amqp_client::Error> {
        let channel = conn.open_channel().await?;
        channel.confirm_select().await?;
        let reply_queue = channel
            .queue_declare(
                "",
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
            )
            .await?
            .name;
        let consumer = channel
            .basic_consume(
                &reply_queue,
                ConsumeOptions {
                    no_ack: true,
                    exclusive: true,
                    ..Default::default()
                },
            )
            .await?;
        let pending: Pending = Arc::default();
        let reader = tokio::spawn(read_replies(consumer, Arc::clone(&pending)));
        let reply_queue = Arc::new(Mutex::new(reply_queue));
        let renames = tokio::spawn(follow_renames(conn.events(), Arc::clone(&reply_queue)));
        Ok(Self {
            conn: conn.clone(),
            channel,
            reply_queue,
            exchange: exchange.to_owned(),
            identity,
            pending,
            served: Mutex::default(),
            reader,
            renames,
        })
    }

    /// The server-named queue replies come to.
    pub fn reply_queue(&self) -> String {
        lock(&self.reply_queue).clone()
    }

    /// Calls the service on `queue` (the full name, e.g. `anon_0.5.5`) and returns its reply.
    pub async fn call(
        &self,
        queue: &str,
        appdata: AppData,
        timeout: Duration,
    ) -> Result<Reply, CallError> {
        let envelope = self.call_envelope(queue, appdata, timeout).await?;
        Reply::from_appdata(&envelope.appdata).map_err(|e| CallError::BadReply(e.to_string()))
    }

    /// Like [`call`](Self::call), returning the whole reply envelope.
    pub async fn call_envelope(
        &self,
        queue: &str,
        appdata: AppData,
        timeout: Duration,
    ) -> Result<Envelope, CallError> {
        let body = Envelope::new(&self.identity, appdata).to_json();
        self.call_raw(queue, &body, timeout).await
    }

    /// Sends `body` as is (tests use it to send malformed requests) and waits for the reply.
    pub async fn call_raw(
        &self,
        queue: &str,
        body: &[u8],
        timeout: Duration,
    ) -> Result<Envelope, CallError> {
        self.check_served(queue).await?;
        let id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id.clone(), tx);
        let _forget = Forget {
            pending: &self.pending,
            id: &id,
        };
        let correlation_id = ShortStr::new(&id).map_err(amqp_client::Error::InvalidArgument)?;
        let exchange = self.exchange.as_str();
        let work = async {
            let confirmation = loop {
                let reply_to = ShortStr::new(&self.reply_queue())
                    .map_err(amqp_client::Error::InvalidArgument)?;
                let props = BasicProperties::default()
                    .with_reply_to(reply_to)
                    .with_correlation_id(correlation_id.clone());
                let options = PublishOptions {
                    mandatory: true,
                    ..Default::default()
                };
                let sent = match self
                    .channel
                    .publish(
                        amqp_client::Publish::exchange(exchange)
                            .routing_key(queue)
                            .options(options),
                        &props,
                        body,
                    )
                    .await
                {
                    Ok(confirm) => confirm.await,
                    Err(e) => Err(e),
                };
                match sent {
                    Ok(c) => break c,
                    // Lost with the connection: send it again once recovered (the caller's
                    // time limit still applies).
                    Err(e) if e.is_retryable() => {
                        tracing::debug!("request to {queue} lost ({e}); resending after recovery");
                        self.conn.wait_for_recovery().await?;
                    }
                    Err(e) => return Err(e.into()),
                }
            };
            if confirmation.returned().is_some() {
                lock(&self.served).remove(queue);
                return Err(CallError::NoServer {
                    queue: queue.to_owned(),
                });
            }
            if !confirmation.is_ack() {
                return Err(CallError::Nacked {
                    queue: queue.to_owned(),
                });
            }
            match rx.await {
                Ok(Ok(envelope)) => Ok(envelope),
                Ok(Err(bad)) => Err(CallError::BadReply(bad)),
                Err(_) => Err(CallError::Closed),
            }
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(CallError::Timeout {
                queue: queue.to_owned(),
                after: timeout,
            }),
        }
    }

    /// Checks once per queue that it exists and has a consumer (on a throwaway channel, since a
    /// passive declare of a missing queue closes its channel).
    async fn check_served(&self, queue: &str) -> Result<(), CallError> {
        if lock(&self.served).contains(queue) {
            return Ok(());
        }
        let probe = self.conn.open_channel().await?;
        let info = probe
            .queue_declare(
                queue,
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
            )
            .await;
        let no_server = CallError::NoServer {
            queue: queue.to_owned(),
        };
        match info {
            Ok(info) => {
                let _ = probe.close().await;
                if info.consumer_count == 0 {
                    return Err(no_server);
                }
            }
            Err(e) if e.reply_code() == Some(ReplyCode::NOT_FOUND) => return Err(no_server),
            // Another connection's exclusive queue: not a PRISEM server's, but the mandatory
            // publish and the time limit still decide.
            Err(e) if e.reply_code() == Some(ReplyCode::RESOURCE_LOCKED) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        lock(&self.served).insert(queue.to_owned());
        Ok(())
    }

    /// Closes the client's channel (the reply queue goes with it).
    pub async fn close(self) {
        let _ = self.channel.close().await;
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.reader.abort();
        self.renames.abort();
    }
}

/// Removes a call's entry when the call ends, however it ends.
struct Forget<'a> {
    pending: &'a Pending,
    id: &'a str,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        lock(self.pending).remove(self.id);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Keeps the reply queue's name current across recoveries.
async fn follow_renames(mut events: amqp_client::ConnectionEvents, name: Arc<Mutex<String>>) {
    while let Some(event) = events.next().await {
        if let amqp_client::ConnectionEvent::QueueRenamed { old, new } = event {
            let mut current = lock(&name);
            if *current == old {
                *current = new;
            }
        }
    }
}

async fn read_replies(mut consumer: amqp_client::Consumer, pending: Pending) {
    while let Some(item) = consumer.next().await {
        let delivery = match item {
            Ok(d) => d,
            Err(e) if e.is_retryable() => continue,
            Err(_) => break,
        };
        let Some(id) = delivery.properties().correlation_id.as_deref() else {
            tracing::debug!("reply without correlation id ignored");
            continue;
        };
        let Some(waiter) = lock(&pending).remove(id) else {
            tracing::debug!("reply to {id}, which no call waits for, ignored");
            continue;
        };
        let _ = waiter.send(Envelope::parse(&delivery.body).map_err(|e| e.to_string()));
    }
    // The consumer ended: every waiting call learns it (their senders drop).
    lock(&pending).clear();
}
