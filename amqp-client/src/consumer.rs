//! Consumers and returned-message streams.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use amqp_wire::{basic, Method, ShortStr};
use futures_core::Stream;

use crate::channel::Channel;
use crate::connection::{Then, Waiter};
use crate::error::{Error, Result};
use crate::mailbox::{Mailbox, Receiver};
use crate::message::{Delivery, ReturnedMessage};

/// A consumer: a [`Stream`] of the [`Delivery`]s the broker sends it.
///
/// Deliveries wait in a bounded buffer (`consumer_buffer` deliveries and `consumer_buffer_bytes`
/// octets of bodies in the connection's configuration, whichever comes first). When it is full
/// the connection stops reading from the socket until this consumer catches up,
/// so a slow consumer costs no more memory than its buffer; set a prefetch with
/// [`Channel::basic_qos`] too, so the broker does not queue up the rest in the socket.
///
/// The stream ends after [`cancel`](Self::cancel) once the buffered deliveries are taken. It
/// yields one `Err` and ends if the server cancels the consumer
/// ([`Error::ConsumerCancelled`]), or if the channel or connection fails. Dropping the consumer
/// cancels it and hands its buffered, unacknowledged deliveries back to the queue.
#[derive(Debug)]
pub struct Consumer {
    channel: Channel,
    tag: ShortStr,
    mailbox: Receiver<Delivery>,
    no_ack: bool,
}

impl Consumer {
    pub(crate) fn new(
        channel: Channel,
        tag: ShortStr,
        mailbox: Arc<Mailbox<Delivery>>,
        no_ack: bool,
    ) -> Self {
        Self {
            channel,
            tag,
            mailbox: Receiver::new(mailbox),
            no_ack,
        }
    }

    /// The consumer tag.
    pub fn tag(&self) -> &str {
        self.tag.as_str()
    }

    /// The channel the consumer runs on.
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// How many deliveries wait in the buffer, not yet taken from the stream.
    pub fn buffered_len(&self) -> usize {
        self.mailbox.mailbox().len()
    }

    /// The most deliveries buffered before the connection stops reading.
    pub fn capacity(&self) -> usize {
        self.mailbox.mailbox().capacity()
    }

    /// The next delivery, waiting for it; `None` once the consumer has ended (cancelled, or
    /// its channel closed: the error comes first). The same as the stream's `next()`, without
    /// importing a stream extension trait.
    pub async fn recv(&mut self) -> Option<Result<Delivery>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    /// Cancels the consumer (`basic.cancel`) and waits for the broker to confirm. The stream
    /// still yields what was buffered, then ends.
    pub async fn cancel(&self) -> Result<()> {
        self.channel.basic_cancel(self.tag.as_str()).await
    }
}

impl Stream for Consumer {
    type Item = Result<Delivery>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match self.mailbox.poll_next(cx) {
                // Buffered before a connection recovery: the broker redelivers it, and its tag
                // is void, so the application never sees it.
                Poll::Ready(Some(Ok(d))) if d.is_stale() => continue,
                other => return other,
            }
        }
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        let closed = self.mailbox.mailbox().is_closed();
        let left = self.mailbox.abandon();
        if closed && (left.is_empty() || self.no_ack) {
            return;
        }
        let core = self.channel_core();
        core.shared.with("consumer::drop", |inner| {
            if inner.is_recovering() {
                // Nothing to tell the broker; recovery must not bring this consumer back.
                if let Some(entry) = core.entry(inner) {
                    entry.consumers.retain(|c| c.tag != self.tag);
                }
                return;
            }
            if !self.no_ack {
                // Delivered to us but never seen by the application: back to the queue.
                for d in left.iter().filter(|d| !d.is_stale()) {
                    let reject = basic::Reject {
                        delivery_tag: d.delivery_tag,
                        requeue: true,
                    };
                    let _ = inner.proto.send(core.id(), &Method::BasicReject(reject));
                }
            }
            if !closed {
                let cancel = basic::Cancel {
                    consumer_tag: self.tag.clone(),
                    no_wait: false,
                };
                let _ = inner.proto.call(
                    core.id(),
                    &Method::BasicCancel(cancel),
                    Waiter::detached(Then::Cancel),
                );
            }
        });
        drop(left);
    }
}

impl Consumer {
    fn channel_core(&self) -> Arc<crate::channel::ChannelCore> {
        self.channel.core_arc()
    }
}

/// A stream of the messages the broker returned on a channel; see [`Channel::returns`].
#[derive(Debug)]
pub struct Returns {
    mailbox: Receiver<ReturnedMessage>,
}

impl Returns {
    pub(crate) fn new(mailbox: Arc<Mailbox<ReturnedMessage>>) -> Self {
        Self {
            mailbox: Receiver::new(mailbox),
        }
    }
}

impl Returns {
    /// The next returned message, waiting for it; `None` once the stream has ended. The same
    /// as the stream's `next()`, without importing a stream extension trait.
    pub async fn recv(&mut self) -> Option<ReturnedMessage> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl Stream for Returns {
    type Item = ReturnedMessage;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.mailbox.poll_next(cx) {
            Poll::Ready(Some(Ok(m))) => Poll::Ready(Some(m)),
            Poll::Ready(Some(Err(Error::ChannelClosed(_)) | Err(_)) | None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Returns {
    fn drop(&mut self) {
        self.mailbox.abandon();
    }
}
