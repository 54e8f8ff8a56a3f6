//! The serving end of PRISEM RPC: [`Server`] runs a [`Service`] on `<base>_<protocolver>`.
//!
//! Each of `workers` consumers has its own channel with prefetch 1 and manual acks. Per request:
//! parse the envelope, run the service (with a time limit, panics caught), publish the reply to
//! the default exchange with the request's `reply_to` and `correlation_id`, *then* ack. A
//! worker that dies before its ack leaves the request to be redelivered to another worker.
//!
//! Every bad request — too large, not JSON, no `appdata`, wrong types, bad base64, a service
//! error, panic or time-out — gets an error reply (retcode ≠ 0, the reason on stderr), is acked
//! and logged, and the worker goes on with the next one. A request without `reply_to` is logged
//! and acked: there is nobody to answer.
//!
//! On shutdown each worker stops consuming, finishes the request in hand, and returns; a
//! request delivered but not yet started goes back to the queue when the channel closes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use amqp_client::options::{ConsumeOptions, QosOptions, QueueDeclareOptions, QueueType};
use amqp_client::{BasicProperties, Channel, Connection, Delivery};
use futures_util::StreamExt;
use tokio::task::JoinSet;

use super::{queue_name, AppData, Envelope, Reply, Service};
use crate::daemon::Shutdown;
use crate::dimslog::{Level, Logger};
use crate::identity::Identity;

/// How a [`Server`] runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The queue base; the queue is `<queue_base>_0.5.5`.
    pub queue_base: String,
    /// Concurrent consumers, each on its own channel (at least 1).
    pub workers: usize,
    /// Requests larger than this many octets get an error reply (default 64 MiB).
    pub max_request_bytes: usize,
    /// A request still running after this long gets an error reply (default 5 minutes).
    pub request_timeout: Duration,
    /// The request queue's type: `None` (the originals' classic, non-durable queue), or a
    /// quorum queue (durable, replicated over a cluster's nodes).
    pub queue_type: Option<QueueType>,
}

impl ServerConfig {
    /// The defaults for `queue_base`: 1 worker, 64 MiB, 5 minutes.
    pub fn new(queue_base: &str) -> Self {
        Self {
            queue_base: queue_base.to_owned(),
            workers: 1,
            max_request_bytes: 64 << 20,
            request_timeout: Duration::from_secs(300),
            queue_type: None,
        }
    }

    /// How the request queue is declared.
    pub fn declare_options(&self) -> QueueDeclareOptions {
        match self.queue_type {
            None => QueueDeclareOptions::default(),
            Some(t) => QueueDeclareOptions {
                // Replicated queue types are always durable.
                durable: t != QueueType::Classic,
                queue_type: Some(t),
                ..Default::default()
            },
        }
    }

    /// The queue served.
    pub fn queue(&self) -> String {
        queue_name(&self.queue_base)
    }
}

/// What a server did, returned when it stops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Requests answered (or acked without `reply_to`).
    pub handled: u64,
    /// Of those, the ones answered with an error reply.
    pub errors: u64,
}

#[derive(Debug, Default)]
struct Counters {
    handled: AtomicU64,
    errors: AtomicU64,
}

/// Serves one [`Service`] on its queue.
#[derive(Debug)]
pub struct Server<S> {
    service: Arc<S>,
    config: ServerConfig,
    identity: Identity,
    logger: Arc<Logger>,
    counters: Arc<Counters>,
}

impl<S: Service> Server<S> {
    /// A server for `service` that logs through `logger` (whose identity also signs replies).
    pub fn new(service: S, config: ServerConfig, logger: Arc<Logger>) -> Self {
        Self {
            service: Arc::new(service),
            identity: logger.identity().clone(),
            config,
            logger,
            counters: Arc::default(),
        }
    }

    /// The service (shared with the workers).
    pub fn service(&self) -> &Arc<S> {
        &self.service
    }

    /// Requests handled so far.
    pub fn stats(&self) -> ServerStats {
        ServerStats {
            handled: self.counters.handled.load(Ordering::Relaxed),
            errors: self.counters.errors.load(Ordering::Relaxed),
        }
    }

    /// Runs the workers on `conn` until `shutdown` is requested (then finishes what is in hand
    /// and returns the stats) or a worker's channel or the connection fails (then stops the
    /// other workers the same way and returns that error).
    pub async fn run(
        &self,
        conn: &Connection,
        shutdown: &Shutdown,
    ) -> Result<ServerStats, amqp_client::Error> {
        let queue = self.config.queue();
        // Declared once up front so a refusal (e.g. access) is reported before any worker runs.
        let setup = conn.open_channel().await?;
        setup
            .queue_declare(&queue, self.config.declare_options())
            .await?;
        let _ = setup.close().await;

        let stop = Shutdown::new();
        let mut workers = JoinSet::new();
        for n in 0..self.config.workers.max(1) {
            let worker = Worker {
                n,
                queue: queue.clone(),
                service: Arc::clone(&self.service),
                config: self.config.clone(),
                identity: self.identity.clone(),
                logger: Arc::clone(&self.logger),
                counters: Arc::clone(&self.counters),
            };
            let channel = conn.open_channel().await?;
            let (outer, inner) = (shutdown.clone(), stop.clone());
            workers.spawn(async move { worker.run(channel, outer, inner).await });
        }
        self.logger.info(&format!(
            "serving {queue} with {} worker(s)",
            self.config.workers.max(1)
        ));
        crate::daemon::notify_ready();
        let mut first_error = None;
        while let Some(done) = workers.join_next().await {
            let failed = match done {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(join) => Some(amqp_client::Error::Config(format!("worker failed: {join}"))),
            };
            if let Some(e) = failed {
                self.logger
                    .error(&format!("worker stopped: {e}; stopping the others"));
                stop.trigger();
                first_error.get_or_insert(e);
            }
        }
        let stats = self.stats();
        self.logger.info(&format!(
            "stopped serving {queue}: {} request(s), {} error reply(ies)",
            stats.handled, stats.errors
        ));
        match first_error {
            Some(e) => Err(e),
            None => Ok(stats),
        }
    }
}

struct Worker<S> {
    n: usize,
    queue: String,
    service: Arc<S>,
    config: ServerConfig,
    identity: Identity,
    logger: Arc<Logger>,
    counters: Arc<Counters>,
}

impl<S: Service> Worker<S> {
    async fn run(
        self,
        channel: Channel,
        shutdown: Shutdown,
        stop: Shutdown,
    ) -> Result<(), amqp_client::Error> {
        channel.basic_qos(1, QosOptions::default()).await?;
        let mut requests = channel
            .basic_consume(&self.queue, ConsumeOptions::default())
            .await?;
        loop {
            let next = tokio::select! {
                biased;
                () = shutdown.requested() => None,
                () = stop.requested() => None,
                next = requests.next() => Some(next),
            };
            match next {
                None => break,
                Some(None) => {
                    return Err(amqp_client::Error::ConsumerCancelled(format!(
                        "the consumer of {} ended",
                        self.queue
                    )))
                }
                Some(Some(Err(e))) if e.is_retryable() => continue,
                Some(Some(Err(e))) => return Err(e),
                Some(Some(Ok(delivery))) => self.serve(&channel, delivery).await?,
            }
        }
        // Stop consuming; a request delivered but not started is requeued by the close.
        let _ = requests.cancel().await;
        drop(requests);
        let _ = channel.close().await;
        Ok(())
    }

    /// Answers one request, then acks it.
    async fn serve(&self, channel: &Channel, delivery: Delivery) -> Result<(), amqp_client::Error> {
        let started = Instant::now();
        let request = crate::metrics::rpc_request(&self.config.queue_base);
        let props = delivery.properties();
        let correlation = props.correlation_id.as_deref().unwrap_or("-").to_owned();
        let (reply, sender) = self.answer(&delivery.body).await;
        let retcode = reply.retcode;
        match props.reply_to.as_deref().filter(|r| !r.is_empty()) {
            None => self.logger.warning(&format!(
                "worker {}: request {correlation} from {sender} has no reply_to; acked without an answer",
                self.n
            )),
            Some(reply_to) => {
                let mut out = BasicProperties::default();
                out.correlation_id.clone_from(&props.correlation_id);
                let body = Envelope::new(&self.identity, reply.to_appdata()).to_json();
                match channel
                    .publish(amqp_client::Publish::to_queue(reply_to), &out, &body)
                    .await
                {
                    Ok(_) => {}
                    // A reply_to the broker cannot take (e.g. not a valid queue name): the
                    // request is still answered as far as we can, and acked below.
                    Err(amqp_client::Error::InvalidArgument(e)) => self.logger.warning(&format!(
                        "worker {}: cannot reply to {reply_to:?}: {e}",
                        self.n
                    )),
                    // The connection went away: the request was not acked, so the broker
                    // hands it out again once we (or another worker) are back.
                    Err(e) if e.is_retryable() => {
                        self.logger.warning(&format!(
                            "worker {}: request {correlation} not answered ({e}); it will be redelivered",
                            self.n
                        ));
                        return Ok(());
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        match delivery.ack() {
            Ok(()) => {}
            // Delivered before a reconnection: the broker redelivers it, and the reply just
            // sent makes the client's second answer one it ignores.
            Err(e @ amqp_client::Error::StaleDelivery { .. }) => {
                self.logger
                    .warning(&format!("worker {}: request {correlation}: {e}", self.n));
                return Ok(());
            }
            Err(e) if e.is_retryable() => return Ok(()),
            Err(e) => return Err(e),
        }
        self.counters.handled.fetch_add(1, Ordering::Relaxed);
        request.finish(retcode == 0);
        if retcode != 0 {
            self.counters.errors.fetch_add(1, Ordering::Relaxed);
        }
        let level = if retcode == 0 {
            Level::Info
        } else {
            Level::Warning
        };
        self.logger.log(
            level,
            &format!(
                "worker {}: request {correlation} from {sender} answered with retcode {retcode} in {} ms{}",
                self.n,
                started.elapsed().as_millis(),
                if retcode == 0 {
                    String::new()
                } else {
                    format!(": {}", String::from_utf8_lossy(&reply.stderr).trim_end())
                }
            ),
        );
        Ok(())
    }

    /// The reply to a request body, and who sent it (for the log).
    async fn answer(&self, body: &[u8]) -> (Reply, String) {
        if body.len() > self.config.max_request_bytes {
            let reply = Reply::error(
                1,
                format!(
                    "Error: request of {} bytes exceeds the server's limit of {} bytes",
                    body.len(),
                    self.config.max_request_bytes
                ),
            );
            return (reply, "?".into());
        }
        match Envelope::parse(body) {
            Err(e) => (Reply::error(1, format!("Error: {e}")), "?".into()),
            Ok(env) => {
                let sender = format!("{}@{} pid {}", env.name, env.hostname, env.pid);
                (self.call(env.appdata).await, sender)
            }
        }
    }

    /// Runs the service in its own task, so a panic or a time-out is an error reply.
    async fn call(&self, appdata: AppData) -> Reply {
        let service = Arc::clone(&self.service);
        let task = tokio::spawn(async move { service.handle(appdata).await });
        let abort = task.abort_handle();
        match tokio::time::timeout(self.config.request_timeout, task).await {
            Ok(Ok(Ok(reply))) => reply,
            Ok(Ok(Err(e))) => e.to_reply(),
            Ok(Err(join)) => {
                let what = if join.is_panic() {
                    panic_message(join.into_panic())
                } else {
                    "cancelled".to_owned()
                };
                self.logger
                    .error(&format!("worker {}: the service failed: {what}", self.n));
                Reply::error(
                    1,
                    "Error: internal error in the service while handling this request",
                )
            }
            Err(_) => {
                abort.abort();
                Reply::error(
                    1,
                    format!(
                        "Error: request exceeded the server's time limit of {} s",
                        self.config.request_timeout.as_secs_f64()
                    ),
                )
            }
        }
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => format!("panic: {s}"),
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(s) => format!("panic: {s}"),
            Err(_) => "panic".to_owned(),
        },
    }
}
