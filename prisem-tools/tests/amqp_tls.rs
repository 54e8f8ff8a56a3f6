//! The `amqp` binary's TLS options against the broker's TLS listener.

mod common;

use amqp_test_support::{amqps_url, broker_dir, required_env};
use common::*;
use serde_json::json;

fn cert(name: &str) -> String {
    broker_dir()
        .join("certs")
        .join(name)
        .to_str()
        .unwrap()
        .to_owned()
}

/// `amqp --server localhost --port PORT ARGS…`, with no AMQP_URL in the environment.
fn amqp_at(port: &str, args: &[&str]) -> Run {
    let mut all = vec!["--server", "localhost", "--port", port];
    all.extend_from_slice(args);
    amqp_no_env(&all)
}

#[test]
fn tls_from_url_or_options() {
    let q = TempQueue::new("cli-tls");
    let port = required_env("AMQPS_PORT");
    let ca = cert("ca.pem");

    amqp(&[
        "--url",
        &amqps_url(),
        "publish",
        "-r",
        q.name(),
        "-b",
        "over tls",
        "--confirm",
    ])
    .ok();
    let run = amqp_at(
        &port,
        &[
            "--ssl",
            "--cacert",
            &ca,
            "get",
            "-q",
            q.name(),
            "--format",
            "body",
        ],
    )
    .ok();
    assert_eq!(run.stdout_text(), "over tls\n");

    // The platform roots do not know the test CA.
    let run = amqp_at(&port, &["--ssl", "get", "-q", q.name()]).expect_code(3);
    assert!(run.stderr.contains("certificate"), "{}", run.stderr);
    // Plain AMQP to the TLS port.
    let run = amqp_at(&port, &["get", "-q", q.name()]).expect_code(3);
    assert!(run.stderr.contains("TLS"), "{}", run.stderr);
    // A CA file that is not there.
    let run = amqp_at(
        &port,
        &[
            "--ssl",
            "--cacert",
            "/nonexistent/ca.pem",
            "get",
            "-q",
            q.name(),
        ],
    )
    .expect_code(1);
    assert!(run.stderr.contains("/nonexistent/ca.pem"), "{}", run.stderr);
}

#[test]
fn mutual_tls_with_sasl_external_logs_in_as_the_certificate() {
    let q = TempQueue::new("cli-mtls");
    let user = required_env("BROKER_TLS_USER");
    let port = required_env("AMQPS_PORT");
    let (ca, client, key) = (cert("ca.pem"), cert("client.pem"), cert("client_key.pem"));
    // RabbitMQ refuses a user-id property other than the logged-in user, so an accepted
    // publish proves who we are.
    amqp_at(
        &port,
        &[
            "--ssl",
            "--cacert",
            &ca,
            "--cert",
            &client,
            "--key",
            &key,
            "--auth-mechanism",
            "external",
            "publish",
            "-r",
            q.name(),
            "-b",
            "m",
            "--user-id",
            &user,
            "--confirm",
        ],
    )
    .ok();
    let run = amqp(&["get", "-q", q.name()]).ok();
    assert_eq!(run.json_lines()[0]["properties"], json!({"user_id": user}));
}
