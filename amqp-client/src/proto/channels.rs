//! Channels: opening (on the lowest free number, or on a given one for recovery), the
//! commands sent on an open channel, matching each synchronous reply to the oldest request it
//! answers, the asynchronous methods the server sends (ack/nack, cancel, flow), and both
//! channel close handshakes.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use amqp_wire::{
    basic, channel, AmqpMethod, BasicProperties, Method, PublishRef, ReplyCode, SyncMethod,
};

use super::content::{Assembly, Incoming};
use super::{encode, short, CommandError, Event, Phase, Proto, Reply};
use crate::config::ConnectionConfig;
use crate::error::{CloseReason, Error, Initiator, Scope};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ChanPhase {
    Opening,
    Open,
    /// channel.close sent; everything but close/close-ok is discarded.
    Closing,
    /// Both sides sent channel.close: the server's was answered and the channel reported
    /// closed with its reason; the number stays taken until the close-ok for ours arrives.
    AwaitCloseOk,
    /// Not open on this connection, but the owner's record lives on (the connection was
    /// lost): recovery opens it again with [`Proto::open_channel_at`]. The number is taken.
    Detached,
}

/// (class id, method id) pairs that answer a request.
pub(super) type Expect = &'static [(u16, u16)];

#[derive(Debug)]
pub(super) struct Chan<T, U> {
    pub(super) phase: ChanPhase,
    rpcs: VecDeque<(Expect, T)>,
    pub(super) content: Option<Assembly<T>>,
    /// In confirm mode: the tag the next publish gets.
    next_publish_tag: Option<u64>,
    /// The owner's record of the channel.
    pub(super) user: Option<U>,
}

impl<T, U> Chan<T, U> {
    /// A channel not open on this connection, with the owner's record.
    pub(super) fn detached(user: U) -> Self {
        Self {
            phase: ChanPhase::Detached,
            rpcs: VecDeque::new(),
            content: None,
            next_publish_tag: None,
            user: Some(user),
        }
    }

    pub(super) fn drain_tokens(&mut self) -> Vec<T> {
        let mut out: Vec<T> = self.rpcs.drain(..).map(|(_, t)| t).collect();
        if let Some(Assembly {
            kind: Incoming::GetOk(_, token),
            ..
        }) = self.content.take()
        {
            out.push(token);
        }
        out
    }
}

impl<T, U> Proto<T, U> {
    fn check_open(&self) -> Result<(), CommandError> {
        match self.phase {
            Phase::Open => Ok(()),
            _ => Err(CommandError::Connection(self.error.clone().unwrap_or_else(
                || {
                    Error::ConnectionClosed(Arc::new(CloseReason {
                        code: ReplyCode::CONNECTION_FORCED,
                        text: "connection is not open".to_owned(),
                        class_id: 0,
                        method_id: 0,
                        initiator: Initiator::Library,
                        scope: Scope::Connection,
                    }))
                },
            ))),
        }
    }

    fn open_chan(&mut self, channel: u16) -> Result<&mut Chan<T, U>, CommandError> {
        self.check_open()?;
        match self.channels.get_mut(usize::from(channel)) {
            Some(Some(c)) if matches!(c.phase, ChanPhase::Opening | ChanPhase::Open) => Ok(c),
            _ => Err(CommandError::ChannelNotOpen),
        }
    }

    /// Opens a channel on the lowest free number; `token` comes back with `channel.open-ok`.
    pub(crate) fn open_channel(&mut self, token: T) -> Result<u16, CommandError> {
        self.check_open()?;
        let max = self.tuning.channel_max;
        let free = |chans: &[Option<Chan<T, U>>], id: u16| {
            chans.get(usize::from(id)).is_none_or(|c| c.is_none())
        };
        let mut id = self.next_channel.clamp(1, max.max(1));
        let mut tries = 0u32;
        while !free(&self.channels, id) {
            id = if id >= max { 1 } else { id + 1 };
            tries += 1;
            if tries > u32::from(max) {
                return Err(CommandError::ChannelsExhausted(max));
            }
        }
        self.next_channel = if id >= max { 1 } else { id + 1 };
        self.insert_channel(id, token);
        Ok(id)
    }

    /// Opens channel number `id` (which must be free, or detached), as recovery does to give
    /// a channel its old number back; a detached channel keeps its owner's record.
    pub(crate) fn open_channel_at(&mut self, id: u16, token: T) -> Result<(), CommandError> {
        self.check_open()?;
        let taken = matches!(
            self.channels.get(usize::from(id)),
            Some(Some(c)) if c.phase != ChanPhase::Detached
        );
        if id == 0 || id > self.tuning.channel_max || taken {
            return Err(CommandError::ChannelsExhausted(self.tuning.channel_max));
        }
        self.insert_channel(id, token);
        Ok(())
    }

    fn insert_channel(&mut self, id: u16, token: T) {
        let idx = usize::from(id);
        if self.channels.len() <= idx {
            self.channels.resize_with(idx + 1, || None);
        }
        let mut rpcs = VecDeque::new();
        rpcs.push_back((channel::Open::REPLY_IDS, token));
        if let Some(slot) = self.channels.get_mut(idx) {
            let user = slot.take().and_then(|c| c.user);
            *slot = Some(Chan {
                phase: ChanPhase::Opening,
                rpcs,
                content: None,
                next_publish_tag: None,
                user,
            });
        }
        encode::method(&mut self.out, id, &Method::ChannelOpen(channel::Open {}));
    }

    // ----- the owner's record of each channel ------------------------------------------------

    /// Attaches the owner's record to channel `id`, just opened (it comes back with the
    /// channel's [`Event::ChannelClosed`]).
    pub(crate) fn set_user(&mut self, id: u16, user: U) {
        if let Some(Some(chan)) = self.channels.get_mut(usize::from(id)) {
            chan.user = Some(user);
        }
    }

    /// The owner's record of channel `id`.
    pub(crate) fn user_mut(&mut self, id: u16) -> Option<&mut U> {
        self.channels
            .get_mut(usize::from(id))
            .and_then(|c| c.as_mut()?.user.as_mut())
    }

    /// Every owner's record, with its channel number.
    pub(crate) fn users(&self) -> impl Iterator<Item = (u16, &U)> {
        self.channels.iter().enumerate().filter_map(|(id, c)| {
            let user = c.as_ref()?.user.as_ref()?;
            Some((u16::try_from(id).ok()?, user))
        })
    }

    /// Every owner's record.
    pub(crate) fn users_mut(&mut self) -> impl Iterator<Item = &mut U> {
        self.channels
            .iter_mut()
            .filter_map(|c| c.as_mut()?.user.as_mut())
    }

    /// Takes the owner's record of channel `id` away; a detached channel is forgotten with it.
    pub(crate) fn take_user(&mut self, id: u16) -> Option<U> {
        let slot = self.channels.get_mut(usize::from(id))?;
        let chan = slot.as_mut()?;
        let user = chan.user.take();
        if chan.phase == ChanPhase::Detached {
            *slot = None;
        }
        user
    }

    /// Takes every owner's record away (the connection ended for good).
    pub(crate) fn take_users(&mut self) -> Vec<U> {
        let ids: Vec<u16> = self.users().map(|(id, _)| id).collect();
        ids.into_iter()
            .filter_map(|id| self.take_user(id))
            .collect()
    }

    /// A new connection in place of this one, as recovery makes: every owner's record moves
    /// over, its channel detached until [`open_channel_at`](Self::open_channel_at) opens it
    /// again.
    pub(crate) fn renew(&mut self, cfg: &ConnectionConfig, now: Instant) {
        let mut next = Self::new(cfg, now);
        let ids: Vec<u16> = self.users().map(|(id, _)| id).collect();
        for id in ids {
            if let Some(user) = self.take_user(id) {
                let idx = usize::from(id);
                if next.channels.len() <= idx {
                    next.channels.resize_with(idx + 1, || None);
                }
                if let Some(slot) = next.channels.get_mut(idx) {
                    *slot = Some(Chan::detached(user));
                }
            }
        }
        *self = next;
    }

    /// Sends a synchronous method; `token` comes back with its reply.
    pub(crate) fn call(
        &mut self,
        channel: u16,
        method: &Method,
        token: T,
    ) -> Result<(), CommandError> {
        let chan = self.open_chan(channel)?;
        let expect = method.reply_ids();
        if let Method::ConfirmSelect(_) = method {
            // Publishes are counted from the moment the broker sees confirm.select, so
            // counting starts now, not at select-ok.
            if chan.next_publish_tag.is_none() {
                chan.next_publish_tag = Some(1);
            }
        }
        chan.rpcs.push_back((expect, token));
        encode::method(&mut self.out, channel, method);
        Ok(())
    }

    /// Sends an asynchronous method (ack, nack, reject, recover-async, cancel with no-wait…).
    pub(crate) fn send(&mut self, channel: u16, method: &Method) -> Result<(), CommandError> {
        self.open_chan(channel)?;
        encode::method(&mut self.out, channel, method);
        Ok(())
    }

    /// Publishes a message. Returns its delivery tag when the channel is in confirm mode.
    ///
    /// The names must already be checked against their domains.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn publish(
        &mut self,
        channel: u16,
        exchange: &str,
        routing_key: &str,
        mandatory: bool,
        immediate: bool,
        properties: &BasicProperties,
        body: &[u8],
    ) -> Result<Option<u64>, CommandError> {
        let frame_max = self.tuning.frame_max;
        self.open_chan(channel)?;
        let publish = PublishRef {
            exchange,
            routing_key,
            mandatory,
            immediate,
        };
        encode::publish(
            &mut self.out,
            channel,
            &publish,
            properties,
            body,
            frame_max,
        )
        .map_err(CommandError::Invalid)?;
        let chan = self.open_chan(channel)?;
        let tag = chan.next_publish_tag;
        if let Some(t) = tag {
            chan.next_publish_tag = Some(t + 1);
        }
        Ok(tag)
    }

    /// Starts closing a channel; `token` comes back with `channel.close-ok`.
    pub(crate) fn close_channel(
        &mut self,
        channel: u16,
        code: ReplyCode,
        text: &str,
        token: T,
    ) -> Result<(), CommandError> {
        self.check_open()?;
        let Some(chan) = live(&mut self.channels, channel) else {
            return Err(CommandError::ChannelNotOpen);
        };
        if chan.phase == ChanPhase::AwaitCloseOk {
            return Err(CommandError::ChannelNotOpen);
        }
        chan.rpcs.push_back((channel::Close::REPLY_IDS, token));
        if chan.phase != ChanPhase::Closing {
            chan.phase = ChanPhase::Closing;
            let close = channel::Close {
                reply_code: code,
                reply_text: short(text),
                class_id: 0,
                method_id: 0,
            };
            encode::method(&mut self.out, channel, &Method::ChannelClose(close));
        }
        Ok(())
    }

    pub(super) fn channel_method(&mut self, id: u16, method: Method) {
        let Some(chan) = live(&mut self.channels, id) else {
            let text = format!("{} on channel {id}, which is not open", method.name());
            return self.violation(ReplyCode::CHANNEL_ERROR, text, &method);
        };
        match chan.phase {
            ChanPhase::Closing => {
                match method {
                    Method::ChannelCloseOk(_) => self.channel_closed_by_us(id),
                    Method::ChannelClose(close) => {
                        // The closes crossed. Theirs is answered and its reason is the
                        // channel's (our close request fails with it too); ours is still
                        // owed a close-ok, so the number stays taken until it comes.
                        encode::method(
                            &mut self.out,
                            id,
                            &Method::ChannelCloseOk(channel::CloseOk {}),
                        );
                        let pending = chan.drain_tokens();
                        chan.phase = ChanPhase::AwaitCloseOk;
                        let user = chan.user.take();
                        self.events.push_back(Event::ChannelClosed {
                            channel: id,
                            reason: server_channel_reason(&close),
                            pending,
                            user,
                        });
                    }
                    // Spec: after sending channel.close, discard everything but
                    // close/close-ok.
                    _ => {}
                }
                return;
            }
            ChanPhase::AwaitCloseOk => {
                if let Method::ChannelCloseOk(_) = method {
                    if let Some(slot) = self.channels.get_mut(usize::from(id)) {
                        *slot = None;
                    }
                }
                return;
            }
            ChanPhase::Opening | ChanPhase::Open => {}
            // `live_chan` skips detached channels.
            ChanPhase::Detached => return,
        }
        if chan.content.is_some() {
            let text = format!(
                "{} on channel {id} while a message's content was expected",
                method.name()
            );
            return self.violation(ReplyCode::UNEXPECTED_FRAME, text, &method);
        }
        match method {
            Method::BasicDeliver(deliver) => {
                chan.content = Some(Assembly::new(Incoming::Deliver(deliver)));
            }
            Method::BasicReturn(returned) => {
                chan.content = Some(Assembly::new(Incoming::Return(returned)));
            }
            Method::BasicAck(ack) => self.events.push_back(Event::Confirm {
                channel: id,
                delivery_tag: ack.delivery_tag,
                multiple: ack.multiple,
                ack: true,
            }),
            Method::BasicNack(nack) => self.events.push_back(Event::Confirm {
                channel: id,
                delivery_tag: nack.delivery_tag,
                multiple: nack.multiple,
                ack: false,
            }),
            Method::BasicCancel(cancel) => {
                if !cancel.no_wait {
                    let ok = basic::CancelOk {
                        consumer_tag: cancel.consumer_tag.clone(),
                    };
                    encode::method(&mut self.out, id, &Method::BasicCancelOk(ok));
                }
                self.events.push_back(Event::ConsumerCancelled {
                    channel: id,
                    consumer_tag: cancel.consumer_tag,
                });
            }
            Method::ChannelFlow(flow) => {
                let ok = channel::FlowOk {
                    active: flow.active,
                };
                encode::method(&mut self.out, id, &Method::ChannelFlowOk(ok));
                self.events.push_back(Event::Flow {
                    channel: id,
                    active: flow.active,
                });
            }
            Method::ChannelClose(close) => {
                encode::method(
                    &mut self.out,
                    id,
                    &Method::ChannelCloseOk(channel::CloseOk {}),
                );
                let reason = server_channel_reason(&close);
                self.remove_channel(id, reason);
            }
            reply => {
                let ids = (reply.class_id(), reply.method_id());
                // Replies to one kind of request come in order, but RabbitMQ may answer a
                // later request before an earlier one of another kind (basic.cancel-ok waits
                // for the queue process while a queue.declare-ok does not), so the reply goes
                // to the oldest request it can answer.
                let at = chan
                    .rpcs
                    .iter()
                    .position(|(expect, _)| expect.contains(&ids));
                let Some((_, token)) = at.and_then(|i| chan.rpcs.remove(i)) else {
                    let waiting = chan
                        .rpcs
                        .iter()
                        .flat_map(|(expect, _)| expect.iter())
                        .filter_map(|&(c, m)| Method::name_of(c, m))
                        .collect::<Vec<_>>();
                    let waiting = if waiting.is_empty() {
                        "no reply".to_owned()
                    } else {
                        waiting.join(", ")
                    };
                    let text = format!(
                        "unexpected {} on channel {id} (waiting for {waiting})",
                        reply.name()
                    );
                    return self.violation(ReplyCode::UNEXPECTED_FRAME, text, &reply);
                };
                match reply {
                    Method::BasicGetOk(get_ok) => {
                        chan.content = Some(Assembly::new(Incoming::GetOk(get_ok, token)));
                    }
                    Method::ChannelOpenOk(_) => {
                        chan.phase = ChanPhase::Open;
                        self.events.push_back(Event::Reply {
                            channel: id,
                            token,
                            reply: Reply::Method(reply),
                        });
                    }
                    reply => self.events.push_back(Event::Reply {
                        channel: id,
                        token,
                        reply: Reply::Method(reply),
                    }),
                }
            }
        }
    }

    /// Our channel.close was answered: the close requests succeed, anything else pending fails.
    fn channel_closed_by_us(&mut self, id: u16) {
        let Some(mut chan) = self
            .channels
            .get_mut(usize::from(id))
            .and_then(Option::take)
        else {
            return;
        };
        let close_ids = (channel::CloseOk::CLASS_ID, channel::CloseOk::METHOD_ID);
        let mut failed = Vec::new();
        for (expect, token) in chan.rpcs.drain(..) {
            if expect.contains(&close_ids) {
                self.events.push_back(Event::Reply {
                    channel: id,
                    token,
                    reply: Reply::Method(Method::ChannelCloseOk(channel::CloseOk {})),
                });
            } else {
                failed.push(token);
            }
        }
        failed.extend(chan.drain_tokens());
        self.events.push_back(Event::ChannelClosed {
            channel: id,
            reason: Arc::new(CloseReason {
                code: ReplyCode::REPLY_SUCCESS,
                text: "closed by the application".to_owned(),
                class_id: 0,
                method_id: 0,
                initiator: Initiator::User,
                scope: Scope::Channel,
            }),
            pending: failed,
            user: chan.user,
        });
    }

    fn remove_channel(&mut self, id: u16, reason: Arc<CloseReason>) {
        if let Some(mut chan) = self
            .channels
            .get_mut(usize::from(id))
            .and_then(Option::take)
        {
            let pending = chan.drain_tokens();
            self.events.push_back(Event::ChannelClosed {
                channel: id,
                reason,
                pending,
                user: chan.user,
            });
        }
    }
}

/// Channel `id` in `channels`, unless it is not open on this connection (a field of
/// [`Proto`] rather than a method, so that the rest of it can be borrowed meanwhile).
pub(super) fn live<T, U>(channels: &mut [Option<Chan<T, U>>], id: u16) -> Option<&mut Chan<T, U>> {
    match channels.get_mut(usize::from(id)) {
        Some(Some(c)) if c.phase != ChanPhase::Detached => Some(c),
        _ => None,
    }
}

/// The reason carried by the server's `channel.close`.
fn server_channel_reason(close: &channel::Close) -> Arc<CloseReason> {
    Arc::new(CloseReason {
        code: close.reply_code,
        text: close.reply_text.as_str().to_owned(),
        class_id: close.class_id,
        method_id: close.method_id,
        initiator: Initiator::Server,
        scope: Scope::Channel,
    })
}
