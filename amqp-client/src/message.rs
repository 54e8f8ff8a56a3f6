//! Messages as the application sees them: deliveries to consumers, `basic.get` results,
//! returned messages, and publisher confirms.

use core::fmt;
use std::sync::{Arc, OnceLock};

use amqp_wire::{basic, BasicProperties, Method, RawProperties, ReplyCode, ShortStr};
use bytes::Bytes;

use crate::channel::ChannelCore;
use crate::error::Result;

/// A message delivered to a consumer.
///
/// Settle it with [`ack`](Self::ack), [`nack`](Self::nack) or [`reject`](Self::reject) unless
/// the consumer was started with `no_ack`. The body is the frame's own buffer when the message
/// arrived in one frame (no copy).
#[non_exhaustive]
pub struct Delivery {
    /// The tag that identifies this delivery on its channel.
    pub delivery_tag: u64,
    /// Whether the broker delivered this message before (to this or another consumer).
    pub redelivered: bool,
    /// The exchange the message was published to (empty for the default exchange).
    pub exchange: ShortStr,
    /// The routing key it was published with.
    pub routing_key: ShortStr,
    /// The consumer it was delivered to.
    pub consumer_tag: ShortStr,
    /// The message body.
    pub body: Bytes,
    /// The content header's property octets, as received (checked, not decoded).
    raw_properties: RawProperties,
    /// The properties, decoded on first access.
    decoded: OnceLock<BasicProperties>,
    pub(crate) channel: Arc<ChannelCore>,
    /// The channel's epoch when this arrived; settling it later than a recovery is refused.
    pub(crate) epoch: u64,
}

impl Delivery {
    pub(crate) fn new(
        deliver: basic::Deliver,
        properties: RawProperties,
        body: Bytes,
        channel: Arc<ChannelCore>,
    ) -> Self {
        let epoch = channel.epoch();
        Self {
            epoch,
            delivery_tag: deliver.delivery_tag,
            redelivered: deliver.redelivered,
            exchange: deliver.exchange,
            routing_key: deliver.routing_key,
            consumer_tag: deliver.consumer_tag,
            raw_properties: properties,
            decoded: OnceLock::new(),
            body,
            channel,
        }
    }

    /// The message properties, decoded from the content header the first time they are
    /// asked for (a consumer that never looks does not pay for them). The octets were
    /// checked on arrival, so this cannot fail.
    pub fn properties(&self) -> &BasicProperties {
        self.decoded.get_or_init(|| self.raw_properties.decode())
    }

    /// The properties as they travelled: flag words, then the properties they announce.
    pub fn raw_properties(&self) -> &RawProperties {
        &self.raw_properties
    }

    /// Acknowledges this message (`basic.ack`).
    pub fn ack(&self) -> Result<()> {
        self.channel.settle(
            self.epoch,
            self.delivery_tag,
            Method::BasicAck(basic::Ack {
                delivery_tag: self.delivery_tag,
                multiple: false,
            }),
        )
    }

    /// Acknowledges this message and every unacknowledged one before it on the channel.
    pub fn ack_multiple(&self) -> Result<()> {
        self.channel.settle(
            self.epoch,
            self.delivery_tag,
            Method::BasicAck(basic::Ack {
                delivery_tag: self.delivery_tag,
                multiple: true,
            }),
        )
    }

    /// Rejects this message (`basic.nack`); with `requeue` the broker delivers it again.
    pub fn nack(&self, requeue: bool) -> Result<()> {
        self.channel.settle(
            self.epoch,
            self.delivery_tag,
            Method::BasicNack(basic::Nack {
                delivery_tag: self.delivery_tag,
                multiple: false,
                requeue,
            }),
        )
    }

    /// Rejects this message (`basic.reject`); with `requeue` the broker delivers it again.
    pub fn reject(&self, requeue: bool) -> Result<()> {
        self.channel.settle(
            self.epoch,
            self.delivery_tag,
            Method::BasicReject(basic::Reject {
                delivery_tag: self.delivery_tag,
                requeue,
            }),
        )
    }

    /// Whether the connection recovered since this arrived: then it can no longer be settled
    /// ([`Error::StaleDelivery`](crate::Error::StaleDelivery)) and the broker redelivers it.
    pub fn is_stale(&self) -> bool {
        self.epoch != self.channel.epoch()
    }

    /// The channel number the message arrived on.
    pub fn channel_id(&self) -> u16 {
        self.channel.id()
    }
}

impl crate::mailbox::Weigh for Delivery {
    fn weight(&self) -> usize {
        self.body.len()
    }
}

impl crate::mailbox::Weigh for ReturnedMessage {
    fn weight(&self) -> usize {
        self.body.len()
    }
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("delivery_tag", &self.delivery_tag)
            .field("redelivered", &self.redelivered)
            .field("exchange", &self.exchange)
            .field("routing_key", &self.routing_key)
            .field("consumer_tag", &self.consumer_tag)
            .field("properties", self.properties())
            .field("body_len", &self.body.len())
            .field("channel", &self.channel.id())
            .finish()
    }
}

/// A message fetched with `basic.get`.
#[non_exhaustive]
#[derive(Debug)]
pub struct GetMessage {
    /// The delivery; settle it like a consumer's.
    pub delivery: Delivery,
    /// How many messages were left in the queue.
    pub message_count: u32,
}

/// A message the broker could not route and sent back (`basic.return`), because it was
/// published `mandatory` (or `immediate`).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub struct ReturnedMessage {
    /// Why it came back (`NO_ROUTE(312)`, …).
    pub reply_code: ReplyCode,
    /// The broker's explanation.
    pub reply_text: ShortStr,
    /// The exchange it was published to.
    pub exchange: ShortStr,
    /// The routing key it was published with.
    pub routing_key: ShortStr,
    /// Its properties.
    pub properties: BasicProperties,
    /// Its body.
    pub body: Bytes,
}

impl ReturnedMessage {
    pub(crate) fn new(returned: basic::Return, properties: &RawProperties, body: Bytes) -> Self {
        Self {
            reply_code: returned.reply_code,
            reply_text: returned.reply_text,
            exchange: returned.exchange,
            routing_key: returned.routing_key,
            properties: properties.decode(),
            body,
        }
    }
}

/// The broker's verdict on a published message, in confirm mode.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub enum Confirmation {
    /// The broker took responsibility for the message (`basic.ack`).
    Ack,
    /// The broker refused or lost the message (`basic.nack`), e.g. a full queue with
    /// `x-overflow=reject-publish`.
    Nack,
    /// The message was unroutable and published `mandatory`: the broker returned it, then
    /// acknowledged it.
    Returned(Box<ReturnedMessage>),
    /// The channel is not in confirm mode, so there is no verdict to wait for.
    NotRequested,
}

impl Confirmation {
    /// Whether the broker acknowledged the message and routed it.
    pub fn is_ack(&self) -> bool {
        matches!(self, Self::Ack)
    }

    /// Whether the broker negatively acknowledged the message.
    pub fn is_nack(&self) -> bool {
        matches!(self, Self::Nack)
    }

    /// The returned message, if the broker returned it.
    pub fn returned(&self) -> Option<&ReturnedMessage> {
        match self {
            Self::Returned(m) => Some(m),
            _ => None,
        }
    }
}
