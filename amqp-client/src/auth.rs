//! SASL mechanisms and the responses the client sends in `connection.start-ok`.

use core::fmt;

/// A SASL mechanism the client can log in with.
///
/// The server lists the mechanisms it accepts in `connection.start`; the client picks the first
/// of its own preference list that the server offers.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SaslMechanism {
    /// `PLAIN` (RFC 4616): user name and password in clear text.
    Plain,
    /// `AMQPLAIN`: user name and password as an AMQP field table (`LOGIN`, `PASSWORD`).
    AmqPlain,
    /// `EXTERNAL`: the identity comes from outside AMQP, usually the TLS client certificate.
    External,
}

impl SaslMechanism {
    /// The mechanism's name as it travels in `connection.start` / `connection.start-ok`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::AmqPlain => "AMQPLAIN",
            Self::External => "EXTERNAL",
        }
    }

    /// Parses a mechanism name as written in a URI's `auth_mechanism` parameter or in the
    /// server's mechanism list (case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Plain, Self::AmqPlain, Self::External]
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for SaslMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A user name and password.
///
/// `Debug` never prints the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
}

impl Credentials {
    /// Credentials from a user name and a password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
        }
    }
}

impl Default for Credentials {
    /// RabbitMQ's default account, `guest` / `guest` (accepted from loopback only).
    fn default() -> Self {
        Self::new("guest", "guest")
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanism_names_round_trip_case_insensitively() {
        for m in [
            SaslMechanism::Plain,
            SaslMechanism::AmqPlain,
            SaslMechanism::External,
        ] {
            assert_eq!(SaslMechanism::from_name(m.name()), Some(m));
            assert_eq!(
                SaslMechanism::from_name(&m.name().to_ascii_lowercase()),
                Some(m)
            );
        }
        assert_eq!(SaslMechanism::from_name("CRAM-MD5"), None);
    }

    #[test]
    fn debug_hides_password() {
        let c = Credentials::new("alice", "s3cret");
        let s = format!("{c:?}");
        assert!(s.contains("alice"));
        assert!(!s.contains("s3cret"));
    }
}
