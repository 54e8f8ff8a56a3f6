//! The event router: what the sans-IO state machine reports ([`Event`]) fanned out to the
//! application side, under the connection's lock. A reply completes the future waiting for it
//! (and starts or ends a consumer), a delivery or a returned message goes to its mailbox, a
//! confirm settles the channel's tracker, a channel's or the connection's end reaches every
//! handle hanging off it, and [`ConnectionEvent`]s go to every listener. A connection that
//! is lost while recovery is on is not ended but marked lost, for recovery to take over.
//!
//! The driver calls [`Inner::dispatch`] after each frame and each timer; a mailbox that fills
//! up comes back as a [`Pause`], and the driver stops reading until it has room again.

use std::sync::Arc;
use std::task::{Context, Poll};

use amqp_wire::{basic, Method, ReplyCode};

use crate::connection::{
    ChanEntry, ConnectionEvent, ConnectionState, ConsumerEntry, Inner, ServerInfo, Then, Waiter,
};
use crate::error::{CloseReason, Error, Initiator, Scope};
use crate::mailbox::{lock, Mailbox, Pushed};
use crate::message::{Delivery, ReturnedMessage};
use crate::proto::{Event, Reply};

/// A mailbox the driver stopped reading for.
#[derive(Debug, Clone)]
pub(crate) enum Pause {
    Deliveries(Arc<Mailbox<Delivery>>),
    Returns(Arc<Mailbox<ReturnedMessage>>),
}

impl Pause {
    pub(crate) fn poll_space(&self, cx: &mut Context<'_>) -> Poll<()> {
        match self {
            Self::Deliveries(m) => m.poll_space(cx),
            Self::Returns(m) => m.poll_space(cx),
        }
    }
}

impl crate::mailbox::Weigh for ConnectionEvent {
    fn weight(&self) -> usize {
        0
    }
}

impl Inner {
    /// Sends a connection event to every listener.
    pub(crate) fn emit(&mut self, event: ConnectionEvent) {
        self.broadcast(event);
    }

    /// The connection was lost and will be recovered: requests in flight fail with
    /// [`Error::ConnectionLost`], confirms too, deliveries buffered but not handed out are
    /// dropped (the broker redelivers them), and every channel enters a new epoch.
    fn lose(&mut self, error: Error, pending: Vec<Waiter>) {
        let lost = Error::ConnectionLost(Arc::new(error.clone()));
        self.losses = self.losses.wrapping_add(1);
        for w in pending {
            w.complete(Err(lost.clone()));
        }
        if let Some(tx) = self.opened.take() {
            let _ = tx.send(Err(error.clone()));
        }
        let mut wakes = std::mem::take(&mut self.wakes);
        let closing: Vec<u16> = self
            .proto
            .users()
            .filter(|(_, e)| e.closing)
            .map(|(id, _)| id)
            .collect();
        for id in closing {
            if let Some(entry) = self.proto.take_user(id) {
                close_entry(entry, &user_channel_close());
            }
        }
        for entry in self.proto.users_mut() {
            entry.core.next_epoch();
            lock(&entry.core.confirms).lose(&error, &mut wakes);
            entry.consumers.retain(|c| !c.mailbox.is_gone());
            for c in &entry.consumers {
                c.mailbox.clear();
            }
            entry.flow_active = true;
        }
        self.wakes = wakes;
        if !self.is_recovering() {
            tracing::warn!(%error, "connection lost; recovering");
            self.broadcast(ConnectionEvent::RecoveryStarted {
                cause: error.to_string(),
            });
            self.set_state(ConnectionState::Recovering);
        } else {
            tracing::info!(%error, "connection lost again during recovery");
        }
        self.lost_cause = Some(error);
        self.wake_writers();
    }

    /// Ends the connection for good with `error`: every channel, consumer, confirm and waiter
    /// gets it.
    pub(crate) fn finish(&mut self, error: Error) {
        for entry in self.proto.take_users() {
            close_entry(entry, &error);
        }
        if let Some(tx) = self.opened.take() {
            let _ = tx.send(Err(error.clone()));
        }
        for tx in self.closed.drain(..) {
            let _ = tx.send(error.clone());
        }
        for m in self.events.drain(..) {
            m.close(None);
        }
        if self.final_error.is_none() {
            self.final_error = Some(error);
        }
        self.set_state(ConnectionState::Closed);
        self.wake_writers();
    }

    /// Handles every event the state machine has produced. Returns the mailbox the driver must
    /// stop reading for, if a push filled one.
    pub(crate) fn dispatch(&mut self) -> Option<Pause> {
        let mut pause = None;
        while let Some(event) = self.proto.poll_event() {
            if let Some(p) = self.handle_event(event) {
                pause = Some(p);
            }
        }
        pause
    }

    fn handle_event(&mut self, event: Event<Waiter, ChanEntry>) -> Option<Pause> {
        match event {
            Event::Opened {
                server_properties,
                tuning,
            } => {
                tracing::debug!(?tuning, "connection open");
                self.tuning = Some(tuning);
                self.recovers = self.recovery_enabled;
                if let Some(tx) = self.opened.take() {
                    let _ = tx.send(Ok(ServerInfo {
                        properties: server_properties,
                        tuning,
                    }));
                }
            }
            Event::Reply {
                channel,
                token,
                reply,
            } => self.on_reply(channel, token, reply),
            Event::Delivery {
                channel,
                deliver,
                properties,
                body,
            } => {
                let entry = self.proto.user_mut(channel)?;
                let Some(consumer) = entry
                    .consumers
                    .iter()
                    .find(|c| c.tag == deliver.consumer_tag)
                else {
                    tracing::warn!(
                        channel,
                        consumer_tag = %deliver.consumer_tag,
                        "delivery for an unknown consumer dropped"
                    );
                    return None;
                };
                let no_ack = consumer.no_ack;
                let mailbox = consumer.mailbox.clone();
                let tag = deliver.delivery_tag;
                let delivery = Delivery::new(deliver, properties, body, entry.core.clone());
                let no_ack = no_ack || delivery.is_stale();
                match mailbox.push_deferred(delivery, &mut self.wakes) {
                    Pushed::Stored { full: true } => return Some(Pause::Deliveries(mailbox)),
                    Pushed::Stored { full: false } => {}
                    Pushed::Refused(_) if !no_ack => {
                        // The consumer is gone: hand the message back to the queue.
                        let reject = amqp_wire::basic::Reject {
                            delivery_tag: tag,
                            requeue: true,
                        };
                        let _ = self.proto.send(channel, &Method::BasicReject(reject));
                    }
                    Pushed::Refused(_) => {}
                }
            }
            Event::Returned {
                channel,
                returned,
                properties,
                body,
            } => {
                let entry = self.proto.user_mut(channel)?;
                let message = ReturnedMessage::new(returned, &properties, body);
                tracing::debug!(
                    channel,
                    code = ?message.reply_code,
                    routing_key = %message.routing_key,
                    "message returned"
                );
                {
                    let mut confirms = lock(&entry.core.confirms);
                    if confirms.last_tag() > 0 {
                        confirms.returned(message.clone());
                    }
                }
                if let Some(mailbox) = &entry.returns {
                    if let Pushed::Stored { full: true } =
                        mailbox.push_deferred(message, &mut self.wakes)
                    {
                        return Some(Pause::Returns(mailbox.clone()));
                    }
                }
            }
            Event::Confirm {
                channel,
                delivery_tag,
                multiple,
                ack,
            } => {
                if let Some(entry) = self.proto.user_mut(channel) {
                    lock(&entry.core.confirms).settle(delivery_tag, multiple, ack, &mut self.wakes);
                }
            }
            Event::ConsumerCancelled {
                channel,
                consumer_tag,
            } => {
                tracing::debug!(channel, %consumer_tag, "consumer cancelled by the server");
                if let Some(entry) = self.proto.user_mut(channel) {
                    if let Some(i) = entry.consumers.iter().position(|c| c.tag == consumer_tag) {
                        let c = entry.consumers.swap_remove(i);
                        c.mailbox
                            .close(Some(Error::ConsumerCancelled(consumer_tag.to_string())));
                        let queue = c.consume.queue;
                        self.consumer_gone(&queue);
                    }
                }
            }
            Event::Flow { channel, active } => {
                if let Some(entry) = self.proto.user_mut(channel) {
                    entry.flow_active = active;
                }
                if active {
                    self.wake_writers();
                }
            }
            Event::Blocked { reason } => {
                tracing::info!(%reason, "connection blocked by the broker");
                self.broadcast(ConnectionEvent::Blocked(reason));
            }
            Event::Unblocked => {
                tracing::info!("connection unblocked by the broker");
                self.broadcast(ConnectionEvent::Unblocked);
                self.wake_writers();
            }
            Event::ChannelClosed {
                channel,
                reason,
                pending,
                user,
            } => {
                let span = match &user {
                    Some(entry) => entry.core.span.clone(),
                    None => tracing::Span::none(),
                };
                span.in_scope(|| {
                    if reason.initiator == Initiator::User {
                        tracing::debug!(channel, "channel closed");
                    } else {
                        tracing::info!(channel, %reason, "channel closed");
                    }
                });
                let error = Error::ChannelClosed(reason);
                for w in pending {
                    w.complete(Err(error.clone()));
                }
                if let Some(entry) = user {
                    close_entry(entry, &error);
                }
                self.wake_writers();
            }
            Event::Closed { error, pending } => {
                let by_user = matches!(
                    error.close_reason(),
                    Some(r) if r.initiator == Initiator::User
                );
                if self.recovers && self.final_error.is_none() && !by_user && !self.user_closing {
                    self.lose(error, pending);
                    return None;
                }
                match error.close_reason() {
                    Some(r) if r.initiator == Initiator::User => {
                        tracing::debug!("connection closed")
                    }
                    _ => tracing::info!(%error, "connection closed"),
                }
                for w in pending {
                    w.complete(Err(error.clone()));
                }
                self.finish(error);
            }
        }
        None
    }

    fn on_reply(&mut self, channel: u16, mut waiter: Waiter, reply: Reply) {
        match (std::mem::replace(&mut waiter.then, Then::Nothing), &reply) {
            (Then::Consume { mailbox, consume }, Reply::Method(Method::BasicConsumeOk(ok))) => {
                let wanted = waiter.tx.as_ref().is_some_and(|tx| !tx.is_closed());
                if let Some(entry) = self.proto.user_mut(channel) {
                    entry.consumers.push(ConsumerEntry {
                        tag: ok.consumer_tag.clone(),
                        mailbox: mailbox.clone(),
                        no_ack: consume.no_ack,
                        consume: basic::Consume {
                            consumer_tag: ok.consumer_tag.clone(),
                            ..consume
                        },
                    });
                    if !wanted {
                        // Whoever asked for this consumer stopped waiting: cancel it.
                        mailbox.abandon();
                        let cancel = amqp_wire::basic::Cancel {
                            consumer_tag: ok.consumer_tag.clone(),
                            no_wait: false,
                        };
                        let _ = self.proto.call(
                            channel,
                            &Method::BasicCancel(cancel),
                            Waiter::detached(Then::Cancel),
                        );
                    }
                }
            }
            (Then::Cancel, Reply::Method(Method::BasicCancelOk(ok))) => {
                if let Some(entry) = self.proto.user_mut(channel) {
                    if let Some(i) = entry
                        .consumers
                        .iter()
                        .position(|c| c.tag == ok.consumer_tag)
                    {
                        let c = entry.consumers.swap_remove(i);
                        c.mailbox.close(None);
                        self.consumer_gone(&c.consume.queue);
                    }
                }
            }
            _ => {}
        }
        waiter.complete(Ok(reply));
    }

    /// A consumer on `queue` ended: an auto-delete queue without consumers is gone, so
    /// recovery must not declare it again.
    fn consumer_gone(&mut self, queue: &str) {
        let others = self
            .proto
            .users()
            .flat_map(|(_, e)| e.consumers.iter())
            .any(|c| c.consume.queue.as_str() == queue);
        if !others {
            self.topology.auto_delete_unused(queue);
        }
    }

    fn broadcast(&mut self, event: ConnectionEvent) {
        self.events.retain(|m| match m.push(event.clone()) {
            Pushed::Stored { .. } => true,
            Pushed::Refused(_) => false,
        });
    }
}

/// The reason a channel closed by the application ends with.
pub(crate) fn user_channel_close() -> Error {
    Error::ChannelClosed(Arc::new(CloseReason {
        code: ReplyCode::REPLY_SUCCESS,
        text: "closed by the application".to_owned(),
        class_id: 0,
        method_id: 0,
        initiator: Initiator::User,
        scope: Scope::Channel,
    }))
}

/// Fails everything hanging off a channel entry.
pub(crate) fn close_entry(entry: ChanEntry, error: &Error) {
    entry.core.set_closed(error.clone());
    let clean = matches!(
        error.close_reason(),
        Some(r) if r.initiator == Initiator::User && r.is_normal() && r.scope == Scope::Channel
    );
    for c in entry.consumers {
        c.mailbox.close((!clean).then(|| error.clone()));
    }
    if let Some(m) = entry.returns {
        m.close(None);
    }
    lock(&entry.core.confirms).close(error.clone());
}
