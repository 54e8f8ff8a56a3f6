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
    /// A value broke one of the spec's domain assertions (notnull, length, regexp).
    Domain {
        /// The field, e.g. `"queue.declare.queue"`.
        what: &'static str,
        /// The assertion that failed, in words.
        rule: &'static str,
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
                write!(f, "{what} is {len} octets long, more than the {max} allowed")
            }
            Self::UnknownMethod {
                class_id,
                method_id,
            } => write!(f, "unknown method: class {class_id}, method {method_id}"),
            Self::UnknownClass { class_id } => {
                write!(f, "content header for class {class_id}, which carries no content")
            }
            Self::UnknownFieldType { what, tag } => {
                write!(f, "unknown field value type {tag:#04x} in {what}")
            }
            Self::Domain { what, rule } => write!(f, "{what} {rule}"),
        }
    }
}

impl std::error::Error for WireError {}
