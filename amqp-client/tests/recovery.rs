//! Automatic recovery against a real broker that is killed, restarted, or told to close the
//! connection (`rabbitmqctl close_connection`, the management API).
//!
//! The tests here stop the shared test broker, so they take a lock: one at a time.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use amqp_client::options::*;
use amqp_client::*;
use common::*;
use futures_util::StreamExt;

static BROKER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn recovering_config(name: &str) -> ConnectionConfig {
    config().with_connection_name(name).with_recovery(
        RecoveryPolicy::default()
            .with_delays(Duration::from_millis(100), Duration::from_secs(1))
            .with_entity_retries(3),
    )
}

/// The broker's pid for the connection named `name`, from `rabbitmqctl list_connections`.
fn connection_pid(name: &str) -> Option<String> {
    let listing = amqp_test_support::broker_script(&[
        "ctl",
        "-q",
        "list_connections",
        "pid",
        "client_properties",
    ]);
    listing
        .lines()
        .find(|l| l.contains(name))
        .and_then(|l| l.split_whitespace().next())
        .map(str::to_owned)
}

/// The management API's name for the connection named `name`.
fn management_name(name: &str) -> Option<String> {
    let url = format!(
        "{}/api/connections?columns=name,client_properties.connection_name",
        amqp_test_support::management_url()
    );
    let out = Command::new("curl").args(["-sf", &url]).output().unwrap();
    let body = String::from_utf8_lossy(&out.stdout);
    let chunk = body
        .split("{\"client_properties\"")
        .find(|c| c.contains(name))?;
    let start = chunk.find("\"name\":\"")? + 8;
    let len = chunk.get(start..)?.find('"')?;
    Some(chunk.get(start..start + len)?.to_owned())
}

/// Waits for the event `pred` picks, failing after 60 s.
async fn wait_event(events: &mut ConnectionEvents, pred: impl Fn(&ConnectionEvent) -> bool) {
    let found = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(e) = events.next().await {
            if pred(&e) {
                return;
            }
        }
        panic!("event stream ended");
    })
    .await;
    assert!(found.is_ok(), "event did not come");
}

async fn next_body(consumer: &mut Consumer) -> (Delivery, String) {
    let d = tokio::time::timeout(Duration::from_secs(30), consumer.next())
        .await
        .expect("a delivery within 30 s")
        .expect("the stream goes on")
        .expect("a delivery, not an error");
    let body = String::from_utf8(d.body.to_vec()).unwrap();
    (d, body)
}

#[tokio::test]
async fn kill_dash_nine_mid_stream_loses_no_confirmed_message() {
    let _broker = BROKER.lock().await;
    let conn_name = name("recovery-kill");
    let conn = Connection::connect_with(recovering_config(&conn_name))
        .await
        .unwrap();
    let publisher = conn.open_channel().await.unwrap();
    publisher.confirm_select().await.unwrap();
    let consumer_ch = conn.open_channel().await.unwrap();
    consumer_ch
        .basic_qos(50, QosOptions::default())
        .await
        .unwrap();
    let queue = name("recovery-durable");
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    consumer_ch.queue_declare(&queue, durable).await.unwrap();
    // The broker keeps its durable queue records in mnesia, and a kill -9 within about a
    // second of the declaration has lost the record (the node restarted with 0 queues to
    // recover, the confirmed messages in it orphaned): make the broker write its table log out
    // first, so what is tested is the client, not that window of the broker's.
    tokio::task::spawn_blocking(|| {
        amqp_test_support::broker_script(&["ctl", "eval", "mnesia:dump_log()."])
    })
    .await
    .unwrap();
    let mut consumer = consumer_ch
        .basic_consume(&queue, ConsumeOptions::default())
        .await
        .unwrap();

    const N: usize = 400;
    let publishing = tokio::spawn({
        let conn = conn.clone();
        let queue = queue.clone();
        async move {
            let props = BasicProperties::default().with_delivery_mode(2);
            let mut lost = 0;
            for i in 0..N {
                let body = i.to_string();
                loop {
                    let confirm = match publisher
                        .publish(
                            amqp_client::Publish::to_queue(&queue),
                            &props,
                            body.as_bytes(),
                        )
                        .await
                    {
                        Ok(c) => c.await,
                        Err(e) => Err(e),
                    };
                    match confirm {
                        Ok(c) => {
                            assert!(c.is_ack(), "{c:?}");
                            break;
                        }
                        Err(e) => {
                            assert!(
                                matches!(e, Error::ConnectionLost(_) | Error::Recovering),
                                "{e}"
                            );
                            lost += 1;
                            conn.wait_for_recovery().await.unwrap();
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            lost
        }
    });

    // Let a part of the stream through, then crash the broker and bring it back.
    let mut seen = BTreeSet::new();
    while seen.len() < 50 {
        let (d, body) = next_body(&mut consumer).await;
        d.ack().unwrap();
        seen.insert(body);
    }
    let mut events = conn.events();
    tokio::task::spawn_blocking(|| {
        amqp_test_support::broker_script(&["kill"]);
        amqp_test_support::broker_script(&["start"]);
    })
    .await
    .unwrap();
    let mut stale = 0;
    while seen.len() < N {
        let (d, body) = next_body(&mut consumer).await;
        match d.ack() {
            Ok(()) => {}
            Err(Error::StaleDelivery { .. }) => stale += 1,
            Err(e) => panic!("ack: {e}"),
        }
        seen.insert(body);
    }
    let lost = publishing.await.unwrap();
    assert!(lost >= 1, "the publisher saw the outage");
    assert_eq!(seen.len(), N, "every confirmed message was consumed");
    assert_eq!(stale, 0, "the consumer never hands out a stale delivery");
    wait_event(&mut events, |e| matches!(e, ConnectionEvent::Recovered)).await;
    assert_eq!(conn.state(), ConnectionState::Open);
    let ch = conn.open_channel().await.unwrap();
    ch.queue_delete(&queue, Default::default()).await.unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn forced_closes_recover_a_server_named_queue_and_stale_acks_send_nothing() {
    let _broker = BROKER.lock().await;
    let conn_name = name("recovery-close");
    let conn = Connection::connect_with(recovering_config(&conn_name))
        .await
        .unwrap();
    let mut events = conn.events();
    let ch = conn.open_channel().await.unwrap();
    let exchange = name("recovery-x");
    ch.exchange_declare(&exchange, ExchangeKind::Direct, Default::default())
        .await
        .unwrap();
    let exclusive = QueueDeclareOptions {
        exclusive: true,
        ..Default::default()
    };
    let first_name = ch.queue_declare("", exclusive).await.unwrap().name;
    assert!(first_name.starts_with("amq.gen-"), "{first_name}");
    ch.queue_bind(&first_name, &exchange, "k", Default::default())
        .await
        .unwrap();
    let mut consumer = ch
        .basic_consume(&first_name, ConsumeOptions::default())
        .await
        .unwrap();
    let publish = |body: &'static str| {
        let ch = ch.clone();
        let exchange = exchange.clone();
        async move {
            let _confirm = ch
                .publish(
                    amqp_client::Publish::exchange(&exchange).routing_key("k"),
                    &Default::default(),
                    body.as_bytes(),
                )
                .await
                .unwrap();
        }
    };
    publish("one").await;
    let (unacked, body) = next_body(&mut consumer).await;
    assert_eq!(body, "one");

    // Outage 1: rabbitmqctl close_connection (a server connection.close, 320).
    let mut pid = None;
    eventually("the broker lists the connection", || {
        pid = connection_pid(&conn_name);
        std::future::ready(pid.is_some())
    })
    .await;
    let pid = pid.unwrap();
    amqp_test_support::broker_script(&["ctl", "close_connection", &pid, "recovery test"]);
    let mut renamed = None;
    let found = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(e) = events.next().await {
            match e {
                ConnectionEvent::QueueRenamed { old, new } => {
                    assert_eq!(old, first_name);
                    renamed = Some(new);
                }
                ConnectionEvent::Recovered => return,
                _ => {}
            }
        }
    })
    .await;
    assert!(found.is_ok(), "recovered");
    let second_name = renamed.expect("the server-named queue was renamed");
    assert_ne!(second_name, first_name);
    assert!(second_name.starts_with("amq.gen-"), "{second_name}");

    // The delivery from before the outage: refused, nothing sent, the channel lives on.
    assert!(unacked.is_stale());
    assert!(matches!(
        unacked.ack(),
        Err(Error::StaleDelivery { delivery_tag: 1 })
    ));
    publish("two").await;
    let (d, body) = next_body(&mut consumer).await;
    assert_eq!(body, "two", "the binding followed the new name");
    d.ack().unwrap();
    // A round trip after the acks: a wrong tag would have closed the channel with 406.
    let info = ch
        .queue_declare(
            &second_name,
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(info.consumer_count, 1);
    assert!(ch.is_open());

    // Outage 2: the management API deletes the connection.
    let mut mgmt = None;
    eventually("the management API lists the connection", || {
        mgmt = management_name(&conn_name);
        std::future::ready(mgmt.is_some())
    })
    .await;
    let encoded = mgmt.unwrap().replace(' ', "%20").replace('>', "%3E");
    let url = format!(
        "{}/api/connections/{encoded}",
        amqp_test_support::management_url()
    );
    let status = Command::new("curl")
        .args(["-sf", "-X", "DELETE", &url])
        .status()
        .unwrap();
    assert!(status.success(), "DELETE {url}");
    wait_event(&mut events, |e| matches!(e, ConnectionEvent::Recovered)).await;
    publish("three").await;
    let (d, body) = next_body(&mut consumer).await;
    assert_eq!(body, "three");
    d.ack().unwrap();

    // The application's close is final: no recovery.
    conn.close().await.unwrap();
    assert_eq!(conn.state(), ConnectionState::Closed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(conn.state(), ConnectionState::Closed);
    assert!(conn.wait_for_recovery().await.is_err());
    let other = connect().await;
    let ch = other.open_channel().await.unwrap();
    ch.exchange_delete(&exchange, Default::default())
        .await
        .unwrap();
    other.close().await.unwrap();
}

#[tokio::test]
async fn publishing_can_wait_for_recovery_up_to_a_deadline() {
    let _broker = BROKER.lock().await;
    let conn = Connection::connect_with(recovering_config(&name("recovery-wait")))
        .await
        .unwrap();
    let ch = conn.open_channel().await.unwrap();
    ch.confirm_select().await.unwrap();
    let queue = name("recovery-wait");
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.queue_declare(&queue, durable).await.unwrap();
    let mut events = conn.events();
    tokio::task::spawn_blocking(|| amqp_test_support::broker_script(&["kill"]))
        .await
        .unwrap();
    wait_event(&mut events, |e| {
        matches!(e, ConnectionEvent::RecoveryStarted { .. })
    })
    .await;
    let props = BasicProperties::default().with_delivery_mode(2);

    // Without waiting, and with a deadline that passes: Error::Recovering.
    let e = ch
        .publish(amqp_client::Publish::to_queue(&queue), &props, b"now")
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Recovering), "{e}");
    let short = PublishOptions {
        wait_for_recovery: Some(Duration::from_millis(300)),
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let e = ch
        .publish(
            amqp_client::Publish::to_queue(&queue).options(short),
            &props,
            b"soon",
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Recovering), "{e}");
    assert!(started.elapsed() >= Duration::from_millis(300));

    // With a long enough deadline the publish waits for the broker to come back.
    let patient = PublishOptions {
        wait_for_recovery: Some(Duration::from_secs(90)),
        ..Default::default()
    };
    let publishing = tokio::spawn({
        let ch = ch.clone();
        let queue = queue.clone();
        async move {
            let c = ch
                .publish(
                    amqp_client::Publish::to_queue(&queue).options(patient),
                    &props,
                    b"later",
                )
                .await?;
            c.await
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!publishing.is_finished(), "the publish waits");
    tokio::task::spawn_blocking(|| amqp_test_support::broker_script(&["start"]))
        .await
        .unwrap();
    let confirmation = tokio::time::timeout(Duration::from_secs(60), publishing)
        .await
        .expect("published within 60 s of the broker's return")
        .unwrap()
        .unwrap();
    assert!(confirmation.is_ack(), "{confirmation:?}");
    assert_eq!(ready(&conn, &queue).await, 1);
    ch.queue_delete(&queue, Default::default()).await.unwrap();
    conn.close().await.unwrap();
}
