//! `rpcserver` on the bus: a pika client written to the PRISEM contract calls it; hostile
//! requests get error replies or stay literal arguments and the worker answers the next one;
//! a worker killed with SIGKILL in the middle of a slow request leaves it to another worker,
//! and the client receives exactly one reply.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use amqp_client::options::{ConsumeOptions, QueueDeclareOptions};
use amqp_client::{BasicProperties, Connection, ShortStr};
use amqp_test_support::{amqp_url, unique_name};
use common::{wait_for_consumers, Reaped};
use futures_util::StreamExt;
use prisem_tools::identity::Identity;
use prisem_tools::rpc::{encode_base64, queue_name, AppData, Client, Envelope, Reply};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(30);

/// Writes a service file under the temp dir and starts rpcserver on it.
fn rpcserver(name: &str, yaml: &str, extra: &[&str]) -> (Reaped, std::path::PathBuf) {
    let file = std::env::temp_dir().join(format!("{name}.yml"));
    std::fs::File::create(&file)
        .unwrap()
        .write_all(yaml.as_bytes())
        .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_rpcserver"))
        .arg(&file)
        .args(["--url", &amqp_url()])
        .args(extra)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (Reaped(child), file)
}

#[tokio::test]
async fn pika_client_calls_an_rpcserver_service() {
    let base = unique_name("wc");
    let wc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/services/wc.yml"
    ))
    .unwrap()
    .replace("queue_base: wc", &format!("queue_base: {base}"));
    let (_server, file) = rpcserver(&base, &wc, &[]);
    let conn = Connection::connect(&amqp_url()).await.unwrap();
    let queue = queue_name(&base);
    wait_for_consumers(&conn, &queue, 1).await;
    let out = tokio::task::spawn_blocking(move || {
        Command::new(std::env::var("PIKA_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into()))
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/pika/contract_client.py"
            ))
            .arg(amqp_url())
            .arg(&queue)
            .arg(json!({"data": encode_base64(b"one two\nthree\n"), "words": "true"}).to_string())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["retcode"], 0);
    assert_eq!(reply["stdout"].as_str().unwrap().trim(), "3");
    let _ = std::fs::remove_file(file);
}

#[tokio::test]
async fn hostile_requests_over_the_bus_never_reach_a_shell() {
    let base = unique_name("echo");
    let yaml = format!(
        "queue_base: {base}\nprogram: /usr/bin/printf\nargs: [\"%s\\n\", {{field: text}}]\n\
         fields: {{text: {{type: pattern, pattern: \".*\", max_len: 100}}}}\n"
    );
    let (_server, file) = rpcserver(&base, &yaml, &["--workers", "2"]);
    let conn = Connection::connect(&amqp_url()).await.unwrap();
    let queue = queue_name(&base);
    wait_for_consumers(&conn, &queue, 2).await;
    let client = Client::new(&conn, Identity::for_program("test"), "")
        .await
        .unwrap();
    let marker = std::env::temp_dir().join(unique_name("pwned"));
    let m = marker.display();
    let literal = [
        format!("; touch {m}"),
        format!("$(touch {m})"),
        format!("`touch {m}`"),
        format!("x && touch {m}"),
    ];
    for text in &literal {
        let r = client
            .call(&queue, AppData::new().with("text", text.as_str()), T)
            .await
            .unwrap();
        assert_eq!(r.retcode, 0);
        assert_eq!(r.stdout, format!("{text}\n").into_bytes());
    }
    let refused = [
        json!({"text": "--version"}),
        json!({"text": "a\nb"}),
        json!({"text": "nul\u{0}"}),
        json!({"text": "x".repeat(101)}),
        json!({"other": "1"}),
        json!({"text": {"nested": true}}),
    ];
    for req in refused {
        let appdata: AppData = serde_json::from_value(req.clone()).unwrap();
        let r = client.call(&queue, appdata, T).await.unwrap();
        assert_eq!(r.retcode, 1, "{req}");
        assert!(
            String::from_utf8_lossy(&r.stderr).contains("appdata field"),
            "{req}"
        );
    }
    // Garbage that is not even JSON, then a good request: the worker still answers.
    let env = client.call_raw(&queue, b"\x00\xff{{{", T).await.unwrap();
    assert_eq!(Reply::from_appdata(&env.appdata).unwrap().retcode, 1);
    let r = client
        .call(&queue, AppData::new().with("text", "still serving"), T)
        .await
        .unwrap();
    assert_eq!(r.stdout, b"still serving\n");
    assert!(!marker.exists(), "a request ran a command");
    let _ = std::fs::remove_file(file);
}

#[tokio::test]
async fn a_killed_worker_leaves_its_request_to_another_and_one_reply_arrives() {
    let base = unique_name("slow");
    let yaml = format!(
        "queue_base: {base}\nprogram: /bin/sleep\nargs: [{{field: seconds}}]\n\
         fields: {{seconds: {{type: integer, min: 0, max: 10, required: true}}}}\n"
    );
    let conn = Connection::connect(&amqp_url()).await.unwrap();
    let queue = queue_name(&base);
    let (mut first, file) = rpcserver(&base, &yaml, &[]);
    wait_for_consumers(&conn, &queue, 1).await;

    // A raw client, so every reply that arrives is counted.
    let ch = conn.open_channel().await.unwrap();
    let reply_queue = ch
        .queue_declare(
            "",
            QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .name;
    let mut replies = ch
        .basic_consume(
            &reply_queue,
            ConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let body = Envelope::new(
        &Identity::for_program("test"),
        AppData::new().with("seconds", "2"),
    )
    .to_json();
    let props = BasicProperties::default()
        .with_reply_to(ShortStr::new(&reply_queue).unwrap())
        .with_correlation_id(ShortStr::from_static("the-one-request"));
    let _confirm = ch
        .publish(amqp_client::Publish::to_queue(&queue), &props, &body)
        .await
        .unwrap();

    // The first server has it (it is the only consumer); kill it mid-request, start another.
    tokio::time::sleep(Duration::from_millis(700)).await;
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    let started = Instant::now();
    let (_second, _) = rpcserver(&base, &yaml, &[]);

    let reply = tokio::time::timeout(T, replies.next())
        .await
        .expect("no reply after the worker was killed")
        .unwrap()
        .unwrap();
    assert_eq!(
        reply.properties().correlation_id.as_deref(),
        Some("the-one-request")
    );
    let env = Envelope::parse(&reply.body).unwrap();
    assert_eq!(Reply::from_appdata(&env.appdata).unwrap().retcode, 0);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "the second worker ran it again"
    );
    // Exactly one: nothing else arrives in the next seconds.
    let more = tokio::time::timeout(Duration::from_secs(3), replies.next()).await;
    assert!(more.is_err(), "a second reply arrived: {more:?}");
    let _ = std::fs::remove_file(file);
}
