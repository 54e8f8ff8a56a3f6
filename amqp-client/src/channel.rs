//! Channels: every AMQP method an application sends, with typed options.

use std::future::poll_fn;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};

use amqp_wire::{
    basic, channel, confirm, domains, exchange, queue, tx, AmqpMethod, BasicProperties, Method,
    ReplyCode, ShortStr, SyncMethod, WireError,
};

use crate::confirm::{ConfirmTracker, PublishConfirm};
use crate::connection::{
    ChanEntry, ConnGuard, ConnectionState, Inner, ReplyFuture, Shared, Then, Waiter,
};
use crate::consumer::{Consumer, Returns};
use crate::error::{Error, Initiator, Result};
use crate::mailbox::{lock, Mailbox};
use crate::message::{Delivery, GetMessage};
use crate::options::{
    BindOptions, ConsumeOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, ExchangeKind,
    GetOptions, NackOptions, PublishOptions, QosOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use crate::proto::Reply;
use crate::publish::Publish;
use tracing::Instrument;

/// Channel state shared by the handles, the deliveries and the confirm futures.
#[derive(Debug)]
pub(crate) struct ChannelCore {
    id: u16,
    pub(crate) shared: Arc<Shared>,
    pub(crate) confirms: Mutex<ConfirmTracker>,
    closed: OnceLock<Error>,
    /// Counts connection losses; a delivery from an earlier epoch can no longer be settled.
    epoch: AtomicU64,
    /// The channel's lifecycle span (`amqp_channel`, child of the connection's).
    pub(crate) span: tracing::Span,
}

impl ChannelCore {
    pub(crate) fn id(&self) -> u16 {
        self.id
    }

    /// The current epoch (see [`crate::recovery`]).
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// The connection was lost: deliveries handed out so far become stale.
    pub(crate) fn next_epoch(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn set_closed(&self, error: Error) {
        let _ = self.closed.set(error);
    }

    /// Why this channel is closed (or the connection's error if the channel never saw a close).
    pub(crate) fn closed_error(&self, inner: &Inner) -> Error {
        self.closed
            .get()
            .cloned()
            .unwrap_or_else(|| inner.connection_error())
    }

    pub(crate) fn entry<'a>(&self, inner: &'a mut Inner) -> Option<&'a mut ChanEntry> {
        match inner.proto.user_mut(self.id) {
            Some(e) if std::ptr::eq(Arc::as_ptr(&e.core), self) => Some(e),
            _ => None,
        }
    }

    /// Sends an asynchronous method (acks and the like).
    pub(crate) fn send_async(&self, method: Method) -> Result<()> {
        self.shared.with("channel::send_async", |inner| {
            if self.entry(inner).is_none() {
                return Err(self.closed_error(inner));
            }
            if inner.is_recovering() {
                return Err(Error::Recovering);
            }
            inner
                .proto
                .send(self.id, &method)
                .map_err(|e| inner.map_command_error(e, Some(self)))
        })
    }

    /// Settles a delivery received in `epoch`: refused, with nothing sent, if the connection
    /// was lost since (its tag would name another message on the recovered channel).
    pub(crate) fn settle(&self, epoch: u64, delivery_tag: u64, method: Method) -> Result<()> {
        self.shared.with("channel::settle", |inner| {
            if self.entry(inner).is_none() {
                return Err(self.closed_error(inner));
            }
            if epoch != self.epoch() {
                return Err(Error::StaleDelivery { delivery_tag });
            }
            inner
                .proto
                .send(self.id, &method)
                .map_err(|e| inner.map_command_error(e, Some(self)))
        })
    }

    /// Sends a synchronous method and waits for its reply. The method is checked against the
    /// spec's domain rules first; a violation is an error and nothing is sent.
    pub(crate) async fn call(&self, method: Method, then: Then) -> Result<Reply> {
        method.validate().map_err(Error::InvalidArgument)?;
        let name = method.name();
        let rx = self.shared.with("channel::call", |inner| {
            if self.entry(inner).is_none() {
                return Err(self.closed_error(inner));
            }
            if inner.is_recovering() {
                return Err(Error::Recovering);
            }
            let (waiter, rx) = Waiter::new(then);
            inner
                .proto
                .call(self.id, &method, waiter)
                .map_err(|e| inner.map_command_error(e, Some(self)))?;
            Ok(rx)
        })?;
        ReplyFuture {
            rx,
            shared: &self.shared,
        }
        .within_timeout(name)
        .instrument(self.span.clone())
        .await
    }

    /// Sends the synchronous method `M` and waits for its typed reply. The protocol layer
    /// only hands over a reply whose ids are among `M::REPLY_IDS`, so the conversion fails
    /// only if a peer's frame was decoded as another method with the same ids, which cannot
    /// happen.
    pub(crate) async fn request<M: SyncMethod>(&self, method: M, then: Then) -> Result<M::Reply> {
        let reply = match self.call(method.into(), then).await? {
            Reply::Method(method) => method,
            Reply::GetOk(get) => Method::from(get.0),
        };
        M::Reply::try_from(reply).map_err(|other| {
            Error::protocol(M::NAME, format!("{} does not answer it", other.name()))
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn poll_publish(
        self: &Arc<Self>,
        cx: &mut Context<'_>,
        exchange: &str,
        routing_key: &str,
        options: PublishOptions,
        properties: &BasicProperties,
        body: &[u8],
    ) -> Poll<Result<PublishConfirm>> {
        // Publishing never waits on I/O itself, so it spends the task's scheduler budget
        // explicitly: a tight publish loop then yields now and then, letting the driver (often
        // queued on the same worker) write what has accumulated.
        let coop = std::task::ready!(tokio::task::coop::poll_proceed(cx));
        let shared = &*self.shared;
        let mut inner = shared.lock("channel::poll_publish");
        if inner.is_recovering() && self.entry(&mut inner).is_some() {
            // Fail fast: the caller decides whether to wait for recovery and republish.
            return Poll::Ready(Err(Error::Recovering));
        }
        let Some(entry) = self.entry(&mut inner) else {
            return Poll::Ready(Err(self.closed_error(&inner)));
        };
        let must_wait = !entry.flow_active
            || (shared.wait_while_blocked && inner.proto.is_blocked())
            || inner.proto.pending_output() >= shared.write_buffer_limit;
        if must_wait && inner.final_error.is_none() {
            inner.write_waiters.push(cx.waker().clone());
            inner.wake_driver();
            return Poll::Pending;
        }
        let tag = match inner.proto.publish(
            self.id,
            exchange,
            routing_key,
            options.mandatory,
            options.immediate,
            properties,
            body,
        ) {
            Ok(tag) => tag,
            Err(e) => return Poll::Ready(Err(inner.map_command_error(e, Some(self)))),
        };
        let epoch = match tag {
            Some(tag) => {
                let mut confirms = lock(&self.confirms);
                confirms.push(tag, options.mandatory);
                confirms.epoch()
            }
            None => 0,
        };
        coop.made_progress();
        inner.wake_driver();
        drop(inner);
        Poll::Ready(Ok(match tag {
            Some(tag) => PublishConfirm::tracked(self.clone(), epoch, tag),
            None => PublishConfirm::not_requested(),
        }))
    }
}

/// Closes the channel when the last handle to it goes away.
#[derive(Debug)]
struct ChannelHandle {
    core: Arc<ChannelCore>,
    /// Keeps the connection open while the channel is in use.
    _conn: Arc<ConnGuard>,
}

impl Drop for ChannelHandle {
    fn drop(&mut self) {
        let core = &self.core;
        core.shared.with("channel::drop", |inner| {
            if let Some(entry) = core.entry(inner) {
                entry.closing = true;
                if inner.is_recovering() {
                    inner.forget_channel(core.id);
                    return;
                }
                let _ = inner.proto.close_channel(
                    core.id,
                    ReplyCode::REPLY_SUCCESS,
                    "channel handle dropped",
                    Waiter::detached(Then::Nothing),
                );
            }
        });
    }
}

/// An AMQP channel: a lightweight session inside a connection, where queues and exchanges are
/// declared, messages published and consumed.
///
/// Cheap to clone; the channel closes when [`close`](Self::close) is called or, in the
/// background, when the last clone (and the last [`Consumer`] on it) is dropped. An error on a
/// channel (a *soft* error such as `NOT_FOUND`) closes only that channel: its pending and later
/// calls fail with [`Error::ChannelClosed`], while the connection and other channels keep
/// working.
///
/// Names of exchanges and queues are checked against the spec's rules (at most 127 octets of
/// `a-z A-Z 0-9 - _ . :`) before anything is sent.
#[derive(Debug, Clone)]
pub struct Channel {
    handle: Arc<ChannelHandle>,
}

fn short(s: &str) -> Result<ShortStr> {
    ShortStr::new(s).map_err(Error::InvalidArgument)
}

impl Channel {
    pub(crate) async fn open(conn: Arc<ConnGuard>) -> Result<Self> {
        let shared = conn.shared.clone();
        let (core, rx) = shared.with("channel::open", |inner| {
            if inner.is_recovering() {
                return Err(Error::Recovering);
            }
            let (waiter, rx) = Waiter::new(Then::Nothing);
            let id = inner
                .proto
                .open_channel(waiter)
                .map_err(|e| inner.map_command_error(e, None))?;
            let core = Arc::new(ChannelCore {
                id,
                shared: shared.clone(),
                confirms: Mutex::new(ConfirmTracker::default()),
                closed: OnceLock::new(),
                epoch: AtomicU64::new(0),
                span: tracing::debug_span!(parent: &shared.span, "amqp_channel", channel = id),
            });
            inner.proto.set_user(id, ChanEntry::new(core.clone()));
            Ok::<_, Error>((core, rx))
        })?;
        // Made before waiting, so that abandoning this future closes the channel again.
        let channel = Self {
            handle: Arc::new(ChannelHandle { core, _conn: conn }),
        };
        let span = channel.core().span.clone();
        ReplyFuture {
            rx,
            shared: &shared,
        }
        .within_timeout("channel.open")
        .instrument(span.clone())
        .await?;
        span.in_scope(|| tracing::debug!("channel open"));
        Ok(channel)
    }

    fn core(&self) -> &Arc<ChannelCore> {
        &self.handle.core
    }

    pub(crate) fn core_arc(&self) -> Arc<ChannelCore> {
        self.handle.core.clone()
    }

    /// Sends the synchronous method `M` and returns its typed reply (`queue.declare` →
    /// `queue.declare-ok`).
    async fn call<M: SyncMethod>(&self, method: M) -> Result<M::Reply> {
        self.core().request(method, Then::Nothing).await
    }

    /// Updates what recovery restores, once the broker accepted a command.
    fn record(&self, f: impl FnOnce(&mut Inner, u16)) {
        let id = self.id();
        self.core()
            .shared
            .with("channel::record", |inner| f(inner, id));
    }

    /// The channel number.
    pub fn id(&self) -> u16 {
        self.core().id
    }

    /// Whether the channel is open.
    pub fn is_open(&self) -> bool {
        let core = self.core();
        let mut inner = core.shared.lock("channel::is_open");
        core.entry(&mut inner).is_some()
    }

    // ----- exchanges ------------------------------------------------------------------------

    /// Declares an exchange (`exchange.declare`).
    pub async fn exchange_declare(
        &self,
        name: &str,
        kind: ExchangeKind,
        options: ExchangeDeclareOptions,
    ) -> Result<()> {
        let declare = exchange::Declare {
            exchange: short(name)?,
            kind: short(kind.as_str())?,
            passive: options.passive,
            durable: options.durable,
            auto_delete: options.auto_delete,
            internal: options.internal,
            no_wait: false,
            arguments: options.arguments,
        };
        self.call(declare.clone()).await?;
        self.record(|inner, _| inner.topology.exchange_declared(declare));
        Ok(())
    }

    /// Deletes an exchange (`exchange.delete`).
    pub async fn exchange_delete(&self, name: &str, options: ExchangeDeleteOptions) -> Result<()> {
        self.call(exchange::Delete {
            exchange: short(name)?,
            if_unused: options.if_unused,
            no_wait: false,
        })
        .await?;
        self.record(|inner, _| inner.topology.exchange_deleted(name));
        Ok(())
    }

    /// Binds exchange `destination` to exchange `source` (`exchange.bind`, a RabbitMQ
    /// extension): messages routed by `source` with a matching key also go to `destination`.
    pub async fn exchange_bind(
        &self,
        destination: &str,
        source: &str,
        routing_key: &str,
        options: BindOptions,
    ) -> Result<()> {
        let bind = exchange::Bind {
            destination: short(destination)?,
            source: short(source)?,
            routing_key: short(routing_key)?,
            no_wait: false,
            arguments: options.arguments,
        };
        self.call(bind.clone()).await?;
        self.record(|inner, _| inner.topology.exchange_bound(bind));
        Ok(())
    }

    /// Removes an exchange-to-exchange binding (`exchange.unbind`).
    pub async fn exchange_unbind(
        &self,
        destination: &str,
        source: &str,
        routing_key: &str,
        options: BindOptions,
    ) -> Result<()> {
        let unbind = exchange::Unbind {
            destination: short(destination)?,
            source: short(source)?,
            routing_key: short(routing_key)?,
            no_wait: false,
            arguments: options.arguments,
        };
        self.call(unbind.clone()).await?;
        self.record(|inner, _| {
            inner.topology.exchange_unbound(
                &unbind.destination,
                &unbind.source,
                &unbind.routing_key,
                &unbind.arguments,
            )
        });
        Ok(())
    }

    // ----- queues ---------------------------------------------------------------------------

    /// Declares a queue (`queue.declare`). An empty name asks the broker to choose one; the
    /// reply carries it.
    pub async fn queue_declare(
        &self,
        name: &str,
        options: QueueDeclareOptions,
    ) -> Result<QueueInfo> {
        let mut arguments = options.arguments;
        if let Some(kind) = options.queue_type {
            arguments
                .insert("x-queue-type", kind.as_str())
                .map_err(|e| Error::Config(format!("queue.declare arguments: {e}")))?;
        }
        let declare = queue::Declare {
            queue: short(name)?,
            passive: options.passive,
            durable: options.durable,
            exclusive: options.exclusive,
            auto_delete: options.auto_delete,
            no_wait: false,
            arguments,
        };
        let ok = self.call(declare.clone()).await?;
        let actual = ok.queue.clone();
        self.record(|inner, _| inner.topology.queue_declared(declare, actual));
        Ok(QueueInfo {
            name: ok.queue.as_str().to_owned(),
            message_count: ok.message_count,
            consumer_count: ok.consumer_count,
        })
    }

    /// Binds a queue to an exchange (`queue.bind`).
    pub async fn queue_bind(
        &self,
        queue: &str,
        exchange: &str,
        routing_key: &str,
        options: BindOptions,
    ) -> Result<()> {
        let bind = queue::Bind {
            queue: short(queue)?,
            exchange: short(exchange)?,
            routing_key: short(routing_key)?,
            no_wait: false,
            arguments: options.arguments,
        };
        self.call(bind.clone()).await?;
        self.record(|inner, _| inner.topology.queue_bound(bind));
        Ok(())
    }

    /// Removes a queue binding (`queue.unbind`).
    pub async fn queue_unbind(
        &self,
        queue: &str,
        exchange: &str,
        routing_key: &str,
        options: BindOptions,
    ) -> Result<()> {
        let unbind = queue::Unbind {
            queue: short(queue)?,
            exchange: short(exchange)?,
            routing_key: short(routing_key)?,
            arguments: options.arguments,
        };
        self.call(unbind.clone()).await?;
        self.record(|inner, _| {
            inner.topology.queue_unbound(
                &unbind.queue,
                &unbind.exchange,
                &unbind.routing_key,
                &unbind.arguments,
            )
        });
        Ok(())
    }

    /// Removes every ready message from a queue (`queue.purge`); returns how many.
    pub async fn queue_purge(&self, queue: &str) -> Result<u32> {
        let ok = self
            .call(queue::Purge {
                queue: short(queue)?,
                no_wait: false,
            })
            .await?;
        Ok(ok.message_count)
    }

    /// Deletes a queue (`queue.delete`); returns how many messages it held.
    pub async fn queue_delete(&self, queue: &str, options: QueueDeleteOptions) -> Result<u32> {
        let ok = self
            .call(queue::Delete {
                queue: short(queue)?,
                if_unused: options.if_unused,
                if_empty: options.if_empty,
                no_wait: false,
            })
            .await?;
        self.record(|inner, _| inner.topology.queue_deleted(queue));
        Ok(ok.message_count)
    }

    // ----- basic ----------------------------------------------------------------------------

    /// Limits how many unacknowledged deliveries the broker sends (`basic.qos`).
    pub async fn basic_qos(&self, prefetch_count: u16, options: QosOptions) -> Result<()> {
        let qos = basic::Qos {
            prefetch_size: options.prefetch_size,
            prefetch_count,
            global: options.global,
        };
        self.call(qos.clone()).await?;
        let core = self.core().clone();
        self.record(|inner, _| {
            if let Some(entry) = core.entry(inner) {
                entry.qos.retain(|q| q.global != qos.global);
                entry.qos.push(qos);
            }
        });
        Ok(())
    }

    /// Starts a consumer on `queue` (`basic.consume`). Deliveries arrive through the returned
    /// [`Consumer`] stream, buffered up to the connection's `consumer_buffer`.
    pub async fn basic_consume(&self, queue: &str, options: ConsumeOptions) -> Result<Consumer> {
        let shared = &self.core().shared;
        let mailbox = Arc::new(Mailbox::new(
            shared.consumer_buffer,
            shared.consumer_buffer_bytes,
        ));
        let no_ack = options.no_ack;
        let consume = basic::Consume {
            queue: short(queue)?,
            consumer_tag: short(&options.consumer_tag)?,
            no_local: options.no_local,
            no_ack,
            exclusive: options.exclusive,
            no_wait: false,
            arguments: options.arguments,
        };
        let then = Then::Consume {
            mailbox: mailbox.clone(),
            consume: consume.clone(),
        };
        let ok = self.core().request(consume, then).await?;
        Ok(Consumer::new(
            self.clone(),
            ok.consumer_tag,
            mailbox,
            no_ack,
        ))
    }

    /// Cancels a consumer by tag (`basic.cancel`). Its stream yields what is already buffered,
    /// then ends.
    pub async fn basic_cancel(&self, consumer_tag: &str) -> Result<()> {
        let cancel = basic::Cancel {
            consumer_tag: short(consumer_tag)?,
            no_wait: false,
        };
        self.core().request(cancel, Then::Cancel).await.map(drop)
    }

    /// Publishes a message (`basic.publish`) to `target`, an exchange and routing key named
    /// by a [`Publish`]:
    ///
    /// ```no_run
    /// # async fn demo(channel: amqp_client::Channel) -> amqp_client::Result<()> {
    /// use amqp_client::{BasicProperties, Publish};
    ///
    /// let props = BasicProperties::default().with_content_type("text/plain")?;
    /// let confirm = channel.publish(Publish::to_queue("jobs"), &props, b"hello").await?;
    /// let routed = Publish::exchange("logs").routing_key("app.error").mandatory(true);
    /// channel.publish(routed, &props, b"disk full").await?;
    /// assert!(confirm.await?.is_ack());
    /// # Ok(()) }
    /// ```
    ///
    /// Waits only while the connection's write buffer is full, the broker has blocked the
    /// connection (unless `wait_while_blocked` is off) or the channel's flow is paused; then
    /// encodes the message straight into the write buffer. The returned [`PublishConfirm`]
    /// resolves to the broker's verdict in confirm mode (see
    /// [`confirm_select`](Self::confirm_select)), at once otherwise.
    pub async fn publish(
        &self,
        target: Publish<'_>,
        properties: &BasicProperties,
        body: &[u8],
    ) -> Result<PublishConfirm> {
        #[allow(deprecated)]
        self.basic_publish(
            target.exchange_name(),
            target.routing_key_value(),
            target.options_value(),
            properties,
            body,
        )
        .await
    }

    /// Publishes a message (`basic.publish`): the former form of [`publish`](Self::publish),
    /// whose two adjacent names are easy to swap. `basic_publish(exchange, key, options, …)`
    /// is `publish(Publish::exchange(exchange).routing_key(key).options(options), …)`.
    ///
    /// Waits only while the connection's write buffer is full, the broker has blocked the
    /// connection (unless `wait_while_blocked` is off) or the channel's flow is paused; then
    /// encodes the message straight into the write buffer. The returned [`PublishConfirm`]
    /// resolves to the broker's verdict in confirm mode (see
    /// [`confirm_select`](Self::confirm_select)), at once otherwise.
    #[deprecated(
        since = "0.1.0",
        note = "use `Channel::publish(Publish::exchange(exchange).routing_key(key), ..)`: the \
                names of a `Publish` cannot be swapped unnoticed"
    )]
    pub async fn basic_publish(
        &self,
        exchange: &str,
        routing_key: &str,
        options: PublishOptions,
        properties: &BasicProperties,
        body: &[u8],
    ) -> Result<PublishConfirm> {
        domains::exchange_name("basic.publish.exchange", exchange.as_bytes())
            .map_err(Error::InvalidArgument)?;
        if routing_key.len() > ShortStr::MAX_LEN {
            return Err(Error::InvalidArgument(WireError::StringTooLong {
                what: "basic.publish.routing-key",
                len: routing_key.len(),
                max: ShortStr::MAX_LEN,
            }));
        }
        let core = self.core();
        let deadline = options
            .wait_for_recovery
            .map(|wait| tokio::time::Instant::now() + wait);
        loop {
            let published = poll_fn(|cx| {
                core.poll_publish(cx, exchange, routing_key, options, properties, body)
            })
            .await;
            match (published, deadline) {
                (Err(Error::Recovering), Some(deadline)) => {
                    let mut state = core.shared.lock("channel::basic_publish").state.subscribe();
                    let open = async {
                        let _ = state.wait_for(|s| *s != ConnectionState::Recovering).await;
                    };
                    // Open again (or closed for good, which the next try reports).
                    if tokio::time::timeout_at(deadline, open).await.is_err() {
                        return Err(Error::Recovering);
                    }
                }
                (published, _) => return published,
            }
        }
    }

    /// Fetches one message (`basic.get`); `None` if the queue is empty.
    pub async fn basic_get(&self, queue: &str, options: GetOptions) -> Result<Option<GetMessage>> {
        let get = basic::Get {
            queue: short(queue)?,
            no_ack: options.no_ack,
        };
        // Not `call`: basic.get-ok comes with its message, which the typed reply leaves out.
        let reply = self.core().call(get.into(), Then::Nothing).await?;
        match reply {
            Reply::GetOk(get) => {
                let (ok, properties, body) = *get;
                let deliver = basic::Deliver {
                    consumer_tag: ShortStr::default(),
                    delivery_tag: ok.delivery_tag,
                    redelivered: ok.redelivered,
                    exchange: ok.exchange,
                    routing_key: ok.routing_key,
                };
                Ok(Some(GetMessage {
                    delivery: Delivery::new(deliver, properties, body, self.core().clone()),
                    message_count: ok.message_count,
                }))
            }
            Reply::Method(method) => match basic::GetReply::try_from(method) {
                Ok(basic::GetReply::GetEmpty(_)) => Ok(None),
                Ok(basic::GetReply::GetOk(_)) => Err(Error::protocol(
                    basic::Get::NAME,
                    "basic.get-ok without its message".to_owned(),
                )),
                Err(other) => Err(Error::protocol(
                    basic::Get::NAME,
                    format!("{} does not answer it", other.name()),
                )),
            },
        }
    }

    /// Acknowledges a delivery (`basic.ack`), and with `multiple` all before it.
    pub fn basic_ack(&self, delivery_tag: u64, multiple: bool) -> Result<()> {
        self.core().send_async(Method::BasicAck(basic::Ack {
            delivery_tag,
            multiple,
        }))
    }

    /// Rejects one or more deliveries (`basic.nack`).
    pub fn basic_nack(&self, delivery_tag: u64, options: NackOptions) -> Result<()> {
        self.core().send_async(Method::BasicNack(basic::Nack {
            delivery_tag,
            multiple: options.multiple,
            requeue: options.requeue,
        }))
    }

    /// Rejects one delivery (`basic.reject`).
    pub fn basic_reject(&self, delivery_tag: u64, requeue: bool) -> Result<()> {
        self.core().send_async(Method::BasicReject(basic::Reject {
            delivery_tag,
            requeue,
        }))
    }

    /// Asks the broker to redeliver every unacknowledged message on this channel
    /// (`basic.recover`); with `requeue` they may go to other consumers.
    pub async fn basic_recover(&self, requeue: bool) -> Result<()> {
        self.call(basic::Recover { requeue }).await.map(drop)
    }

    /// A stream of the messages the broker returns on this channel (`basic.return`), from now
    /// on. Calling it again replaces the previous stream, which ends.
    pub fn returns(&self) -> Returns {
        let core = self.core();
        let mailbox = Arc::new(Mailbox::new(
            core.shared.consumer_buffer,
            core.shared.consumer_buffer_bytes,
        ));
        core.shared
            .with("channel::returns", |inner| match core.entry(inner) {
                Some(entry) => {
                    if let Some(old) = entry.returns.replace(mailbox.clone()) {
                        old.close(None);
                    }
                }
                None => mailbox.close(Some(core.closed_error(inner))),
            });
        Returns::new(mailbox)
    }

    // ----- confirms and transactions ---------------------------------------------------------

    /// Puts the channel in confirm mode (`confirm.select`): the broker acks or nacks every
    /// message published from now on, and [`basic_publish`](Self::basic_publish)'s futures
    /// resolve to its verdict.
    pub async fn confirm_select(&self) -> Result<()> {
        self.call(confirm::Select { nowait: false }).await?;
        let core = self.core().clone();
        self.record(|inner, _| {
            if let Some(entry) = core.entry(inner) {
                entry.confirm = true;
            }
        });
        Ok(())
    }

    /// Waits until the broker has settled every message published so far on this channel.
    /// `Ok(true)` if all were acked, `Ok(false)` if any was nacked.
    ///
    /// "All" means the messages published before this call and not covered by an earlier
    /// call that had already returned when this one began. Concurrent callers each get their
    /// own answer: two tasks waiting at once both learn of a nack among the messages they
    /// cover.
    pub async fn wait_for_confirms(&self) -> Result<bool> {
        /// Ends the wait in the tracker, also when the future is dropped early.
        struct Wait<'a> {
            core: &'a ChannelCore,
            epoch: u64,
            from: u64,
        }
        impl Drop for Wait<'_> {
            fn drop(&mut self) {
                lock(&self.core.confirms).end_wait(self.epoch, self.from);
            }
        }
        let core = self.core();
        let (epoch, from, target) = lock(&core.confirms).begin_wait();
        let wait = Wait { core, epoch, from };
        if target == 0 {
            return Ok(true);
        }
        let answer = poll_fn(|cx| lock(&core.confirms).poll_all(epoch, from, target, cx)).await;
        drop(wait);
        answer
    }

    /// How many published messages the broker has not settled yet (confirm mode).
    pub fn unconfirmed(&self) -> u64 {
        lock(&self.core().confirms).unsettled()
    }

    /// Makes the channel transactional (`tx.select`).
    pub async fn tx_select(&self) -> Result<()> {
        self.call(tx::Select {}).await?;
        let core = self.core().clone();
        self.record(|inner, _| {
            if let Some(entry) = core.entry(inner) {
                entry.tx = true;
            }
        });
        Ok(())
    }

    /// Commits the current transaction (`tx.commit`).
    pub async fn tx_commit(&self) -> Result<()> {
        self.call(tx::Commit {}).await.map(drop)
    }

    /// Rolls the current transaction back (`tx.rollback`).
    pub async fn tx_rollback(&self) -> Result<()> {
        self.call(tx::Rollback {}).await.map(drop)
    }

    /// Asks the broker to pause (`false`) or resume (`true`) deliveries on this channel
    /// (`channel.flow`); returns the state the broker confirmed. RabbitMQ refuses `false`.
    pub async fn channel_flow(&self, active: bool) -> Result<bool> {
        let ok = self.call(channel::Flow { active }).await?;
        Ok(ok.active)
    }

    /// Closes the channel gracefully and waits for the broker's `close-ok`.
    ///
    /// `Ok` means the broker accepted this close. If the broker closed the channel itself
    /// (a soft error such as `NOT_FOUND`), before or at the same moment as this call, the
    /// channel ends with the broker's reason and this returns it as
    /// [`Error::ChannelClosed`] with [`Initiator::Server`].
    pub async fn close(&self) -> Result<()> {
        self.close_with(ReplyCode::REPLY_SUCCESS, "closed by the application")
            .await
    }

    /// Closes the channel with a reply code and text of your choice.
    pub async fn close_with(&self, code: ReplyCode, text: &str) -> Result<()> {
        let core = self.core();
        let rx = core.shared.with("channel::close_with", |inner| {
            let Some(entry) = core.entry(inner) else {
                return Err(core.closed_error(inner));
            };
            entry.closing = true;
            if inner.is_recovering() {
                // Nothing to tell the broker: the channel is gone with the old connection.
                inner.forget_channel(core.id);
                return Err(Error::ChannelClosed(Arc::new(crate::error::CloseReason {
                    code,
                    text: text.to_owned(),
                    class_id: 0,
                    method_id: 0,
                    initiator: Initiator::User,
                    scope: crate::error::Scope::Channel,
                })));
            }
            let (waiter, rx) = Waiter::new(Then::Nothing);
            inner
                .proto
                .close_channel(core.id, code, text, waiter)
                .map_err(|e| inner.map_command_error(e, Some(core)))?;
            Ok(rx)
        });
        let result = match rx {
            Ok(rx) => {
                ReplyFuture {
                    rx,
                    shared: &core.shared,
                }
                .within_timeout("channel.close")
                .await
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(_) => Ok(()),
            Err(Error::ChannelClosed(r)) if r.initiator == Initiator::User => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// What `queue.declare` answered.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueInfo {
    /// The queue's name (the broker's choice if the declare left it empty).
    pub name: String,
    /// Messages ready in the queue.
    pub message_count: u32,
    /// Consumers on the queue.
    pub consumer_count: u32,
}
