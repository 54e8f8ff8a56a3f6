//! `syslog-bridge` with a tiny memory buffer and spool, talking to the broker through a proxy
//! the test can pause (a broker that stops answering): the spool fills while the bridge runs,
//! then the TCP sender is blocked (the bridge stops reading), UDP datagrams are dropped and
//! counted. Once the proxy forwards again every TCP line arrives, in order, and the counters
//! add up: received = published + dropped.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amqp_client::Connection;
use amqp_test_support::{amqp_url, unique_name};
use common::{
    bridge_command, connect_local, consume_no_ack, declare_bound_queue, delete_bound_queue,
    free_port, Reaped,
};
use futures_util::StreamExt;

const TCP_LINES: usize = 12_000;
const UDP_LINES: usize = 200;

/// A TCP proxy to the broker; while `paused`, nothing goes from the bridge to the broker.
fn proxy(broker: std::net::SocketAddr, paused: Arc<AtomicBool>) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in l.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = TcpStream::connect(broker) else {
                continue;
            };
            let (mut c_r, mut s_w) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (mut s_r, mut c_w) = (server, client);
            let paused = paused.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 16384];
                loop {
                    while paused.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    match std::io::Read::read(&mut c_r, &mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if s_w.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = s_w.shutdown(std::net::Shutdown::Both);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s_r, &mut c_w);
                let _ = c_w.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    port
}

fn broker_addr() -> std::net::SocketAddr {
    let url = amqp_url();
    let host_port = url
        .split('@')
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    std::net::ToSocketAddrs::to_socket_addrs(&host_port)
        .unwrap()
        .next()
        .unwrap()
}

fn value(line: &str, name: &str) -> u64 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in {line}"))
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_spool_blocks_tcp_and_counts_udp_drops() {
    let exchange = unique_name("syslog-bp");
    let queue = unique_name("syslog-bp-q");
    let conn = Connection::connect(&amqp_url()).await.unwrap();
    let ch = conn.open_channel().await.unwrap();
    declare_bound_queue(&ch, &exchange, &queue, false).await;

    let paused = Arc::new(AtomicBool::new(false));
    let via = proxy(broker_addr(), paused.clone());
    let url = amqp_url().replace(&broker_addr().port().to_string(), &via.to_string());
    let (tcp, udp) = (free_port(), free_port());
    let spool = tempfile::tempdir().unwrap();
    let mut bridge = Reaped(
        bridge_command(&url, &exchange)
            .arg(format!("--tcp=127.0.0.1:{tcp}"))
            .arg(format!("--udp=127.0.0.1:{udp}"))
            .arg(format!("--spool={}", spool.path().display()))
            .args(["--buffer", "64K", "--spool-max", "256K"])
            .args(["--stats-interval", "1", "--drain-timeout", "5"])
            .spawn()
            .unwrap(),
    );
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = {
        let lines = lines.clone();
        let err = bridge.0.stderr.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines() {
                let Ok(l) = l else { return };
                lines.lock().unwrap().push(l);
            }
        })
    };
    let last_stats = || {
        lines
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|l| l.contains("received="))
            .cloned()
    };
    let started = Instant::now();
    let mut stream = connect_local(tcp);
    // Wait for the bridge's publisher (the stats line comes after it is up).
    while last_stats().is_none() {
        assert!(started.elapsed() < Duration::from_secs(20), "no stats line");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    paused.store(true, Ordering::SeqCst);
    // Write without blocking until the bridge stops reading: nothing moves for 2 s.
    stream.set_nonblocking(true).unwrap();
    let pad = "x".repeat(1400);
    let mut wire = Vec::new();
    for i in 0..TCP_LINES {
        let msg = format!("<14>1 2026-03-04T12:00:00Z gw.example bp - - - line {i} {pad}");
        wire.extend_from_slice(format!("{} {msg}", msg.len()).as_bytes());
    }
    let mut sent = 0;
    let mut last_progress = Instant::now();
    while sent < wire.len() && last_progress.elapsed() < Duration::from_secs(2) {
        match stream.write(&wire[sent..]) {
            Ok(n) => {
                sent += n;
                last_progress = Instant::now();
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(
        sent < wire.len(),
        "the sender was never blocked ({sent} bytes written)"
    );
    // The spool is full (its limit, less one record at most) and shows in the stats line.
    let full = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let s = last_stats().unwrap();
        if value(&s, "spool_bytes") > 200 * 1024 {
            break s;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{s}");
    };
    assert!(value(&full, "spooled") > 0, "{full}");
    assert!(value(&full, "spool_bytes") <= 256 * 1024, "{full}");
    assert!(
        std::fs::read_dir(spool.path()).unwrap().count() > 0,
        "segments on disk"
    );

    // Datagrams now have nowhere to go.
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..UDP_LINES {
        u.send_to(
            format!("<14>1 2026-03-04T12:00:00Z gw.example bpudp - - - datagram {i}").as_bytes(),
            ("127.0.0.1", udp),
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }

    // The broker answers again: the sender is unblocked and finishes.
    paused.store(false, Ordering::SeqCst);
    let sender = std::thread::spawn(move || {
        stream.set_nonblocking(false).unwrap();
        stream.write_all(&wire[sent..]).unwrap();
        stream.flush().unwrap();
    });

    let mut consumer = consume_no_ack(&ch, &queue).await;
    let mut tcp_seen = Vec::new();
    let mut udp_seen = 0;
    while tcp_seen.len() < TCP_LINES {
        let d = tokio::time::timeout(Duration::from_secs(60), consumer.next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {TCP_LINES} TCP lines arrived", tcp_seen.len()))
            .unwrap()
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&d.body).unwrap();
        let m = body["message"].as_str().unwrap();
        if let Some(rest) = m.strip_prefix("line ") {
            let n: usize = rest.split(' ').next().unwrap().parse().unwrap();
            // A line whose confirm was lost may come twice; never out of order otherwise.
            if tcp_seen.last().is_none_or(|&p| n > p) {
                assert_eq!(n, tcp_seen.len(), "line {n} after {:?}", tcp_seen.last());
                tcp_seen.push(n);
            }
        } else if m.starts_with("datagram ") {
            udp_seen += 1;
        }
    }
    sender.join().unwrap();

    bridge.sigterm();
    let status = tokio::task::spawn_blocking(move || bridge.0.wait().unwrap())
        .await
        .unwrap();
    reader.join().unwrap();
    assert!(status.success(), "{:?}", lines.lock().unwrap());
    // Datagrams published after the last TCP line are still on their way.
    while let Ok(Some(Ok(d))) =
        tokio::time::timeout(Duration::from_millis(500), consumer.next()).await
    {
        let body: serde_json::Value = serde_json::from_slice(&d.body).unwrap();
        if body["message"].as_str().unwrap().starts_with("datagram ") {
            udp_seen += 1;
        }
    }
    let fin = last_stats().unwrap();
    let dropped = value(&fin, "dropped");
    assert!(dropped > 0, "no datagram dropped: {fin}");
    assert_eq!(
        udp_seen as u64 + dropped + value(&fin, "kernel_drops"),
        UDP_LINES as u64,
        "{fin}"
    );
    assert_eq!(
        value(&fin, "received"),
        value(&fin, "published") + dropped,
        "{fin}"
    );
    assert_eq!(value(&fin, "buffered") + value(&fin, "spooled"), 0, "{fin}");
    assert_eq!(value(&fin, "spool_bytes"), 0, "{fin}");

    delete_bound_queue(&ch, &exchange, &queue).await;
    conn.close().await.unwrap();
}
