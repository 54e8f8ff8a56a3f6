//! The client's error type.
//!
//! AMQP errors keep their protocol meaning: the reply code and text, the class and method that
//! caused them, whether they closed a channel (soft) or the whole connection (hard), and who
//! started the close: the server, this library (because the peer broke the protocol or stopped
//! answering), or the application.

use core::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use amqp_wire::{ReplyCode, WireError};

use crate::tls::TlsError;
use crate::uri::UriError;

/// Who started a close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Initiator {
    /// The broker sent `connection.close` or `channel.close`.
    Server,
    /// This library closed it: the peer broke the protocol or stopped answering.
    Library,
    /// The application asked for it (`close()`, or dropping the handle).
    User,
}

impl fmt::Display for Initiator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Server => "server",
            Self::Library => "client library",
            Self::User => "application",
        })
    }
}

/// Whether an AMQP error closed one channel or the whole connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// A soft error: only the channel closed.
    Channel,
    /// A hard error: the connection closed, and every channel with it.
    Connection,
}

/// The reason carried by `connection.close` or `channel.close`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseReason {
    /// The reply code (e.g. `NOT_FOUND(404)`).
    pub code: ReplyCode,
    /// The reply text.
    pub text: String,
    /// The class of the method that caused the close (0 if none).
    pub class_id: u16,
    /// The method that caused the close (0 if none).
    pub method_id: u16,
    /// Who started the close.
    pub initiator: Initiator,
    /// Channel or connection.
    pub scope: Scope,
}

impl CloseReason {
    /// The name of the method that caused the close, e.g. `"queue.declare"`, when known.
    pub fn method_name(&self) -> Option<&'static str> {
        amqp_wire::Method::name_of(self.class_id, self.method_id)
    }

    /// Whether this is the normal, graceful close (reply code 200).
    pub fn is_normal(&self) -> bool {
        self.code.0 == 200
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.scope {
            Scope::Channel => "channel",
            Scope::Connection => "connection",
        };
        write!(
            f,
            "{what} closed by {}: {:?} {:?}",
            self.initiator, self.code, self.text
        )?;
        match self.method_name() {
            Some(name) => write!(f, " (caused by {name})"),
            None if self.class_id != 0 => {
                write!(
                    f,
                    " (caused by class {} method {})",
                    self.class_id, self.method_id
                )
            }
            None => Ok(()),
        }
    }
}

/// Everything that can go wrong in the client.
///
/// Cheap to clone: one connection failure is handed to every waiting future and stream.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub enum Error {
    /// The URI could not be parsed.
    Uri(UriError),
    /// Reading from or writing to the transport failed (this includes the peer closing the
    /// socket without an AMQP close).
    Io(Arc<io::Error>),
    /// The TLS handshake failed (or the peer answered in TLS where plain AMQP was expected);
    /// [`TlsError::kind`] says what failed.
    Tls(TlsError),
    /// Connecting and logging in took longer than the configured connect timeout.
    ConnectTimeout(Duration),
    /// The peer sent nothing for two heartbeat intervals.
    MissedHeartbeats(Duration),
    /// The connection is closed; the reason says who closed it and why.
    ConnectionClosed(Arc<CloseReason>),
    /// The channel is closed; the reason says who closed it and why. Other channels and the
    /// connection are still usable unless `scope` says otherwise.
    ChannelClosed(Arc<CloseReason>),
    /// The login failed before the connection opened: no common SASL mechanism, or the server
    /// refused the credentials.
    Authentication(String),
    /// The server speaks another protocol version (its protocol header, or the version its
    /// `connection.start` announced, is given).
    ProtocolVersion(amqp_wire::ProtocolHeader),
    /// The peer answered with something the protocol does not allow here (a reply that does
    /// not answer the request, a frame out of place). `what` names the request and what came.
    Protocol {
        /// The method or exchange this happened in, e.g. `"queue.declare"`.
        method: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// A synchronous request got no reply within the configured request timeout
    /// ([`ConnectionConfig::request_timeout`](crate::ConnectionConfig::request_timeout)).
    /// The connection and channel stay open; a late reply is discarded.
    Timeout {
        /// The request, e.g. `"basic.consume"`.
        method: &'static str,
        /// How long it waited.
        after: Duration,
    },
    /// The connection was lost while this operation was in flight (a publisher confirm that
    /// never arrived, a request whose reply never came). With automatic recovery the
    /// connection comes back; the operation may be retried (a message republished).
    ConnectionLost(Arc<Self>),
    /// The connection is recovering from a failure: nothing was sent. Retry after
    /// [`Connection::wait_for_recovery`](crate::Connection::wait_for_recovery).
    Recovering,
    /// A delivery from before a connection recovery was acknowledged (or nacked, rejected):
    /// its delivery tag means nothing on the recovered channel, so nothing was sent. The broker
    /// redelivers the message.
    StaleDelivery {
        /// The delivery's tag, from the earlier connection.
        delivery_tag: u64,
    },
    /// A value given by the application is not acceptable (a name breaking the spec's domain
    /// rules, a string too long, …). Nothing was sent.
    InvalidArgument(WireError),
    /// All channel numbers up to the negotiated `channel_max` are in use.
    ChannelsExhausted(u16),
    /// The server cancelled the consumer (`basic.cancel` from the server, e.g. because its
    /// queue was deleted).
    ConsumerCancelled(String),
    /// After a connection recovery the consumer could not be restored (its queue is gone, or
    /// the broker refused it); the stream ends with this error.
    ConsumerLost {
        /// The consumer tag.
        tag: String,
        /// Why it could not be restored.
        reason: String,
    },
    /// A configuration value is not usable (e.g. a TLS file that cannot be read).
    Config(String),
}

impl Error {
    /// The AMQP close reason, if this error is a channel or connection close.
    pub fn close_reason(&self) -> Option<&CloseReason> {
        match self {
            Self::ConnectionClosed(r) | Self::ChannelClosed(r) => Some(r),
            _ => None,
        }
    }

    /// The AMQP reply code, if this error carries one.
    pub fn reply_code(&self) -> Option<ReplyCode> {
        self.close_reason().map(|r| r.code)
    }

    /// Whether the connection is unusable after this error (as opposed to one channel, or a
    /// rejected argument).
    pub fn is_connection_error(&self) -> bool {
        match self {
            Self::ChannelClosed(_)
            | Self::InvalidArgument(_)
            | Self::ChannelsExhausted(_)
            | Self::ConsumerCancelled(_)
            | Self::ConsumerLost { .. }
            | Self::Timeout { .. }
            | Self::StaleDelivery { .. } => false,
            Self::Uri(_)
            | Self::Io(_)
            | Self::Tls(_)
            | Self::Protocol { .. }
            | Self::ConnectionLost(_)
            | Self::Recovering
            | Self::ConnectTimeout(_)
            | Self::MissedHeartbeats(_)
            | Self::ConnectionClosed(_)
            | Self::Authentication(_)
            | Self::ProtocolVersion(_)
            | Self::Config(_) => true,
        }
    }

    /// Whether retrying the same operation later may succeed without changing anything: the
    /// connection was lost or is recovering, or a request timed out.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::ConnectionLost(_) | Self::Recovering | Self::Timeout { .. }
        )
    }

    /// An I/O error; a TLS failure carried inside one becomes [`Error::Tls`].
    pub(crate) fn io(e: io::Error) -> Self {
        match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<TlsError>())
        {
            Some(tls) => Self::Tls(tls.clone()),
            None => Self::Io(Arc::new(e)),
        }
    }

    /// A reply or frame the protocol does not allow at this point.
    pub(crate) fn protocol(method: &'static str, detail: impl Into<String>) -> Self {
        Self::Protocol {
            method,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Uri(e) => e.fmt(f),
            Self::Io(e) => write!(f, "transport error: {e}"),
            Self::Tls(e) => e.fmt(f),
            Self::ConnectTimeout(d) => write!(f, "connecting took longer than {d:?}"),
            Self::MissedHeartbeats(d) => write!(
                f,
                "peer sent nothing for two heartbeat intervals ({d:?} each): connection dead"
            ),
            Self::ConnectionClosed(r) | Self::ChannelClosed(r) => r.fmt(f),
            Self::Authentication(msg) => write!(f, "authentication failed: {msg}"),
            Self::ProtocolVersion(h) => {
                write!(f, "server does not speak AMQP 0-9-1; it offers {h}")
            }
            Self::InvalidArgument(e) => write!(f, "invalid argument: {e}"),
            Self::ChannelsExhausted(max) => {
                write!(f, "no free channel: all {max} channels are in use")
            }
            Self::ConsumerCancelled(tag) => {
                write!(f, "consumer {tag:?} was cancelled by the server")
            }
            Self::Config(msg) => write!(f, "configuration error: {msg}"),
            Self::ConsumerLost { tag, reason } => {
                write!(
                    f,
                    "consumer {tag:?} could not be restored after recovery: {reason}"
                )
            }
            Self::Protocol { method, detail } => {
                write!(f, "protocol error in {method}: {detail}")
            }
            Self::Timeout { method, after } => {
                write!(f, "no reply to {method} within {after:?}")
            }
            Self::ConnectionLost(cause) => write!(f, "connection lost ({cause})"),
            Self::Recovering => f.write_str(
                "the connection is recovering from a failure; nothing was sent (retry once it \
                 has recovered)",
            ),
            Self::StaleDelivery { delivery_tag } => write!(
                f,
                "delivery {delivery_tag} came before the connection recovered; its tag is no \
                 longer valid and nothing was sent (the broker redelivers the message)"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Uri(e) => Some(e),
            Self::Io(e) => Some(&**e),
            Self::Tls(e) => Some(e),
            Self::ConnectionLost(e) => Some(&**e),
            Self::InvalidArgument(e) => Some(e),
            _ => None,
        }
    }
}

impl From<UriError> for Error {
    fn from(e: UriError) -> Self {
        Self::Uri(e)
    }
}

/// A value the codec refused (a property string over 255 octets, …): [`Error::InvalidArgument`].
impl From<WireError> for Error {
    fn from(e: WireError) -> Self {
        Self::InvalidArgument(e)
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Self::io(e)
    }
}

/// The client's result type.
pub type Result<T, E = Error> = core::result::Result<T, E>;
