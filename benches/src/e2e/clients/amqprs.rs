//! The scenarios through amqprs, and the parent's fixed helper (queues, pre-fill, RPC echo).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amqprs::callbacks::ChannelCallback;
use amqprs::channel::{
    BasicAckArguments, BasicCancelArguments, BasicConsumeArguments, BasicPublishArguments,
    BasicQosArguments, Channel, ConfirmSelectArguments, ConsumerMessage, QueueDeclareArguments,
    QueueDeleteArguments,
};
use amqprs::connection::{Connection, OpenConnectionArguments};
use amqprs::{Ack, BasicProperties, Cancel, CloseChannel, Nack, Return};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

use super::{ack_due, consumer_pause, fail, payload, plain_uri, BoxError, ConfirmTally, Outcome};
use super::{Scenario, WorkSpec, POLL_INTERVAL, REPLY_TO, RPC_WARMUP};
use crate::e2e::usage::Meter;

async fn connect(url: &str, name: &str) -> Result<Connection, BoxError> {
    let addr = plain_uri(url)?;
    let mut args = OpenConnectionArguments::new(
        &addr.host,
        addr.port,
        addr.username_or_default(),
        addr.password_or_default(),
    );
    args.virtual_host(&addr.vhost).connection_name(name);
    Ok(Connection::open(&args).await?)
}

pub(super) async fn run(spec: &WorkSpec) -> Result<Outcome, BoxError> {
    let conn = connect(&spec.url, "e2e-amqprs").await?;
    let channel = conn.open_channel(None).await?;
    let outcome = match spec.scenario {
        Scenario::Publish => publish(spec, &channel).await?,
        Scenario::Confirm => confirm(spec, &channel).await?,
        Scenario::Consume | Scenario::Memory => consume(spec, &channel).await?,
        Scenario::Rpc => rpc(spec, &channel).await?,
    };
    channel.close().await?;
    conn.close().await?;
    Ok(outcome)
}

async fn queue_depth(channel: &Channel, queue: &str) -> Result<u64, BoxError> {
    let ok = channel
        .queue_declare(QueueDeclareArguments::new(queue).passive(true).finish())
        .await?
        .ok_or_else(|| fail("queue.declare-ok missing"))?;
    Ok(u64::from(ok.1))
}

async fn wait_for_depth(channel: &Channel, queue: &str, count: u64) -> Result<u64, BoxError> {
    loop {
        let depth = queue_depth(channel, queue).await?;
        if depth >= count {
            return Ok(depth);
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

fn publish_args(queue: &str) -> BasicPublishArguments {
    BasicPublishArguments::new("", queue)
}

async fn publish(spec: &WorkSpec, channel: &Channel) -> Result<Outcome, BoxError> {
    let body = payload(spec.size);
    let args = publish_args(&spec.queue);
    let meter = Meter::start(spec.broker_pid)?;
    for _ in 0..spec.count {
        // The API takes the body by value, so each publish owns a copy.
        channel
            .basic_publish(BasicProperties::default(), body.clone(), args.clone())
            .await?;
    }
    let depth = wait_for_depth(channel, &spec.queue, spec.count).await?;
    let sample = meter.stop()?;
    Ok(Outcome::messages(sample, depth, spec))
}

/// Publisher confirms arrive through a channel callback; it counts them and wakes the
/// publisher when every tag is settled.
struct Confirms {
    tally: Arc<Mutex<ConfirmTally>>,
    done: Arc<Notify>,
}

impl Confirms {
    fn record(&self, tag: u64, multiple: bool, nack: bool) {
        if let Ok(mut t) = self.tally.lock() {
            t.record(tag, multiple, nack);
            if t.complete() {
                self.done.notify_one();
            }
        }
    }
}

#[async_trait::async_trait]
impl ChannelCallback for Confirms {
    async fn close(&mut self, _: &Channel, _: CloseChannel) -> Result<(), amqprs::error::Error> {
        // Wake the publisher so it sees an incomplete tally rather than waiting forever.
        self.done.notify_one();
        Ok(())
    }
    async fn cancel(&mut self, _: &Channel, _: Cancel) -> Result<(), amqprs::error::Error> {
        Ok(())
    }
    async fn flow(&mut self, _: &Channel, active: bool) -> Result<bool, amqprs::error::Error> {
        Ok(active)
    }
    async fn publish_ack(&mut self, _: &Channel, ack: Ack) {
        self.record(ack.delivery_tag(), ack.mutiple(), false);
    }
    async fn publish_nack(&mut self, _: &Channel, nack: Nack) {
        self.record(nack.delivery_tag(), nack.multiple(), true);
    }
    async fn publish_return(&mut self, _: &Channel, _: Return, _: BasicProperties, _: Vec<u8>) {}
}

async fn confirm(spec: &WorkSpec, channel: &Channel) -> Result<Outcome, BoxError> {
    let tally = Arc::new(Mutex::new(ConfirmTally::new(spec.count)));
    let done = Arc::new(Notify::new());
    channel
        .register_callback(Confirms {
            tally: tally.clone(),
            done: done.clone(),
        })
        .await?;
    channel
        .confirm_select(ConfirmSelectArguments::default())
        .await?;
    let body = payload(spec.size);
    let args = publish_args(&spec.queue);
    let meter = Meter::start(spec.broker_pid)?;
    for _ in 0..spec.count {
        channel
            .basic_publish(BasicProperties::default(), body.clone(), args.clone())
            .await?;
    }
    let settled = |t: &Arc<Mutex<ConfirmTally>>| t.lock().map(|t| t.complete()).unwrap_or(true);
    while !settled(&tally) {
        // `notify_one` stores a permit, so a wake-up between the check and the wait is kept.
        done.notified().await;
        if !channel.is_open() {
            return Err(fail("channel closed while waiting for confirms"));
        }
    }
    let sample = meter.stop()?;
    let (acked, nacked) = tally
        .lock()
        .map(|t| (t.acked(), t.nacked()))
        .map_err(|_| fail("confirm tally poisoned"))?;
    if nacked > 0 {
        return Err(fail(format!("{nacked} publishes were nacked")));
    }
    Ok(Outcome::messages(sample, acked, spec))
}

fn delivery_tag(msg: &ConsumerMessage) -> Result<u64, BoxError> {
    msg.deliver
        .as_ref()
        .map(|d| d.delivery_tag())
        .ok_or_else(|| fail("delivery without basic.deliver"))
}

async fn consume(spec: &WorkSpec, channel: &Channel) -> Result<Outcome, BoxError> {
    channel
        .basic_qos(BasicQosArguments::new(0, spec.prefetch, false))
        .await?;
    let pause = consumer_pause(spec);
    let meter = Meter::start(spec.broker_pid)?;
    let (_tag, mut rx) = channel
        .basic_consume_rx(BasicConsumeArguments::new(&spec.queue, "").finish())
        .await?;
    let mut received = 0u64;
    let mut bytes = 0u64;
    while received < spec.count {
        let msg = rx
            .recv()
            .await
            .ok_or_else(|| fail("consumer ended early"))?;
        received += 1;
        bytes += msg.content.as_ref().map_or(0, |c| c.len() as u64);
        if ack_due(received, spec) {
            channel
                .basic_ack(BasicAckArguments::new(delivery_tag(&msg)?, true))
                .await?;
        }
        if let Some(pause) = pause {
            tokio::time::sleep(pause).await;
        }
    }
    let sample = meter.stop()?;
    Ok(Outcome::moved(sample, received, bytes))
}

async fn rpc(spec: &WorkSpec, channel: &Channel) -> Result<Outcome, BoxError> {
    let (_tag, mut replies) = channel
        .basic_consume_rx(
            BasicConsumeArguments::new(REPLY_TO, "")
                .manual_ack(false)
                .finish(),
        )
        .await?;
    let body = payload(spec.size);
    let args = publish_args(&spec.queue);
    for id in 0..RPC_WARMUP {
        call(channel, &mut replies, &args, &body, u64::MAX - id).await?;
    }
    let mut latencies = Vec::with_capacity(spec.count as usize);
    let meter = Meter::start(spec.broker_pid)?;
    for id in 0..spec.count {
        latencies.push(call(channel, &mut replies, &args, &body, id).await?);
    }
    let sample = meter.stop()?;
    Ok(Outcome {
        sample,
        count: latencies.len() as u64,
        bytes: latencies.len() as u64 * spec.size as u64,
        latencies,
    })
}

/// One request through the echo queue and its reply on the direct reply-to consumer.
async fn call(
    channel: &Channel,
    replies: &mut mpsc::UnboundedReceiver<ConsumerMessage>,
    args: &BasicPublishArguments,
    body: &[u8],
    id: u64,
) -> Result<Duration, BoxError> {
    let started = Instant::now();
    let want = id.to_string();
    let props = BasicProperties::default()
        .with_reply_to(REPLY_TO)
        .with_correlation_id(&want)
        .finish();
    channel
        .basic_publish(props, body.to_vec(), args.clone())
        .await?;
    loop {
        let reply = replies
            .recv()
            .await
            .ok_or_else(|| fail("reply consumer ended"))?;
        let matches = reply
            .basic_properties
            .as_ref()
            .and_then(|p| p.correlation_id())
            .is_some_and(|c| *c == want);
        if matches {
            return Ok(started.elapsed());
        }
    }
}

/// The parent's side of every run, always through this one library so that what the measured
/// client talks to is the same for all: queue declare/delete, pre-filling, the RPC echo server.
pub(crate) struct Helper {
    conn: Connection,
    channel: Channel,
}

// The library's handles have no `Debug`; these say what they are.
impl std::fmt::Debug for Confirms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Confirms").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Helper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Helper").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Echo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Echo")
            .field("tag", &self.tag)
            .finish_non_exhaustive()
    }
}

/// A running echo server; [`Echo::stop`] ends it.
pub(crate) struct Echo {
    channel: Channel,
    tag: String,
    task: JoinHandle<Result<u64, BoxError>>,
}

impl Helper {
    /// Connects to the broker at `url`.
    pub(crate) async fn connect(url: &str) -> Result<Self, BoxError> {
        let conn = connect(url, "e2e-helper").await?;
        let channel = conn.open_channel(None).await?;
        Ok(Self { conn, channel })
    }

    /// The broker's product and version, as it announced them.
    pub(crate) fn broker(&self) -> String {
        let p = self.conn.server_properties();
        format!("{} {}", p.product(), p.version())
    }

    /// Declares a plain classic queue (not durable, not exclusive: the worker process uses it).
    pub(crate) async fn declare(&self, queue: &str) -> Result<(), BoxError> {
        self.channel
            .queue_declare(QueueDeclareArguments::new(queue))
            .await?;
        Ok(())
    }

    /// Deletes the queue and whatever it still holds.
    pub(crate) async fn delete(&self, queue: &str) -> Result<(), BoxError> {
        self.channel
            .queue_delete(QueueDeleteArguments::new(queue))
            .await?;
        Ok(())
    }

    /// Publishes `count` messages of `size` bytes and waits until the queue holds them.
    pub(crate) async fn prefill(
        &self,
        queue: &str,
        count: u64,
        size: usize,
    ) -> Result<(), BoxError> {
        let body = payload(size);
        let args = publish_args(queue);
        for _ in 0..count {
            self.channel
                .basic_publish(BasicProperties::default(), body.clone(), args.clone())
                .await?;
        }
        wait_for_depth(&self.channel, queue, count).await?;
        Ok(())
    }

    /// Starts echoing every message on `queue` back to its `reply_to` with its correlation id.
    pub(crate) async fn start_echo(&self, queue: &str) -> Result<Echo, BoxError> {
        let channel = self.conn.open_channel(None).await?;
        let (tag, mut rx) = channel
            .basic_consume_rx(
                BasicConsumeArguments::new(queue, "")
                    .manual_ack(false)
                    .finish(),
            )
            .await?;
        let replier = channel.clone();
        let task = tokio::spawn(async move {
            let mut served = 0u64;
            while let Some(msg) = rx.recv().await {
                let Some(props) = msg.basic_properties else {
                    continue;
                };
                let Some(reply_to) = props.reply_to() else {
                    continue;
                };
                let mut reply = BasicProperties::default();
                if let Some(id) = props.correlation_id() {
                    reply.with_correlation_id(id);
                }
                replier
                    .basic_publish(
                        reply.finish(),
                        msg.content.unwrap_or_default(),
                        BasicPublishArguments::new("", reply_to),
                    )
                    .await?;
                served += 1;
            }
            Ok(served)
        });
        Ok(Echo { channel, tag, task })
    }

    /// Closes the connection.
    pub(crate) async fn close(self) -> Result<(), BoxError> {
        self.channel.close().await?;
        self.conn.close().await?;
        Ok(())
    }
}

impl Echo {
    /// Cancels the consumer and returns how many requests were answered.
    pub(crate) async fn stop(self) -> Result<u64, BoxError> {
        self.channel
            .basic_cancel(BasicCancelArguments::new(&self.tag))
            .await?;
        let served = match tokio::time::timeout(Duration::from_secs(5), self.task).await {
            Ok(joined) => joined??,
            Err(_) => return Err(fail("echo server did not stop after basic.cancel")),
        };
        self.channel.close().await?;
        Ok(served)
    }
}
