//! The `amqp` binary against the real broker: every subcommand, exit statuses, bad input.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use amqp_client::options::GetOptions;
use amqp_client::{BasicProperties, Connection};
use amqp_wire::{Decimal, FieldTable, FieldValue};
use bytes::Bytes;
use common::*;
use serde_json::json;

/// Fetches one message with the client library itself (no-ack), to see the exact wire types.
fn fetch_raw(queue: &str) -> (BasicProperties, Bytes) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let conn = Connection::connect(&amqp_url()).await.unwrap();
        let ch = conn.open_channel().await.unwrap();
        let m = ch
            .basic_get(queue, GetOptions { no_ack: true })
            .await
            .unwrap()
            .expect("a message");
        let out = (m.delivery.properties().clone(), m.delivery.body.clone());
        conn.close().await.unwrap();
        out
    })
}

const ALL_PROPERTIES: &[&str] = &[
    "--content-type",
    "application/json",
    "--content-encoding",
    "utf-8",
    "--persistent",
    "--priority",
    "7",
    "--correlation-id",
    "corr-1",
    "--reply-to",
    "replies",
    "--expiration",
    "600000",
    "--message-id",
    "msg-1",
    "--timestamp",
    "1700000000",
    "--type",
    "order.created",
    "--user-id",
    "guest",
    "--app-id",
    "cli-test",
];

const TYPED_HEADERS: &[&str] = &[
    "-H",
    "s=text",
    "-H",
    "n:int=-5",
    "-H",
    "b8:i8=-8",
    "-H",
    "s16:i16=-300",
    "-H",
    "i32:i32=70000",
    "-H",
    "u8:u8=200",
    "-H",
    "u16:u16=60000",
    "-H",
    "u32:u32=4000000000",
    "-H",
    "f:float=1.5",
    "-H",
    "f32:f32=0.25",
    "-H",
    "yes:bool=true",
    "-H",
    "ts:timestamp=1700000001",
    "-H",
    "dec:decimal=-12.345",
    "-H",
    "raw:bytes=AAH/",
    "-H",
    "nothing:void=",
    "-H",
    "colon: rabbitmq-c style",
];

#[test]
fn publish_then_get_keeps_every_property_and_typed_header() {
    let q = TempQueue::new("cli-props");
    let mut args = vec!["publish", "-r", q.name(), "-b", "{\"k\":1}", "--confirm"];
    args.extend_from_slice(ALL_PROPERTIES);
    args.extend_from_slice(TYPED_HEADERS);
    amqp(&args).ok();
    amqp(&args).ok();

    // The JSON our `get` prints.
    let run = amqp(&["get", "-q", q.name()]).ok();
    let lines = run.json_lines();
    assert_eq!(lines.len(), 1);
    assert_eq!(
        lines[0],
        json!({
            "exchange": "",
            "routing_key": q.name(),
            "redelivered": false,
            "delivery_tag": 1,
            "properties": {
                "content_type": "application/json",
                "content_encoding": "utf-8",
                "headers": {
                    "s": "text", "n": -5, "b8": -8, "s16": -300, "i32": 70000, "u8": 200,
                    "u16": 60000, "u32": 4_000_000_000u32, "f": 1.5, "f32": 0.25, "yes": true,
                    "ts": 1_700_000_001u64, "dec": "-12.345", "raw": "AAH/", "nothing": null,
                    "colon": "rabbitmq-c style"
                },
                "delivery_mode": 2,
                "priority": 7,
                "correlation_id": "corr-1",
                "reply_to": "replies",
                "expiration": "600000",
                "message_id": "msg-1",
                "timestamp": 1_700_000_000u64,
                "type": "order.created",
                "user_id": "guest",
                "app_id": "cli-test"
            },
            "body": "{\"k\":1}"
        })
    );
    // Key order in the JSON is the wire order.
    let text = run.stdout_text();
    assert!(text.find("\"s\":").unwrap() < text.find("\"colon\":").unwrap());

    // The exact wire types, as the client library decodes them.
    let (props, body) = fetch_raw(q.name());
    assert_eq!(&body[..], b"{\"k\":1}");
    let expected = FieldTable::new()
        .with("s", FieldValue::LongStr(Bytes::from_static(b"text")))
        .unwrap()
        .with("n", FieldValue::I64(-5))
        .unwrap()
        .with("b8", FieldValue::I8(-8))
        .unwrap()
        .with("s16", FieldValue::I16(-300))
        .unwrap()
        .with("i32", FieldValue::I32(70000))
        .unwrap()
        .with("u8", FieldValue::U8(200))
        .unwrap()
        .with("u16", FieldValue::U16(60000))
        .unwrap()
        .with("u32", FieldValue::U32(4_000_000_000))
        .unwrap()
        .with("f", FieldValue::F64(1.5))
        .unwrap()
        .with("f32", FieldValue::F32(0.25))
        .unwrap()
        .with("yes", FieldValue::Bool(true))
        .unwrap()
        .with("ts", FieldValue::Timestamp(1_700_000_001))
        .unwrap()
        .with("dec", FieldValue::Decimal(Decimal::new(3, -12345)))
        .unwrap()
        .with(
            "raw",
            FieldValue::ByteArray(Bytes::from_static(&[0, 1, 255])),
        )
        .unwrap()
        .with("nothing", FieldValue::Void)
        .unwrap()
        .with(
            "colon",
            FieldValue::LongStr(Bytes::from_static(b"rabbitmq-c style")),
        )
        .unwrap();
    assert_eq!(props.headers.as_ref(), Some(&expected));
    assert_eq!(props.delivery_mode, Some(2));
    assert_eq!(props.priority, Some(7));
    assert_eq!(props.timestamp, Some(1_700_000_000));
    assert_eq!(props.kind.as_deref(), Some("order.created"));
    assert_eq!(props.user_id.as_deref(), Some("guest"));
    assert_eq!(q.message_count(), 0);
}

#[test]
fn publish_from_stdin_whole_and_line_by_line() {
    let q = TempQueue::new("cli-stdin");
    let binary: Vec<u8> = (0..=255u8).collect();
    amqp_stdin(&["publish", "-r", q.name()], &binary).ok();
    amqp_stdin(
        &["publish", "-r", q.name(), "-l", "--confirm"],
        b"one\ntwo\n\nthree",
    )
    .ok();
    assert_eq!(q.message_count(), 5);

    let run = amqp(&["consume", "-q", q.name(), "-c", "5"]).ok();
    let lines = run.json_lines();
    assert_eq!(lines.len(), 5);
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&binary);
    assert_eq!(lines[0]["body_base64"], json!(b64));
    assert!(lines[0].get("body").is_none());
    let bodies: Vec<_> = lines[1..].iter().map(|l| l["body"].clone()).collect();
    assert_eq!(
        bodies,
        [json!("one"), json!("two"), json!(""), json!("three")]
    );
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["delivery_tag"], json!(i + 1));
        assert_eq!(l["properties"], json!({}));
    }
    assert_eq!(q.message_count(), 0, "consume acked what it printed");
}

#[test]
fn consume_format_body_and_no_ack() {
    let q = TempQueue::new("cli-body");
    amqp_stdin(&["publish", "-r", q.name(), "-l"], b"a\nb\n").ok();
    let run = amqp(&[
        "consume",
        "-q",
        q.name(),
        "-c",
        "2",
        "--format",
        "body",
        "-A",
    ])
    .ok();
    assert_eq!(run.stdout_text(), "a\nb\n");
    assert_eq!(
        q.message_count(),
        0,
        "no-ack: nothing to settle, nothing comes back"
    );

    // Acked mode with --prefetch: a count of 1 leaves the other message in the queue.
    amqp_stdin(&["publish", "-r", q.name(), "-l"], b"c\nd\n").ok();
    let run = amqp(&["consume", "-q", q.name(), "-c", "1", "--prefetch", "1"]).ok();
    assert_eq!(run.json_lines()[0]["body"], json!("c"));
    assert_eq!(q.message_count(), 1);
}

#[test]
fn consume_command_acks_on_success_and_requeues_on_failure() {
    let q = TempQueue::new("cli-cmd");
    let dir = std::env::temp_dir().join(unique_name("cli-cmd"));
    std::fs::create_dir_all(&dir).unwrap();
    let seen = dir.join("seen");
    let seen_s = seen.to_str().unwrap();
    amqp(&[
        "publish",
        "-r",
        q.name(),
        "-b",
        "good",
        "--correlation-id",
        "c-1",
    ])
    .ok();
    amqp(&["publish", "-r", q.name(), "-b", "bad"]).ok();

    // The command records its input and environment, and succeeds only on "good".
    let script = format!(
        "body=$(cat); printf '%s|%s|%s|%s|%s\\n' \"$body\" \"$AMQP_ROUTING_KEY\" \
         \"$AMQP_DELIVERY_TAG\" \"$AMQP_REDELIVERED\" \"$AMQP_PROPERTIES\" >> {seen_s}; \
         [ \"$body\" = good ]"
    );
    // `amqp consume` of one message from the queue, running `command` on it.
    let consume_one = |command: &[&str]| {
        let mut args = vec!["consume", "-q", q.name(), "-c", "1", "--"];
        args.extend_from_slice(command);
        amqp(&args)
    };
    consume_one(&["sh", "-c", &script]).ok();
    assert_eq!(q.message_count(), 1, "the good message was acked");

    consume_one(&["sh", "-c", &script]).ok();
    assert_eq!(q.message_count(), 1, "the bad message was requeued");

    let log = std::fs::read_to_string(&seen).unwrap();
    let lines: Vec<_> = log.lines().collect();
    assert_eq!(
        lines,
        [
            format!("good|{}|1|0|{{\"correlation_id\":\"c-1\"}}", q.name()),
            format!("bad|{}|1|0|{{}}", q.name()),
        ]
    );

    // It is there again, marked redelivered.
    let run = amqp(&["get", "-q", q.name()]).ok();
    let msg = &run.json_lines()[0];
    assert_eq!(msg["body"], json!("bad"));
    assert_eq!(msg["redelivered"], json!(true));

    // A command that cannot be started is a usage error, and the message stays.
    amqp(&["publish", "-r", q.name(), "-b", "x"]).ok();
    let run = consume_one(&["/nonexistent/prog"]).expect_code(1);
    assert!(run.stderr.contains("/nonexistent/prog"), "{}", run.stderr);
    assert_eq!(q.message_count(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn consume_from_server_named_queue_bound_to_exchange() {
    let ex = unique_name("cli-fan");
    amqp(&["declare", "exchange", &ex, "-t", "topic"]).ok();
    let url = amqp_url();
    let mut child = Command::new(AMQP)
        .args(["consume", "-e", &ex, "-r", "a.*", "-r", "b.#", "-c", "2"])
        .env("AMQP_URL", &url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let queue = line
        .trim()
        .strip_prefix("amqp consume: consuming from server-named queue ")
        .unwrap_or_else(|| panic!("unexpected stderr {line:?}"))
        .to_owned();
    assert!(queue.starts_with("amq.gen-"), "{queue}");

    amqp(&["publish", "-e", &ex, "-r", "x.y", "-b", "unrouted"]).ok();
    amqp(&[
        "publish",
        "-e",
        &ex,
        "-r",
        "a.one",
        "-b",
        "1",
        "--mandatory",
    ])
    .ok();
    amqp(&[
        "publish",
        "-e",
        &ex,
        "-r",
        "b.two.three",
        "-b",
        "2",
        "--mandatory",
    ])
    .ok();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["exchange"], json!(ex));
    assert_eq!(lines[0]["routing_key"], json!("a.one"));
    assert_eq!(lines[1]["routing_key"], json!("b.two.three"));
    // The exclusive queue went away with the connection.
    let run = amqp(&["declare", "queue", &queue, "--passive"]);
    assert_ne!(run.code, 0);
    amqp(&["delete", "exchange", &ex]).ok();
}

#[test]
fn declare_bind_unbind_delete_purge() {
    let src = unique_name("cli-src");
    let dst = unique_name("cli-dst");
    amqp(&["declare", "exchange", &src, "--type", "direct"]).ok();
    amqp(&["declare", "exchange", &dst, "-t", "fanout", "--auto-delete"]).ok();
    // Declaring again with other flags is refused by the broker: status 4.
    let run = amqp(&["declare", "exchange", &src, "-t", "fanout"]).expect_code(4);
    assert!(run.stderr.contains("PRECONDITION_FAILED"), "{}", run.stderr);
    amqp(&["declare", "exchange", &src, "--passive"]).ok();

    // x-max-length arrives as an integer (the broker refuses a string).
    let q = TempQueue::with_args("cli-bind", &["--arg", "x-max-length=2"]);
    amqp(&["bind", "queue", q.name(), "-e", &src, "-r", "k"]).ok();
    for body in ["1", "2", "3"] {
        amqp(&["publish", "-e", &src, "-r", "k", "-b", body, "--mandatory"]).ok();
    }
    assert_eq!(q.message_count(), 2, "x-max-length=2 was applied");
    let run = amqp(&["purge", q.name()]).ok();
    assert_eq!(run.stdout_text(), "2\n");

    // Exchange to exchange: src -k-> dst (fanout) -> q2.
    let q2 = TempQueue::new("cli-e2e");
    amqp(&[
        "bind",
        "exchange",
        &dst,
        "--exchange",
        &src,
        "--routing-key",
        "k2",
    ])
    .ok();
    amqp(&["bind", "queue", q2.name(), "-e", &dst]).ok();
    amqp(&[
        "publish",
        "-e",
        &src,
        "-r",
        "k2",
        "-b",
        "via",
        "--mandatory",
    ])
    .ok();
    assert_eq!(q2.message_count(), 1);
    amqp(&["unbind", "exchange", &dst, "-e", &src, "-r", "k2"]).ok();
    amqp(&["publish", "-e", &src, "-r", "k2", "-b", "x", "--mandatory"]).expect_code(5);

    amqp(&["unbind", "queue", q.name(), "-e", &src, "-r", "k"]).ok();
    let run = amqp(&["publish", "-e", &src, "-r", "k", "-b", "x", "--mandatory"]).expect_code(5);
    assert!(run.stderr.contains("NO_ROUTE"), "{}", run.stderr);

    // Delete prints how many messages went with the queue; --if-empty refuses a full one.
    amqp(&["publish", "-r", q.name(), "-b", "left"]).ok();
    let run = amqp(&["delete", "queue", q.name(), "--if-empty"]).expect_code(4);
    assert!(run.stderr.contains("PRECONDITION_FAILED"), "{}", run.stderr);
    let run = amqp(&["delete", "queue", "-q", q.name()]).ok();
    assert_eq!(run.stdout_text(), "1\n");
    amqp(&["declare", "queue", q.name(), "--passive"]).expect_code(2);

    amqp(&["delete", "exchange", &src]).ok();
    amqp(&["declare", "exchange", &src, "--passive"]).expect_code(2);
    amqp(&["delete", "exchange", &dst]).ok();
}

#[test]
fn declare_queue_prints_names_and_counts() {
    let run = amqp(&["declare", "queue", "--exclusive"]).ok();
    assert!(
        run.stdout_text().starts_with("amq.gen-"),
        "{:?}",
        run.stdout_text()
    );
    let q = TempQueue::with_args(
        "cli-decl",
        &["--durable", "--arg", "x-queue-type:str=classic"],
    );
    amqp(&["publish", "-r", q.name(), "-b", "m"]).ok();
    let run = amqp(&["declare", "queue", q.name(), "--durable", "--json"]).ok();
    assert_eq!(
        run.json_lines(),
        [json!({"queue": q.name(), "message_count": 1, "consumer_count": 0})]
    );
}

#[test]
fn declare_queue_type() {
    let q = TempQueue::with_args("cli-quorum", &["--durable", "--queue-type", "quorum"]);
    amqp(&[
        "declare",
        "queue",
        q.name(),
        "--durable",
        "--queue-type",
        "quorum",
    ])
    .ok();
    // The broker refuses the same queue as another type: it really is a quorum queue.
    amqp(&[
        "declare",
        "queue",
        q.name(),
        "--durable",
        "--queue-type",
        "classic",
    ])
    .expect_code(4);
    amqp(&["declare", "queue", q.name(), "--queue-type", "lazy"]).expect_code(1);
}

#[test]
fn get_empty_missing_and_requeue() {
    let q = TempQueue::new("cli-get");
    let run = amqp(&["get", "-q", q.name()]).expect_code(2);
    assert!(run.stdout.is_empty());
    assert!(run.stderr.contains("empty"), "{}", run.stderr);

    let run = amqp(&["get", "-q", &unique_name("cli-missing")]).expect_code(2);
    assert!(run.stderr.contains("NOT_FOUND"), "{}", run.stderr);
    amqp(&["purge", &unique_name("cli-missing")]).expect_code(2);

    amqp(&["publish", "-r", q.name(), "-b", "peek"]).ok();
    let run = amqp(&["get", "-q", q.name(), "--requeue", "--format", "body"]).ok();
    assert_eq!(run.stdout_text(), "peek\n");
    assert_eq!(q.message_count(), 1);
    let run = amqp(&["get", "-q", q.name(), "-A"]).ok();
    assert_eq!(run.json_lines()[0]["redelivered"], json!(true));
    assert_eq!(q.message_count(), 0);
}

#[test]
fn confirm_reports_nacks() {
    let q = TempQueue::with_args(
        "cli-nack",
        &[
            "--arg",
            "x-max-length=1",
            "--arg",
            "x-overflow=reject-publish",
        ],
    );
    amqp(&["publish", "-r", q.name(), "-b", "1", "--confirm"]).ok();
    let run = amqp(&["publish", "-r", q.name(), "-b", "2", "--confirm"]).expect_code(5);
    assert!(run.stderr.contains("nack"), "{}", run.stderr);
    assert_eq!(q.message_count(), 1);
}

#[test]
fn connection_options_and_failures() {
    let (host, port) = broker_addr();
    let port_s = port.to_string();
    let q = TempQueue::new("cli-conn");

    // The parts instead of a URL, with AMQP_URL unset.
    amqp_no_env(&[
        "publish",
        "--server",
        &host,
        "--port",
        &port_s,
        "--vhost",
        "/",
        "--username",
        "guest",
        "--password",
        "guest",
        "--heartbeat",
        "5",
        "--connection-name",
        "cli test",
        "-r",
        q.name(),
        "-b",
        "parts",
    ])
    .ok();
    // rabbitmq-c's --server host:port.
    let hp = format!("{host}:{port}");
    let run = amqp_no_env(&["-s", &hp, "get", "-q", q.name(), "--format", "body"]).ok();
    assert_eq!(run.stdout_text(), "parts\n");

    // An authfile.
    let dir = std::env::temp_dir().join(unique_name("cli-auth"));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good");
    std::fs::write(&good, "username:guest\npassword:guest\n").unwrap();
    amqp_no_env(&[
        "--server",
        &host,
        "--port",
        &port_s,
        "--authfile",
        good.to_str().unwrap(),
        "declare",
        "queue",
        q.name(),
        "--passive",
    ])
    .ok();
    let wrong = dir.join("wrong");
    std::fs::write(&wrong, "username:guest\npassword:nope\n").unwrap();
    let run = amqp_no_env(&[
        "--server",
        &host,
        "--port",
        &port_s,
        "--authfile",
        wrong.to_str().unwrap(),
        "get",
        "-q",
        q.name(),
    ])
    .expect_code(3);
    assert!(run.stderr.contains("ACCESS_REFUSED"), "{}", run.stderr);
    let bad = dir.join("bad");
    std::fs::write(&bad, "guest guest\n").unwrap();
    let run = amqp(&["--authfile", bad.to_str().unwrap(), "get", "-q", q.name()]).expect_code(1);
    assert!(run.stderr.contains("authfile"), "{}", run.stderr);
    std::fs::remove_dir_all(&dir).unwrap();

    // Wrong password, unknown vhost: connection failures.
    let run = amqp(&["--password", "wrong", "get", "-q", q.name()]).expect_code(3);
    assert!(run.stderr.contains("ACCESS_REFUSED"), "{}", run.stderr);
    let run = amqp(&["--vhost", &unique_name("no-vhost"), "get", "-q", q.name()]).expect_code(3);
    assert!(run.stderr.contains("NOT_ALLOWED"), "{}", run.stderr);

    // Nothing listening.
    let closed_port = amqp_test_support::free_port();
    let url = format!("amqp://guest:guest@127.0.0.1:{closed_port}/%2f");
    let run = amqp(&["--url", &url, "get", "-q", q.name()]).expect_code(3);
    assert!(run.stderr.contains("cannot connect"), "{}", run.stderr);

    // Malformed URL: usage.
    let run = amqp(&["--url", "http://x/", "get", "-q", q.name()]).expect_code(1);
    assert!(run.stderr.contains("--url"), "{}", run.stderr);
    let run = amqp(&["--url", "amqp://h:notaport/", "get", "-q", q.name()]).expect_code(1);
    assert!(run.stderr.contains("port"), "{}", run.stderr);
}

#[test]
fn bad_input_is_a_usage_error_before_connecting() {
    // A URL nobody listens on: had the tool connected, the status would be 3.
    let closed_port = amqp_test_support::free_port();
    let url = format!("amqp://127.0.0.1:{closed_port}/");
    let cases: &[&[&str]] = &[
        &["publish", "-H", "n:int=five", "-b", "x"],
        &["publish", "-H", "novalue", "-b", "x"],
        &["publish", "-H", "k:nosuchtype=1", "-b", "x"],
        &["publish", "--timestamp", "yesterday", "-b", "x"],
        &["publish", "--message-id", &"m".repeat(256), "-b", "x"],
        &["declare", "queue", "q", "--arg", "x-max-length:int=ten"],
        &["bind", "queue", "q", "-e", "e", "--arg", "=1"],
        &["purge"],
        &["delete", "queue"],
        &["nosuchcommand"],
        &["publish", "-b", "x", "-l"],
        &["get"],
        &["--cacert", "/nonexistent.pem", "get", "-q", "q"],
    ];
    for args in cases {
        let mut full = vec!["--url", url.as_str()];
        full.extend_from_slice(args);
        let run = amqp(&full);
        assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
        assert!(!run.stderr.trim().is_empty(), "{args:?} says nothing");
    }
    let run = amqp(&["--url", &url, "publish", "-H", "n:int=five", "-b", "x"]);
    assert!(run.stderr.contains("n:int=five"), "{}", run.stderr);
}

#[test]
fn help_and_version() {
    let run = amqp(&["--help"]).ok();
    let help = run.stdout_text();
    for needle in [
        "Exit status",
        "2  empty or not found",
        "3  connection",
        "5  a published",
    ] {
        assert!(help.contains(needle), "{needle:?} missing from {help}");
    }
    for sub in [
        &["publish", "--help"][..],
        &["consume", "--help"],
        &["get", "--help"],
        &["declare", "queue", "--help"],
        &["delete", "exchange", "--help"],
        &["dump", "--help"],
    ] {
        let run = amqp(sub).ok();
        assert!(run.stdout_text().contains("Exit status"), "{sub:?}");
    }
    let run = amqp(&["--version"]).ok();
    assert!(run.stdout_text().starts_with("amqp "));
}

#[test]
fn publish_to_a_missing_exchange_fails_with_or_without_confirms() {
    let ex = unique_name("cli-noex");
    for extra in [&[][..], &["--confirm"]] {
        let mut args = vec!["publish", "-e", ex.as_str(), "-b", "x"];
        args.extend_from_slice(extra);
        let run = amqp(&args).expect_code(2);
        assert!(
            run.stderr.contains("NOT_FOUND"),
            "{extra:?}: {}",
            run.stderr
        );
    }
}

/// Starts `amqp consume ARGS…` and waits for its first JSON line.
fn spawn_consumer(
    args: &[&str],
) -> (
    std::process::Child,
    BufReader<std::process::ChildStdout>,
    String,
) {
    let mut child = Command::new(AMQP)
        .args(args)
        .env("AMQP_URL", amqp_url())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    (child, stdout, first)
}

#[test]
fn consume_stops_cleanly_on_sigint() {
    let q = TempQueue::new("cli-int");
    amqp(&["publish", "-r", q.name(), "-b", "first"]).ok();
    let (child, _stdout, first) = spawn_consumer(&["consume", "-q", q.name()]);
    let first: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(first["body"], json!("first"));
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(q.message_count(), 0, "the printed message was acked");
}

#[test]
fn consume_ends_with_status_2_when_its_queue_is_deleted() {
    let q = TempQueue::new("cli-gone");
    amqp(&["publish", "-r", q.name(), "-b", "m"]).ok();
    let (child, _stdout, first) = spawn_consumer(&["consume", "-q", q.name()]);
    assert!(first.contains("\"body\":\"m\""), "{first}");
    amqp(&["delete", "queue", q.name()]).ok();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cancelled"), "{stderr}");
}
