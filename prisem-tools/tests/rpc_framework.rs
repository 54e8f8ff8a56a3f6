//! rpc::Server and rpc::Client against the test broker: answers, error replies for every kind
//! of bad request, no-server and time-out errors, many calls in flight, graceful shutdown.

mod common;

use std::sync::Arc;
use std::time::Duration;

use amqp_client::{BasicProperties, Connection};
use amqp_test_support::{amqp_url, unique_name};
use common::wait_for_consumers;
use prisem_tools::daemon::Shutdown;
use prisem_tools::dimslog::Logger;
use prisem_tools::identity::Identity;
use prisem_tools::rpc::{
    queue_name, AppData, CallError, Client, Reply, Server, ServerConfig, Service, ServiceError,
};

const T: Duration = Duration::from_secs(20);

/// Echoes `data`; `mode` makes it fail, panic or sleep ("drain" sleeps too, once it said it
/// started).
struct Echo;

/// Woken when a request in mode "drain" starts: only the shutdown test sends one.
static DRAIN_STARTED: tokio::sync::Notify = tokio::sync::Notify::const_new();

impl Service for Echo {
    async fn handle(&self, appdata: AppData) -> Result<Reply, ServiceError> {
        match appdata.string("mode")? {
            Some("fail") => return Err(ServiceError::with_retcode(7, "Error: asked to fail")),
            Some("panic") => panic!("asked to panic"),
            Some(mode @ ("sleep" | "drain")) => {
                if mode == "drain" {
                    DRAIN_STARTED.notify_one();
                }
                let ms = appdata.integer("ms")?.unwrap_or(0);
                tokio::time::sleep(Duration::from_millis(ms.unsigned_abs())).await;
            }
            _ => {}
        }
        Ok(Reply::ok(appdata.file("data")?))
    }
}

struct Running {
    conn: Connection,
    shutdown: Shutdown,
    task: tokio::task::JoinHandle<Result<prisem_tools::rpc::ServerStats, amqp_client::Error>>,
    queue: String,
}

async fn serve(config: ServerConfig) -> Running {
    let conn = Connection::connect(&amqp_url()).await.unwrap();
    let logger = Arc::new(Logger::tracing_only(Identity::for_program("echo")));
    let queue = config.queue();
    let workers = u32::try_from(config.workers).unwrap();
    let server = Server::new(Echo, config, logger);
    let shutdown = Shutdown::new();
    let (c, s) = (conn.clone(), shutdown.clone());
    let task = tokio::spawn(async move { server.run(&c, &s).await });
    wait_for_consumers(&conn, &queue, workers).await;
    Running {
        conn,
        shutdown,
        task,
        queue,
    }
}

async fn client() -> (Connection, Client) {
    let conn = Connection::connect(&amqp_url()).await.unwrap();
    let client = Client::new(&conn, Identity::for_program("test-client"), "")
        .await
        .unwrap();
    (conn, client)
}

#[tokio::test]
async fn answers_and_error_replies_keep_the_worker_serving() {
    let mut config = ServerConfig::new(&unique_name("echo"));
    config.max_request_bytes = 4096;
    config.request_timeout = Duration::from_millis(500);
    let server = serve(config).await;
    let (_c, client) = client().await;
    let q = &server.queue;

    let ok = client
        .call(q, AppData::new().with_file("data", b"hello"), T)
        .await
        .unwrap();
    assert_eq!(ok, Reply::ok(b"hello".to_vec()));

    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"{not json".to_vec(), "not valid JSON"),
        (b"[1]".to_vec(), "not a JSON object"),
        (br#"{"name":"x"}"#.to_vec(), "no 'appdata'"),
        (
            br#"{"appdata":{"data":"!!!"}}"#.to_vec(),
            "'data': not valid base64",
        ),
        (
            br#"{"appdata":{"mode":5}}"#.to_vec(),
            "'mode': expected a string",
        ),
        (br#"{"appdata":{"mode":"fail"}}"#.to_vec(), "asked to fail"),
        (
            br#"{"appdata":{"mode":"panic"}}"#.to_vec(),
            "internal error",
        ),
        (
            br#"{"appdata":{"mode":"sleep","ms":3000}}"#.to_vec(),
            "time limit",
        ),
        (vec![b' '; 5000], "exceeds the server's limit of 4096 bytes"),
        (vec![0xff, 0x00, 0x17], "not valid JSON"),
    ];
    for (body, want) in cases {
        let env = client.call_raw(q, &body, T).await.unwrap();
        let reply = Reply::from_appdata(&env.appdata).unwrap();
        let stderr = String::from_utf8_lossy(&reply.stderr);
        assert_ne!(reply.retcode, 0, "{want}");
        assert!(stderr.contains(want), "{stderr:?} lacks {want:?}");
        assert!(stderr.ends_with('\n'));
        assert!(reply.stdout.is_empty());
    }
    let failed = client
        .call(q, AppData::new().with("mode", "fail"), T)
        .await
        .unwrap();
    assert_eq!(failed.retcode, 7);

    // A request without reply_to is acked and the worker answers the next one.
    // Confirmed before the next call is published, so the single worker takes it first.
    let ch = server.conn.open_channel().await.unwrap();
    ch.confirm_select().await.unwrap();
    let confirm = ch
        .publish(
            amqp_client::Publish::to_queue(q),
            &BasicProperties::default(),
            br#"{"appdata":{}}"#,
        )
        .await
        .unwrap();
    assert!(confirm.await.unwrap().is_ack());
    let after = client
        .call(q, AppData::new().with_file("data", b"still here"), T)
        .await
        .unwrap();
    assert_eq!(after.stdout, b"still here");

    server.shutdown.trigger();
    let stats = server.task.await.unwrap().unwrap();
    assert_eq!(stats.handled, 14);
    assert_eq!(stats.errors, 11);
    // Nothing is left in the queue: every request was acked.
    let left = ch
        .queue_declare(
            q,
            amqp_client::options::QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((left.message_count, left.consumer_count), (0, 0));
}

#[tokio::test]
async fn many_calls_in_flight_on_several_workers() {
    let mut config = ServerConfig::new(&unique_name("echo"));
    config.workers = 4;
    let server = serve(config).await;
    let (_c, client) = client().await;
    let client = Arc::new(client);
    let calls: Vec<_> = (0..64)
        .map(|i| {
            let client = Arc::clone(&client);
            let q = server.queue.clone();
            tokio::spawn(async move {
                let data = format!("call {i}");
                let appdata = AppData::new()
                    .with_file("data", data.as_bytes())
                    .with("mode", "sleep")
                    .with("ms", 20);
                let reply = client.call(&q, appdata, T).await.unwrap();
                assert_eq!(reply.stdout, data.as_bytes());
            })
        })
        .collect();
    for c in calls {
        c.await.unwrap();
    }
    server.shutdown.trigger();
    assert_eq!(server.task.await.unwrap().unwrap().handled, 64);
}

#[tokio::test]
async fn no_server_is_said_at_once_and_timeouts_are_their_own_error() {
    let (_c, client) = client().await;
    let missing = queue_name(&unique_name("nobody"));
    let started = std::time::Instant::now();
    let e = client.call(&missing, AppData::new(), T).await.unwrap_err();
    assert!(matches!(e, CallError::NoServer { .. }), "{e:?}");
    assert_eq!(e.to_string(), format!("no server is serving {missing}"));
    assert!(started.elapsed() < T, "it must not wait for the time limit");

    // A queue that exists but that nobody consumes (a server that died): no server either.
    let conn = Connection::connect(&amqp_url()).await.unwrap();
    let ch = conn.open_channel().await.unwrap();
    let idle = queue_name(&unique_name("idle"));
    ch.queue_declare(
        &idle,
        amqp_client::options::QueueDeclareOptions {
            auto_delete: false,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let e = client.call(&idle, AppData::new(), T).await.unwrap_err();
    assert!(matches!(e, CallError::NoServer { .. }), "{e:?}");
    assert_eq!(e.exit_status(), prisem_tools::rpc::client::EXIT_NO_SERVER);
    ch.queue_delete(&idle, Default::default()).await.unwrap();

    let server = serve(ServerConfig::new(&unique_name("slow"))).await;
    let slow = AppData::new().with("mode", "sleep").with("ms", 2000);
    let e = client
        .call(&server.queue, slow, Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(matches!(e, CallError::Timeout { .. }), "{e:?}");
    assert!(e.to_string().contains("within 0.2 s"), "{e}");
    assert_eq!(e.exit_status(), prisem_tools::rpc::client::EXIT_TIMEOUT);
    server.shutdown.trigger();
    server.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn shutdown_finishes_the_request_in_flight() {
    let server = serve(ServerConfig::new(&unique_name("drain"))).await;
    let (_c, client) = client().await;
    let q = server.queue.clone();
    let call = tokio::spawn(async move {
        client
            .call(
                &q,
                AppData::new()
                    .with("mode", "drain")
                    .with("ms", 500)
                    .with_file("data", b"done"),
                T,
            )
            .await
    });
    // Shut down while the request runs: it is answered before the server returns.
    tokio::time::timeout(T, DRAIN_STARTED.notified())
        .await
        .expect("the request never reached the server");
    server.shutdown.trigger();
    let reply = call.await.unwrap().unwrap();
    assert_eq!(reply.stdout, b"done");
    let stats = server.task.await.unwrap().unwrap();
    assert_eq!(stats.handled, 1);
}

#[tokio::test]
async fn a_service_can_run_on_a_quorum_queue() {
    let mut config = ServerConfig::new(&unique_name("quorum"));
    config.queue_type = Some(amqp_client::options::QueueType::Quorum);
    config.workers = 2;
    let server = serve(config).await;
    let (_c, client) = client().await;
    let reply = client
        .call(&server.queue, AppData::new().with_file("data", b"q"), T)
        .await
        .unwrap();
    assert_eq!(reply.stdout, b"q");
    // It really is a durable quorum queue: declaring it as the originals' classic, non-durable
    // queue is refused as inequivalent.
    let ch = server.conn.open_channel().await.unwrap();
    let e = ch
        .queue_declare(&server.queue, Default::default())
        .await
        .unwrap_err();
    assert_eq!(
        e.reply_code(),
        Some(amqp_client::ReplyCode::PRECONDITION_FAILED)
    );
    server.shutdown.trigger();
    server.task.await.unwrap().unwrap();
    let ch = server.conn.open_channel().await.unwrap();
    ch.queue_delete(&server.queue, Default::default())
        .await
        .unwrap();
}
