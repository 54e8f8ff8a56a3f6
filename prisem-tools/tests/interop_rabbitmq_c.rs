//! Interoperability with rabbitmq-c's command-line tools (Debian package amqp-tools): what
//! `amqp-publish` sends, `amqp consume` reads exactly; what `amqp publish` sends, `amqp-get` and
//! `amqp-consume` read exactly.

mod common;

use common::*;
use serde_json::json;

#[test]
fn amqp_publish_headers_and_properties_read_by_our_consume() {
    let q = TempQueue::new("cli-interop-in");
    rabbitmq_c(
        "amqp-publish",
        &[
            "-r",
            q.name(),
            "-b",
            "from rabbitmq-c",
            "-H",
            "k1: v1",
            "-H",
            "trace-id: a=b:c",
            "-C",
            "application/json",
            "-E",
            "utf-8",
            "-t",
            "reply.queue",
            "-p",
        ],
        b"",
    )
    .ok();
    let run = amqp(&["consume", "-q", q.name(), "-c", "1"]).ok();
    assert_eq!(
        run.json_lines(),
        [json!({
            "exchange": "",
            "routing_key": q.name(),
            "redelivered": false,
            "delivery_tag": 1,
            "properties": {
                "content_type": "application/json",
                "content_encoding": "utf-8",
                "headers": {"k1": "v1", "trace-id": "a=b:c"},
                "delivery_mode": 2,
                "reply_to": "reply.queue"
            },
            "body": "from rabbitmq-c"
        })]
    );

    // Its line mode and its stdin body (binary included).
    rabbitmq_c("amqp-publish", &["-r", q.name(), "-l"], b"l1\nl2\n").ok();
    let binary: Vec<u8> = (0..=255u8).rev().collect();
    rabbitmq_c("amqp-publish", &["-r", q.name()], &binary).ok();
    let lines = amqp(&["consume", "-q", q.name(), "-c", "3"])
        .ok()
        .json_lines();
    // rabbitmq-c keeps the newline in line mode (ours drops it).
    assert_eq!(lines[0]["body"], json!("l1\n"));
    assert_eq!(lines[1]["body"], json!("l2\n"));
    use base64::Engine as _;
    assert_eq!(
        lines[2]["body_base64"],
        json!(base64::engine::general_purpose::STANDARD.encode(&binary))
    );
}

#[test]
fn our_messages_read_by_amqp_get_and_amqp_consume() {
    let q = TempQueue::new("cli-interop-out");
    let binary: Vec<u8> = (0..=255u8).chain(b"\n\r\0tail".iter().copied()).collect();
    amqp_stdin(
        &[
            "publish",
            "-r",
            q.name(),
            "-C",
            "application/octet-stream",
            "-H",
            "n:int=1",
            "-p",
        ],
        &binary,
    )
    .ok();
    let run = rabbitmq_c("amqp-get", &["-q", q.name()], b"").ok();
    assert_eq!(run.stdout, binary);
    rabbitmq_c("amqp-get", &["-q", q.name()], b"").expect_code(2);

    amqp_stdin(
        &["publish", "-r", q.name(), "-l", "--confirm"],
        b"one\ntwo\n",
    )
    .ok();
    amqp_stdin(&["publish", "-r", q.name()], &binary).ok();
    let run = rabbitmq_c("amqp-consume", &["-q", q.name(), "-c", "3", "cat"], b"").ok();
    let mut expected = b"onetwo".to_vec();
    expected.extend_from_slice(&binary);
    assert_eq!(run.stdout, expected);
    assert_eq!(q.message_count(), 0);
}

#[test]
fn queues_declared_and_deleted_by_either_tool() {
    let name = unique_name("cli-interop-q");
    let run = rabbitmq_c("amqp-declare-queue", &["-q", &name, "-d"], b"").ok();
    assert_eq!(run.stdout_text().trim(), name);
    amqp(&["declare", "queue", &name, "--durable", "--passive"]).ok();
    amqp(&["publish", "-r", &name, "-b", "x"]).ok();
    let run = rabbitmq_c("amqp-delete-queue", &["-q", &name], b"").ok();
    assert!(run.stdout_text().contains('1'), "{:?}", run.stdout_text());
    amqp(&["declare", "queue", &name, "--passive"]).expect_code(2);

    let run = amqp(&["declare", "queue", &name]).ok();
    assert_eq!(run.stdout_text(), format!("{name}\n"));
    rabbitmq_c("amqp-publish", &["-r", &name, "-b", "y"], b"").ok();
    let run = amqp(&["delete", "queue", &name]).ok();
    assert_eq!(run.stdout_text(), "1\n");
}
