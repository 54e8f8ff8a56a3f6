//! `syslog-bridge` loses nothing across a broker crash: 20 000 lines keep arriving over one TCP
//! connection while the broker is killed (SIGKILL) and started again; past the small memory
//! buffer they go to the spool while the bridge runs; every line ends up in a durable queue
//! bound to the exchange, in the order it was sent (a line whose confirm was lost with the
//! connection may arrive twice). Then the broker is stopped (gracefully), lines arrive and
//! spool, the bridge is stopped: what the broker never confirmed is in the spool, and a new
//! bridge publishes it once the broker is back. The only test in this binary, so restarting the shared
//! test broker disturbs no other test.

mod common;

use std::collections::HashSet;
use std::io::Write;
use std::time::{Duration, Instant};

use amqp_client::Connection;
use amqp_test_support::{amqp_url, broker_script, unique_name};
use common::{
    bridge_command, connect_local, consume_no_ack, declare_bound_queue, delete_bound_queue,
    free_port, Reaped,
};
use futures_util::StreamExt;

const LINES: usize = 20_000;
const SPOOLED: usize = 2_000;

fn start_bridge(exchange: &str, port: u16, spool: &std::path::Path) -> Reaped {
    Reaped(
        bridge_command(&amqp_url(), exchange)
            .arg(format!("--tcp=127.0.0.1:{port}"))
            .arg(format!("--spool={}", spool.display()))
            .args(["--drain-timeout", "2", "--buffer", "64K"])
            .spawn()
            .unwrap(),
    )
}

/// The spool's segment files.
fn segments(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            let name = name.to_string_lossy();
            name.starts_with("spool-") && name.ends_with(".seg")
        })
        .count()
}

/// Waits (at most 10 s) until the number of segment files in `dir` satisfies `done`; fails
/// with `otherwise` if it does not.
async fn wait_for_segments(dir: &std::path::Path, done: impl Fn(usize) -> bool, otherwise: &str) {
    let started = Instant::now();
    while !done(segments(dir)) {
        assert!(started.elapsed() < Duration::from_secs(10), "{otherwise}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_lines_across_a_broker_kill() {
    let exchange = unique_name("syslog-restart");
    let queue = unique_name("syslog-restart-q");
    {
        let conn = Connection::connect(&amqp_url()).await.unwrap();
        let ch = conn.open_channel().await.unwrap();
        declare_bound_queue(&ch, &exchange, &queue, true).await;
        conn.close().await.unwrap();
    }

    let port = free_port();
    let spool = tempfile::tempdir().unwrap();
    let bridge = start_bridge(&exchange, port, spool.path());
    let mut stream = connect_local(port);

    // About 1 000 lines a second for 20 s, octet counted; the broker is killed after 3 s.
    let sender = std::thread::spawn(move || {
        for i in 0..LINES {
            let msg = format!("<14>1 2026-03-04T12:00:00Z gw.example seq - - - line {i}");
            write!(stream, "{} {msg}", msg.len()).unwrap();
            if i % 50 == 49 {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        stream.flush().unwrap();
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    broker_script(&["kill"]);
    // Past the memory buffer, lines go to the spool while the broker is away.
    wait_for_segments(
        spool.path(),
        |n| n > 0,
        "nothing spooled while the broker was away",
    )
    .await;
    broker_script(&["start"]);
    sender.join().unwrap();

    let conn = Connection::connect(&amqp_url()).await.unwrap();
    let ch = conn.open_channel().await.unwrap();
    let mut consumer = consume_no_ack(&ch, &queue).await;
    let mut seen = HashSet::new();
    let mut last = None;
    let mut duplicates = 0;
    while seen.len() < LINES {
        let d = tokio::time::timeout(Duration::from_secs(60), consumer.next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {LINES} lines arrived", seen.len()))
            .unwrap()
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&d.body).unwrap();
        let n: usize = body["message"]
            .as_str()
            .unwrap()
            .strip_prefix("line ")
            .unwrap()
            .parse()
            .unwrap();
        if !seen.insert(n) {
            duplicates += 1;
            continue;
        }
        // New lines arrive in the order they were sent.
        if let Some(prev) = last {
            assert!(n > prev, "line {n} after line {prev}");
        }
        last = Some(n);
    }
    assert_eq!(seen.len(), LINES);
    assert!(
        duplicates <= 1000,
        "{duplicates} duplicates (at most one window)"
    );
    eprintln!("{duplicates} duplicates across the kill");
    drop(consumer);
    let _ = conn.close().await;

    // Phase two: the broker is stopped, 2 000 lines arrive (the last ones spooled while the
    // bridge runs), the bridge stops: what is left in memory joins them in the spool.
    broker_script(&["stop"]);
    let mut s = connect_local(port);
    for i in 0..SPOOLED {
        let msg = format!("<14>1 2026-03-04T12:00:00Z gw.example seq - - - spooled {i}");
        write!(s, "{} {msg}", msg.len()).unwrap();
    }
    drop(s);
    wait_for_segments(spool.path(), |n| n > 0, "nothing spooled").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (code, err) = bridge.stop(Duration::from_secs(30));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("unconfirmed messages kept in"), "{err}");
    let stats = err.lines().rev().find(|l| l.contains("received=")).unwrap();
    assert!(stats.contains("buffered=0 buffered_bytes=0"), "{stats}");
    broker_script(&["start"]);
    let bridge = start_bridge(&exchange, port, spool.path());
    let conn = Connection::connect(&amqp_url()).await.unwrap();
    let ch = conn.open_channel().await.unwrap();
    let mut consumer = consume_no_ack(&ch, &queue).await;
    let mut spooled = vec![];
    while spooled.len() < SPOOLED {
        let d = tokio::time::timeout(Duration::from_secs(60), consumer.next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {SPOOLED} spooled lines arrived", spooled.len()))
            .unwrap()
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&d.body).unwrap();
        if let Some(n) = body["message"].as_str().unwrap().strip_prefix("spooled ") {
            spooled.push(n.parse::<usize>().unwrap());
        }
    }
    spooled.dedup();
    assert_eq!(spooled, (0..SPOOLED).collect::<Vec<_>>());
    wait_for_segments(spool.path(), |n| n == 0, "segment not removed").await;
    let (code, err) = bridge.stop(Duration::from_secs(30));
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!("replaying {SPOOLED} spooled messages from")),
        "{err}"
    );
    delete_bound_queue(&ch, &exchange, &queue).await;
    conn.close().await.unwrap();
}
