//! Connection configuration: where to connect, how to log in, what to negotiate, and the
//! client-side limits (buffers, timeouts).

use std::time::Duration;

use amqp_wire::{FieldTable, FieldValue};

use crate::auth::{Credentials, SaslMechanism};
use crate::error::Error;
use crate::uri::{AmqpUri, Scheme, TlsOptions};

/// Everything needed to open a connection.
///
/// Build one with [`ConnectionConfig::default`] plus the `with_*` setters, or from a URI with
/// [`ConnectionConfig::from_uri`]; every field is public and may also be set directly.
///
/// ```
/// use std::time::Duration;
/// use amqp_client::ConnectionConfig;
///
/// let cfg = ConnectionConfig::from_uri("amqp://app:secret@broker/orders?heartbeat=15")?
///     .with_connection_name("billing")
///     .with_connect_timeout(Duration::from_secs(5));
/// assert_eq!(cfg.host, "broker");
/// assert_eq!(cfg.vhost, "orders");
/// assert_eq!(cfg.heartbeat, 15);
/// # Ok::<(), amqp_client::Error>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectionConfig {
    /// Host name or address to connect to.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The virtual host to open.
    pub vhost: String,
    /// User name and password (not used by `EXTERNAL`).
    pub credentials: Credentials,
    /// SASL mechanisms in order of preference; the first one the server offers is used.
    pub auth_mechanisms: Vec<SaslMechanism>,
    /// The message locale to ask for (the server's first locale is used if it lacks this one).
    pub locale: String,
    /// What the client tells the server about itself in `connection.start-ok`.
    pub client_properties: ClientProperties,
    /// A name for this connection, shown in the management UI.
    pub connection_name: Option<String>,
    /// Heartbeat interval to propose, in seconds. The negotiated value is the lower of the
    /// client's and the server's, where 0 on one side means "take the other's"; 0 on both sides
    /// disables heartbeats.
    pub heartbeat: u16,
    /// Largest frame to propose, in octets (0: no limit from the client's side).
    pub frame_max: u32,
    /// Most channels to propose (0: no limit from the client's side).
    pub channel_max: u16,
    /// How long TCP connect (plus TLS) and the AMQP handshake may take together.
    pub connect_timeout: Duration,
    /// How long a graceful close waits for the peer's `close-ok` before dropping the socket.
    pub close_timeout: Duration,
    /// How long every synchronous request (`queue.declare`, `basic.consume`, `channel.open`,
    /// …) waits for its reply before failing with [`Error::Timeout`]. A broker can leave a
    /// request unanswered for good (a quorum queue that lost its quorum never answers
    /// `basic.consume`).
    pub request_timeout: Duration,
    /// TLS settings; `Some` means connect with TLS (`amqps://`).
    pub tls: Option<TlsOptions>,
    /// How many deliveries each consumer buffers before the client stops reading from the
    /// socket (back-pressure on the broker instead of unbounded memory).
    pub consumer_buffer: usize,
    /// How many octets of message bodies each consumer buffers before the client stops reading
    /// (whichever of this and `consumer_buffer` is reached first).
    pub consumer_buffer_bytes: usize,
    /// How many octets of outgoing frames may be queued before `basic_publish` waits for the
    /// socket to drain.
    pub write_buffer_limit: usize,
    /// Whether publishing waits while the broker has blocked the connection
    /// (`connection.blocked`), instead of queueing messages the broker will not read.
    pub wait_while_blocked: bool,
    /// The largest message body accepted from the broker; bigger ones are a connection error.
    pub max_message_size: u64,
    /// How long the socket may take no bytes at all while the client has bytes to write
    /// before the connection counts as lost (an I/O error, `TimedOut`, which starts a
    /// recovery when one is configured): a peer that stopped reading. Not counted while the
    /// broker has blocked the connection (`connection.blocked`: it stops reading on purpose).
    /// `None`: wait for ever (heartbeats still notice a peer that went silent).
    pub write_stall_timeout: Option<Duration>,
    /// More brokers to try, after `host:port`, when connecting and recovering (a cluster's
    /// other nodes). A URI with several hosts (`amqp://h1:5672,h2:5673/vhost`) fills it.
    pub endpoints: Vec<Endpoint>,
    /// Automatic recovery from connection failures; `None` (the default): a failure closes the
    /// connection for good. See [`RecoveryPolicy`].
    pub recovery: Option<RecoveryPolicy>,
}

/// One broker address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl Endpoint {
    /// An endpoint.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// How a connection recovers after it failed (see `docs/RELIABILITY.md`).
///
/// Recovery starts on every failure that the application did not cause: end of file, a reset
/// or other I/O error, missed heartbeats, and every `connection.close` from the broker (a node
/// shutting down sends 320 `CONNECTION_FORCED`). It never starts after [`close`], which also
/// stops a recovery in progress, nor after a channel error.
///
/// Each cycle tries every endpoint once, in a random order (the one that just shut down last),
/// then sleeps a random time between zero and the current backoff ("full jitter"); the
/// backoff doubles from `initial_delay` up to `max_delay` and starts again from
/// `initial_delay` once a recovered connection stayed up for `reset_after`.
///
/// [`close`]: crate::Connection::close
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryPolicy {
    /// The first backoff.
    pub initial_delay: Duration,
    /// The longest backoff (also the wait after the broker refused the login).
    pub max_delay: Duration,
    /// How many cycles to try before giving up (`None`: never give up).
    pub max_attempts: Option<u32>,
    /// How long a recovered connection must stay up before the backoff starts again from
    /// `initial_delay`.
    pub reset_after: Duration,
    /// How many times one entity (a queue, a consumer) is retried within one recovery when the
    /// broker answers 404 (its node is down) or 405 (an exclusive queue still held by the dead
    /// connection), before it is reported lost.
    pub entity_retries: u32,
}

impl Default for RecoveryPolicy {
    fn default() -> Self {
        Self {
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_attempts: None,
            reset_after: Duration::from_secs(30),
            entity_retries: 10,
        }
    }
}

impl RecoveryPolicy {
    /// Sets the first and the longest backoff.
    pub fn with_delays(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_delay = initial;
        self.max_delay = max.max(initial);
        self
    }

    /// Sets how many cycles to try before giving up (`None`: never).
    pub fn with_max_attempts(mut self, attempts: Option<u32>) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// Sets how many times one entity is retried within one recovery.
    pub fn with_entity_retries(mut self, retries: u32) -> Self {
        self.entity_retries = retries;
        self
    }
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        Self {
            host: "localhost".to_owned(),
            port: crate::uri::AMQP_PORT,
            vhost: "/".to_owned(),
            credentials: Credentials::default(),
            auth_mechanisms: vec![SaslMechanism::Plain, SaslMechanism::AmqPlain],
            locale: "en_US".to_owned(),
            client_properties: ClientProperties::default(),
            connection_name: None,
            heartbeat: 60,
            frame_max: 131_072,
            channel_max: 2047,
            connect_timeout: Duration::from_secs(30),
            close_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            tls: None,
            consumer_buffer: 1024,
            consumer_buffer_bytes: 8 << 20,
            write_buffer_limit: 4 << 20,
            wait_while_blocked: true,
            max_message_size: 512 << 20,
            write_stall_timeout: Some(Duration::from_secs(60)),
            endpoints: Vec::new(),
            recovery: None,
        }
    }
}

impl ConnectionConfig {
    /// A configuration from a RabbitMQ URI (see [`crate::uri`]); what the URI leaves out keeps
    /// its default.
    pub fn from_uri(uri: &str) -> Result<Self, Error> {
        Ok(Self::from_parsed_uri(&AmqpUri::parse(uri)?))
    }

    /// A configuration from several URIs naming the nodes of one cluster (see
    /// [`AmqpUri::parse_many`]): the first URI's settings, every URI's hosts.
    pub fn from_uris<I, S>(uris: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Ok(Self::from_parsed_uri(&AmqpUri::parse_many(uris)?))
    }

    /// A configuration from an already parsed URI.
    pub fn from_parsed_uri(uri: &AmqpUri) -> Self {
        let mut cfg = Self {
            host: uri.host.clone(),
            port: uri.port,
            endpoints: uri.endpoints.clone(),
            vhost: uri.vhost.clone(),
            credentials: Credentials::new(uri.username_or_default(), uri.password_or_default()),
            connection_name: uri.connection_name.clone(),
            tls: (uri.scheme == Scheme::Amqps).then(|| uri.tls.clone()),
            ..Self::default()
        };
        if !uri.auth_mechanisms.is_empty() {
            cfg.auth_mechanisms.clone_from(&uri.auth_mechanisms);
        }
        if let Some(h) = uri.heartbeat {
            cfg.heartbeat = h;
        }
        if let Some(f) = uri.frame_max {
            cfg.frame_max = f;
        }
        if let Some(c) = uri.channel_max {
            cfg.channel_max = c;
        }
        if let Some(t) = uri.connection_timeout {
            cfg.connect_timeout = t;
        }
        cfg
    }

    /// Sets the host.
    pub fn with_host(mut self, host: impl Into<String>) -> Self {
        self.host = host.into();
        self
    }

    /// Sets the port.
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Sets the virtual host.
    pub fn with_vhost(mut self, vhost: impl Into<String>) -> Self {
        self.vhost = vhost.into();
        self
    }

    /// Sets user name and password.
    pub fn with_credentials(
        mut self,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        self.credentials = Credentials::new(username, password);
        self
    }

    /// Sets the SASL mechanisms, in order of preference.
    pub fn with_auth_mechanisms(mut self, mechanisms: impl Into<Vec<SaslMechanism>>) -> Self {
        self.auth_mechanisms = mechanisms.into();
        self
    }

    /// Sets the locale.
    pub fn with_locale(mut self, locale: impl Into<String>) -> Self {
        self.locale = locale.into();
        self
    }

    /// Sets the client properties.
    pub fn with_client_properties(mut self, properties: ClientProperties) -> Self {
        self.client_properties = properties;
        self
    }

    /// Sets the connection name.
    pub fn with_connection_name(mut self, name: impl Into<String>) -> Self {
        self.connection_name = Some(name.into());
        self
    }

    /// Sets the heartbeat interval to propose, in seconds.
    pub fn with_heartbeat(mut self, seconds: u16) -> Self {
        self.heartbeat = seconds;
        self
    }

    /// Sets the largest frame to propose.
    pub fn with_frame_max(mut self, frame_max: u32) -> Self {
        self.frame_max = frame_max;
        self
    }

    /// Sets the most channels to propose.
    pub fn with_channel_max(mut self, channel_max: u16) -> Self {
        self.channel_max = channel_max;
        self
    }

    /// Sets the connect timeout.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets how long synchronous requests wait for their reply.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets TLS options (and so turns TLS on).
    pub fn with_tls(mut self, tls: TlsOptions) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Sets how many deliveries each consumer buffers.
    pub fn with_consumer_buffer(mut self, deliveries: usize) -> Self {
        self.consumer_buffer = deliveries;
        self
    }

    /// Sets how many octets of message bodies each consumer buffers.
    pub fn with_consumer_buffer_bytes(mut self, octets: usize) -> Self {
        self.consumer_buffer_bytes = octets;
        self
    }

    /// Sets how many octets of outgoing frames may queue before publishers wait.
    pub fn with_write_buffer_limit(mut self, octets: usize) -> Self {
        self.write_buffer_limit = octets;
        self
    }

    /// Sets how long a write may make no progress before the connection counts as lost.
    pub fn with_write_stall_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.write_stall_timeout = timeout;
        self
    }

    /// Turns automatic recovery on with `policy`.
    pub fn with_recovery(mut self, policy: RecoveryPolicy) -> Self {
        self.recovery = Some(policy);
        self
    }

    /// Sets the brokers to try after `host:port`.
    pub fn with_endpoints(mut self, endpoints: impl IntoIterator<Item = Endpoint>) -> Self {
        self.endpoints = endpoints.into_iter().collect();
        self
    }

    /// Every endpoint: `host:port` first, then [`endpoints`](Self::endpoints), without
    /// repeats.
    pub fn all_endpoints(&self) -> Vec<Endpoint> {
        let mut all = vec![Endpoint::new(self.host.clone(), self.port)];
        for e in &self.endpoints {
            if !all.contains(e) {
                all.push(e.clone());
            }
        }
        all
    }

    /// Sets whether publishing waits while the connection is blocked.
    pub fn with_wait_while_blocked(mut self, wait: bool) -> Self {
        self.wait_while_blocked = wait;
        self
    }
}

/// What the client says about itself in `connection.start-ok`'s `client-properties`.
///
/// The `capabilities` table is always sent, announcing the RabbitMQ extensions this client
/// handles: `publisher_confirms`, `consumer_cancel_notify`, `exchange_exchange_bindings`,
/// `basic.nack`, `connection.blocked`, `authentication_failure_close`, `per_consumer_qos`,
/// `direct_reply_to`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientProperties {
    /// `product`.
    pub product: String,
    /// `version`.
    pub version: String,
    /// `platform`.
    pub platform: String,
    /// `information`.
    pub information: String,
    /// Extra entries, added after (and overriding) the ones above.
    pub extra: FieldTable,
}

impl Default for ClientProperties {
    fn default() -> Self {
        Self {
            product: "amqp-client".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            platform: "Rust".to_owned(),
            information: "AMQP 0-9-1 client for tokio".to_owned(),
            extra: FieldTable::new(),
        }
    }
}

/// The RabbitMQ extensions this client understands, as announced in `capabilities`.
pub const CAPABILITIES: [&str; 8] = [
    "publisher_confirms",
    "consumer_cancel_notify",
    "exchange_exchange_bindings",
    "basic.nack",
    "connection.blocked",
    "authentication_failure_close",
    "per_consumer_qos",
    "direct_reply_to",
];

impl ClientProperties {
    /// The field table sent to the server.
    pub(crate) fn to_table(&self, connection_name: Option<&str>) -> FieldTable {
        let mut capabilities = FieldTable::new();
        for cap in CAPABILITIES {
            insert(&mut capabilities, cap, FieldValue::Bool(true));
        }
        let mut t = FieldTable::new();
        insert(&mut t, "product", self.product.as_str().into());
        insert(&mut t, "version", self.version.as_str().into());
        insert(&mut t, "platform", self.platform.as_str().into());
        insert(&mut t, "information", self.information.as_str().into());
        insert(&mut t, "capabilities", FieldValue::Table(capabilities));
        if let Some(name) = connection_name {
            insert(&mut t, "connection_name", name.into());
        }
        for (k, v) in self.extra.iter() {
            t.insert_key(k.clone(), v.clone());
        }
        t
    }
}

fn insert(t: &mut FieldTable, key: &'static str, value: FieldValue) {
    // Every key here is a short literal, so the length check cannot fail.
    let _ = t.insert(key, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_rabbitmq_conventions() {
        let c = ConnectionConfig::default();
        assert_eq!(c.host, "localhost");
        assert_eq!(c.port, 5672);
        assert_eq!(c.vhost, "/");
        assert_eq!(c.credentials, Credentials::new("guest", "guest"));
        assert_eq!(c.auth_mechanisms[0], SaslMechanism::Plain);
        assert!(c.tls.is_none());
        assert!(c.consumer_buffer > 0);
    }

    #[test]
    fn uri_values_override_defaults() {
        let c = ConnectionConfig::from_uri(
            "amqps://u:p@h:1234/v?heartbeat=7&frame_max=8192&channel_max=9\
             &connection_timeout=1500&auth_mechanism=external&connection_name=n\
             &cacertfile=/ca.pem",
        )
        .unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.vhost.as_str()),
            ("h", 1234, "v")
        );
        assert_eq!(c.credentials, Credentials::new("u", "p"));
        assert_eq!(c.heartbeat, 7);
        assert_eq!(c.frame_max, 8192);
        assert_eq!(c.channel_max, 9);
        assert_eq!(c.connect_timeout, Duration::from_millis(1500));
        assert_eq!(c.auth_mechanisms, vec![SaslMechanism::External]);
        assert_eq!(c.connection_name.as_deref(), Some("n"));
        let tls = c.tls.unwrap();
        assert_eq!(tls.ca_cert_file.unwrap().to_str(), Some("/ca.pem"));
    }

    #[test]
    fn uri_hosts_become_endpoints() {
        let c = ConnectionConfig::from_uri("amqp://u:p@h1:5700,h2:5701,h3/v").unwrap();
        let all: Vec<String> = c.all_endpoints().iter().map(|e| e.to_string()).collect();
        assert_eq!(all, ["h1:5700", "h2:5701", "h3:5672"]);
        let c = ConnectionConfig::from_uris(["amqp://h1:5700/v", "amqp://h2:5701/v"]).unwrap();
        assert_eq!(c.endpoints, [Endpoint::new("h2", 5701)]);
        assert!(ConnectionConfig::from_uris(["amqp://h1/v", "amqp://h2/w"]).is_err());
    }

    #[test]
    fn uri_leaves_unset_values_at_defaults() {
        let c = ConnectionConfig::from_uri("amqp://h").unwrap();
        let d = ConnectionConfig::default();
        assert_eq!(c.heartbeat, d.heartbeat);
        assert_eq!(c.frame_max, d.frame_max);
        assert_eq!(c.auth_mechanisms, d.auth_mechanisms);
        assert!(c.tls.is_none());
        assert!(ConnectionConfig::from_uri("http://h").is_err());
    }

    #[test]
    fn builder_setters() {
        let c = ConnectionConfig::default()
            .with_host("x")
            .with_port(1)
            .with_vhost("v")
            .with_credentials("a", "b")
            .with_heartbeat(3)
            .with_frame_max(4096)
            .with_channel_max(2)
            .with_locale("de_DE")
            .with_connection_name("n")
            .with_consumer_buffer(5)
            .with_wait_while_blocked(false);
        assert_eq!(c.host, "x");
        assert_eq!(c.port, 1);
        assert_eq!(c.vhost, "v");
        assert_eq!(c.credentials.username, "a");
        assert_eq!(c.heartbeat, 3);
        assert_eq!(c.frame_max, 4096);
        assert_eq!(c.channel_max, 2);
        assert_eq!(c.locale, "de_DE");
        assert_eq!(c.connection_name.as_deref(), Some("n"));
        assert_eq!(c.consumer_buffer, 5);
        assert!(!c.wait_while_blocked);
    }

    #[test]
    fn client_properties_announce_capabilities_and_name() {
        let mut props = ClientProperties::default();
        props.extra.insert("team", "payments").unwrap();
        props.extra.insert("product", "custom").unwrap();
        let t = props.to_table(Some("conn-1"));
        assert_eq!(t.get_str("product"), Some("custom"));
        assert_eq!(t.get_str("platform"), Some("Rust"));
        assert_eq!(t.get_str("connection_name"), Some("conn-1"));
        assert_eq!(t.get_str("team"), Some("payments"));
        let caps = t.get_table("capabilities").unwrap();
        for cap in CAPABILITIES {
            assert_eq!(caps.get_bool(cap), Some(true), "{cap}");
        }
        assert!(props.to_table(None).get("connection_name").is_none());
    }
}
