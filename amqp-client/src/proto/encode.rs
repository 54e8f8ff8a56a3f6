//! Frame writers that append straight to the outgoing buffer.
//!
//! Size fields are written as placeholders and patched once the payload is in, so nothing is
//! encoded twice and nothing is staged in a temporary buffer.

use amqp_wire::{BasicProperties, Method};
use bytes::{BufMut, BytesMut};

pub(crate) const FRAME_METHOD: u8 = 1;
pub(crate) const FRAME_HEADER: u8 = 2;
pub(crate) const FRAME_BODY: u8 = 3;
pub(crate) const FRAME_HEARTBEAT: u8 = 8;
pub(crate) const FRAME_END: u8 = 0xCE;
/// Frame type, channel and size, plus the end octet.
pub(crate) const FRAME_OVERHEAD: usize = 8;

/// Writes type, channel and a size placeholder; returns where the placeholder is.
fn begin(out: &mut BytesMut, kind: u8, channel: u16) -> usize {
    out.put_u8(kind);
    out.put_u16(channel);
    let at = out.len();
    out.put_u32(0);
    at
}

/// Patches the size placeholder at `at` and writes the frame-end octet.
fn finish(out: &mut BytesMut, at: usize) {
    let size = out.len() - at - 4;
    if let Some(slot) = out.get_mut(at..at + 4) {
        slot.copy_from_slice(&(size as u32).to_be_bytes());
    }
    out.put_u8(FRAME_END);
}

/// One method frame.
pub(crate) fn method(out: &mut BytesMut, channel: u16, method: &Method) {
    tracing::trace!(channel, ?method, "method out");
    let at = begin(out, FRAME_METHOD, channel);
    method.encode(out);
    finish(out, at);
}

/// A heartbeat frame: type 8, channel 0, size 0, end octet.
pub(crate) fn heartbeat(out: &mut BytesMut) {
    out.put_slice(&[FRAME_HEARTBEAT, 0, 0, 0, 0, 0, 0, FRAME_END]);
}

/// The content header frame and the body frames of one message. Bodies are split so that no
/// frame exceeds `frame_max` (0: no limit).
pub(crate) fn content(
    out: &mut BytesMut,
    channel: u16,
    class_id: u16,
    properties: &BasicProperties,
    body: &[u8],
    frame_max: u32,
) {
    let at = begin(out, FRAME_HEADER, channel);
    out.put_u16(class_id);
    out.put_u16(0); // weight: unused, must be zero
    out.put_u64(body.len() as u64);
    properties.encode(out);
    finish(out, at);

    // Spec: body frames carry at most frame-max minus the 8 octets of frame overhead.
    let chunk = match frame_max {
        0 => usize::MAX,
        n => (n as usize).saturating_sub(FRAME_OVERHEAD).max(1),
    };
    out.reserve(body.len() + FRAME_OVERHEAD * (body.len() / chunk + 1));
    for part in body.chunks(chunk) {
        out.put_u8(FRAME_BODY);
        out.put_u16(channel);
        out.put_u32(part.len() as u32);
        out.put_slice(part);
        out.put_u8(FRAME_END);
    }
}

/// `basic.publish` followed by its content, contiguous in `out`.
///
/// Encoded by hand from borrowed strings so publishing allocates nothing; the caller has
/// checked both names against their domains.
#[allow(clippy::too_many_arguments)]
pub(crate) fn publish(
    out: &mut BytesMut,
    channel: u16,
    exchange: &str,
    routing_key: &str,
    mandatory: bool,
    immediate: bool,
    properties: &BasicProperties,
    body: &[u8],
    frame_max: u32,
) {
    out.reserve(64 + exchange.len() + routing_key.len() + body.len());
    let at = begin(out, FRAME_METHOD, channel);
    out.put_u16(60); // class basic
    out.put_u16(40); // method publish
    out.put_u16(0); // reserved-1 (ticket)
    out.put_u8(exchange.len() as u8);
    out.put_slice(exchange.as_bytes());
    out.put_u8(routing_key.len() as u8);
    out.put_slice(routing_key.as_bytes());
    out.put_u8(u8::from(mandatory) | (u8::from(immediate) << 1));
    finish(out, at);
    content(out, channel, 60, properties, body, frame_max);
}
