//! `GET /stream`: the caller's inbox over a websocket, each message acknowledged to the broker
//! only when the websocket client acknowledges it.
//!
//! Protocol (text frames of JSON):
//! - server → client: `{"id": n, "redelivered": bool, "message": …}` for each message, `id`
//!   counting from 1 on each socket;
//! - client → server: `{"ack": n}` settles message `n` (the broker forgets it);
//! - server → client: `{"error": …, "detail": …}` for a frame it could not use (not JSON, not
//!   an ack, an unknown or already acknowledged id); the socket stays open.
//!
//! At most `prefetch` messages (query parameter, default [`DEFAULT_PREFETCH`], at most
//! [`MAX_PREFETCH`]) are unacknowledged at once: the broker's own prefetch limit on the
//! socket's channel. When the socket closes, for whatever reason, the channel is closed and the
//! broker puts every unacknowledged message back into the inbox (delivered again, with
//! `redelivered: true`, on `/receive` or the next stream).
//!
//! Close codes from the server: 1001 when the service shuts down, 1013 (try again later) when
//! the broker connection was lost or the broker ended the consumer; the client connects again
//! and receives what it had not acknowledged.

use std::collections::HashMap;
use std::time::Duration;

use amqp_client::options::{ConsumeOptions, QosOptions};
use amqp_client::{Channel, ConnectionState, Consumer, Delivery};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::StreamExt as _;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::daemon::Shutdown;

/// The prefetch of a stream when the client gives none.
pub const DEFAULT_PREFETCH: u16 = 16;
/// The largest prefetch a client may ask for.
pub const MAX_PREFETCH: u16 = 1000;
/// The largest frame a client may send (acks are a few bytes).
pub const MAX_CLIENT_FRAME: usize = 4096;

/// Close code: the service is shutting down.
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code: the broker connection was lost; connect again.
pub const CLOSE_TRY_AGAIN: u16 = 1013;

/// The broker side of one stream: a channel with the prefetch set and a consumer on the inbox.
/// The channel is closed when this is dropped, so the broker requeues what was not acked.
#[derive(Debug)]
pub(crate) struct Session {
    ch: Channel,
    consumer: Option<Consumer>,
    state: tokio::sync::watch::Receiver<ConnectionState>,
}

impl Session {
    /// Opens a channel on `conn` with `prefetch` and consumes `queue`.
    pub(crate) async fn open(
        conn: &amqp_client::Connection,
        queue: &str,
        prefetch: u16,
    ) -> amqp_client::Result<Self> {
        let state = conn.watch_state();
        let ch = conn.create_channel().await?;
        let mut s = Self {
            ch,
            consumer: None,
            state,
        };
        s.ch.basic_qos(prefetch, QosOptions::default()).await?;
        s.consumer = Some(s.ch.basic_consume(queue, ConsumeOptions::default()).await?);
        Ok(s)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let ch = self.ch.clone();
        let consumer = self.consumer.take();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                // Closing the channel requeues every unacknowledged delivery at once.
                let _ = tokio::time::timeout(Duration::from_secs(10), ch.close()).await;
                drop(consumer);
            });
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Ack {
    ack: u64,
}

fn error_frame(detail: impl Into<String>) -> Message {
    Message::Text(
        json!({"error": "bad request", "detail": detail.into()})
            .to_string()
            .into(),
    )
}

/// Returns once the connection is not open (or its state is no longer known).
async fn connection_lost(state: &mut tokio::sync::watch::Receiver<ConnectionState>) {
    let _ = state
        .wait_for(|s| *s != ConnectionState::Open)
        .await
        .map(|_| ());
}

/// Serves one upgraded socket until it closes, the broker connection fails or `closing`.
pub(crate) async fn run(mut socket: WebSocket, mut session: Session, closing: Shutdown) {
    let Some(mut consumer) = session.consumer.take() else {
        return;
    };
    let mut state = session.state.clone();
    let mut pending: HashMap<u64, Delivery> = HashMap::new();
    let mut next_id: u64 = 0;
    let close = loop {
        tokio::select! {
            _ = closing.requested() => {
                break Some((CLOSE_GOING_AWAY, "the service is shutting down"));
            }
            // The library would resume the consumer after a recovery, but what is in flight
            // can no longer be acked then: end the socket so the client starts afresh.
            () = connection_lost(&mut state) => {
                break Some((CLOSE_TRY_AGAIN, "the broker connection was lost; connect again"));
            }
            d = consumer.next() => match d {
                Some(Ok(d)) => {
                    next_id += 1;
                    let message: Value = serde_json::from_slice(&d.body).unwrap_or_else(|_| {
                        Value::String(String::from_utf8_lossy(&d.body).into_owned())
                    });
                    let frame = json!({"id": next_id, "redelivered": d.redelivered, "message": message});
                    pending.insert(next_id, d);
                    if socket.send(Message::Text(frame.to_string().into())).await.is_err() {
                        break None;
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!("stream: broker: {e}");
                    break Some((CLOSE_TRY_AGAIN, "the broker connection was lost; connect again"));
                }
                None => {
                    break Some((CLOSE_TRY_AGAIN, "the broker ended the stream; connect again"));
                }
            },
            m = socket.recv() => match m {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break None,
                Some(Ok(Message::Text(t))) => {
                    let reply = match serde_json::from_str::<Ack>(t.as_str()) {
                        Ok(Ack { ack }) => match pending.remove(&ack) {
                            Some(d) => match d.ack() {
                                Ok(()) => None,
                                Err(e) => {
                                    tracing::warn!("stream: ack: {e}");
                                    break Some((
                                        CLOSE_TRY_AGAIN,
                                        "the broker connection was lost; connect again",
                                    ));
                                }
                            },
                            None => Some(error_frame(format!(
                                "no unacknowledged message has id {ack}"
                            ))),
                        },
                        Err(e) => Some(error_frame(format!(
                            "expected {{\"ack\": id}}: {e}"
                        ))),
                    };
                    if let Some(r) = reply {
                        if socket.send(r).await.is_err() {
                            break None;
                        }
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    if socket.send(error_frame("expected a text frame")).await.is_err() {
                        break None;
                    }
                }
                Some(Ok(_)) => {} // ping and pong are answered by the library
            }
        }
    };
    if let Some((code, reason)) = close {
        let _ = socket
            .send(Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            })))
            .await;
    }
    // The session's drop closes the channel: the broker requeues what is in `pending`.
    drop(consumer);
    drop(pending);
    drop(session);
}
