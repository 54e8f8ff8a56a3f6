//! Sans-IO AMQP 0-9-1 codec: frames, field tables, message properties, a streaming decoder and
//! an encoder. No sockets, no runtime: bytes in, frames out, and back.
//!
//! ```
//! use amqp_wire::{basic, encode_publish, BasicProperties, Frame, FrameDecoder, Method, ShortStr};
//! use bytes::BytesMut;
//!
//! // Encode a whole message (method, header and body frames) into a reusable buffer.
//! let publish = basic::Publish {
//!     routing_key: ShortStr::new("jobs")?,
//!     ..Default::default()
//! };
//! let props = BasicProperties { delivery_mode: Some(2), ..Default::default() };
//! let mut buf = BytesMut::new();
//! encode_publish(&mut buf, 1, &publish, &props, b"hello", 131_072)?;
//! Frame::HEARTBEAT.encode(&mut buf)?;
//!
//! // Decode frames as bytes arrive; `Ok(None)` means "read more".
//! let mut decoder = FrameDecoder::new(131_072);
//! let Some(Frame::Method { channel: 1, method: Method::BasicPublish(p) }) = decoder.decode(&mut buf)?
//! else { panic!("expected basic.publish") };
//! assert_eq!(p.routing_key, "jobs");
//! assert!(matches!(decoder.decode(&mut buf)?, Some(Frame::Header { .. })));
//! let Some(Frame::Body { payload, .. }) = decoder.decode(&mut buf)? else { panic!() };
//! assert_eq!(&payload[..], b"hello"); // a slice of `buf`'s memory, not a copy
//! assert_eq!(decoder.decode(&mut buf)?, Some(Frame::HEARTBEAT));
//! assert_eq!(decoder.decode(&mut buf)?, None);
//! # Ok::<(), amqp_wire::WireError>(())
//! ```
//!
//! How the pieces fit:
//! - [`FrameDecoder`] and [`Frame::encode`] / [`encode_publish`] move whole frames; a
//!   [`ProtocolHeader`] opens the connection. [`FrameDecoder::decode_ref`] decodes a frame where
//!   it lies instead ([`FrameRef`], [`MethodRef`], [`BasicPropertiesRef`], [`TableRef`]):
//!   nothing copied and no reference count touched, for code that looks at each frame and
//!   moves on.
//! - [`spec`] is generated at build time from `spec/amqp0-9-1.xml`: one module per class with a
//!   struct per method (`basic::Publish`), the [`Method`] enum, [`BasicProperties`],
//!   [`ReplyCode`] and the protocol [`constants`]. It is re-exported here.
//! - The generated code is built on the hand-written runtime: [`ShortStr`], [`FieldTable`] and
//!   friends, [`Reader`] for decoding and the [`codec`] `put_*` functions for encoding.
//! - Every failure is a [`WireError`] naming what was being parsed. Nothing panics on input.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

pub mod codec;
mod error;
mod frame;
mod frame_ref;
mod protocol;
mod shortstr;
/// The types generated at build time from `spec/amqp0-9-1.xml`, all re-exported at the root.
pub mod spec;
mod table;
mod table_ref;

pub use codec::Reader;
pub use error::WireError;
pub use frame::*;
pub use frame_ref::{ContentHeaderRef, FrameRef, RawPropertiesRef};
pub use protocol::ProtocolHeader;
pub use shortstr::{IntoShortStr, ShortStr};
pub use spec::*;
pub use table::{Decimal, FieldArray, FieldTable, FieldValue, TableIter};
pub use table_ref::{ArrayRef, ArrayRefIter, FieldValueRef, TableRef, TableRefIter};

/// A long string: a length-prefixed run of octets with no encoding requirement.
pub type LongStr = bytes::Bytes;

/// A timestamp: seconds since the Unix epoch, as AMQP carries it (64 bits).
pub type Timestamp = u64;
