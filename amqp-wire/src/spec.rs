//! The protocol's constants, reply codes, methods and content properties, generated at build
//! time by `amqp-codegen` from `spec/amqp0-9-1.xml` (or the file `$AMQP_SPEC` names).
//!
//! What is here:
//! - [`constants`](self::constants): frame types, `FRAME_END`, `FRAME_MIN_SIZE`, the protocol
//!   version and port.
//! - [`ReplyCode`]: an open `u16` with the named reply codes and their soft/hard class.
//! - one module per class (`connection`, `channel`, `exchange`, `queue`, `basic`, `tx`,
//!   `confirm`) holding `CLASS_ID` and one struct per method, each implementing
//!   [`AmqpMethod`].
//! - [`Method`]: every method, decoded from and encoded to a method frame's payload.
//! - [`BasicProperties`]: the content properties of `basic`.
//! - [`domains`](self::domains): the checks behind `validate`.
//!
//! ```
//! use amqp_wire::{basic, AmqpMethod, Method, ShortStr};
//! use bytes::BytesMut;
//!
//! let publish = basic::Publish {
//!     routing_key: ShortStr::from_static("jobs"),
//!     mandatory: true,
//!     ..Default::default()
//! };
//! publish.validate()?;
//! let mut payload = BytesMut::new();
//! Method::from(publish.clone()).encode(&mut payload);
//! let decoded = Method::decode(payload.freeze())?;
//! assert_eq!(decoded.name(), basic::Publish::NAME);
//! assert_eq!(basic::Publish::try_from(decoded), Ok(publish));
//! # Ok::<(), amqp_wire::WireError>(())
//! ```

use bytes::BytesMut;

/// Implemented by every generated method struct (`basic::Publish`, `queue::DeclareOk`, …).
///
/// The constants describe the method as the specification does; `decode_fields` and
/// `encode_fields` handle the method's arguments only (the class and method ids in front of
/// them are [`Method`]'s business).
pub trait AmqpMethod: Sized + Into<Method> + TryFrom<Method, Error = Method> {
    /// The class id (`basic` is 60).
    const CLASS_ID: u16;
    /// The method id within the class (`basic.publish` is 40).
    const METHOD_ID: u16;
    /// `"class.method"`, as the specification names it (`"basic.publish"`).
    const NAME: &'static str;
    /// Whether the specification marks the method synchronous.
    const SYNCHRONOUS: bool;
    /// Whether a content header and body follow the method.
    const CARRIES_CONTENT: bool;
    /// The names of the methods that answer this one (`&["basic.get-ok", "basic.get-empty"]`),
    /// comparable with [`Method::name`]. Empty when nothing answers it.
    const RESPONSES: &'static [&'static str];

    /// Decodes the method's arguments. Reserved fields are read and dropped.
    ///
    /// # Errors
    /// `Truncated` if the input ends early, or the error of a malformed field.
    fn decode_fields(reader: &mut crate::Reader) -> Result<Self, crate::WireError>;

    /// Encodes the method's arguments; reserved fields are written with their zero value and
    /// adjacent bits are packed into octets.
    fn encode_fields(&self, dst: &mut BytesMut);

    /// Checks the fields against the asserts of the specification (notnull, length and
    /// `^[…]*$` regexps); the other asserts are only documented.
    ///
    /// # Errors
    /// [`WireError::Domain`](crate::WireError::Domain) for the first field that breaks a rule.
    fn validate(&self) -> Result<(), crate::WireError>;
}

include!(concat!(env!("OUT_DIR"), "/amqp091.rs"));
