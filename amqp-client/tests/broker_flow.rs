//! Publisher confirms, returns, consumer back-pressure, login failures and direct reply-to
//! against the real broker.

mod common;

use amqp_client::options::*;
use amqp_client::*;
use common::*;
use futures_util::StreamExt;

fn props() -> BasicProperties {
    BasicProperties::default()
}

#[tokio::test]
async fn ten_thousand_pipelined_publishes_are_all_acked() {
    let conn = connect().await;
    let ch = conn.open_channel().await.unwrap();
    ch.confirm_select().await.unwrap();
    let q = queue(&ch, "q-confirms").await;
    let mut confirms = Vec::with_capacity(10_000);
    for i in 0..10_000u32 {
        let c = ch
            .publish(
                amqp_client::Publish::to_queue(&q),
                &props(),
                &i.to_be_bytes(),
            )
            .await
            .unwrap();
        assert_eq!(c.delivery_tag(), Some(u64::from(i) + 1));
        confirms.push(c);
    }
    assert!(ch.wait_for_confirms().await.unwrap());
    assert_eq!(ch.unconfirmed(), 0);
    for c in confirms {
        assert_eq!(c.await.unwrap(), Confirmation::Ack);
    }
    assert_eq!(ready(&conn, &q).await, 10_000);
    delete_queue(&conn, &q).await;
    conn.close().await.unwrap();
}

#[tokio::test]
async fn publishes_without_confirm_mode_resolve_at_once() {
    let conn = connect().await;
    let ch = conn.open_channel().await.unwrap();
    let q = queue(&ch, "q-noconfirm").await;
    let c = ch
        .publish(amqp_client::Publish::to_queue(&q), &props(), b"x")
        .await
        .unwrap();
    assert_eq!(c.delivery_tag(), None);
    assert_eq!(c.await.unwrap(), Confirmation::NotRequested);
    assert!(ch.wait_for_confirms().await.unwrap());
    delete_queue(&conn, &q).await;
    conn.close().await.unwrap();
}

#[tokio::test]
async fn full_queue_with_reject_publish_nacks() {
    let conn = connect().await;
    let ch = conn.open_channel().await.unwrap();
    ch.confirm_select().await.unwrap();
    let args = FieldTable::new()
        .with("x-max-length", 2i32)
        .unwrap()
        .with("x-overflow", "reject-publish")
        .unwrap();
    let q = queue_with(&ch, "q-nack", args).await;
    let mut verdicts = Vec::new();
    for i in 0..5u8 {
        let c = ch
            .publish(amqp_client::Publish::to_queue(&q), &props(), &[i])
            .await
            .unwrap();
        verdicts.push(c.await.unwrap());
    }
    assert_eq!(
        verdicts,
        vec![
            Confirmation::Ack,
            Confirmation::Ack,
            Confirmation::Nack,
            Confirmation::Nack,
            Confirmation::Nack
        ]
    );
    assert_eq!(ready(&conn, &q).await, 2);
    // wait_for_confirms reports that something was nacked.
    let c = ch
        .publish(amqp_client::Publish::to_queue(&q), &props(), b"more")
        .await
        .unwrap();
    drop(c);
    assert!(!ch.wait_for_confirms().await.unwrap());
    delete_queue(&conn, &q).await;
    conn.close().await.unwrap();
}

/// Two tasks waiting for confirms at once both learn of the nack among the messages they
/// cover (the answer is not handed to whichever wakes first), and a later call starts afresh.
#[tokio::test]
async fn concurrent_wait_for_confirms_each_get_their_answer() {
    let conn = connect().await;
    let ch = conn.open_channel().await.unwrap();
    ch.confirm_select().await.unwrap();
    let args = FieldTable::new()
        .with("x-max-length", 1i32)
        .unwrap()
        .with("x-overflow", "reject-publish")
        .unwrap();
    let q = queue_with(&ch, "q-wait-both", args).await;
    let props = BasicProperties::default()
        .with_content_type("text/plain")
        .unwrap()
        .with_message_id(String::from("m"))
        .unwrap();
    for body in [b"kept", b"nack"] {
        let _confirm = ch
            .publish(Publish::to_queue(&q), &props, body)
            .await
            .unwrap();
    }
    let (a, b) = tokio::join!(ch.wait_for_confirms(), ch.wait_for_confirms());
    assert_eq!((a.unwrap(), b.unwrap()), (false, false));
    // Covered by the calls that returned: the next one answers for new messages only.
    ch.queue_purge(&q).await.unwrap();
    let _confirm = ch
        .publish(Publish::to_queue(&q), &props, b"fits")
        .await
        .unwrap();
    assert!(ch.wait_for_confirms().await.unwrap());
    let mut consumer = ch
        .basic_consume(&q, ConsumeOptions::default())
        .await
        .unwrap();
    let delivery = consumer.recv().await.unwrap().unwrap();
    assert_eq!(&delivery.body[..], b"fits");
    assert_eq!(
        delivery.properties().content_type.as_deref(),
        Some("text/plain")
    );
    delivery.ack().unwrap();
    delete_queue(&conn, &q).await;
    conn.close().await.unwrap();
}

#[tokio::test]
async fn mandatory_unroutable_message_is_returned() {
    let conn = connect().await;
    let ch = conn.open_channel().await.unwrap();
    let mut returns = ch.returns();
    ch.confirm_select().await.unwrap();
    let key = name("nowhere");
    let p = props().with_correlation_id(ShortStr::from_static("corr-7"));
    let c = ch
        .publish(
            amqp_client::Publish::to_queue(&key).options(PublishOptions {
                mandatory: true,
                ..Default::default()
            }),
            &p,
            b"lost",
        )
        .await
        .unwrap();
    match c.await.unwrap() {
        Confirmation::Returned(m) => {
            assert_eq!(m.reply_code, ReplyCode::NO_ROUTE);
            assert_eq!(m.routing_key, key.as_str());
            assert_eq!(&m.body[..], b"lost");
            assert_eq!(m.properties.correlation_id.as_deref(), Some("corr-7"));
        }
        other => panic!("expected the message back, got {other:?}"),
    }
    let r = returns.next().await.unwrap();
    assert_eq!(r.reply_code, ReplyCode::NO_ROUTE);
    assert_eq!(&r.body[..], b"lost");

    // Routable mandatory messages are plain acks; unroutable non-mandatory ones too.
    let q = queue(&ch, "q-mandatory").await;
    let ok = ch
        .publish(
            amqp_client::Publish::to_queue(&q).options(PublishOptions {
                mandatory: true,
                ..Default::default()
            }),
            &p,
            b"ok",
        )
        .await
        .unwrap();
    assert_eq!(ok.await.unwrap(), Confirmation::Ack);
    let dropped = ch
        .publish(amqp_client::Publish::to_queue(&key), &p, b"gone")
        .await
        .unwrap();
    assert_eq!(dropped.await.unwrap(), Confirmation::Ack);
    delete_queue(&conn, &q).await;
    conn.close().await.unwrap();
}

#[tokio::test]
async fn slow_consumer_bounds_client_memory() {
    const TOTAL: usize = 100_000;
    const BUFFER: usize = 256;
    let conn = Connection::connect_with(config().with_consumer_buffer(BUFFER))
        .await
        .unwrap();
    let publisher = conn.open_channel().await.unwrap();
    let q = queue(&publisher, "q-backpressure").await;
    publisher.confirm_select().await.unwrap();
    let body = vec![b'x'; 512];
    for _ in 0..TOTAL {
        let c = publisher
            .publish(amqp_client::Publish::to_queue(&q), &props(), &body)
            .await
            .unwrap();
        drop(c);
    }
    assert!(publisher.wait_for_confirms().await.unwrap());
    assert_eq!(ready(&conn, &q).await, TOTAL as u32);

    // No prefetch limit: the broker pushes as fast as the socket takes it.
    let ch = conn.open_channel().await.unwrap();
    let mut consumer = ch
        .basic_consume(&q, ConsumeOptions::default())
        .await
        .unwrap();
    assert_eq!(consumer.capacity(), BUFFER);
    // Wait (without polling the consumer) until its buffer has filled.
    eventually("consumer buffer filled", || {
        let n = consumer.buffered_len();
        async move { n >= BUFFER }
    })
    .await;
    // Reads are paused: the client holds what it buffered and nothing more.
    for _ in 0..20 {
        tokio::task::yield_now().await;
        assert!(
            consumer.buffered_len() <= BUFFER,
            "buffered {}",
            consumer.buffered_len()
        );
    }
    // The broker still holds most of the messages: the client did not swallow them.
    let observer = connect().await;
    let left = ready(&observer, &q).await as usize;
    assert!(
        left > TOTAL / 2,
        "the broker should still hold most messages, holds {left}"
    );

    // Draining resumes reading; every message arrives exactly once and the buffer never
    // exceeds its bound.
    let mut received = 0usize;
    let mut max_buffered = 0usize;
    while received < TOTAL {
        max_buffered = max_buffered.max(consumer.buffered_len());
        let d = consumer.next().await.unwrap().unwrap();
        assert_eq!(d.body.len(), 512);
        received += 1;
        if received % 1000 == 0 {
            d.ack_multiple().unwrap();
        }
    }
    assert!(max_buffered <= BUFFER, "buffered up to {max_buffered}");
    assert_eq!(received, TOTAL);
    assert_eq!(ready(&observer, &q).await, 0);
    consumer.cancel().await.unwrap();
    delete_queue(&observer, &q).await;
    observer.close().await.unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn consumer_buffer_is_bounded_in_bytes_too() {
    let conn = Connection::connect_with(config().with_consumer_buffer_bytes(64 * 1024))
        .await
        .unwrap();
    let ch = conn.open_channel().await.unwrap();
    ch.confirm_select().await.unwrap();
    let q = queue(&ch, "q-bytes").await;
    let body = vec![7u8; 16 * 1024];
    for _ in 0..200 {
        let _confirm = ch
            .publish(amqp_client::Publish::to_queue(&q), &props(), &body)
            .await
            .unwrap();
    }
    assert!(ch.wait_for_confirms().await.unwrap());
    let consumer_ch = conn.open_channel().await.unwrap();
    let mut consumer = consumer_ch
        .basic_consume(&q, ConsumeOptions::default())
        .await
        .unwrap();
    eventually("buffer filled", || {
        let n = consumer.buffered_len();
        async move { n >= 4 }
    })
    .await;
    for _ in 0..20 {
        tokio::task::yield_now().await;
        assert!(
            consumer.buffered_len() <= 4,
            "{} buffered",
            consumer.buffered_len()
        );
    }
    for _ in 0..200 {
        let d = consumer.next().await.unwrap().unwrap();
        assert_eq!(d.body.len(), body.len());
        d.ack().unwrap();
    }
    delete_queue(&conn, &q).await;
    conn.close().await.unwrap();
}

#[tokio::test]
async fn dropped_consumer_hands_buffered_messages_back() {
    let conn = Connection::connect_with(config().with_consumer_buffer(8))
        .await
        .unwrap();
    let ch = conn.open_channel().await.unwrap();
    ch.confirm_select().await.unwrap();
    let q = queue(&ch, "q-dropconsumer").await;
    for i in 0..50u8 {
        let _confirm = ch
            .publish(amqp_client::Publish::to_queue(&q), &props(), &[i])
            .await
            .unwrap();
    }
    assert!(ch.wait_for_confirms().await.unwrap());
    let consumer_ch = conn.open_channel().await.unwrap();
    let mut consumer = consumer_ch
        .basic_consume(&q, ConsumeOptions::default())
        .await
        .unwrap();
    let first = consumer.next().await.unwrap().unwrap();
    first.ack().unwrap();
    drop(consumer);
    // Everything but the acknowledged message is back in the queue.
    eventually("messages requeued", || {
        let conn = conn.clone();
        let q = q.clone();
        async move { ready(&conn, &q).await == 49 }
    })
    .await;
    delete_queue(&conn, &q).await;
    conn.close().await.unwrap();
}

#[tokio::test]
async fn wrong_password_is_an_authentication_error() {
    let refused = |e: &Error| {
        assert!(
            matches!(e, Error::Authentication(msg) if msg.contains("ACCESS_REFUSED")),
            "{e:?}"
        );
        assert!(e.is_connection_error());
    };
    let cfg = config().with_credentials("guest", "definitely-not-the-password");
    let e = Connection::connect_with(cfg).await.unwrap_err();
    refused(&e);
    let cfg = config()
        .with_credentials("no-such-user", "x")
        .with_auth_mechanisms(vec![SaslMechanism::AmqPlain]);
    let e = Connection::connect_with(cfg).await.unwrap_err();
    refused(&e);
}

#[tokio::test]
async fn amqplain_login_works() {
    let cfg = config().with_auth_mechanisms(vec![SaslMechanism::AmqPlain]);
    let conn = Connection::connect_with(cfg).await.unwrap();
    conn.open_channel().await.unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn unknown_vhost_is_refused() {
    let cfg = config().with_vhost(name("no-such-vhost"));
    let e = Connection::connect_with(cfg).await.unwrap_err();
    let reason = e.close_reason().unwrap_or_else(|| panic!("{e}"));
    assert_eq!(reason.initiator, Initiator::Server);
    assert_eq!(reason.scope, Scope::Connection);
    assert!(
        matches!(
            reason.code,
            ReplyCode::NOT_ALLOWED | ReplyCode::ACCESS_REFUSED
        ),
        "{e}"
    );
    assert!(reason.text.contains("vhost"), "{e}");
}

#[tokio::test]
async fn connect_to_a_closed_port_fails_fast() {
    let port = amqp_test_support::free_port();
    let e = Connection::connect(&format!("amqp://127.0.0.1:{port}"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Io(_)), "{e}");
}

#[tokio::test]
async fn rpc_over_direct_reply_to() {
    let conn = connect().await;
    // The server: answers each request with its body reversed.
    let server_ch = conn.open_channel().await.unwrap();
    let rpc_q = queue(&server_ch, "q-rpc").await;
    let mut requests = server_ch
        .basic_consume(
            &rpc_q,
            ConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let server = tokio::spawn(async move {
        for _ in 0..3 {
            let req = requests.next().await.unwrap().unwrap();
            let reply_to = req.properties().reply_to.clone().unwrap();
            let mut body = req.body.to_vec();
            body.reverse();
            let p = BasicProperties::default()
                .with_correlation_id(req.properties().correlation_id.clone().unwrap());
            let _confirm = server_ch
                .publish(amqp_client::Publish::to_queue(&reply_to), &p, &body)
                .await
                .unwrap();
        }
    });

    // The client: consume the pseudo-queue with no-ack on the publishing channel.
    let ch = conn.open_channel().await.unwrap();
    let mut replies = ch
        .basic_consume(
            "amq.rabbitmq.reply-to",
            ConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    for (i, word) in ["abc", "hello", "rabbit"].iter().enumerate() {
        let corr = format!("req-{i}");
        let p = BasicProperties::default()
            .with_reply_to(ShortStr::from_static("amq.rabbitmq.reply-to"))
            .with_correlation_id(ShortStr::new(&corr).unwrap());
        let _confirm = ch
            .publish(amqp_client::Publish::to_queue(&rpc_q), &p, word.as_bytes())
            .await
            .unwrap();
        let reply = replies.next().await.unwrap().unwrap();
        assert_eq!(
            reply.properties().correlation_id.as_deref(),
            Some(corr.as_str())
        );
        let expected: String = word.chars().rev().collect();
        assert_eq!(&reply.body[..], expected.as_bytes());
    }
    server.await.unwrap();
    delete_queue(&conn, &rpc_q).await;
    conn.close().await.unwrap();
}
