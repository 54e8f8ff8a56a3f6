//! A first end-to-end check against the broker.
use amqp_client::options::*;
use amqp_client::*;
use futures_util::StreamExt;

#[tokio::test]
async fn publish_and_consume_round_trip() {
    let conn = Connection::connect(&amqp_test_support::amqp_url())
        .await
        .unwrap();
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
        .unwrap();
    ch.confirm_select().await.unwrap();
    let c = ch
        .basic_publish(
            "",
            &q.name,
            PublishOptions::default(),
            &BasicProperties::default(),
            b"hi",
        )
        .await
        .unwrap();
    assert_eq!(c.await.unwrap(), Confirmation::Ack);
    let mut consumer = ch
        .basic_consume(&q.name, ConsumeOptions::default())
        .await
        .unwrap();
    let d = consumer.next().await.unwrap().unwrap();
    assert_eq!(&d.body[..], b"hi");
    d.ack().unwrap();
    conn.close().await.unwrap();
}
