//! Consumes messages and acknowledges them, with a prefetch limit.
//!
//! ```text
//! cargo run -p amqp-client --example consume -- [AMQP_URL] [QUEUE] [COUNT]
//! ```

use amqp_client::options::{ConsumeOptions, QosOptions, QueueDeclareOptions};
use amqp_client::Connection;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .or_else(|| std::env::var("AMQP_URL").ok())
        .unwrap_or_else(|| "amqp://guest:guest@localhost:5672/%2f".to_owned());
    let queue = args.next().unwrap_or_else(|| "example.jobs".to_owned());
    let count: usize = args.next().map_or(Ok(10), |n| n.parse())?;

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
    channel.basic_qos(100, QosOptions::default()).await?;
    let mut consumer = channel
        .basic_consume(&queue, ConsumeOptions::default())
        .await?;
    let mut received = 0;
    while received < count {
        let Some(delivery) = consumer.recv().await else {
            break;
        };
        let delivery = delivery?;
        println!(
            "#{} {}",
            delivery.delivery_tag,
            String::from_utf8_lossy(&delivery.body)
        );
        delivery.ack()?;
        received += 1;
    }
    consumer.cancel().await?;
    conn.close().await?;
    Ok(())
}
