//! Where a message goes: [`Publish`], the target of [`Channel::publish`].
//!
//! [`Channel::publish`]: crate::Channel::publish

use std::time::Duration;

use crate::options::PublishOptions;

/// The destination of a message and how to publish it: an exchange and a routing key, each
/// named by the method that sets it, so the two strings cannot be swapped unnoticed.
///
/// ```
/// use amqp_client::Publish;
///
/// // Straight to a queue, through the default exchange.
/// let to_queue = Publish::to_queue("jobs");
/// assert_eq!((to_queue.exchange_name(), to_queue.routing_key_value()), ("", "jobs"));
///
/// // Through an exchange, with a routing key, returned if no queue is bound.
/// let routed = Publish::exchange("logs").routing_key("app.error").mandatory(true);
/// assert_eq!((routed.exchange_name(), routed.routing_key_value()), ("logs", "app.error"));
/// assert!(routed.options_value().mandatory);
/// ```
#[must_use = "a Publish only describes a message's destination; pass it to Channel::publish"]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publish<'a> {
    exchange: &'a str,
    routing_key: &'a str,
    options: PublishOptions,
}

impl<'a> Publish<'a> {
    /// To the queue named `queue`, through the default exchange (`""`), which routes by
    /// queue name.
    pub fn to_queue(queue: &'a str) -> Self {
        Self {
            exchange: "",
            routing_key: queue,
            options: PublishOptions::default(),
        }
    }

    /// To the exchange named `exchange`, with an empty routing key until
    /// [`routing_key`](Self::routing_key) sets one.
    pub fn exchange(exchange: &'a str) -> Self {
        Self {
            exchange,
            routing_key: "",
            options: PublishOptions::default(),
        }
    }

    /// The routing key the exchange routes by.
    pub fn routing_key(mut self, routing_key: &'a str) -> Self {
        self.routing_key = routing_key;
        self
    }

    /// Return the message (`basic.return`) if no queue is bound to receive it.
    pub fn mandatory(mut self, mandatory: bool) -> Self {
        self.options.mandatory = mandatory;
        self
    }

    /// While the connection is recovering, wait up to `wait` for it to be open again instead
    /// of failing at once (see [`PublishOptions::wait_for_recovery`]).
    pub fn wait_for_recovery(mut self, wait: Duration) -> Self {
        self.options.wait_for_recovery = Some(wait);
        self
    }

    /// Every option at once, replacing those set so far.
    pub fn options(mut self, options: PublishOptions) -> Self {
        self.options = options;
        self
    }

    /// The exchange's name (`""`: the default exchange).
    pub fn exchange_name(&self) -> &'a str {
        self.exchange
    }

    /// The routing key.
    pub fn routing_key_value(&self) -> &'a str {
        self.routing_key
    }

    /// The options of `basic.publish`.
    pub fn options_value(&self) -> PublishOptions {
        self.options
    }
}
