//! PRISEM configuration: defaults, then a YAML file, then the environment, then the command
//! line, each overriding the one before.
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `RPC_SERVER` | `localhost` | broker host (`host:port` accepted) |
//! | `RPC_VHOST` | `/` | virtual host |
//! | `RPC_USER` / `RPC_PWD` | `rpc_user` / `rpc_user` | credentials |
//! | `RPC_DOMAIN` | `localdomain` | appended to the short host name in envelopes and logs |
//! | `RPC_RPCEXCHANGE` | `""` | exchange requests are published to (the default exchange) |
//! | `RPC_LOGEXCHANGE` | `logs` | fanout exchange of the DIMS log lines |
//! | `RPC_QUEUEBASE` | the program's service name | queue base (`anon` → queue `anon_0.5.5`) |
//! | `RPC_DISPLAY_UTC` | `true` | logmon shows times in UTC (`false`: local time) |
//! | `AMQP_URL` | unset | a RabbitMQ URI (TLS included) that overrides server, vhost, user and password |
//!
//! The file is the first of these that exists and parses: `$RPC_CONFIG` (a file, or a
//! directory holding `rpc_config.yml`), `./rpc_config.yml`, `~/.rpc_config.yml`. A file that
//! exists but does not parse is skipped with a warning, and the search goes on. Keys in the file
//! are the variable names above (`RPC_SERVER: broker.example`) or the same names in lower case
//! without the prefix (`server: broker.example`); values may be YAML strings, numbers or
//! booleans. Unknown keys are reported as warnings, never fatal.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// The settings every PRISEM program shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcConfig {
    /// Broker host, optionally `host:port` (`RPC_SERVER`).
    pub server: String,
    /// Virtual host (`RPC_VHOST`).
    pub vhost: String,
    /// User name (`RPC_USER`).
    pub user: String,
    /// Password (`RPC_PWD`).
    pub password: String,
    /// Domain appended to the short host name (`RPC_DOMAIN`).
    pub domain: String,
    /// Exchange requests are published to (`RPC_RPCEXCHANGE`, default `""`).
    pub rpc_exchange: String,
    /// Fanout exchange for log lines (`RPC_LOGEXCHANGE`, default `logs`).
    pub log_exchange: String,
    /// Queue base (`RPC_QUEUEBASE`, default the program's service name).
    pub queue_base: String,
    /// Whether logmon displays times in UTC (`RPC_DISPLAY_UTC`).
    pub display_utc: bool,
    /// A RabbitMQ URI that overrides server, vhost, user and password (`AMQP_URL`, `--url`).
    pub url: Option<String>,
    /// The configuration file that was read, if any.
    pub file: Option<PathBuf>,
}

/// Where configuration comes from; [`Sources::from_process`] reads the real ones, tests build
/// their own.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Environment variables.
    pub env: HashMap<String, String>,
    /// The working directory (for `./rpc_config.yml`).
    pub cwd: Option<PathBuf>,
    /// The home directory (for `~/.rpc_config.yml`).
    pub home: Option<PathBuf>,
}

impl Sources {
    /// The process's environment, working directory and `$HOME`.
    pub fn from_process() -> Self {
        let env: HashMap<String, String> = std::env::vars().collect();
        let home = env.get("HOME").filter(|h| !h.is_empty()).map(PathBuf::from);
        Self {
            env,
            cwd: std::env::current_dir().ok(),
            home,
        }
    }
}

/// Command-line values that override the rest (`None`: not given).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--server`.
    pub server: Option<String>,
    /// `-q/--queue-base`.
    pub queue_base: Option<String>,
    /// `--url`.
    pub url: Option<String>,
    /// `-l/--log-exchange`.
    pub log_exchange: Option<String>,
    /// `--display-utc` (true) or `--display-localtime` (false).
    pub display_utc: Option<bool>,
}

const KEYS: [&str; 10] = [
    "RPC_SERVER",
    "RPC_VHOST",
    "RPC_USER",
    "RPC_PWD",
    "RPC_DOMAIN",
    "RPC_RPCEXCHANGE",
    "RPC_LOGEXCHANGE",
    "RPC_QUEUEBASE",
    "RPC_DISPLAY_UTC",
    "AMQP_URL",
];

impl RpcConfig {
    /// The defaults for `program` (its queue base is its name).
    pub fn defaults(program: &str) -> Self {
        Self {
            server: "localhost".into(),
            vhost: "/".into(),
            user: "rpc_user".into(),
            password: "rpc_user".into(),
            domain: "localdomain".into(),
            rpc_exchange: String::new(),
            log_exchange: "logs".into(),
            queue_base: program.into(),
            display_utc: true,
            url: None,
            file: None,
        }
    }

    /// Loads the configuration of `program` from the process's sources; the warnings say which
    /// files were skipped and which keys were not understood.
    pub fn load(program: &str) -> (Self, Vec<String>) {
        Self::load_from(program, &Sources::from_process())
    }

    /// Loads the configuration of `program`: defaults, then the first configuration file that
    /// exists and parses, then the environment.
    pub fn load_from(program: &str, sources: &Sources) -> (Self, Vec<String>) {
        let mut cfg = Self::defaults(program);
        let mut warnings = Vec::new();
        for path in candidate_files(sources) {
            if !path.is_file() {
                continue;
            }
            match read_file(&path) {
                Ok((values, unknown)) => {
                    for key in unknown {
                        warnings.push(format!("{}: unknown key {key:?} ignored", path.display()));
                    }
                    for (key, value) in values {
                        if let Err(e) = cfg.set(&key, &value) {
                            warnings.push(format!("{}: {e}", path.display()));
                        }
                    }
                    cfg.file = Some(path);
                    break;
                }
                Err(e) => warnings.push(format!("{}: skipped: {e}", path.display())),
            }
        }
        for key in KEYS {
            if let Some(value) = sources.env.get(key) {
                if key == "AMQP_URL" && value.is_empty() {
                    continue;
                }
                if let Err(e) = cfg.set(key, value) {
                    warnings.push(format!("environment: {e}"));
                }
            }
        }
        (cfg, warnings)
    }

    /// Applies the command line's values.
    pub fn apply(&mut self, overrides: &Overrides) {
        if let Some(s) = &overrides.server {
            self.server.clone_from(s);
        }
        if let Some(q) = &overrides.queue_base {
            self.queue_base.clone_from(q);
        }
        if let Some(u) = &overrides.url {
            self.url = Some(u.clone());
        }
        if let Some(l) = &overrides.log_exchange {
            self.log_exchange.clone_from(l);
        }
        if let Some(d) = overrides.display_utc {
            self.display_utc = d;
        }
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "RPC_SERVER" => self.server = value.to_owned(),
            "RPC_VHOST" => self.vhost = value.to_owned(),
            "RPC_USER" => self.user = value.to_owned(),
            "RPC_PWD" => self.password = value.to_owned(),
            "RPC_DOMAIN" => self.domain = value.to_owned(),
            "RPC_RPCEXCHANGE" => self.rpc_exchange = value.to_owned(),
            "RPC_LOGEXCHANGE" => self.log_exchange = value.to_owned(),
            "RPC_QUEUEBASE" => self.queue_base = value.to_owned(),
            "RPC_DISPLAY_UTC" => {
                self.display_utc = match value.trim().to_ascii_lowercase().as_str() {
                    "true" | "yes" | "1" | "on" => true,
                    "false" | "no" | "0" | "off" => false,
                    _ => return Err(format!("RPC_DISPLAY_UTC: {value:?} is not true or false")),
                }
            }
            "AMQP_URL" => self.url = Some(value.to_owned()),
            _ => return Err(format!("unknown key {key:?}")),
        }
        Ok(())
    }

    /// The RabbitMQ URI to connect with: `url` when set, otherwise one composed from server,
    /// vhost, user and password (each part percent-encoded).
    pub fn amqp_uri(&self) -> String {
        if let Some(url) = self.url.as_deref().filter(|u| !u.is_empty()) {
            return url.to_owned();
        }
        const PART: &AsciiSet = &NON_ALPHANUMERIC
            .remove(b'-')
            .remove(b'.')
            .remove(b'_')
            .remove(b'~');
        let enc = |s: &str| utf8_percent_encode(s, PART).to_string();
        let (host, port) = split_host_port(&self.server);
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            enc(host)
        };
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        format!(
            "amqp://{}:{}@{host}{port}/{}",
            enc(&self.user),
            enc(&self.password),
            enc(&self.vhost)
        )
    }
}

/// Splits `host:port`, `[v6]:port`, a bare IPv6 address or a bare host.
fn split_host_port(server: &str) -> (&str, Option<&str>) {
    if let Some(rest) = server.strip_prefix('[') {
        if let Some((host, tail)) = rest.split_once(']') {
            return (host, tail.strip_prefix(':').filter(|p| !p.is_empty()));
        }
    }
    match server.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            (host, Some(port).filter(|p| !p.is_empty()))
        }
        _ => (server, None),
    }
}

/// The configuration files to try, in order.
pub fn candidate_files(sources: &Sources) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(c) = sources.env.get("RPC_CONFIG").filter(|c| !c.is_empty()) {
        let p = PathBuf::from(c);
        files.push(if p.is_dir() {
            p.join("rpc_config.yml")
        } else {
            p
        });
    }
    if let Some(cwd) = &sources.cwd {
        files.push(cwd.join("rpc_config.yml"));
    }
    if let Some(home) = &sources.home {
        files.push(home.join(".rpc_config.yml"));
    }
    files
}

/// A configuration file's (canonical key, value) pairs and its unknown keys.
type FileValues = (Vec<(String, String)>, Vec<String>);

/// Reads a configuration file.
fn read_file(path: &Path) -> Result<FileValues, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    parse_yaml(&text)
}

fn parse_yaml(text: &str) -> Result<FileValues, String> {
    use serde_yaml_ng::Value;
    let doc: Value = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
    let map = match doc {
        Value::Mapping(m) => m,
        Value::Null => return Ok((Vec::new(), Vec::new())),
        _ => return Err("not a YAML mapping of keys to values".into()),
    };
    let mut values = Vec::new();
    let mut unknown = Vec::new();
    for (k, v) in map {
        let Some(k) = k.as_str() else {
            unknown.push(format!("{k:?}"));
            continue;
        };
        let upper = k.to_ascii_uppercase();
        let canonical = if KEYS.contains(&upper.as_str()) {
            upper
        } else {
            format!("RPC_{upper}")
        };
        if !KEYS.contains(&canonical.as_str()) {
            unknown.push(k.to_owned());
            continue;
        }
        let value = match v {
            Value::String(s) => s,
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            Value::Null => String::new(),
            _ => return Err(format!("{k}: expected a string, number or boolean")),
        };
        values.push((canonical, value));
    }
    Ok((values, unknown))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(dir: &Path, env: &[(&str, &str)]) -> Sources {
        Sources {
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            cwd: Some(dir.join("cwd")),
            home: Some(dir.join("home")),
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("prisem-config-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("cwd")).unwrap();
        std::fs::create_dir_all(d.join("home")).unwrap();
        d
    }

    #[test]
    fn defaults_match_the_contract() {
        let d = scratch("defaults");
        let (c, w) = RpcConfig::load_from("anon", &sources(&d, &[]));
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c, RpcConfig::defaults("anon"));
        assert_eq!(c.queue_base, "anon");
        assert_eq!(c.log_exchange, "logs");
        assert_eq!(c.rpc_exchange, "");
        assert!(c.display_utc);
        assert_eq!(c.amqp_uri(), "amqp://rpc_user:rpc_user@localhost/%2F");
    }

    #[test]
    fn search_order_and_precedence() {
        let d = scratch("order");
        std::fs::write(d.join("home/.rpc_config.yml"), "RPC_SERVER: home-host\n").unwrap();
        let (c, _) = RpcConfig::load_from("x", &sources(&d, &[]));
        assert_eq!(c.server, "home-host");

        std::fs::write(
            d.join("cwd/rpc_config.yml"),
            "server: cwd-host\nRPC_VHOST: prisem\ndisplay_utc: false\n",
        )
        .unwrap();
        let (c, _) = RpcConfig::load_from("x", &sources(&d, &[]));
        assert_eq!(c.server, "cwd-host");
        assert_eq!(c.vhost, "prisem");
        assert!(!c.display_utc);
        assert_eq!(c.file, Some(d.join("cwd/rpc_config.yml")));

        // $RPC_CONFIG as a directory holding rpc_config.yml wins over ./ and ~/.
        std::fs::create_dir_all(d.join("conf")).unwrap();
        std::fs::write(d.join("conf/rpc_config.yml"), "RPC_SERVER: conf-host\n").unwrap();
        let conf = d.join("conf");
        let conf = conf.to_str().unwrap();
        let (c, _) = RpcConfig::load_from("x", &sources(&d, &[("RPC_CONFIG", conf)]));
        assert_eq!(c.server, "conf-host");
        assert_eq!(c.vhost, "/", "only the first file is read");

        // The environment overrides the file, the command line overrides both.
        let env = [("RPC_CONFIG", conf), ("RPC_SERVER", "env-host")];
        let (mut c, _) = RpcConfig::load_from("x", &sources(&d, &env));
        assert_eq!(c.server, "env-host");
        c.apply(&Overrides {
            server: Some("cli-host:5673".into()),
            queue_base: Some("cifbulk_v1".into()),
            ..Default::default()
        });
        assert_eq!(c.server, "cli-host:5673");
        assert_eq!(c.queue_base, "cifbulk_v1");
        assert_eq!(c.amqp_uri(), "amqp://rpc_user:rpc_user@cli-host:5673/%2F");
    }

    #[test]
    fn broken_file_is_skipped_with_a_warning() {
        let d = scratch("broken");
        std::fs::write(d.join("cwd/rpc_config.yml"), "server: [unclosed\n").unwrap();
        std::fs::write(
            d.join("home/.rpc_config.yml"),
            "RPC_SERVER: ok-host\nbogus: 1\n",
        )
        .unwrap();
        let (c, w) = RpcConfig::load_from("x", &sources(&d, &[]));
        assert_eq!(c.server, "ok-host");
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("skipped"), "{w:?}");
        assert!(w[1].contains("bogus"), "{w:?}");
    }

    #[test]
    fn url_overrides_the_parts_and_parts_are_encoded() {
        let mut c = RpcConfig::defaults("x");
        c.user = "a b".into();
        c.password = "p@ss:/".into();
        c.server = "[::1]:5680".into();
        assert_eq!(c.amqp_uri(), "amqp://a%20b:p%40ss%3A%2F@[::1]:5680/%2F");
        c.server = "::1".into();
        assert_eq!(c.amqp_uri(), "amqp://a%20b:p%40ss%3A%2F@[::1]/%2F");
        c.url = Some("amqps://u:p@h/v".into());
        assert_eq!(c.amqp_uri(), "amqps://u:p@h/v");
        let d = scratch("url");
        let (c, _) = RpcConfig::load_from("x", &sources(&d, &[("AMQP_URL", "amqp://e/")]));
        assert_eq!(c.url.as_deref(), Some("amqp://e/"));
        let (c, w) = RpcConfig::load_from("x", &sources(&d, &[("RPC_DISPLAY_UTC", "maybe")]));
        assert!(c.display_utc);
        assert!(w[0].contains("RPC_DISPLAY_UTC"), "{w:?}");
    }
}
