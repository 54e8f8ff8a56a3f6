//! Sans-IO AMQP 0-9-1 codec.
//!
//! Module map (see docs/ARCHITECTURE.md for the contract between the parts):
//! - `error`: [`WireError`], the one error type of the crate.
//! - `shortstr`: [`ShortStr`], a bounded UTF-8 short string backed by `Bytes`.
//! - `table`: [`FieldTable`], [`FieldValue`], [`FieldArray`], [`Decimal`].
//! - `codec`: [`Reader`] and the `put_*` writers the generated code calls.
//! - `spec`: the code generated at build time from `spec/amqp0-9-1.xml`.
//! - `frame`: frames, content headers, the streaming decoder and the encoder.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

pub mod codec;
mod error;
mod frame;
mod protocol;
mod shortstr;
/// The types generated at build time from `spec/amqp0-9-1.xml`, all re-exported at the root.
pub mod spec;
mod table;

pub use codec::Reader;
pub use error::WireError;
pub use frame::*;
pub use protocol::ProtocolHeader;
pub use shortstr::ShortStr;
pub use spec::*;
pub use table::{Decimal, FieldArray, FieldTable, FieldValue, TableIter};

/// A long string: a length-prefixed run of octets with no encoding requirement.
pub type LongStr = bytes::Bytes;

/// A timestamp: seconds since the Unix epoch, as AMQP carries it (64 bits).
pub type Timestamp = u64;
