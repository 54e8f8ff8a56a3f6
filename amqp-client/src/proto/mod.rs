//! The sans-IO connection: a state machine that takes frames and the current time, and hands
//! back bytes to write, events, and the next deadline. No sockets, no tasks, no tokio: the
//! driver in [`crate::driver`] moves bytes and timers, and everything protocol-shaped lives
//! here, where tests can script a peer frame by frame.
//!
//! # Using it
//!
//! The owner of the transport drives a [`Proto`] in this order:
//!
//! 1. [`Proto::new`] queues the protocol header and starts the handshake deadline.
//! 2. When bytes arrive: [`note_received(now)`](Proto::note_received) (any bytes prove the
//!    peer alive, even half a frame), then [`handle_input(now, buf)`](Proto::handle_input)
//!    once per frame for as long as it returns `true`. After each frame, drain
//!    [`poll_event`](Proto::poll_event); an owner that cannot take more deliveries stops
//!    feeding frames and says so with [`set_read_paused`](Proto::set_read_paused), and says
//!    so again when it resumes.
//! 3. When the transport ends: [`handle_eof`](Proto::handle_eof) (after the frames already
//!    buffered) or [`handle_io_error`](Proto::handle_io_error).
//! 4. When [`next_deadline`](Proto::next_deadline) has passed:
//!    [`handle_timeout(now)`](Proto::handle_timeout).
//! 5. Commands from the application at any time: [`open_channel`](Proto::open_channel),
//!    [`call`](Proto::call), [`send`](Proto::send), [`publish`](Proto::publish),
//!    [`close_channel`](Proto::close_channel), [`close`](Proto::close),
//!    [`abort`](Proto::abort).
//! 6. After any of the above: [`poll_event`](Proto::poll_event) until `None`,
//!    [`take_output`](Proto::take_output) and write it, then wait until input, a command or
//!    the new [`next_deadline`](Proto::next_deadline). Once
//!    [`is_finished`](Proto::is_finished), write what is left and drop the transport.
//!
//! # Where things live
//!
//! [`handle_input`](Proto::handle_input) decodes a frame and routes it: methods on channel 0
//! to the connection class (`handshake` for start/tune/open-ok, `close` for close/close-ok,
//! blocked/unblocked here), methods on other channels to `channels` (open/close, reply
//! matching, the server's asynchronous methods), content headers and bodies to `content`
//! (assembly of deliveries, returns and get-ok). [`handle_timeout`](Proto::handle_timeout)
//! checks the handshake and close deadlines here, then `heartbeat`. Every way the connection
//! can end goes through `close`, which emits [`Event::Closed`] exactly once.
//!
//! `T` is an opaque token the caller attaches to each synchronous request; it comes back in the
//! [`Event::Reply`] that answers it, or in the list of requests failed by a close.

mod channels;
mod close;
mod content;
pub(crate) mod encode;
mod handshake;
mod heartbeat;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use amqp_wire::{
    basic, connection, ContentHeader, FieldTable, Frame, FrameDecoder, Method, RawProperties,
    ReplyCode, ShortStr, WireError,
};
use bytes::{Bytes, BytesMut};

use crate::auth::SaslMechanism;
use crate::config::ConnectionConfig;
use crate::error::{CloseReason, Error};

use channels::Chan;
use heartbeat::Heartbeat;

/// Spec: frame-min-size. Peers must accept frames this large before tuning.
const FRAME_MIN_SIZE: u32 = amqp_wire::constants::FRAME_MIN_SIZE;
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
    GetOk(Box<(basic::GetOk, RawProperties, Bytes)>),
}

/// Something the state machine tells its owner.
#[derive(Debug)]
pub(crate) enum Event<T, U = ()> {
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
        /// Checked but not decoded: the application decodes them if it looks.
        properties: RawProperties,
        body: Bytes,
    },
    /// A message the broker could not route (`mandatory`) and sent back.
    Returned {
        channel: u16,
        returned: basic::Return,
        properties: RawProperties,
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
    /// A channel closed; `pending` are the requests it failed, `user` the owner's record of
    /// it (see [`Proto::set_user`]).
    ChannelClosed {
        channel: u16,
        reason: Arc<CloseReason>,
        pending: Vec<T>,
        user: Option<U>,
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

/// The connection state machine. `U` is the owner's record of a channel, kept in the
/// channel's own record (see [`Proto::set_user`]).
#[derive(Debug)]
pub(crate) struct Proto<T, U = ()> {
    settings: Settings,
    phase: Phase,
    decoder: FrameDecoder,
    out: BytesMut,
    tuning: Tuning,
    server_properties: FieldTable,
    channels: Vec<Option<Chan<T, U>>>,
    /// Where the search for a free channel number starts.
    next_channel: u16,
    events: VecDeque<Event<T, U>>,
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

impl<T, U> Proto<T, U> {
    /// A connection about to start: the protocol header is already queued for writing, and the
    /// handshake must finish by `now + cfg.connect_timeout`.
    pub(crate) fn new(cfg: &ConnectionConfig, now: Instant) -> Self {
        let mut out = BytesMut::with_capacity(64 * 1024);
        out.extend_from_slice(&amqp_wire::ProtocolHeader::AMQP_0_9_1.to_bytes());
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
        let hb = self.heartbeat_deadline();
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
    pub(crate) fn poll_event(&mut self) -> Option<Event<T, U>> {
        self.events.pop_front()
    }

    // ----- input ----------------------------------------------------------------------------

    /// Handles the next complete frame in `buf`, which arrived by `now`: decodes it, routes it,
    /// and queues what it produces (events, output). Returns `false` when `buf` holds no
    /// complete frame, or when the stream could not be decoded (the connection is then closing
    /// or closed, reported as an event, and `buf` is emptied). The owner calls it once per
    /// frame so that it can drain events, and stop, between two frames.
    pub(crate) fn handle_input(&mut self, now: Instant, buf: &mut BytesMut) -> bool {
        if self.phase == Phase::Closed {
            buf.clear();
            return false;
        }
        // The frame is matched where the decoder returns it, and only its parts are moved on:
        // moving the whole frame first costs more than decoding it (see `FrameDecoder::decode`).
        // A whole frame proves the peer alive as much as its first bytes did.
        match self.decoder.decode(buf) {
            Ok(None) => return false,
            Ok(Some(Frame::Method { channel, method })) => {
                self.last_received = self.last_received.max(now);
                self.method_frame(channel, method);
            }
            Ok(Some(Frame::Header { channel, header })) => {
                self.last_received = self.last_received.max(now);
                self.content_header_frame(channel, header);
            }
            Ok(Some(Frame::Body { channel, payload })) => {
                self.last_received = self.last_received.max(now);
                self.content_body_frame(channel, payload);
            }
            Ok(Some(Frame::Heartbeat { .. })) => {
                self.last_received = self.last_received.max(now);
            }
            Err(e) => {
                buf.clear();
                self.wire_error(e);
                return false;
            }
        }
        true
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
        self.heartbeat_tick(now);
    }

    /// Routes one frame to the part of the state machine it concerns.
    #[cfg(test)]
    fn handle_frame(&mut self, frame: Frame) {
        match frame {
            Frame::Heartbeat { .. } => {}
            Frame::Method { channel, method } => self.method_frame(channel, method),
            Frame::Header { channel, header } => self.content_header_frame(channel, header),
            Frame::Body { channel, payload } => self.content_body_frame(channel, payload),
        }
    }

    /// A method frame.
    fn method_frame(&mut self, channel: u16, method: Method) {
        tracing::trace!(channel, ?method, "method in");
        if channel == 0 {
            return self.connection_method(method);
        }
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

    /// A content header frame.
    fn content_header_frame(&mut self, channel: u16, header: ContentHeader) {
        tracing::trace!(channel, ?header, "content header in");
        match self.phase {
            Phase::Open if channel != 0 => self.content_header(
                channel,
                header.class_id,
                header.body_size,
                header.properties,
            ),
            Phase::Closing | Phase::Closed => {}
            _ => self.violation_ids(
                ReplyCode::UNEXPECTED_FRAME,
                format!("content header on channel {channel}"),
                0,
                0,
            ),
        }
    }

    /// A content body frame.
    fn content_body_frame(&mut self, channel: u16, payload: Bytes) {
        tracing::trace!(channel, size = payload.len(), "content body in");
        match self.phase {
            Phase::Open if channel != 0 => self.content_body(channel, payload),
            Phase::Closing | Phase::Closed => {}
            _ => self.violation_ids(
                ReplyCode::UNEXPECTED_FRAME,
                format!("content body on channel {channel}"),
                0,
                0,
            ),
        }
    }

    /// A method on channel 0: the handshake, the close handshakes, blocked/unblocked.
    fn connection_method(&mut self, method: Method) {
        match (self.phase, method) {
            (Phase::AwaitStart, Method::ConnectionStart(start)) => self.on_start(*start),
            (Phase::AwaitTune, Method::ConnectionTune(tune)) => self.on_tune(tune),
            (Phase::AwaitTune, Method::ConnectionSecure(_)) => self.fail(
                Error::Authentication(
                    "the server sent a SASL challenge, which PLAIN, AMQPLAIN and EXTERNAL never \
                     answer"
                        .to_owned(),
                ),
                None,
            ),
            (Phase::AwaitOpenOk, Method::ConnectionOpenOk(_)) => self.on_open_ok(),
            (Phase::Closed, _) => {}
            (_, Method::ConnectionClose(close)) => self.on_server_close(&close),
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

#[cfg(test)]
mod tests;
