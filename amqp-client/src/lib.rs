//! An async AMQP 0-9-1 client for tokio, speaking RabbitMQ's dialect.
//!
//! ```no_run
//! use amqp_client::options::{ConsumeOptions, QueueDeclareOptions};
//! use amqp_client::{BasicProperties, Connection, Publish};
//!
//! # async fn demo() -> Result<(), amqp_client::Error> {
//! let conn = Connection::connect("amqp://guest:guest@localhost:5672/%2f").await?;
//! let channel = conn.open_channel().await?;
//! channel.confirm_select().await?;
//! let queue = channel.queue_declare("", QueueDeclareOptions { exclusive: true, ..Default::default() }).await?;
//! let props = BasicProperties::default().with_content_type("text/plain")?;
//! let confirm = channel.publish(Publish::to_queue(&queue.name), &props, b"hello").await?;
//! assert!(confirm.await?.is_ack());
//! let mut consumer = channel.basic_consume(&queue.name, ConsumeOptions::default()).await?;
//! if let Some(delivery) = consumer.recv().await {
//!     let delivery = delivery?;
//!     assert_eq!(&delivery.body[..], b"hello");
//!     delivery.ack()?;
//! }
//! conn.close().await?;
//! # Ok(()) }
//! ```
//!
//! # How the pieces fit
//!
//! - `proto`: a sans-IO state machine — bytes and the time in; bytes to write, events and the
//!   next deadline out. Handshake, SASL, tuning, channels, reply matching, content assembly,
//!   heartbeats and close handshakes all live there, testable without sockets.
//! - A driver task per connection owns the transport ([`Connection::open_with`] takes any
//!   `AsyncRead + AsyncWrite`; [`Connection::connect`] makes a TCP one). It reads into one
//!   buffer (message bodies are slices of it), and writes everything queued since its last
//!   write in one call.
//! - [`Connection`], [`Channel`], [`Consumer`] are handles. Publishing encodes the message
//!   straight into the connection's write buffer from the calling task; there is no channel
//!   hop and no allocation per message. Consumers are bounded: a slow one makes the driver stop
//!   reading from the socket instead of buffering without limit.
//! - Errors keep AMQP's meaning ([`Error`], [`CloseReason`]): reply code and text, the method
//!   at fault, channel or connection, and who closed it.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod auth;
mod channel;
mod config;
mod confirm;
mod connection;
mod consumer;
mod driver;
mod error;
mod mailbox;
mod message;
pub mod options;
mod proto;
mod publish;
mod recovery;
mod router;
pub mod tls;
mod transport;
pub mod uri;

pub use amqp_wire::{BasicProperties, FieldArray, FieldTable, FieldValue, ReplyCode, ShortStr};
pub use auth::{Credentials, SaslMechanism};
pub use channel::{Channel, QueueInfo};
pub use config::{ClientProperties, ConnectionConfig, Endpoint, RecoveryPolicy, CAPABILITIES};
pub use confirm::PublishConfirm;
pub use connection::{Connection, ConnectionEvent, ConnectionEvents, ConnectionState, Negotiated};
pub use consumer::{Consumer, Returns};
pub use error::{CloseReason, Error, Initiator, Result, Scope};
pub use message::{Confirmation, Delivery, GetMessage, ReturnedMessage};
pub use publish::Publish;
/// The rustls crate this client is built with, for making a [`TlsClientConfig`].
pub use rustls;
pub use tls::{TlsClientConfig, TlsError, TlsErrorKind};
pub use uri::{AmqpUri, TlsOptions, TlsVerify};

/// The codec this client is built on (`amqp-wire`), for the types its API and errors expose:
/// [`wire::WireError`] inside [`Error::InvalidArgument`] and friends,
/// [`wire::ProtocolHeader`] in [`Error::ProtocolVersion`], [`wire::Decimal`] in field
/// tables, the method structs (`wire::basic::Deliver`, …) and [`wire::Method`].
pub use amqp_wire as wire;
