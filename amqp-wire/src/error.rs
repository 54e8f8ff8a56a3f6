//! The error type of the codec.

use core::fmt;

/// Everything that can be wrong with bytes handed to the decoder, or with a value handed to
/// the encoder.
///
/// Each variant names what was being parsed (`what`), e.g. `"basic.publish.exchange"`.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// The input ended inside `what`.
    Truncated {
        /// What was being read.
        what: &'static str,
    },
    /// A method payload (or other sized region) had bytes left over after its last field.
    TrailingBytes {
        /// What was being read.
        what: &'static str,
        /// How many bytes were left.
        count: usize,
    },
    /// A string that must be UTF-8 was not.
    InvalidUtf8 {
        /// What was being read.
        what: &'static str,
    },
    /// A string was longer than its type allows (short strings: 255 octets).
    StringTooLong {
        /// What was being read or written.
        what: &'static str,
        /// Its length in octets.
        len: usize,
        /// The most allowed.
        max: usize,
    },
    /// A method frame named a class/method pair this codec does not know.
    UnknownMethod {
        /// Class id on the wire.
        class_id: u16,
        /// Method id on the wire.
        method_id: u16,
    },
    /// A content header named a class that carries no content.
    UnknownClass {
        /// Class id on the wire.
        class_id: u16,
    },
    /// A field table or array held a value type tag this codec does not know.
    UnknownFieldType {
        /// What was being read.
        what: &'static str,
        /// The tag octet.
        tag: u8,
    },
    /// Content-header property flags set a bit for a property the spec does not define.
    UnknownPropertyFlags {
        /// What was being read, e.g. `"basic.properties.flags"`.
        what: &'static str,
        /// The flags word holding the unknown bit(s).
        flags: u16,
    },
    /// A value broke one of the spec's domain assertions (notnull, length, regexp).
    Domain {
        /// The field, e.g. `"queue.declare.queue"`.
        what: &'static str,
        /// The assertion that failed, in words.
        rule: &'static str,
    },
    /// Field tables and arrays were nested deeper than the decoder allows.
    NestingTooDeep {
        /// What was being read.
        what: &'static str,
        /// The deepest nesting allowed.
        max: usize,
    },
    /// A frame (header, payload and end octet) is larger than the negotiated `frame_max`, or
    /// than the 32-bit size field can describe.
    FrameTooLarge {
        /// Which frame, e.g. `"method frame"`.
        what: &'static str,
        /// Its size in octets, all 8 octets of framing included.
        size: u64,
        /// The largest size allowed.
        max: u64,
    },
    /// A frame did not end with the frame-end octet `0xCE`.
    BadFrameEnd {
        /// Which frame.
        what: &'static str,
        /// The octet found where `0xCE` should have been.
        found: u8,
    },
    /// A frame header carried a frame type this codec does not know.
    UnknownFrameType {
        /// The type octet.
        frame_type: u8,
    },
    /// A heartbeat frame that was not on channel 0 or had a payload.
    InvalidHeartbeat {
        /// Its channel.
        channel: u16,
        /// Its payload size.
        size: u32,
    },
    /// The peer answered with a protocol header instead of a frame: it does not speak the
    /// version we asked for, and tells which one it does.
    ProtocolVersionMismatch {
        /// The header the peer sent.
        server: crate::ProtocolHeader,
    },
    /// Eight octets that should have been a protocol header do not start with `AMQP`.
    InvalidProtocolHeader {
        /// The octets received.
        found: [u8; 8],
    },
    /// `frame_max` is too small to carry even one octet of a message body (a body frame has 8
    /// octets of framing).
    FrameMaxTooSmall {
        /// The `frame_max` in force.
        frame_max: u32,
    },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { what } => write!(f, "input ends inside {what}"),
            Self::TrailingBytes { what, count } => {
                write!(f, "{count} unexpected trailing byte(s) after {what}")
            }
            Self::InvalidUtf8 { what } => write!(f, "{what} is not valid UTF-8"),
            Self::StringTooLong { what, len, max } => {
                write!(
                    f,
                    "{what} is {len} octets long, more than the {max} allowed"
                )
            }
            Self::UnknownMethod {
                class_id,
                method_id,
            } => write!(f, "unknown method: class {class_id}, method {method_id}"),
            Self::UnknownClass { class_id } => {
                write!(
                    f,
                    "content header for class {class_id}, which carries no content"
                )
            }
            Self::UnknownFieldType { what, tag } => {
                write!(f, "unknown field value type {tag:#04x} in {what}")
            }
            Self::UnknownPropertyFlags { what, flags } => {
                write!(
                    f,
                    "{what} {flags:#06x} sets a property bit this codec does not know"
                )
            }
            Self::Domain { what, rule } => write!(f, "{what} {rule}"),
            Self::NestingTooDeep { what, max } => {
                write!(f, "{what} nests tables or arrays deeper than {max} levels")
            }
            Self::FrameTooLarge { what, size, max } => {
                write!(
                    f,
                    "{what} of {size} octets is larger than the {max} allowed"
                )
            }
            Self::BadFrameEnd { what, found } => {
                write!(
                    f,
                    "{what} ends with {found:#04x} instead of the frame-end octet 0xce"
                )
            }
            Self::UnknownFrameType { frame_type } => write!(f, "unknown frame type {frame_type}"),
            Self::InvalidHeartbeat { channel, size } => write!(
                f,
                "heartbeat frame on channel {channel} with {size} payload octets \
                 (must be channel 0, empty)"
            ),
            Self::ProtocolVersionMismatch { server } => {
                write!(f, "peer does not speak AMQP 0-9-1; it offers {server}")
            }
            Self::InvalidProtocolHeader { found } => {
                write!(f, "expected an AMQP protocol header, got {found:02x?}")
            }
            Self::FrameMaxTooSmall { frame_max } => {
                write!(
                    f,
                    "frame_max {frame_max} leaves no room for a body frame's payload"
                )
            }
        }
    }
}

impl std::error::Error for WireError {}
