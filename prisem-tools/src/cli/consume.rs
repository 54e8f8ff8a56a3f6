//! `amqp consume`: print messages, or run a command for each one.

use std::io::ErrorKind;
use std::process::{ExitStatus, Stdio};

use amqp_client::options::{BindOptions, ConsumeOptions, QosOptions, QueueDeclareOptions};
use amqp_client::{Channel, ConnectionConfig, Delivery, Error as ClientError, RecoveryPolicy};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::output::print;
use super::session::with_session;
use super::ConsumeArgs;
use crate::exit::{Failure, EMPTY_OR_NOT_FOUND, OK};
use crate::json;

/// Declares and binds what the options ask for; returns the queue to consume from.
async fn prepare_queue(channel: &Channel, args: &ConsumeArgs) -> Result<String, Failure> {
    let queue = match &args.queue {
        Some(q) => {
            if args.declare || args.exclusive {
                let options = QueueDeclareOptions {
                    exclusive: args.exclusive,
                    ..Default::default()
                };
                channel.queue_declare(q, options).await?;
            }
            q.clone()
        }
        None => {
            let options = QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            };
            channel.queue_declare("", options).await?.name
        }
    };
    if let Some(exchange) = &args.exchange {
        let keys: &[String] = if args.routing_key.is_empty() {
            &[String::new()]
        } else {
            &args.routing_key
        };
        for key in keys {
            channel
                .queue_bind(&queue, exchange, key, BindOptions::default())
                .await?;
        }
    }
    Ok(queue)
}

/// Runs `argv` with the body on its standard input and the message in its environment.
async fn run_command(argv: &[String], d: &Delivery) -> Result<ExitStatus, Failure> {
    let (program, rest) = argv
        .split_first()
        .ok_or_else(|| Failure::usage("empty command"))?;
    let properties = serde_json::Value::Object(json::properties(d.properties()));
    let mut child = Command::new(program)
        .args(rest)
        .env("AMQP_EXCHANGE", d.exchange.as_str())
        .env("AMQP_ROUTING_KEY", d.routing_key.as_str())
        .env("AMQP_DELIVERY_TAG", d.delivery_tag.to_string())
        .env("AMQP_REDELIVERED", if d.redelivered { "1" } else { "0" })
        .env("AMQP_PROPERTIES", properties.to_string())
        .stdin(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Failure::usage(format!("cannot run {program:?}: {e}")))?;
    let stdin = child.stdin.take();
    let body = d.body.clone();
    let feed = async move {
        if let Some(mut stdin) = stdin {
            match stdin.write_all(&body).await {
                // A command may exit without reading its input; that is its business.
                Err(e) if e.kind() != ErrorKind::BrokenPipe => Err(e),
                _ => Ok(()),
            }
        } else {
            Ok(())
        }
    };
    let (fed, status) = tokio::join!(feed, child.wait());
    let status = status.map_err(|e| Failure::usage(format!("waiting for {program:?}: {e}")))?;
    fed.map_err(|e| Failure::usage(format!("cannot feed the body to {program:?}: {e}")))?;
    Ok(status)
}

/// What to tell the broker about one delivery, once it has been handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settle {
    Ack,
    Requeue,
}

/// What became of one delivery.
struct Handled {
    settle: Settle,
    /// Standard output is gone (`| head`): stop quietly.
    output_closed: bool,
}

async fn handle(d: &Delivery, args: &ConsumeArgs) -> Result<Handled, (Settle, Failure)> {
    if args.command.is_empty() {
        return match print(d, args.format) {
            Ok(()) => Ok(Handled {
                settle: Settle::Ack,
                output_closed: false,
            }),
            Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(Handled {
                settle: Settle::Requeue,
                output_closed: true,
            }),
            Err(e) => Err((
                Settle::Requeue,
                Failure::usage(format!("cannot write the message: {e}")),
            )),
        };
    }
    let status = run_command(&args.command, d)
        .await
        .map_err(|e| (Settle::Requeue, e))?;
    let settle = if status.success() {
        Settle::Ack
    } else {
        tracing::info!(delivery_tag = d.delivery_tag, %status, "command failed: requeued");
        Settle::Requeue
    };
    Ok(Handled {
        settle,
        output_closed: false,
    })
}

fn settle(d: &Delivery, how: Settle, no_ack: bool) -> Result<(), Failure> {
    let r = match (no_ack, how) {
        (true, _) => Ok(()),
        (false, Settle::Ack) => d.ack(),
        (false, Settle::Requeue) => d.reject(true),
    };
    match r {
        // The connection recovered meanwhile: the broker delivers the message again.
        Err(ClientError::StaleDelivery { delivery_tag }) => {
            tracing::info!(
                delivery_tag,
                "connection recovered before the ack; redelivered"
            );
            Ok(())
        }
        r => Ok(r?),
    }
}

pub(super) async fn run(config: ConnectionConfig, args: &ConsumeArgs) -> Result<u8, Failure> {
    if args.count == Some(0) {
        return Ok(OK);
    }
    let config = if args.no_recovery {
        config
    } else {
        config.with_recovery(RecoveryPolicy::default())
    };
    with_session(config, async |s| {
        let channel = &s.channel;
        let queue = prepare_queue(channel, args).await?;
        // Without --prefetch, take no more than --count, so nothing is delivered only to be
        // handed back.
        let prefetch = args
            .prefetch
            .or_else(|| args.count.map(|c| u16::try_from(c).unwrap_or(u16::MAX)));
        if let Some(n) = prefetch {
            if !args.no_ack {
                channel.basic_qos(n, QosOptions::default()).await?;
            }
        }
        let options = ConsumeOptions {
            no_ack: args.no_ack,
            ..Default::default()
        };
        let mut consumer = channel.basic_consume(&queue, options).await?;
        if args.queue.is_none() {
            // Said once bound and consuming, so a script may start publishing when it sees it.
            eprintln!("amqp consume: consuming from server-named queue {queue}");
        }
        let mut seen = 0u64;
        let bar = match args.count {
            Some(n) => super::progress::messages(args.quiet, Some(n), "consumed"),
            None => indicatif::ProgressBar::hidden(),
        };
        let mut cancelled = false;
        let interrupted = tokio::signal::ctrl_c();
        tokio::pin!(interrupted);
        loop {
            let next = tokio::select! {
                next = consumer.next() => next,
                _ = &mut interrupted => break,
            };
            let d = match next {
                Some(Ok(d)) => d,
                Some(Err(ClientError::ConsumerCancelled(tag))) => {
                    return Err(Failure::new(
                        EMPTY_OR_NOT_FOUND,
                        format!(
                            "the broker cancelled consumer {tag:?} (was queue {queue:?} deleted?)"
                        ),
                    ));
                }
                Some(Err(e)) => return Err(e.into()),
                None => break,
            };
            seen += 1;
            let handled = handle(&d, args).await;
            let last = args.count.is_some_and(|c| seen >= c)
                || handled.as_ref().map_or(true, |h| h.output_closed);
            if last {
                // Cancel before settling the last message: settling first would free a
                // prefetch slot, and the broker could send one more message only to have it
                // handed back (and marked redelivered).
                cancelled = true;
                if let Err(e) = consumer.cancel().await {
                    tracing::debug!("cancelling the consumer: {e}");
                }
            }
            bar.inc(1);
            match handled {
                Ok(h) => settle(&d, h.settle, args.no_ack)?,
                Err((how, failure)) => {
                    settle(&d, how, args.no_ack)?;
                    return Err(failure);
                }
            }
            if last {
                break;
            }
        }
        bar.finish_and_clear();
        if !cancelled {
            if let Err(e) = consumer.cancel().await {
                tracing::debug!("cancelling the consumer: {e}");
            }
        }
        Ok(OK)
    })
    .await
}
