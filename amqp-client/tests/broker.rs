//! Every channel method against the real broker, with assertions on what the broker then
//! holds or does.

mod common;

use std::collections::HashSet;

use amqp_client::options::*;
use amqp_client::*;
use common::*;
use futures_util::StreamExt;

fn props() -> BasicProperties {
    BasicProperties::default()
}

async fn publish_confirmed(ch: &Channel, exchange: &str, key: &str, body: &[u8]) -> Confirmation {
    ch.publish(
        amqp_client::Publish::exchange(exchange).routing_key(key),
        &props(),
        body,
    )
    .await
    .unwrap()
    .await
    .unwrap()
}

#[tokio::test]
async fn connection_reports_server_and_negotiated_values() {
    let conn = Connection::connect_with(config().with_heartbeat(15).with_channel_max(77))
        .await
        .unwrap();
    assert_eq!(
        conn.server_properties().get_str("product"),
        Some("RabbitMQ")
    );
    let n = conn.negotiated();
    assert_eq!(n.heartbeat, std::time::Duration::from_secs(15));
    assert_eq!(n.channel_max, 77);
    assert!(n.frame_max >= 4096);
    assert!(conn.is_open());
    conn.close().await.unwrap();
    assert!(!conn.is_open());
    // Once closed, opening a channel fails with the user's own close.
    let e = conn.open_channel().await.unwrap_err();
    assert_eq!(e.close_reason().unwrap().initiator, Initiator::User);
}

#[tokio::test]
async fn exchange_declare_passive_and_delete() {
    let conn = connect().await;
    let ch = conn.open_channel().await.unwrap();
    let ex = name("ex-decl");
    ch.exchange_declare(&ex, ExchangeKind::Topic, ExchangeDeclareOptions::default())
        .await
        .unwrap();
    // Redeclaring with the same type is fine; passive finds it.
    let passive = ExchangeDeclareOptions {
        passive: true,
        ..Default::default()
    };
    ch.exchange_declare(&ex, ExchangeKind::Topic, passive.clone())
        .await
        .unwrap();
    // A different type is refused, and only that channel closes.
    let other = conn.open_channel().await.unwrap();
    let e = other
        .exchange_declare(&ex, ExchangeKind::Fanout, ExchangeDeclareOptions::default())
        .await
        .unwrap_err();
    assert_channel_error(&e, ReplyCode::PRECONDITION_FAILED);
    assert_eq!(
        e.close_reason().unwrap().method_name(),
        Some("exchange.declare")
    );

    ch.exchange_delete(&ex, ExchangeDeleteOptions::default())
        .await
        .unwrap();
    let check = conn.open_channel().await.unwrap();
    let e = check
        .exchange_declare(&ex, ExchangeKind::Topic, passive)
        .await
        .unwrap_err();
    assert_channel_error(&e, ReplyCode::NOT_FOUND);
    conn.close().await.unwrap();
}

#[tokio::test]
async fn exchange_delete_if_unused_refuses_a_bound_exchange() {
    let conn = connect().await;
    let ch = conn.open_channel().await.unwrap();
    let ex = name("ex-unused");
    ch.exchange_declare(&ex, ExchangeKind::Direct, ExchangeDeclareOptions::default())
        .await
        .unwrap();
    let q = queue(&ch, "q-unused").await;
    ch.queue_bind(&q, &ex, "k", BindOptions::default())
        .await
        .unwrap();
    let e = ch
        .exchange_delete(&ex, ExchangeDeleteOptions { if_unused: true })
        .await
        .unwrap_err();
    assert_channel_error(&e, ReplyCode::PRECONDITION_FAILED);
    let ch = conn.open_channel().await.unwrap();
    ch.exchange_delete(&ex, ExchangeDeleteOptions::default())
        .await
        .unwrap();
    ch.queue_delete(&q, QueueDeleteOptions::default())
        .await
        .unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn exchange_to_exchange_bindings_route_and_unbind_stops_them() {
    let conn = connect().await;
    let ch = conn.open_channel().await.unwrap();
    ch.confirm_select().await.unwrap();
    let src = name("ex-src");
    let dst = name("ex-dst");
    ch.exchange_declare(
        &src,
        ExchangeKind::Fanout,
        ExchangeDeclareOptions::default(),
    )
    .await
    .unwrap();
    ch.exchange_declare(
        &dst,
        ExchangeKind::Direct,
        ExchangeDeclareOptions::default(),
    )
    .await
    .unwrap();
    let q = queue(&ch, "q-e2e").await;
    ch.queue_bind(&q, &dst, "k", BindOptions::default())
        .await
        .unwrap();
    ch.exchange_bind(&dst, &src, "", BindOptions::default())
        .await
        .unwrap();

    assert!(publish_confirmed(&ch, &src, "k", b"one").await.is_ack());
    assert!(publish_confirmed(&ch, &src, "other", b"two").await.is_ack());
    assert_eq!(
        ready(&conn, &q).await,
        1,
        "only the matching key reaches the queue"
    );
    let got = ch
        .basic_get(&q, GetOptions { no_ack: true })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&got.delivery.body[..], b"one");
    assert_eq!(got.delivery.exchange, src.as_str());

    ch.exchange_unbind(&dst, &src, "", BindOptions::default())
        .await
        .unwrap();
    assert!(publish_confirmed(&ch, &src, "k", b"three").await.is_ack());
    assert_eq!(ready(&conn, &q).await, 0);

    ch.queue_delete(&q, QueueDeleteOptions::default())
        .await
        .unwrap();
    ch.exchange_delete(&src, ExchangeDeleteOptions::default())
        .await
        .unwrap();
    ch.exchange_delete(&dst, ExchangeDeleteOptions::default())
        .await
        .unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn queue_bind_unbind_with_topic_and_headers() {
    let conn = connect().await;
    let ch = conn.open_channel().await.unwrap();
    ch.confirm_select().await.unwrap();
    let topic = name("ex-topic");
    ch.exchange_declare(
        &topic,
        ExchangeKind::Topic,
        ExchangeDeclareOptions::default(),
    )
    .await
    .unwrap();
    let q = queue(&ch, "q-topic").await;
    ch.queue_bind(&q, &topic, "logs.*.error", BindOptions::default())
        .await
        .unwrap();
    publish_confirmed(&ch, &topic, "logs.db.error", b"a").await;
    publish_confirmed(&ch, &topic, "logs.db.info", b"b").await;
    assert_eq!(ready(&conn, &q).await, 1);
    ch.queue_unbind(&q, &topic, "logs.*.error", BindOptions::default())
        .await
        .unwrap();
    publish_confirmed(&ch, &topic, "logs.db.error", b"c").await;
    assert_eq!(ready(&conn, &q).await, 1);

    let headers = name("ex-headers");
    ch.exchange_declare(
        &headers,
        ExchangeKind::Headers,
        ExchangeDeclareOptions::default(),
    )
    .await
    .unwrap();
    let args = FieldTable::new()
        .with("x-match", "all")
        .unwrap()
        .with("kind", "invoice")
        .unwrap();
    ch.queue_bind(&q, &headers, "", BindOptions { arguments: args })
        .await
        .unwrap();
    let matching = props().with_headers(FieldTable::new().with("kind", "invoice").unwrap());
    let other = props().with_headers(FieldTable::new().with("kind", "receipt").unwrap());
    for p in [&matching, &other] {
        ch.publish(amqp_client::Publish::exchange(&headers), p, b"h")
            .await
            .unwrap()
            .await
            .unwrap();
    }
    assert_eq!(ready(&conn, &q).await, 2);

    ch.queue_delete(&q, QueueDeleteOptions::default())
        .await
        .unwrap();
    ch.exchange_delete(&topic, ExchangeDeleteOptions::default())
        .await
        .unwrap();
    ch.exchange_delete(&headers, ExchangeDeleteOptions::default())
        .await
        .unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn server_named_queue_purge_and_delete_counts() {
    let conn = connect().await;
    let ch = conn.open_channel().await.unwrap();
    ch.confirm_select().await.unwrap();
    let q = ch
        .queue_declare(
            "",
            QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(q.name.starts_with("amq.gen-"), "{}", q.name);
    assert_eq!((q.message_count, q.consumer_count), (0, 0));
    for i in 0..3u8 {
        publish_confirmed(&ch, "", &q.name, &[i]).await;
    }
    let info = ch
        .queue_declare(
            &q.name,
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(info.message_count, 3);
    assert_eq!(ch.queue_purge(&q.name).await.unwrap(), 3);
    assert_eq!(ready(&conn, &q.name).await, 0);
    publish_confirmed(&ch, "", &q.name, b"x").await;
    // if_empty refuses a queue with a message in it.
    let e = ch
        .queue_delete(
            &q.name,
            QueueDeleteOptions {
                if_empty: true,
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_channel_error(&e, ReplyCode::PRECONDITION_FAILED);
    let ch = conn.open_channel().await.unwrap();
    assert_eq!(
        ch.queue_delete(&q.name, QueueDeleteOptions::default())
            .await
            .unwrap(),
        1
    );
    assert!(!queue_exists(&conn, &q.name).await);
    conn.close().await.unwrap();
}

#[tokio::test]
async fn invalid_names_are_refused_before_sending() {
    let conn = connect().await;
    let ch = conn.open_channel().await.unwrap();
    for bad in ["has space", "slash/name", &"x".repeat(128)] {
        let e = ch
            .queue_declare(bad, QueueDeclareOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{bad}: {e}");
        let e = ch
            .publish(
                amqp_client::Publish::exchange(bad).routing_key("k"),
                &props(),
                b"",
            )
            .await
            .unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{bad}: {e}");
    }
    let e = ch
        .exchange_declare("", ExchangeKind::Direct, ExchangeDeclareOptions::default())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("must not be empty"), "{e}");
    // Nothing reached the broker: the channel is still open and usable.
    assert!(ch.is_open());
    ch.basic_qos(1, QosOptions::default()).await.unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn get_ack_nack_reject_and_recover() {
    let conn = connect().await;
    let ch = conn.open_channel().await.unwrap();
    ch.confirm_select().await.unwrap();
    let q = queue(&ch, "q-get").await;
    assert!(ch
        .basic_get(&q, GetOptions::default())
        .await
        .unwrap()
        .is_none());
    for b in [b"1", b"2", b"3", b"4"] {
        publish_confirmed(&ch, "", &q, b).await;
    }

    let m = ch
        .basic_get(&q, GetOptions::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&m.delivery.body[..], b"1");
    assert_eq!(m.message_count, 3);
    assert!(!m.delivery.redelivered);
    m.delivery.reject(true).unwrap();
    // Back in the queue, marked redelivered.
    let m = ch
        .basic_get(&q, GetOptions::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&m.delivery.body[..], b"1");
    assert!(m.delivery.redelivered);
    m.delivery.ack().unwrap();

    let m = ch
        .basic_get(&q, GetOptions::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&m.delivery.body[..], b"2");
    m.delivery.nack(false).unwrap(); // dropped
    let m = ch
        .basic_get(&q, GetOptions::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&m.delivery.body[..], b"3");
    ch.basic_nack(m.delivery.delivery_tag, NackOptions::default())
        .unwrap(); // requeued
                   // basic.recover hands back what is unacknowledged.
    let m = ch
        .basic_get(&q, GetOptions::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ready(&conn, &q).await, 1);
    ch.basic_recover(true).await.unwrap();
    assert_eq!(
        ready(&conn, &q).await,
        2,
        "message {} is back",
        m.delivery.body[0]
    );
    let m = ch
        .basic_get(&q, GetOptions::default())
        .await
        .unwrap()
        .unwrap();
    ch.basic_ack(m.delivery.delivery_tag, false).unwrap();
    let m = ch
        .basic_get(&q, GetOptions::default())
        .await
        .unwrap()
        .unwrap();
    ch.basic_reject(m.delivery.delivery_tag, false).unwrap();
    assert_eq!(ready(&conn, &q).await, 0);
    ch.queue_delete(&q, QueueDeleteOptions::default())
        .await
        .unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn transactions_commit_and_rollback() {
    let conn = connect().await;
    let ch = conn.open_channel().await.unwrap();
    let q = queue(&ch, "q-tx").await;
    ch.tx_select().await.unwrap();
    let _confirm = ch
        .publish(amqp_client::Publish::to_queue(&q), &props(), b"rolled back")
        .await
        .unwrap();
    ch.tx_rollback().await.unwrap();
    assert_eq!(ready(&conn, &q).await, 0);
    let _confirm = ch
        .publish(amqp_client::Publish::to_queue(&q), &props(), b"committed")
        .await
        .unwrap();
    ch.tx_commit().await.unwrap();
    assert_eq!(ready(&conn, &q).await, 1);
    ch.queue_delete(&q, QueueDeleteOptions::default())
        .await
        .unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn channel_flow_on_is_confirmed() {
    let conn = connect().await;
    let ch = conn.open_channel().await.unwrap();
    assert!(ch.channel_flow(true).await.unwrap());
    conn.close().await.unwrap();
}

#[tokio::test]
async fn large_bodies_are_split_and_reassembled() {
    let conn = Connection::connect_with(config().with_frame_max(4096))
        .await
        .unwrap();
    assert_eq!(conn.negotiated().frame_max, 4096);
    let ch = conn.open_channel().await.unwrap();
    ch.confirm_select().await.unwrap();
    let q = queue(&ch, "q-big").await;
    let body: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let p = props()
        .with_content_type(ShortStr::from_static("application/octet-stream"))
        .with_message_id(ShortStr::from_static("big-1"));
    let c = ch
        .publish(amqp_client::Publish::to_queue(&q), &p, &body)
        .await
        .unwrap();
    assert!(c.await.unwrap().is_ack());
    let got = ch
        .basic_get(&q, GetOptions { no_ack: true })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.delivery.body.len(), body.len());
    assert!(got.delivery.body[..] == body[..]);
    assert_eq!(
        got.delivery.properties().message_id.as_deref(),
        Some("big-1")
    );
    ch.queue_delete(&q, QueueDeleteOptions::default())
        .await
        .unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn qos_limits_unacknowledged_deliveries() {
    let conn = connect().await;
    let ch = conn.open_channel().await.unwrap();
    ch.confirm_select().await.unwrap();
    let q = queue(&ch, "q-qos").await;
    for i in 0..10u8 {
        publish_confirmed(&ch, "", &q, &[i]).await;
    }
    ch.basic_qos(3, QosOptions::default()).await.unwrap();
    let mut consumer = ch
        .basic_consume(&q, ConsumeOptions::default())
        .await
        .unwrap();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(consumer.next().await.unwrap().unwrap());
    }
    // With three unacknowledged, the broker holds the other seven back.
    assert_eq!(ready(&conn, &q).await, 7);
    held.last().unwrap().ack_multiple().unwrap();
    let mut seen: Vec<u8> = held.iter().map(|d| d.body[0]).collect();
    for _ in 0..7 {
        let d = consumer.next().await.unwrap().unwrap();
        seen.push(d.body[0]);
        d.ack().unwrap();
    }
    assert_eq!(seen, (0..10).collect::<Vec<u8>>());
    consumer.cancel().await.unwrap();
    assert!(consumer.next().await.is_none(), "cancelled consumer ends");
    assert_eq!(ready(&conn, &q).await, 0);
    ch.queue_delete(&q, QueueDeleteOptions::default())
        .await
        .unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn consumer_tags_cancel_and_consumer_count() {
    let conn = connect().await;
    let ch = conn.open_channel().await.unwrap();
    let q = queue(&ch, "q-ctag").await;
    let tag = name("ctag");
    let consumer = ch
        .basic_consume(
            &q,
            ConsumeOptions {
                consumer_tag: tag.clone(),
                no_ack: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(consumer.tag(), tag);
    let generated = ch
        .basic_consume(&q, ConsumeOptions::default())
        .await
        .unwrap();
    assert!(
        generated.tag().starts_with("amq.ctag-"),
        "{}",
        generated.tag()
    );
    let info = ch
        .queue_declare(
            &q,
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(info.consumer_count, 2);
    ch.basic_cancel(&tag).await.unwrap();
    drop(generated); // cancels in the background
    eventually("both consumers gone", || {
        let ch = ch.clone();
        let q = q.clone();
        async move {
            ch.queue_declare(
                &q,
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .consumer_count
                == 0
        }
    })
    .await;
    ch.queue_delete(&q, QueueDeleteOptions::default())
        .await
        .unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn server_cancel_ends_the_stream_with_a_reason() {
    let conn = connect().await;
    let ch = conn.open_channel().await.unwrap();
    let q = queue(&ch, "q-srvcancel").await;
    let mut consumer = ch
        .basic_consume(&q, ConsumeOptions::default())
        .await
        .unwrap();
    let other = conn.open_channel().await.unwrap();
    other
        .queue_delete(&q, QueueDeleteOptions::default())
        .await
        .unwrap();
    match consumer.next().await {
        Some(Err(Error::ConsumerCancelled(tag))) => assert_eq!(tag, consumer.tag()),
        other => panic!("expected a cancellation, got {other:?}"),
    }
    assert!(consumer.next().await.is_none());
    assert!(ch.is_open(), "the channel survives its consumer");
    conn.close().await.unwrap();
}

#[tokio::test]
async fn channel_error_leaves_connection_and_other_channels_working() {
    let conn = connect().await;
    let good = conn.open_channel().await.unwrap();
    let bad = conn.open_channel().await.unwrap();
    let q = name("q-conflict");
    good.queue_declare(&q, QueueDeclareOptions::default())
        .await
        .unwrap();
    let e = bad
        .queue_declare(
            &q,
            QueueDeclareOptions {
                arguments: FieldTable::new().with("x-max-length", 5i32).unwrap(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_channel_error(&e, ReplyCode::PRECONDITION_FAILED);
    let reason = e.close_reason().unwrap();
    assert_eq!(reason.scope, Scope::Channel);
    assert_eq!(reason.initiator, Initiator::Server);
    assert_eq!(reason.method_name(), Some("queue.declare"));
    assert!(!e.is_connection_error());
    // The failed channel reports the same reason from now on.
    assert!(!bad.is_open());
    let again = bad.queue_purge(&q).await.unwrap_err();
    assert_eq!(again.reply_code(), Some(ReplyCode::PRECONDITION_FAILED));
    let e = bad
        .publish(amqp_client::Publish::to_queue(&q), &props(), b"x")
        .await
        .unwrap_err();
    assert_eq!(e.reply_code(), Some(ReplyCode::PRECONDITION_FAILED));
    // The rest works.
    assert!(conn.is_open());
    good.confirm_select().await.unwrap();
    assert!(publish_confirmed(&good, "", &q, b"still fine")
        .await
        .is_ack());
    let fresh = conn.open_channel().await.unwrap();
    assert_eq!(fresh.queue_purge(&q).await.unwrap(), 1);
    fresh
        .queue_delete(&q, QueueDeleteOptions::default())
        .await
        .unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn many_channels_have_distinct_numbers_and_close_cleanly() {
    let conn = connect().await;
    let mut channels = Vec::new();
    for _ in 0..50 {
        channels.push(conn.open_channel().await.unwrap());
    }
    let ids: HashSet<u16> = channels.iter().map(Channel::id).collect();
    assert_eq!(ids.len(), 50);
    for ch in &channels {
        ch.close().await.unwrap();
        assert!(!ch.is_open());
    }
    // Closing twice is fine.
    channels[0].close().await.unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn dropping_the_connection_closes_it_in_the_background() {
    let observer = connect().await;
    let conn = connect().await;
    let ch = conn.open_channel().await.unwrap();
    let q = ch
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
    assert!(queue_exists(&observer, &q).await);
    drop(ch);
    drop(conn);
    // The broker deletes an exclusive queue when its connection closes.
    eventually("exclusive queue removed", || {
        let observer = observer.clone();
        let q = q.clone();
        async move { !queue_exists(&observer, &q).await }
    })
    .await;
    observer.close().await.unwrap();
}

#[tokio::test]
async fn dropping_a_channel_closes_it_in_the_background() {
    let conn = connect().await;
    let ch = conn.open_channel().await.unwrap();
    let q = queue(&ch, "q-chdrop").await;
    let holder = conn.open_channel().await.unwrap();
    let exclusive = ConsumeOptions {
        exclusive: true,
        ..Default::default()
    };
    let consumer = holder.basic_consume(&q, exclusive.clone()).await.unwrap();
    let e = conn
        .open_channel()
        .await
        .unwrap()
        .basic_consume(&q, exclusive.clone())
        .await
        .unwrap_err();
    assert_channel_error(&e, ReplyCode::ACCESS_REFUSED);
    drop(consumer);
    drop(holder);
    // Once the channel is gone, its exclusive consumer is too.
    eventually("exclusive consumer released", || {
        let conn = conn.clone();
        let q = q.clone();
        let exclusive = exclusive.clone();
        async move {
            let ch = conn.open_channel().await.unwrap();
            ch.basic_consume(&q, exclusive).await.is_ok()
        }
    })
    .await;
    ch.queue_delete(&q, QueueDeleteOptions::default())
        .await
        .unwrap();
    conn.close().await.unwrap();
}
