//! The scenarios through this workspace's `amqp-client`.

use std::time::{Duration, Instant};

use amqp_client::options::{ConsumeOptions, QosOptions, QueueDeclareOptions};
use amqp_client::{BasicProperties, Channel, Connection, Consumer, ShortStr};
use futures_util::StreamExt;

use super::{ack_due, consumer_pause, fail, payload, BoxError, Outcome, POLL_INTERVAL, REPLY_TO};
use super::{Scenario, WorkSpec, RPC_WARMUP};
use crate::e2e::usage::Meter;

pub(super) async fn run(spec: &WorkSpec) -> Result<Outcome, BoxError> {
    let conn = Connection::connect(&spec.url).await?;
    let channel = conn.open_channel().await?;
    let outcome = match spec.scenario {
        Scenario::Publish => publish(spec, &channel).await?,
        Scenario::Confirm => confirm(spec, &channel).await?,
        Scenario::Consume | Scenario::Memory => consume(spec, &channel).await?,
        Scenario::Rpc => rpc(spec, &channel).await?,
    };
    conn.close().await?;
    Ok(outcome)
}

async fn queue_depth(channel: &Channel, queue: &str) -> Result<u64, BoxError> {
    let info = channel
        .queue_declare(
            queue,
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
        )
        .await?;
    Ok(u64::from(info.message_count))
}

async fn publish(spec: &WorkSpec, channel: &Channel) -> Result<Outcome, BoxError> {
    let body = payload(spec.size);
    let props = BasicProperties::default();
    let meter = Meter::start(spec.broker_pid)?;
    for _ in 0..spec.count {
        // Not in confirm mode: the returned future is already resolved; drop it.
        drop(
            channel
                .publish(amqp_client::Publish::to_queue(&spec.queue), &props, &body)
                .await?,
        );
    }
    let mut depth = queue_depth(channel, &spec.queue).await?;
    while depth < spec.count {
        tokio::time::sleep(POLL_INTERVAL).await;
        depth = queue_depth(channel, &spec.queue).await?;
    }
    let sample = meter.stop()?;
    Ok(Outcome::messages(sample, depth, spec))
}

async fn confirm(spec: &WorkSpec, channel: &Channel) -> Result<Outcome, BoxError> {
    channel.confirm_select().await?;
    let body = payload(spec.size);
    let props = BasicProperties::default();
    let meter = Meter::start(spec.broker_pid)?;
    // Confirms are awaited in order by a second task while publishing goes on.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let waiter = tokio::spawn(async move {
        let mut acked = 0u64;
        while let Some(confirm) = rx.recv().await {
            let confirm: amqp_client::PublishConfirm = confirm;
            if confirm.await?.is_ack() {
                acked += 1;
            }
        }
        Ok::<u64, amqp_client::Error>(acked)
    });
    for _ in 0..spec.count {
        let confirm = channel
            .publish(amqp_client::Publish::to_queue(&spec.queue), &props, &body)
            .await?;
        tx.send(confirm)
            .map_err(|_| fail("the confirm waiter stopped early"))?;
    }
    drop(tx);
    let acked = waiter.await??;
    let sample = meter.stop()?;
    Ok(Outcome::messages(sample, acked, spec))
}

async fn consume(spec: &WorkSpec, channel: &Channel) -> Result<Outcome, BoxError> {
    channel
        .basic_qos(spec.prefetch, QosOptions::default())
        .await?;
    let pause = consumer_pause(spec);
    let meter = Meter::start(spec.broker_pid)?;
    let mut consumer = channel
        .basic_consume(&spec.queue, ConsumeOptions::default())
        .await?;
    let mut received = 0u64;
    let mut bytes = 0u64;
    while received < spec.count {
        let delivery = consumer
            .next()
            .await
            .ok_or_else(|| fail("consumer ended early"))??;
        received += 1;
        bytes += delivery.body.len() as u64;
        if ack_due(received, spec) {
            delivery.ack_multiple()?;
        }
        if let Some(pause) = pause {
            tokio::time::sleep(pause).await;
        }
    }
    let sample = meter.stop()?;
    Ok(Outcome::moved(sample, received, bytes))
}

async fn rpc(spec: &WorkSpec, channel: &Channel) -> Result<Outcome, BoxError> {
    let mut replies = channel
        .basic_consume(
            REPLY_TO,
            ConsumeOptions {
                no_ack: true,
                ..ConsumeOptions::default()
            },
        )
        .await?;
    let body = payload(spec.size);
    for id in 0..RPC_WARMUP {
        call(channel, &mut replies, &spec.queue, &body, u64::MAX - id).await?;
    }
    let mut latencies = Vec::with_capacity(spec.count as usize);
    let meter = Meter::start(spec.broker_pid)?;
    for id in 0..spec.count {
        latencies.push(call(channel, &mut replies, &spec.queue, &body, id).await?);
    }
    let sample = meter.stop()?;
    Ok(Outcome {
        sample,
        count: latencies.len() as u64,
        bytes: latencies.len() as u64 * spec.size as u64,
        latencies,
    })
}

/// One request through the echo queue and its reply on the direct reply-to consumer.
async fn call(
    channel: &Channel,
    replies: &mut Consumer,
    queue: &str,
    body: &[u8],
    id: u64,
) -> Result<Duration, BoxError> {
    let started = Instant::now();
    let want = ShortStr::new(&id.to_string())?;
    let props = BasicProperties::default()
        .with_reply_to(ShortStr::from_static(REPLY_TO))
        .with_correlation_id(want.clone());
    drop(
        channel
            .publish(amqp_client::Publish::to_queue(queue), &props, body)
            .await?,
    );
    loop {
        let reply = replies
            .next()
            .await
            .ok_or_else(|| fail("reply consumer ended"))??;
        if reply.properties().correlation_id.as_ref() == Some(&want) {
            return Ok(started.elapsed());
        }
    }
}
