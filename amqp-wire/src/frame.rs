//! Frames: the streaming decoder and the encoder.
//!
//! Every frame is a 7-octet header (type, channel, payload size), the payload, and the frame-end
//! octet `0xCE`. A message travels as a method frame (`basic.publish`, `basic.deliver`…), a
//! content-header frame carrying the body size and the [`BasicProperties`], then as many body
//! frames as it takes, each at most `frame_max - 8` payload octets.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::codec::{patch_u32, Borrowed, LongStrs, Reader};
use crate::constants::{FRAME_BODY, FRAME_END, FRAME_HEADER, FRAME_HEARTBEAT, FRAME_METHOD};
use crate::{basic, AmqpMethod, BasicProperties, Method, ProtocolHeader, WireError};

/// Octets of framing around every payload: the 7-octet header and the end octet.
pub const FRAME_OVERHEAD: usize = 8;

/// Length of the frame header (type, channel, size) that precedes the payload.
pub(crate) const HEADER_LEN: usize = 7;

/// The most the decoder reserves ahead for a frame it is waiting for.
const MAX_RESERVE: usize = 1 << 20;

/// One AMQP frame, with its payload decoded.
///
/// Payloads that are plain octets (bodies, long strings, short strings) share the buffer the
/// frame was decoded from.
// Boxing the big variant (some methods) would cost an allocation per decoded frame.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A method frame (type 1).
    Method {
        /// The channel.
        channel: u16,
        /// The method and its arguments.
        method: Method,
    },
    /// A content header frame (type 2), announcing a message's body size and properties.
    Header {
        /// The channel.
        channel: u16,
        /// The header.
        header: ContentHeader,
    },
    /// A content body frame (type 3): one piece of a message body.
    Body {
        /// The channel.
        channel: u16,
        /// The octets, sliced from the read buffer.
        payload: Bytes,
    },
    /// A heartbeat frame (type 8). Always on channel 0 when decoded.
    Heartbeat {
        /// The channel (0; [`FrameDecoder`] refuses any other).
        channel: u16,
    },
}

impl Frame {
    /// A heartbeat on channel 0: `08 0000 00000000 CE` on the wire.
    pub const HEARTBEAT: Self = Self::Heartbeat { channel: 0 };

    /// [`HEARTBEAT`](Self::HEARTBEAT) encoded: frame type, channel 0, size 0, end octet.
    ///
    /// ```
    /// let mut buf = bytes::BytesMut::new();
    /// amqp_wire::Frame::HEARTBEAT.encode(&mut buf)?;
    /// assert_eq!(&buf[..], &amqp_wire::Frame::HEARTBEAT_BYTES);
    /// # Ok::<(), amqp_wire::WireError>(())
    /// ```
    pub const HEARTBEAT_BYTES: [u8; 8] = [FRAME_HEARTBEAT, 0, 0, 0, 0, 0, 0, FRAME_END];

    /// The channel the frame belongs to.
    pub fn channel(&self) -> u16 {
        match *self {
            Self::Method { channel, .. }
            | Self::Header { channel, .. }
            | Self::Body { channel, .. }
            | Self::Heartbeat { channel } => channel,
        }
    }

    /// The frame type octet (1 method, 2 header, 3 body, 8 heartbeat).
    pub fn frame_type(&self) -> u8 {
        match self {
            Self::Method { .. } => FRAME_METHOD,
            Self::Header { .. } => FRAME_HEADER,
            Self::Body { .. } => FRAME_BODY,
            Self::Heartbeat { .. } => FRAME_HEARTBEAT,
        }
    }

    /// Appends the whole frame to `dst`; the size field is written as a placeholder and patched
    /// once the payload is in place.
    ///
    /// Fails only if the payload is larger than the 32-bit size field can describe, in which
    /// case `dst` is left as it was. Checking the size against the negotiated `frame_max` is up
    /// to the caller (compare how much `dst` grew); [`encode_publish`] does it for messages.
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), WireError> {
        let what = frame_name(self.frame_type());
        let channel = self.channel();
        match self {
            Self::Method { method, .. } => encode_method(dst, channel, method),
            Self::Header { header, .. } => {
                write_frame(dst, FRAME_HEADER, channel, 0, what, |dst| {
                    header.encode(dst)
                })
            }
            Self::Body { payload, .. } => {
                dst.reserve(payload.len() + FRAME_OVERHEAD);
                write_frame(dst, FRAME_BODY, channel, 0, what, |dst| {
                    dst.put_slice(payload);
                })
            }
            Self::Heartbeat { .. } => write_frame(dst, FRAME_HEARTBEAT, channel, 0, what, |_| {}),
        }
    }
}

/// The payload of a content header frame: which class the content belongs to, the total body
/// size, and the message properties.
///
/// The properties stay in their wire form ([`RawProperties`]) until asked for: decoding a
/// header checks them completely but builds nothing, and [`RawProperties::decode`] builds the
/// typed [`BasicProperties`] when they are wanted.
#[derive(Debug, Clone, PartialEq)]
pub struct ContentHeader {
    /// The class of the method that carries the content; always 60 (`basic`), the only class
    /// with content.
    pub class_id: u16,
    /// Total body size in octets, summed over the body frames that follow.
    pub body_size: u64,
    /// The message properties, as they travel.
    pub properties: RawProperties,
}

impl ContentHeader {
    /// A header for a `basic` message of `body_size` octets; `properties` is a
    /// [`BasicProperties`] (encoded here), a reference to one, or [`RawProperties`].
    pub fn new(body_size: u64, properties: impl Into<RawProperties>) -> Self {
        Self {
            class_id: basic::CLASS_ID,
            body_size,
            properties: properties.into(),
        }
    }

    /// Decodes a content header frame's payload: class id, weight (must be 0), body size,
    /// property flags and properties, and nothing after them. The properties are checked as
    /// thoroughly as [`BasicProperties::decode`] would, and kept as a slice of `payload`.
    pub fn decode(payload: Bytes) -> Result<Self, WireError> {
        let (class_id, body_size, properties) = decode_header(payload, RawProperties::from_wire)?;
        Ok(Self {
            class_id,
            body_size,
            properties,
        })
    }

    /// Appends the payload of a content header frame (without the frame's own header).
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_u16(self.class_id);
        dst.put_u16(0); // weight
        dst.put_u64(self.body_size);
        dst.put_slice(self.properties.as_bytes());
    }
}

/// Decodes a content header's payload: the class id, the body size, and the properties that
/// `properties` makes of the octets after them (given the name of the enclosing structure).
pub(crate) fn decode_header<B: Buf, P>(
    payload: B,
    properties: impl FnOnce(B, &'static str) -> Result<P, WireError>,
) -> Result<(u16, u64, P), WireError> {
    let mut r = Reader::new(payload);
    let (class_id, body_size) = read_header_fields(&mut r)?;
    Ok((
        class_id,
        body_size,
        properties(r.into_rest(), "content header")?,
    ))
}

/// The class id (which must be `basic`'s), the weight (which must be zero) and the body size at
/// the start of a content header.
fn read_header_fields<B: Buf>(r: &mut Reader<B>) -> Result<(u16, u64), WireError> {
    let class_id = r.u16("content header class-id")?;
    if class_id != basic::CLASS_ID {
        return Err(WireError::UnknownClass { class_id });
    }
    // "The weight field is unused and must be zero."
    if r.u16("content header weight")? != 0 {
        return Err(WireError::Domain {
            what: "content header weight",
            rule: "must be zero",
        });
    }
    Ok((class_id, r.u64("content header body-size")?))
}

/// Checks `octets` as the whole property part of a content header and returns the first flags
/// word; `what` names the enclosing structure in the error.
pub(crate) fn check_properties(octets: &[u8], what: &'static str) -> Result<u16, WireError> {
    let mut r = Reader::new(octets);
    let flags = BasicProperties::check(&mut r)?;
    r.finish(what)?;
    Ok(flags)
}

/// Message properties in their wire form: the property flags and the properties they announce,
/// exactly as a content header carries them.
///
/// A decoded header keeps its properties this way, as a slice of the read buffer: the octets
/// are checked when the frame is decoded (so every error surfaces there), but nothing is built
/// until [`decode`](Self::decode) is called. Code that only forwards or counts messages never
/// pays for properties it does not look at.
///
/// ```
/// use amqp_wire::{BasicProperties, RawProperties, ShortStr};
///
/// let props = BasicProperties::default()
///     .with_content_type(ShortStr::from_static("text/plain"))
///     .with_delivery_mode(2);
/// let raw = RawProperties::new(&props);
/// assert_eq!(raw.flags(), 0x9000);
/// assert_eq!(raw.decode(), props);
/// assert!(RawProperties::default().is_empty());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct RawProperties {
    /// Flag words and properties; checked by `BasicProperties::check` at construction.
    octets: Bytes,
    /// The first flag word.
    flags: u16,
}

impl RawProperties {
    /// Encodes `properties` (this copies them into a new buffer).
    pub fn new(properties: &BasicProperties) -> Self {
        let mut dst = BytesMut::new();
        properties.encode(&mut dst);
        Self {
            octets: dst.freeze(),
            flags: properties.flags(),
        }
    }

    /// Takes `octets` as the whole property part of a content header (flags, then properties,
    /// then nothing), after checking them; `what` names the enclosing structure in the error.
    ///
    /// # Errors
    /// Whatever [`BasicProperties::decode`] would fail with on the same octets, or
    /// [`WireError::TrailingBytes`] if octets are left after the last property.
    pub fn from_wire(octets: Bytes, what: &'static str) -> Result<Self, WireError> {
        let flags = check_properties(&octets, what)?;
        Ok(Self { octets, flags })
    }

    /// The typed properties.
    ///
    /// This cannot fail: the octets were checked when this value was made, by the same rules
    /// decoding applies.
    #[inline]
    pub fn decode(&self) -> BasicProperties {
        BasicProperties::decode_checked(&self.octets)
    }

    /// The first property flags word: bit 15 for `content-type`, downwards; see
    /// [`BasicProperties::FIELD_NAMES`].
    pub fn flags(&self) -> u16 {
        self.flags
    }

    /// Whether no property is set.
    pub fn is_empty(&self) -> bool {
        self.flags & 0xfffe == 0
    }

    /// The wire octets: flag words, then the properties they announce.
    pub fn as_bytes(&self) -> &[u8] {
        &self.octets
    }
}

impl RawProperties {
    /// `octets` that [`check_properties`] has accepted, with the first flags word it returned.
    pub(crate) fn from_checked(octets: Bytes, flags: u16) -> Self {
        Self { octets, flags }
    }
}

impl Default for RawProperties {
    /// No property set: a single zero flags word.
    fn default() -> Self {
        Self {
            octets: Bytes::from_static(&[0, 0]),
            flags: 0,
        }
    }
}

impl From<&BasicProperties> for RawProperties {
    fn from(properties: &BasicProperties) -> Self {
        Self::new(properties)
    }
}

impl From<BasicProperties> for RawProperties {
    fn from(properties: BasicProperties) -> Self {
        Self::new(&properties)
    }
}

impl core::fmt::Debug for RawProperties {
    /// Shows the decoded properties.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("RawProperties")
            .field(&self.decode())
            .finish()
    }
}

/// Writes a frame whose payload `body` appends; fails, leaving `dst` as it was, if the frame is
/// larger than `frame_max` (0: only the 32-bit size field limits it).
fn write_frame(
    dst: &mut BytesMut,
    frame_type: u8,
    channel: u16,
    frame_max: u32,
    what: &'static str,
    body: impl FnOnce(&mut BytesMut),
) -> Result<(), WireError> {
    let start = dst.len();
    dst.put_u8(frame_type);
    dst.put_u16(channel);
    dst.put_u32(0);
    body(dst);
    let payload_len = dst.len() - start - HEADER_LEN;
    let size = payload_len as u64 + FRAME_OVERHEAD as u64;
    let max = match frame_max {
        0 => u64::from(u32::MAX) + FRAME_OVERHEAD as u64,
        n => u64::from(n),
    };
    match u32::try_from(payload_len) {
        Ok(len) if size <= max => {
            patch_u32(dst, start + 3, len);
            dst.put_u8(FRAME_END);
            Ok(())
        }
        _ => {
            dst.truncate(start);
            Err(WireError::FrameTooLarge { what, size, max })
        }
    }
}

/// Appends a whole message to `dst` in one pass: the `basic.publish` method frame, the content
/// header frame, and the body split into frames of at most `frame_max - 8` octets (none at all
/// for an empty body).
///
/// `frame_max` is the negotiated maximum frame size (0: no limit but the 32-bit size field).
/// Fails, leaving `dst` as it was, if the method or header frame alone exceeds `frame_max`, or if
/// `frame_max` leaves no room for body octets.
///
/// ```
/// use amqp_wire::{basic, encode_publish, BasicProperties, ShortStr};
/// use bytes::BytesMut;
///
/// let publish = basic::Publish {
///     routing_key: ShortStr::from_static("jobs"),
///     ..Default::default()
/// };
/// let mut out = BytesMut::new();
/// encode_publish(&mut out, 1, &publish, &BasicProperties::default(), &[7u8; 10_000], 4096)?;
/// // method + header + three body frames (4088 + 4088 + 1824 octets)
/// # Ok::<(), amqp_wire::WireError>(())
/// ```
pub fn encode_publish(
    dst: &mut BytesMut,
    channel: u16,
    publish: &basic::Publish,
    properties: &BasicProperties,
    body: &[u8],
    frame_max: u32,
) -> Result<(), WireError> {
    encode_content(dst, channel, publish, properties, body, frame_max)
}

/// [`encode_publish`] for any method that carries content (`basic.publish`, `basic.return`,
/// `basic.deliver`, `basic.get-ok`): method frame, header frame, body frames.
///
/// Fails with [`WireError::Domain`] if `M` carries no content.
pub fn encode_content<M: AmqpMethod>(
    dst: &mut BytesMut,
    channel: u16,
    method: &M,
    properties: &BasicProperties,
    body: &[u8],
    frame_max: u32,
) -> Result<(), WireError> {
    if !M::CARRIES_CONTENT {
        return Err(WireError::Domain {
            what: M::NAME,
            rule: "carries no content",
        });
    }
    let head = Head {
        class_id: M::CLASS_ID,
        method_id: M::METHOD_ID,
        name: M::NAME,
    };
    write_message(
        dst,
        channel,
        &head,
        |dst| method.encode_fields(dst),
        properties,
        body,
        frame_max,
    )
}

/// `basic.publish` with borrowed names, for publishers that keep their exchange and routing key
/// as `&str`: see [`encode_publish_ref`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PublishRef<'a> {
    /// The exchange to publish to (`""`: the default exchange).
    pub exchange: &'a str,
    /// The routing key.
    pub routing_key: &'a str,
    /// Return the message if no queue receives it.
    pub mandatory: bool,
    /// Return the message if no consumer can take it at once (RabbitMQ refuses this).
    pub immediate: bool,
}

/// [`encode_publish`] from borrowed names: writes exactly the octets `encode_publish` writes
/// for the same `basic.publish`, without building [`ShortStr`](crate::ShortStr)s first.
///
/// Fails with [`WireError::StringTooLong`] if a name is longer than 255 octets, otherwise as
/// [`encode_publish`] does; `dst` is then left as it was.
///
/// ```
/// use amqp_wire::{encode_publish_ref, BasicProperties, PublishRef};
/// use bytes::BytesMut;
///
/// let publish = PublishRef { exchange: "amq.topic", routing_key: "eu.orders", ..Default::default() };
/// let mut out = BytesMut::new();
/// encode_publish_ref(&mut out, 1, &publish, &BasicProperties::default(), b"{}", 131_072)?;
/// # Ok::<(), amqp_wire::WireError>(())
/// ```
pub fn encode_publish_ref(
    dst: &mut BytesMut,
    channel: u16,
    publish: &PublishRef<'_>,
    properties: &BasicProperties,
    body: &[u8],
    frame_max: u32,
) -> Result<(), WireError> {
    let exchange = short_len(publish.exchange, "basic.publish.exchange")?;
    let routing_key = short_len(publish.routing_key, "basic.publish.routing-key")?;
    let head = Head {
        class_id: basic::CLASS_ID,
        method_id: <basic::Publish as AmqpMethod>::METHOD_ID,
        name: <basic::Publish as AmqpMethod>::NAME,
    };
    let fields = |dst: &mut BytesMut| {
        dst.put_u16(0); // reserved (ticket)
        dst.put_u8(exchange);
        dst.put_slice(publish.exchange.as_bytes());
        dst.put_u8(routing_key);
        dst.put_slice(publish.routing_key.as_bytes());
        dst.put_u8(u8::from(publish.mandatory) | (u8::from(publish.immediate) << 1));
    };
    write_message(dst, channel, &head, fields, properties, body, frame_max)
}

/// The length octet of a short string given as `&str`.
fn short_len(s: &str, what: &'static str) -> Result<u8, WireError> {
    u8::try_from(s.len()).map_err(|_| WireError::StringTooLong {
        what,
        len: s.len(),
        max: crate::ShortStr::MAX_LEN,
    })
}

/// Appends one method frame holding `method`.
///
/// Fails only if the payload is larger than the 32-bit size field can describe, in which case
/// `dst` is left as it was.
pub fn encode_method(dst: &mut BytesMut, channel: u16, method: &Method) -> Result<(), WireError> {
    write_frame(dst, FRAME_METHOD, channel, 0, "method frame", |dst| {
        method.encode(dst)
    })
}

/// The ids and name of the method that opens a message.
struct Head {
    class_id: u16,
    method_id: u16,
    name: &'static str,
}

/// Writes a whole message (method frame whose fields `fields` appends, header frame, body
/// frames), or nothing if any frame does not fit.
fn write_message(
    dst: &mut BytesMut,
    channel: u16,
    head: &Head,
    fields: impl FnOnce(&mut BytesMut),
    properties: &BasicProperties,
    body: &[u8],
    frame_max: u32,
) -> Result<(), WireError> {
    let start = dst.len();
    let result = write_content(dst, channel, head, fields, properties, body, frame_max);
    if result.is_err() {
        dst.truncate(start);
    }
    result
}

fn write_content(
    dst: &mut BytesMut,
    channel: u16,
    head: &Head,
    fields: impl FnOnce(&mut BytesMut),
    properties: &BasicProperties,
    body: &[u8],
    frame_max: u32,
) -> Result<(), WireError> {
    let max_payload = match frame_max {
        0 => u32::MAX as usize,
        n => (n as usize).saturating_sub(FRAME_OVERHEAD),
    };
    if max_payload == 0 && !body.is_empty() {
        return Err(WireError::FrameMaxTooSmall { frame_max });
    }
    let body_frames = body.len().div_ceil(max_payload.max(1));
    dst.reserve(body.len() + body_frames * FRAME_OVERHEAD + 128);

    write_frame(dst, FRAME_METHOD, channel, frame_max, head.name, |dst| {
        dst.put_u16(head.class_id);
        dst.put_u16(head.method_id);
        fields(dst);
    })?;
    write_frame(
        dst,
        FRAME_HEADER,
        channel,
        frame_max,
        "content header frame",
        |dst| {
            dst.put_u16(head.class_id);
            dst.put_u16(0); // weight
            dst.put_u64(body.len() as u64);
            properties.encode(dst);
        },
    )?;
    // "A peer MUST NOT send body frames larger than frame-max": split the body.
    for chunk in body.chunks(max_payload.max(1)) {
        dst.put_u8(FRAME_BODY);
        dst.put_u16(channel);
        // chunk.len() <= max_payload <= u32::MAX
        dst.put_u32(u32::try_from(chunk.len()).unwrap_or(u32::MAX));
        dst.put_slice(chunk);
        dst.put_u8(FRAME_END);
    }
    Ok(())
}

/// A streaming frame decoder: give it the read buffer, get frames out as they complete.
///
/// `frame_max` is the largest frame accepted, in octets, framing included (the `frame-max` of
/// connection.tune; 0 means no limit). Before tuning the spec allows only
/// [`FRAME_MIN_SIZE`](crate::constants::FRAME_MIN_SIZE) octets, which is what
/// [`Default`] gives; raise it with [`set_frame_max`](Self::set_frame_max) after tune-ok.
///
/// ```
/// use amqp_wire::{Frame, FrameDecoder};
/// use bytes::BytesMut;
///
/// let mut decoder = FrameDecoder::new(131_072);
/// let mut buf = BytesMut::from(&b"\x08\x00\x00\x00\x00"[..]);
/// assert_eq!(decoder.decode(&mut buf)?, None); // incomplete: read more
/// buf.extend_from_slice(b"\x00\x00\xce");
/// assert_eq!(decoder.decode(&mut buf)?, Some(Frame::HEARTBEAT));
/// assert!(buf.is_empty());
/// # Ok::<(), amqp_wire::WireError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameDecoder {
    frame_max: u32,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(crate::constants::FRAME_MIN_SIZE)
    }
}

impl FrameDecoder {
    /// A decoder that accepts frames of at most `frame_max` octets (0: no limit).
    pub const fn new(frame_max: u32) -> Self {
        Self { frame_max }
    }

    /// The largest frame accepted (0: no limit).
    pub fn frame_max(&self) -> u32 {
        self.frame_max
    }

    /// Changes the largest frame accepted, e.g. once connection.tune has been answered.
    pub fn set_frame_max(&mut self, frame_max: u32) {
        self.frame_max = frame_max;
    }

    /// Takes the next complete frame off the front of `src`.
    ///
    /// - `Ok(None)`: `src` holds no complete frame yet; nothing is consumed, and once the
    ///   frame's header is in, `src` has reserved room for the rest of it (up to 1 MiB ahead).
    /// - `Ok(Some(frame))`: the frame's octets have been split off `src`. Body payloads and the
    ///   strings inside methods and properties are slices of `src`'s buffer, not copies.
    /// - `Err(_)`: the stream is malformed, and the connection must be closed (AMQP has no way
    ///   to resynchronise). The size is checked against `frame_max` as soon as the 7-octet
    ///   header is in, before waiting for the payload. A peer that answers with a protocol
    ///   header instead of a frame yields [`WireError::ProtocolVersionMismatch`].
    ///
    /// For speed, match the result where it is returned and bind only what you keep:
    ///
    /// ```
    /// use amqp_wire::{Frame, FrameDecoder, WireError};
    /// use bytes::BytesMut;
    ///
    /// fn bodies(decoder: &mut FrameDecoder, src: &mut BytesMut) -> Result<usize, WireError> {
    ///     let mut octets = 0;
    ///     loop {
    ///         match decoder.decode(src) {
    ///             Ok(Some(Frame::Body { payload, .. })) => octets += payload.len(),
    ///             Ok(Some(_)) => {}
    ///             Ok(None) => return Ok(octets),
    ///             Err(e) => return Err(e),
    ///         }
    ///     }
    /// }
    /// # let mut src = BytesMut::from(&b"\x03\x00\x01\x00\x00\x00\x02hi\xce"[..]);
    /// # assert_eq!(bodies(&mut FrameDecoder::new(0), &mut src)?, 2);
    /// # Ok::<(), WireError>(())
    /// ```
    ///
    /// Moving the whole 120-byte [`Frame`] out of the `Result` first (`decode(src)?` or
    /// `.unwrap()` into a variable) copies octets the processor has only just written, which
    /// stalls it: about a third more time per frame (docs/BENCHMARKS.md).
    #[inline]
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, WireError> {
        self.decode_from(src)
    }

    /// Takes every complete frame off the front of `src` at once, for [`Batch::decode`] to
    /// decode one by one: one split of the read buffer and a slice of it per frame, instead of
    /// a split per frame. On small frames that saves a few per cent of the decoding time (4 %
    /// typical, docs/BENCHMARKS.md). The frames and errors, in their order, are those
    /// [`decode`](Self::decode) gives, and so are the octets left in `src`.
    ///
    /// [`Batch::decode`] returns `Ok(None)` where `decode` would (having reserved room for the
    /// next frame in `src`, as `decode` does); take another batch once more octets are in. An
    /// `Err` is returned again if asked again: the stream is malformed. Frames taken and not yet
    /// decoded when the batch is dropped are put back in front of `src` (a copy, so finish a
    /// batch when you can).
    ///
    /// The batch borrows the decoder: a caller that changes [`frame_max`](Self::set_frame_max)
    /// in response to a frame drops the batch first.
    ///
    /// ```
    /// use amqp_wire::{Frame, FrameDecoder, WireError};
    /// use bytes::BytesMut;
    ///
    /// let mut decoder = FrameDecoder::new(131_072);
    /// // Two heartbeats and the start of a third.
    /// let mut src = BytesMut::from(&b"\x08\0\0\0\0\0\0\xce\x08\0\0\0\0\0\0\xce\x08"[..]);
    /// let mut heartbeats = 0;
    /// let mut batch = decoder.batch(&mut src);
    /// loop {
    ///     match batch.decode() {
    ///         Ok(Some(Frame::Heartbeat { .. })) => heartbeats += 1,
    ///         Ok(Some(_)) => {}
    ///         Ok(None) => break,
    ///         Err(e) => return Err(e),
    ///     }
    /// }
    /// drop(batch);
    /// assert_eq!(heartbeats, 2);
    /// assert_eq!(&src[..], b"\x08");
    /// # Ok::<(), WireError>(())
    /// ```
    pub fn batch<'a>(&'a mut self, src: &'a mut BytesMut) -> Batch<'a> {
        Batch {
            decoder: self,
            src,
            taken: Bytes::new(),
        }
    }

    /// How many octets at the front of `src` are whole frames of a known type within
    /// `frame_max`: what [`batch`](Self::batch) takes at once. Everything else about them is
    /// checked as each is decoded; a frame that fails these first checks is left in `src`, so
    /// that [`decode`](Self::decode) reports it after the frames before it.
    fn whole_frames(&self, src: &[u8]) -> usize {
        let mut at = 0;
        while let Some(&[frame_type, _, _, s0, s1, s2, s3]) =
            src.get(at..).and_then(<[u8]>::first_chunk)
        {
            if !matches!(
                frame_type,
                FRAME_METHOD | FRAME_HEADER | FRAME_BODY | FRAME_HEARTBEAT
            ) {
                break;
            }
            let size = u32::from_be_bytes([s0, s1, s2, s3]) as usize;
            let total = size.saturating_add(FRAME_OVERHEAD);
            if (self.frame_max != 0 && total > self.frame_max as usize) || total > src.len() - at {
                break;
            }
            at += total;
        }
        at
    }

    /// [`decode`](Self::decode) from the read buffer, or from frames a [`Batch`] has taken off
    /// it.
    #[inline]
    fn decode_from<S: FrameOctets>(&mut self, src: &mut S) -> Result<Option<Frame>, WireError> {
        let (frame_type, channel, total) = match self.front(src)? {
            Front::Whole {
                frame_type,
                channel,
                total,
            } => (frame_type, channel, total),
            Front::Partial { total } => {
                if let Some(total) = total {
                    // Make room for the rest, but never commit much memory on the peer's word
                    // alone.
                    src.make_room((total - src.len()).min(MAX_RESERVE));
                }
                return Ok(None);
            }
        };

        // Most methods (basic.deliver, .ack, .publish…) hold no table: those are decoded in
        // place. If all their names fit inline, the frame's octets are simply passed over;
        // longer names (RabbitMQ's consumer tags) are filled in from the one handle split off
        // below.
        let mut long = LongStrs::default();
        let mut in_place = None;
        if frame_type == FRAME_METHOD {
            let payload = src.get(HEADER_LEN..total - 1).unwrap_or_default();
            match Method::decode_in_place(payload, &mut long) {
                Ok(method) if long.is_empty() => {
                    src.pass(total);
                    return Ok(Some(Frame::Method { channel, method }));
                }
                Ok(method) => in_place = Some(method),
                Err(Borrowed::Wire(error)) => return Err(error),
                Err(Borrowed::NeedsShared) => {}
            }
        }
        let payload = src.take_payload(total);

        Ok(Some(match frame_type {
            FRAME_METHOD => Frame::Method {
                channel,
                method: match in_place {
                    Some(mut method) => {
                        long.fill(&mut method, payload);
                        method
                    }
                    None => Method::decode(payload)?,
                },
            },
            FRAME_HEADER => Frame::Header {
                channel,
                header: ContentHeader::decode(payload)?,
            },
            FRAME_BODY => Frame::Body { channel, payload },
            _ => Frame::Heartbeat { channel },
        }))
    }

    /// What the front of `src` holds: a whole frame that passes the checks every frame gets
    /// (type, heartbeat form, size within `frame_max`, frame-end octet), or not all of one yet.
    #[inline(always)]
    pub(crate) fn front(&self, src: &[u8]) -> Result<Front, WireError> {
        let Some(&[frame_type, c0, c1, s0, s1, s2, s3]) = src.get(..HEADER_LEN) else {
            return self
                .check_partial(src)
                .map(|()| Front::Partial { total: None });
        };
        let channel = u16::from_be_bytes([c0, c1]);
        let size = u32::from_be_bytes([s0, s1, s2, s3]);
        let what = match frame_type {
            FRAME_METHOD | FRAME_HEADER | FRAME_BODY => frame_name(frame_type),
            FRAME_HEARTBEAT => {
                // "Heartbeat frames MUST have a channel number of zero" and carry no payload.
                if channel != 0 || size != 0 {
                    return Err(WireError::InvalidHeartbeat { channel, size });
                }
                frame_name(frame_type)
            }
            b'A' => return protocol_header_reply(src).map(|()| Front::Partial { total: None }),
            _ => return Err(WireError::UnknownFrameType { frame_type }),
        };
        let frame_size = u64::from(size) + FRAME_OVERHEAD as u64;
        if self.frame_max != 0 && frame_size > u64::from(self.frame_max) {
            return Err(WireError::FrameTooLarge {
                what,
                size: frame_size,
                max: u64::from(self.frame_max),
            });
        }
        // Cannot overflow: size fits in u32, and usize is at least 32 bits wide on every target
        // `bytes` supports; a failure here would mean the frame cannot be buffered anyway.
        let total = usize::try_from(frame_size).map_err(|_| WireError::FrameTooLarge {
            what,
            size: frame_size,
            max: usize::MAX as u64,
        })?;
        let Some(&end) = src.get(total - 1) else {
            return Ok(Front::Partial { total: Some(total) });
        };
        if end != FRAME_END {
            return Err(WireError::BadFrameEnd { what, found: end });
        }
        Ok(Front::Whole {
            frame_type,
            channel,
            total,
        })
    }

    /// Fewer than 7 octets: fail early if they cannot start any frame we accept.
    fn check_partial(&self, src: &[u8]) -> Result<(), WireError> {
        match src.first() {
            Some(&b'A') => protocol_header_reply(src),
            Some(&frame_type)
                if !matches!(
                    frame_type,
                    FRAME_METHOD | FRAME_HEADER | FRAME_BODY | FRAME_HEARTBEAT
                ) =>
            {
                Err(WireError::UnknownFrameType { frame_type })
            }
            _ => Ok(()),
        }
    }
}

/// Where [`FrameDecoder`] takes frames from: the read buffer, or the frames
/// a [`Batch`] has split off it.
trait FrameOctets: core::ops::Deref<Target = [u8]> {
    /// Passes over a whole frame of `total` octets that left nothing to share.
    fn pass(&mut self, total: usize);

    /// Takes a whole frame of `total` octets off the front and returns its payload.
    fn take_payload(&mut self, total: usize) -> Bytes;

    /// Makes room for `additional` more octets, where more can come.
    fn make_room(&mut self, additional: usize);
}

impl FrameOctets for BytesMut {
    #[inline]
    fn pass(&mut self, total: usize) {
        self.advance(total);
    }

    /// One split per frame: the frame's octets leave the read buffer as a shared handle,
    /// narrowed to the payload (cheaper than three cuts of the buffer).
    #[inline]
    fn take_payload(&mut self, total: usize) -> Bytes {
        self.advance(HEADER_LEN);
        let payload = self.split_to(total - FRAME_OVERHEAD).freeze();
        self.advance(1);
        payload
    }

    #[inline]
    fn make_room(&mut self, additional: usize) {
        self.reserve(additional);
    }
}

impl FrameOctets for Bytes {
    /// The last frame gives up the handle, so the read buffer can be reused once the frames
    /// are gone.
    #[inline]
    fn pass(&mut self, total: usize) {
        if total >= self.len() {
            *self = Self::new();
        } else {
            self.advance(total);
        }
    }

    /// A slice of the frames taken; the last frame's payload is the handle itself, narrowed.
    #[inline]
    fn take_payload(&mut self, total: usize) -> Bytes {
        if total >= self.len() {
            let mut payload = core::mem::take(self);
            payload.truncate(total - 1);
            payload.advance(HEADER_LEN.min(payload.len()));
            payload
        } else {
            let payload = self.slice(HEADER_LEN..total - 1);
            self.advance(total);
            payload
        }
    }

    #[inline]
    fn make_room(&mut self, _: usize) {}
}

/// Whole frames [`FrameDecoder::batch`] took off a read buffer in one piece, decoded one at a
/// time.
#[derive(Debug)]
#[must_use = "a batch decodes nothing until asked"]
pub struct Batch<'a> {
    decoder: &'a mut FrameDecoder,
    src: &'a mut BytesMut,
    /// Whole frames split off `src`, not yet decoded.
    taken: Bytes,
}

impl Batch<'_> {
    /// The next frame: [`FrameDecoder::decode`] on the frames taken, then on the read buffer
    /// once they are used up.
    ///
    /// # Errors
    /// Those of [`FrameDecoder::decode`].
    #[inline]
    pub fn decode(&mut self) -> Result<Option<Frame>, WireError> {
        if self.taken.is_empty() {
            let whole = self.decoder.whole_frames(self.src);
            if whole == 0 {
                return self.decoder.decode_from(self.src);
            }
            self.taken = self.src.split_to(whole).freeze();
        }
        self.decoder.decode_from(&mut self.taken)
    }
}

impl Drop for Batch<'_> {
    /// Puts the frames taken and not yet returned back in front of the read buffer (a copy,
    /// made only when a batch is dropped before its end).
    fn drop(&mut self) {
        if self.taken.is_empty() {
            return;
        }
        let mut back = BytesMut::with_capacity(self.taken.len() + self.src.len());
        back.extend_from_slice(&self.taken);
        back.extend_from_slice(self.src);
        *self.src = back;
    }
}

/// `src` starts with `A`: either a server's protocol header (its way of refusing our version)
/// or garbage.
fn protocol_header_reply(src: &[u8]) -> Result<(), WireError> {
    if !ProtocolHeader::could_start(src) {
        return Err(WireError::UnknownFrameType { frame_type: b'A' });
    }
    match ProtocolHeader::decode(src)? {
        Some(server) => Err(WireError::ProtocolVersionMismatch { server }),
        None => Ok(()),
    }
}

/// What the front of a read buffer holds, as [`FrameDecoder::front`] found it.
pub(crate) enum Front {
    /// Not all of a frame yet; `total`, its length, once its header is in.
    Partial {
        /// The frame's length in octets, header and end octet included.
        total: Option<usize>,
    },
    /// A whole frame of `total` octets.
    Whole {
        /// The frame type.
        frame_type: u8,
        /// The channel.
        channel: u16,
        /// The frame's length in octets, header and end octet included.
        total: usize,
    },
}

fn frame_name(frame_type: u8) -> &'static str {
    match frame_type {
        FRAME_METHOD => "method frame",
        FRAME_HEADER => "content header frame",
        FRAME_BODY => "content body frame",
        FRAME_HEARTBEAT => "heartbeat frame",
        _ => "frame",
    }
}
