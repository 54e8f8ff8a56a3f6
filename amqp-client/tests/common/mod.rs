//! Helpers shared by the broker tests.
#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use amqp_client::options::QueueDeclareOptions;
use amqp_client::{Channel, Connection, ConnectionConfig, Error, FieldTable, ReplyCode};

pub(crate) fn config() -> ConnectionConfig {
    ConnectionConfig::from_uri(&amqp_test_support::amqp_url()).unwrap()
}

pub(crate) async fn connect() -> Connection {
    Connection::connect_with(config())
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test broker: {e}"))
}

pub(crate) fn name(prefix: &str) -> String {
    amqp_test_support::unique_name(prefix)
}

/// Declares a fresh auto-delete queue that lives as long as the test.
pub(crate) async fn queue(ch: &Channel, prefix: &str) -> String {
    queue_with(ch, prefix, FieldTable::new()).await
}

pub(crate) async fn queue_with(ch: &Channel, prefix: &str, arguments: FieldTable) -> String {
    let q = name(prefix);
    ch.queue_declare(
        &q,
        QueueDeclareOptions {
            auto_delete: false,
            arguments,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    q
}

/// How many ready messages the broker holds in `queue`, asked on a channel of its own.
pub(crate) async fn ready(conn: &Connection, queue: &str) -> u32 {
    let ch = conn.open_channel().await.unwrap();
    let info = ch
        .queue_declare(
            queue,
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    ch.close().await.unwrap();
    info.message_count
}

/// Whether `queue` exists, asked on a channel of its own (a passive declare of a missing queue
/// closes the channel with NOT_FOUND).
pub(crate) async fn queue_exists(conn: &Connection, queue: &str) -> bool {
    let ch = conn.open_channel().await.unwrap();
    let r = ch
        .queue_declare(
            queue,
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
        )
        .await;
    match r {
        Ok(_) => {
            ch.close().await.unwrap();
            true
        }
        // Another connection's exclusive queue exists but is locked.
        Err(e) if e.reply_code() == Some(ReplyCode::RESOURCE_LOCKED) => true,
        Err(e) => {
            assert_eq!(e.reply_code(), Some(ReplyCode::NOT_FOUND), "{e}");
            false
        }
    }
}

/// Asserts `e` closed the channel (not the connection) with `code`.
pub(crate) fn assert_channel_error(e: &Error, code: ReplyCode) {
    match e {
        Error::ChannelClosed(r) => assert_eq!(r.code, code, "{e}"),
        other => panic!("expected a channel error {code:?}, got {other}"),
    }
}

/// Retries `check` until it holds, for things the broker does asynchronously (deleting an
/// exclusive queue after its connection closed). Fails after a generous bound.
pub(crate) async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: did not happen");
}

pub(crate) async fn delete_queue(conn: &Connection, queue: &str) {
    let ch = conn.open_channel().await.unwrap();
    ch.queue_delete(queue, Default::default()).await.unwrap();
    ch.close().await.unwrap();
}
