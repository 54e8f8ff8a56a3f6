//! Connection options shared by every subcommand, and how they become one RabbitMQ URI.
//!
//! The URI from `--url` (or `AMQP_URL`) is the starting point; `--server`, `--port`, `--vhost`,
//! `--username`, `--password` (or `--authfile`), `--heartbeat`, `--connection-name`, `--ssl` and
//! the TLS files each replace their part of it. Without a URL the start is
//! `amqp://localhost:5672/` as user `guest`. Both go through the client's one URI model
//! (`AmqpUri`), so the same rules apply however the connection was described.

use std::path::{Path, PathBuf};

use amqp_client::uri::{AmqpUri, Scheme};
use amqp_client::SaslMechanism;
use clap::Args;

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
    /// The URI these options describe: `--url` with the parts the other options replace.
    /// `default_name` is the connection name used when none is given.
    pub fn uri(&self, default_name: &str) -> Result<AmqpUri, Failure> {
        let mut uri = match self.url.as_deref().filter(|u| !u.trim().is_empty()) {
            Some(url) => AmqpUri::parse(url)
                .map_err(|e| Failure::usage(format!("bad --url / AMQP_URL: {e}")))?,
            None => AmqpUri::default(),
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
            uri = uri.with_host(host);
            if let Some(port) = port {
                uri = uri.with_port(port);
            }
        }
        if self.ssl && uri.scheme != Scheme::Amqps {
            // Hosts on the plain default port move to the TLS default port.
            uri = uri.with_scheme(Scheme::Amqps);
        }
        if let Some(port) = self.port {
            uri = uri.with_port(port);
        }
        if let Some(vhost) = &self.vhost {
            uri = uri.with_vhost(vhost.clone());
        }
        if let Some(path) = &self.authfile {
            let auth = read_authfile(path)?;
            uri = uri
                .with_username(auth.username)
                .with_password(auth.password);
        }
        if let Some(user) = &self.username {
            uri = uri.with_username(user.clone());
        }
        if let Some(pass) = &self.password {
            if uri.username.is_none() {
                uri = uri.with_username("guest");
            }
            uri = uri.with_password(pass.clone());
        }
        if let Some(m) = &self.auth_mechanism {
            let mechanism = SaslMechanism::from_name(m).ok_or_else(|| {
                Failure::usage(format!(
                    "--auth-mechanism: `{m}` is not one of plain, amqplain, external"
                ))
            })?;
            uri = uri.with_auth_mechanism(mechanism);
        }
        if let Some(h) = self.heartbeat {
            uri = uri.with_heartbeat(h);
        }
        match &self.connection_name {
            Some(name) => uri = uri.with_connection_name(name.clone()),
            None if uri.connection_name.is_none() => {
                uri = uri.with_connection_name(default_name);
            }
            None => {}
        }
        for (flag, file, value) in [
            ("--cacert", &mut uri.tls.ca_cert_file, &self.cacert),
            ("--cert", &mut uri.tls.cert_file, &self.cert),
            ("--key", &mut uri.tls.key_file, &self.key),
        ] {
            if let Some(path) = value {
                if uri.scheme != Scheme::Amqps {
                    return Err(Failure::usage(format!(
                        "{flag} needs a TLS connection: add --ssl or use an amqps:// URL"
                    )));
                }
                *file = Some(path.clone());
            }
        }
        Ok(uri)
    }

    /// The client configuration these options describe.
    pub fn config(&self, default_name: &str) -> Result<amqp_client::ConnectionConfig, Failure> {
        Ok(amqp_client::ConnectionConfig::from_parsed_uri(
            &self.uri(default_name)?,
        ))
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
            opts().uri("amqp get").unwrap().to_uri_string(),
            "amqp://localhost:5672/%2F?connection_name=amqp%20get"
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
        let uri = o.uri("x").unwrap().to_uri_string();
        assert_eq!(
            uri,
            "amqp://app%40x:p%3Aa%2Fs%20s%25@broker.example:5673/prod%2Forders?heartbeat=10&auth_mechanism=amqplain&connection_name=n%26m"
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
        let parsed = o.uri("d").unwrap();
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
        let parsed = o.uri("d").unwrap();
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
        let parsed = tls.uri("d").unwrap();
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
        let parsed = one.uri("d").unwrap();
        assert_eq!((parsed.host.as_str(), parsed.port), ("solo", 5800));
        assert!(parsed.endpoints.is_empty());
    }

    #[test]
    fn url_connection_name_is_kept() {
        let o = ConnOpts {
            url: Some("amqp://h/?connection_name=mine".into()),
            ..opts()
        };
        let parsed = o.uri("d").unwrap();
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
        let text = |s: &str| uri(s).unwrap().to_uri_string();
        assert!(text("h:5999").starts_with("amqp://h:5999/"));
        assert!(text("::1").starts_with("amqp://[::1]:5672/"));
        assert!(text("[::1]:7").starts_with("amqp://[::1]:7/"));
        assert!(uri("h:x").unwrap_err().message.contains("bad port"));
        assert!(uri(":5").unwrap_err().message.contains("empty"));
        let bad = ConnOpts {
            auth_mechanism: Some("GSSAPI".into()),
            ..opts()
        };
        assert!(bad.uri("n").unwrap_err().message.contains("GSSAPI"));
        let both = ConnOpts {
            server: Some("h:1".into()),
            port: Some(2),
            ..opts()
        };
        assert!(both.uri("n").is_err());
        let parsed = uri("::1").unwrap();
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
        let parsed = o.uri("n").unwrap();
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
        let parsed = o.uri("n").unwrap();
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
