//! `--metrics` on the daemons, scraped after real traffic on the test broker and parsed with a
//! Prometheus text-format parser: the RPC servers (requests by outcome, latency, in flight, a
//! recovery after the broker closed the connection), syslog-bridge → sshwatch → blockd
//! (lines received, unparsed and confirmed, bans issued and applied, publish confirms), and the
//! backbone (HTTP requests by route and status).

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use amqp_test_support::{amqp_url, management_url, unique_name};
use common::{connect_local, free_port, spawn_daemon, sshd_log, Reaped};
use prometheus_parse::{Scrape, Value};

/// The parsed metrics at `port`, once the endpoint answers (it starts before the broker
/// connection).
fn scrape(port: u16) -> Scrape {
    let started = Instant::now();
    loop {
        match get::metrics(port) {
            Ok(text) => {
                let lines = text.lines().map(|l| Ok(l.to_owned()));
                return Scrape::parse(lines).unwrap();
            }
            Err(e) => {
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "no metrics on port {port}: {e}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// A tiny blocking GET, so the test needs no runtime of its own.
mod get {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    pub(crate) fn metrics(port: u16) -> std::io::Result<String> {
        let mut s = TcpStream::connect(("127.0.0.1", port))?;
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        let (head, body) = out
            .split_once("\r\n\r\n")
            .ok_or_else(|| std::io::Error::other("no HTTP header"))?;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.contains("text/plain; version=0.0.4"), "{head}");
        Ok(body.to_owned())
    }
}

/// The value of `metric` with exactly these `labels` (and any others absent), if present.
fn value(s: &Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    s.samples
        .iter()
        .filter(|x| x.metric == metric)
        .filter(|x| labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .find_map(|x| match x.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(v),
            _ => None,
        })
}

/// Polls `port` until `metric` with `labels` reaches `want` (at most 30 s), then returns the
/// scrape; a value that never gets there fails with what it was.
fn wait_for(port: u16, metric: &str, labels: &[(&str, &str)], want: f64) -> Scrape {
    let started = Instant::now();
    loop {
        let s = scrape(port);
        let v = value(&s, metric, labels);
        if v == Some(want) {
            return s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{metric}{labels:?} is {v:?}, wanted {want}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn rpc_server_counts_requests_by_outcome_and_its_recovery() {
    let base = unique_name("anon-metrics");
    let port = free_port();
    let port_s = port.to_string();
    let _server = spawn_daemon(
        env!("CARGO_BIN_EXE_anon_server"),
        &["-q", &base, "--metrics", &port_s],
        Stdio::null(),
    );
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/data");
    let report = format!("{data}/report.txt");
    let map = format!("{data}/netmap.txt");
    let call = |r: &str| {
        Command::new(env!("CARGO_BIN_EXE_anon_client"))
            .args(["--url", &amqp_url(), "-q", &base, "-r", r, "-m", &map])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let before = scrape(port);
    assert_eq!(
        value(&before, "prisem_build_info", &[("program", "anon_server")]),
        Some(1.0)
    );
    for _ in 0..3 {
        let out = call(&report);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // No data: an error reply.
    let out = call("/dev/null");
    assert_eq!(out.status.code(), Some(1));
    let s = wait_for(
        port,
        "prisem_rpc_requests_total",
        &[("service", &base), ("outcome", "error")],
        1.0,
    );
    let svc = [("service", base.as_str())];
    assert_eq!(
        value(
            &s,
            "prisem_rpc_requests_total",
            &[("service", &base), ("outcome", "ok")]
        ),
        Some(3.0)
    );
    assert_eq!(
        value(&s, "prisem_rpc_request_duration_seconds_count", &svc),
        Some(4.0)
    );
    assert_eq!(value(&s, "prisem_rpc_in_flight", &svc), Some(0.0));
    assert_eq!(value(&s, "prisem_amqp_recoveries_total", &[]), Some(0.0));

    // The broker closes the server's connection: one recovery, one reconnect, and it serves.
    let name = format!("anon_server (pid {})", _server.0.id());
    close_connection(&name);
    let s = wait_for(port, "prisem_amqp_reconnects_total", &[], 1.0);
    assert_eq!(value(&s, "prisem_amqp_recoveries_total", &[]), Some(1.0));
    wait_for(port, "prisem_amqp_recovering", &[], 0.0);
    let out = call(&report);
    assert!(out.status.success());
    wait_for(
        port,
        "prisem_rpc_requests_total",
        &[("service", &base), ("outcome", "ok")],
        4.0,
    );
}

/// Closes the broker connection named `name` through the management API.
fn close_connection(name: &str) {
    let mgmt = management_url();
    let rest = mgmt.strip_prefix("http://").unwrap();
    let (auth, host) = rest.split_once('@').unwrap();
    let auth = base64_encode(auth.as_bytes());
    let started = Instant::now();
    // The management API lists a new connection after a moment.
    let id = loop {
        let list = http(host, "GET", "/api/connections", &auth);
        let conns: serde_json::Value = serde_json::from_str(&list).unwrap();
        let found = conns.as_array().unwrap().iter().find_map(|c| {
            (c["client_properties"]["connection_name"].as_str() == Some(name))
                .then(|| c["name"].as_str().unwrap().to_owned())
        });
        if let Some(id) = found {
            break id;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no connection named {name:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let path = format!(
        "/api/connections/{}",
        percent_encoding::utf8_percent_encode(&id, percent_encoding::NON_ALPHANUMERIC)
    );
    http(host, "DELETE", &path, &auth);
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn http(host: &str, method: &str, path: &str, auth: &str) -> String {
    use std::io::Read;
    let mut s = TcpStream::connect(host).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: {host}\r\nAuthorization: Basic {auth}\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    assert!(
        head.starts_with("HTTP/1.0 2") || head.starts_with("HTTP/1.1 2"),
        "{method} {path}: {head}"
    );
    body.to_owned()
}

#[test]
fn syslog_sshwatch_and_blockd_count_lines_bans_and_confirms() {
    let sx = unique_name("syslog-metrics");
    let fx = unique_name("firewall-metrics");
    let q = unique_name("blockd-metrics");
    let (mb, ms, mw) = (free_port(), free_port(), free_port());
    let syslog_port = free_port();
    let _blockd = spawn_daemon(
        env!("CARGO_BIN_EXE_blockd"),
        &[
            "--dry-run",
            "--exchange",
            &fx,
            "--queue",
            &q,
            "--metrics",
            &format!(":{mb}"),
        ],
        Stdio::null(),
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
            "--metrics",
            &format!("127.0.0.1:{mw}"),
        ],
        Stdio::null(),
    );
    let spool = tempfile::tempdir().unwrap();
    let _bridge = spawn_daemon(
        env!("CARGO_BIN_EXE_syslog-bridge"),
        &[
            "--exchange",
            &sx,
            &format!("--tcp=127.0.0.1:{syslog_port}"),
            "--spool",
            spool.path().to_str().unwrap(),
            "--metrics",
            &ms.to_string(),
        ],
        Stdio::null(),
    );
    let started = Instant::now();
    connect_local(syslog_port);
    // One line without a <PRI> header: unparsed.
    let mut tcp = TcpStream::connect(("127.0.0.1", syslog_port)).unwrap();
    tcp.write_all(b"no priority header here\n").unwrap();
    drop(tcp);
    let send = |msg: &str| sshd_log(syslog_port, msg);
    // Until sshwatch has bound its queue the lines are unroutable: send rounds of three until
    // blockd applied the ban.
    let mut lines = 1.0;
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no block within 60 s"
        );
        for _ in 0..3 {
            send("Failed password for root from 203.0.113.77 port 4711 ssh2");
            lines += 1.0;
        }
        let s = scrape(mb);
        if value(&s, "prisem_bans_applied_total", &[("action", "block")]) == Some(1.0) {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let w = scrape(mw);
    assert_eq!(
        value(&w, "prisem_bans_issued_total", &[("action", "block")]),
        Some(1.0)
    );
    assert_eq!(
        value(
            &w,
            "prisem_amqp_publish_confirms_total",
            &[("outcome", "ack")]
        ),
        Some(1.0)
    );
    let b = scrape(mb);
    assert_eq!(value(&b, "prisem_firewall_rejected_total", &[]), Some(0.0));
    assert_eq!(value(&b, "prisem_ban_failures_total", &[]), Some(0.0));
    // Every line received, none waiting; routed or not, each was confirmed once.
    let s = wait_for(ms, "prisem_syslog_received_total", &[], lines);
    let s = if value(&s, "prisem_syslog_published_total", &[]) == Some(lines) {
        s
    } else {
        wait_for(ms, "prisem_syslog_published_total", &[], lines)
    };
    assert_eq!(value(&s, "prisem_syslog_buffered", &[]), Some(0.0));
    assert_eq!(value(&s, "prisem_syslog_spooled", &[]), Some(0.0));
    assert_eq!(value(&s, "prisem_syslog_unparsed_total", &[]), Some(1.0));
    let sent = value(&s, "prisem_syslog_sent_total", &[]).unwrap();
    assert!(sent >= lines, "sent {sent} of {lines}");
    let unrouted = value(&s, "prisem_syslog_unrouted_total", &[]).unwrap();
    assert_eq!(
        value(
            &s,
            "prisem_amqp_publish_confirms_total",
            &[("outcome", "ack")]
        ),
        Some(lines - unrouted)
    );
    assert_eq!(
        value(
            &s,
            "prisem_amqp_publish_confirms_total",
            &[("outcome", "returned")]
        )
        .unwrap_or(0.0),
        unrouted
    );
    assert_eq!(value(&s, "prisem_syslog_dropped_total", &[]), Some(0.0));
    assert_eq!(value(&s, "prisem_syslog_spool_bytes", &[]), Some(0.0));
}

#[test]
fn backbone_counts_http_requests_by_route_and_status() {
    let dir = tempfile::tempdir().unwrap();
    let (api, m) = (free_port(), free_port());
    let log = dir.path().join("backbone.log");
    let _backbone = Reaped(
        Command::new(env!("CARGO_BIN_EXE_backbone"))
            .args(["--url", &amqp_url()])
            .arg("--db")
            .arg(dir.path().join("backbone.db"))
            .args(["--listen", &format!("127.0.0.1:{api}")])
            .args(["--metrics", &m.to_string()])
            .env("BACKBONE_ADMIN_TOKEN", "metrics-test-admin-token")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    // A failed request says what the backbone logged.
    let failed = |e: std::io::Error| -> ! {
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        panic!("GET on the backbone: {e}; its log:\n{log}")
    };
    let get = |path: &str| {
        use std::io::Read;
        let started = Instant::now();
        let mut s = loop {
            match TcpStream::connect(("127.0.0.1", api)) {
                Ok(s) => break s,
                Err(e) => {
                    assert!(started.elapsed() < Duration::from_secs(30), "backbone: {e}");
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        };
        let mut out = String::new();
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
            .and_then(|()| s.read_to_string(&mut out))
            .unwrap_or_else(|e| failed(e));
        out
    };
    assert!(get("/health").starts_with("HTTP/1.0 200"));
    assert!(get("/health").starts_with("HTTP/1.0 200"));
    assert!(get("/client/nobody").starts_with("HTTP/1.0 401"));
    assert!(get("/no/such/thing").starts_with("HTTP/1.0 404"));
    let s = scrape(m);
    let req = |route: &str, status: &str| {
        value(
            &s,
            "prisem_http_requests_total",
            &[("route", route), ("method", "GET"), ("status", status)],
        )
    };
    assert_eq!(req("/health", "200"), Some(2.0));
    // The parser cuts label values at a brace: this one is read from the text.
    let text = get::metrics(m).unwrap();
    assert!(
        text.contains(
            "prisem_http_requests_total{route=\"/client/{id}\",method=\"GET\",status=\"401\"} 1\n"
        ),
        "{text}"
    );
    assert_eq!(req("unmatched", "404"), Some(1.0));
    assert_eq!(
        value(
            &s,
            "prisem_http_request_duration_seconds_count",
            &[("route", "/health")]
        ),
        Some(2.0)
    );
    assert_eq!(
        value(&s, "prisem_build_info", &[("program", "backbone")]),
        Some(1.0)
    );
}
