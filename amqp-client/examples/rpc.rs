//! Request/reply over RabbitMQ's direct reply-to: a server task answers on a queue, a client
//! sends requests with `reply_to = amq.rabbitmq.reply-to` and reads the answers from that
//! pseudo-queue, consumed with no-ack on the same channel it publishes from.
//!
//! ```text
//! cargo run -p amqp-client --example rpc -- [AMQP_URL]
//! ```

use amqp_client::options::{ConsumeOptions, QueueDeclareOptions};
use amqp_client::{BasicProperties, Channel, Connection, Publish, ShortStr};

const REPLY_TO: &str = "amq.rabbitmq.reply-to";

/// Answers each request with its text upper-cased.
async fn serve(channel: Channel, queue: String) -> Result<(), amqp_client::Error> {
    let mut requests = channel
        .basic_consume(
            &queue,
            ConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
        )
        .await?;
    while let Some(request) = requests.recv().await {
        let request = request?;
        let Some(reply_to) = request.properties().reply_to.clone() else {
            continue;
        };
        let mut properties = BasicProperties::default();
        properties.correlation_id = request.properties().correlation_id.clone();
        let answer = String::from_utf8_lossy(&request.body).to_uppercase();
        let _confirm = channel
            .publish(Publish::to_queue(&reply_to), &properties, answer.as_bytes())
            .await?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("AMQP_URL").ok())
        .unwrap_or_else(|| "amqp://guest:guest@localhost:5672/%2f".to_owned());
    let conn = Connection::connect(&url).await?;

    let server_channel = conn.open_channel().await?;
    let queue = server_channel
        .queue_declare(
            "",
            QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
        )
        .await?
        .name;
    let server = tokio::spawn(serve(server_channel, queue.clone()));

    let channel = conn.open_channel().await?;
    let mut replies = channel
        .basic_consume(
            REPLY_TO,
            ConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
        )
        .await?;
    for (i, text) in ["ping", "hello", "direct reply-to"].into_iter().enumerate() {
        let correlation_id = format!("request-{i}");
        let properties = BasicProperties::default()
            .with_reply_to(ShortStr::from_static(REPLY_TO))
            .with_correlation_id(correlation_id)?;
        let _confirm = channel
            .publish(Publish::to_queue(&queue), &properties, text.as_bytes())
            .await?;
        let Some(reply) = replies.recv().await else {
            return Err("the reply stream ended".into());
        };
        let reply = reply?;
        println!(
            "{text:?} -> {:?} ({})",
            String::from_utf8_lossy(&reply.body),
            reply.properties().correlation_id.as_deref().unwrap_or("-")
        );
    }
    conn.close().await?;
    let _ = server.await;
    Ok(())
}
