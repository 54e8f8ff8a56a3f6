//! Measures recovery against a broker that is crashed and restarted again and again.
//!
//! A publisher with confirms sends a steady stream of persistent messages to a durable queue
//! (republishing whatever resolves as `ConnectionLost`); a consumer acks them. Each round
//! kills the broker with `scripts/broker kill`, starts it again with `scripts/broker start`,
//! and reports how long after the broker answered again the first delivery arrived, and how
//! many messages came twice (redelivered, or republished after a lost confirm).
//!
//! ```text
//! eval "$(scripts/broker env)"
//! cargo run --release -p amqp-client --example recovery_bench -- 10
//! ```

use std::collections::HashMap;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amqp_client::options::{ConsumeOptions, QueueDeclareOptions};
use amqp_client::{BasicProperties, Connection, ConnectionConfig, Error, Publish, RecoveryPolicy};

fn broker(arg: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/broker");
    let out = Command::new(script)
        .arg(arg)
        .output()
        .expect("scripts/broker runs");
    assert!(out.status.success(), "scripts/broker {arg} failed");
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10);
    let url = std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://localhost".to_owned());
    let cfg = ConnectionConfig::from_uri(&url)?.with_recovery(
        RecoveryPolicy::default().with_delays(Duration::from_millis(100), Duration::from_secs(2)),
    );
    let conn = Connection::connect_with(cfg).await?;
    let queue = "recovery-bench";
    let ch = conn.open_channel().await?;
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.queue_declare(queue, durable).await?;
    ch.queue_purge(queue).await?;
    ch.basic_qos(100, Default::default()).await?;
    let publisher = conn.open_channel().await?;
    publisher.confirm_select().await?;

    let seen: Arc<Mutex<HashMap<u64, u32>>> = Arc::default();
    let last_delivery: Arc<Mutex<Option<Instant>>> = Arc::default();
    let republished = Arc::new(AtomicU64::new(0));
    let mut consumer = ch.basic_consume(queue, ConsumeOptions::default()).await?;
    tokio::spawn({
        let seen = seen.clone();
        let last = last_delivery.clone();
        async move {
            while let Some(Ok(d)) = consumer.recv().await {
                *last.lock().unwrap() = Some(Instant::now());
                let n: u64 = std::str::from_utf8(&d.body).unwrap().parse().unwrap();
                *seen.lock().unwrap().entry(n).or_default() += 1;
                let _ = d.ack();
            }
        }
    });
    let sent = Arc::new(AtomicU64::new(0));
    tokio::spawn({
        let conn = conn.clone();
        let sent = sent.clone();
        let republished = republished.clone();
        async move {
            let props = BasicProperties::default().with_delivery_mode(2);
            for n in 0u64.. {
                loop {
                    let r = match publisher
                        .publish(Publish::to_queue(queue), &props, n.to_string().as_bytes())
                        .await
                    {
                        Ok(c) => c.await,
                        Err(e) => Err(e),
                    };
                    match r {
                        Ok(_) => break,
                        Err(e) if e.is_retryable() => {
                            if matches!(e, Error::ConnectionLost(_)) {
                                republished.fetch_add(1, Ordering::Relaxed);
                            }
                            let _ = conn.wait_for_recovery().await;
                        }
                        Err(e) => panic!("publish: {e}"),
                    }
                }
                sent.store(n + 1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    });

    println!("round  broker_back_to_first_delivery_ms  duplicates_so_far  republished_so_far");
    let mut times = Vec::new();
    for round in 1..=rounds {
        tokio::time::sleep(Duration::from_secs(2)).await;
        tokio::task::spawn_blocking(|| broker("kill"))
            .await
            .unwrap();
        tokio::task::spawn_blocking(|| broker("start"))
            .await
            .unwrap();
        let back = Instant::now();
        *last_delivery.lock().unwrap() = None;
        let first = loop {
            if let Some(t) = *last_delivery.lock().unwrap() {
                break t;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let ms = first.duration_since(back).as_millis();
        times.push(ms);
        let dups: u32 = seen.lock().unwrap().values().map(|c| c - 1).sum();
        println!(
            "{round:>5}  {ms:>32}  {dups:>17}  {:>18}",
            republished.load(Ordering::Relaxed)
        );
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sent = sent.load(Ordering::Relaxed);
    let seen = seen.lock().unwrap().clone();
    let missing = (0..sent).filter(|n| !seen.contains_key(n)).count();
    times.sort_unstable();
    println!(
        "confirmed {sent}, consumed {} distinct, missing {missing}, duplicates {}, \
         first delivery after the broker was back: median {} ms, max {} ms",
        seen.len(),
        seen.values().map(|c| u64::from(c - 1)).sum::<u64>(),
        times.get(times.len() / 2).copied().unwrap_or(0),
        times.last().copied().unwrap_or(0),
    );
    ch.queue_delete(queue, Default::default()).await?;
    conn.close().await
}
