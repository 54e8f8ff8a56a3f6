//! Publishes messages with publisher confirms.
//!
//! ```text
//! cargo run -p amqp-client --example publish -- [AMQP_URL] [QUEUE] [COUNT]
//! ```

use amqp_client::options::QueueDeclareOptions;
use amqp_client::{BasicProperties, Connection, Publish};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .or_else(|| std::env::var("AMQP_URL").ok())
        .unwrap_or_else(|| "amqp://guest:guest@localhost:5672/%2f".to_owned());
    let queue = args.next().unwrap_or_else(|| "example.jobs".to_owned());
    let count: u32 = args.next().map_or(Ok(10), |n| n.parse())?;

    let conn = Connection::connect(&url).await?;
    let channel = conn.open_channel().await?;
    channel
        .queue_declare(
            &queue,
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
        )
        .await?;
    channel.confirm_select().await?;

    let properties = BasicProperties::default()
        .with_content_type("text/plain")?
        .with_delivery_mode(2);
    let mut confirms = Vec::new();
    for i in 0..count {
        let body = format!("message {i}");
        confirms.push(
            channel
                .publish(Publish::to_queue(&queue), &properties, body.as_bytes())
                .await?,
        );
    }
    let mut acked = 0;
    for confirm in confirms {
        if confirm.await?.is_ack() {
            acked += 1;
        }
    }
    println!("published {count} messages to {queue:?}, {acked} confirmed");
    conn.close().await?;
    Ok(())
}
