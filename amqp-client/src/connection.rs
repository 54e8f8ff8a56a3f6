//! The connection handle and the state it shares with the driver task.
//!
//! One `Mutex<Inner>` holds the sans-IO state machine plus the application-side bookkeeping
//! (which future waits for which reply, which mailbox feeds which consumer). Application tasks
//! lock it briefly to encode a command straight into the outgoing buffer and nudge the driver;
//! the driver locks it to feed input and take output. There is one door to it,
//! [`Shared::lock`]`("purpose")`: its guard wakes, once the lock is released, every task the
//! holder queued (and the driver, when asked), so no wake-up depends on which way a caller
//! locked. [`Shared::with`] is that door for a command, which always wakes the driver. No task hop and no allocation sits on the
//! publish path. What the state machine reports is fanned out to the handles by
//! [`crate::router`].

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use amqp_wire::{basic, FieldTable, ReplyCode, ShortStr};
use futures_core::Stream;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::oneshot;
use tracing::Instrument;

use crate::channel::{Channel, ChannelCore};
use crate::config::{ConnectionConfig, Endpoint};
use crate::error::{CloseReason, Error, Initiator, Result, Scope};
use crate::mailbox::{lock, Mailbox, Receiver};
use crate::message::{Delivery, ReturnedMessage};
use crate::proto::{CommandError, Proto, Reply, Tuning};
use crate::recovery::Topology;

/// What to do when a reply arrives, besides handing it to the waiting future.
#[derive(Debug)]
pub(crate) enum Then {
    Nothing,
    /// basic.consume-ok: start feeding this mailbox; `consume` is kept for recovery.
    Consume {
        mailbox: Arc<Mailbox<Delivery>>,
        consume: basic::Consume,
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

    /// Hands the outcome to whoever waits for it, if anyone still does.
    pub(crate) fn complete(mut self, result: Result<Reply>) {
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
    /// The `basic.consume` that started it, with the broker's tag: recovery sends it again.
    pub(crate) consume: basic::Consume,
}

/// Application-side state of an open channel, and what recovery restores on it.
#[derive(Debug)]
pub(crate) struct ChanEntry {
    pub(crate) core: Arc<ChannelCore>,
    pub(crate) consumers: Vec<ConsumerEntry>,
    pub(crate) returns: Option<Arc<Mailbox<ReturnedMessage>>>,
    pub(crate) flow_active: bool,
    /// The last `basic.qos` accepted, per-consumer and global.
    pub(crate) qos: Vec<basic::Qos>,
    /// In confirm mode.
    pub(crate) confirm: bool,
    /// In transaction mode.
    pub(crate) tx: bool,
    /// The application closed (or dropped) it: recovery does not reopen it.
    pub(crate) closing: bool,
}

impl ChanEntry {
    pub(crate) fn new(core: Arc<ChannelCore>) -> Self {
        Self {
            core,
            consumers: Vec::new(),
            returns: None,
            flow_active: true,
            qos: Vec::new(),
            confirm: false,
            tx: false,
            closing: false,
        }
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
    /// The connection failed and automatic recovery started.
    RecoveryStarted {
        /// Why the connection failed.
        cause: String,
    },
    /// Connecting to one endpoint failed during recovery.
    AttemptFailed {
        /// The endpoint tried.
        endpoint: String,
        /// What failed.
        error: String,
        /// How long recovery sleeps before the next endpoint (zero: the next one is tried
        /// at once).
        next_delay: Duration,
    },
    /// A new connection to this endpoint is open; channels and topology are being restored.
    Reconnected {
        /// The endpoint.
        endpoint: String,
    },
    /// Restoring an entity failed; `action` says what recovery did about it.
    EntityFailed {
        /// What, e.g. `queue "jobs"`.
        entity: String,
        /// Why.
        error: String,
        /// What recovery did: `"retrying"`, `"skipped"`, or `"retrying in the background"`
        /// (a queue whose node is down, with its bindings and consumers: see
        /// [`crate::RecoveryPolicy`]).
        action: &'static str,
    },
    /// A server-named queue was declared again and got a new name; its bindings and
    /// consumers follow it.
    QueueRenamed {
        /// The name before the failure.
        old: String,
        /// The new name.
        new: String,
    },
    /// A consumer runs again, feeding the same [`Consumer`](crate::Consumer) stream.
    ConsumerRestored {
        /// The consumer tag.
        tag: String,
    },
    /// A consumer could not be restored; its stream ended with
    /// [`Error::ConsumerLost`](crate::Error::ConsumerLost).
    ConsumerLost {
        /// The consumer tag.
        tag: String,
        /// Why.
        reason: String,
    },
    /// Recovery finished: the connection is open again.
    Recovered,
}

/// Where a connection is in its life; see [`Connection::state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionState {
    /// Open and usable.
    Open,
    /// Lost and being recovered: requests and publishes fail fast with
    /// [`Error::Recovering`].
    Recovering,
    /// Closed for good.
    Closed,
}

/// State shared by the handles and the driver.
#[derive(Debug)]
pub(crate) struct Inner {
    /// The state machine, which also keeps each channel's [`ChanEntry`].
    pub(crate) proto: Proto<Waiter, ChanEntry>,
    pub(crate) driver_waker: Option<Waker>,
    pub(crate) write_waiters: Vec<Waker>,
    pub(crate) opened: Option<oneshot::Sender<Result<ServerInfo>>>,
    pub(crate) closed: Vec<oneshot::Sender<Error>>,
    pub(crate) events: Vec<Arc<Mailbox<ConnectionEvent>>>,
    /// The final error, once the connection closed.
    pub(crate) final_error: Option<Error>,
    /// Tasks to wake once the lock is released (readers of mailboxes filled in a batch,
    /// confirm futures settled, publishers waiting for room): the guard of
    /// [`Shared::lock`] wakes them when it drops.
    pub(crate) wakes: Vec<Waker>,
    /// Open, recovering or closed; watched by [`Connection::wait_for_recovery`].
    pub(crate) state: tokio::sync::watch::Sender<ConnectionState>,
    /// Whether failures are to be recovered from, once the first handshake finished.
    pub(crate) recovery_enabled: bool,
    /// Whether failures are recovered from now.
    pub(crate) recovers: bool,
    /// The application asked to close: whatever ends the connection now (the broker's own
    /// close crossing ours, a reset) ends it for good.
    pub(crate) user_closing: bool,
    /// Why the connection was last lost.
    pub(crate) lost_cause: Option<Error>,
    /// What recovery declares again.
    pub(crate) topology: Topology,
    /// The values negotiated by the current connection.
    pub(crate) tuning: Option<Tuning>,
    /// The endpoint of the current connection.
    pub(crate) endpoint: Option<Endpoint>,
    /// How many times the connection was lost: work started for one connection (restoring a
    /// consumer in the background) stops once it changes.
    pub(crate) losses: u64,
}

impl Inner {
    /// Whether the connection is being recovered (requests fail fast meanwhile).
    pub(crate) fn is_recovering(&self) -> bool {
        *self.state.borrow() == ConnectionState::Recovering
    }

    /// The handshake's outcome, once it is known (recovery asks again for each new
    /// connection).
    pub(crate) fn opened_rx(&mut self) -> oneshot::Receiver<Result<ServerInfo>> {
        let (tx, rx) = oneshot::channel();
        self.opened = Some(tx);
        rx
    }

    /// Sets the watched state.
    pub(crate) fn set_state(&mut self, state: ConnectionState) {
        self.state.send_replace(state);
    }

    /// Drops the record of a channel the application closed while the connection was down.
    pub(crate) fn forget_channel(&mut self, id: u16) {
        if let Some(entry) = self.proto.take_user(id) {
            crate::router::close_entry(entry, &crate::router::user_channel_close());
        }
    }

    /// The application closes the connection. Returns whether a close handshake was started
    /// (otherwise the connection ended at once: it was recovering, or already closed).
    pub(crate) fn user_close(&mut self, code: ReplyCode, text: &str) -> bool {
        if self.final_error.is_some() {
            return false;
        }
        if self.is_recovering() {
            let error = Error::ConnectionClosed(Arc::new(CloseReason {
                code,
                text: text.to_owned(),
                class_id: 0,
                method_id: 0,
                initiator: Initiator::User,
                scope: Scope::Connection,
            }));
            self.finish(error);
            // A handshake or restore in progress ends too; its Closed event finds nothing left.
            self.proto.close(code, text, Instant::now());
            self.dispatch();
            return false;
        }
        self.user_closing = true;
        self.proto.close(code, text, Instant::now());
        self.dispatch();
        true
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

    /// Wakes the publishers waiting for room (or for flow, or for the broker's unblock) once
    /// the lock is released.
    pub(crate) fn wake_writers(&mut self) {
        let writers = std::mem::take(&mut self.write_waiters);
        self.wakes.extend(writers);
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

/// What the driver and the handles share.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Reached only through [`Shared::lock`].
    inner: Mutex<Inner>,
    pub(crate) consumer_buffer: usize,
    pub(crate) consumer_buffer_bytes: usize,
    pub(crate) write_buffer_limit: usize,
    pub(crate) wait_while_blocked: bool,
    /// See [`ConnectionConfig::write_stall_timeout`].
    pub(crate) write_stall_timeout: Option<Duration>,
    /// How long a synchronous request waits for its reply.
    pub(crate) request_timeout: Duration,
    /// Wakes a recovery that sleeps between attempts when the application closes.
    pub(crate) cancel: tokio::sync::Notify,
    /// The connection's lifecycle span (`amqp_connection`).
    pub(crate) span: tracing::Span,
}

/// The locked state, from [`Shared::lock`]. When it drops, after unlocking, it wakes the
/// tasks queued in [`Inner::wakes`] (readers of mailboxes filled meanwhile, confirm futures
/// settled) and, if [`wake_driver`](Self::wake_driver) was called, the driver.
pub(crate) struct Locked<'a> {
    guard: Option<MutexGuard<'a, Inner>>,
    wake_driver: bool,
}

impl Locked<'_> {
    /// Asks for the driver to run once the lock is released: a command left it output to
    /// write or a state to act on.
    pub(crate) fn wake_driver(&mut self) {
        self.wake_driver = true;
    }
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
            let driver = if self.wake_driver {
                guard.driver_waker.take()
            } else {
                None
            };
            let wakes = std::mem::take(&mut guard.wakes);
            drop(guard);
            if let Some(w) = driver {
                w.wake();
            }
            wakes.into_iter().for_each(Waker::wake);
        }
    }
}

impl Shared {
    /// The one way to the state behind the handles. `purpose` names the caller in the trace
    /// of a lock that had to wait.
    pub(crate) fn lock(&self, purpose: &'static str) -> Locked<'_> {
        let guard = match self.inner.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => {
                tracing::trace!(purpose, "waiting for the connection state");
                lock(&self.inner)
            }
        };
        Locked {
            guard: Some(guard),
            wake_driver: false,
        }
    }

    /// A command: locks for `purpose`, runs `f`, unlocks, then wakes the driver (and whatever
    /// `f` queued).
    pub(crate) fn with<R>(&self, purpose: &'static str, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut inner = self.lock(purpose);
        inner.wake_driver();
        f(&mut inner)
    }

    /// Starts the graceful close without waiting for it.
    fn close_in_background(&self) {
        self.with("connection::close_in_background", |inner| {
            inner.user_close(ReplyCode::REPLY_SUCCESS, "connection handle dropped");
        });
        self.cancel.notify_one();
    }
}

/// What the server said about itself and what was negotiated.
#[derive(Debug, Clone)]
pub(crate) struct ServerInfo {
    pub(crate) properties: FieldTable,
    pub(crate) tuning: Tuning,
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
        let mut last = None;
        for endpoint in cfg.all_endpoints() {
            let started = Instant::now();
            let io = match crate::transport::connect(&cfg, &endpoint, cfg.connect_timeout).await {
                Ok(io) => io,
                Err(e) => {
                    tracing::debug!(%endpoint, %e, "cannot connect");
                    last = Some(e);
                    continue;
                }
            };
            let mut attempt = cfg.clone();
            attempt.host.clone_from(&endpoint.host);
            attempt.port = endpoint.port;
            attempt.connect_timeout = cfg.connect_timeout.saturating_sub(started.elapsed());
            let shared = Self::new_shared(&attempt);
            let rx = {
                let mut inner = shared.lock("connection::connect_with");
                inner.endpoint = Some(endpoint.clone());
                inner.opened_rx()
            };
            match &cfg.recovery {
                Some(policy) => {
                    shared.lock("connection::connect_with").recovery_enabled = true;
                    let supervisor =
                        crate::recovery::supervise(shared.clone(), cfg.clone(), policy.clone(), io);
                    tokio::spawn(supervisor.instrument(shared.span.clone()));
                }
                None => {
                    let driver = crate::driver::run(io, shared.clone());
                    tokio::spawn(driver.instrument(shared.span.clone()));
                }
            }
            match Self::opened(shared, rx).await {
                Ok(conn) => return Ok(conn),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::Config("no endpoint to connect to".to_owned())))
    }

    /// Runs the AMQP handshake over a transport the caller has set up (TCP, TLS, a Unix
    /// socket, an in-memory pipe), then drives it from a background task.
    ///
    /// `cfg.host`, `cfg.port`, `cfg.tls`, `cfg.endpoints` and `cfg.recovery` are not used
    /// (without a way to connect again there is no recovery); everything else is.
    pub async fn open_with<T>(io: T, cfg: ConnectionConfig) -> Result<Self>
    where
        T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let shared = Self::new_shared(&cfg);
        let rx = shared.lock("connection::open_with").opened_rx();
        tokio::spawn(crate::driver::run(io, shared.clone()).instrument(shared.span.clone()));
        Self::opened(shared, rx).await
    }

    fn new_shared(cfg: &ConnectionConfig) -> Arc<Shared> {
        let span = tracing::info_span!(
            "amqp_connection",
            host = %cfg.host,
            vhost = %cfg.vhost,
            name = cfg.connection_name.as_deref().unwrap_or(""),
        );
        Arc::new(Shared {
            inner: Mutex::new(Inner {
                proto: Proto::new(cfg, Instant::now()),
                driver_waker: None,
                write_waiters: Vec::new(),
                opened: None,
                closed: Vec::new(),
                events: Vec::new(),
                final_error: None,
                wakes: Vec::new(),
                state: tokio::sync::watch::Sender::new(ConnectionState::Open),
                recovery_enabled: false,
                recovers: false,
                user_closing: false,
                lost_cause: None,
                topology: Topology::default(),
                tuning: None,
                endpoint: None,
                losses: 0,
            }),
            consumer_buffer: cfg.consumer_buffer.max(1),
            consumer_buffer_bytes: cfg.consumer_buffer_bytes.max(1),
            write_buffer_limit: cfg.write_buffer_limit.max(1),
            write_stall_timeout: cfg.write_stall_timeout,
            wait_while_blocked: cfg.wait_while_blocked,
            request_timeout: cfg.request_timeout,
            cancel: tokio::sync::Notify::new(),
            span,
        })
    }

    async fn opened(
        shared: Arc<Shared>,
        rx: oneshot::Receiver<Result<ServerInfo>>,
    ) -> Result<Self> {
        let server = match rx.await {
            Ok(r) => r?,
            Err(_) => return Err(shared.lock("connection::opened").connection_error()),
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
        let rx = self.guard.shared.with("connection::close_with", |inner| {
            let (tx, rx) = oneshot::channel();
            match &inner.final_error {
                Some(e) => {
                    let _ = tx.send(e.clone());
                }
                None => {
                    inner.closed.push(tx);
                    inner.user_close(code, text);
                }
            }
            rx
        });
        self.guard.shared.cancel.notify_one();
        match rx.await {
            Ok(Error::ConnectionClosed(r)) if r.initiator == Initiator::User => Ok(()),
            Ok(e) => Err(e),
            Err(_) => Ok(()),
        }
    }

    /// Waits until the connection closes, for whatever reason, and returns why.
    pub async fn closed(&self) -> Error {
        let rx = self.guard.shared.with("connection::closed", |inner| {
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
            Err(_) => self
                .guard
                .shared
                .lock("connection::closed")
                .connection_error(),
        }
    }

    /// Whether the connection is open (not closing, not closed, not recovering).
    pub fn is_open(&self) -> bool {
        let inner = self.guard.shared.lock("connection::is_open");
        inner.proto.is_open() && !inner.is_recovering()
    }

    /// Open, recovering or closed.
    pub fn state(&self) -> ConnectionState {
        *self.guard.shared.lock("connection::state").state.borrow()
    }

    /// A watch of [`state`](Self::state): changes as the connection is lost, recovered and
    /// closed.
    pub fn watch_state(&self) -> tokio::sync::watch::Receiver<ConnectionState> {
        self.guard
            .shared
            .lock("connection::watch_state")
            .state
            .subscribe()
    }

    /// Waits until the connection is open again: at once if it is open, after recovery if it
    /// is recovering. Fails with the final error if the connection closes instead (the
    /// application closed it, or recovery gave up).
    pub async fn wait_for_recovery(&self) -> Result<()> {
        let mut watch = self.watch_state();
        let state = match watch.wait_for(|s| *s != ConnectionState::Recovering).await {
            Ok(s) => *s,
            Err(_) => ConnectionState::Closed,
        };
        match state {
            ConnectionState::Open => Ok(()),
            _ => Err(self
                .guard
                .shared
                .lock("connection::wait_for_recovery")
                .connection_error()),
        }
    }

    /// The broker this connection is (or was last) connected to.
    pub fn endpoint(&self) -> Option<Endpoint> {
        self.guard
            .shared
            .lock("connection::endpoint")
            .endpoint
            .clone()
    }

    /// Whether the broker currently blocks publishing on this connection.
    pub fn is_blocked(&self) -> bool {
        self.guard
            .shared
            .lock("connection::is_blocked")
            .proto
            .is_blocked()
    }

    /// The server's properties from `connection.start` (product, version, capabilities, …).
    pub fn server_properties(&self) -> &FieldTable {
        &self.guard.server.properties
    }

    /// The negotiated channel_max, frame_max and heartbeat.
    ///
    /// After a recovery these are the values of the new connection.
    pub fn negotiated(&self) -> Negotiated {
        let t = self
            .guard
            .shared
            .lock("connection::negotiated")
            .tuning
            .unwrap_or(self.guard.server.tuning);
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
        self.guard.shared.with("connection::events", |inner| {
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
            Poll::Ready(Err(_)) => Poll::Ready(Err(self
                .shared
                .lock("connection::reply_future")
                .connection_error())),
            Poll::Pending => Poll::Pending,
        }
    }
}
