//! Frames looked at where they lie in the read buffer: [`FrameDecoder::decode_ref`].
//!
//! The owned [`Frame`] shares the read buffer through `Bytes` handles, one reference count per
//! frame that keeps anything (a body, a header, a name too long to be kept inline). A
//! [`FrameRef`] borrows the buffer instead: no handle, no count, nothing copied. It suits code
//! that looks at each frame and moves on (a router, a proxy, a monitor, a consumer that copies
//! the body where it wants it); `into_owned` turns any part of it into the owned form.

use bytes::Bytes;

use crate::constants::{FRAME_BODY, FRAME_HEADER, FRAME_METHOD};
use crate::frame::{check_properties, decode_header, Front, HEADER_LEN};
use crate::{
    BasicPropertiesRef, ContentHeader, Frame, FrameDecoder, MethodRef, RawProperties, WireError,
};

/// One AMQP frame, decoded where it lies: the borrowed form of [`Frame`].
#[derive(Debug, Clone, PartialEq)]
pub enum FrameRef<'a> {
    /// A method frame (type 1).
    Method {
        /// The channel.
        channel: u16,
        /// The method and its arguments.
        method: MethodRef<'a>,
    },
    /// A content header frame (type 2), announcing a message's body size and properties.
    Header {
        /// The channel.
        channel: u16,
        /// The header.
        header: ContentHeaderRef<'a>,
    },
    /// A content body frame (type 3): one piece of a message body.
    Body {
        /// The channel.
        channel: u16,
        /// The octets, where they lie in the read buffer.
        payload: &'a [u8],
    },
    /// A heartbeat frame (type 8). Always on channel 0 when decoded.
    Heartbeat {
        /// The channel (0; [`FrameDecoder`] refuses any other).
        channel: u16,
    },
}

impl FrameRef<'_> {
    /// The channel the frame is on.
    pub fn channel(&self) -> u16 {
        match *self {
            Self::Method { channel, .. }
            | Self::Header { channel, .. }
            | Self::Body { channel, .. }
            | Self::Heartbeat { channel } => channel,
        }
    }

    /// The owned [`Frame`] (strings, tables, properties and body copied).
    pub fn into_owned(self) -> Frame {
        match self {
            Self::Method { channel, method } => Frame::Method {
                channel,
                method: method.into_owned(),
            },
            Self::Header { channel, header } => Frame::Header {
                channel,
                header: header.into_owned(),
            },
            Self::Body { channel, payload } => Frame::Body {
                channel,
                payload: Bytes::copy_from_slice(payload),
            },
            Self::Heartbeat { channel } => Frame::Heartbeat { channel },
        }
    }
}

/// A content header frame's payload, decoded where it lies: the borrowed form of
/// [`ContentHeader`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentHeaderRef<'a> {
    /// The class of the method that carries the content; always 60 (`basic`).
    pub class_id: u16,
    /// Total body size in octets, summed over the body frames that follow.
    pub body_size: u64,
    /// The message properties, as they travel.
    pub properties: RawPropertiesRef<'a>,
}

impl<'a> ContentHeaderRef<'a> {
    /// Decodes a content header frame's payload where it lies.
    ///
    /// # Errors
    /// Those of [`ContentHeader::decode`] on the same octets.
    pub fn decode(payload: &'a [u8]) -> Result<Self, WireError> {
        let (class_id, body_size, properties) =
            decode_header(payload, RawPropertiesRef::from_wire)?;
        Ok(Self {
            class_id,
            body_size,
            properties,
        })
    }

    /// The owned [`ContentHeader`] (the properties copied).
    pub fn into_owned(self) -> ContentHeader {
        ContentHeader {
            class_id: self.class_id,
            body_size: self.body_size,
            properties: self.properties.into_owned(),
        }
    }
}

/// Message properties in their wire form, where they lie: the borrowed form of
/// [`RawProperties`]. Checked in full when the header was decoded; [`decode`](Self::decode)
/// builds the typed [`BasicPropertiesRef`] and cannot fail.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RawPropertiesRef<'a> {
    /// Flag words and properties, checked.
    octets: &'a [u8],
    /// The first flag word.
    flags: u16,
}

impl<'a> RawPropertiesRef<'a> {
    /// Takes `octets` as the whole property part of a content header (flags, then properties,
    /// then nothing), after checking them; `what` names the enclosing structure in the error.
    ///
    /// # Errors
    /// Those of [`RawProperties::from_wire`] on the same octets.
    pub fn from_wire(octets: &'a [u8], what: &'static str) -> Result<Self, WireError> {
        let flags = check_properties(octets, what)?;
        Ok(Self { octets, flags })
    }

    /// The typed properties, borrowing their strings and tables.
    #[inline]
    pub fn decode(&self) -> BasicPropertiesRef<'a> {
        BasicPropertiesRef::decode_checked(self.octets)
    }

    /// The first property flags word: bit 15 for `content-type`, downwards.
    pub fn flags(&self) -> u16 {
        self.flags
    }

    /// Whether no property is set.
    pub fn is_empty(&self) -> bool {
        self.flags & 0xfffe == 0
    }

    /// The wire octets: flag words, then the properties they announce.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.octets
    }

    /// The owned [`RawProperties`] (a copy of the octets).
    pub fn into_owned(self) -> RawProperties {
        RawProperties::from_checked(Bytes::copy_from_slice(self.octets), self.flags)
    }
}

impl core::fmt::Debug for RawPropertiesRef<'_> {
    /// Shows the decoded properties.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("RawPropertiesRef")
            .field(&self.decode())
            .finish()
    }
}

impl FrameDecoder {
    /// Decodes the frame at the front of `src` where it lies, and moves `src` past it: the
    /// borrowed form of [`decode`](Self::decode), for callers that look at each frame and move
    /// on. Nothing is copied and no reference count is touched; the frame borrows `src`'s
    /// octets.
    ///
    /// - `Ok(None)`: `src` holds no complete frame yet; `src` is left as it was.
    /// - `Ok(Some(frame))`: `src` now starts after the frame.
    /// - `Err(_)`: the stream is malformed (the same errors, for the same octets, as
    ///   [`decode`](Self::decode)); `src` is left as it was.
    ///
    /// ```
    /// use amqp_wire::{FrameDecoder, FrameRef, WireError};
    ///
    /// // A body frame of two octets on channel 1, then the start of another frame.
    /// let buf = b"\x03\x00\x01\x00\x00\x00\x02hi\xce\x03\x00";
    /// let mut src = &buf[..];
    /// let decoder = FrameDecoder::new(131_072);
    /// let mut octets = 0;
    /// while let Some(frame) = decoder.decode_ref(&mut src)? {
    ///     if let FrameRef::Body { payload, .. } = frame {
    ///         octets += payload.len();
    ///     }
    /// }
    /// assert_eq!(octets, 2);
    /// assert_eq!(src, b"\x03\x00");
    /// # Ok::<(), WireError>(())
    /// ```
    #[inline]
    pub fn decode_ref<'a>(&self, src: &mut &'a [u8]) -> Result<Option<FrameRef<'a>>, WireError> {
        let octets: &'a [u8] = src;
        let Front::Whole {
            frame_type,
            channel,
            total,
        } = self.front(octets)?
        else {
            return Ok(None);
        };
        let payload = octets.get(HEADER_LEN..total - 1).unwrap_or_default();
        let frame = match frame_type {
            FRAME_METHOD => FrameRef::Method {
                channel,
                method: MethodRef::decode(payload)?,
            },
            FRAME_HEADER => FrameRef::Header {
                channel,
                header: ContentHeaderRef::decode(payload)?,
            },
            FRAME_BODY => FrameRef::Body { channel, payload },
            _ => FrameRef::Heartbeat { channel },
        };
        *src = octets.get(total..).unwrap_or_default();
        Ok(Some(frame))
    }
}
