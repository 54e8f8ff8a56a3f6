//! The end-to-end demo `scripts/demo` runs: declares a topology, publishes a batch of messages
//! with publisher confirms, consumes them back with manual acks, shows a mandatory message
//! coming back unroutable, and cleans up — saying what it did at each step.
//!
//! ```sh
//! AMQP_URL=amqp://guest:guest@127.0.0.1:5672/%2f cargo run --release -p amqp-client --example demo -- 20000
//! ```

use std::time::Instant;

use amqp_client::options::{
    BindOptions, ConsumeOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, ExchangeKind,
    QosOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use amqp_client::{BasicProperties, Connection, FieldTable, Publish};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("demo failed: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), BoxError> {
    let url = std::env::var("AMQP_URL")
        .map_err(|_| "set AMQP_URL (scripts/demo does) to the broker's amqp:// URL")?;
    let count: u32 = match std::env::args().nth(1) {
        Some(n) => n.parse().map_err(|_| format!("bad message count {n:?}"))?,
        None => 10_000,
    };

    let conn = Connection::connect(&url).await?;
    let server = conn
        .server_properties()
        .get_str("product")
        .unwrap_or("unknown")
        .to_owned();
    let version = conn
        .server_properties()
        .get_str("version")
        .unwrap_or("?")
        .to_owned();
    let tuned = conn.negotiated();
    println!("connected to {server} {version}: {tuned:?}");

    let channel = conn.open_channel().await?;
    let suffix = std::process::id();
    let exchange = format!("demo.events.{suffix}");
    let queue = format!("demo.orders.{suffix}");

    channel
        .exchange_declare(
            &exchange,
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                auto_delete: true,
                ..Default::default()
            },
        )
        .await?;
    let mut args = FieldTable::default();
    args.insert("x-max-length", i64::from(count) * 2)?;
    let info = channel
        .queue_declare(
            &queue,
            QueueDeclareOptions {
                exclusive: true,
                arguments: args,
                ..Default::default()
            },
        )
        .await?;
    channel
        .queue_bind(&queue, &exchange, "orders.#", BindOptions::default())
        .await?;
    println!(
        "declared topic exchange {exchange}, queue {} bound with orders.#",
        info.name
    );

    // Publish the batch with confirms, pipelined: every publish is sent at once and the
    // confirmations are collected afterwards.
    channel.confirm_select().await?;
    let started = Instant::now();
    let mut confirms = Vec::with_capacity(count as usize);
    for i in 0..count {
        let props = BasicProperties::default()
            .with_content_type("text/plain")?
            .with_message_id(format!("order-{i}"))?
            .with_delivery_mode(1);
        let body = format!("order {i}: 3 widgets");
        let region = if i % 2 == 0 { "eu" } else { "us" };
        confirms.push(
            channel
                .publish(
                    Publish::exchange(&exchange).routing_key(&format!("orders.{region}.created")),
                    &props,
                    body.as_bytes(),
                )
                .await?,
        );
    }
    let mut acked = 0u32;
    for confirm in confirms {
        if confirm.await?.is_ack() {
            acked += 1;
        }
    }
    let elapsed = started.elapsed();
    println!(
        "published {count} messages with confirms in {:.1} ms ({:.0} msg/s), {acked} acked",
        elapsed.as_secs_f64() * 1e3,
        f64::from(count) / elapsed.as_secs_f64()
    );

    // Consume them back, prefetch 500, acking every 100th message with `multiple`.
    channel.basic_qos(500, QosOptions::default()).await?;
    let mut consumer = channel
        .basic_consume(&queue, ConsumeOptions::default())
        .await?;
    let started = Instant::now();
    let (mut received, mut eu, mut bytes) = (0u32, 0u32, 0usize);
    let mut first = None;
    while received < count {
        let delivery = match consumer.recv().await {
            Some(d) => d?,
            None => return Err("consumer ended early".into()),
        };
        received += 1;
        bytes += delivery.body.len();
        if delivery.routing_key.as_str().starts_with("orders.eu") {
            eu += 1;
        }
        if first.is_none() {
            first = Some(format!(
                "{} {:?} {:?}",
                delivery.routing_key,
                delivery
                    .properties()
                    .message_id
                    .as_ref()
                    .map(|m| m.as_str()),
                String::from_utf8_lossy(&delivery.body)
            ));
        }
        if received % 100 == 0 || received == count {
            delivery.ack_multiple()?;
        }
    }
    let elapsed = started.elapsed();
    println!(
        "consumed {received} messages ({bytes} body bytes, {eu} from eu, {} from us) in {:.1} ms ({:.0} msg/s)",
        received - eu,
        elapsed.as_secs_f64() * 1e3,
        f64::from(received) / elapsed.as_secs_f64()
    );
    if let Some(first) = first {
        println!("first delivery: {first}");
    }

    // A mandatory message nobody is bound for comes back as a basic.return.
    let returned = channel
        .publish(
            Publish::exchange(&exchange)
                .routing_key("invoices.created")
                .mandatory(true),
            &BasicProperties::default(),
            b"nobody listens",
        )
        .await?
        .await?;
    match returned.returned() {
        Some(r) => println!(
            "mandatory publish to invoices.created came back: {} {}",
            r.reply_code, r.reply_text
        ),
        None => println!("mandatory publish was not returned (unexpected)"),
    }

    let left = channel
        .queue_delete(&queue, QueueDeleteOptions::default())
        .await?;
    channel
        .exchange_delete(&exchange, ExchangeDeleteOptions::default())
        .await?;
    println!("deleted {queue} ({left} messages left) and {exchange}");
    channel.close().await?;
    conn.close().await?;
    println!("closed cleanly");
    Ok(())
}
