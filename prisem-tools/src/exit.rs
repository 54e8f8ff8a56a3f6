//! Exit statuses of the `amqp` tool and the error type that carries one.
//!
//! | status | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | usage: bad option, bad header, unreadable file, malformed input |
//! | 2 | empty or not found: `get` on an empty queue, a queue or exchange that does not exist |
//! | 3 | connection or login failed: unreachable broker, bad URL host, wrong credentials, unknown or forbidden virtual host |
//! | 4 | the broker refused an operation (a channel error other than not-found) |
//! | 5 | a published message was nacked or returned as unroutable |

use core::fmt;

use amqp_client::Error as ClientError;
use amqp_wire::ReplyCode;

/// Success.
pub const OK: u8 = 0;
/// Bad usage: options, headers, files or input the tool cannot use.
pub const USAGE: u8 = 1;
/// The queue was empty, or the queue or exchange named does not exist.
pub const EMPTY_OR_NOT_FOUND: u8 = 2;
/// The connection could not be made or was lost: network, TLS, login, virtual host.
pub const CONNECTION: u8 = 3;
/// The broker refused an operation with a channel error.
pub const REFUSED: u8 = 4;
/// A message was nacked by the broker or returned as unroutable.
pub const NACKED: u8 = 5;

/// The text `--help` shows about exit statuses.
pub const EXIT_STATUS_HELP: &str = "\
Exit status:
  0  success
  1  usage error: bad option, header, argument, file or input
  2  empty or not found: `get` found the queue empty; a queue or exchange does not exist
  3  connection or login failed: broker unreachable, wrong credentials, unknown virtual host
  4  the broker refused the operation (channel error, e.g. access refused, precondition failed)
  5  a published message was nacked or returned unroutable (--confirm / --mandatory)";

/// A failure that ends the tool: a message for standard error and the exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The exit status (one of the constants of this module).
    pub code: u8,
    /// What went wrong, for a human.
    pub message: String,
}

impl Failure {
    /// A failure with the given status.
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// A usage error (status 1).
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(USAGE, message)
    }

    /// Adds context in front of the message: `"{context}: {message}"`.
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// Classifies a client error:
    /// a channel closed with 404 is "not found" (2); any other channel close is "refused" (4);
    /// a rejected argument is a usage error (1); everything that breaks or prevents the
    /// connection (including a connection close for an unknown virtual host or bad
    /// credentials) is a connection error (3).
    pub fn from_client(err: &ClientError) -> Self {
        Self::new(client_error_code(err), err.to_string())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

impl From<ClientError> for Failure {
    fn from(err: ClientError) -> Self {
        Self::from_client(&err)
    }
}

/// The exit status for a client error; see [`Failure::from_client`].
pub fn client_error_code(err: &ClientError) -> u8 {
    match err {
        ClientError::ChannelClosed(reason) if reason.code == ReplyCode::NOT_FOUND => {
            EMPTY_OR_NOT_FOUND
        }
        ClientError::ChannelClosed(_) => REFUSED,
        // A server-initiated connection close caused by a channel-level method (e.g. 404 on a
        // passive declare, escalated) still means the named thing is missing.
        ClientError::ConnectionClosed(reason)
            if reason.code == ReplyCode::NOT_FOUND && reason.class_id >= 40 =>
        {
            EMPTY_OR_NOT_FOUND
        }
        // A value or file the client cannot use, before anything reached the broker.
        ClientError::InvalidArgument(_) | ClientError::Uri(_) | ClientError::Config(_) => USAGE,
        ClientError::ConsumerCancelled(_) => EMPTY_OR_NOT_FOUND,
        // An acknowledgement the client refused to send (its delivery predates a recovery).
        ClientError::StaleDelivery { .. } => REFUSED,
        // The broker broke the protocol, stopped answering, or the connection (TLS included)
        // failed or is recovering: all are about reaching the broker, none about usage.
        ClientError::Tls(_)
        | ClientError::Protocol { .. }
        | ClientError::Timeout { .. }
        | ClientError::ConnectionLost(_)
        | ClientError::Recovering => CONNECTION,
        _ => CONNECTION,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn protocol_errors_and_timeouts_are_connection_failures_not_usage() {
        let protocol = ClientError::Protocol {
            method: "queue.declare",
            detail: "unexpected reply basic.get-empty".to_owned(),
        };
        assert_eq!(client_error_code(&protocol), CONNECTION);
        let timeout = ClientError::Timeout {
            method: "basic.consume",
            after: Duration::from_secs(60),
        };
        assert_eq!(client_error_code(&timeout), CONNECTION);
        assert_eq!(client_error_code(&ClientError::Recovering), CONNECTION);
        let lost = ClientError::ConnectionLost(std::sync::Arc::new(ClientError::Recovering));
        assert_eq!(client_error_code(&lost), CONNECTION);
    }

    #[test]
    fn configuration_and_stale_acks_have_their_own_statuses() {
        assert_eq!(
            client_error_code(&ClientError::Config("no CA file".to_owned())),
            USAGE
        );
        assert_eq!(
            client_error_code(&ClientError::StaleDelivery { delivery_tag: 7 }),
            REFUSED
        );
        let f = Failure::from_client(&ClientError::StaleDelivery { delivery_tag: 7 });
        assert!(f.message.contains("delivery 7"), "{}", f.message);
    }
}
