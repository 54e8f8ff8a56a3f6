//! `amqp publish`.

use std::time::{SystemTime, UNIX_EPOCH};

use amqp_client::options::{PublishOptions, QosOptions};
use amqp_client::{
    Channel, Confirmation, Connection, ConnectionConfig, Error as ClientError, PublishConfirm,
    RecoveryPolicy,
};
use amqp_wire::{BasicProperties, ShortStr};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use super::session::with_session;
use super::PublishArgs;
use crate::exit::{Failure, NACKED, OK};
use crate::headers::{parse_table, DefaultType};

fn short(what: &str, value: &str) -> Result<ShortStr, Failure> {
    ShortStr::new(value).map_err(|_| {
        Failure::usage(format!(
            "--{what} is {} octets long; at most 255 fit",
            value.len()
        ))
    })
}

fn opt_short(what: &str, value: Option<&String>) -> Result<Option<ShortStr>, Failure> {
    value.map(|v| short(what, v)).transpose()
}

/// The properties the options describe; only the options given are set.
pub(super) fn properties(args: &PublishArgs) -> Result<BasicProperties, Failure> {
    let headers = if args.headers.is_empty() {
        None
    } else {
        Some(
            parse_table(&args.headers, DefaultType::Str)
                .map_err(|e| Failure::usage(e.to_string()))?,
        )
    };
    let timestamp = match args.timestamp.as_deref() {
        None => None,
        Some("now") => Some(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        ),
        Some(t) => Some(t.parse::<u64>().map_err(|_| {
            Failure::usage(format!("--timestamp {t:?}: expected Unix seconds or `now`"))
        })?),
    };
    let delivery_mode = if args.persistent {
        Some(2)
    } else {
        args.delivery_mode
    };
    Ok(BasicProperties {
        content_type: opt_short("content-type", args.content_type.as_ref())?,
        content_encoding: opt_short("content-encoding", args.content_encoding.as_ref())?,
        headers,
        delivery_mode,
        priority: args.priority,
        correlation_id: opt_short("correlation-id", args.correlation_id.as_ref())?,
        reply_to: opt_short("reply-to", args.reply_to.as_ref())?,
        expiration: opt_short("expiration", args.expiration.as_ref())?,
        message_id: opt_short("message-id", args.message_id.as_ref())?,
        timestamp,
        kind: opt_short("type", args.kind.as_ref())?,
        user_id: opt_short("user-id", args.user_id.as_ref())?,
        app_id: opt_short("app-id", args.app_id.as_ref())?,
        reserved: None,
    })
}

struct Publisher<'a> {
    conn: &'a Connection,
    channel: &'a Channel,
    args: &'a PublishArgs,
    properties: BasicProperties,
    /// Each unsettled message with its body, kept to publish it again if the connection is
    /// lost before its confirm arrives.
    pending: Vec<(PublishConfirm, Vec<u8>)>,
    /// Whether the connection recovers (and messages are published again).
    recovers: bool,
}

impl Publisher<'_> {
    async fn publish(&mut self, body: &[u8]) -> Result<(), Failure> {
        self.send(body).await?;
        // Keep memory bounded when publishing a long stream of lines.
        if self.pending.len() >= 1024 {
            self.settle().await?;
        }
        Ok(())
    }

    /// Publishes once, waiting for a recovering connection.
    async fn send(&mut self, body: &[u8]) -> Result<(), Failure> {
        let options = PublishOptions {
            mandatory: self.args.mandatory,
            ..Default::default()
        };
        loop {
            let r = self
                .channel
                .publish(
                    amqp_client::Publish::exchange(&self.args.exchange)
                        .routing_key(&self.args.routing_key)
                        .options(options),
                    &self.properties,
                    body,
                )
                .await;
            match r {
                Ok(confirm) => {
                    let keep = if self.recovers {
                        body.to_vec()
                    } else {
                        Vec::new()
                    };
                    self.pending.push((confirm, keep));
                    return Ok(());
                }
                Err(ClientError::Recovering) if self.recovers => {
                    self.conn.wait_for_recovery().await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Waits for the verdict on everything published so far; the first nack or return fails.
    /// Messages whose confirm was lost with the connection are published again.
    async fn settle(&mut self) -> Result<(), Failure> {
        loop {
            let mut lost = Vec::new();
            for (confirm, body) in std::mem::take(&mut self.pending) {
                match confirm.await {
                    Err(ClientError::ConnectionLost(cause)) if self.recovers => {
                        tracing::info!(
                            "connection lost before a confirm ({cause}); publishing again"
                        );
                        lost.push(body);
                    }
                    other => Self::verdict(other?)?,
                }
            }
            if lost.is_empty() {
                return Ok(());
            }
            self.conn.wait_for_recovery().await?;
            for body in lost {
                self.send(&body).await?;
            }
        }
    }

    fn verdict(confirmation: Confirmation) -> Result<(), Failure> {
        match confirmation {
            Confirmation::Ack | Confirmation::NotRequested => {}
            Confirmation::Nack => {
                return Err(Failure::new(NACKED, "the broker nacked a message"));
            }
            Confirmation::Returned(m) => {
                return Err(Failure::new(
                    NACKED,
                    format!(
                        "message returned by the broker: {:?} {} (exchange {:?}, routing key {:?})",
                        m.reply_code,
                        m.reply_text.as_str(),
                        m.exchange.as_str(),
                        m.routing_key.as_str()
                    ),
                ));
            }
            other => {
                return Err(Failure::new(
                    NACKED,
                    format!("unexpected verdict {other:?}"),
                ));
            }
        }
        Ok(())
    }
}

pub(super) async fn run(config: ConnectionConfig, args: &PublishArgs) -> Result<u8, Failure> {
    // Everything the user typed is checked before connecting.
    let properties = properties(args)?;
    short("exchange", &args.exchange)?;
    short("routing-key", &args.routing_key)?;
    // Read a whole body before connecting too, so a slow producer holds no connection open.
    let body = match (&args.body, args.line_buffered) {
        (Some(b), _) => Some(b.clone().into_bytes()),
        (None, false) => {
            let mut buf = Vec::new();
            tokio::io::stdin()
                .read_to_end(&mut buf)
                .await
                .map_err(|e| Failure::usage(format!("cannot read standard input: {e}")))?;
            Some(buf)
        }
        (None, true) => None,
    };
    let confirming = args.confirm || args.mandatory;
    let recovers = confirming && !args.no_recovery;
    let config = if recovers {
        config.with_recovery(RecoveryPolicy::default())
    } else {
        config
    };
    with_session(config, async |s| {
        // A return is only known for sure once the broker has confirmed the message, so
        // --mandatory waits for confirms as well.
        if confirming {
            s.channel.confirm_select().await?;
        }
        let mut p = Publisher {
            conn: &s.conn,
            channel: &s.channel,
            args,
            properties,
            pending: Vec::new(),
            recovers,
        };
        match &body {
            Some(body) => p.publish(body).await?,
            None => {
                let bar = super::progress::bytes(args.quiet, super::progress::stdin_size());
                let mut sent = 0u64;
                let mut lines = BufReader::new(tokio::io::stdin()).lines();
                while let Some(line) = lines
                    .next_line()
                    .await
                    .map_err(|e| Failure::usage(format!("cannot read standard input: {e}")))?
                {
                    p.publish(line.as_bytes()).await?;
                    sent += 1;
                    bar.inc(
                        u64::try_from(line.len())
                            .unwrap_or(u64::MAX)
                            .saturating_add(1),
                    );
                    bar.set_message(format!("{sent} messages published"));
                }
                bar.finish_and_clear();
            }
        }
        p.settle().await?;
        if !(args.confirm || args.mandatory) {
            // basic.publish has no answer: a broker refusal (no such exchange) arrives as a
            // channel close at some point. One round trip on the same channel (a no-op qos)
            // makes sure it has arrived before we report success.
            s.channel.basic_qos(0, QosOptions::default()).await?;
        }
        Ok(OK)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use amqp_wire::FieldValue;

    #[test]
    fn only_given_options_become_properties() {
        let p = properties(&PublishArgs::default()).unwrap();
        assert_eq!(p, BasicProperties::default());
        let args = PublishArgs {
            persistent: true,
            priority: Some(3),
            kind: Some("t".into()),
            timestamp: Some("17".into()),
            headers: vec!["a=1".into(), "b:int=2".into()],
            ..Default::default()
        };
        let p = properties(&args).unwrap();
        assert_eq!(p.delivery_mode, Some(2));
        assert_eq!(p.priority, Some(3));
        assert_eq!(p.kind.as_deref(), Some("t"));
        assert_eq!(p.timestamp, Some(17));
        let h = p.headers.unwrap();
        assert_eq!(h.get("a"), Some(&FieldValue::LongStr("1".into())));
        assert_eq!(h.get("b"), Some(&FieldValue::I64(2)));
        assert!(p.content_type.is_none());
    }

    #[test]
    fn bad_values_are_usage_errors() {
        let bad_ts = PublishArgs {
            timestamp: Some("yesterday".into()),
            ..Default::default()
        };
        assert_eq!(properties(&bad_ts).unwrap_err().code, crate::exit::USAGE);
        let bad_h = PublishArgs {
            headers: vec!["n:int=x".into()],
            ..Default::default()
        };
        let e = properties(&bad_h).unwrap_err();
        assert!(e.message.contains("n:int=x"), "{e}");
        let long = PublishArgs {
            message_id: Some("m".repeat(256)),
            ..Default::default()
        };
        assert!(properties(&long)
            .unwrap_err()
            .message
            .contains("--message-id"));
        let now = PublishArgs {
            timestamp: Some("now".into()),
            ..Default::default()
        };
        assert!(properties(&now).unwrap().timestamp.unwrap() > 1_600_000_000);
    }
}
