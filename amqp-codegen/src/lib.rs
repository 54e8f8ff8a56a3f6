//! Generates typed Rust from the AMQP 0-9-1 XML protocol definition.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
