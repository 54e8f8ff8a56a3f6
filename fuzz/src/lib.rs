//! The properties the fuzz targets check, and the seed corpus they start from.
//!
//! Each `check_*` function takes arbitrary bytes, decodes them with `amqp-wire`, and panics if
//! the codec breaks one of its promises: a panic inside the codec, a decoded value that does not
//! survive encode → decode, an encoding that grows, or a streaming decoder whose answer depends
//! on how the input was chunked. The targets in `fuzz_targets/` are one-line wrappers around
//! them, so the same checks run over the seeds in `examples/seeds.rs`.
//!
//! Byte-for-byte equality with the input only holds for input in canonical form: the decoder
//! deliberately accepts a few things the encoder never writes (non-zero reserved fields and
//! unused bits, a `t` octet other than 0/1, the `L` tag, repeated table keys, empty extra
//! property-flag words). For those the checks demand the next best thing: the re-encoding is
//! no longer than the input and decodes to the same value, so it is the canonical form.
#![forbid(unsafe_code)]

use std::collections::HashSet;

use amqp_wire::{
    BasicProperties, FieldTable, FieldValue, FieldValueRef, Frame, FrameDecoder, FrameRef, Method,
    MethodRef, RawProperties, Reader, TableRef, WireError,
};
use bytes::{Bytes, BytesMut};

pub mod seeds;
pub mod tools;

/// Every fuzz target, in the order `scripts/fuzz` runs them.
pub const TARGETS: [&str; 14] = [
    "frame_decoder",
    "method_payload",
    "field_table",
    "syslog_framing",
    "syslog_parse",
    "syslog_spool",
    "dimslog_line",
    "rpc_envelope",
    "netmap",
    "addr_scan",
    "intel_feed",
    "flow_records",
    "sshd_line",
    "backbone_api",
];

/// Runs `target`'s checks on `data`; `false` for an unknown target.
pub fn check(target: &str, data: &[u8]) -> bool {
    let check: fn(&[u8]) = match target {
        "frame_decoder" => check_frame_stream,
        "method_payload" => check_method_payload,
        "field_table" => check_field_table,
        "syslog_framing" => tools::check_syslog_framing,
        "syslog_parse" => tools::check_syslog_parse,
        "syslog_spool" => tools::check_syslog_spool,
        "dimslog_line" => tools::check_dimslog_line,
        "rpc_envelope" => tools::check_rpc_envelope,
        "netmap" => tools::check_netmap,
        "addr_scan" => tools::check_addr_scan,
        "intel_feed" => tools::check_intel_feed,
        "flow_records" => tools::check_flow_records,
        "sshd_line" => tools::check_sshd_line,
        "backbone_api" => tools::check_backbone_api,
        _ => return false,
    };
    check(data);
    true
}

/// The frame_max a frame-stream input runs under, chosen by its first octet.
pub fn frame_max_for(selector: u8) -> u32 {
    match selector & 3 {
        0 => 0,
        1 => 4096,
        2 => 131_072,
        // Tiny limits, down to below a single frame's framing.
        _ => u32::from(selector >> 2),
    }
}

/// Splits `len` octets into chunk lengths drawn from `seed`: one octet at a time, short runs,
/// longer runs, or (mostly) big reads, as a socket might hand them over.
pub(crate) fn chunk_lengths(seed: u8, len: usize) -> Vec<usize> {
    let limit = match seed & 3 {
        0 => 1,
        1 => 8,
        2 => 64,
        _ => 4096,
    };
    // xorshift32: deterministic, so a crash reproduces from the input alone.
    let mut state = (u32::from(seed) << 8 | 0x5a) ^ 0x9e37_79b9;
    let mut lengths = Vec::new();
    let mut left = len;
    while left > 0 {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = (1 + state as usize % limit).min(left);
        lengths.push(n);
        left -= n;
    }
    lengths
}

/// How decoding a stream ended: with an error, or waiting for more with some octets buffered.
#[derive(Debug, PartialEq)]
enum End {
    Failed(WireError),
    NeedMore { buffered: usize },
}

/// A frame and how many octets of the stream it took.
type Decoded = (Frame, usize);

/// Decodes everything in `src` at once.
fn decode_all(decoder: &mut FrameDecoder, src: &mut BytesMut) -> (Vec<Decoded>, End) {
    let mut frames = Vec::new();
    loop {
        let before = src.len();
        match decoder.decode(src) {
            Ok(Some(frame)) => frames.push((frame, before - src.len())),
            Ok(None) => {
                // Waiting for more must leave the input where it was.
                assert_eq!(src.len(), before, "Ok(None) consumed input");
                return (frames, End::NeedMore { buffered: before });
            }
            Err(e) => return (frames, End::Failed(e)),
        }
    }
}

/// Decodes everything in `src` through batches (`FrameDecoder::batch`), dropping the first one
/// after `pause` frames (0: never) with frames still taken, and going on with another.
fn decode_all_batched(
    decoder: &mut FrameDecoder,
    src: &mut BytesMut,
    pause: usize,
) -> (Vec<Frame>, End) {
    let mut frames = Vec::new();
    loop {
        let mut batch = decoder.batch(src);
        let end = loop {
            match batch.decode() {
                Ok(Some(frame)) => {
                    frames.push(frame);
                    if frames.len() == pause {
                        break None;
                    }
                }
                Ok(None) => break Some(None),
                Err(e) => break Some(Some(e)),
            }
        };
        drop(batch);
        match end {
            None => continue,
            Some(None) => {
                return (
                    frames,
                    End::NeedMore {
                        buffered: src.len(),
                    },
                )
            }
            Some(Some(e)) => return (frames, End::Failed(e)),
        }
    }
}

/// Decodes everything in `stream` where it lies (`FrameDecoder::decode_ref`), checking that
/// each header's properties built in place are the owned ones; returns owned copies.
fn decode_all_in_place(decoder: &FrameDecoder, stream: &[u8]) -> (Vec<Frame>, End) {
    let mut frames = Vec::new();
    let mut rest = stream;
    loop {
        let before = rest;
        match decoder.decode_ref(&mut rest) {
            Ok(Some(frame)) => {
                if let FrameRef::Header { header, .. } = &frame {
                    assert_eq!(
                        header.properties.decode().into_owned(),
                        header.properties.into_owned().decode(),
                        "properties built in place differ"
                    );
                }
                frames.push(frame.into_owned());
            }
            Ok(None) => {
                assert_eq!(rest, before, "Ok(None) consumed input");
                return (
                    frames,
                    End::NeedMore {
                        buffered: rest.len(),
                    },
                );
            }
            Err(e) => {
                assert_eq!(rest, before, "an error consumed input");
                return (frames, End::Failed(e));
            }
        }
    }
}

/// Frame-stream input: octet 0 picks `frame_max`, octet 1 the chunking, the rest is the stream.
///
/// Checks that
/// - decoding the stream whole and decoding it fed in chunks give the same frames and end the
///   same way (same error, or the same number of octets left waiting);
/// - every decoded frame encodes without error into at most the octets it was decoded from,
///   and that encoding decodes, alone and completely, to the same frame;
/// - body payloads point into the read buffer (no copy);
/// - batches decode the same frames and end the same way, even when one is dropped half-way;
/// - decoding in place (`FrameDecoder::decode_ref`) gives the same frames, properties and end.
pub fn check_frame_stream(data: &[u8]) {
    let [selector, chunking, stream @ ..] = data else {
        return;
    };
    let frame_max = frame_max_for(*selector);

    let mut whole = BytesMut::from(stream);
    let base = whole.as_ptr() as usize;
    let (frames, end) = decode_all(&mut FrameDecoder::new(frame_max), &mut whole);

    let mut batched = BytesMut::from(stream);
    let (batch_frames, batch_end) = decode_all_batched(
        &mut FrameDecoder::new(frame_max),
        &mut batched,
        usize::from(*chunking % 4),
    );
    assert!(
        batch_frames
            .iter()
            .eq(frames.iter().map(|(frame, _)| frame)),
        "batches gave other frames"
    );
    assert_eq!(batch_end, end, "batches ended otherwise");

    let (ref_frames, ref_end) = decode_all_in_place(&FrameDecoder::new(frame_max), stream);
    assert!(
        ref_frames.iter().eq(frames.iter().map(|(frame, _)| frame)),
        "decoding in place gave other frames"
    );
    assert_eq!(ref_end, end, "decoding in place ended otherwise");

    let mut chunked_frames = Vec::new();
    let mut chunked_end = End::NeedMore { buffered: 0 };
    let mut buf = BytesMut::new();
    let mut decoder = FrameDecoder::new(frame_max);
    let mut at = 0;
    for n in chunk_lengths(*chunking, stream.len()) {
        buf.extend_from_slice(&stream[at..at + n]);
        at += n;
        let (mut got, end) = decode_all(&mut decoder, &mut buf);
        chunked_frames.append(&mut got);
        let failed = matches!(end, End::Failed(_));
        chunked_end = end;
        if failed {
            break;
        }
    }
    assert_eq!(chunked_frames, frames, "chunked decoding gave other frames");
    assert_eq!(chunked_end, end, "chunked decoding ended otherwise");

    // Method frames are decoded in place when their names fit inline, from a shared handle
    // otherwise: either way, the method (or the error) is the one `Method::decode` gives for the
    // payload.
    let mut at = 0;
    for (frame, consumed) in &frames {
        if let Frame::Method { method, .. } = frame {
            let payload = Bytes::copy_from_slice(&stream[at + 7..at + consumed - 1]);
            assert_eq!(Method::decode(payload).as_ref(), Ok(method));
        }
        at += consumed;
    }
    if let End::Failed(error) = &end {
        if let Some(payload) = whole_method_payload(&stream[at..], frame_max) {
            let expected = Method::decode(Bytes::copy_from_slice(payload)).err();
            assert_eq!(
                expected.as_ref(),
                Some(error),
                "method frame failed otherwise"
            );
        }
    }

    for (frame, consumed) in &frames {
        if let Frame::Body { payload, .. } = frame {
            let at = payload.as_ptr() as usize;
            assert!(
                payload.is_empty() || (base..base + stream.len()).contains(&at),
                "body payload was copied out of the read buffer"
            );
        }
        if let Frame::Header { header, .. } = frame {
            check_properties(&header.properties);
        }
        let mut encoded = BytesMut::new();
        if let Err(e) = frame.encode(&mut encoded) {
            panic!("decoded frame does not encode: {e} ({frame:?})");
        }
        assert!(
            encoded.len() <= *consumed,
            "re-encoding grew from {consumed} to {} octets: {frame:?}",
            encoded.len()
        );
        let again = FrameDecoder::new(frame_max).decode(&mut encoded);
        assert_eq!(again.as_ref().ok().and_then(Option::as_ref), Some(frame));
        assert!(encoded.is_empty(), "re-encoded frame left octets behind");
    }
}

/// The payload of the method frame at the start of `rest`, if one is there whole, within
/// `frame_max`, with its end octet.
fn whole_method_payload(rest: &[u8], frame_max: u32) -> Option<&[u8]> {
    let [1, _, _, s0, s1, s2, s3, body @ ..] = rest else {
        return None;
    };
    let size = u32::from_be_bytes([*s0, *s1, *s2, *s3]);
    if frame_max != 0 && u64::from(size) + 8 > u64::from(frame_max) {
        return None;
    }
    let size = usize::try_from(size).ok()?;
    match body.get(size) {
        Some(0xce) => body.get(..size),
        _ => None,
    }
}

/// Properties a header frame accepted (checked, not built) really decode, and their typed form
/// re-encodes to no more octets than they came in, decoding to the same properties.
fn check_properties(raw: &RawProperties) {
    let wire = Bytes::copy_from_slice(raw.as_bytes());
    let built = match BasicProperties::decode(&mut Reader::new(wire)) {
        Ok(built) => built,
        Err(e) => panic!(
            "checked properties do not decode: {e} ({:?})",
            raw.as_bytes()
        ),
    };
    assert_eq!(raw.decode(), built);
    let again = RawProperties::new(&built);
    assert!(
        again.as_bytes().len() <= raw.as_bytes().len(),
        "re-encoded properties grew: {built:?}"
    );
    assert_eq!(again.decode(), built);
}

/// A method frame's payload (class id, method id, arguments).
///
/// Checks that a payload that decodes re-encodes to the input itself, or, for input in a
/// non-canonical form, to something no longer that decodes to the same method; and that the
/// method's ids and validation agree with it.
pub fn check_method_payload(data: &[u8]) {
    let decoded = Method::decode(Bytes::copy_from_slice(data));
    // Decoding in place agrees, the error included.
    assert_eq!(
        MethodRef::decode(data).map(MethodRef::into_owned),
        decoded,
        "decoding in place disagrees"
    );
    let Ok(method) = decoded else {
        return;
    };
    let ids = [
        method.class_id().to_be_bytes(),
        method.method_id().to_be_bytes(),
    ]
    .concat();
    assert_eq!(data.get(..4), Some(&ids[..]), "ids of {}", method.name());
    // Validation must not panic either; its verdict is the caller's business.
    let _ = method.validate();

    let mut encoded = BytesMut::new();
    method.encode(&mut encoded);
    if encoded[..] == *data {
        return;
    }
    assert!(
        encoded.len() <= data.len(),
        "re-encoding grew from {} to {} octets: {method:?}",
        data.len(),
        encoded.len()
    );
    assert_eq!(
        Method::decode(encoded.freeze()).as_ref(),
        Ok(&method),
        "re-encoding decodes to another method"
    );
}

/// A field table (u32 length, then key/value pairs); octets after the table are ignored.
///
/// Checks that checking the table without building it agrees with decoding it, and that a table
/// that decodes has unique keys, finds each of its values by key (read in place through a
/// `TableRef` too), and re-encodes to the octets it was read from or, for non-canonical input,
/// to something no longer that decodes to the same table.
pub fn check_field_table(data: &[u8]) {
    let mut reader = Reader::new(Bytes::copy_from_slice(data));
    let decoded = reader.table("fuzz table");
    // Checking without building agrees with decoding, error and position alike.
    let mut checker = Reader::new(data);
    let checked = checker.skip_table("fuzz table");
    assert_eq!(
        checked.err().as_ref(),
        decoded.as_ref().err(),
        "checking and decoding disagree"
    );
    assert_eq!(
        checker.remaining(),
        reader.remaining(),
        "checking stopped elsewhere"
    );
    let Ok(table) = decoded else {
        return;
    };
    let consumed = data.len() - reader.remaining();
    check_keys(&table);
    // Read in place, the same pairs answer the same lookups and make the same table.
    let pairs = TableRef::new(&data[4..consumed]).expect("decoded pairs are refused in place");
    for (key, value) in &table {
        assert_eq!(
            pairs.get(key).map(FieldValueRef::into_owned).as_ref(),
            Some(value),
            "in place, {key:?} reads otherwise"
        );
    }
    assert_eq!(pairs.into_owned(), table, "in place, another table");

    let mut encoded = BytesMut::new();
    amqp_wire::codec::put_table(&mut encoded, &table);
    if encoded[..] == data[..consumed] {
        return;
    }
    assert!(
        encoded.len() <= consumed,
        "re-encoding grew from {consumed} to {} octets: {table:?}",
        encoded.len()
    );
    let mut reader = Reader::new(encoded.freeze());
    assert_eq!(reader.table("re-encoded table").as_ref(), Ok(&table));
    assert_eq!(reader.remaining(), 0, "re-encoded table left octets behind");
}

/// Keys are unique at every level, and `get` finds each entry's own value.
fn check_keys(table: &FieldTable) {
    let mut seen = HashSet::new();
    for (key, value) in table {
        assert!(seen.insert(key.as_str()), "key {key:?} appears twice");
        assert_eq!(table.get(key), Some(value));
        check_value(value);
    }
}

fn check_value(value: &FieldValue) {
    match value {
        FieldValue::Table(t) => check_keys(t),
        FieldValue::Array(a) => a.iter().for_each(check_value),
        _ => {}
    }
}
