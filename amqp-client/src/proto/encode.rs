//! Frame writers that append straight to the outgoing buffer, through the codec's encoders:
//! nothing is encoded twice and nothing is staged in a temporary buffer.

use amqp_wire::{
    encode_method, encode_publish_ref, BasicProperties, Method, PublishRef, WireError,
};
use bytes::{BufMut, BytesMut};

/// One method frame.
pub(crate) fn method(out: &mut BytesMut, channel: u16, method: &Method) {
    tracing::trace!(channel, ?method, "method out");
    // Only a payload past the 32-bit size field (4 GiB of arguments) is refused; the frame is
    // then left out, and the error logged.
    if let Err(e) = encode_method(out, channel, method) {
        tracing::error!(channel, method = method.name(), error = %e, "method frame not sent");
    }
}

/// A heartbeat frame: type 8, channel 0, size 0, end octet.
pub(crate) fn heartbeat(out: &mut BytesMut) {
    out.put_slice(&amqp_wire::Frame::HEARTBEAT_BYTES);
}

/// `basic.publish` followed by its content, contiguous in `out`, bodies split so that no frame
/// exceeds `frame_max` (0: no limit). Encoded from borrowed names, so publishing allocates
/// nothing. On error (a name over 255 octets, properties too large for one frame) `out` is
/// left as it was.
pub(crate) fn publish(
    out: &mut BytesMut,
    channel: u16,
    publish: &PublishRef<'_>,
    properties: &BasicProperties,
    body: &[u8],
    frame_max: u32,
) -> Result<(), WireError> {
    encode_publish_ref(out, channel, publish, properties, body, frame_max)
}
