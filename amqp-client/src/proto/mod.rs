//! The sans-IO connection: a state machine that takes frames and the current time, and hands
//! back bytes to write, events, and the next deadline. No sockets, no tasks, no tokio: the
//! driver in [`crate::driver`] moves bytes and timers, and everything protocol-shaped lives
//! here, where tests can script a peer frame by frame.
//!
//! It covers the handshake (start/start-ok with SASL, tune/tune-ok, open/open-ok), channel
//! open/close, matching of synchronous replies per channel, assembly of content (method +
//! header + bodies), heartbeats, blocked/unblocked, both close handshakes, and turning protocol
//! violations into a connection close with the right reply code.
//!
//! `T` is an opaque token the caller attaches to each synchronous request; it comes back in the
//! [`Event::Reply`] that answers it, or in the list of requests failed by a close.

pub(crate) mod encode;
mod names;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use amqp_wire::{
    basic, channel, connection, BasicProperties, FieldTable, Frame, FrameDecoder, Method,
    PublishRef, ReplyCode, ShortStr, WireError,
};
use bytes::{Bytes, BytesMut};

use crate::auth::SaslMechanism;
use crate::config::ConnectionConfig;
use crate::error::{CloseReason, Error, Initiator, Scope};

pub(crate) use names::method_name;

/// The protocol header a client opens with.
const PROTOCOL_HEADER: &[u8; 8] = b"AMQP\x00\x00\x09\x01";
/// Spec: frame-min-size. Peers must accept frames this large before tuning.
const FRAME_MIN_SIZE: u32 = 4096;
/// The largest frame accepted before tune: generous, since some servers announce big
/// property tables in connection.start.
const HANDSHAKE_FRAME_MAX: u32 = 131_072;

/// What `connection.tune` settled on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tuning {
    /// Highest usable channel number (0 never: "no limit" is stored as 65535).
    pub(crate) channel_max: u16,
    /// Largest frame in octets (0: no limit).
    pub(crate) frame_max: u32,
    /// Heartbeat interval in seconds (0: none).
    pub(crate) heartbeat: u16,
}

/// A reply to a synchronous request.
#[derive(Debug)]
pub(crate) enum Reply {
    /// The reply method (`queue.declare-ok`, `basic.get-empty`, …).
    Method(Method),
    /// `basic.get-ok` with its message.
    GetOk(Box<(basic::GetOk, BasicProperties, Bytes)>),
}

/// Something the state machine tells its owner.
#[derive(Debug)]
pub(crate) enum Event<T> {
    /// The handshake finished; the connection is open.
    Opened {
        server_properties: FieldTable,
        tuning: Tuning,
    },
    /// The reply to the request that carried `token`.
    Reply {
        channel: u16,
        token: T,
        reply: Reply,
    },
    /// A message for a consumer.
    Delivery {
        channel: u16,
        deliver: basic::Deliver,
        properties: BasicProperties,
        body: Bytes,
    },
    /// A message the broker could not route (`mandatory`) and sent back.
    Returned {
        channel: u16,
        returned: basic::Return,
        properties: BasicProperties,
        body: Bytes,
    },
    /// A publisher confirm: `ack` (or nack) for `delivery_tag`, and all before it if
    /// `multiple`.
    Confirm {
        channel: u16,
        delivery_tag: u64,
        multiple: bool,
        ack: bool,
    },
    /// The server cancelled a consumer.
    ConsumerCancelled {
        channel: u16,
        consumer_tag: ShortStr,
    },
    /// The server asked to pause (`false`) or resume (`true`) publishing on a channel.
    Flow { channel: u16, active: bool },
    /// The broker blocked publishing on this connection (`connection.blocked`).
    Blocked { reason: String },
    /// The broker lifted the block.
    Unblocked,
    /// A channel closed; `pending` are the requests it failed.
    ChannelClosed {
        channel: u16,
        reason: Arc<CloseReason>,
        pending: Vec<T>,
    },
    /// The connection closed (or failed); `pending` are every request it failed. No events
    /// follow.
    Closed { error: Error, pending: Vec<T> },
}

/// Why a command could not be issued.
#[derive(Debug, Clone)]
pub(crate) enum CommandError {
    /// The connection is closing or closed, with this error.
    Connection(Error),
    /// The channel is not open (never was, closing, or closed).
    ChannelNotOpen,
    /// Every channel number is taken.
    ChannelsExhausted(u16),
    /// The command cannot be encoded (e.g. properties too large for one frame); nothing was
    /// sent.
    Invalid(WireError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Protocol header sent, waiting for connection.start.
    AwaitStart,
    /// start-ok sent, waiting for connection.tune (or secure, or close).
    AwaitTune,
    /// tune-ok and open sent, waiting for open-ok.
    AwaitOpenOk,
    Open,
    /// connection.close sent; waiting for close-ok.
    Closing,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChanPhase {
    Opening,
    Open,
    /// channel.close sent; everything but close/close-ok is discarded.
    Closing,
    /// Both sides sent channel.close: the server's was answered and the channel reported
    /// closed with its reason; the number stays taken until the close-ok for ours arrives.
    AwaitCloseOk,
}

/// (class id, method id) pairs that answer a request.
type Expect = &'static [(u16, u16)];

/// A message being assembled from method, header and body frames.
#[derive(Debug)]
struct Assembly<T> {
    kind: Incoming<T>,
    header: Option<(u64, BasicProperties)>,
    body: Body,
}

#[derive(Debug)]
enum Incoming<T> {
    Deliver(basic::Deliver),
    Return(basic::Return),
    GetOk(basic::GetOk, T),
}

#[derive(Debug)]
enum Body {
    Empty,
    /// Arrived in one frame: the frame's own bytes, no copy.
    One(Bytes),
    Many(BytesMut),
}

impl Body {
    fn len(&self) -> usize {
        match self {
            Self::Empty => 0,
            Self::One(b) => b.len(),
            Self::Many(b) => b.len(),
        }
    }

    fn push(&mut self, payload: Bytes, expected: u64) {
        *self = match std::mem::replace(self, Self::Empty) {
            Self::Empty => Self::One(payload),
            Self::One(first) => {
                // Reserve what was announced, but never trust a huge announced size for more
                // than what has arrived plus a few megabytes.
                let cap = (expected as usize).min(first.len() + payload.len() + (4 << 20));
                let mut many = BytesMut::with_capacity(cap);
                many.extend_from_slice(&first);
                many.extend_from_slice(&payload);
                Self::Many(many)
            }
            Self::Many(mut many) => {
                many.extend_from_slice(&payload);
                Self::Many(many)
            }
        }
    }

    fn into_bytes(self) -> Bytes {
        match self {
            Self::Empty => Bytes::new(),
            Self::One(b) => b,
            Self::Many(b) => b.freeze(),
        }
    }
}

#[derive(Debug)]
struct Chan<T> {
    phase: ChanPhase,
    rpcs: VecDeque<(Expect, T)>,
    content: Option<Assembly<T>>,
    /// In confirm mode: the tag the next publish gets.
    next_publish_tag: Option<u64>,
}

impl<T> Chan<T> {
    fn drain_tokens(&mut self) -> Vec<T> {
        let mut out: Vec<T> = self.rpcs.drain(..).map(|(_, t)| t).collect();
        if let Some(Assembly {
            kind: Incoming::GetOk(_, token),
            ..
        }) = self.content.take()
        {
            out.push(token);
        }
        out
    }
}

/// Heartbeat bookkeeping: checks run every half interval.
#[derive(Debug)]
struct Heartbeat {
    interval: Duration,
    next_check: Instant,
}

/// Settings the state machine needs from the configuration.
#[derive(Debug, Clone)]
struct Settings {
    username: String,
    password: String,
    mechanisms: Vec<SaslMechanism>,
    vhost: String,
    locale: String,
    client_properties: FieldTable,
    channel_max: u16,
    frame_max: u32,
    heartbeat: u16,
    connect_timeout: Duration,
    close_timeout: Duration,
    max_message_size: u64,
}

/// The connection state machine.
#[derive(Debug)]
pub(crate) struct Proto<T> {
    settings: Settings,
    phase: Phase,
    decoder: FrameDecoder,
    out: BytesMut,
    tuning: Tuning,
    server_properties: FieldTable,
    channels: Vec<Option<Chan<T>>>,
    /// Where the search for a free channel number starts.
    next_channel: u16,
    events: VecDeque<Event<T>>,
    heartbeat: Option<Heartbeat>,
    last_received: Instant,
    wrote_since_check: bool,
    read_paused: bool,
    /// Handshake or close deadline.
    deadline: Option<Instant>,
    /// Set once the connection is closing or closed: what commands fail with.
    error: Option<Error>,
    /// Whether [`Event::Closed`] has been emitted.
    closed_reported: bool,
    /// Whether the connection has been declared blocked by the broker.
    blocked: bool,
}

impl<T> Proto<T> {
    /// A connection about to start: the protocol header is already queued for writing, and the
    /// handshake must finish by `now + cfg.connect_timeout`.
    pub(crate) fn new(cfg: &ConnectionConfig, now: Instant) -> Self {
        let mut out = BytesMut::with_capacity(64 * 1024);
        out.extend_from_slice(PROTOCOL_HEADER);
        Self {
            settings: Settings {
                username: cfg.credentials.username.clone(),
                password: cfg.credentials.password.clone(),
                mechanisms: cfg.auth_mechanisms.clone(),
                vhost: cfg.vhost.clone(),
                locale: cfg.locale.clone(),
                client_properties: cfg
                    .client_properties
                    .to_table(cfg.connection_name.as_deref()),
                channel_max: cfg.channel_max,
                frame_max: cfg.frame_max,
                heartbeat: cfg.heartbeat,
                connect_timeout: cfg.connect_timeout,
                close_timeout: cfg.close_timeout,
                max_message_size: cfg.max_message_size,
            },
            phase: Phase::AwaitStart,
            decoder: FrameDecoder::new(HANDSHAKE_FRAME_MAX),
            out,
            tuning: Tuning {
                channel_max: 0,
                frame_max: FRAME_MIN_SIZE,
                heartbeat: 0,
            },
            server_properties: FieldTable::new(),
            channels: Vec::new(),
            next_channel: 1,
            events: VecDeque::new(),
            heartbeat: None,
            last_received: now,
            wrote_since_check: false,
            read_paused: false,
            deadline: Some(now + cfg.connect_timeout),
            error: None,
            closed_reported: false,
            blocked: false,
        }
    }

    // ----- queries ------------------------------------------------------------------------

    /// Whether the handshake finished and no close has started.
    pub(crate) fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }

    /// Whether the connection is fully closed and the owner may drop the transport once the
    /// pending output is written.
    pub(crate) fn is_finished(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// The error commands fail with once the connection is closing or closed.
    pub(crate) fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// The negotiated parameters (meaningful once open).
    #[cfg(test)]
    pub(crate) fn tuning(&self) -> Tuning {
        self.tuning
    }

    /// Whether the broker has blocked this connection.
    pub(crate) fn is_blocked(&self) -> bool {
        self.blocked
    }

    /// How many octets are queued for writing.
    pub(crate) fn pending_output(&self) -> usize {
        self.out.len()
    }

    /// The next instant [`handle_timeout`](Self::handle_timeout) must be called at.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let hb = self
            .heartbeat
            .as_ref()
            .filter(|_| matches!(self.phase, Phase::Open | Phase::AwaitOpenOk))
            .map(|h| h.next_check);
        match (hb, self.deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    // ----- output ---------------------------------------------------------------------------

    /// Moves everything queued for writing into `dst` (which should be empty), by swapping
    /// buffers so neither side reallocates in the steady state.
    pub(crate) fn take_output(&mut self, dst: &mut BytesMut) {
        if !self.out.is_empty() {
            self.wrote_since_check = true;
            std::mem::swap(&mut self.out, dst);
        }
    }

    /// The next event, if any.
    pub(crate) fn poll_event(&mut self) -> Option<Event<T>> {
        self.events.pop_front()
    }

    // ----- input ----------------------------------------------------------------------------

    /// Takes the next complete frame off `buf`. A malformed stream closes the connection
    /// (reported as an event) and yields `None`, as does an incomplete frame.
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> Option<Frame> {
        if self.phase == Phase::Closed {
            buf.clear();
            return None;
        }
        match self.decoder.decode(buf) {
            Ok(frame) => frame,
            Err(e) => {
                buf.clear();
                self.wire_error(e);
                None
            }
        }
    }

    /// Notes that bytes arrived at `now` (any bytes prove the peer alive).
    pub(crate) fn note_received(&mut self, now: Instant) {
        self.last_received = now;
    }

    /// Tells the state machine the owner has stopped (or resumed) reading from the socket, so
    /// that the peer's silence meanwhile is not taken for death.
    pub(crate) fn set_read_paused(&mut self, paused: bool, now: Instant) {
        if self.read_paused && !paused {
            self.last_received = now;
        }
        self.read_paused = paused;
    }

    /// The transport reached end of file.
    pub(crate) fn handle_eof(&mut self) {
        let what = match self.phase {
            Phase::Closed => return,
            Phase::Closing => {
                // The peer closed the socket instead of answering close-ok: close is done.
                self.finish_close();
                return;
            }
            Phase::AwaitStart => "before connection.start (is this an AMQP 0-9-1 port?)",
            Phase::AwaitTune => "after the login was sent (credentials refused?)",
            Phase::AwaitOpenOk => "while opening the virtual host",
            Phase::Open => "without an AMQP close",
        };
        self.fail(
            Error::io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("the peer closed the connection {what}"),
            )),
            None,
        );
    }

    /// Reading or writing the transport failed.
    pub(crate) fn handle_io_error(&mut self, e: std::io::Error) {
        if self.phase == Phase::Closing && self.error.is_some() {
            self.finish_close();
            return;
        }
        if self.phase != Phase::Closed {
            self.fail(Error::io(e), None);
        }
    }

    /// Timers: heartbeats, the peer's silence, handshake and close deadlines.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if let Some(deadline) = self.deadline {
            if now >= deadline {
                self.deadline = None;
                match self.phase {
                    Phase::AwaitStart | Phase::AwaitTune | Phase::AwaitOpenOk => {
                        return self
                            .fail(Error::ConnectTimeout(self.settings.connect_timeout), None);
                    }
                    Phase::Closing => {
                        self.finish_close();
                        return;
                    }
                    Phase::Open | Phase::Closed => {}
                }
            }
        }
        let Some(hb) = &mut self.heartbeat else {
            return;
        };
        if now < hb.next_check || !matches!(self.phase, Phase::Open | Phase::AwaitOpenOk) {
            return;
        }
        let interval = hb.interval;
        // Catch up without firing repeatedly after a long stall of the caller.
        while hb.next_check <= now {
            hb.next_check += interval / 2;
        }
        // Spec: a peer that receives nothing for two intervals treats the connection as dead.
        if !self.read_paused && now.duration_since(self.last_received) >= interval * 2 {
            self.fail(Error::MissedHeartbeats(interval), None);
            self.phase = Phase::Closed;
            return;
        }
        if !self.wrote_since_check && self.out.is_empty() {
            encode::heartbeat(&mut self.out);
        }
        self.wrote_since_check = false;
    }

    /// Feeds one frame.
    pub(crate) fn handle_frame(&mut self, frame: Frame) {
        tracing::trace!(?frame, "frame in");
        match frame {
            Frame::Heartbeat { .. } => {}
            Frame::Method { channel: 0, method } => self.connection_method(method),
            Frame::Method { channel, method } => {
                if method.class_id() == connection::CLASS_ID {
                    return self.violation(
                        ReplyCode::COMMAND_INVALID,
                        format!("{} on channel {channel}, not 0", method.name()),
                        &method,
                    );
                }
                match self.phase {
                    Phase::Open => self.channel_method(channel, method),
                    Phase::Closing | Phase::Closed => {}
                    _ => self.violation(
                        ReplyCode::UNEXPECTED_FRAME,
                        format!("{} before the connection was open", method.name()),
                        &method,
                    ),
                }
            }
            Frame::Header { channel, header } => match self.phase {
                Phase::Open if channel != 0 => self.content_header(
                    channel,
                    header.class_id,
                    header.body_size,
                    header.properties.decode(),
                ),
                Phase::Closing | Phase::Closed => {}
                _ => self.violation_ids(
                    ReplyCode::UNEXPECTED_FRAME,
                    format!("content header on channel {channel}"),
                    0,
                    0,
                ),
            },
            Frame::Body { channel, payload } => match self.phase {
                Phase::Open if channel != 0 => self.content_body(channel, payload),
                Phase::Closing | Phase::Closed => {}
                _ => self.violation_ids(
                    ReplyCode::UNEXPECTED_FRAME,
                    format!("content body on channel {channel}"),
                    0,
                    0,
                ),
            },
        }
    }

    // ----- commands -------------------------------------------------------------------------

    fn check_open(&self) -> Result<(), CommandError> {
        match self.phase {
            Phase::Open => Ok(()),
            _ => Err(CommandError::Connection(self.error.clone().unwrap_or_else(
                || {
                    Error::ConnectionClosed(Arc::new(CloseReason {
                        code: ReplyCode::CONNECTION_FORCED,
                        text: "connection is not open".to_owned(),
                        class_id: 0,
                        method_id: 0,
                        initiator: Initiator::Library,
                        scope: Scope::Connection,
                    }))
                },
            ))),
        }
    }

    fn open_chan(&mut self, channel: u16) -> Result<&mut Chan<T>, CommandError> {
        self.check_open()?;
        match self.channels.get_mut(usize::from(channel)) {
            Some(Some(c)) if matches!(c.phase, ChanPhase::Opening | ChanPhase::Open) => Ok(c),
            _ => Err(CommandError::ChannelNotOpen),
        }
    }

    /// Opens a channel on the lowest free number; `token` comes back with `channel.open-ok`.
    pub(crate) fn open_channel(&mut self, token: T) -> Result<u16, CommandError> {
        self.check_open()?;
        let max = self.tuning.channel_max;
        let free = |chans: &[Option<Chan<T>>], id: u16| {
            chans.get(usize::from(id)).is_none_or(|c| c.is_none())
        };
        let mut id = self.next_channel.clamp(1, max.max(1));
        let mut tries = 0u32;
        while !free(&self.channels, id) {
            id = if id >= max { 1 } else { id + 1 };
            tries += 1;
            if tries > u32::from(max) {
                return Err(CommandError::ChannelsExhausted(max));
            }
        }
        self.next_channel = if id >= max { 1 } else { id + 1 };
        self.insert_channel(id, token);
        Ok(id)
    }

    /// Opens channel number `id` (which must be free), as recovery does to give a channel its
    /// old number back.
    pub(crate) fn open_channel_at(&mut self, id: u16, token: T) -> Result<(), CommandError> {
        self.check_open()?;
        let taken = matches!(self.channels.get(usize::from(id)), Some(Some(_)));
        if id == 0 || id > self.tuning.channel_max || taken {
            return Err(CommandError::ChannelsExhausted(self.tuning.channel_max));
        }
        self.insert_channel(id, token);
        Ok(())
    }

    fn insert_channel(&mut self, id: u16, token: T) {
        let idx = usize::from(id);
        if self.channels.len() <= idx {
            self.channels.resize_with(idx + 1, || None);
        }
        let mut rpcs = VecDeque::new();
        rpcs.push_back((expect_for(channel::CLASS_ID, 10), token));
        if let Some(slot) = self.channels.get_mut(idx) {
            *slot = Some(Chan {
                phase: ChanPhase::Opening,
                rpcs,
                content: None,
                next_publish_tag: None,
            });
        }
        encode::method(&mut self.out, id, &Method::ChannelOpen(channel::Open {}));
    }

    /// Sends a synchronous method; `token` comes back with its reply.
    pub(crate) fn call(
        &mut self,
        channel: u16,
        method: &Method,
        token: T,
    ) -> Result<(), CommandError> {
        let chan = self.open_chan(channel)?;
        let expect = expect_for(method.class_id(), method.method_id());
        if let Method::ConfirmSelect(_) = method {
            // Publishes are counted from the moment the broker sees confirm.select, so
            // counting starts now, not at select-ok.
            if chan.next_publish_tag.is_none() {
                chan.next_publish_tag = Some(1);
            }
        }
        chan.rpcs.push_back((expect, token));
        encode::method(&mut self.out, channel, method);
        Ok(())
    }

    /// Sends an asynchronous method (ack, nack, reject, recover-async, cancel with no-wait…).
    pub(crate) fn send(&mut self, channel: u16, method: &Method) -> Result<(), CommandError> {
        self.open_chan(channel)?;
        encode::method(&mut self.out, channel, method);
        Ok(())
    }

    /// Publishes a message. Returns its delivery tag when the channel is in confirm mode.
    ///
    /// The names must already be checked against their domains.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn publish(
        &mut self,
        channel: u16,
        exchange: &str,
        routing_key: &str,
        mandatory: bool,
        immediate: bool,
        properties: &BasicProperties,
        body: &[u8],
    ) -> Result<Option<u64>, CommandError> {
        let frame_max = self.tuning.frame_max;
        self.open_chan(channel)?;
        let publish = PublishRef {
            exchange,
            routing_key,
            mandatory,
            immediate,
        };
        encode::publish(
            &mut self.out,
            channel,
            &publish,
            properties,
            body,
            frame_max,
        )
        .map_err(CommandError::Invalid)?;
        let chan = self.open_chan(channel)?;
        let tag = chan.next_publish_tag;
        if let Some(t) = tag {
            chan.next_publish_tag = Some(t + 1);
        }
        Ok(tag)
    }

    /// Starts closing a channel; `token` comes back with `channel.close-ok`.
    pub(crate) fn close_channel(
        &mut self,
        channel: u16,
        code: ReplyCode,
        text: &str,
        token: T,
    ) -> Result<(), CommandError> {
        self.check_open()?;
        let Some(Some(chan)) = self.channels.get_mut(usize::from(channel)) else {
            return Err(CommandError::ChannelNotOpen);
        };
        if chan.phase == ChanPhase::AwaitCloseOk {
            return Err(CommandError::ChannelNotOpen);
        }
        chan.rpcs
            .push_back((expect_for(channel::CLASS_ID, 40), token));
        if chan.phase != ChanPhase::Closing {
            chan.phase = ChanPhase::Closing;
            let close = channel::Close {
                reply_code: code,
                reply_text: short(text),
                class_id: 0,
                method_id: 0,
            };
            encode::method(&mut self.out, channel, &Method::ChannelClose(close));
        }
        Ok(())
    }

    /// Drops the connection at once with `error` (nothing is sent): recovery gives up on a
    /// connection it could not restore.
    pub(crate) fn abort(&mut self, error: Error) {
        self.fail(error, None);
    }

    /// Starts the graceful close of the connection. [`Event::Closed`] follows when the server
    /// answers (or the close timeout passes).
    pub(crate) fn close(&mut self, code: ReplyCode, text: &str, now: Instant) {
        match self.phase {
            Phase::Closing | Phase::Closed => return,
            Phase::Open | Phase::AwaitOpenOk => {
                let close = connection::Close {
                    reply_code: code,
                    reply_text: short(text),
                    class_id: 0,
                    method_id: 0,
                };
                encode::method(&mut self.out, 0, &Method::ConnectionClose(close));
                self.phase = Phase::Closing;
                self.deadline = Some(now + self.settings.close_timeout);
            }
            Phase::AwaitStart | Phase::AwaitTune => self.phase = Phase::Closed,
        }
        self.error = Some(Error::ConnectionClosed(Arc::new(CloseReason {
            code,
            text: text.to_owned(),
            class_id: 0,
            method_id: 0,
            initiator: Initiator::User,
            scope: Scope::Connection,
        })));
        if self.phase == Phase::Closed {
            self.report_closed();
        }
    }

    // ----- connection class -----------------------------------------------------------------

    fn connection_method(&mut self, method: Method) {
        match (self.phase, method) {
            (Phase::AwaitStart, Method::ConnectionStart(start)) => self.on_start(start),
            (Phase::AwaitTune, Method::ConnectionTune(tune)) => self.on_tune(tune),
            (Phase::AwaitTune, Method::ConnectionSecure(_)) => self.fail(
                Error::Authentication(
                    "the server sent a SASL challenge, which PLAIN, AMQPLAIN and EXTERNAL never \
                     answer"
                        .to_owned(),
                ),
                None,
            ),
            (Phase::AwaitOpenOk, Method::ConnectionOpenOk(_)) => {
                self.phase = Phase::Open;
                self.deadline = None;
                self.events.push_back(Event::Opened {
                    server_properties: std::mem::take(&mut self.server_properties),
                    tuning: self.tuning,
                });
            }
            (Phase::Closed, _) => {}
            (_, Method::ConnectionClose(close)) => {
                encode::method(
                    &mut self.out,
                    0,
                    &Method::ConnectionCloseOk(connection::CloseOk {}),
                );
                let reason = CloseReason {
                    code: close.reply_code,
                    text: close.reply_text.as_str().to_owned(),
                    class_id: close.class_id,
                    method_id: close.method_id,
                    initiator: Initiator::Server,
                    scope: Scope::Connection,
                };
                let error = if self.phase == Phase::AwaitTune
                    && close.reply_code == ReplyCode::ACCESS_REFUSED
                {
                    // With authentication_failure_close a refused login arrives here, in
                    // answer to start-ok. (A 403 after tune refuses the virtual host and keeps
                    // its close reason.)
                    Error::Authentication(refused_login_text(&reason.text))
                } else {
                    Error::ConnectionClosed(Arc::new(reason))
                };
                if self.phase == Phase::Closing {
                    // Both sides closed at once: ours is answered by theirs. Unless a
                    // failure was already reported, the connection ends with the server's
                    // reason (so the application's close() returns it).
                    if !self.closed_reported {
                        self.error = Some(error);
                    }
                    self.finish_close();
                } else {
                    self.phase = Phase::Closed;
                    self.error = Some(error.clone());
                    self.report(error);
                }
            }
            (Phase::Closing, Method::ConnectionCloseOk(_)) => self.finish_close(),
            (Phase::Closing, _) => {}
            (Phase::Open, Method::ConnectionBlocked(b)) => {
                self.blocked = true;
                self.events.push_back(Event::Blocked {
                    reason: b.reason.as_str().to_owned(),
                });
            }
            (Phase::Open, Method::ConnectionUnblocked(_)) => {
                self.blocked = false;
                self.events.push_back(Event::Unblocked);
            }
            (_, other) => {
                let text = format!("unexpected {} on channel 0", other.name());
                self.violation(ReplyCode::UNEXPECTED_FRAME, text, &other);
            }
        }
    }

    fn on_start(&mut self, start: connection::Start) {
        if (start.version_major, start.version_minor) != (0, 9) {
            return self.fail(
                Error::ProtocolVersion(amqp_wire::ProtocolHeader {
                    protocol_id: 0,
                    major: start.version_major,
                    minor: start.version_minor,
                    revision: 0,
                }),
                None,
            );
        }
        let offered = String::from_utf8_lossy(&start.mechanisms).into_owned();
        let offered_list: Vec<&str> = offered.split_ascii_whitespace().collect();
        let Some(mechanism) = self.settings.mechanisms.iter().copied().find(|m| {
            offered_list
                .iter()
                .any(|o| o.eq_ignore_ascii_case(m.name()))
        }) else {
            let wanted: Vec<&str> = self.settings.mechanisms.iter().map(|m| m.name()).collect();
            return self.fail(
                Error::Authentication(format!(
                    "no common SASL mechanism: the server offers [{}], the client is configured \
                     for [{}]",
                    offered_list.join(", "),
                    wanted.join(", ")
                )),
                None,
            );
        };
        let locales = String::from_utf8_lossy(&start.locales).into_owned();
        let locale = if locales
            .split_ascii_whitespace()
            .any(|l| l == self.settings.locale)
        {
            self.settings.locale.clone()
        } else {
            locales
                .split_ascii_whitespace()
                .next()
                .unwrap_or(&self.settings.locale)
                .to_owned()
        };
        let response = sasl_response(mechanism, &self.settings.username, &self.settings.password);
        self.server_properties = start.server_properties;
        let start_ok = connection::StartOk {
            client_properties: self.settings.client_properties.clone(),
            mechanism: ShortStr::from_static(mechanism.name()),
            response,
            locale: short(&locale),
        };
        encode::method(&mut self.out, 0, &Method::from(start_ok));
        self.phase = Phase::AwaitTune;
    }

    fn on_tune(&mut self, tune: connection::Tune) {
        let channel_max = negotiate(
            u32::from(self.settings.channel_max),
            u32::from(tune.channel_max),
        );
        let frame_max = negotiate(self.settings.frame_max, tune.frame_max);
        let heartbeat = negotiate(
            u32::from(self.settings.heartbeat),
            u32::from(tune.heartbeat),
        );
        // Spec: frame-max is at least frame-min-size (4096).
        if frame_max != 0 && frame_max < FRAME_MIN_SIZE {
            let text = format!(
                "negotiated frame_max {frame_max} is below the minimum frame size {FRAME_MIN_SIZE}"
            );
            return self.violation(ReplyCode::SYNTAX_ERROR, text, &Method::ConnectionTune(tune));
        }
        // The values came from u16s, so they fit back.
        let channel_max = u16::try_from(channel_max).unwrap_or(u16::MAX);
        let heartbeat = u16::try_from(heartbeat).unwrap_or(u16::MAX);
        self.tuning = Tuning {
            channel_max: if channel_max == 0 {
                u16::MAX
            } else {
                channel_max
            },
            frame_max,
            heartbeat,
        };
        let tune_ok = connection::TuneOk {
            channel_max,
            frame_max,
            heartbeat,
        };
        encode::method(&mut self.out, 0, &Method::ConnectionTuneOk(tune_ok));
        let open = connection::Open {
            virtual_host: short(&self.settings.vhost),
        };
        encode::method(&mut self.out, 0, &Method::ConnectionOpen(open));
        self.decoder.set_frame_max(frame_max);
        if heartbeat > 0 {
            let interval = Duration::from_secs(u64::from(heartbeat));
            self.heartbeat = Some(Heartbeat {
                interval,
                next_check: self.last_received + interval / 2,
            });
        }
        self.phase = Phase::AwaitOpenOk;
    }

    // ----- channels -------------------------------------------------------------------------

    fn channel_method(&mut self, id: u16, method: Method) {
        let Some(Some(chan)) = self.channels.get_mut(usize::from(id)) else {
            let text = format!("{} on channel {id}, which is not open", method.name());
            return self.violation(ReplyCode::CHANNEL_ERROR, text, &method);
        };
        match chan.phase {
            ChanPhase::Closing => {
                match method {
                    Method::ChannelCloseOk(_) => self.channel_closed_by_us(id),
                    Method::ChannelClose(close) => {
                        // The closes crossed. Theirs is answered and its reason is the
                        // channel's (our close request fails with it too); ours is still
                        // owed a close-ok, so the number stays taken until it comes.
                        encode::method(
                            &mut self.out,
                            id,
                            &Method::ChannelCloseOk(channel::CloseOk {}),
                        );
                        let pending = chan.drain_tokens();
                        chan.phase = ChanPhase::AwaitCloseOk;
                        self.events.push_back(Event::ChannelClosed {
                            channel: id,
                            reason: server_channel_reason(&close),
                            pending,
                        });
                    }
                    // Spec: after sending channel.close, discard everything but
                    // close/close-ok.
                    _ => {}
                }
                return;
            }
            ChanPhase::AwaitCloseOk => {
                if let Method::ChannelCloseOk(_) = method {
                    if let Some(slot) = self.channels.get_mut(usize::from(id)) {
                        *slot = None;
                    }
                }
                return;
            }
            ChanPhase::Opening | ChanPhase::Open => {}
        }
        if chan.content.is_some() {
            let text = format!(
                "{} on channel {id} while a message's content was expected",
                method.name()
            );
            return self.violation(ReplyCode::UNEXPECTED_FRAME, text, &method);
        }
        match method {
            Method::BasicDeliver(deliver) => {
                chan.content = Some(Assembly {
                    kind: Incoming::Deliver(deliver),
                    header: None,
                    body: Body::Empty,
                });
            }
            Method::BasicReturn(returned) => {
                chan.content = Some(Assembly {
                    kind: Incoming::Return(returned),
                    header: None,
                    body: Body::Empty,
                });
            }
            Method::BasicAck(ack) => self.events.push_back(Event::Confirm {
                channel: id,
                delivery_tag: ack.delivery_tag,
                multiple: ack.multiple,
                ack: true,
            }),
            Method::BasicNack(nack) => self.events.push_back(Event::Confirm {
                channel: id,
                delivery_tag: nack.delivery_tag,
                multiple: nack.multiple,
                ack: false,
            }),
            Method::BasicCancel(cancel) => {
                if !cancel.no_wait {
                    let ok = basic::CancelOk {
                        consumer_tag: cancel.consumer_tag.clone(),
                    };
                    encode::method(&mut self.out, id, &Method::BasicCancelOk(ok));
                }
                self.events.push_back(Event::ConsumerCancelled {
                    channel: id,
                    consumer_tag: cancel.consumer_tag,
                });
            }
            Method::ChannelFlow(flow) => {
                let ok = channel::FlowOk {
                    active: flow.active,
                };
                encode::method(&mut self.out, id, &Method::ChannelFlowOk(ok));
                self.events.push_back(Event::Flow {
                    channel: id,
                    active: flow.active,
                });
            }
            Method::ChannelClose(close) => {
                encode::method(
                    &mut self.out,
                    id,
                    &Method::ChannelCloseOk(channel::CloseOk {}),
                );
                let reason = server_channel_reason(&close);
                self.remove_channel(id, reason);
            }
            reply => {
                let ids = (reply.class_id(), reply.method_id());
                // Replies to one kind of request come in order, but RabbitMQ may answer a
                // later request before an earlier one of another kind (basic.cancel-ok waits
                // for the queue process while a queue.declare-ok does not), so the reply goes
                // to the oldest request it can answer.
                let at = chan
                    .rpcs
                    .iter()
                    .position(|(expect, _)| expect.contains(&ids));
                let Some((_, token)) = at.and_then(|i| chan.rpcs.remove(i)) else {
                    let waiting = chan
                        .rpcs
                        .iter()
                        .flat_map(|(expect, _)| expect.iter())
                        .filter_map(|&(c, m)| method_name(c, m))
                        .collect::<Vec<_>>();
                    let waiting = if waiting.is_empty() {
                        "no reply".to_owned()
                    } else {
                        waiting.join(", ")
                    };
                    let text = format!(
                        "unexpected {} on channel {id} (waiting for {waiting})",
                        reply.name()
                    );
                    return self.violation(ReplyCode::UNEXPECTED_FRAME, text, &reply);
                };
                match reply {
                    Method::BasicGetOk(get_ok) => {
                        chan.content = Some(Assembly {
                            kind: Incoming::GetOk(get_ok, token),
                            header: None,
                            body: Body::Empty,
                        });
                    }
                    Method::ChannelOpenOk(_) => {
                        chan.phase = ChanPhase::Open;
                        self.events.push_back(Event::Reply {
                            channel: id,
                            token,
                            reply: Reply::Method(reply),
                        });
                    }
                    reply => self.events.push_back(Event::Reply {
                        channel: id,
                        token,
                        reply: Reply::Method(reply),
                    }),
                }
            }
        }
    }

    fn content_header(
        &mut self,
        id: u16,
        class_id: u16,
        body_size: u64,
        properties: BasicProperties,
    ) {
        let max = self.settings.max_message_size;
        let Some(Some(chan)) = self.channels.get_mut(usize::from(id)) else {
            let text = format!("content header on channel {id}, which is not open");
            return self.violation_ids(ReplyCode::CHANNEL_ERROR, text, 0, 0);
        };
        if matches!(chan.phase, ChanPhase::Closing | ChanPhase::AwaitCloseOk) {
            return;
        }
        match &mut chan.content {
            Some(assembly) if assembly.header.is_none() => {
                if class_id != basic::CLASS_ID {
                    let text = format!("content header for class {class_id} on channel {id}");
                    return self.violation_ids(ReplyCode::FRAME_ERROR, text, 0, 0);
                }
                if body_size > max {
                    let text = format!(
                        "message body of {body_size} octets exceeds the client's limit of {max}"
                    );
                    return self.violation_ids(ReplyCode::RESOURCE_ERROR, text, 0, 0);
                }
                assembly.header = Some((body_size, properties));
                if body_size == 0 {
                    self.complete_content(id);
                }
            }
            _ => {
                let text = format!("content header on channel {id} without a method before it");
                self.violation_ids(ReplyCode::UNEXPECTED_FRAME, text, 0, 0);
            }
        }
    }

    fn content_body(&mut self, id: u16, payload: Bytes) {
        let Some(Some(chan)) = self.channels.get_mut(usize::from(id)) else {
            let text = format!("content body on channel {id}, which is not open");
            return self.violation_ids(ReplyCode::CHANNEL_ERROR, text, 0, 0);
        };
        if matches!(chan.phase, ChanPhase::Closing | ChanPhase::AwaitCloseOk) {
            return;
        }
        let Some(Assembly {
            header: Some((size, _)),
            body,
            ..
        }) = &mut chan.content
        else {
            let text = format!("content body on channel {id} without a content header");
            return self.violation_ids(ReplyCode::UNEXPECTED_FRAME, text, 0, 0);
        };
        let size = *size;
        let have = body.len() as u64;
        if have + payload.len() as u64 > size {
            let text = format!(
                "content body on channel {id} overruns the announced size of {size} octets"
            );
            return self.violation_ids(ReplyCode::FRAME_ERROR, text, 0, 0);
        }
        body.push(payload, size);
        if body.len() as u64 == size {
            self.complete_content(id);
        }
    }

    fn complete_content(&mut self, id: u16) {
        let Some(Some(chan)) = self.channels.get_mut(usize::from(id)) else {
            return;
        };
        let Some(Assembly {
            kind,
            header: Some((_, properties)),
            body,
        }) = chan.content.take()
        else {
            return;
        };
        let body = body.into_bytes();
        self.events.push_back(match kind {
            Incoming::Deliver(deliver) => Event::Delivery {
                channel: id,
                deliver,
                properties,
                body,
            },
            Incoming::Return(returned) => Event::Returned {
                channel: id,
                returned,
                properties,
                body,
            },
            Incoming::GetOk(get_ok, token) => Event::Reply {
                channel: id,
                token,
                reply: Reply::GetOk(Box::new((get_ok, properties, body))),
            },
        });
    }

    /// Our channel.close was answered: the close requests succeed, anything else pending fails.
    fn channel_closed_by_us(&mut self, id: u16) {
        let Some(mut chan) = self
            .channels
            .get_mut(usize::from(id))
            .and_then(Option::take)
        else {
            return;
        };
        let close_ids = (channel::CLASS_ID, 41);
        let mut failed = Vec::new();
        for (expect, token) in chan.rpcs.drain(..) {
            if expect.contains(&close_ids) {
                self.events.push_back(Event::Reply {
                    channel: id,
                    token,
                    reply: Reply::Method(Method::ChannelCloseOk(channel::CloseOk {})),
                });
            } else {
                failed.push(token);
            }
        }
        failed.extend(chan.drain_tokens());
        self.events.push_back(Event::ChannelClosed {
            channel: id,
            reason: Arc::new(CloseReason {
                code: ReplyCode::REPLY_SUCCESS,
                text: "closed by the application".to_owned(),
                class_id: 0,
                method_id: 0,
                initiator: Initiator::User,
                scope: Scope::Channel,
            }),
            pending: failed,
        });
    }

    fn remove_channel(&mut self, id: u16, reason: Arc<CloseReason>) {
        if let Some(mut chan) = self
            .channels
            .get_mut(usize::from(id))
            .and_then(Option::take)
        {
            let pending = chan.drain_tokens();
            self.events.push_back(Event::ChannelClosed {
                channel: id,
                reason,
                pending,
            });
        }
    }

    // ----- closing and failing ----------------------------------------------------------------

    fn wire_error(&mut self, e: WireError) {
        let code = match &e {
            WireError::ProtocolVersionMismatch { server } => {
                return self.fail(Error::ProtocolVersion(*server), None);
            }
            WireError::UnknownMethod { .. } => ReplyCode::COMMAND_INVALID,
            WireError::Truncated { .. }
            | WireError::TrailingBytes { .. }
            | WireError::InvalidUtf8 { .. }
            | WireError::StringTooLong { .. }
            | WireError::UnknownFieldType { .. }
            | WireError::NestingTooDeep { .. }
            | WireError::Domain { .. } => ReplyCode::SYNTAX_ERROR,
            _ => ReplyCode::FRAME_ERROR,
        };
        if self.phase == Phase::AwaitStart {
            // Nothing AMQP has been said yet; there is no one to send a close to.
            let text = format!("{e} (is this an AMQP 0-9-1 server?)");
            return self.fail(library_close(code, text, 0, 0), None);
        }
        self.violation_ids(code, e.to_string(), 0, 0);
    }

    fn violation(&mut self, code: ReplyCode, text: String, method: &Method) {
        self.violation_ids(code, text, method.class_id(), method.method_id());
    }

    /// The peer broke the protocol: close the connection with `code` and fail everything.
    fn violation_ids(&mut self, code: ReplyCode, text: String, class_id: u16, method_id: u16) {
        if matches!(self.phase, Phase::Closing | Phase::Closed) {
            return;
        }
        tracing::warn!(code = ?code, %text, "closing the connection: protocol violation by the peer");
        let close = connection::Close {
            reply_code: code,
            reply_text: short(&text),
            class_id,
            method_id,
        };
        let error = library_close(code, text, class_id, method_id);
        self.fail(error, Some(close));
    }

    /// Ends the connection with `error`, failing every pending request. With `close`, sends it
    /// and waits for close-ok; without, the connection is closed at once.
    fn fail(&mut self, error: Error, close: Option<connection::Close>) {
        if self.phase == Phase::Closed {
            return;
        }
        match close {
            Some(close) if !matches!(self.phase, Phase::AwaitStart | Phase::Closing) => {
                encode::method(&mut self.out, 0, &Method::ConnectionClose(close));
                self.phase = Phase::Closing;
                // The close-ok wait is bounded; a dead peer does not keep us here.
                self.deadline = Some(self.last_received + self.settings.close_timeout);
            }
            _ => self.phase = Phase::Closed,
        }
        self.error = Some(error.clone());
        self.report(error);
    }

    /// Our close was answered (or timed out, or the socket went away).
    fn finish_close(&mut self) {
        self.phase = Phase::Closed;
        self.deadline = None;
        self.report_closed();
    }

    fn report_closed(&mut self) {
        let error = self.error.clone().unwrap_or_else(|| {
            library_close(
                ReplyCode::CONNECTION_FORCED,
                "connection closed".to_owned(),
                0,
                0,
            )
        });
        self.report(error);
    }

    /// Emits [`Event::Closed`] once.
    fn report(&mut self, error: Error) {
        if self.closed_reported {
            return;
        }
        self.closed_reported = true;
        let mut pending = Vec::new();
        for chan in self.channels.iter_mut().filter_map(Option::take) {
            let mut chan = chan;
            pending.extend(chan.drain_tokens());
        }
        self.events.push_back(Event::Closed { error, pending });
    }
}

/// The negotiation rule of connection.tune: the lower of the two values, where 0 means "no
/// limit" and so yields to the other side's value.
fn negotiate(client: u32, server: u32) -> u32 {
    match (client, server) {
        (0, s) => s,
        (c, 0) => c,
        (c, s) => c.min(s),
    }
}

/// Replies that answer the synchronous method `(class, method)`.
pub(crate) fn expect_for(class_id: u16, method_id: u16) -> Expect {
    match (class_id, method_id) {
        (20, 10) => &[(20, 11)],
        (20, 20) => &[(20, 21)],
        (20, 40) => &[(20, 41)],
        (40, 10) => &[(40, 11)],
        (40, 20) => &[(40, 21)],
        (40, 30) => &[(40, 31)],
        // RabbitMQ errata: exchange.unbind-ok is method 51.
        (40, 40) => &[(40, 51)],
        (50, 10) => &[(50, 11)],
        (50, 20) => &[(50, 21)],
        (50, 30) => &[(50, 31)],
        (50, 40) => &[(50, 41)],
        (50, 50) => &[(50, 51)],
        (60, 10) => &[(60, 11)],
        (60, 20) => &[(60, 21)],
        (60, 30) => &[(60, 31)],
        (60, 70) => &[(60, 71), (60, 72)],
        // RabbitMQ errata: basic.recover is answered by recover-ok.
        (60, 110) => &[(60, 111)],
        (85, 10) => &[(85, 11)],
        (90, 10) => &[(90, 11)],
        (90, 20) => &[(90, 21)],
        (90, 30) => &[(90, 31)],
        _ => &[],
    }
}

/// The reason carried by the server's `channel.close`.
fn server_channel_reason(close: &channel::Close) -> Arc<CloseReason> {
    Arc::new(CloseReason {
        code: close.reply_code,
        text: close.reply_text.as_str().to_owned(),
        class_id: close.class_id,
        method_id: close.method_id,
        initiator: Initiator::Server,
        scope: Scope::Channel,
    })
}

fn library_close(code: ReplyCode, text: String, class_id: u16, method_id: u16) -> Error {
    Error::ConnectionClosed(Arc::new(CloseReason {
        code,
        text,
        class_id,
        method_id,
        initiator: Initiator::Library,
        scope: Scope::Connection,
    }))
}

/// The message of [`Error::Authentication`] for a login refused with `ACCESS_REFUSED`: the
/// server's reply text, naming the code if the text does not.
fn refused_login_text(text: &str) -> String {
    if text.contains("ACCESS_REFUSED") {
        text.to_owned()
    } else {
        format!("ACCESS_REFUSED - {text}")
    }
}

/// A short string from text we produced; cut at 255 octets (on a character boundary) rather
/// than failing, since it is only ever a message for humans or a name we already checked.
fn short(s: &str) -> ShortStr {
    let mut end = s.len().min(ShortStr::MAX_LEN);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    ShortStr::new(s.get(..end).unwrap_or_default()).unwrap_or_default()
}

/// The SASL response for start-ok.
fn sasl_response(mechanism: SaslMechanism, username: &str, password: &str) -> Bytes {
    match mechanism {
        // RFC 4616: authzid NUL authcid NUL passwd, with an empty authzid.
        SaslMechanism::Plain => {
            let mut r = Vec::with_capacity(username.len() + password.len() + 2);
            r.push(0);
            r.extend_from_slice(username.as_bytes());
            r.push(0);
            r.extend_from_slice(password.as_bytes());
            Bytes::from(r)
        }
        // A field table's entries (without the table's own length prefix): LOGIN and PASSWORD
        // as long strings.
        SaslMechanism::AmqPlain => {
            let mut r = BytesMut::new();
            for (key, value) in [("LOGIN", username), ("PASSWORD", password)] {
                r.extend_from_slice(&[key.len() as u8]);
                r.extend_from_slice(key.as_bytes());
                r.extend_from_slice(b"S");
                r.extend_from_slice(&(value.len() as u32).to_be_bytes());
                r.extend_from_slice(value.as_bytes());
            }
            r.freeze()
        }
        // The identity comes from the TLS client certificate.
        SaslMechanism::External => Bytes::new(),
    }
}

#[cfg(test)]
mod tests;
