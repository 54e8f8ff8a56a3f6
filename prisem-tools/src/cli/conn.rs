//! Connection options shared by every subcommand, and how they become one RabbitMQ URI.
//!
//! The URI from `--url` (or `AMQP_URL`) is the starting point; `--server`, `--port`, `--vhost`,
//! `--username`, `--password` (or `--authfile`), `--heartbeat`, `--connection-name`, `--ssl` and
//! the TLS files each replace their part of it. Without a URL the start is
//! `amqp://localhost:5672/` as user `guest`. The result is composed back into one URI, with every
//! part percent-encoded, and handed to the client's URI parser, so the same rules apply however
//! the connection was described.

use std::path::{Path, PathBuf};

use amqp_client::uri::{AmqpUri, Scheme, TlsVerify};
use clap::Args;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::exit::Failure;

/// Options that say which broker to talk to and how to log in.
#[derive(Debug, Clone, Default, Args)]
pub struct ConnOpts {
    /// The RabbitMQ URI: amqp://user:password@host:port/vhost?heartbeat=10&… (amqps:// for TLS)
    /// (the vhost `/` is written %2f). The options below replace parts of it.
    #[arg(
        short = 'u',
        long,
        env = "AMQP_URL",
        global = true,
        value_name = "URL",
        hide_env_values = true,
        help_heading = "Connection"
    )]
    pub url: Option<String>,

    /// Broker host name or address (`host:port` is accepted too).
    #[arg(
        short = 's',
        long,
        global = true,
        value_name = "HOST",
        help_heading = "Connection"
    )]
    pub server: Option<String>,

    /// Broker port [default: 5672, or 5671 with TLS].
    #[arg(long, global = true, value_name = "PORT", help_heading = "Connection")]
    pub port: Option<u16>,

    /// Virtual host [default: /].
    #[arg(long, global = true, value_name = "VHOST", help_heading = "Connection")]
    pub vhost: Option<String>,

    /// User name [default: guest].
    #[arg(
        long,
        global = true,
        value_name = "USER",
        help_heading = "Connection",
        conflicts_with = "authfile"
    )]
    pub username: Option<String>,

    /// Password [default: guest].
    #[arg(
        long,
        global = true,
        value_name = "PASSWORD",
        help_heading = "Connection",
        conflicts_with = "authfile"
    )]
    pub password: Option<String>,

    /// File holding the credentials, as two lines: `username:NAME` and `password:SECRET`.
    #[arg(long, global = true, value_name = "FILE", help_heading = "Connection")]
    pub authfile: Option<PathBuf>,

    /// Heartbeat interval to propose, in seconds (0 disables heartbeats).
    #[arg(
        long,
        global = true,
        value_name = "SECONDS",
        help_heading = "Connection"
    )]
    pub heartbeat: Option<u16>,

    /// Connection name shown by the broker's management tools (default: "amqp COMMAND").
    #[arg(long, global = true, value_name = "NAME", help_heading = "Connection")]
    pub connection_name: Option<String>,

    /// SASL mechanism to log in with: plain, amqplain, or external (the identity of the TLS
    /// client certificate given with --cert/--key).
    #[arg(long, global = true, value_name = "MECHANISM", help_heading = "Connection",
          value_parser = ["plain", "amqplain", "external"], ignore_case = true)]
    pub auth_mechanism: Option<String>,

    /// Connect over TLS (as an amqps:// URL does).
    #[arg(long, global = true, help_heading = "Connection")]
    pub ssl: bool,

    /// PEM file of CA certificates to trust for the broker's certificate (TLS only).
    #[arg(long, global = true, value_name = "FILE", help_heading = "Connection")]
    pub cacert: Option<PathBuf>,

    /// PEM file with the client certificate for mutual TLS.
    #[arg(long, global = true, value_name = "FILE", help_heading = "Connection")]
    pub cert: Option<PathBuf>,

    /// PEM file with the client certificate's private key.
    #[arg(long, global = true, value_name = "FILE", help_heading = "Connection")]
    pub key: Option<PathBuf>,
}

/// Credentials read from an `--authfile`.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthFile {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
}

impl core::fmt::Debug for AuthFile {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AuthFile")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Parses the text of an authfile: a `username:NAME` line, a `password:SECRET` line, nothing
/// else (blank lines at the end are allowed). The format is rabbitmq-c's, so one file serves
/// both tools. Everything after the prefix is taken as is, spaces included.
pub fn parse_authfile(text: &str) -> Result<AuthFile, String> {
    let mut lines = text.lines().map(|l| l.strip_suffix('\r').unwrap_or(l));
    let username = lines
        .next()
        .and_then(|l| l.strip_prefix("username:"))
        .ok_or("the first line must be `username:NAME`")?;
    let password = lines
        .next()
        .and_then(|l| l.strip_prefix("password:"))
        .ok_or("the second line must be `password:SECRET`")?;
    if lines.any(|l| !l.trim().is_empty()) {
        return Err("unexpected text after the password line".into());
    }
    if username.is_empty() {
        return Err("the user name is empty".into());
    }
    Ok(AuthFile {
        username: username.to_owned(),
        password: password.to_owned(),
    })
}

fn read_authfile(path: &Path) -> Result<AuthFile, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::usage(format!("cannot read --authfile {}: {e}", path.display())))?;
    parse_authfile(&text)
        .map_err(|e| Failure::usage(format!("malformed --authfile {}: {e}", path.display())))
}

/// Characters left as they are in every URI component: RFC 3986's unreserved set.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn enc(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

/// The parts of a RabbitMQ URI, before they are written out.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct UriParts {
    /// `amqps` when true, else `amqp`.
    pub tls: bool,
    /// User name, if any.
    pub username: Option<String>,
    /// Password, if any (only written with a user name).
    pub password: Option<String>,
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port, if not the scheme's default.
    pub port: Option<u16>,
    /// The other nodes of a cluster (`amqp://h1,h2:5673/`), each with its port if not the
    /// scheme's default; written after `host`, separated by commas.
    pub more_hosts: Vec<(String, Option<u16>)>,
    /// Virtual host, if not the default `/`.
    pub vhost: Option<String>,
    /// Query parameters, in order.
    pub query: Vec<(String, String)>,
}

impl core::fmt::Debug for UriParts {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("UriParts")
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("more_hosts", &self.more_hosts)
            .field("vhost", &self.vhost)
            .field("query", &self.query)
            .finish_non_exhaustive()
    }
}

impl UriParts {
    /// Writes the URI, percent-encoding every component (a `/` in the vhost becomes `%2F`).
    pub fn compose(&self) -> String {
        let mut out = String::from(if self.tls { "amqps://" } else { "amqp://" });
        if let Some(user) = &self.username {
            out.push_str(&enc(user));
            if let Some(pass) = &self.password {
                out.push(':');
                out.push_str(&enc(pass));
            }
            out.push('@');
        }
        let hosts = std::iter::once((&self.host, self.port))
            .chain(self.more_hosts.iter().map(|(h, p)| (h, *p)));
        for (i, (host, port)) in hosts.enumerate() {
            if i > 0 {
                out.push(',');
            }
            if host.contains(':') {
                // An IPv6 literal: brackets, no encoding (the colons are the address).
                out.push('[');
                out.push_str(host);
                out.push(']');
            } else {
                out.push_str(&enc(host));
            }
            if let Some(port) = port {
                out.push(':');
                out.push_str(&port.to_string());
            }
        }
        out.push('/');
        out.push_str(&enc(self.vhost.as_deref().unwrap_or("/")));
        for (i, (k, v)) in self.query.iter().enumerate() {
            out.push(if i == 0 { '?' } else { '&' });
            out.push_str(&enc(k));
            out.push('=');
            out.push_str(&enc(v));
        }
        out
    }

    /// The parts of an already parsed URI (all of them, so nothing it said is lost).
    pub fn from_uri(uri: &AmqpUri) -> Self {
        let mut query = Vec::new();
        let mut q = |k: &str, v: String| query.push((k.to_owned(), v));
        if let Some(h) = uri.heartbeat {
            q("heartbeat", h.to_string());
        }
        if let Some(f) = uri.frame_max {
            q("frame_max", f.to_string());
        }
        if let Some(c) = uri.channel_max {
            q("channel_max", c.to_string());
        }
        if let Some(t) = uri.connection_timeout {
            q("connection_timeout", t.as_millis().to_string());
        }
        for m in &uri.auth_mechanisms {
            q("auth_mechanism", m.name().to_ascii_lowercase());
        }
        if let Some(n) = &uri.connection_name {
            q("connection_name", n.clone());
        }
        let tls = &uri.tls;
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.to_string_lossy().into_owned());
        if let Some(p) = path(&tls.ca_cert_file) {
            q("cacertfile", p);
        }
        if let Some(p) = path(&tls.cert_file) {
            q("certfile", p);
        }
        if let Some(p) = path(&tls.key_file) {
            q("keyfile", p);
        }
        if let Some(s) = &tls.server_name {
            q("server_name_indication", s.clone());
        }
        if tls.verify == TlsVerify::VerifyNone {
            q("verify", "verify_none".into());
        }
        Self {
            tls: uri.scheme == Scheme::Amqps,
            username: uri.username.clone(),
            password: uri.password.clone(),
            host: uri.host.clone(),
            port: (uri.port != uri.scheme.default_port()).then_some(uri.port),
            more_hosts: uri
                .endpoints
                .iter()
                .map(|e| {
                    let port = (e.port != uri.scheme.default_port()).then_some(e.port);
                    (e.host.clone(), port)
                })
                .collect(),
            vhost: (uri.vhost != "/").then(|| uri.vhost.clone()),
            query,
        }
    }

    fn set_query(&mut self, key: &str, value: String) {
        self.query.retain(|(k, _)| k != key);
        self.query.push((key.to_owned(), value));
    }
}

/// Splits rabbitmq-c's `--server host:port`; a bare IPv6 address (several colons) is a host.
fn split_server(server: &str) -> Result<(String, Option<u16>), Failure> {
    if let Some(v6) = server.strip_prefix('[') {
        let (host, rest) = v6
            .split_once(']')
            .ok_or_else(|| Failure::usage(format!("--server {server:?}: missing `]`")))?;
        return match rest.strip_prefix(':') {
            Some(p) => Ok((host.to_owned(), Some(parse_port(server, p)?))),
            None if rest.is_empty() => Ok((host.to_owned(), None)),
            None => Err(Failure::usage(format!(
                "--server {server:?}: junk after `]`"
            ))),
        };
    }
    match server.split_once(':') {
        Some((host, port)) if !port.contains(':') => {
            Ok((host.to_owned(), Some(parse_port(server, port)?)))
        }
        _ => Ok((server.to_owned(), None)),
    }
}

fn parse_port(server: &str, port: &str) -> Result<u16, Failure> {
    port.parse()
        .map_err(|_| Failure::usage(format!("--server {server:?}: bad port number {port:?}")))
}

impl ConnOpts {
    /// The URI these options describe, composed from `--url` and the options that override its
    /// parts. `default_name` is the connection name used when none is given.
    pub fn uri(&self, default_name: &str) -> Result<String, Failure> {
        let mut parts = match self.url.as_deref().filter(|u| !u.trim().is_empty()) {
            Some(url) => {
                let uri = AmqpUri::parse(url)
                    .map_err(|e| Failure::usage(format!("bad --url / AMQP_URL: {e}")))?;
                UriParts::from_uri(&uri)
            }
            None => UriParts {
                host: "localhost".into(),
                ..UriParts::default()
            },
        };
        if let Some(server) = &self.server {
            let (host, port) = split_server(server)?;
            if host.is_empty() {
                return Err(Failure::usage("--server: the host name is empty"));
            }
            if port.is_some() && self.port.is_some() {
                return Err(Failure::usage(
                    "both --server HOST:PORT and --port give a port",
                ));
            }
            // --server names the one broker to use.
            parts.host = host;
            parts.more_hosts.clear();
            if port.is_some() {
                parts.port = port;
            }
        }
        if self.ssl && !parts.tls {
            parts.tls = true;
            // The plain default port is not where TLS listens.
            if parts.port == Some(amqp_client::uri::AMQP_PORT) {
                parts.port = None;
            }
            for (_, port) in &mut parts.more_hosts {
                if *port == Some(amqp_client::uri::AMQP_PORT) {
                    *port = None;
                }
            }
        }
        if let Some(port) = self.port {
            parts.port = Some(port);
        }
        if let Some(vhost) = &self.vhost {
            parts.vhost = Some(vhost.clone());
        }
        if let Some(path) = &self.authfile {
            let auth = read_authfile(path)?;
            parts.username = Some(auth.username);
            parts.password = Some(auth.password);
        }
        if let Some(user) = &self.username {
            parts.username = Some(user.clone());
        }
        if let Some(pass) = &self.password {
            if parts.username.is_none() {
                parts.username = Some("guest".into());
            }
            parts.password = Some(pass.clone());
        }
        if let Some(m) = &self.auth_mechanism {
            parts.set_query("auth_mechanism", m.to_ascii_lowercase());
        }
        if let Some(h) = self.heartbeat {
            parts.set_query("heartbeat", h.to_string());
        }
        match &self.connection_name {
            Some(name) => parts.set_query("connection_name", name.clone()),
            None if !parts.query.iter().any(|(k, _)| k == "connection_name") => {
                parts.set_query("connection_name", default_name.to_owned());
            }
            None => {}
        }
        for (flag, key, value) in [
            ("--cacert", "cacertfile", &self.cacert),
            ("--cert", "certfile", &self.cert),
            ("--key", "keyfile", &self.key),
        ] {
            if let Some(path) = value {
                if !parts.tls {
                    return Err(Failure::usage(format!(
                        "{flag} needs a TLS connection: add --ssl or use an amqps:// URL"
                    )));
                }
                parts.set_query(key, path.to_string_lossy().into_owned());
            }
        }
        Ok(parts.compose())
    }

    /// The client configuration these options describe.
    pub fn config(&self, default_name: &str) -> Result<amqp_client::ConnectionConfig, Failure> {
        let uri = self.uri(default_name)?;
        let parsed = AmqpUri::parse(&uri).map_err(|e| Failure::usage(e.to_string()))?;
        Ok(amqp_client::ConnectionConfig::from_parsed_uri(&parsed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> ConnOpts {
        ConnOpts::default()
    }

    #[test]
    fn authfile_format() {
        let a = parse_authfile("username:bob\npassword:s3cr:et \n").unwrap();
        assert_eq!(
            (a.username.as_str(), a.password.as_str()),
            ("bob", "s3cr:et ")
        );
        let a = parse_authfile("username:bob\r\npassword:\r\n\n").unwrap();
        assert_eq!(a.password, "");
        assert!(parse_authfile("bob\nsecret\n")
            .unwrap_err()
            .contains("username:"));
        assert!(parse_authfile("username:bob\n")
            .unwrap_err()
            .contains("password:"));
        assert!(parse_authfile("username:bob\npassword:x\nmore\n")
            .unwrap_err()
            .contains("after"));
        assert!(parse_authfile("username:\npassword:x\n")
            .unwrap_err()
            .contains("empty"));
        assert!(parse_authfile("").is_err());
        assert!(!format!(
            "{:?}",
            parse_authfile("username:u\npassword:hidden\n").unwrap()
        )
        .contains("hidden"));
    }

    #[test]
    fn defaults_without_url() {
        assert_eq!(
            opts().uri("amqp get").unwrap(),
            "amqp://localhost/%2F?connection_name=amqp%20get"
        );
    }

    #[test]
    fn parts_are_percent_encoded() {
        let o = ConnOpts {
            server: Some("broker.example".into()),
            port: Some(5673),
            vhost: Some("prod/orders".into()),
            username: Some("app@x".into()),
            password: Some("p:a/s s%".into()),
            heartbeat: Some(10),
            connection_name: Some("n&m".into()),
            auth_mechanism: Some("AMQPLAIN".into()),
            ..opts()
        };
        let uri = o.uri("x").unwrap();
        assert_eq!(
            uri,
            "amqp://app%40x:p%3Aa%2Fs%20s%25@broker.example:5673/prod%2Forders?auth_mechanism=amqplain&heartbeat=10&connection_name=n%26m"
        );
        let parsed = AmqpUri::parse(&uri).unwrap();
        assert_eq!(parsed.username.as_deref(), Some("app@x"));
        assert_eq!(parsed.password.as_deref(), Some("p:a/s s%"));
        assert_eq!(parsed.vhost, "prod/orders");
        assert_eq!(parsed.port, 5673);
        assert_eq!(parsed.heartbeat, Some(10));
        assert_eq!(parsed.connection_name.as_deref(), Some("n&m"));
        assert_eq!(
            parsed.auth_mechanisms,
            [amqp_client::SaslMechanism::AmqPlain]
        );
    }

    #[test]
    fn options_override_the_url_and_keep_the_rest() {
        let o = ConnOpts {
            url: Some("amqp://u:p@h1:1234/v1?frame_max=8192&heartbeat=5".into()),
            vhost: Some("/".into()),
            heartbeat: Some(0),
            password: Some("new".into()),
            ..opts()
        };
        let parsed = AmqpUri::parse(&o.uri("d").unwrap()).unwrap();
        assert_eq!(parsed.host, "h1");
        assert_eq!(parsed.port, 1234);
        assert_eq!(parsed.vhost, "/");
        assert_eq!(parsed.username.as_deref(), Some("u"));
        assert_eq!(parsed.password.as_deref(), Some("new"));
        assert_eq!(parsed.frame_max, Some(8192));
        assert_eq!(parsed.heartbeat, Some(0));
        assert_eq!(parsed.connection_name.as_deref(), Some("d"));
    }

    #[test]
    fn every_host_of_a_cluster_url_is_kept() {
        let o = ConnOpts {
            url: Some("amqp://u:p@h1:5700,h2:5701,[::1]/v".into()),
            ..opts()
        };
        let parsed = AmqpUri::parse(&o.uri("d").unwrap()).unwrap();
        let hosts: Vec<String> = parsed
            .all_endpoints()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(hosts, ["h1:5700", "h2:5701", "[::1]:5672"]);
        // --ssl moves hosts on the plain default port to the TLS default port.
        let tls = ConnOpts {
            url: Some("amqp://h1,h2:5672,h3:5701/".into()),
            ssl: true,
            ..opts()
        };
        let parsed = AmqpUri::parse(&tls.uri("d").unwrap()).unwrap();
        let hosts: Vec<String> = parsed
            .all_endpoints()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(hosts, ["h1:5671", "h2:5671", "h3:5701"]);
        // --server names the one broker to use.
        let one = ConnOpts {
            server: Some("solo:5800".into()),
            ..o
        };
        let parsed = AmqpUri::parse(&one.uri("d").unwrap()).unwrap();
        assert_eq!((parsed.host.as_str(), parsed.port), ("solo", 5800));
        assert!(parsed.endpoints.is_empty());
    }

    #[test]
    fn url_connection_name_is_kept() {
        let o = ConnOpts {
            url: Some("amqp://h/?connection_name=mine".into()),
            ..opts()
        };
        let parsed = AmqpUri::parse(&o.uri("d").unwrap()).unwrap();
        assert_eq!(parsed.connection_name.as_deref(), Some("mine"));
    }

    #[test]
    fn server_forms() {
        let uri = |s: &str| {
            ConnOpts {
                server: Some(s.into()),
                ..opts()
            }
            .uri("n")
        };
        assert!(uri("h:5999").unwrap().starts_with("amqp://h:5999/"));
        assert!(uri("::1").unwrap().starts_with("amqp://[::1]/"));
        assert!(uri("[::1]:7").unwrap().starts_with("amqp://[::1]:7/"));
        assert!(uri("h:x").unwrap_err().message.contains("bad port"));
        assert!(uri(":5").unwrap_err().message.contains("empty"));
        let both = ConnOpts {
            server: Some("h:1".into()),
            port: Some(2),
            ..opts()
        };
        assert!(both.uri("n").is_err());
        let parsed = AmqpUri::parse(&uri("::1").unwrap()).unwrap();
        assert_eq!(parsed.host, "::1");
    }

    #[test]
    fn tls_options() {
        let o = ConnOpts {
            cacert: Some("/x/ca.pem".into()),
            ..opts()
        };
        let e = o.uri("n").unwrap_err();
        assert!(e.message.contains("--ssl"), "{e}");
        assert_eq!(e.code, crate::exit::USAGE);
        let o = ConnOpts {
            url: Some("amqp://h:5672/".into()),
            ssl: true,
            cacert: Some("/x/ca.pem".into()),
            cert: Some("/x/c.pem".into()),
            key: Some("/x/k.pem".into()),
            ..opts()
        };
        let parsed = AmqpUri::parse(&o.uri("n").unwrap()).unwrap();
        assert_eq!(parsed.scheme, Scheme::Amqps);
        assert_eq!(parsed.port, 5671);
        assert_eq!(
            parsed.tls.ca_cert_file.as_deref(),
            Some(Path::new("/x/ca.pem"))
        );
        assert_eq!(parsed.tls.cert_file.as_deref(), Some(Path::new("/x/c.pem")));
        assert_eq!(parsed.tls.key_file.as_deref(), Some(Path::new("/x/k.pem")));
    }

    #[test]
    fn bad_url_is_a_usage_error() {
        let o = ConnOpts {
            url: Some("http://x".into()),
            ..opts()
        };
        let e = o.uri("n").unwrap_err();
        assert_eq!(e.code, crate::exit::USAGE);
        assert!(e.message.contains("--url"), "{e}");
    }

    #[test]
    fn authfile_sets_credentials() {
        let dir = std::env::temp_dir().join(format!("prisem-authfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("auth");
        std::fs::write(&path, "username:al ice\npassword:pw@1\n").unwrap();
        let o = ConnOpts {
            authfile: Some(path.clone()),
            ..opts()
        };
        let parsed = AmqpUri::parse(&o.uri("n").unwrap()).unwrap();
        assert_eq!(parsed.username.as_deref(), Some("al ice"));
        assert_eq!(parsed.password.as_deref(), Some("pw@1"));
        std::fs::write(&path, "nonsense").unwrap();
        assert!(o
            .uri("n")
            .unwrap_err()
            .message
            .contains("malformed --authfile"));
        std::fs::remove_dir_all(&dir).unwrap();
        let missing = ConnOpts {
            authfile: Some(dir.join("none")),
            ..opts()
        };
        assert!(missing
            .uri("n")
            .unwrap_err()
            .message
            .contains("cannot read"));
    }
}
