//! sshd failure lines sent with `logger` → `syslog-bridge` → `sshwatch` → `blockd --dry-run`:
//! the exact nft argv for the attacker's address, nothing for an address planted in the user
//! name, nothing for loopback.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use amqp_test_support::unique_name;
use common::{connect_local, free_port, spawn_daemon, sshd_log};

#[test]
fn sshd_failures_become_the_exact_nft_argv() {
    let sx = unique_name("syslog-fw");
    let fx = unique_name("firewall");
    let q = unique_name("blockd");
    let port = free_port();
    let mut blockd = spawn_daemon(
        env!("CARGO_BIN_EXE_blockd"),
        &["--dry-run", "--exchange", &fx, "--queue", &q],
        Stdio::piped(),
    );
    let _watch = spawn_daemon(
        env!("CARGO_BIN_EXE_sshwatch"),
        &[
            "--syslog-exchange",
            &sx,
            "--firewall-exchange",
            &fx,
            "--max-failures",
            "3",
        ],
        Stdio::null(),
    );
    let _bridge = spawn_daemon(
        env!("CARGO_BIN_EXE_syslog-bridge"),
        &["--exchange", &sx, &format!("--tcp=127.0.0.1:{port}")],
        Stdio::null(),
    );
    let (tx, rx) = mpsc::channel();
    let out = blockd.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            if tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    let started = Instant::now();
    connect_local(port);
    let send = |msg: &str| sshd_log(port, msg);
    // Until sshwatch has bound its queue, lines are unroutable: repeat until blockd acts.
    let first = loop {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no block within 60 s"
        );
        for _ in 0..3 {
            send("Failed password for invalid user 192.0.2.99 from 203.0.113.5 port 4711 ssh2");
            send("Failed password for root from 127.0.0.1 port 4712 ssh2");
            send("Invalid user from 198.51.100.200 port 1 from ::ffff:203.0.113.5 port 4713");
        }
        if let Ok(line) = rx.recv_timeout(Duration::from_secs(1)) {
            break line;
        }
    };
    let v: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(v["action"], "block");
    assert_eq!(v["ip"], "203.0.113.5");
    assert_eq!(
        v["argv"],
        serde_json::json!([
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
    // Nothing else: not the planted addresses, not loopback, not the banned address again.
    send("Failed password for root from 127.0.0.1 port 4714 ssh2");
    if let Ok(more) = rx.recv_timeout(Duration::from_secs(3)) {
        panic!("unexpected action {more}");
    }
}
