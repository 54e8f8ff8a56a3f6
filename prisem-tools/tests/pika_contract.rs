//! Interoperability with programs written to the PRISEM contract with pika (Debian's
//! python3-pika, as the originals used): their client calls our server, our client and the
//! `prisem` tool call their server, and logmon prints the log lines they publish.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use amqp_client::Connection;
use amqp_test_support::{amqp_url, unique_name};
use common::{wait_for_consumers, Reaped};
use prisem_tools::daemon::Shutdown;
use prisem_tools::dimslog::Logger;
use prisem_tools::identity::Identity;
use prisem_tools::rpc::{
    encode_base64, queue_name, AppData, Client, Reply, Server, ServerConfig, Service, ServiceError,
};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(20);
const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pika");

fn python() -> String {
    std::env::var("PIKA_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into())
}

/// A child process killed when the test ends, however it ends.
/// Starts the pika contract server on `queue` and waits for it to say "ready".
fn pika_server(queue: &str, replies: Option<&std::path::Path>) -> Reaped {
    let mut cmd = Command::new(python());
    cmd.arg(format!("{DIR}/contract_server.py"))
        .arg(amqp_url())
        .arg(queue);
    if let Some(r) = replies {
        cmd.arg(r);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .expect("run /usr/bin/python3 (scripts/install-deps installs python3-pika)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready", "the pika server did not start");
    Reaped(child)
}

fn pika_client(queue: &str, appdata: &Value) -> Value {
    let out = Command::new(python())
        .arg(format!("{DIR}/contract_client.py"))
        .arg(amqp_url())
        .arg(queue)
        .arg(appdata.to_string())
        .arg("20")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pika client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

struct Upper;

impl Service for Upper {
    async fn handle(&self, appdata: AppData) -> Result<Reply, ServiceError> {
        let mut out = appdata.file("data")?.to_ascii_uppercase();
        if appdata.flag("stats") {
            out.extend_from_slice(b"\nstats on\n");
        }
        Ok(Reply::ok(out))
    }
}

#[tokio::test]
async fn pika_client_calls_our_server() {
    let base = unique_name("upper");
    let conn = Connection::connect(&amqp_url()).await.unwrap();
    let mut config = ServerConfig::new(&base);
    config.workers = 2;
    let server = Server::new(
        Upper,
        config,
        Arc::new(Logger::tracing_only(Identity::for_program("upper"))),
    );
    let shutdown = Shutdown::new();
    let (c, s) = (conn.clone(), shutdown.clone());
    let task = tokio::spawn(async move { server.run(&c, &s).await });
    let queue = queue_name(&base);
    wait_for_consumers(&conn, &queue, 2).await;

    let q = queue.clone();
    let good = tokio::task::spawn_blocking(move || {
        pika_client(
            &q,
            &json!({"data": encode_base64(b"hello"), "stats": "true"}),
        )
    })
    .await
    .unwrap();
    assert_eq!(good["retcode"], 0);
    assert_eq!(good["stdout"], "HELLO\nstats on\n");
    assert_eq!(good["stderr"], "");
    assert_eq!(good["envelope"]["protocolver"], "0.5.5");
    assert_eq!(good["envelope"]["name"], "upper");

    let q = queue.clone();
    let bad = tokio::task::spawn_blocking(move || pika_client(&q, &json!({"data": "@@@"})))
        .await
        .unwrap();
    assert_eq!(bad["retcode"], 1);
    assert!(
        bad["stderr"].as_str().unwrap().contains("not valid base64"),
        "{bad}"
    );

    shutdown.trigger();
    assert_eq!(task.await.unwrap().unwrap().handled, 2);
}

#[tokio::test]
async fn our_client_calls_a_pika_server() {
    let queue = queue_name(&unique_name("pika"));
    let _server = pika_server(&queue, None);
    let conn = Connection::connect(&amqp_url()).await.unwrap();
    let client = Client::new(&conn, Identity::for_program("test"), "")
        .await
        .unwrap();
    let appdata = AppData::new()
        .with_file("data", "naïve text\n".as_bytes())
        .with_flag("json", true)
        .with("stime", 1388707200);
    let reply = client.call(&queue, appdata, T).await.unwrap();
    assert_eq!(reply.retcode, 0);
    let seen: Value = serde_json::from_slice(&reply.stdout).unwrap();
    assert_eq!(seen["data"], "naïve text\n");
    assert_eq!(seen["appdata"]["json"], "true");
    assert_eq!(seen["appdata"]["stime"], 1388707200);
    // Several calls in flight at once, each matched to its own reply.
    let client = Arc::new(client);
    let calls: Vec<_> = (0..8)
        .map(|i| {
            let (client, queue) = (Arc::clone(&client), queue.clone());
            tokio::spawn(async move {
                let text = format!("n{i}");
                let r = client
                    .call(&queue, AppData::new().with_file("data", text.as_bytes()), T)
                    .await
                    .unwrap();
                let seen: Value = serde_json::from_slice(&r.stdout).unwrap();
                assert_eq!(seen["data"], text);
            })
        })
        .collect();
    for c in calls {
        c.await.unwrap();
    }
}

#[tokio::test]
async fn prisem_call_prints_a_recorded_reply_as_the_originals_did() {
    let base = unique_name("recorded");
    let queue = queue_name(&base);
    let file = std::env::temp_dir().join(format!("{base}.json"));
    std::fs::write(
        &file,
        json!({"retcode": 3, "stdout": encode_base64(b"out\n"), "stderr": encode_base64(b"err\n")})
            .to_string(),
    )
    .unwrap();
    let _server = pika_server(&queue, Some(&file));
    let run = |print: &str| {
        Command::new(env!("CARGO_BIN_EXE_prisem"))
            .args(["call", &base, "--url", &amqp_url(), "--print", print])
            .args(["--appdata", r#"{"x":"y"}"#])
            .output()
            .unwrap()
    };
    let both = run("both");
    assert_eq!(both.status.code(), Some(3));
    assert_eq!(both.stdout, b"out\n");
    assert_eq!(both.stderr, b"err\n");
    let by = run("by-retcode");
    assert_eq!(by.status.code(), Some(3));
    assert_eq!(by.stdout, b"");
    assert_eq!(by.stderr, b"err\n");
    let _ = std::fs::remove_file(file);

    // No server: said at once, with its own exit status.
    let none = Command::new(env!("CARGO_BIN_EXE_prisem"))
        .args(["call", &unique_name("nobody"), "--url", &amqp_url()])
        .output()
        .unwrap();
    assert_eq!(
        none.status.code(),
        Some(i32::from(prisem_tools::rpc::client::EXIT_NO_SERVER))
    );
    assert!(String::from_utf8_lossy(&none.stderr).contains("no server is serving"));
}
