//! PRISEM remote procedure calls over RabbitMQ: the envelope, the appdata conventions, the
//! [`Service`] trait, and (in [`server`] and [`client`]) the two ends of the pattern.
//!
//! A request is an [`Envelope`] published through the default exchange to the queue
//! `<queue-base>_<protocolver>` with `reply_to` and `correlation_id`; the answer is an envelope
//! whose appdata is a [`Reply`] (`retcode`, base64 `stdout` and `stderr`), published to the
//! `reply_to` queue with the same correlation id.
//!
//! ```
//! use prisem_tools::rpc::{AppData, Reply, Service, ServiceError};
//!
//! /// Answers with the request's `data` file, upper-cased.
//! struct Shout;
//!
//! impl Service for Shout {
//!     async fn handle(&self, appdata: AppData) -> Result<Reply, ServiceError> {
//!         let data = appdata.file("data")?;
//!         Ok(Reply::ok(data.to_ascii_uppercase()))
//!     }
//! }
//! ```

use core::fmt;
use std::future::Future;

mod appdata;
pub mod client;
mod envelope;
pub mod server;

pub(crate) use appdata::type_name as type_name_of;
pub use appdata::{decode_base64, encode_base64, AppData, AppDataError};
pub use client::{CallError, Client};
pub use envelope::{Envelope, EnvelopeError, Reply, PROTOCOL_VERSION};
pub use server::{Server, ServerConfig, ServerStats};

/// The queue a service listens on: `<base>_<protocolver>`, e.g. `anon_0.5.5`.
pub fn queue_name(base: &str) -> String {
    format!("{base}_{PROTOCOL_VERSION}")
}

/// A PRISEM service: turns a request's appdata into a reply.
///
/// This is all a service writes; the [`server`] does the queueing, acknowledging, limits and
/// error replies. An `Err` becomes an error reply with its retcode and message; a panic or a
/// handler that runs past the server's time limit becomes one too.
pub trait Service: Send + Sync + 'static {
    /// Handles one request.
    fn handle(&self, appdata: AppData) -> impl Future<Output = Result<Reply, ServiceError>> + Send;
}

/// A request a service refuses or fails: the reply's retcode and the reason for stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    /// The retcode of the error reply (never 0).
    pub retcode: i32,
    /// Why, for the client's standard error.
    pub message: String,
}

impl ServiceError {
    /// An error with retcode 1.
    pub fn new(message: impl Into<String>) -> Self {
        Self::with_retcode(1, message)
    }

    /// An error with the given retcode (0 is turned into 1: an error never reads as success).
    pub fn with_retcode(retcode: i32, message: impl Into<String>) -> Self {
        Self {
            retcode: if retcode == 0 { 1 } else { retcode },
            message: message.into(),
        }
    }

    /// The error reply.
    pub fn to_reply(&self) -> Reply {
        Reply::error(self.retcode, &self.message)
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ServiceError {}

impl From<AppDataError> for ServiceError {
    fn from(e: AppDataError) -> Self {
        Self::new(format!("Error: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_follow_the_originals() {
        assert_eq!(queue_name("anon"), "anon_0.5.5");
        assert_eq!(queue_name("cifbulk_v1"), "cifbulk_v1_0.5.5");
    }

    #[test]
    fn service_errors_never_read_as_success() {
        assert_eq!(ServiceError::with_retcode(0, "x").retcode, 1);
        let r = ServiceError::from(AppDataError::new("data", "not valid base64")).to_reply();
        assert_eq!(r.retcode, 1);
        assert_eq!(r.stderr, b"Error: appdata field 'data': not valid base64\n");
    }
}
