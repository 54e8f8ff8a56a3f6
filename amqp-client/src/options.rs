//! Typed options for channel methods, each with a `Default` that matches the protocol's
//! defaults (every flag off, no arguments).
//!
//! ```
//! use amqp_client::options::QueueDeclareOptions;
//!
//! let opts = QueueDeclareOptions { durable: true, ..Default::default() };
//! assert!(!opts.exclusive);
//! ```

use amqp_wire::FieldTable;

/// The type of an exchange.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ExchangeKind {
    /// Routes on an exact routing-key match.
    #[default]
    Direct,
    /// Routes to every bound queue.
    Fanout,
    /// Routes on routing-key patterns (`*`, `#`).
    Topic,
    /// Routes on header values.
    Headers,
    /// Any other type a broker plugin provides (`x-consistent-hash`, …).
    Custom(String),
}

impl ExchangeKind {
    /// The type name sent in `exchange.declare`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Direct => "direct",
            Self::Fanout => "fanout",
            Self::Topic => "topic",
            Self::Headers => "headers",
            Self::Custom(s) => s,
        }
    }
}

/// Options of `exchange.declare`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExchangeDeclareOptions {
    /// Only check that the exchange exists (and fail with `NOT_FOUND` if not).
    pub passive: bool,
    /// Survive a broker restart.
    pub durable: bool,
    /// Delete the exchange when its last binding is removed.
    pub auto_delete: bool,
    /// Not publishable by clients; only reachable through exchange-to-exchange bindings.
    pub internal: bool,
    /// Extra arguments (`alternate-exchange`, …).
    pub arguments: FieldTable,
}

/// Options of `exchange.delete`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExchangeDeleteOptions {
    /// Only delete the exchange if it has no bindings.
    pub if_unused: bool,
}

/// Options of `exchange.bind`, `exchange.unbind`, `queue.bind` and `queue.unbind`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BindOptions {
    /// Binding arguments (for headers exchanges: `x-match` and the headers to match).
    pub arguments: FieldTable,
}

/// Options of `queue.declare`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueDeclareOptions {
    /// Only check that the queue exists (and fail with `NOT_FOUND` if not); the reply still
    /// carries the message and consumer counts.
    pub passive: bool,
    /// Survive a broker restart.
    pub durable: bool,
    /// Used only by this connection and deleted when it closes.
    pub exclusive: bool,
    /// Delete the queue when its last consumer goes away.
    pub auto_delete: bool,
    /// Extra arguments (`x-message-ttl`, `x-max-length`, …).
    pub arguments: FieldTable,
    /// The queue type, sent as the `x-queue-type` argument (and taking the place of one in
    /// `arguments`); `None` leaves it to the broker (classic, unless its default queue type
    /// says otherwise).
    pub queue_type: Option<QueueType>,
}

/// A RabbitMQ queue type (`x-queue-type`).
///
/// ```
/// use amqp_client::options::QueueType;
///
/// assert_eq!("quorum".parse::<QueueType>(), Ok(QueueType::Quorum));
/// assert_eq!(QueueType::Stream.as_str(), "stream");
/// assert!("lazy".parse::<QueueType>().unwrap_err().contains("classic, quorum, stream"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum QueueType {
    /// A classic queue: its messages live on one node (its home node).
    Classic,
    /// A quorum queue: replicated with Raft over the cluster's nodes, available while a
    /// majority of them is up; always durable.
    Quorum,
    /// A stream: a replicated, append-only log read with offsets; always durable.
    Stream,
}

impl QueueType {
    /// The value of `x-queue-type`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Classic => "classic",
            Self::Quorum => "quorum",
            Self::Stream => "stream",
        }
    }
}

impl std::fmt::Display for QueueType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for QueueType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "classic" => Ok(Self::Classic),
            "quorum" => Ok(Self::Quorum),
            "stream" => Ok(Self::Stream),
            other => Err(format!(
                "`{other}` is not a queue type (classic, quorum, stream)"
            )),
        }
    }
}

/// Options of `queue.delete`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDeleteOptions {
    /// Only delete the queue if it has no consumers.
    pub if_unused: bool,
    /// Only delete the queue if it holds no messages.
    pub if_empty: bool,
}

/// Options of `basic.qos`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QosOptions {
    /// Prefetch window in octets (0: no limit; RabbitMQ supports only 0).
    pub prefetch_size: u32,
    /// RabbitMQ: apply the limit to the whole channel rather than to each new consumer.
    pub global: bool,
}

/// Options of `basic.consume`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumeOptions {
    /// The consumer tag; empty lets the broker choose one.
    pub consumer_tag: String,
    /// Do not deliver messages published on this connection.
    pub no_local: bool,
    /// Deliveries need no acknowledgement (the broker forgets them once sent).
    pub no_ack: bool,
    /// Be the queue's only consumer.
    pub exclusive: bool,
    /// Extra arguments (`x-priority`, …).
    pub arguments: FieldTable,
}

/// Options of `basic.publish`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublishOptions {
    /// Return the message (`basic.return`) if no queue is bound to receive it.
    pub mandatory: bool,
    /// Return the message if no consumer can take it at once (not supported by RabbitMQ,
    /// which closes the connection).
    pub immediate: bool,
    /// While the connection is recovering, wait up to this long for it to be open again
    /// instead of failing at once with [`Error::Recovering`](crate::Error::Recovering) (which
    /// is still the answer if the deadline passes first). `None`: fail at once.
    pub wait_for_recovery: Option<std::time::Duration>,
}

/// Options of `basic.get`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GetOptions {
    /// The message needs no acknowledgement.
    pub no_ack: bool,
}

/// Options of `basic.nack`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NackOptions {
    /// Also reject every unacknowledged delivery before this one.
    pub multiple: bool,
    /// Put the message(s) back in the queue instead of dropping or dead-lettering them.
    pub requeue: bool,
}

impl Default for NackOptions {
    /// Requeue, like `basic.nack`'s protocol default.
    fn default() -> Self {
        Self {
            multiple: false,
            requeue: true,
        }
    }
}
