//! Measures publish (and consume) throughput against a broker, with the client's CPU time.
//!
//! ```text
//! cargo run --release -p amqp-client --example throughput -- [AMQP_URL] [COUNT] [BODY_SIZE] [confirm]
//! ```

use std::time::Instant;

use amqp_client::options::{ConsumeOptions, QueueDeclareOptions};
use amqp_client::{BasicProperties, Connection, Publish};

/// User + system CPU time of this process, in seconds (Linux).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let Some(after) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return 0.0;
    };
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Fields 14 and 15 of stat (utime, stime) are at 11 and 12 after the command name.
    (ticks(11) + ticks(12)) / 100.0
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .or_else(|| std::env::var("AMQP_URL").ok())
        .unwrap_or_else(|| "amqp://guest:guest@localhost:5672/%2f".to_owned());
    let count: usize = args.next().map_or(Ok(200_000), |n| n.parse())?;
    let size: usize = args.next().map_or(Ok(16), |n| n.parse())?;
    let confirm = args.next().is_some_and(|a| a == "confirm");

    let conn = Connection::connect(&url).await?;
    let channel = conn.open_channel().await?;
    let queue = channel
        .queue_declare(
            "",
            QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
        )
        .await?
        .name;
    if confirm {
        channel.confirm_select().await?;
    }
    let body = vec![b'x'; size];
    let properties = BasicProperties::default();

    let (t0, c0) = (Instant::now(), cpu_seconds());
    for _ in 0..count {
        let _confirm = channel
            .publish(Publish::to_queue(&queue), &properties, &body)
            .await?;
    }
    if confirm {
        channel.wait_for_confirms().await?;
    }
    let published = (t0.elapsed().as_secs_f64(), cpu_seconds() - c0);

    let mut consumer = channel
        .basic_consume(
            &queue,
            ConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
        )
        .await?;
    let (t1, c1) = (Instant::now(), cpu_seconds());
    let mut n = 0;
    while n < count {
        match consumer.recv().await {
            Some(d) => {
                d?;
                n += 1;
            }
            None => break,
        }
    }
    let consumed = (t1.elapsed().as_secs_f64(), cpu_seconds() - c1);
    for (what, (secs, cpu)) in [("publish", published), ("consume", consumed)] {
        println!(
            "{what}: {count} x {size} B in {secs:.2} s = {:.0} msg/s, client CPU {:.2} us/msg",
            count as f64 / secs,
            cpu * 1e6 / count as f64
        );
    }
    conn.close().await?;
    Ok(())
}
