//! The block daemon's logic: `block`/`unblock` messages from the `firewall` exchange validated
//! into actions, and each action turned into one fixed argv (nftables by default, or an
//! operator's `--command` template) with the address as an argv element of its own — never a
//! shell.

use std::fmt;
use std::net::IpAddr;

use serde_json::{json, Value};

use crate::sshwatch::parse_ip;

/// Block or unblock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// Add the address to the block list.
    Block,
    /// Remove it.
    Unblock,
}

impl Verb {
    /// `block` or `unblock`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Block => "block",
            Self::Unblock => "unblock",
        }
    }
}

/// One validated action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Action {
    /// What to do.
    pub verb: Verb,
    /// The address (IPv4-mapped IPv6 as IPv4).
    pub ip: IpAddr,
    /// Seconds the block lasts (`block` only; 0 = no timeout).
    pub ttl: u64,
}

/// Why a message is not an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionError(pub String);

impl fmt::Display for ActionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ActionError {}

/// Parses a `firewall` message: `{"action":"block"|"unblock","ip":"…","ttl":N}`.
pub fn parse_action(body: &[u8]) -> Result<Action, ActionError> {
    let err = |m: &str| ActionError(m.to_string());
    let v: Value =
        serde_json::from_slice(body).map_err(|e| ActionError(format!("not JSON: {e}")))?;
    let verb = match v.get("action").and_then(Value::as_str) {
        Some("block") => Verb::Block,
        Some("unblock") => Verb::Unblock,
        Some(other) => {
            return Err(ActionError(format!(
                "field action: unknown action {other:?}"
            )))
        }
        None => return Err(err("field action: missing")),
    };
    let ip_text = v
        .get("ip")
        .and_then(Value::as_str)
        .ok_or_else(|| err("field ip: missing or not a string"))?;
    // Only a bare address: no prefix, no zone, nothing an argv could misread.
    let ip = ip_text
        .parse::<IpAddr>()
        .ok()
        .and_then(|_| parse_ip(ip_text))
        .ok_or_else(|| ActionError(format!("field ip: {ip_text:?} is not an IP address")))?;
    let ttl = match v.get("ttl") {
        None | Some(Value::Null) => 0,
        Some(t) => t
            .as_u64()
            .filter(|&t| t <= 365 * 86_400)
            .ok_or_else(|| err("field ttl: not a number of seconds (0..=31536000)"))?,
    };
    Ok(Action { verb, ip, ttl })
}

/// The nftables table and sets.
pub const NFT_TABLE: &str = "prisem";

fn set_for(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "blocklist4"
    } else {
        "blocklist6"
    }
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_string()).collect()
}

/// The commands creating the table and the two sets (`flags interval, timeout`); `nft add`
/// leaves existing ones alone, so they can run at every start.
pub fn nft_setup() -> Vec<Vec<String>> {
    let mut out = vec![argv(&["nft", "add", "table", "inet", NFT_TABLE])];
    for (set, ty) in [("blocklist4", "ipv4_addr"), ("blocklist6", "ipv6_addr")] {
        out.push(argv(&[
            "nft",
            "add",
            "set",
            "inet",
            NFT_TABLE,
            set,
            "{",
            "type",
            ty,
            ";",
            "flags",
            "interval,",
            "timeout",
            ";",
            "}",
        ]));
    }
    out
}

/// The nftables command for an action.
pub fn nft_argv(a: &Action) -> Vec<String> {
    let ip = a.ip.to_string();
    let set = set_for(a.ip);
    match a.verb {
        Verb::Block if a.ttl > 0 => {
            let ttl = format!("{}s", a.ttl);
            argv(&[
                "nft", "add", "element", "inet", NFT_TABLE, set, "{", &ip, "timeout", &ttl, "}",
            ])
        }
        Verb::Block => argv(&[
            "nft", "add", "element", "inet", NFT_TABLE, set, "{", &ip, "}",
        ]),
        Verb::Unblock => argv(&[
            "nft", "delete", "element", "inet", NFT_TABLE, set, "{", &ip, "}",
        ]),
    }
}

/// An operator's command: words split on whitespace, where `{ip}` and `{ttl}` may stand only
/// as whole words and are replaced by one argv element each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(Vec<String>);

impl Template {
    /// Parses a template; fails on an empty one or a placeholder inside a larger word.
    pub fn parse(s: &str) -> Result<Self, String> {
        let words: Vec<String> = s.split_whitespace().map(str::to_string).collect();
        if words.is_empty() {
            return Err("command template is empty".into());
        }
        for w in &words {
            if (w.contains("{ip}") || w.contains("{ttl}")) && w != "{ip}" && w != "{ttl}" {
                return Err(format!(
                    "command template word {w:?}: {{ip}} and {{ttl}} must be whole words"
                ));
            }
        }
        Ok(Self(words))
    }

    /// The argv for an action.
    pub fn argv(&self, a: &Action) -> Vec<String> {
        self.0
            .iter()
            .map(|w| match w.as_str() {
                "{ip}" => a.ip.to_string(),
                "{ttl}" => a.ttl.to_string(),
                w => w.to_string(),
            })
            .collect()
    }
}

/// The `--dry-run` line for an action: `{"action","ip","ttl","argv":[…]}`.
pub fn dry_run_line(a: &Action, argv: &[String]) -> String {
    json!({
        "action": a.verb.name(),
        "ip": a.ip.to_string(),
        "ttl": a.ttl,
        "argv": argv,
    })
    .to_string()
}

/// Whether a failed `nft delete element` only says the element was not there (which is not an
/// error for an unblock).
pub fn nft_absent(stderr: &str) -> bool {
    stderr.contains("No such file or directory") || stderr.contains("element does not exist")
}

/// Runs one command with this fixed argv (no shell); on failure, the error is its standard
/// error (or why it could not be started).
pub async fn run_argv(argv: &[String]) -> Result<(), String> {
    let (prog, args) = argv.split_first().ok_or("empty command")?;
    let out = tokio::process::Command::new(prog)
        .args(args)
        .output()
        .await
        .map_err(|e| format!("cannot run {prog}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sshwatch::{Block, WatchConfig, Watcher};
    use chrono::{TimeZone, Utc};

    #[test]
    fn actions_validated() {
        let a = parse_action(br#"{"action":"block","ip":"203.0.113.5","ttl":600}"#).unwrap();
        assert_eq!(
            a,
            Action {
                verb: Verb::Block,
                ip: "203.0.113.5".parse().unwrap(),
                ttl: 600
            }
        );
        let a = parse_action(br#"{"action":"unblock","ip":"::ffff:192.0.2.1"}"#).unwrap();
        assert_eq!(a.ip.to_string(), "192.0.2.1");
        for (body, msg) in [
            (
                &br#"{"action":"block","ip":"203.0.113.5; reboot"}"#[..],
                "field ip",
            ),
            (br#"{"action":"block","ip":"203.0.113.0/24"}"#, "field ip"),
            (br#"{"action":"block","ip":"fe80::1%eth0"}"#, "field ip"),
            (br#"{"action":"block","ip":"-h"}"#, "field ip"),
            (br#"{"action":"flush","ip":"192.0.2.1"}"#, "field action"),
            (br#"{"ip":"192.0.2.1"}"#, "field action"),
            (
                br#"{"action":"block","ip":"192.0.2.1","ttl":-1}"#,
                "field ttl",
            ),
            (b"nope", "not JSON"),
        ] {
            let e = parse_action(body).unwrap_err().to_string();
            assert!(e.contains(msg), "{e}");
        }
    }

    #[test]
    fn nft_commands() {
        let a = parse_action(br#"{"action":"block","ip":"203.0.113.5","ttl":600}"#).unwrap();
        assert_eq!(
            nft_argv(&a).join(" "),
            "nft add element inet prisem blocklist4 { 203.0.113.5 timeout 600s }"
        );
        let a = parse_action(br#"{"action":"unblock","ip":"2001:db8::1"}"#).unwrap();
        assert_eq!(
            nft_argv(&a),
            argv(&[
                "nft",
                "delete",
                "element",
                "inet",
                "prisem",
                "blocklist6",
                "{",
                "2001:db8::1",
                "}"
            ])
        );
        let setup = nft_setup();
        assert_eq!(setup[0].join(" "), "nft add table inet prisem");
        assert_eq!(
            setup[1].join(" "),
            "nft add set inet prisem blocklist4 { type ipv4_addr ; flags interval, timeout ; }"
        );
    }

    #[test]
    fn templates_whole_words_only() {
        let t = Template::parse("ipset add prisem {ip} timeout {ttl} -exist").unwrap();
        let a = parse_action(br#"{"action":"block","ip":"198.51.100.7","ttl":60}"#).unwrap();
        assert_eq!(
            t.argv(&a),
            argv(&[
                "ipset",
                "add",
                "prisem",
                "198.51.100.7",
                "timeout",
                "60",
                "-exist"
            ])
        );
        assert!(Template::parse("pfctl -t bad -T add ip={ip}")
            .unwrap_err()
            .contains("whole words"));
        assert!(Template::parse("  ").is_err());
    }

    #[test]
    fn sshd_lines_to_dry_run_argv() {
        let mut w = Watcher::new(WatchConfig::default());
        let t0 = Utc.with_ymd_and_hms(2026, 3, 4, 12, 0, 0).unwrap();
        let line = "Failed password for invalid user 192.0.2.99 from 203.0.113.5 port 4711 ssh2";
        let block: Block = (0..5)
            .filter_map(|i| w.observe(line, t0 + chrono::Duration::seconds(i)))
            .next()
            .unwrap();
        let body = block.to_json().to_string();
        let a = parse_action(body.as_bytes()).unwrap();
        let line = dry_run_line(&a, &nft_argv(&a));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["action"], "block");
        assert_eq!(v["ip"], "203.0.113.5");
        assert_eq!(
            v["argv"],
            json!([
                "nft",
                "add",
                "element",
                "inet",
                "prisem",
                "blocklist4",
                "{",
                "203.0.113.5",
                "timeout",
                "600s",
                "}"
            ])
        );
    }
}
