//! Helpers shared by the workspace's integration tests.
//!
//! Broker tests never skip themselves: when `AMQP_URL` is not set they fail
//! with a message that says how to get a broker (`scripts/test` starts one).
//!
//! ```no_run
//! let url = amqp_test_support::amqp_url();
//! let (host, port) = amqp_test_support::broker_addr();
//! assert!(url.starts_with("amqp://"));
//! # let _ = (host, port);
//! ```
#![forbid(unsafe_code)]

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The message every broker test fails with when no broker was given.
pub const NO_BROKER: &str = "AMQP_URL is not set: broker tests need a running RabbitMQ. \
     Run `scripts/test` (it starts a throwaway broker and sets AMQP_URL), \
     or start one with `scripts/broker start` and export AMQP_URL=$(scripts/broker url).";

/// Reads an environment variable that a broker test cannot run without.
///
/// # Panics
/// When the variable is unset or empty, with a message saying how to set it.
pub fn required_env(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!("{name}: {NO_BROKER}"),
    }
}

/// The `amqp://` URL of the test broker, from `AMQP_URL`.
///
/// # Panics
/// When `AMQP_URL` is unset: the test fails loudly instead of skipping.
pub fn amqp_url() -> String {
    required_env("AMQP_URL")
}

/// The `amqps://` URL of the test broker's TLS listener, from `AMQPS_URL`.
///
/// # Panics
/// When `AMQPS_URL` is unset.
pub fn amqps_url() -> String {
    required_env("AMQPS_URL")
}

/// The state directory of the test broker (certificates, logs), from `BROKER_DIR`.
///
/// # Panics
/// When `BROKER_DIR` is unset.
pub fn broker_dir() -> std::path::PathBuf {
    required_env("BROKER_DIR").into()
}

/// The base URL of the broker's management API (`http://127.0.0.1:15672`), from
/// `AMQP_MGMT_URL`.
///
/// # Panics
/// When `AMQP_MGMT_URL` is unset.
pub fn management_url() -> String {
    required_env("AMQP_MGMT_URL")
}

/// Host and port of the test broker, taken from `AMQP_URL`.
///
/// This is a deliberately small parser for the URLs `scripts/broker` prints
/// (`amqp://user:pass@host:port/vhost`); the client has the full one.
///
/// # Panics
/// When `AMQP_URL` is unset or has no host.
pub fn broker_addr() -> (String, u16) {
    let url = amqp_url();
    let rest = url
        .split_once("://")
        .map(|(_, r)| r)
        .unwrap_or_else(|| panic!("AMQP_URL {url:?} has no scheme"));
    let authority = rest.split('/').next().unwrap_or_default();
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, p) = v6.split_once(']').unwrap_or((v6, ""));
        (h.to_string(), p.strip_prefix(':').unwrap_or(""))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p),
            None => (hostport.to_string(), ""),
        }
    };
    assert!(!host.is_empty(), "AMQP_URL {url:?} has no host");
    let port = if port.is_empty() {
        5672
    } else {
        port.parse()
            .unwrap_or_else(|_| panic!("AMQP_URL {url:?} has a bad port"))
    };
    (host, port)
}

/// A name no other test run uses: `prefix` plus time, pid and a counter.
///
/// Tests that declare queues or exchanges use it so parallel tests and
/// repeated runs against the same broker never collide.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{nanos:x}-{n}", std::process::id())
}

/// A loopback port for a daemon under test to listen on: free for TCP and UDP when it was
/// picked, and different from every port this process picked before.
///
/// Ports come from 26000–31999, below the kernel's ephemeral range (32768 and up on Linux)
/// and above the test brokers' own ports, so no socket bound to port 0 and no outgoing
/// connection — of this test, of a test running beside it, or of a daemon — is handed the same
/// port between the pick and the daemon's `bind`. (Picking with a bind to port 0 could give two
/// parallel tests the same port, and a daemon that lost the race to another listener answered
/// the wrong test.) Each process starts at its own offset, so consecutive test binaries do not
/// reuse each other's ports either.
///
/// # Panics
/// When every port of the range is taken.
pub fn free_port() -> u16 {
    const LOW: u32 = 26_000;
    const SPAN: u32 = 6_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(2_654_435_761) % SPAN;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(n < SPAN, "no free loopback port in {LOW}..{}", LOW + SPAN);
        let port = u16::try_from(LOW + (start + n) % SPAN).expect("below 32000");
        let free = std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
            && std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok();
        if free {
            return port;
        }
    }
}

/// Runs the workspace's `scripts/broker ARGS` (for instance `kill`, `start`, `restart`) with
/// the test's environment, so the `*_PORT` and `BROKER_DIR` variables of the test broker
/// apply; returns its standard output.
///
/// Tests that restart the shared broker live in a test binary of their own: cargo runs test
/// binaries one after the other, so no other test sees the broker go away.
///
/// # Panics
/// When the script cannot be run or exits unsuccessfully, with its standard error.
pub fn broker_script(args: &[&str]) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/broker");
    let out = Command::new(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
    assert!(
        out.status.success(),
        "scripts/broker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
