//! The RabbitMQ URI scheme: `amqp://user:pass@host:port/vhost?key=value&…` and `amqps://…`.
//!
//! Follows RabbitMQ's URI specification: every component is optional and percent-decoded; the
//! virtual host is the single path segment (`%2f` for a `/` inside it); IPv6 literals are written
//! in brackets. A missing path, and a path of just `/`, both mean the default virtual host `/`
//! (RabbitMQ has no virtual host named by the empty string).
//!
//! A cluster's nodes may be listed in one URI, separated by commas:
//! `amqp://user:pw@h1:5672,h2:5673,[::1]/vhost`. The first host is [`AmqpUri::host`]; the
//! others are [`AmqpUri::endpoints`], tried after it when connecting and recovering. Each host
//! takes the scheme's default port when it names none. [`AmqpUri::parse_many`] does the same
//! for a list of whole URIs that differ only in their hosts.
//!
//! Query parameters understood: `heartbeat` (seconds), `frame_max` (octets), `channel_max`,
//! `connection_timeout` (milliseconds), `auth_mechanism` (`plain`, `amqplain`, `external`; may
//! repeat, in order of preference), `connection_name`, and for `amqps` the TLS parameters
//! `cacertfile`, `certfile`, `keyfile`, `server_name_indication`, `verify`
//! (`verify_peer` | `verify_none`). Unknown parameters are rejected so a typo is not silently
//! ignored.
//!
//! ```
//! use amqp_client::uri::AmqpUri;
//!
//! let uri: AmqpUri = "amqp://app:s%40fe@[::1]:5673/prod%2forders?heartbeat=10".parse().unwrap();
//! assert_eq!(uri.host, "::1");
//! assert_eq!(uri.port, 5673);
//! assert_eq!(uri.vhost, "prod/orders");
//! assert_eq!(uri.password.as_deref(), Some("s@fe"));
//! assert_eq!(uri.heartbeat, Some(10));
//! ```

use core::fmt;
use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::auth::SaslMechanism;
use crate::config::Endpoint;

/// The default port of `amqp://`.
pub const AMQP_PORT: u16 = 5672;
/// The default port of `amqps://`.
pub const AMQPS_PORT: u16 = 5671;

/// The two URI schemes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Scheme {
    /// `amqp://`: plain TCP.
    #[default]
    Amqp,
    /// `amqps://`: TLS over TCP.
    Amqps,
}

impl Scheme {
    /// The port used when the URI names none.
    pub const fn default_port(self) -> u16 {
        match self {
            Self::Amqp => AMQP_PORT,
            Self::Amqps => AMQPS_PORT,
        }
    }

    /// `"amqp"` or `"amqps"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Amqp => "amqp",
            Self::Amqps => "amqps",
        }
    }
}

/// Whether the TLS peer's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TlsVerify {
    /// Verify the server certificate chain and host name (the default).
    #[default]
    VerifyPeer,
    /// Accept any server certificate. Insecure: for tests only.
    VerifyNone,
}

/// TLS settings carried by an `amqps://` URI (or set in a [`crate::ConnectionConfig`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TlsOptions {
    /// PEM file with the CA certificates to trust instead of the platform roots (`cacertfile`).
    pub ca_cert_file: Option<PathBuf>,
    /// PEM file with the client certificate chain for mutual TLS (`certfile`).
    pub cert_file: Option<PathBuf>,
    /// PEM file with the client's private key (`keyfile`).
    pub key_file: Option<PathBuf>,
    /// The name sent in SNI and checked against the certificate, when it differs from the host
    /// (`server_name_indication`).
    pub server_name: Option<String>,
    /// Whether to verify the server (`verify`).
    pub verify: TlsVerify,
    /// A ready rustls configuration to use instead of the settings above (not in URIs; see
    /// [`TlsOptions::with_client_config`]).
    pub client_config: Option<crate::tls::TlsClientConfig>,
}

/// A parsed RabbitMQ URI. Components the URI leaves out are `None` (or the documented default)
/// so that a configuration can tell "not given" from "given".
///
/// `Debug` and `Display` never show the password.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AmqpUri {
    /// `amqp` or `amqps`.
    pub scheme: Scheme,
    /// The percent-decoded user name, when the URI has one.
    pub username: Option<String>,
    /// The percent-decoded password, when the URI has one.
    pub password: Option<String>,
    /// The host name or address, percent-decoded, IPv6 literals without brackets.
    /// `localhost` when the URI has none.
    pub host: String,
    /// The port, or the scheme's default.
    pub port: u16,
    /// The other hosts of a URI that lists several (`amqp://h1,h2:5673/`), in order, each
    /// with its port (or the scheme's default). Empty for a URI with one host.
    pub endpoints: Vec<Endpoint>,
    /// The virtual host, percent-decoded; `/` when the URI has none.
    pub vhost: String,
    /// `heartbeat`: the heartbeat interval to propose, in seconds (0 asks for none).
    pub heartbeat: Option<u16>,
    /// `frame_max`: the largest frame to propose, in octets.
    pub frame_max: Option<u32>,
    /// `channel_max`: the most channels to propose.
    pub channel_max: Option<u16>,
    /// `connection_timeout`: how long to wait for TCP connect and the AMQP handshake.
    pub connection_timeout: Option<Duration>,
    /// `auth_mechanism`: SASL mechanisms in order of preference (empty: the client's default).
    pub auth_mechanisms: Vec<SaslMechanism>,
    /// `connection_name`: the name shown in the management UI.
    pub connection_name: Option<String>,
    /// TLS parameters (only allowed with `amqps`).
    pub tls: TlsOptions,
}

impl Default for AmqpUri {
    fn default() -> Self {
        Self {
            scheme: Scheme::Amqp,
            username: None,
            password: None,
            host: "localhost".to_owned(),
            port: AMQP_PORT,
            endpoints: Vec::new(),
            vhost: "/".to_owned(),
            heartbeat: None,
            frame_max: None,
            channel_max: None,
            connection_timeout: None,
            auth_mechanisms: Vec::new(),
            connection_name: None,
            tls: TlsOptions::default(),
        }
    }
}

/// The part of a URI an error is about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UriPart {
    /// The scheme (`amqp://`).
    Scheme,
    /// The user name or password.
    UserInfo,
    /// The host.
    Host,
    /// The port.
    Port,
    /// The virtual host (path).
    VirtualHost,
    /// A query parameter, by name.
    Query(String),
    /// A `#fragment`, which AMQP URIs must not have.
    Fragment,
}

impl fmt::Display for UriPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Scheme => f.write_str("scheme"),
            Self::UserInfo => f.write_str("user info"),
            Self::Host => f.write_str("host"),
            Self::Port => f.write_str("port"),
            Self::VirtualHost => f.write_str("virtual host"),
            Self::Query(name) if name.is_empty() => f.write_str("query"),
            Self::Query(name) => write!(f, "query parameter `{name}`"),
            Self::Fragment => f.write_str("fragment"),
        }
    }
}

/// Why a URI was rejected, and which part of it was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriError {
    part: UriPart,
    reason: String,
}

impl UriError {
    fn new(part: UriPart, reason: impl Into<String>) -> Self {
        Self {
            part,
            reason: reason.into(),
        }
    }

    /// The part of the URI that is wrong.
    pub fn part(&self) -> &UriPart {
        &self.part
    }

    /// What is wrong with it.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for UriError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid AMQP URI: {}: {}", self.part, self.reason)
    }
}

impl std::error::Error for UriError {}

const TLS_PARAMS: [&str; 5] = [
    "cacertfile",
    "certfile",
    "keyfile",
    "server_name_indication",
    "verify",
];

const KNOWN_PARAMS: &str = "heartbeat, frame_max, channel_max, connection_timeout, \
     auth_mechanism, connection_name, cacertfile, certfile, keyfile, server_name_indication, verify";

impl AmqpUri {
    /// Parses a RabbitMQ URI.
    pub fn parse(input: &str) -> Result<Self, UriError> {
        let input = input.trim();
        let (scheme_str, rest) = input.split_once("://").ok_or_else(|| {
            UriError::new(
                UriPart::Scheme,
                format!("`{input}` does not start with `amqp://` or `amqps://`"),
            )
        })?;
        let scheme = if scheme_str.eq_ignore_ascii_case("amqp") {
            Scheme::Amqp
        } else if scheme_str.eq_ignore_ascii_case("amqps") {
            Scheme::Amqps
        } else {
            return Err(UriError::new(
                UriPart::Scheme,
                format!("`{scheme_str}` is not `amqp` or `amqps`"),
            ));
        };

        let mut uri = Self {
            scheme,
            port: scheme.default_port(),
            ..Self::default()
        };

        if rest.contains('#') {
            return Err(UriError::new(
                UriPart::Fragment,
                "AMQP URIs have no `#fragment`",
            ));
        }
        let (before_query, query) = match rest.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = match before_query.find('/') {
            Some(i) => before_query.split_at(i),
            None => (before_query, ""),
        };

        // userinfo is everything up to the last `@` of the authority.
        let host_port = match authority.rsplit_once('@') {
            Some((userinfo, host_port)) => {
                let (user, pass) = match userinfo.split_once(':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (userinfo, None),
                };
                uri.username = Some(decode(user, UriPart::UserInfo, "user name")?);
                uri.password = pass
                    .map(|p| decode(p, UriPart::UserInfo, "password"))
                    .transpose()?;
                host_port
            }
            None => authority,
        };
        let mut hosts = host_port.split(',');
        uri.parse_host_port(hosts.next().unwrap_or(""))?;
        for other in hosts {
            if other.is_empty() || (uri.endpoints.is_empty() && host_port.starts_with(',')) {
                return Err(UriError::new(
                    UriPart::Host,
                    format!("the host list `{host_port}` has an empty entry"),
                ));
            }
            let mut one = Self {
                scheme,
                port: scheme.default_port(),
                ..Self::default()
            };
            one.parse_host_port(other)?;
            uri.endpoints.push(Endpoint::new(one.host, one.port));
        }
        uri.parse_path(path)?;
        if let Some(query) = query {
            uri.parse_query(query)?;
        }
        Ok(uri)
    }

    fn parse_host_port(&mut self, host_port: &str) -> Result<(), UriError> {
        let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
            let (literal, after) = v6.split_once(']').ok_or_else(|| {
                UriError::new(
                    UriPart::Host,
                    format!("IPv6 literal `[{v6}` has no closing `]`"),
                )
            })?;
            if literal.parse::<Ipv6Addr>().is_err() {
                return Err(UriError::new(
                    UriPart::Host,
                    format!("`{literal}` is not an IPv6 address"),
                ));
            }
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| {
                    UriError::new(
                        UriPart::Port,
                        format!("expected `:port` after `[{literal}]`, found `{p}`"),
                    )
                })?),
            };
            (literal.to_owned(), port)
        } else {
            let (host, port) = match host_port.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (host_port, None),
            };
            let host = decode(host, UriPart::Host, "host")?;
            if host.contains(|c: char| c.is_whitespace() || matches!(c, '/' | '@' | ',')) {
                return Err(UriError::new(
                    UriPart::Host,
                    format!("`{host}` is not a valid host name"),
                ));
            }
            (host, port)
        };
        if !host.is_empty() {
            self.host = host;
        }
        if let Some(port) = port {
            if !port.is_empty() {
                self.port = match port.parse::<u16>() {
                    Ok(0) | Err(_) => {
                        return Err(UriError::new(
                            UriPart::Port,
                            format!("`{port}` is not a number from 1 to 65535"),
                        ))
                    }
                    Ok(p) => p,
                };
            }
        }
        Ok(())
    }

    fn parse_path(&mut self, path: &str) -> Result<(), UriError> {
        let Some(segment) = path.strip_prefix('/') else {
            return Ok(());
        };
        if segment.contains('/') {
            return Err(UriError::new(
                UriPart::VirtualHost,
                format!(
                    "path `{path}` has more than one segment; write a `/` inside the virtual \
                     host name as `%2f`"
                ),
            ));
        }
        let vhost = decode(segment, UriPart::VirtualHost, "virtual host")?;
        if !vhost.is_empty() {
            self.vhost = vhost;
        }
        Ok(())
    }

    fn parse_query(&mut self, query: &str) -> Result<(), UriError> {
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = decode(raw_key, UriPart::Query(String::new()), "parameter name")?;
            let part = || UriPart::Query(key.clone());
            let value = decode(raw_value, part(), "value")?;
            if TLS_PARAMS.contains(&key.as_str()) && self.scheme != Scheme::Amqps {
                return Err(UriError::new(
                    part(),
                    "is a TLS parameter, but the scheme is `amqp://` (use `amqps://`)",
                ));
            }
            match key.as_str() {
                "heartbeat" => self.heartbeat = Some(number(&value, part(), "0 to 65535")?),
                "frame_max" => {
                    let n: u32 = number(&value, part(), "0 to 4294967295")?;
                    // Spec: frame-max is at least frame-min-size, 4096 (0 means "no limit").
                    if n != 0 && n < 4096 {
                        return Err(UriError::new(
                            part(),
                            format!("{n} is below the minimum frame size 4096"),
                        ));
                    }
                    self.frame_max = Some(n);
                }
                "channel_max" => self.channel_max = Some(number(&value, part(), "0 to 65535")?),
                "connection_timeout" => {
                    let ms: u64 = number(&value, part(), "0 (milliseconds) up")?;
                    self.connection_timeout = Some(Duration::from_millis(ms));
                }
                "auth_mechanism" => {
                    let m = SaslMechanism::from_name(&value).ok_or_else(|| {
                        UriError::new(
                            part(),
                            format!("`{value}` is not one of plain, amqplain, external"),
                        )
                    })?;
                    if !self.auth_mechanisms.contains(&m) {
                        self.auth_mechanisms.push(m);
                    }
                }
                "connection_name" => self.connection_name = Some(value),
                "cacertfile" => self.tls.ca_cert_file = Some(path_value(value, part())?),
                "certfile" => self.tls.cert_file = Some(path_value(value, part())?),
                "keyfile" => self.tls.key_file = Some(path_value(value, part())?),
                "server_name_indication" => {
                    if value.is_empty() {
                        return Err(UriError::new(part(), "is empty"));
                    }
                    self.tls.server_name = Some(value);
                }
                "verify" => {
                    self.tls.verify = match value.as_str() {
                        "verify_peer" => TlsVerify::VerifyPeer,
                        "verify_none" => TlsVerify::VerifyNone,
                        other => {
                            return Err(UriError::new(
                                part(),
                                format!("`{other}` is not `verify_peer` or `verify_none`"),
                            ))
                        }
                    }
                }
                _ => {
                    return Err(UriError::new(
                        part(),
                        format!("unknown parameter (known: {KNOWN_PARAMS})"),
                    ))
                }
            }
        }
        Ok(())
    }

    /// Parses several URIs naming the nodes of one cluster into one: the first gives every
    /// setting, the hosts of the others follow in [`endpoints`](Self::endpoints). They must
    /// agree on everything but their hosts (scheme, user, password, virtual host and query),
    /// so that no node is silently reached with another node's settings.
    ///
    /// ```
    /// use amqp_client::uri::AmqpUri;
    ///
    /// let uri = AmqpUri::parse_many(["amqp://app@h1/prod", "amqp://app@h2:5673,h3/prod"])?;
    /// assert_eq!(uri.host, "h1");
    /// let others: Vec<String> = uri.endpoints.iter().map(|e| e.to_string()).collect();
    /// assert_eq!(others, ["h2:5673", "h3:5672"]);
    /// # Ok::<(), amqp_client::uri::UriError>(())
    /// ```
    pub fn parse_many<I, S>(uris: I) -> Result<Self, UriError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut first: Option<Self> = None;
        for (i, text) in uris.into_iter().enumerate() {
            let mut next = Self::parse(text.as_ref())?;
            let Some(all) = first.as_mut() else {
                first = Some(next);
                continue;
            };
            let mut same = next.clone();
            same.host.clone_from(&all.host);
            same.port = all.port;
            same.endpoints.clone_from(&all.endpoints);
            if same != *all {
                return Err(UriError::new(
                    UriPart::Host,
                    format!(
                        "URI {} (`{next}`) differs from the first (`{all}`) in more than its \
                         hosts",
                        i + 1
                    ),
                ));
            }
            let mut hosts = vec![Endpoint::new(std::mem::take(&mut next.host), next.port)];
            hosts.append(&mut next.endpoints);
            for e in hosts {
                if e != Endpoint::new(all.host.clone(), all.port) && !all.endpoints.contains(&e) {
                    all.endpoints.push(e);
                }
            }
        }
        first.ok_or_else(|| UriError::new(UriPart::Host, "no URI given"))
    }

    /// Every host of the URI, the first one first.
    pub fn all_endpoints(&self) -> Vec<Endpoint> {
        let mut all = vec![Endpoint::new(self.host.clone(), self.port)];
        all.extend(self.endpoints.iter().cloned());
        all
    }

    /// The user name to log in with: the URI's, else `guest`.
    pub fn username_or_default(&self) -> &str {
        self.username.as_deref().unwrap_or("guest")
    }

    /// The password to log in with: the URI's, else `guest`.
    pub fn password_or_default(&self) -> &str {
        self.password.as_deref().unwrap_or("guest")
    }

    /// The whole URI as text, password and query parameters included, so that parsing it
    /// gives back an equal `AmqpUri`. Use it to hand the URI on (to another process, a
    /// configuration file); [`Display`](fmt::Display) is for logs and hides the password.
    ///
    /// Every component is percent-encoded, every port written out, and the parameters come
    /// in a fixed order. Two things cannot be written: a [`TlsClientConfig`] given in code
    /// ([`TlsOptions::client_config`], left out) and file names that are not UTF-8 (written
    /// lossily).
    ///
    /// ```
    /// use amqp_client::uri::AmqpUri;
    ///
    /// let uri = AmqpUri::parse("amqps://app:p%40ss@mq.example/prod?heartbeat=10&verify=verify_none")?;
    /// assert_eq!(
    ///     uri.to_uri_string(),
    ///     "amqps://app:p%40ss@mq.example:5671/prod?heartbeat=10&verify=verify_none"
    /// );
    /// assert_eq!(AmqpUri::parse(&uri.to_uri_string())?, uri);
    /// assert_eq!(uri.to_string(), "amqps://app:***@mq.example:5671/prod");
    /// # Ok::<(), amqp_client::uri::UriError>(())
    /// ```
    ///
    /// [`TlsClientConfig`]: crate::tls::TlsClientConfig
    pub fn to_uri_string(&self) -> String {
        let mut out = format!("{}://", self.scheme.as_str());
        if self.username.is_some() || self.password.is_some() {
            out.push_str(&encode(self.username.as_deref().unwrap_or("")));
            if let Some(password) = &self.password {
                out.push(':');
                out.push_str(&encode(password));
            }
            out.push('@');
        }
        self.write_hosts(&mut out);
        out.push('/');
        out.push_str(&encode(&self.vhost));
        let mut query: Vec<(&str, String)> = Vec::new();
        if let Some(h) = self.heartbeat {
            query.push(("heartbeat", h.to_string()));
        }
        if let Some(f) = self.frame_max {
            query.push(("frame_max", f.to_string()));
        }
        if let Some(c) = self.channel_max {
            query.push(("channel_max", c.to_string()));
        }
        if let Some(t) = self.connection_timeout {
            query.push(("connection_timeout", t.as_millis().to_string()));
        }
        for m in &self.auth_mechanisms {
            query.push(("auth_mechanism", m.name().to_ascii_lowercase()));
        }
        if let Some(n) = &self.connection_name {
            query.push(("connection_name", n.clone()));
        }
        let tls = &self.tls;
        for (key, path) in [
            ("cacertfile", &tls.ca_cert_file),
            ("certfile", &tls.cert_file),
            ("keyfile", &tls.key_file),
        ] {
            if let Some(path) = path {
                query.push((key, path.to_string_lossy().into_owned()));
            }
        }
        if let Some(name) = &tls.server_name {
            query.push(("server_name_indication", name.clone()));
        }
        if tls.verify == TlsVerify::VerifyNone {
            query.push(("verify", "verify_none".to_owned()));
        }
        for (i, (key, value)) in query.iter().enumerate() {
            out.push(if i == 0 { '?' } else { '&' });
            out.push_str(key);
            out.push('=');
            out.push_str(&encode(value));
        }
        out
    }

    /// `host:port` of every endpoint, comma-separated, IPv6 literals in brackets.
    fn write_hosts(&self, out: &mut String) {
        for (i, e) in self.all_endpoints().iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            if e.host.contains(':') {
                out.push('[');
                out.push_str(&e.host);
                out.push(']');
            } else {
                out.push_str(&encode(&e.host));
            }
            out.push(':');
            out.push_str(&e.port.to_string());
        }
    }

    /// Sets the scheme. A port that was the old scheme's default (on every endpoint) becomes
    /// the new one's, so `amqp://h` turned TLS is `amqps://h:5671`.
    pub fn with_scheme(mut self, scheme: Scheme) -> Self {
        let (old, new) = (self.scheme.default_port(), scheme.default_port());
        if self.port == old {
            self.port = new;
        }
        for e in &mut self.endpoints {
            if e.port == old {
                e.port = new;
            }
        }
        self.scheme = scheme;
        self
    }

    /// Sets the one host to connect to (the other endpoints are dropped); the port stays.
    pub fn with_host(mut self, host: impl Into<String>) -> Self {
        self.host = host.into();
        self.endpoints.clear();
        self
    }

    /// Sets the port of the first host.
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Sets the user name.
    pub fn with_username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// Sets the password (a URI without a user name then logs in as `guest`).
    pub fn with_password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Sets the virtual host.
    pub fn with_vhost(mut self, vhost: impl Into<String>) -> Self {
        self.vhost = vhost.into();
        self
    }

    /// Sets `heartbeat`, in seconds (0 asks for none).
    pub fn with_heartbeat(mut self, seconds: u16) -> Self {
        self.heartbeat = Some(seconds);
        self
    }

    /// Sets `frame_max`.
    pub fn with_frame_max(mut self, frame_max: u32) -> Self {
        self.frame_max = Some(frame_max);
        self
    }

    /// Sets `channel_max`.
    pub fn with_channel_max(mut self, channel_max: u16) -> Self {
        self.channel_max = Some(channel_max);
        self
    }

    /// Sets `connection_timeout`.
    pub fn with_connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = Some(timeout);
        self
    }

    /// Sets the one SASL mechanism to use (`auth_mechanism`), replacing any list.
    pub fn with_auth_mechanism(mut self, mechanism: SaslMechanism) -> Self {
        self.auth_mechanisms = vec![mechanism];
        self
    }

    /// Sets `connection_name`.
    pub fn with_connection_name(mut self, name: impl Into<String>) -> Self {
        self.connection_name = Some(name.into());
        self
    }

    /// Sets the TLS parameters (which only an `amqps` URI may carry).
    pub fn with_tls(mut self, tls: TlsOptions) -> Self {
        self.tls = tls;
        self
    }
}

impl FromStr for AmqpUri {
    type Err = UriError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<&str> for AmqpUri {
    type Error = UriError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::parse(s)
    }
}

impl fmt::Display for AmqpUri {
    /// Writes the URI back, with the password replaced by `***` and without query parameters.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme.as_str())?;
        if let Some(user) = &self.username {
            write!(f, "{}", encode(user))?;
            if self.password.is_some() {
                f.write_str(":***")?;
            }
            f.write_str("@")?;
        }
        let mut hosts = String::new();
        self.write_hosts(&mut hosts);
        write!(f, "{hosts}/{}", encode(&self.vhost))
    }
}

impl fmt::Debug for AmqpUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpUri")
            .field("scheme", &self.scheme)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("host", &self.host)
            .field("port", &self.port)
            .field("endpoints", &self.endpoints)
            .field("vhost", &self.vhost)
            .field("heartbeat", &self.heartbeat)
            .field("frame_max", &self.frame_max)
            .field("channel_max", &self.channel_max)
            .field("connection_timeout", &self.connection_timeout)
            .field("auth_mechanisms", &self.auth_mechanisms)
            .field("connection_name", &self.connection_name)
            .field("tls", &self.tls)
            .finish()
    }
}

fn number<T: FromStr>(value: &str, part: UriPart, range: &str) -> Result<T, UriError> {
    value
        .parse()
        .map_err(|_| UriError::new(part, format!("`{value}` is not a number from {range}")))
}

fn path_value(value: String, part: UriPart) -> Result<PathBuf, UriError> {
    if value.is_empty() {
        return Err(UriError::new(part, "names no file"));
    }
    Ok(PathBuf::from(value))
}

/// Strict percent-decoding: every `%` must start a two-digit hex escape and the result must be
/// UTF-8.
fn decode(s: &str, part: UriPart, what: &str) -> Result<String, UriError> {
    if !s.contains('%') {
        return Ok(s.to_owned());
    }
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes().enumerate();
    while let Some((i, b)) = bytes.next() {
        if b != b'%' {
            out.push(b);
            continue;
        }
        let hex = |c: Option<(usize, u8)>| c.and_then(|(_, c)| (c as char).to_digit(16));
        match (hex(bytes.next()), hex(bytes.next())) {
            (Some(hi), Some(lo)) => out.push((hi * 16 + lo) as u8),
            _ => {
                let escape: String = s.chars().skip(i).take(3).collect();
                return Err(UriError::new(
                    part,
                    format!("{what} has a bad percent escape `{escape}`"),
                ));
            }
        }
    }
    String::from_utf8(out)
        .map_err(|_| UriError::new(part, format!("{what} is not UTF-8 after percent-decoding")))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_uri_string_round_trips_every_component() {
        for text in [
            "amqp://localhost",
            "amqp://u@h/",
            "amqp://:only-password@h",
            "amqp://us%3Aer:p%40ss%2Fw%3Ard%20%25@h%2Dx:1234/v%2Fhost?heartbeat=0",
            "amqp://app@h1,h2:5673,[2001:db8::1]:5700/prod?frame_max=8192&channel_max=7\
             &connection_timeout=1500&auth_mechanism=amqplain&auth_mechanism=plain\
             &connection_name=a%26b%3Dc",
            "amqps://app:pw@mq.example/?cacertfile=/etc/ca%20file.pem&certfile=/c.pem\
             &keyfile=/k.pem&server_name_indication=broker.example&verify=verify_none",
            "amqps://[::1]:5671/%2F",
        ] {
            let uri = parse(text);
            let written = uri.to_uri_string();
            assert_eq!(parse(&written), uri, "{text} → {written}");
            assert_eq!(parse(&written).to_uri_string(), written);
        }
        let uri = parse("amqp://u:secret@h/?heartbeat=5");
        assert!(uri.to_uri_string().contains("secret"));
        assert!(!uri.to_string().contains("secret"));
    }

    #[test]
    fn setters_build_what_parsing_would() {
        let built = AmqpUri::default()
            .with_host("mq.example")
            .with_username("app")
            .with_password("p@ss")
            .with_vhost("prod")
            .with_heartbeat(10)
            .with_connection_name("billing")
            .with_auth_mechanism(SaslMechanism::Plain)
            .with_scheme(Scheme::Amqps);
        assert_eq!(
            built,
            parse(
                "amqps://app:p%40ss@mq.example:5671/prod?heartbeat=10&auth_mechanism=plain\
                 &connection_name=billing"
            )
        );
        let moved = parse("amqp://h1,h2:5700/").with_scheme(Scheme::Amqps);
        assert_eq!(moved.to_string(), "amqps://h1:5671,h2:5700/%2F");
        let one = moved.with_host("solo").with_port(5800);
        assert_eq!(one.to_uri_string(), "amqps://solo:5800/%2F");
    }

    fn parse(s: &str) -> AmqpUri {
        AmqpUri::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> UriError {
        match AmqpUri::parse(s) {
            Ok(u) => panic!("{s} parsed as {u:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn full_uri() {
        let u = parse("amqp://user:pass@host:10000/vhost");
        assert_eq!(u.scheme, Scheme::Amqp);
        assert_eq!(u.username.as_deref(), Some("user"));
        assert_eq!(u.password.as_deref(), Some("pass"));
        assert_eq!(u.host, "host");
        assert_eq!(u.port, 10000);
        assert_eq!(u.vhost, "vhost");
    }

    #[test]
    fn percent_decoding_everywhere() {
        let u = parse("amqp://user%61:%61pass@ho%61st:10000/v%2fhost");
        assert_eq!(u.username.as_deref(), Some("usera"));
        assert_eq!(u.password.as_deref(), Some("apass"));
        assert_eq!(u.host, "hoast");
        assert_eq!(u.vhost, "v/host");
    }

    #[test]
    fn password_may_contain_reserved_characters_encoded_and_at_signs_split_at_last() {
        let u = parse("amqp://us%3Aer:p%40ss:word@host");
        assert_eq!(u.username.as_deref(), Some("us:er"));
        assert_eq!(u.password.as_deref(), Some("p@ss:word"));
        let u = parse("amqp://a@b@host");
        assert_eq!(u.username.as_deref(), Some("a@b"));
        assert_eq!(u.host, "host");
    }

    #[test]
    fn utf8_in_userinfo() {
        let u = parse("amqp://j%C3%BCrgen:%E2%82%AC@h");
        assert_eq!(u.username.as_deref(), Some("jürgen"));
        assert_eq!(u.password.as_deref(), Some("€"));
    }

    #[test]
    fn defaults() {
        let u = parse("amqp://");
        assert_eq!(u.host, "localhost");
        assert_eq!(u.port, 5672);
        assert_eq!(u.vhost, "/");
        assert_eq!(u.username, None);
        assert_eq!(u.password, None);
        assert_eq!(u.username_or_default(), "guest");
        assert_eq!(u.password_or_default(), "guest");
        let s = parse("amqps://");
        assert_eq!(s.scheme, Scheme::Amqps);
        assert_eq!(s.port, 5671);
        assert_eq!(parse("AMQP://h").scheme, Scheme::Amqp);
    }

    #[test]
    fn vhost_forms() {
        assert_eq!(parse("amqp://host").vhost, "/");
        assert_eq!(parse("amqp://host/").vhost, "/");
        assert_eq!(parse("amqp://host/%2f").vhost, "/");
        assert_eq!(parse("amqp://host/%2F").vhost, "/");
        assert_eq!(parse("amqp:///vhost").vhost, "vhost");
        assert_eq!(parse("amqp://host/a%20b").vhost, "a b");
        assert_eq!(parse("amqp://host?heartbeat=5").vhost, "/");
    }

    #[test]
    fn empty_userinfo_is_kept_as_empty_strings() {
        let u = parse("amqp://:@/");
        assert_eq!(u.username.as_deref(), Some(""));
        assert_eq!(u.password.as_deref(), Some(""));
        let u = parse("amqp://user@");
        assert_eq!(u.username.as_deref(), Some("user"));
        assert_eq!(u.password, None);
        assert_eq!(u.host, "localhost");
    }

    #[test]
    fn port_only() {
        let u = parse("amqp://:10000");
        assert_eq!(u.host, "localhost");
        assert_eq!(u.port, 10000);
        assert_eq!(parse("amqp://h:/").port, 5672);
    }

    #[test]
    fn ipv6_literals() {
        let u = parse("amqp://[::1]");
        assert_eq!(u.host, "::1");
        assert_eq!(u.port, 5672);
        let u = parse("amqps://u:p@[fe80::1:2]:5999/v");
        assert_eq!(u.host, "fe80::1:2");
        assert_eq!(u.port, 5999);
        assert_eq!(u.vhost, "v");
        let e = err("amqp://[::1");
        assert_eq!(e.part(), &UriPart::Host);
        assert!(e.to_string().contains("closing"), "{e}");
        let e = err("amqp://[nothex]:5672");
        assert_eq!(e.part(), &UriPart::Host);
        let e = err("amqp://[::1]5672");
        assert_eq!(e.part(), &UriPart::Port);
    }

    #[test]
    fn bad_scheme() {
        let e = err("http://host");
        assert_eq!(e.part(), &UriPart::Scheme);
        assert!(e.to_string().contains("`http`"), "{e}");
        assert_eq!(err("host:5672").part(), &UriPart::Scheme);
        assert_eq!(err("").part(), &UriPart::Scheme);
    }

    #[test]
    fn bad_port() {
        for s in [
            "amqp://h:abc",
            "amqp://h:0",
            "amqp://h:65536",
            "amqp://h:-1",
        ] {
            let e = err(s);
            assert_eq!(e.part(), &UriPart::Port, "{s}");
            assert!(e.to_string().contains("port"), "{e}");
        }
        // A second colon in a host that is not an IPv6 literal makes the port non-numeric.
        assert_eq!(err("amqp://::1:5672").part(), &UriPart::Port);
    }

    #[test]
    fn bad_percent_escapes_name_the_part() {
        assert_eq!(err("amqp://u%zz:p@h").part(), &UriPart::UserInfo);
        assert_eq!(err("amqp://u:p%4@h").part(), &UriPart::UserInfo);
        assert_eq!(err("amqp://h%/").part(), &UriPart::Host);
        assert_eq!(err("amqp://h/v%").part(), &UriPart::VirtualHost);
        assert_eq!(err("amqp://h/%ff").part(), &UriPart::VirtualHost);
        let e = err("amqp://h/?connection_name=%G1");
        assert_eq!(e.part(), &UriPart::Query("connection_name".into()));
        assert!(e.to_string().contains("%G1"), "{e}");
    }

    #[test]
    fn multi_segment_path_is_rejected() {
        let e = err("amqp://h/a/b");
        assert_eq!(e.part(), &UriPart::VirtualHost);
        assert!(e.to_string().contains("%2f"), "{e}");
    }

    #[test]
    fn fragment_is_rejected() {
        assert_eq!(err("amqp://h/v#frag").part(), &UriPart::Fragment);
    }

    #[test]
    fn query_parameters() {
        let u = parse(
            "amqp://h/v?heartbeat=30&frame_max=131072&channel_max=64&connection_timeout=2500\
             &auth_mechanism=amqplain&auth_mechanism=PLAIN&connection_name=my%20app",
        );
        assert_eq!(u.heartbeat, Some(30));
        assert_eq!(u.frame_max, Some(131_072));
        assert_eq!(u.channel_max, Some(64));
        assert_eq!(u.connection_timeout, Some(Duration::from_millis(2500)));
        assert_eq!(
            u.auth_mechanisms,
            vec![SaslMechanism::AmqPlain, SaslMechanism::Plain]
        );
        assert_eq!(u.connection_name.as_deref(), Some("my app"));
        assert_eq!(parse("amqp://h?heartbeat=0").heartbeat, Some(0));
        assert_eq!(parse("amqp://h?frame_max=0").frame_max, Some(0));
        // Empty pairs are skipped.
        assert_eq!(parse("amqp://h?&heartbeat=1&").heartbeat, Some(1));
    }

    #[test]
    fn bad_query_values_name_the_parameter() {
        let cases = [
            ("amqp://h?heartbeat=abc", "heartbeat"),
            ("amqp://h?heartbeat=70000", "heartbeat"),
            ("amqp://h?frame_max=-1", "frame_max"),
            ("amqp://h?frame_max=100", "frame_max"),
            ("amqp://h?channel_max=65536", "channel_max"),
            ("amqp://h?connection_timeout=soon", "connection_timeout"),
            ("amqp://h?auth_mechanism=kerberos", "auth_mechanism"),
            ("amqp://h?heartbeet=5", "heartbeet"),
        ];
        for (s, param) in cases {
            let e = err(s);
            assert_eq!(e.part(), &UriPart::Query(param.into()), "{s}");
            assert!(e.to_string().contains(param), "{e}");
        }
    }

    #[test]
    fn tls_parameters_are_kept() {
        let u = parse(
            "amqps://h/?cacertfile=/etc/ca.pem&certfile=%2Fhome%2Fc.pem&keyfile=k.pem\
             &server_name_indication=broker.example&verify=verify_none&auth_mechanism=external",
        );
        assert_eq!(u.tls.ca_cert_file, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(u.tls.cert_file, Some(PathBuf::from("/home/c.pem")));
        assert_eq!(u.tls.key_file, Some(PathBuf::from("k.pem")));
        assert_eq!(u.tls.server_name.as_deref(), Some("broker.example"));
        assert_eq!(u.tls.verify, TlsVerify::VerifyNone);
        assert_eq!(u.auth_mechanisms, vec![SaslMechanism::External]);
        assert_eq!(
            parse("amqps://h?verify=verify_peer").tls.verify,
            TlsVerify::VerifyPeer
        );
        assert_eq!(parse("amqps://h").tls, TlsOptions::default());
    }

    #[test]
    fn tls_parameters_need_amqps() {
        let e = err("amqp://h?cacertfile=/ca.pem");
        assert_eq!(e.part(), &UriPart::Query("cacertfile".into()));
        assert!(e.to_string().contains("amqps"), "{e}");
        let e = err("amqps://h?verify=maybe");
        assert_eq!(e.part(), &UriPart::Query("verify".into()));
        let e = err("amqps://h?certfile=");
        assert_eq!(e.part(), &UriPart::Query("certfile".into()));
    }

    #[test]
    fn display_and_debug_hide_the_password() {
        let u = parse("amqp://us%20er:topsecret@[::1]:5673/a%2fb");
        let shown = u.to_string();
        assert_eq!(shown, "amqp://us%20er:***@[::1]:5673/a%2Fb");
        assert!(!format!("{u:?}").contains("topsecret"));
        // What Display writes parses back to the same place.
        let back = parse(&shown);
        assert_eq!(back.host, u.host);
        assert_eq!(back.port, u.port);
        assert_eq!(back.vhost, u.vhost);
        assert_eq!(back.username, u.username);
    }

    fn hosts(u: &AmqpUri) -> Vec<String> {
        u.all_endpoints().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn several_hosts_in_one_uri() {
        let u = parse("amqp://user:pw@h1:5672,h2:5673/vhost");
        assert_eq!(hosts(&u), ["h1:5672", "h2:5673"]);
        assert_eq!((u.host.as_str(), u.port), ("h1", 5672));
        assert_eq!(u.vhost, "vhost");
        assert_eq!(u.password.as_deref(), Some("pw"));
        // Default ports follow the scheme; IPv6 literals and percent escapes work per host.
        let u = parse("amqps://h1,[::1]:5999,h%33,[fe80::2]/?verify=verify_none");
        assert_eq!(
            hosts(&u),
            ["h1:5671", "[::1]:5999", "h3:5671", "[fe80::2]:5671"]
        );
        assert_eq!(parse("amqp://h1").endpoints, []);
        // Display writes every host, and what it writes parses back to the same hosts.
        let u = parse("amqp://u:secret@h1,h2:5673/v");
        assert_eq!(u.to_string(), "amqp://u:***@h1:5672,h2:5673/v");
        assert_eq!(hosts(&parse(&u.to_string())), hosts(&u));
    }

    #[test]
    fn bad_host_lists_name_the_entry() {
        for s in [
            "amqp://h1,/",
            "amqp://,h2/",
            "amqp://h1,,h2",
            "amqp://u@h1,",
        ] {
            let e = err(s);
            assert_eq!(e.part(), &UriPart::Host, "{s}");
            assert!(e.to_string().contains("empty entry"), "{s}: {e}");
        }
        assert_eq!(err("amqp://h1,h2:99999/").part(), &UriPart::Port);
        assert_eq!(err("amqp://h1,[::1/").part(), &UriPart::Host);
        assert_eq!(err("amqp://h1,h%2c2/").part(), &UriPart::Host);
    }

    #[test]
    fn a_list_of_uris_becomes_one_with_several_hosts() {
        let u = AmqpUri::parse_many([
            "amqp://app:pw@h1:5700/v?heartbeat=5",
            "amqp://app:pw@h2:5701,h1:5700/v?heartbeat=5",
            "amqp://app:pw@h3:5702/v?heartbeat=5",
        ])
        .unwrap();
        assert_eq!(hosts(&u), ["h1:5700", "h2:5701", "h3:5702"]);
        assert_eq!(u.heartbeat, Some(5));
        for other in [
            "amqp://app:other@h2/v?heartbeat=5",
            "amqp://app:pw@h2/w?heartbeat=5",
            "amqps://app:pw@h2/v?heartbeat=5",
            "amqp://app:pw@h2/v",
        ] {
            let e = AmqpUri::parse_many(["amqp://app:pw@h1/v?heartbeat=5", other]).unwrap_err();
            assert!(e.to_string().contains("URI 2"), "{other}: {e}");
            assert!(!e.to_string().contains("pw@"), "no password in {e}");
        }
        assert!(AmqpUri::parse_many(Vec::<String>::new()).is_err());
        assert!(AmqpUri::parse_many(["amqp://h1", "http://h2"]).is_err());
    }

    #[test]
    fn from_str_and_try_from_agree() {
        let a: AmqpUri = "amqp://h:1/v".parse().unwrap();
        let b = AmqpUri::try_from("amqp://h:1/v").unwrap();
        assert_eq!(a, b);
    }
}
