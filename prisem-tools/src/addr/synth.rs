//! Deterministic synthetic syslog text, for benchmarks and tests of the address engine.
//!
//! The lines look like what the engine meets in practice: sshd, postfix, nginx, firewall,
//! named and Java application lines with IPv4 and IPv6 addresses from the documentation ranges,
//! DNS names under `.example`, timestamps, ports, and version strings that must not match.
//!
//! ```
//! use prisem_tools::addr::synth;
//!
//! let a = synth::syslog(10_000, 1);
//! assert_eq!(a, synth::syslog(10_000, 1));
//! assert!(a.len() >= 10_000 && a.ends_with(b"\n"));
//! ```

/// A small xorshift generator: deterministic across platforms and runs.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        let i = self.below(items.len() as u64) as usize;
        items.get(i).copied().unwrap_or_default()
    }
}

const HOSTS: &[&str] = &["gw-03", "mail", "web01", "fw", "ns1", "app01", "db02"];
const USERS: &[&str] = &["root", "admin", "ops", "backup", "oracle", "test"];
const NAMES: &[&str] = &[
    "www.corp.example",
    "mail.corp.example",
    "vpn.seattle.example",
    "cdn.partner.example",
    "updates.vendor.example",
    "login.city.example",
];

fn ipv4(rng: &mut Rng) -> String {
    let net = ["192.0.2", "198.51.100", "203.0.113"];
    let i = rng.below(3) as usize;
    format!(
        "{}.{}",
        net.get(i).copied().unwrap_or("192.0.2"),
        rng.below(256)
    )
}

fn ipv6(rng: &mut Rng) -> String {
    format!("2001:db8:{:x}::{:x}", rng.below(16), rng.below(0x10000))
}

/// At least `size` bytes of syslog-like lines, the same for the same `seed`.
pub fn syslog(size: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut out = Vec::with_capacity(size + 256);
    let mut second = 0u64;
    while out.len() < size {
        second += rng.below(3);
        let stamp = format!(
            "Feb {:>2} {:02}:{:02}:{:02}",
            1 + (second / 86_400) % 28,
            (second / 3600) % 24,
            (second / 60) % 60,
            second % 60
        );
        let host = rng.pick(HOSTS);
        let pid = 100 + rng.below(30_000);
        let line = match rng.below(10) {
            0 | 1 => format!(
                "{stamp} {host} sshd[{pid}]: Failed password for invalid user {} from {} port {} ssh2",
                rng.pick(USERS),
                ipv4(&mut rng),
                1024 + rng.below(60_000)
            ),
            2 => format!(
                "{stamp} {host} sshd[{pid}]: Accepted publickey for {} from {} port {} ssh2: ED25519 SHA256:Xk3vQ9mRt2pLw8ZbN4cYh",
                rng.pick(USERS),
                ipv6(&mut rng),
                1024 + rng.below(60_000)
            ),
            3 => format!(
                "{stamp} {host} postfix/smtpd[{pid}]: connect from {}[{}]",
                rng.pick(NAMES),
                ipv4(&mut rng)
            ),
            4 => format!(
                "{stamp} {host} nginx: {} - - \"GET /static/app.js?v=3.2.1 HTTP/1.1\" 200 {} \"-\" \"Mozilla/5.0 (X11; Linux x86_64; rv:109.0)\"",
                ipv4(&mut rng),
                rng.below(90_000)
            ),
            5 => format!(
                "{stamp} {host} kernel: [{}.{:06}] DROP IN=eth0 OUT= SRC={} DST={} LEN=60 TOS=0x00 TTL=52 PROTO=TCP SPT={} DPT=22",
                rng.below(900_000),
                rng.below(1_000_000),
                ipv4(&mut rng),
                ipv4(&mut rng),
                rng.below(65_536)
            ),
            6 => format!(
                "{stamp} {host} named[{pid}]: client {}#{}: query: {} IN AAAA + ({})",
                ipv6(&mut rng),
                rng.below(65_536),
                rng.pick(NAMES),
                ipv4(&mut rng)
            ),
            7 => format!(
                "{stamp} {host} java[{pid}]: WARN org.example.server.Handler - retrying upstream after 250 ms (attempt 3 of 5)"
            ),
            8 => format!(
                "{stamp} {host} systemd[1]: Started Session {} of user {}; openssh 7.4.1.2.3, build 2.11.0.20240101",
                rng.below(5_000),
                rng.pick(USERS)
            ),
            _ => format!(
                "{stamp} {host} CRON[{pid}]: (root) CMD (run-parts /etc/cron.hourly) pam_unix(cron:session): session closed for user root"
            ),
        };
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out
}
