//! `amqp consume` and `amqp publish --confirm` across a broker restart
//! (`scripts/broker restart`): they recover by default and fail with `--no-recovery`.
//!
//! The test restarts the shared test broker, so it lives in its own test binary (cargo runs
//! test binaries one after the other) and runs as one test.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use amqp_test_support::broker_script;
use common::*;

fn spawn(args: &[&str]) -> Child {
    Command::new(AMQP)
        .args(args)
        .env("AMQP_URL", amqp_url())
        .env("AMQP_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The next JSON line a consumer prints, within 60 s.
fn next_line(stdout: &mut BufReader<ChildStdout>) -> serde_json::Value {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut line = String::new();
            let _ = stdout.read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("a line within 60 s");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
    })
}

#[test]
fn consume_and_publish_confirm_ride_through_a_restart_unless_told_not_to() {
    let q = TempQueue::with_args("cli-restart", &["--durable"]);
    amqp(&["publish", "-r", q.name(), "-b", "before", "--persistent"]).ok();

    let mut consumer = spawn(&["consume", "-q", q.name()]);
    let mut consumer_out = BufReader::new(consumer.stdout.take().unwrap());
    assert_eq!(next_line(&mut consumer_out)["body"], "before");
    let plain = spawn(&["consume", "-q", q.name(), "--no-recovery"]);
    let mut publisher = spawn(&["publish", "-r", q.name(), "-l", "--confirm", "--persistent"]);
    let mut publisher_in = publisher.stdin.take().unwrap();
    // Both consumers consume before the broker goes; the publisher (spawned before the wait)
    // gets a moment more, as nothing shows when it has connected.
    q.wait_for_consumers(2);
    std::thread::sleep(Duration::from_millis(500));

    broker_script(&["restart"]);

    // The consumer without recovery ends with the connection.
    let out = plain.wait_with_output().unwrap();
    assert_ne!(out.status.code(), Some(0), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("CONNECTION_FORCED") || stderr.contains("connection"),
        "{stderr}"
    );

    // The publisher, idle during the restart, publishes afterwards and its confirm arrives.
    publisher_in.write_all(b"after\n").unwrap();
    drop(publisher_in);
    let out = publisher.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(next_line(&mut consumer_out)["body"], "after");

    let kill = Command::new("kill")
        .args(["-INT", &consumer.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = consumer.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(q.message_count(), 0, "what the consumer printed was acked");
}
