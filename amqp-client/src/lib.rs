//! Async AMQP 0-9-1 client.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
