//! Automatic recovery: reconnecting after a failure and restoring what the application had.
//!
//! A supervisor task owns the connection's lifetime. It runs the driver on the first
//! transport; when the driver ends while the connection is [recovering], it connects again —
//! every endpoint once per cycle, in a random order (the node that just shut down last), with
//! a full-jitter exponential backoff between cycles — installs a fresh state machine, and
//! restores, in order:
//!
//! 1. every channel the application holds, with its old number, then its `basic.qos`
//!    (per-consumer and global), confirm mode and transaction mode;
//! 2. on a scratch channel: exchanges, queues (a server-named queue is declared with `""`
//!    and its new name is passed on to its bindings and consumers), queue bindings, exchange
//!    bindings. 405 (an exclusive queue still held by the dead connection) is retried with
//!    backoff; anything else is reported and skipped;
//! 3. consumers, with their tags and arguments, feeding the same [`crate::Consumer`] streams.
//!
//! A queue that answers 404 while being declared or checked is on a node that is down (a
//! classic queue's home node): it is restored in the background — declared, bound, and its
//! consumers started again — as soon as its node is back, while the connection goes on.
//!
//! Only then is the connection reported open again. A failure during any step starts the
//! cycle again. What was in flight when the connection was lost is settled when it is lost
//! (see [`crate::connection`]'s `Inner::lose`): confirms resolve as
//! [`Error::ConnectionLost`], deliveries not handed out are dropped, and deliveries handed out
//! belong to an earlier epoch and can no longer be acknowledged.
//!
//! [recovering]: crate::ConnectionState::Recovering

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use amqp_wire::{basic, exchange, queue, FieldTable, Method, ReplyCode, ShortStr};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::config::{ConnectionConfig, Endpoint, RecoveryPolicy};
use crate::connection::{ConnectionEvent, ConnectionState, ReplyFuture, Shared, Then, Waiter};
use crate::error::{Error, Initiator, Result};
use crate::proto::Reply;
use crate::transport::BoxIo;

// ----- the topology record ----------------------------------------------------------------------

/// A queue as recovery declares it again.
#[derive(Debug, Clone)]
pub(crate) struct RecordedQueue {
    /// Its current name.
    name: ShortStr,
    /// The declare that made it; `queue` is empty for a server-named queue.
    declare: queue::Declare,
}

/// The exchanges, queues and bindings this connection declared and did not delete: what
/// recovery declares again. It follows declare-ok, delete, unbind, and the end of the last
/// consumer of an auto-delete queue, so deleted things never come back.
#[derive(Debug, Clone, Default)]
pub(crate) struct Topology {
    exchanges: Vec<exchange::Declare>,
    queues: Vec<RecordedQueue>,
    queue_bindings: Vec<queue::Bind>,
    exchange_bindings: Vec<exchange::Bind>,
}

/// Names the broker owns (`amq.direct`, `amq.gen-…`): never declared again by name.
fn reserved(name: &str) -> bool {
    name.starts_with("amq.")
}

impl Topology {
    pub(crate) fn exchange_declared(&mut self, declare: exchange::Declare) {
        if declare.passive || declare.exchange.is_empty() || reserved(&declare.exchange) {
            return;
        }
        self.exchanges.retain(|e| e.exchange != declare.exchange);
        self.exchanges.push(declare);
    }

    pub(crate) fn exchange_deleted(&mut self, name: &str) {
        self.exchanges.retain(|e| e.exchange.as_str() != name);
        self.queue_bindings.retain(|b| b.exchange.as_str() != name);
        self.exchange_bindings
            .retain(|b| b.source.as_str() != name && b.destination.as_str() != name);
    }

    pub(crate) fn exchange_bound(&mut self, bind: exchange::Bind) {
        let same = |b: &exchange::Bind| {
            b.destination == bind.destination
                && b.source == bind.source
                && b.routing_key == bind.routing_key
                && b.arguments == bind.arguments
        };
        if !self.exchange_bindings.iter().any(same) {
            self.exchange_bindings.push(bind);
        }
    }

    pub(crate) fn exchange_unbound(
        &mut self,
        destination: &str,
        source: &str,
        routing_key: &str,
        arguments: &FieldTable,
    ) {
        self.exchange_bindings.retain(|b| {
            !(b.destination.as_str() == destination
                && b.source.as_str() == source
                && b.routing_key.as_str() == routing_key
                && &b.arguments == arguments)
        });
    }

    /// `actual` is the name the broker answered with.
    pub(crate) fn queue_declared(&mut self, declare: queue::Declare, actual: ShortStr) {
        if declare.passive || (!declare.queue.is_empty() && reserved(&declare.queue)) {
            return;
        }
        self.queues.retain(|q| q.name != actual);
        self.queues.push(RecordedQueue {
            name: actual,
            declare,
        });
    }

    pub(crate) fn queue_deleted(&mut self, name: &str) {
        self.queues.retain(|q| q.name.as_str() != name);
        self.queue_bindings.retain(|b| b.queue.as_str() != name);
    }

    pub(crate) fn queue_bound(&mut self, bind: queue::Bind) {
        let same = |b: &queue::Bind| {
            b.queue == bind.queue
                && b.exchange == bind.exchange
                && b.routing_key == bind.routing_key
                && b.arguments == bind.arguments
        };
        if !self.queue_bindings.iter().any(same) {
            self.queue_bindings.push(bind);
        }
    }

    pub(crate) fn queue_unbound(
        &mut self,
        queue: &str,
        exchange: &str,
        routing_key: &str,
        arguments: &FieldTable,
    ) {
        self.queue_bindings.retain(|b| {
            !(b.queue.as_str() == queue
                && b.exchange.as_str() == exchange
                && b.routing_key.as_str() == routing_key
                && &b.arguments == arguments)
        });
    }

    /// The last consumer of `queue` went away: an auto-delete queue is gone with it.
    pub(crate) fn auto_delete_unused(&mut self, queue: &str) {
        if self
            .queues
            .iter()
            .any(|q| q.name.as_str() == queue && q.declare.auto_delete)
        {
            self.queue_deleted(queue);
        }
    }

    /// A server-named queue came back as `new`.
    fn rename(&mut self, old: &ShortStr, new: &ShortStr) {
        for q in &mut self.queues {
            if &q.name == old {
                q.name = new.clone();
            }
        }
        for b in &mut self.queue_bindings {
            if &b.queue == old {
                b.queue = new.clone();
            }
        }
    }

    #[cfg(test)]
    fn queue_names(&self) -> Vec<&str> {
        self.queues.iter().map(|q| q.name.as_str()).collect()
    }
}

// ----- the supervisor ---------------------------------------------------------------------------

/// Runs the connection on `io`, and recovers it each time it is lost, until it is closed.
pub(crate) async fn supervise(
    shared: Arc<Shared>,
    cfg: ConnectionConfig,
    policy: RecoveryPolicy,
    io: BoxIo,
) {
    let mut driver = spawn_driver(&shared, io);
    let mut attempt: u32 = 0;
    let mut healthy_since = Instant::now();
    loop {
        let _ = (&mut driver).await;
        if !shared.lock("recovery::supervise").is_recovering() {
            return;
        }
        if healthy_since.elapsed() >= policy.reset_after {
            attempt = 0;
        }
        match recover(&shared, &cfg, &policy, &mut attempt).await {
            Some(d) => {
                driver = d;
                healthy_since = Instant::now();
            }
            None => return,
        }
    }
}

fn spawn_driver(shared: &Arc<Shared>, io: BoxIo) -> JoinHandle<()> {
    tokio::spawn(crate::driver::run(io, shared.clone()).in_current_span())
}

/// A random delay between zero and the attempt's exponential backoff ("full jitter").
pub(crate) fn backoff(policy: &RecoveryPolicy, attempt: u32) -> Duration {
    let cap = policy
        .initial_delay
        .saturating_mul(1u32 << attempt.min(20))
        .min(policy.max_delay);
    cap.mul_f64(fastrand::f64())
}

/// Whether the connection was closed for good (by the application, or recovery gave up).
fn is_closed(shared: &Shared) -> bool {
    *shared.lock("recovery::is_closed").state.borrow() == ConnectionState::Closed
}

/// Sleeps `delay`, or less if the application closes the connection meanwhile.
async fn sleep_unless_closed(shared: &Shared, delay: Duration) {
    tokio::select! {
        () = tokio::time::sleep(delay) => {}
        () = shared.cancel.notified() => {}
    }
}

/// Reconnects and restores; the new connection's driver, or `None` once closed for good.
async fn recover(
    shared: &Arc<Shared>,
    cfg: &ConnectionConfig,
    policy: &RecoveryPolicy,
    attempt: &mut u32,
) -> Option<JoinHandle<()>> {
    let mut cycles = 0u32;
    loop {
        let (cause, current) = {
            let inner = shared.lock("recovery::recover");
            (inner.lost_cause.clone(), inner.endpoint.clone())
        };
        let mut order = cfg.all_endpoints();
        fastrand::shuffle(&mut order);
        // A node that said it is shutting down is tried last.
        let shutting_down = cause
            .as_ref()
            .and_then(Error::close_reason)
            .is_some_and(|r| {
                r.initiator == Initiator::Server && r.code == ReplyCode::CONNECTION_FORCED
            });
        if let (true, Some(current)) = (shutting_down, current) {
            if let Some(i) = order.iter().position(|e| *e == current) {
                let e = order.remove(i);
                order.push(e);
            }
        }
        let mut refused = false;
        let count = order.len();
        for (i, endpoint) in order.iter().enumerate() {
            if is_closed(shared) {
                return None;
            }
            match attempt_one(shared, cfg, policy, endpoint).await {
                Ok(driver) => return Some(driver),
                Err(e) => {
                    refused |= matches!(e, Error::Authentication(_))
                        || e.reply_code() == Some(ReplyCode::ACCESS_REFUSED);
                    let next_delay = if i + 1 < count {
                        Duration::ZERO
                    } else if refused {
                        // A refused login is not fixed by hammering the broker.
                        policy.max_delay
                    } else {
                        backoff(policy, *attempt)
                    };
                    tracing::info!(%endpoint, error = %e, ?next_delay, "recovery attempt failed");
                    shared.with("recovery::recover", |inner| {
                        inner.emit(ConnectionEvent::AttemptFailed {
                            endpoint: endpoint.to_string(),
                            error: e.to_string(),
                            next_delay,
                        });
                    });
                    if i + 1 == count {
                        cycles += 1;
                        if policy.max_attempts.is_some_and(|max| cycles >= max) {
                            tracing::warn!(cycles, "recovery gave up");
                            shared.with("recovery::recover", |inner| inner.finish(e));
                            return None;
                        }
                        sleep_unless_closed(shared, next_delay).await;
                    }
                }
            }
        }
        *attempt = attempt.saturating_add(1);
    }
}

/// One connection attempt to `endpoint`: transport, handshake, restore.
async fn attempt_one(
    shared: &Arc<Shared>,
    cfg: &ConnectionConfig,
    policy: &RecoveryPolicy,
    endpoint: &Endpoint,
) -> Result<JoinHandle<()>> {
    let io = crate::transport::connect(cfg, endpoint, cfg.connect_timeout).await?;
    let mut attempt_cfg = cfg.clone();
    attempt_cfg.host.clone_from(&endpoint.host);
    attempt_cfg.port = endpoint.port;
    let rx = {
        let mut inner = shared.lock("recovery::attempt_one");
        if inner.final_error.is_some() {
            return Err(inner.connection_error());
        }
        inner.proto.renew(&attempt_cfg, Instant::now());
        inner.endpoint = Some(endpoint.clone());
        inner.opened_rx()
    };
    let driver = spawn_driver(shared, io);
    let restored = async {
        match rx.await {
            Ok(r) => r.map(drop)?,
            Err(_) => return Err(shared.lock("recovery::attempt_one").connection_error()),
        }
        tracing::info!(%endpoint, "reconnected; restoring channels and topology");
        shared.with("recovery::attempt_one", |inner| {
            inner.emit(ConnectionEvent::Reconnected {
                endpoint: endpoint.to_string(),
            })
        });
        restore(shared, policy).await
    }
    .await;
    let outcome = shared.with("recovery::attempt_one", |inner| match restored {
        Ok(()) if inner.proto.is_open() && inner.is_recovering() => {
            inner.set_state(ConnectionState::Open);
            inner.emit(ConnectionEvent::Recovered);
            inner.wake_writers();
            Ok(())
        }
        Ok(()) => Err(inner.connection_error()),
        Err(e) => {
            // Never leave a half-restored connection behind: drop it and start again.
            if !inner.proto.is_finished() && inner.final_error.is_none() {
                inner.proto.abort(e.clone());
                inner.dispatch();
            }
            Err(e)
        }
    });
    match outcome {
        Ok(()) => {
            tracing::info!(%endpoint, "connection recovered");
            Ok(driver)
        }
        Err(e) => {
            // The next attempt installs a new state machine: this driver must be gone first.
            let _ = driver.await;
            Err(e)
        }
    }
}

// ----- restoring --------------------------------------------------------------------------------

/// Sends a synchronous method on the new connection, bypassing the "recovering" gate the
/// application's calls go through.
///
/// With `losses`, only on the connection that counted that many losses: work started for one
/// connection never reaches the next one.
async fn call(shared: &Shared, channel: u16, method: Method, losses: Option<u64>) -> Result<Reply> {
    let name = method.name();
    let rx = shared.with("recovery::call", |inner| {
        if losses.is_some_and(|n| n != inner.losses || inner.is_recovering()) {
            return Err(Error::Recovering);
        }
        let (waiter, rx) = Waiter::new(Then::Nothing);
        inner
            .proto
            .call(channel, &method, waiter)
            .map_err(|e| inner.map_command_error(e, None))?;
        Ok::<_, Error>(rx)
    })?;
    ReplyFuture { rx, shared }.within_timeout(name).await
}

/// Opens channel `id` (or the lowest free one with `None`) on the new connection.
async fn open_channel(shared: &Shared, id: Option<u16>, losses: Option<u64>) -> Result<u16> {
    let (id, rx) = shared.with("recovery::open_channel", |inner| {
        if losses.is_some_and(|n| n != inner.losses || inner.is_recovering()) {
            return Err(Error::Recovering);
        }
        let (waiter, rx) = Waiter::new(Then::Nothing);
        let id = match id {
            Some(id) => inner.proto.open_channel_at(id, waiter).map(|()| id),
            None => inner.proto.open_channel(waiter),
        }
        .map_err(|e| inner.map_command_error(e, None))?;
        Ok::<_, Error>((id, rx))
    })?;
    ReplyFuture { rx, shared }
        .within_timeout("channel.open")
        .await?;
    Ok(id)
}

/// What became of one entity recovery declared again.
enum Outcome {
    /// The broker's answer.
    Done(Reply),
    /// 404: its queue (or exchange) is on a node that is down; not reported yet.
    Missing(String),
    /// Another error: reported and skipped.
    Skipped,
}

/// The channel topology is declared on: reopened after each channel error.
struct Scratch<'a> {
    shared: &'a Shared,
    policy: &'a RecoveryPolicy,
    id: u16,
    /// Set for work in the background: the connection it belongs to.
    losses: Option<u64>,
}

impl<'a> Scratch<'a> {
    async fn open(
        shared: &'a Shared,
        policy: &'a RecoveryPolicy,
        losses: Option<u64>,
    ) -> Result<Self> {
        let id = open_channel(shared, None, losses).await?;
        Ok(Self {
            shared,
            policy,
            id,
            losses,
        })
    }

    /// Runs `method`; 405 is retried with backoff, 404 left to the caller, other channel
    /// errors reported and skipped. A connection failure is an error.
    async fn entity(&mut self, what: &str, method: Method) -> Result<Outcome> {
        let mut tries = 0;
        loop {
            let reason = match call(self.shared, self.id, method.clone(), self.losses).await {
                Ok(reply) => return Ok(Outcome::Done(reply)),
                Err(Error::ChannelClosed(reason)) => reason,
                Err(e) => return Err(e),
            };
            self.id = open_channel(self.shared, None, self.losses).await?;
            if reason.code == ReplyCode::NOT_FOUND {
                return Ok(Outcome::Missing(reason.to_string()));
            }
            let retry =
                reason.code == ReplyCode::RESOURCE_LOCKED && tries < self.policy.entity_retries;
            let action = if retry { "retrying" } else { "skipped" };
            entity_failed(self.shared, what, reason.to_string(), action);
            if !retry {
                return Ok(Outcome::Skipped);
            }
            tokio::time::sleep(backoff(self.policy, tries).max(Duration::from_millis(50))).await;
            tries += 1;
        }
    }

    fn close(self) {
        self.shared.with("recovery::close", |inner| {
            let _ = inner.proto.close_channel(
                self.id,
                ReplyCode::REPLY_SUCCESS,
                "recovery done",
                Waiter::detached(Then::Nothing),
            );
        });
    }
}

fn entity_failed(shared: &Shared, what: &str, error: String, action: &'static str) {
    tracing::warn!(entity = what, %error, action, "restoring an entity failed");
    shared.with("recovery::entity_failed", |inner| {
        inner.emit(ConnectionEvent::EntityFailed {
            entity: what.to_owned(),
            error,
            action,
        })
    });
}

/// What one channel needs restored.
struct ChannelPlan {
    id: u16,
    qos: Vec<basic::Qos>,
    confirm: bool,
    tx: bool,
}

/// Restores channels, topology and consumers on the new connection, in that order.
async fn restore(shared: &Arc<Shared>, policy: &RecoveryPolicy) -> Result<()> {
    let plans: Vec<ChannelPlan> = shared
        .lock("recovery::restore")
        .proto
        .users()
        .map(|(_, e)| e)
        .filter(|e| !e.closing)
        .map(|e| ChannelPlan {
            id: e.core.id(),
            qos: e.qos.clone(),
            confirm: e.confirm,
            tx: e.tx,
        })
        .collect();
    for plan in plans {
        match restore_channel(shared, &plan).await {
            Ok(()) => {}
            // The broker closed this channel: its handles and consumers got the error.
            Err(Error::ChannelClosed(reason)) => {
                tracing::warn!(channel = plan.id, %reason, "channel could not be restored");
            }
            Err(e) => return Err(e),
        }
    }

    let mut scratch = Scratch::open(shared, policy, None).await?;
    let topology = shared.lock("recovery::restore").topology.clone();
    for declare in topology.exchanges {
        let what = format!("exchange {:?}", declare.exchange.as_str());
        if let Outcome::Missing(error) = scratch.entity(&what, declare.into()).await? {
            entity_failed(shared, &what, error, "skipped");
        }
    }
    // Queues on a node that is down: restored in the background with their bindings and
    // consumers.
    let mut later = BTreeSet::new();
    for q in topology.queues {
        let what = format!("queue {:?}", q.name.as_str());
        match scratch
            .entity(&what, Method::QueueDeclare(q.declare.clone()))
            .await?
        {
            Outcome::Done(Reply::Method(Method::QueueDeclareOk(ok))) if ok.queue != q.name => {
                rename_queue(shared, &q.name, &ok.queue);
            }
            Outcome::Missing(error) => {
                entity_failed(shared, &what, error, "retrying in the background");
                later.insert(q.name);
            }
            _ => {}
        }
    }
    let topology = shared.lock("recovery::restore").topology.clone();
    for bind in topology.queue_bindings {
        if later.contains(&bind.queue) {
            continue;
        }
        let what = describe_binding(&bind);
        if let Outcome::Missing(error) = scratch.entity(&what, Method::from(bind)).await? {
            entity_failed(shared, &what, error, "skipped");
        }
    }
    for bind in topology.exchange_bindings {
        let what = format!(
            "binding of exchange {:?} to {:?} ({:?})",
            bind.destination.as_str(),
            bind.source.as_str(),
            bind.routing_key.as_str()
        );
        if let Outcome::Missing(error) = scratch.entity(&what, Method::from(bind)).await? {
            entity_failed(shared, &what, error, "skipped");
        }
    }

    for (id, consume) in live_consumers(shared, None) {
        if later.contains(&consume.queue) {
            continue;
        }
        let tag = consume.consumer_tag.as_str().to_owned();
        // Checked on the scratch channel first, so that a missing queue (its node is down)
        // does not close the application's channel.
        let what = format!("queue {:?} of consumer {tag:?}", consume.queue.as_str());
        let check = queue::Declare {
            queue: consume.queue.clone(),
            passive: true,
            ..Default::default()
        };
        match scratch.entity(&what, Method::QueueDeclare(check)).await? {
            Outcome::Done(_) => restore_consumer(shared, id, consume, None).await?,
            Outcome::Missing(error) => {
                entity_failed(shared, &what, error, "retrying in the background");
                later.insert(consume.queue);
            }
            Outcome::Skipped => {
                consumer_lost(shared, id, &tag, format!("{what} is not available"));
            }
        }
    }
    scratch.close();
    let losses = shared.lock("recovery::restore").losses;
    for queue in later {
        let task = restore_later(shared.clone(), policy.clone(), queue, losses);
        tokio::spawn(task.in_current_span());
    }
    Ok(())
}

fn describe_binding(bind: &queue::Bind) -> String {
    format!(
        "binding of queue {:?} to {:?} ({:?})",
        bind.queue.as_str(),
        bind.exchange.as_str(),
        bind.routing_key.as_str()
    )
}

/// The consumers to restore, on channels the application still holds (of `queue` only, with
/// `Some`).
fn live_consumers(shared: &Shared, queue: Option<&ShortStr>) -> Vec<(u16, basic::Consume)> {
    shared
        .lock("recovery::live_consumers")
        .proto
        .users()
        .map(|(_, e)| e)
        .filter(|e| !e.closing)
        .flat_map(|e| {
            let id = e.core.id();
            e.consumers
                .iter()
                .filter(|c| !c.mailbox.is_gone())
                .filter(move |c| queue.is_none_or(|q| &c.consume.queue == q))
                .map(move |c| (id, c.consume.clone()))
        })
        .collect()
}

/// Sends a consumer's `basic.consume` again on its channel.
async fn restore_consumer(
    shared: &Shared,
    id: u16,
    consume: basic::Consume,
    losses: Option<u64>,
) -> Result<()> {
    let tag = consume.consumer_tag.as_str().to_owned();
    match call(shared, id, consume.into(), losses).await {
        Ok(_) => {
            tracing::debug!(channel = id, consumer_tag = %tag, "consumer restored");
            shared.with("recovery::restore_consumer", |inner| {
                inner.emit(ConnectionEvent::ConsumerRestored { tag })
            });
            Ok(())
        }
        Err(Error::ChannelClosed(reason)) => {
            // The channel's close ended the stream with its reason already.
            shared.with("recovery::restore_consumer", |inner| {
                inner.emit(ConnectionEvent::ConsumerLost {
                    tag,
                    reason: reason.to_string(),
                })
            });
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Restores a queue whose node was down — its declaration, bindings and consumers — once
/// the node is back, retrying with backoff. Ends when it is done, when the connection is
/// lost again (the next recovery starts over) or closed.
async fn restore_later(shared: Arc<Shared>, policy: RecoveryPolicy, queue: ShortStr, losses: u64) {
    let mut attempt = 0;
    loop {
        sleep_unless_closed(
            &shared,
            backoff(&policy, attempt).max(Duration::from_millis(100)),
        )
        .await;
        attempt = attempt.saturating_add(1);
        match restore_queue(&shared, &policy, &queue, losses).await {
            Ok(true) => return,
            Ok(false) => tracing::debug!(queue = %queue, "queue still missing; retrying"),
            Err(e) => {
                tracing::debug!(queue = %queue, error = %e, "restoring in the background stopped");
                return;
            }
        }
    }
}

/// One try of [`restore_later`]: `Ok(false)` while the queue is still missing.
async fn restore_queue(
    shared: &Shared,
    policy: &RecoveryPolicy,
    queue: &ShortStr,
    losses: u64,
) -> Result<bool> {
    let (declare, bindings) = {
        let inner = shared.lock("recovery::restore_queue");
        if inner.losses != losses || *inner.state.borrow() != ConnectionState::Open {
            return Err(Error::Recovering);
        }
        let declare = inner
            .topology
            .queues
            .iter()
            .find(|q| &q.name == queue && !q.declare.queue.is_empty())
            .map(|q| q.declare.clone());
        let bindings: Vec<queue::Bind> = inner
            .topology
            .queue_bindings
            .iter()
            .filter(|b| &b.queue == queue)
            .cloned()
            .collect();
        (declare, bindings)
    };
    let declare = declare.unwrap_or_else(|| queue::Declare {
        queue: queue.clone(),
        passive: true,
        ..Default::default()
    });
    let what = format!("queue {:?}", queue.as_str());
    let mut scratch = Scratch::open(shared, policy, Some(losses)).await?;
    let outcome = scratch.entity(&what, Method::QueueDeclare(declare)).await;
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            scratch.close();
            return Err(e);
        }
    };
    match outcome {
        Outcome::Missing(_) => {
            scratch.close();
            return Ok(false);
        }
        Outcome::Skipped => {
            scratch.close();
            for (id, consume) in live_consumers(shared, Some(queue)) {
                let tag = consume.consumer_tag.as_str();
                consumer_lost(shared, id, tag, format!("{what} is not available"));
            }
            return Ok(true);
        }
        Outcome::Done(_) => {}
    }
    tracing::info!(queue = %queue, "queue is back; restoring its bindings and consumers");
    for bind in bindings {
        let what = describe_binding(&bind);
        match scratch.entity(&what, Method::from(bind)).await {
            Ok(Outcome::Missing(error)) => entity_failed(shared, &what, error, "skipped"),
            Ok(_) => {}
            Err(e) => {
                scratch.close();
                return Err(e);
            }
        }
    }
    scratch.close();
    for (id, consume) in live_consumers(shared, Some(queue)) {
        restore_consumer(shared, id, consume, Some(losses)).await?;
    }
    Ok(true)
}

async fn restore_channel(shared: &Shared, plan: &ChannelPlan) -> Result<()> {
    open_channel(shared, Some(plan.id), None).await?;
    for qos in &plan.qos {
        call(shared, plan.id, Method::BasicQos(qos.clone()), None).await?;
    }
    if plan.confirm {
        let select = amqp_wire::confirm::Select { nowait: false };
        call(shared, plan.id, Method::ConfirmSelect(select), None).await?;
    }
    if plan.tx {
        let select = amqp_wire::tx::Select {};
        call(shared, plan.id, Method::TxSelect(select), None).await?;
    }
    Ok(())
}

/// A server-named queue came back as `new`: its record, bindings and consumers follow.
fn rename_queue(shared: &Shared, old: &ShortStr, new: &ShortStr) {
    tracing::info!(old = %old, new = %new, "server-named queue declared again under a new name");
    shared.with("recovery::rename_queue", |inner| {
        inner.topology.rename(old, new);
        for entry in inner.proto.users_mut() {
            for c in &mut entry.consumers {
                if &c.consume.queue == old {
                    c.consume.queue = new.clone();
                }
            }
        }
        inner.emit(ConnectionEvent::QueueRenamed {
            old: old.as_str().to_owned(),
            new: new.as_str().to_owned(),
        });
    });
}

/// Ends a consumer that could not be restored: its stream yields [`Error::ConsumerLost`].
fn consumer_lost(shared: &Shared, channel: u16, tag: &str, reason: String) {
    tracing::warn!(channel, consumer_tag = tag, %reason, "consumer lost");
    shared.with("recovery::consumer_lost", |inner| {
        if let Some(entry) = inner.proto.user_mut(channel) {
            if let Some(i) = entry.consumers.iter().position(|c| c.tag.as_str() == tag) {
                let c = entry.consumers.swap_remove(i);
                c.mailbox.close(Some(Error::ConsumerLost {
                    tag: tag.to_owned(),
                    reason: reason.clone(),
                }));
            }
        }
        inner.emit(ConnectionEvent::ConsumerLost {
            tag: tag.to_owned(),
            reason,
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declare(name: &str, auto_delete: bool) -> queue::Declare {
        queue::Declare {
            queue: ShortStr::new(name).unwrap(),
            auto_delete,
            ..Default::default()
        }
    }

    fn bind(queue: &str, exchange: &str) -> queue::Bind {
        queue::Bind {
            queue: ShortStr::new(queue).unwrap(),
            exchange: ShortStr::new(exchange).unwrap(),
            routing_key: ShortStr::from_static("k"),
            no_wait: false,
            arguments: FieldTable::new(),
        }
    }

    #[test]
    fn deleted_and_passive_things_are_not_recorded() {
        let mut t = Topology::default();
        t.queue_declared(declare("jobs", false), ShortStr::from_static("jobs"));
        t.queue_declared(
            queue::Declare {
                passive: true,
                ..declare("other", false)
            },
            ShortStr::from_static("other"),
        );
        t.queue_bound(bind("jobs", "events"));
        t.queue_bound(bind("jobs", "events"));
        assert_eq!(t.queue_bindings.len(), 1);
        t.queue_deleted("jobs");
        assert!(t.queue_names().is_empty());
        assert!(t.queue_bindings.is_empty());
    }

    #[test]
    fn server_named_queues_are_renamed_with_their_bindings() {
        let mut t = Topology::default();
        t.queue_declared(declare("", false), ShortStr::from_static("amq.gen-old"));
        t.queue_bound(bind("amq.gen-old", "events"));
        assert_eq!(t.queue_names(), ["amq.gen-old"]);
        assert!(t.queues[0].declare.queue.is_empty(), "redeclared as \"\"");
        t.rename(
            &ShortStr::from_static("amq.gen-old"),
            &ShortStr::from_static("amq.gen-new"),
        );
        assert_eq!(t.queue_names(), ["amq.gen-new"]);
        assert_eq!(t.queue_bindings[0].queue.as_str(), "amq.gen-new");
    }

    #[test]
    fn amq_names_and_auto_delete_rules() {
        let mut t = Topology::default();
        t.exchange_declared(exchange::Declare {
            exchange: ShortStr::from_static("amq.topic"),
            ..Default::default()
        });
        assert!(t.exchanges.is_empty());
        t.queue_declared(
            declare("amq.mine", false),
            ShortStr::from_static("amq.mine"),
        );
        assert!(t.queues.is_empty());
        t.queue_declared(declare("temp", true), ShortStr::from_static("temp"));
        t.queue_declared(declare("kept", false), ShortStr::from_static("kept"));
        t.auto_delete_unused("temp");
        t.auto_delete_unused("kept");
        assert_eq!(t.queue_names(), ["kept"]);
    }

    #[test]
    fn backoff_is_full_jitter_under_a_doubling_cap() {
        let policy = RecoveryPolicy::default()
            .with_delays(Duration::from_millis(100), Duration::from_secs(2));
        for attempt in 0..40 {
            let cap = Duration::from_millis(100)
                .saturating_mul(1 << attempt.min(20))
                .min(Duration::from_secs(2));
            for _ in 0..20 {
                assert!(backoff(&policy, attempt) <= cap);
            }
        }
        let spread: std::collections::HashSet<_> =
            (0..50).map(|_| backoff(&policy, 10).as_micros()).collect();
        assert!(spread.len() > 10, "delays are random");
    }
}
