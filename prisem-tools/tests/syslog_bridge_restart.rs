//! `syslog-bridge` loses nothing across a broker crash: 20 000 lines keep arriving over one TCP
//! connection while the broker is killed (SIGKILL) and started again; past the small memory
//! buffer they go to the spool while the bridge runs; every line ends up in a durable queue
//! bound to the exchange, in the order it was sent (a line whose confirm was lost with the
//! connection may arrive twice). Then the broker is stopped (gracefully), lines arrive and
//! spool, the bridge is stopped: what the broker never confirmed is in the spool, and a new
//! bridge publishes it once the broker is back. The only test in this binary, so restarting the shared
//! test broker disturbs no other test.

use std::collections::HashSet;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use amqp_client::options::{
    ConsumeOptions, ExchangeDeclareOptions, ExchangeKind, QueueDeclareOptions, QueueDeleteOptions,
};
use amqp_client::Connection;
use amqp_test_support::{amqp_url, unique_name};
use futures_util::StreamExt;

const LINES: usize = 20_000;
const SPOOLED: usize = 2_000;

struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn broker(args: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/broker");
    let out = Command::new(script).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "scripts/broker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn start_bridge(exchange: &str, port: u16, spool: &std::path::Path) -> Reaped {
    Reaped(
        Command::new(env!("CARGO_BIN_EXE_syslog-bridge"))
            .args(["--url", &amqp_url(), "--exchange", exchange, "-v"])
            .arg(format!("--tcp=127.0.0.1:{port}"))
            .arg(format!("--spool={}", spool.display()))
            .args(["--drain-timeout", "2", "--buffer", "64K"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

fn connect(port: u16) -> TcpStream {
    let started = Instant::now();
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => return s,
            Err(_) if started.elapsed() < Duration::from_secs(20) => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(e) => panic!("bridge not listening: {e}"),
        }
    }
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

/// SIGTERM, then the exit status and standard error.
fn stop(mut bridge: Reaped) -> (i32, String) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(bridge.0.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let started = Instant::now();
    while bridge.0.try_wait().unwrap().is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "bridge did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut err = String::new();
    std::io::Read::read_to_string(bridge.0.stderr.as_mut().unwrap(), &mut err).unwrap();
    (bridge.0.wait().unwrap().code().unwrap_or(-1), err)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_lines_across_a_broker_kill() {
    let exchange = unique_name("syslog-restart");
    let queue = unique_name("syslog-restart-q");
    {
        let conn = Connection::connect(&amqp_url()).await.unwrap();
        let ch = conn.open_channel().await.unwrap();
        ch.exchange_declare(
            &exchange,
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        ch.queue_declare(
            &queue,
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        ch.queue_bind(&queue, &exchange, "#", Default::default())
            .await
            .unwrap();
        conn.close().await.unwrap();
    }

    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let spool = tempfile::tempdir().unwrap();
    let bridge = start_bridge(&exchange, port, spool.path());
    let mut stream = connect(port);

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
    broker(&["kill"]);
    // Past the memory buffer, lines go to the spool while the broker is away.
    let started = Instant::now();
    while segments(spool.path()) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "nothing spooled while the broker was away"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    broker(&["start"]);
    sender.join().unwrap();

    let conn = Connection::connect(&amqp_url()).await.unwrap();
    let ch = conn.open_channel().await.unwrap();
    let mut consumer = ch
        .basic_consume(
            &queue,
            ConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
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
    broker(&["stop"]);
    let mut s = connect(port);
    for i in 0..SPOOLED {
        let msg = format!("<14>1 2026-03-04T12:00:00Z gw.example seq - - - spooled {i}");
        write!(s, "{} {msg}", msg.len()).unwrap();
    }
    drop(s);
    let started = Instant::now();
    while segments(spool.path()) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "nothing spooled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (code, err) = stop(bridge);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("unconfirmed messages kept in"), "{err}");
    let stats = err.lines().rev().find(|l| l.contains("received=")).unwrap();
    assert!(stats.contains("buffered=0 buffered_bytes=0"), "{stats}");
    broker(&["start"]);
    let bridge = start_bridge(&exchange, port, spool.path());
    let conn = Connection::connect(&amqp_url()).await.unwrap();
    let ch = conn.open_channel().await.unwrap();
    let mut consumer = ch
        .basic_consume(
            &queue,
            ConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
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
    let started = Instant::now();
    while segments(spool.path()) > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "segment not removed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (code, err) = stop(bridge);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!("replaying {SPOOLED} spooled messages from")),
        "{err}"
    );
    ch.queue_delete(&queue, QueueDeleteOptions::default())
        .await
        .unwrap();
    ch.exchange_delete(&exchange, Default::default())
        .await
        .unwrap();
    conn.close().await.unwrap();
}
