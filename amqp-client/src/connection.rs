//! The connection handle and the state it shares with the driver task.
//!
//! One `Mutex<Inner>` holds the sans-IO state machine plus the application-side bookkeeping
//! (which future waits for which reply, which mailbox feeds which consumer). Application tasks
//! lock it briefly to encode a command straight into the outgoing buffer and nudge the driver;
//! the driver locks it to feed input and take output. No task hop and no allocation sits on the
//! publish path.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use amqp_wire::{FieldTable, Method, ReplyCode, ShortStr};
use futures_core::Stream;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::oneshot;
use tracing::Instrument;

use crate::channel::{Channel, ChannelCore};
use crate::config::ConnectionConfig;
use crate::error::{CloseReason, Error, Initiator, Result, Scope};
use crate::mailbox::{lock, Mailbox, Pushed, Receiver};
use crate::message::{Delivery, ReturnedMessage};
use crate::proto::{CommandError, Event, Proto, Reply, Tuning};

/// What to do when a reply arrives, besides handing it to the waiting future.
#[derive(Debug)]
pub(crate) enum Then {
    Nothing,
    /// basic.consume-ok: start feeding this mailbox.
    Consume {
        mailbox: Arc<Mailbox<Delivery>>,
        no_ack: bool,
    },
    /// basic.cancel-ok: the consumer ends.
    Cancel,
}

/// The token the state machine carries for each synchronous request.
#[derive(Debug)]
pub(crate) struct Waiter {
    pub(crate) tx: Option<oneshot::Sender<Result<Reply>>>,
    pub(crate) then: Then,
}

impl Waiter {
    pub(crate) fn new(then: Then) -> (Self, oneshot::Receiver<Result<Reply>>) {
        let (tx, rx) = oneshot::channel();
        (Self { tx: Some(tx), then }, rx)
    }

    /// A request whose answer nobody waits for (background closes and cancels).
    pub(crate) fn detached(then: Then) -> Self {
        Self { tx: None, then }
    }

    fn complete(mut self, result: Result<Reply>) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(result);
        }
    }
}

#[derive(Debug)]
pub(crate) struct ConsumerEntry {
    pub(crate) tag: ShortStr,
    pub(crate) mailbox: Arc<Mailbox<Delivery>>,
    pub(crate) no_ack: bool,
}

/// Application-side state of an open channel.
#[derive(Debug)]
pub(crate) struct ChanEntry {
    pub(crate) core: Arc<ChannelCore>,
    pub(crate) consumers: Vec<ConsumerEntry>,
    pub(crate) returns: Option<Arc<Mailbox<ReturnedMessage>>>,
    pub(crate) flow_active: bool,
}

/// A mailbox the driver stopped reading for.
#[derive(Debug, Clone)]
pub(crate) enum Pause {
    Deliveries(Arc<Mailbox<Delivery>>),
    Returns(Arc<Mailbox<ReturnedMessage>>),
}

impl Pause {
    pub(crate) fn poll_space(&self, cx: &mut Context<'_>) -> Poll<()> {
        match self {
            Self::Deliveries(m) => m.poll_space(cx),
            Self::Returns(m) => m.poll_space(cx),
        }
    }
}

impl crate::mailbox::Weigh for ConnectionEvent {
    fn weight(&self) -> usize {
        0
    }
}

/// Something that happened to the connection as a whole.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionEvent {
    /// The broker stopped reading from this connection (`connection.blocked`), usually because
    /// it is short of memory or disk; the reason says which.
    Blocked(String),
    /// The broker reads again (`connection.unblocked`).
    Unblocked,
}

/// State shared by the handles and the driver.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) proto: Proto<Waiter>,
    pub(crate) chans: Vec<Option<ChanEntry>>,
    pub(crate) driver_waker: Option<Waker>,
    pub(crate) write_waiters: Vec<Waker>,
    opened: Option<oneshot::Sender<Result<ServerInfo>>>,
    closed: Vec<oneshot::Sender<Error>>,
    events: Vec<Arc<Mailbox<ConnectionEvent>>>,
    /// The final error, once the connection closed.
    pub(crate) final_error: Option<Error>,
    /// Tasks to wake once the lock is released (readers of mailboxes filled in a batch,
    /// confirm futures settled).
    pub(crate) wakes: Vec<Waker>,
}

impl Inner {
    /// Takes the driver's waker so the caller can wake it after unlocking.
    pub(crate) fn take_driver_waker(&mut self) -> Option<Waker> {
        self.driver_waker.take()
    }

    /// The error a command on a closed connection gets.
    pub(crate) fn connection_error(&self) -> Error {
        self.final_error
            .clone()
            .or_else(|| self.proto.error().cloned())
            .unwrap_or_else(|| {
                Error::ConnectionClosed(Arc::new(CloseReason {
                    code: ReplyCode::CONNECTION_FORCED,
                    text: "connection is not open".to_owned(),
                    class_id: 0,
                    method_id: 0,
                    initiator: Initiator::Library,
                    scope: Scope::Connection,
                }))
            })
    }

    /// Handles every event the state machine has produced. Returns the mailbox the driver must
    /// stop reading for, if a push filled one.
    pub(crate) fn dispatch(&mut self) -> Option<Pause> {
        let mut pause = None;
        while let Some(event) = self.proto.poll_event() {
            if let Some(p) = self.handle_event(event) {
                pause = Some(p);
            }
        }
        pause
    }

    fn handle_event(&mut self, event: Event<Waiter>) -> Option<Pause> {
        match event {
            Event::Opened {
                server_properties,
                tuning,
            } => {
                tracing::debug!(?tuning, "connection open");
                if let Some(tx) = self.opened.take() {
                    let _ = tx.send(Ok(ServerInfo {
                        properties: server_properties,
                        tuning,
                    }));
                }
            }
            Event::Reply {
                channel,
                token,
                reply,
            } => self.on_reply(channel, token, reply),
            Event::Delivery {
                channel,
                deliver,
                properties,
                body,
            } => {
                let Some(Some(entry)) = self.chans.get_mut(usize::from(channel)) else {
                    return None;
                };
                let Some(consumer) = entry
                    .consumers
                    .iter()
                    .find(|c| c.tag == deliver.consumer_tag)
                else {
                    tracing::warn!(
                        channel,
                        consumer_tag = %deliver.consumer_tag,
                        "delivery for an unknown consumer dropped"
                    );
                    return None;
                };
                let no_ack = consumer.no_ack;
                let mailbox = consumer.mailbox.clone();
                let tag = deliver.delivery_tag;
                let delivery = Delivery::new(deliver, properties, body, entry.core.clone());
                match mailbox.push_deferred(delivery, &mut self.wakes) {
                    Pushed::Stored { full: true } => return Some(Pause::Deliveries(mailbox)),
                    Pushed::Stored { full: false } => {}
                    Pushed::Refused(_) if !no_ack => {
                        // The consumer is gone: hand the message back to the queue.
                        let reject = amqp_wire::basic::Reject {
                            delivery_tag: tag,
                            requeue: true,
                        };
                        let _ = self.proto.send(channel, &Method::BasicReject(reject));
                    }
                    Pushed::Refused(_) => {}
                }
            }
            Event::Returned {
                channel,
                returned,
                properties,
                body,
            } => {
                let Some(Some(entry)) = self.chans.get_mut(usize::from(channel)) else {
                    return None;
                };
                let message = ReturnedMessage::new(returned, properties, body);
                tracing::debug!(
                    channel,
                    code = ?message.reply_code,
                    routing_key = %message.routing_key,
                    "message returned"
                );
                {
                    let mut confirms = lock(&entry.core.confirms);
                    if confirms.last_tag() > 0 {
                        confirms.returned(message.clone());
                    }
                }
                if let Some(mailbox) = &entry.returns {
                    if let Pushed::Stored { full: true } =
                        mailbox.push_deferred(message, &mut self.wakes)
                    {
                        return Some(Pause::Returns(mailbox.clone()));
                    }
                }
            }
            Event::Confirm {
                channel,
                delivery_tag,
                multiple,
                ack,
            } => {
                if let Some(Some(entry)) = self.chans.get_mut(usize::from(channel)) {
                    lock(&entry.core.confirms).settle(delivery_tag, multiple, ack, &mut self.wakes);
                }
            }
            Event::ConsumerCancelled {
                channel,
                consumer_tag,
            } => {
                tracing::debug!(channel, %consumer_tag, "consumer cancelled by the server");
                if let Some(Some(entry)) = self.chans.get_mut(usize::from(channel)) {
                    if let Some(i) = entry.consumers.iter().position(|c| c.tag == consumer_tag) {
                        let c = entry.consumers.swap_remove(i);
                        c.mailbox
                            .close(Some(Error::ConsumerCancelled(consumer_tag.to_string())));
                    }
                }
            }
            Event::Flow { channel, active } => {
                if let Some(Some(entry)) = self.chans.get_mut(usize::from(channel)) {
                    entry.flow_active = active;
                }
                if active {
                    self.wake_writers();
                }
            }
            Event::Blocked { reason } => {
                tracing::info!(%reason, "connection blocked by the broker");
                self.broadcast(ConnectionEvent::Blocked(reason));
            }
            Event::Unblocked => {
                tracing::info!("connection unblocked by the broker");
                self.broadcast(ConnectionEvent::Unblocked);
                self.wake_writers();
            }
            Event::ChannelClosed {
                channel,
                reason,
                pending,
            } => {
                let span = match self.chans.get(usize::from(channel)) {
                    Some(Some(entry)) => entry.core.span.clone(),
                    _ => tracing::Span::none(),
                };
                span.in_scope(|| {
                    if reason.initiator == Initiator::User {
                        tracing::debug!(channel, "channel closed");
                    } else {
                        tracing::info!(channel, %reason, "channel closed");
                    }
                });
                let error = Error::ChannelClosed(reason);
                for w in pending {
                    w.complete(Err(error.clone()));
                }
                if let Some(entry) = self
                    .chans
                    .get_mut(usize::from(channel))
                    .and_then(Option::take)
                {
                    close_entry(entry, &error);
                }
                self.wake_writers();
            }
            Event::Closed { error, pending } => {
                match error.close_reason() {
                    Some(r) if r.initiator == Initiator::User => {
                        tracing::debug!("connection closed")
                    }
                    _ => tracing::info!(%error, "connection closed"),
                }
                for w in pending {
                    w.complete(Err(error.clone()));
                }
                for entry in self.chans.iter_mut().filter_map(Option::take) {
                    close_entry(entry, &error);
                }
                if let Some(tx) = self.opened.take() {
                    let _ = tx.send(Err(error.clone()));
                }
                for tx in self.closed.drain(..) {
                    let _ = tx.send(error.clone());
                }
                for m in self.events.drain(..) {
                    m.close(None);
                }
                self.final_error = Some(error);
                self.wake_writers();
            }
        }
        None
    }

    fn on_reply(&mut self, channel: u16, mut waiter: Waiter, reply: Reply) {
        match (std::mem::replace(&mut waiter.then, Then::Nothing), &reply) {
            (Then::Consume { mailbox, no_ack }, Reply::Method(Method::BasicConsumeOk(ok))) => {
                let wanted = waiter.tx.as_ref().is_some_and(|tx| !tx.is_closed());
                if let Some(Some(entry)) = self.chans.get_mut(usize::from(channel)) {
                    entry.consumers.push(ConsumerEntry {
                        tag: ok.consumer_tag.clone(),
                        mailbox: mailbox.clone(),
                        no_ack,
                    });
                    if !wanted {
                        // Whoever asked for this consumer stopped waiting: cancel it.
                        mailbox.abandon();
                        let cancel = amqp_wire::basic::Cancel {
                            consumer_tag: ok.consumer_tag.clone(),
                            no_wait: false,
                        };
                        let _ = self.proto.call(
                            channel,
                            &Method::BasicCancel(cancel),
                            Waiter::detached(Then::Cancel),
                        );
                    }
                }
            }
            (Then::Cancel, Reply::Method(Method::BasicCancelOk(ok))) => {
                if let Some(Some(entry)) = self.chans.get_mut(usize::from(channel)) {
                    if let Some(i) = entry
                        .consumers
                        .iter()
                        .position(|c| c.tag == ok.consumer_tag)
                    {
                        entry.consumers.swap_remove(i).mailbox.close(None);
                    }
                }
            }
            _ => {}
        }
        waiter.complete(Ok(reply));
    }

    fn broadcast(&mut self, event: ConnectionEvent) {
        self.events.retain(|m| match m.push(event.clone()) {
            Pushed::Stored { .. } => true,
            Pushed::Refused(_) => false,
        });
    }

    pub(crate) fn wake_writers(&mut self) {
        for w in self.write_waiters.drain(..) {
            w.wake();
        }
    }

    /// Runs a command and maps the state machine's refusal to the error the caller reports.
    pub(crate) fn map_command_error(&self, e: CommandError, core: Option<&ChannelCore>) -> Error {
        match e {
            CommandError::Connection(e) => self.final_error.clone().unwrap_or(e),
            CommandError::ChannelsExhausted(max) => Error::ChannelsExhausted(max),
            CommandError::Invalid(e) => Error::InvalidArgument(e),
            CommandError::ChannelNotOpen => match core {
                Some(core) => core.closed_error(self),
                None => self.connection_error(),
            },
        }
    }
}

/// Fails everything hanging off a channel entry.
fn close_entry(entry: ChanEntry, error: &Error) {
    entry.core.set_closed(error.clone());
    let clean = matches!(
        error.close_reason(),
        Some(r) if r.initiator == Initiator::User && r.is_normal() && r.scope == Scope::Channel
    );
    for c in entry.consumers {
        c.mailbox.close((!clean).then(|| error.clone()));
    }
    if let Some(m) = entry.returns {
        m.close(None);
    }
    lock(&entry.core.confirms).close(error.clone());
}

/// What the driver and the handles share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) inner: Mutex<Inner>,
    pub(crate) consumer_buffer: usize,
    pub(crate) consumer_buffer_bytes: usize,
    pub(crate) write_buffer_limit: usize,
    pub(crate) wait_while_blocked: bool,
    /// How long a synchronous request waits for its reply.
    pub(crate) request_timeout: Duration,
    /// The connection's lifecycle span (`amqp_connection`).
    pub(crate) span: tracing::Span,
}

/// The locked state; on unlock, wakes the tasks queued in [`Inner::wakes`].
pub(crate) struct Locked<'a> {
    guard: Option<MutexGuard<'a, Inner>>,
}

impl std::ops::Deref for Locked<'_> {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        // Only `drop` takes the guard out.
        self.guard.as_deref().unwrap_or_else(|| unreachable!())
    }
}

impl std::ops::DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Inner {
        self.guard.as_deref_mut().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        if let Some(mut guard) = self.guard.take() {
            let wakes = std::mem::take(&mut guard.wakes);
            drop(guard);
            wakes.into_iter().for_each(Waker::wake);
        }
    }
}

impl Shared {
    /// Locks the state; tasks woken meanwhile are woken when the returned guard drops.
    pub(crate) fn lock(&self) -> Locked<'_> {
        Locked {
            guard: Some(lock(&self.inner)),
        }
    }

    /// Locks, runs `f`, unlocks, then wakes the driver if `f` left it something to do.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut inner = lock(&self.inner);
        let r = f(&mut inner);
        let waker = inner.take_driver_waker();
        let wakes = std::mem::take(&mut inner.wakes);
        drop(inner);
        if let Some(w) = waker {
            w.wake();
        }
        wakes.into_iter().for_each(Waker::wake);
        r
    }

    /// Starts the graceful close without waiting for it.
    fn close_in_background(&self) {
        self.with(|inner| {
            if inner.final_error.is_none() {
                inner.proto.close(
                    ReplyCode::REPLY_SUCCESS,
                    "connection handle dropped",
                    Instant::now(),
                );
                inner.dispatch();
            }
        });
    }
}

/// What the server said about itself and what was negotiated.
#[derive(Debug, Clone)]
pub(crate) struct ServerInfo {
    properties: FieldTable,
    tuning: Tuning,
}

/// Closes the connection when the last handle (connection or channel) goes away.
#[derive(Debug)]
pub(crate) struct ConnGuard {
    pub(crate) shared: Arc<Shared>,
    server: ServerInfo,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.shared.close_in_background();
    }
}

/// The parameters the client and server agreed on in `connection.tune`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Negotiated {
    /// Highest channel number usable.
    pub channel_max: u16,
    /// Largest frame in octets (0: no limit).
    pub frame_max: u32,
    /// Heartbeat interval (zero: heartbeats off).
    pub heartbeat: Duration,
}

/// An open AMQP connection.
///
/// Cheap to clone; all clones share one connection, driven by one background task. The
/// connection closes gracefully when [`close`](Self::close) is called, or in the background
/// once every `Connection` and [`Channel`] handle is dropped.
///
/// ```no_run
/// # async fn demo() -> Result<(), amqp_client::Error> {
/// use amqp_client::Connection;
///
/// let conn = Connection::connect("amqp://guest:guest@localhost:5672/%2f").await?;
/// let channel = conn.open_channel().await?;
/// channel.queue_declare("jobs", Default::default()).await?;
/// conn.close().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Connection {
    guard: Arc<ConnGuard>,
}

impl Connection {
    /// Connects to the broker a RabbitMQ URI names (see [`crate::uri`]).
    pub async fn connect(uri: &str) -> Result<Self> {
        Self::connect_with(ConnectionConfig::from_uri(uri)?).await
    }

    /// Connects with a configuration: TCP (and TLS for `amqps`), then the AMQP handshake,
    /// all within `cfg.connect_timeout`.
    pub async fn connect_with(cfg: ConnectionConfig) -> Result<Self> {
        crate::tls::check_external(&cfg)?;
        let started = Instant::now();
        let total = cfg.connect_timeout;
        let tcp = crate::transport::connect_tcp(&cfg.host, cfg.port, total).await?;
        let mut cfg = cfg;
        cfg.connect_timeout = total.saturating_sub(started.elapsed());
        match cfg.tls.clone() {
            None => {
                let plain = crate::tls::FirstByteCheck::plain(tcp, &cfg.host, cfg.port);
                Self::open_with(plain, cfg).await
            }
            Some(tls) => {
                let handshake = crate::transport::wrap_tls(tcp, &cfg.host, cfg.port, &tls);
                let stream = tokio::time::timeout(cfg.connect_timeout, handshake)
                    .await
                    .map_err(|_| Error::ConnectTimeout(total))??;
                cfg.connect_timeout = total.saturating_sub(started.elapsed());
                Self::open_with(stream, cfg).await
            }
        }
    }

    /// Runs the AMQP handshake over a transport the caller has set up (TCP, TLS, a Unix
    /// socket, an in-memory pipe), then drives it from a background task.
    ///
    /// `cfg.host`, `cfg.port` and `cfg.tls` are not used; everything else is.
    pub async fn open_with<T>(io: T, cfg: ConnectionConfig) -> Result<Self>
    where
        T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let span = tracing::info_span!(
            "amqp_connection",
            host = %cfg.host,
            vhost = %cfg.vhost,
            name = cfg.connection_name.as_deref().unwrap_or(""),
        );
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                proto: Proto::new(&cfg, Instant::now()),
                chans: Vec::new(),
                driver_waker: None,
                write_waiters: Vec::new(),
                opened: Some(tx),
                closed: Vec::new(),
                events: Vec::new(),
                final_error: None,
                wakes: Vec::new(),
            }),
            consumer_buffer: cfg.consumer_buffer.max(1),
            consumer_buffer_bytes: cfg.consumer_buffer_bytes.max(1),
            write_buffer_limit: cfg.write_buffer_limit.max(1),
            wait_while_blocked: cfg.wait_while_blocked,
            request_timeout: cfg.request_timeout,
            span: span.clone(),
        });
        tokio::spawn(crate::driver::run(io, shared.clone()).instrument(span));
        let server = match rx.await {
            Ok(r) => r?,
            Err(_) => return Err(lock(&shared.inner).connection_error()),
        };
        Ok(Self {
            guard: Arc::new(ConnGuard { shared, server }),
        })
    }

    /// Opens a new channel on the lowest free channel number.
    pub async fn open_channel(&self) -> Result<Channel> {
        Channel::open(self.guard.clone()).await
    }

    /// [`open_channel`](Self::open_channel) under the name other clients use.
    pub async fn create_channel(&self) -> Result<Channel> {
        self.open_channel().await
    }

    /// Closes the connection gracefully (reply code 200) and waits for the broker's
    /// `close-ok`. Every channel closes with it.
    ///
    /// If the broker closed the connection itself, before or at the same moment as this call,
    /// this returns the broker's reason as [`Error::ConnectionClosed`].
    pub async fn close(&self) -> Result<()> {
        self.close_with(ReplyCode::REPLY_SUCCESS, "closed by the application")
            .await
    }

    /// Closes the connection with a reply code and text of your choice.
    pub async fn close_with(&self, code: ReplyCode, text: &str) -> Result<()> {
        let rx = self.guard.shared.with(|inner| {
            let (tx, rx) = oneshot::channel();
            match &inner.final_error {
                Some(e) => {
                    let _ = tx.send(e.clone());
                }
                None => {
                    inner.closed.push(tx);
                    inner.proto.close(code, text, Instant::now());
                    inner.dispatch();
                }
            }
            rx
        });
        match rx.await {
            Ok(Error::ConnectionClosed(r)) if r.initiator == Initiator::User => Ok(()),
            Ok(e) => Err(e),
            Err(_) => Ok(()),
        }
    }

    /// Waits until the connection closes, for whatever reason, and returns why.
    pub async fn closed(&self) -> Error {
        let rx = self.guard.shared.with(|inner| {
            let (tx, rx) = oneshot::channel();
            match &inner.final_error {
                Some(e) => {
                    let _ = tx.send(e.clone());
                }
                None => inner.closed.push(tx),
            }
            rx
        });
        match rx.await {
            Ok(e) => e,
            Err(_) => lock(&self.guard.shared.inner).connection_error(),
        }
    }

    /// Whether the connection is open (not closing, not closed).
    pub fn is_open(&self) -> bool {
        lock(&self.guard.shared.inner).proto.is_open()
    }

    /// Whether the broker currently blocks publishing on this connection.
    pub fn is_blocked(&self) -> bool {
        lock(&self.guard.shared.inner).proto.is_blocked()
    }

    /// The server's properties from `connection.start` (product, version, capabilities, …).
    pub fn server_properties(&self) -> &FieldTable {
        &self.guard.server.properties
    }

    /// The negotiated channel_max, frame_max and heartbeat.
    pub fn negotiated(&self) -> Negotiated {
        let t = self.guard.server.tuning;
        Negotiated {
            channel_max: t.channel_max,
            frame_max: t.frame_max,
            heartbeat: Duration::from_secs(u64::from(t.heartbeat)),
        }
    }

    /// A stream of connection-level events (blocked / unblocked), from now on. It ends when
    /// the connection closes.
    pub fn events(&self) -> ConnectionEvents {
        let mailbox = Arc::new(Mailbox::new(usize::MAX, usize::MAX));
        self.guard.shared.with(|inner| {
            if inner.final_error.is_some() {
                mailbox.close(None);
            } else {
                inner.events.push(mailbox.clone());
            }
        });
        ConnectionEvents {
            mailbox: Receiver::new(mailbox),
        }
    }
}

/// A stream of [`ConnectionEvent`]s; see [`Connection::events`].
#[derive(Debug)]
pub struct ConnectionEvents {
    mailbox: Receiver<ConnectionEvent>,
}

impl Stream for ConnectionEvents {
    type Item = ConnectionEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.mailbox.poll_next(cx) {
            Poll::Ready(Some(Ok(e))) => Poll::Ready(Some(e)),
            Poll::Ready(_) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for ConnectionEvents {
    fn drop(&mut self) {
        self.mailbox.abandon();
    }
}

/// Resolves a reply receiver into the reply, mapping a vanished sender to the connection's
/// error.
pub(crate) struct ReplyFuture<'a> {
    pub(crate) rx: oneshot::Receiver<Result<Reply>>,
    pub(crate) shared: &'a Shared,
}

impl ReplyFuture<'_> {
    /// Waits for the reply to `method` for at most the connection's request timeout.
    pub(crate) async fn within_timeout(self, method: &'static str) -> Result<Reply> {
        let after = self.shared.request_timeout;
        match tokio::time::timeout(after, self).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout { method, after }),
        }
    }
}

impl Future for ReplyFuture<'_> {
    type Output = Result<Reply>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match Pin::new(&mut self.rx).poll(cx) {
            Poll::Ready(Ok(r)) => Poll::Ready(r),
            Poll::Ready(Err(_)) => Poll::Ready(Err(lock(&self.shared.inner).connection_error())),
            Poll::Pending => Poll::Pending,
        }
    }
}
