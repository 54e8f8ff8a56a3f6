//! `amqp dump` on the bytes of real sessions, captured by a relay on loopback between the
//! `amqp` binary and the broker.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::thread::{self, JoinHandle};

use common::*;
use serde_json::{json, Value};

/// The two directions of one relayed connection.
struct Captured {
    client_to_server: Vec<u8>,
    server_to_client: Vec<u8>,
}

/// A TCP relay for one connection: the tool connects to `port`, the relay to the broker.
struct Relay {
    port: u16,
    handle: JoinHandle<Captured>,
}

fn pump(mut from: TcpStream, mut to: TcpStream) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    seen.extend_from_slice(&buf[..n]);
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Write);
        seen
    })
}

impl Relay {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (host, broker_port) = broker_addr();
        let handle = thread::spawn(move || {
            let (client, _) = listener.accept().unwrap();
            let server = TcpStream::connect((host.as_str(), broker_port)).unwrap();
            let c2s = pump(client.try_clone().unwrap(), server.try_clone().unwrap());
            let s2c = pump(server, client);
            Captured {
                client_to_server: c2s.join().unwrap(),
                server_to_client: s2c.join().unwrap(),
            }
        });
        Self { port, handle }
    }

    /// `amqp ARGS…` through the relay; returns the run and both directions' bytes.
    fn run(args: &[&str]) -> (Run, Captured) {
        let relay = Self::start();
        let url = format!("amqp://guest:guest@127.0.0.1:{}/%2f", relay.port);
        let mut full = vec!["--url", url.as_str()];
        full.extend_from_slice(args);
        let run = amqp(&full);
        (run, relay.handle.join().unwrap())
    }
}

fn write_temp(name: &str, bytes: &[u8]) -> PathBuf {
    let path = std::env::temp_dir().join(unique_name(name));
    std::fs::write(&path, bytes).unwrap();
    path
}

fn dump_bytes(bytes: &[u8], extra: &[&str]) -> Run {
    let path = write_temp("cli-capture", bytes);
    let mut args = vec!["dump", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    let run = amqp(&args);
    std::fs::remove_file(&path).unwrap();
    run
}

fn methods(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l["frame"] == "method")
        .map(|l| l["method"].as_str().unwrap().to_owned())
        .collect()
}

fn find_method<'a>(lines: &'a [Value], name: &str) -> (usize, &'a Value) {
    lines
        .iter()
        .enumerate()
        .find(|(_, l)| l["method"] == name)
        .unwrap_or_else(|| panic!("no {name} in {lines:#?}"))
}

#[test]
fn dump_of_a_publishing_session() {
    let q = TempQueue::new("cli-dump-pub");
    let (run, cap) = Relay::run(&[
        "publish",
        "-r",
        q.name(),
        "-b",
        "hello",
        "-H",
        "n:int=5",
        "-C",
        "text/plain",
        "--confirm",
    ]);
    run.ok();
    assert_eq!(q.message_count(), 1);

    // Client to server, protocol header first.
    assert!(cap.client_to_server.starts_with(b"AMQP\x00\x00\x09\x01"));
    let lines = dump_bytes(&cap.client_to_server, &[]).ok().json_lines();
    assert_eq!(
        lines[0],
        json!({"frame": "protocol-header", "version": "0-9-1"})
    );
    let names = methods(&lines);
    assert_eq!(
        names[..6],
        [
            "connection.start-ok",
            "connection.tune-ok",
            "connection.open",
            "channel.open",
            "confirm.select",
            "basic.publish"
        ]
    );
    assert_eq!(names.last().unwrap(), "connection.close");

    let (_, start_ok) = find_method(&lines, "connection.start-ok");
    let f = &start_ok["fields"];
    assert_eq!(f["mechanism"], json!("PLAIN"));
    assert!(f["client_properties"].is_object(), "{start_ok}");
    assert!(
        f["response"].as_str().unwrap().contains("hidden"),
        "the password is not shown: {start_ok}"
    );
    let (_, open) = find_method(&lines, "connection.open");
    assert_eq!(open["fields"], json!({"virtual_host": "/"}));
    assert_eq!(open["channel"], json!(0));

    let (at, publish) = find_method(&lines, "basic.publish");
    let channel = publish["channel"].clone();
    assert_ne!(channel, json!(0));
    assert_eq!(
        publish["fields"],
        json!({"exchange": "", "routing_key": q.name(), "mandatory": false, "immediate": false})
    );
    assert_eq!(
        lines[at + 1],
        json!({
            "frame": "header", "channel": channel, "class": 60, "body_size": 5,
            "properties": {"content_type": "text/plain", "headers": {"n": 5}}
        })
    );
    assert_eq!(
        lines[at + 2],
        json!({"frame": "body", "channel": channel, "size": 5})
    );

    // Server to client: no protocol header; start, tune, the confirm.
    let lines = dump_bytes(&cap.server_to_client, &[]).ok().json_lines();
    let names = methods(&lines);
    assert_eq!(
        names[..5],
        [
            "connection.start",
            "connection.tune",
            "connection.open-ok",
            "channel.open-ok",
            "confirm.select-ok"
        ]
    );
    let (_, start) = find_method(&lines, "connection.start");
    assert_eq!(start["fields"]["version_major"], json!(0));
    assert_eq!(start["fields"]["version_minor"], json!(9));
    assert_eq!(
        start["fields"]["server_properties"]["product"],
        json!("RabbitMQ")
    );
    assert!(start["fields"]["mechanisms"]
        .as_str()
        .unwrap()
        .contains("PLAIN"));
    let (_, tune) = find_method(&lines, "connection.tune");
    assert!(tune["fields"]["frame_max"].as_u64().unwrap() >= 4096);
    let (_, ack) = find_method(&lines, "basic.ack");
    assert_eq!(ack["fields"], json!({"delivery_tag": 1, "multiple": false}));
    assert_eq!(names.last().unwrap(), "connection.close-ok");
}

#[test]
fn dump_of_a_get_with_bodies_and_secrets() {
    let q = TempQueue::new("cli-dump-get");
    amqp(&[
        "publish",
        "-r",
        q.name(),
        "-b",
        "payload",
        "--message-id",
        "m-9",
    ])
    .ok();
    let (run, cap) = Relay::run(&["get", "-q", q.name()]);
    assert_eq!(run.ok().json_lines()[0]["body"], json!("payload"));

    let lines = dump_bytes(&cap.server_to_client, &["--show-body"])
        .ok()
        .json_lines();
    let (at, get_ok) = find_method(&lines, "basic.get-ok");
    assert_eq!(
        get_ok["fields"],
        json!({"delivery_tag": 1, "redelivered": false, "exchange": "",
               "routing_key": q.name(), "message_count": 0})
    );
    assert_eq!(lines[at + 1]["properties"], json!({"message_id": "m-9"}));
    assert_eq!(lines[at + 1]["body_size"], json!(7));
    assert_eq!(
        lines[at + 2],
        json!({"frame": "body", "channel": get_ok["channel"], "size": 7, "body": "payload"})
    );

    let c2s = dump_bytes(&cap.client_to_server, &["--show-secrets"])
        .ok()
        .json_lines();
    let (_, start_ok) = find_method(&c2s, "connection.start-ok");
    assert_eq!(
        start_ok["fields"]["response"],
        json!("\u{0}guest\u{0}guest")
    );
    let (_, get) = find_method(&c2s, "basic.get");
    assert_eq!(get["fields"], json!({"queue": q.name(), "no_ack": false}));
    let (_, ack) = find_method(&c2s, "basic.ack");
    assert_eq!(ack["fields"]["delivery_tag"], json!(1));
}

#[test]
fn dump_of_cut_or_corrupt_captures_fails_with_the_offset() {
    let q = TempQueue::new("cli-dump-cut");
    let (run, cap) = Relay::run(&["publish", "-r", q.name(), "-b", "x"]);
    run.ok();
    let bytes = cap.client_to_server;
    let full = dump_bytes(&bytes, &[]).ok().json_lines();

    // Cut inside the last frame: every frame before it, then the error at its start.
    let cut = &bytes[..bytes.len() - 2];
    let run = dump_bytes(cut, &[]).expect_code(1);
    let lines = run.json_lines();
    assert_eq!(lines[..lines.len() - 1], full[..full.len() - 1]);
    let err = lines.last().unwrap();
    let last_frame_at = bytes.len() - full_frame_len_at_end(&bytes);
    assert_eq!(err["offset"], json!(last_frame_at));
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .contains("ends inside a frame"),
        "{err}"
    );
    assert!(run.stderr.contains("malformed input"), "{}", run.stderr);

    // A corrupted frame-end octet in the first frame after the protocol header.
    let mut bad = bytes.clone();
    let first_len = 8 + u32::from_be_bytes(bad[11..15].try_into().unwrap()) as usize;
    bad[8 + first_len - 1] = 0x00;
    let lines = dump_bytes(&bad, &[]).expect_code(1).json_lines();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["offset"], json!(8));

    // From standard input, and a missing file.
    let run = amqp_stdin(&["dump", "-"], &bytes).ok();
    assert_eq!(run.json_lines(), full);
    let run = amqp(&["dump", "/nonexistent/capture"]).expect_code(1);
    assert!(
        run.stderr.contains("/nonexistent/capture"),
        "{}",
        run.stderr
    );
    // A frame larger than --frame-max.
    let lines = dump_bytes(&bytes, &["--frame-max", "64"])
        .expect_code(1)
        .json_lines();
    assert!(lines.last().unwrap()["error"].is_string());
}

/// The length of the last frame of a capture that ends on a frame boundary (the client's last
/// frame is connection.close), found by walking the frames from the protocol header.
fn full_frame_len_at_end(bytes: &[u8]) -> usize {
    let mut at = 8;
    let mut last = 0;
    while at < bytes.len() {
        let size = u32::from_be_bytes(bytes[at + 3..at + 7].try_into().unwrap()) as usize;
        last = size + 8;
        at += last;
    }
    assert_eq!(at, bytes.len());
    last
}
