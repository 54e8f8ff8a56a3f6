//! `syslog-bridge` against the real broker, fed by util-linux `logger` over UDP, TCP (newline
//! and octet-counted framing) and a unix datagram socket, plus a malformed datagram.

mod common;

use std::collections::HashMap;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use amqp_client::options::GetOptions;
use amqp_client::{Connection, FieldValue};
use amqp_test_support::{amqp_url, unique_name};
use common::{
    bridge_command, connect_local, declare_bound_queue, delete_bound_queue, free_port, logger,
    Reaped,
};
use serde_json::Value;

struct Delivered {
    key: String,
    headers: HashMap<String, String>,
    body: Value,
}

async fn collect(conn: &Connection, queue: &str, n: usize, within: Duration) -> Vec<Delivered> {
    let ch = conn.open_channel().await.unwrap();
    let mut out = vec![];
    let started = Instant::now();
    while out.len() < n && started.elapsed() < within {
        match ch
            .basic_get(queue, GetOptions { no_ack: true })
            .await
            .unwrap()
        {
            Some(m) => {
                let d = &m.delivery;
                let headers = d
                    .properties()
                    .headers
                    .iter()
                    .flat_map(|t| t.iter())
                    .filter_map(|(k, v): (_, &FieldValue)| {
                        Some((k.to_string(), v.as_str()?.to_string()))
                    })
                    .collect();
                assert_eq!(d.properties().delivery_mode, Some(2), "persistent");
                out.push(Delivered {
                    key: d.routing_key.to_string(),
                    headers,
                    body: serde_json::from_slice(&d.body).unwrap(),
                });
            }
            None => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    out
}

fn start_bridge(exchange: &str, extra: &[String]) -> Reaped {
    Reaped(
        bridge_command(&amqp_url(), exchange)
            .args(["--stats-interval", "3600"])
            .args(extra)
            .spawn()
            .unwrap(),
    )
}

#[tokio::test]
async fn logger_over_udp_tcp_octet_counting_and_unix_socket() {
    let exchange = unique_name("syslog-test");
    let queue = unique_name("syslog-all");
    let conn = Connection::connect(&amqp_url()).await.unwrap();
    declare_bound_queue(
        &conn.open_channel().await.unwrap(),
        &exchange,
        &queue,
        false,
    )
    .await;

    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("log.sock");
    let (udp, tcp) = (free_port(), free_port());
    let bridge = start_bridge(
        &exchange,
        &[
            format!("--udp=127.0.0.1:{udp}"),
            format!("--tcp=127.0.0.1:{tcp}"),
            format!("--unix={}", sock.display()),
        ],
    );
    connect_local(tcp);
    let (udp_s, tcp_s) = (udp.to_string(), tcp.to_string());
    let sock_s = sock.display().to_string();
    logger(&[
        "--udp",
        "-n",
        "127.0.0.1",
        "-P",
        &udp_s,
        "--rfc3164",
        "-t",
        "sshd",
        "--id=4242",
        "-p",
        "auth.info",
        "Failed password for root from 192.0.2.10 port 50022 ssh2",
    ]);
    logger(&[
        "--tcp",
        "-n",
        "127.0.0.1",
        "-P",
        &tcp_s,
        "--rfc5424",
        "-t",
        "app.one",
        "--msgid",
        "M1",
        "--sd-id",
        "origin@32473",
        "--sd-param",
        "zone=\"dmz\"",
        "-p",
        "local3.warning",
        "tcp newline framed",
    ]);
    logger(&[
        "--tcp",
        "--octet-count",
        "-n",
        "127.0.0.1",
        "-P",
        &tcp_s,
        "-t",
        "sshd-session",
        "octet counted\nwith a newline inside",
    ]);
    logger(&[
        "-u",
        &sock_s,
        "--socket-errors=on",
        "-t",
        "cron.daily",
        "via the unix socket",
    ]);
    let garbage = UdpSocket::bind("127.0.0.1:0").unwrap();
    garbage
        .send_to(b"not a syslog line at all", ("127.0.0.1", udp))
        .unwrap();

    let got = collect(&conn, &queue, 5, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 5, "all five lines arrive");
    let by_msg = |needle: &str| {
        got.iter()
            .find(|d| d.body["raw"].as_str().unwrap().contains(needle))
            .unwrap_or_else(|| panic!("no message with {needle:?}"))
    };

    let d = by_msg("Failed password");
    assert_eq!(d.key, "sshd");
    assert_eq!(d.body["facility"], "auth");
    assert_eq!(d.body["severity"], "info");
    assert_eq!(d.body["pid"], 4242);
    assert_eq!(d.body["transport"], "udp");
    assert!(d.body["timestamp"].as_str().unwrap().contains('T'));
    assert_eq!(
        d.body["message"],
        "Failed password for root from 192.0.2.10 port 50022 ssh2"
    );
    assert_eq!(d.headers["program"], "sshd");
    assert_eq!(d.headers["transport"], "udp");
    assert!(d.headers["peer"].starts_with("127.0.0.1:"));

    let d = by_msg("tcp newline framed");
    assert_eq!(d.key, "app_one");
    assert_eq!(d.body["program"], "app.one");
    assert_eq!(d.body["facility"], "local3");
    assert_eq!(d.body["severity"], "warning");
    assert_eq!(d.body["msgid"], "M1");
    assert_eq!(d.body["sd"]["origin@32473"]["zone"], "dmz");
    assert_eq!(d.body["transport"], "tcp");

    let d = by_msg("octet counted");
    assert_eq!(d.key, "sshd", "sshd-session is an alias of sshd");
    assert_eq!(d.body["message"], "octet counted\nwith a newline inside");

    let d = by_msg("via the unix socket");
    assert_eq!(d.key, "cron_daily");
    assert!(
        !d.body["host"].as_str().unwrap().is_empty(),
        "local host filled in"
    );
    assert_eq!(d.body["transport"], "unix");
    assert_eq!(d.headers["peer"], sock_s);

    let d = by_msg("not a syslog line");
    assert_eq!(d.key, "unparsed");
    assert_eq!(d.body["raw"], "not a syslog line at all");
    assert_eq!(
        d.headers["unparsed"],
        "no <PRI> header at the start of the line"
    );

    let (code, stderr) = bridge.stop(Duration::from_secs(20));
    assert_eq!(code, 0, "{stderr}");
    let stats = stderr
        .lines()
        .rev()
        .find(|l| l.contains("received="))
        .unwrap_or_else(|| panic!("no stats line in {stderr}"));
    assert!(
        stats.contains("received=5 replayed=0 published=5 unrouted=0 sent=5 buffered=0 buffered_bytes=0 spooled=0 spool_bytes=0 dropped=0"),
        "{stats}"
    );
    assert!(stats.contains("unparsed=1"), "{stats}");

    let ch = conn.open_channel().await.unwrap();
    delete_bound_queue(&ch, &exchange, &queue).await;
    conn.close().await.unwrap();
}
