//! The sshd watcher's logic: which sshd lines are failed logins, the address they came from
//! (only ever the trailing `from <IP> port <N>`), and a sliding window per address that turns
//! repeated failures into a block message for the `firewall` exchange.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use prisem_tools::sshwatch::{Watcher, WatchConfig};
//!
//! let mut w = Watcher::new(WatchConfig::default());
//! let t = Utc.with_ymd_and_hms(2026, 3, 4, 12, 0, 0).unwrap();
//! let line = "Failed password for root from 203.0.113.5 port 4711 ssh2";
//! let blocks: Vec<_> = (0..5).filter_map(|i| w.observe(line, t + chrono::Duration::seconds(i))).collect();
//! assert_eq!(blocks.len(), 1);
//! assert_eq!(blocks[0].ip.to_string(), "203.0.113.5");
//! ```

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use ipnet::IpNet;
use serde_json::json;

/// What kind of failure a line reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// `Failed password …` or `Failed keyboard-interactive/pam …`.
    FailedAuth,
    /// `Invalid user …`.
    InvalidUser,
    /// `User … not allowed because …` (AllowUsers, DenyUsers, AllowGroups, DenyGroups).
    NotAllowed,
    /// `maximum authentication attempts exceeded …`.
    MaxAttempts,
}

impl FailureKind {
    /// The reason given in block messages.
    pub fn reason(self) -> &'static str {
        match self {
            Self::FailedAuth => "failed authentication",
            Self::InvalidUser => "invalid user",
            Self::NotAllowed => "user not allowed",
            Self::MaxAttempts => "maximum authentication attempts exceeded",
        }
    }
}

/// One failure: its kind, the address and the client port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// The kind of failure.
    pub kind: FailureKind,
    /// The address, normalised (IPv4-mapped IPv6 as IPv4, zone stripped).
    pub ip: IpAddr,
    /// The client port, when the line gives one.
    pub port: Option<u16>,
    /// Whether the line names an invalid user (`Failed password for invalid user …`).
    pub invalid_user: bool,
}

/// Parses an address as sshd prints it: IPv4-mapped IPv6 becomes IPv4, a zone id is dropped.
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.split('%').next()?;
    let ip: IpAddr = s.parse().ok()?;
    Some(match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    })
}

/// The address and port of a line ending in `from <IP> port <N>` (optionally followed by
/// `ssh2` and `[preauth]`). Whatever comes before — user names, versions — is never looked at.
fn trailing_from_port(line: &str) -> Option<(&str, IpAddr, u16)> {
    let mut rest = line.trim_end();
    rest = rest.strip_suffix(" [preauth]").unwrap_or(rest);
    rest = rest.strip_suffix(" ssh2").unwrap_or(rest);
    let (head, port) = rest.rsplit_once(' ')?;
    let port: u16 = port.parse().ok()?;
    let head = head.strip_suffix(" port")?;
    let (head, ip) = head.rsplit_once(' ')?;
    let ip = parse_ip(ip)?;
    let head = head.strip_suffix(" from")?;
    Some((head, ip, port))
}

/// The failure a sshd message reports, if any.
pub fn failure(message: &str) -> Option<Failure> {
    let m = message.trim();
    let m = m.strip_prefix("error: ").unwrap_or(m);
    for (suffix, kind) in [
        (
            " not allowed because not listed in AllowUsers",
            FailureKind::NotAllowed,
        ),
        (
            " not allowed because listed in DenyUsers",
            FailureKind::NotAllowed,
        ),
        (
            " not allowed because none of user's groups are listed in AllowGroups",
            FailureKind::NotAllowed,
        ),
        (
            " not allowed because a group is listed in DenyGroups",
            FailureKind::NotAllowed,
        ),
    ] {
        if let Some(head) = m.strip_suffix(suffix) {
            // "User NAME from IP not allowed because …": the address is right before the
            // fixed suffix, after everything the client chose.
            if !head.starts_with("User ") {
                return None;
            }
            let (head, ip) = head.rsplit_once(' ')?;
            head.strip_suffix(" from")?;
            return Some(Failure {
                kind,
                ip: parse_ip(ip)?,
                port: None,
                invalid_user: false,
            });
        }
    }
    let (head, ip, port) = trailing_from_port(m)?;
    let (kind, invalid_user) = if let Some(user) = head
        .strip_prefix("Failed password for ")
        .or_else(|| head.strip_prefix("Failed keyboard-interactive/pam for "))
    {
        (FailureKind::FailedAuth, user.starts_with("invalid user "))
    } else if head.starts_with("Invalid user ") {
        (FailureKind::InvalidUser, true)
    } else if head.starts_with("maximum authentication attempts exceeded for ") {
        (FailureKind::MaxAttempts, false)
    } else {
        return None;
    };
    Some(Failure {
        kind,
        ip,
        port: Some(port),
        invalid_user,
    })
}

/// The watcher's settings.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// Failures within `window` that trigger a block (5).
    pub max_failures: usize,
    /// The sliding window (10 minutes).
    pub window: Duration,
    /// How long a block lasts (10 minutes).
    pub ttl: Duration,
    /// Never blocked (loopback is always added).
    pub allow: Vec<IpNet>,
    /// Count IPv6 addresses by their /64.
    pub ipv6_by_64: bool,
}

impl Default for WatchConfig {
    fn default() -> Self {
        Self {
            max_failures: 5,
            window: Duration::from_secs(600),
            ttl: Duration::from_secs(600),
            allow: vec![],
            ipv6_by_64: false,
        }
    }
}

/// A block decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    /// The address (or the /64's first address when counting by /64).
    pub ip: IpAddr,
    /// Why (the kind of the last failure).
    pub reason: &'static str,
    /// Failures in the window.
    pub count: usize,
    /// The window.
    pub window: Duration,
    /// How long the block lasts.
    pub ttl: Duration,
    /// The first failure counted.
    pub first: DateTime<Utc>,
    /// The last failure counted.
    pub last: DateTime<Utc>,
}

impl Block {
    /// The message for the `firewall` exchange (routing key `block`).
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "action": "block",
            "ip": self.ip.to_string(),
            "reason": self.reason,
            "count": self.count,
            "window": self.window.as_secs(),
            "ttl": self.ttl.as_secs(),
            "first": self.first.to_rfc3339_opts(SecondsFormat::Secs, true),
            "last": self.last.to_rfc3339_opts(SecondsFormat::Secs, true),
        })
    }
}

/// Whether a line's origin is trusted: by default the bridge's unix sockets and loopback peers.
pub fn trusted_origin(transport: &str, peer: &str) -> bool {
    match transport {
        "unix" | "unix-stream" => true,
        "udp" | "tcp" => peer
            .parse::<std::net::SocketAddr>()
            .is_ok_and(|a| a.ip().is_loopback()),
        _ => false,
    }
}

/// Failures per address in a sliding window, and the addresses blocked.
#[derive(Debug)]
pub struct Watcher {
    cfg: WatchConfig,
    seen: HashMap<IpAddr, VecDeque<DateTime<Utc>>>,
    /// Connections (address, port) whose `Invalid user` line was counted, so the
    /// `Failed password for invalid user` that follows is the same attempt.
    invalid_pending: HashMap<(IpAddr, u16), DateTime<Utc>>,
    blocked: HashMap<IpAddr, DateTime<Utc>>,
}

impl Watcher {
    /// A watcher with `cfg`.
    pub fn new(cfg: WatchConfig) -> Self {
        Self {
            cfg,
            seen: HashMap::new(),
            invalid_pending: HashMap::new(),
            blocked: HashMap::new(),
        }
    }

    fn allowed(&self, ip: IpAddr) -> bool {
        ip.is_loopback() || ip.is_unspecified() || self.cfg.allow.iter().any(|n| n.contains(&ip))
    }

    fn key(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V6(v6) if self.cfg.ipv6_by_64 => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
            ip => ip,
        }
    }

    /// Takes one sshd message seen at `now`; returns a block when this failure reaches the
    /// limit.
    pub fn observe(&mut self, message: &str, now: DateTime<Utc>) -> Option<Block> {
        let f = failure(message)?;
        if self.allowed(f.ip) {
            return None;
        }
        let window = chrono::Duration::from_std(self.cfg.window).ok()?;
        // One attempt on several lines counts once.
        self.invalid_pending.retain(|_, t| now - *t < window);
        if let Some(port) = f.port {
            match f.kind {
                FailureKind::InvalidUser => {
                    self.invalid_pending.insert((f.ip, port), now);
                }
                FailureKind::FailedAuth
                    if f.invalid_user && self.invalid_pending.remove(&(f.ip, port)).is_some() =>
                {
                    return None;
                }
                _ => {}
            }
        }
        let key = self.key(f.ip);
        if self.blocked.get(&key).is_some_and(|until| *until > now) {
            return None;
        }
        let times = self.seen.entry(key).or_default();
        times.push_back(now);
        while times.front().is_some_and(|t| now - *t >= window) {
            times.pop_front();
        }
        if times.len() < self.cfg.max_failures {
            return None;
        }
        let first = times.front().copied().unwrap_or(now);
        let count = times.len();
        self.seen.remove(&key);
        let ttl = chrono::Duration::from_std(self.cfg.ttl).ok()?;
        self.blocked.insert(key, now + ttl);
        Some(Block {
            ip: key,
            reason: f.kind.reason(),
            count,
            window: self.cfg.window,
            ttl: self.cfg.ttl,
            first,
            last: now,
        })
    }

    /// Blocks whose time is up at `now` (for an `unblock` message when the firewall cannot
    /// expire them itself); they are forgotten.
    pub fn expired(&mut self, now: DateTime<Utc>) -> Vec<IpAddr> {
        let mut out: Vec<IpAddr> = self
            .blocked
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(ip, _)| *ip)
            .collect();
        out.sort();
        self.blocked.retain(|_, until| *until > now);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 4, 12, 0, 0).unwrap() + chrono::Duration::seconds(s)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn failure_patterns() {
        let cases = [
            ("Failed password for root from 203.0.113.5 port 4711 ssh2", FailureKind::FailedAuth, "203.0.113.5"),
            ("Failed password for invalid user bob from 203.0.113.6 port 1 ssh2", FailureKind::FailedAuth, "203.0.113.6"),
            ("Failed keyboard-interactive/pam for root from 2001:db8::7 port 22 ssh2", FailureKind::FailedAuth, "2001:db8::7"),
            ("Invalid user admin from 198.51.100.3 port 5000", FailureKind::InvalidUser, "198.51.100.3"),
            ("User carol from 198.51.100.4 not allowed because not listed in AllowUsers", FailureKind::NotAllowed, "198.51.100.4"),
            ("error: maximum authentication attempts exceeded for root from 192.0.2.44 port 60000 ssh2 [preauth]", FailureKind::MaxAttempts, "192.0.2.44"),
            ("Failed password for root from ::ffff:192.0.2.9 port 4711 ssh2", FailureKind::FailedAuth, "192.0.2.9"),
            ("Failed password for root from fe80::1%eth0 port 4711 ssh2", FailureKind::FailedAuth, "fe80::1"),
        ];
        for (line, kind, addr) in cases {
            let f = failure(line).unwrap_or_else(|| panic!("{line}"));
            assert_eq!((f.kind, f.ip), (kind, ip(addr)), "{line}");
        }
        for line in [
            "Accepted publickey for root from 203.0.113.5 port 4711 ssh2",
            "Connection closed by 203.0.113.5 port 4711 [preauth]",
            "Failed password for root from 203.0.113.5",
            "Failed password for root from not-an-ip port 22 ssh2",
        ] {
            assert_eq!(failure(line), None, "{line}");
        }
    }

    #[test]
    fn injected_addresses_are_never_the_one_taken() {
        // An address planted in the user name: the trailing one is the attacker's.
        let f = failure("Failed password for invalid user x from 192.0.2.200 port 22 from 203.0.113.9 port 4711 ssh2").unwrap();
        assert_eq!(f.ip, ip("203.0.113.9"));
        let f =
            failure("Invalid user from 192.0.2.200 port 22 from 203.0.113.9 port 4711").unwrap();
        assert_eq!(f.ip, ip("203.0.113.9"));
        // A user name ending the line with a fake "from … port …" and no real one: nothing.
        assert_eq!(
            failure("Failed password for invalid user a from 192.0.2.1 port 1 ssh2 [preauth] x"),
            None
        );
        // In a client version string (not a failure line at all).
        assert_eq!(failure("Bad protocol version identification 'SSH-2.0-x from 192.0.2.1 port 22' from 203.0.113.9 port 4711"), None);
        // A user name carrying the AllowUsers suffix cannot move the address.
        let f = failure(
            "User 192.0.2.50 from 203.0.113.9 not allowed because not listed in AllowUsers",
        )
        .unwrap();
        assert_eq!(f.ip, ip("203.0.113.9"));
    }

    #[test]
    fn five_in_ten_minutes_blocks_once() {
        let mut w = Watcher::new(WatchConfig::default());
        let line = "Failed password for root from 203.0.113.5 port 4711 ssh2";
        for i in 0..4 {
            assert_eq!(w.observe(line, t(i * 100)), None);
        }
        let b = w.observe(line, t(400)).unwrap();
        assert_eq!(
            (b.ip, b.count, b.first, b.last),
            (ip("203.0.113.5"), 5, t(0), t(400))
        );
        let j = b.to_json();
        assert_eq!(j["action"], "block");
        assert_eq!(j["ttl"], 600);
        assert_eq!(j["window"], 600);
        assert_eq!(j["reason"], "failed authentication");
        // Banned: more failures do nothing until it expires.
        assert_eq!(w.observe(line, t(500)), None);
        assert!(w.expired(t(999)).is_empty());
        assert_eq!(w.expired(t(1000)), vec![ip("203.0.113.5")]);
    }

    #[test]
    fn the_window_slides() {
        let mut w = Watcher::new(WatchConfig::default());
        let line = "Failed password for root from 203.0.113.5 port 4711 ssh2";
        for i in 0..10 {
            // One every 200 s: never five within 600 s.
            assert_eq!(w.observe(line, t(i * 200)), None);
        }
    }

    #[test]
    fn invalid_user_and_its_failed_password_count_once() {
        let mut w = Watcher::new(WatchConfig::default());
        for i in 0..4u16 {
            let port = 5000 + i;
            assert_eq!(
                w.observe(
                    &format!("Invalid user u{i} from 198.51.100.3 port {port}"),
                    t(i.into())
                ),
                None
            );
            assert_eq!(
                w.observe(
                    &format!(
                        "Failed password for invalid user u{i} from 198.51.100.3 port {port} ssh2"
                    ),
                    t(i.into())
                ),
                None
            );
            assert_eq!(w.observe("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=198.51.100.3", t(i.into())), None);
        }
        assert!(w
            .observe("Invalid user u9 from 198.51.100.3 port 6000", t(10))
            .is_some());
    }

    #[test]
    fn allow_list_holds() {
        let mut w = Watcher::new(WatchConfig {
            allow: vec!["192.0.2.0/24".parse().unwrap()],
            max_failures: 1,
            ..Default::default()
        });
        assert_eq!(
            w.observe("Failed password for root from 192.0.2.77 port 1 ssh2", t(0)),
            None
        );
        assert_eq!(
            w.observe("Failed password for root from 127.0.0.1 port 1 ssh2", t(0)),
            None
        );
        assert_eq!(
            w.observe("Failed password for root from ::1 port 1 ssh2", t(0)),
            None
        );
        assert_eq!(
            w.observe(
                "Failed password for root from ::ffff:127.0.0.1 port 1 ssh2",
                t(0)
            ),
            None
        );
        assert!(w
            .observe(
                "Failed password for root from 198.51.100.1 port 1 ssh2",
                t(0)
            )
            .is_some());
    }

    #[test]
    fn ipv6_by_64() {
        let mut w = Watcher::new(WatchConfig {
            ipv6_by_64: true,
            max_failures: 2,
            ..Default::default()
        });
        assert_eq!(
            w.observe(
                "Failed password for root from 2001:db8:1:2::5 port 1 ssh2",
                t(0)
            ),
            None
        );
        let b = w
            .observe(
                "Failed password for root from 2001:db8:1:2::9 port 1 ssh2",
                t(1),
            )
            .unwrap();
        assert_eq!(b.ip, ip("2001:db8:1:2::"));
    }

    #[test]
    fn trusted_origins() {
        assert!(trusted_origin("unix", "/dev/log"));
        assert!(trusted_origin("udp", "127.0.0.1:514"));
        assert!(trusted_origin("tcp", "[::1]:514"));
        assert!(!trusted_origin("udp", "192.0.2.1:514"));
        assert!(!trusted_origin("other", "127.0.0.1:1"));
    }
}
