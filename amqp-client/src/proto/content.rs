//! Content: a `basic.deliver`, `basic.return` or `basic.get-ok` method followed by a content
//! header and body frames, assembled into one message. A body that arrives in one frame is
//! handed on as that frame's own bytes; the announced size is checked against the client's
//! limit before anything is buffered.

use amqp_wire::{basic, RawProperties, ReplyCode};
use bytes::{Bytes, BytesMut};

use super::channels::{live, ChanPhase};
use super::{Event, Proto, Reply};

/// A message being assembled from method, header and body frames.
#[derive(Debug)]
pub(super) struct Assembly<T> {
    pub(super) kind: Incoming<T>,
    header: Option<(u64, RawProperties)>,
    body: Body,
}

impl<T> Assembly<T> {
    /// A message whose method arrived; its header and body are to follow.
    pub(super) fn new(kind: Incoming<T>) -> Self {
        Self {
            kind,
            header: None,
            body: Body::Empty,
        }
    }
}

/// The method that starts a message.
#[derive(Debug)]
pub(super) enum Incoming<T> {
    Deliver(basic::Deliver),
    Return(basic::Return),
    GetOk(basic::GetOk, T),
}

#[derive(Debug)]
enum Body {
    Empty,
    /// Arrived in one frame: the frame's own bytes, no copy.
    One(Bytes),
    Many(BytesMut),
}

impl Body {
    fn len(&self) -> usize {
        match self {
            Self::Empty => 0,
            Self::One(b) => b.len(),
            Self::Many(b) => b.len(),
        }
    }

    fn push(&mut self, payload: Bytes, expected: u64) {
        *self = match std::mem::replace(self, Self::Empty) {
            Self::Empty => Self::One(payload),
            Self::One(first) => {
                // Reserve what was announced, but never trust a huge announced size for more
                // than what has arrived plus a few megabytes.
                let cap = (expected as usize).min(first.len() + payload.len() + (4 << 20));
                let mut many = BytesMut::with_capacity(cap);
                many.extend_from_slice(&first);
                many.extend_from_slice(&payload);
                Self::Many(many)
            }
            Self::Many(mut many) => {
                many.extend_from_slice(&payload);
                Self::Many(many)
            }
        }
    }

    fn into_bytes(self) -> Bytes {
        match self {
            Self::Empty => Bytes::new(),
            Self::One(b) => b,
            Self::Many(b) => b.freeze(),
        }
    }
}

impl<T, U> Proto<T, U> {
    pub(super) fn content_header(
        &mut self,
        id: u16,
        class_id: u16,
        body_size: u64,
        properties: RawProperties,
    ) {
        let max = self.settings.max_message_size;
        let Some(chan) = live(&mut self.channels, id) else {
            let text = format!("content header on channel {id}, which is not open");
            return self.violation_ids(ReplyCode::CHANNEL_ERROR, text, 0, 0);
        };
        if matches!(chan.phase, ChanPhase::Closing | ChanPhase::AwaitCloseOk) {
            return;
        }
        match &mut chan.content {
            Some(assembly) if assembly.header.is_none() => {
                if class_id != basic::CLASS_ID {
                    let text = format!("content header for class {class_id} on channel {id}");
                    return self.violation_ids(ReplyCode::FRAME_ERROR, text, 0, 0);
                }
                if body_size > max {
                    let text = format!(
                        "message body of {body_size} octets exceeds the client's limit of {max}"
                    );
                    return self.violation_ids(ReplyCode::RESOURCE_ERROR, text, 0, 0);
                }
                assembly.header = Some((body_size, properties));
                if body_size == 0 {
                    self.complete_content(id);
                }
            }
            _ => {
                let text = format!("content header on channel {id} without a method before it");
                self.violation_ids(ReplyCode::UNEXPECTED_FRAME, text, 0, 0);
            }
        }
    }

    pub(super) fn content_body(&mut self, id: u16, payload: Bytes) {
        let Some(chan) = live(&mut self.channels, id) else {
            let text = format!("content body on channel {id}, which is not open");
            return self.violation_ids(ReplyCode::CHANNEL_ERROR, text, 0, 0);
        };
        if matches!(chan.phase, ChanPhase::Closing | ChanPhase::AwaitCloseOk) {
            return;
        }
        let Some(Assembly {
            header: Some((size, _)),
            body,
            ..
        }) = &mut chan.content
        else {
            let text = format!("content body on channel {id} without a content header");
            return self.violation_ids(ReplyCode::UNEXPECTED_FRAME, text, 0, 0);
        };
        let size = *size;
        let have = body.len() as u64;
        if have + payload.len() as u64 > size {
            let text = format!(
                "content body on channel {id} overruns the announced size of {size} octets"
            );
            return self.violation_ids(ReplyCode::FRAME_ERROR, text, 0, 0);
        }
        body.push(payload, size);
        if body.len() as u64 == size {
            self.complete_content(id);
        }
    }

    fn complete_content(&mut self, id: u16) {
        let Some(chan) = live(&mut self.channels, id) else {
            return;
        };
        let Some(Assembly {
            kind,
            header: Some((_, properties)),
            body,
        }) = chan.content.take()
        else {
            return;
        };
        let body = body.into_bytes();
        self.events.push_back(match kind {
            Incoming::Deliver(deliver) => Event::Delivery {
                channel: id,
                deliver,
                properties,
                body,
            },
            Incoming::Return(returned) => Event::Returned {
                channel: id,
                returned,
                properties,
                body,
            },
            Incoming::GetOk(get_ok, token) => Event::Reply {
                channel: id,
                token,
                reply: Reply::GetOk(Box::new((get_ok, properties, body))),
            },
        });
    }
}
