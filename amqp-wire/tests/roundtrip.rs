//! Property tests: decode(encode(x)) == x and encode(decode(b)) == b for nested field tables,
//! basic properties and frames; splitting a stream anywhere changes nothing; and no input, however
//! random, makes a decoder panic.

mod common;

use amqp_wire::{
    basic, encode_publish, encode_publish_ref, BasicProperties, ContentHeader, FieldTable,
    FieldValue, Frame, FrameDecoder, FrameRef, Method, PublishRef, RawProperties, Reader,
};
use bytes::{Bytes, BytesMut};
use common::{bytes, damaged, field_table, properties, scalar, short_str};
use proptest::collection::vec;
use proptest::prelude::*;

fn publish() -> impl Strategy<Value = basic::Publish> {
    (short_str(), short_str(), any::<bool>(), any::<bool>()).prop_map(
        |(exchange, routing_key, mandatory, immediate)| basic::Publish {
            exchange,
            routing_key,
            mandatory,
            immediate,
        },
    )
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        publish().prop_map(Method::BasicPublish),
        (
            short_str(),
            any::<u64>(),
            any::<bool>(),
            short_str(),
            short_str()
        )
            .prop_map(
                |(consumer_tag, delivery_tag, redelivered, exchange, routing_key)| {
                    Method::BasicDeliver(basic::Deliver {
                        consumer_tag,
                        delivery_tag,
                        redelivered,
                        exchange,
                        routing_key,
                    })
                }
            ),
        (any::<u32>(), any::<u16>(), any::<bool>()).prop_map(
            |(prefetch_size, prefetch_count, global)| Method::BasicQos(basic::Qos {
                prefetch_size,
                prefetch_count,
                global,
            })
        ),
    ]
}

fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        (any::<u16>(), method()).prop_map(|(channel, method)| Frame::Method { channel, method }),
        (any::<u16>(), any::<u64>(), properties()).prop_map(|(channel, size, p)| {
            Frame::Header {
                channel,
                header: ContentHeader::new(size, p),
            }
        }),
        (any::<u16>(), bytes(300)).prop_map(|(channel, payload)| Frame::Body { channel, payload }),
        Just(Frame::HEARTBEAT),
    ]
}

fn encode_table(table: &FieldTable) -> BytesMut {
    let mut dst = BytesMut::new();
    amqp_wire::codec::put_table(&mut dst, table);
    dst
}

fn encode_frames(frames: &[Frame]) -> BytesMut {
    let mut dst = BytesMut::new();
    for f in frames {
        f.encode(&mut dst).unwrap();
    }
    dst
}

fn decode_frames(src: &mut BytesMut, frame_max: u32) -> Vec<Frame> {
    let mut decoder = FrameDecoder::new(frame_max);
    let mut out = Vec::new();
    while let Some(f) = decoder.decode(src).unwrap() {
        out.push(f);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn tables_round_trip(table in field_table()) {
        let wire = encode_table(&table).freeze();
        let mut r = Reader::new(wire.clone());
        let decoded = r.table("t").unwrap();
        r.finish("t").unwrap();
        prop_assert_eq!(&decoded, &table);
        prop_assert_eq!(&encode_table(&decoded)[..], &wire[..]);
    }

    #[test]
    fn inserting_keeps_keys_unique(pairs in vec(("[a-c]{1,2}", scalar()), 0..20)) {
        let mut table = FieldTable::new();
        let mut model: Vec<(String, FieldValue)> = Vec::new();
        for (k, v) in pairs {
            table.insert(&k, v.clone()).unwrap();
            match model.iter_mut().find(|(mk, _)| *mk == k) {
                Some(slot) => slot.1 = v,
                None => model.push((k, v)),
            }
        }
        let got: Vec<(String, FieldValue)> =
            table.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        prop_assert_eq!(got, model);
    }

    #[test]
    fn decoding_repeated_keys_equals_inserting_in_order(
        pairs in vec((prop_oneof![3 => "[abc]", 1 => "[a-z]{1,3}"], scalar()), 0..120),
    ) {
        // Wire entries are built one at a time (a one-entry table minus its length), so the
        // stream can repeat keys, which no FieldTable can.
        let mut body = Vec::new();
        let mut model = FieldTable::new();
        for (k, v) in &pairs {
            let one = FieldTable::new().with(k, v.clone()).unwrap();
            body.extend_from_slice(&encode_table(&one)[4..]);
            model.insert(k, v.clone()).unwrap();
        }
        let mut wire = (body.len() as u32).to_be_bytes().to_vec();
        wire.extend_from_slice(&body);
        let decoded = Reader::new(Bytes::from(wire)).table("t").unwrap();
        prop_assert_eq!(decoded, model);
    }

    #[test]
    fn properties_round_trip(p in properties(), body_size in any::<u64>()) {
        let header = ContentHeader::new(body_size, p);
        let mut wire = BytesMut::new();
        header.encode(&mut wire);
        let wire = wire.freeze();
        let decoded = ContentHeader::decode(wire.clone()).unwrap();
        prop_assert_eq!(&decoded, &header);
        let mut again = BytesMut::new();
        decoded.encode(&mut again);
        prop_assert_eq!(&again[..], &wire[..]);
    }

    #[test]
    fn frames_round_trip(frames in vec(frame(), 1..6)) {
        let wire = encode_frames(&frames);
        let decoded = decode_frames(&mut wire.clone(), 0);
        prop_assert_eq!(&decoded, &frames);
        prop_assert_eq!(&encode_frames(&decoded)[..], &wire[..]);
    }

    #[test]
    fn splitting_the_stream_anywhere_changes_nothing(
        frames in vec(frame(), 1..6),
        cuts in vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let wire = encode_frames(&frames);
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        cuts.push(wire.len());
        cuts.sort_unstable();
        let mut decoder = FrameDecoder::new(0);
        let mut src = BytesMut::new();
        let mut decoded = Vec::new();
        let mut from = 0;
        for to in cuts {
            src.extend_from_slice(&wire[from..to]);
            from = to;
            while let Some(f) = decoder.decode(&mut src).unwrap() {
                decoded.push(f);
            }
        }
        prop_assert!(src.is_empty());
        prop_assert_eq!(decoded, frames);
    }

    /// A batch gives the frames, the error and the octets left waiting that frame-by-frame
    /// decoding gives, however the stream is cut, damaged or limited, and dropping a batch
    /// half-way loses nothing.
    #[test]
    fn batches_decode_what_decode_decodes(
        frames in vec(frame(), 1..6),
        cuts in vec(any::<prop::sample::Index>(), 0..6),
        damage in proptest::option::of((any::<prop::sample::Index>(), any::<u8>())),
        frame_max in prop_oneof![Just(0u32), 8u32..600],
        pause in 0usize..8,
    ) {
        let mut wire = encode_frames(&frames).to_vec();
        if let Some((at, octet)) = damage {
            let at = at.index(wire.len());
            wire[at] = octet;
        }
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        cuts.push(wire.len());
        cuts.sort_unstable();

        let run = |batched: bool| {
            let mut decoder = FrameDecoder::new(frame_max);
            let mut src = BytesMut::new();
            let mut decoded = Vec::new();
            let mut from = 0;
            for &to in &cuts {
                src.extend_from_slice(&wire[from..to]);
                from = to;
                loop {
                    if batched {
                        let mut batch = decoder.batch(&mut src);
                        // Take a break after `pause` frames: the batch is dropped with frames
                        // still in it, and another one goes on.
                        let end = loop {
                            match batch.decode() {
                                Ok(Some(frame)) => {
                                    decoded.push(frame);
                                    if decoded.len() == pause {
                                        break None;
                                    }
                                }
                                Ok(None) => break Some(Ok(())),
                                Err(e) => break Some(Err(e)),
                            }
                        };
                        drop(batch);
                        match end {
                            None => continue,
                            Some(Ok(())) => break,
                            Some(Err(e)) => return (decoded, Err(e), src.to_vec()),
                        }
                    }
                    match decoder.decode(&mut src) {
                        Ok(Some(frame)) => decoded.push(frame),
                        Ok(None) => break,
                        Err(e) => return (decoded, Err(e), src.to_vec()),
                    }
                }
            }
            (decoded, Ok(()), src.to_vec())
        };
        prop_assert_eq!(run(true), run(false));
    }

    /// Decoding in place gives the frames (copied), the properties, the error and the octets
    /// left that decoding gives, however the stream is damaged or limited.
    #[test]
    fn decode_ref_decodes_what_decode_decodes(
        frames in vec(frame(), 1..6),
        damage in proptest::option::of((any::<prop::sample::Index>(), any::<u8>())),
        cut in any::<prop::sample::Index>(),
        frame_max in prop_oneof![Just(0u32), 8u32..600],
    ) {
        let mut wire = encode_frames(&frames).to_vec();
        if let Some((at, octet)) = damage {
            let at = at.index(wire.len());
            wire[at] = octet;
        }
        wire.truncate(cut.index(wire.len() + 1));

        let decoder = FrameDecoder::new(frame_max);
        let mut src = BytesMut::from(&wire[..]);
        let mut owned = Vec::new();
        let owned_end = loop {
            match decoder.clone().decode(&mut src) {
                Ok(Some(frame)) => owned.push(frame),
                Ok(None) => break Ok(src.len()),
                Err(e) => break Err(e),
            }
        };
        let mut rest = &wire[..];
        let mut in_place = Vec::new();
        let end = loop {
            match decoder.decode_ref(&mut rest) {
                Ok(Some(frame)) => {
                    if let FrameRef::Header { header, .. } = &frame {
                        prop_assert_eq!(
                            header.properties.decode().into_owned(),
                            header.properties.into_owned().decode()
                        );
                    }
                    in_place.push(frame.into_owned());
                }
                Ok(None) => break Ok(rest.len()),
                Err(e) => break Err(e),
            }
        };
        prop_assert_eq!(in_place, owned);
        prop_assert_eq!(end, owned_end);
    }

    #[test]
    fn publish_splits_bodies_at_frame_max(
        p in publish(),
        props in properties(),
        body in vec(any::<u8>(), 0..3000),
        frame_max in prop_oneof![Just(0u32), 4096u32..5000, 300u32..1200],
    ) {
        let mut dst = BytesMut::new();
        match encode_publish(&mut dst, 3, &p, &props, &body, frame_max) {
            Ok(()) => {}
            // A big random header may not fit in a small frame_max; that must be all.
            Err(amqp_wire::WireError::FrameTooLarge { what, .. }) => {
                prop_assert!(dst.is_empty());
                prop_assert!(frame_max != 0 && what == "content header frame", "{}", what);
                return Ok(());
            }
            Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
        }
        let frames = decode_frames(&mut dst, frame_max);
        let limit = if frame_max == 0 { usize::MAX } else { frame_max as usize - 8 };
        prop_assert_eq!(
            &frames[0],
            &Frame::Method { channel: 3, method: Method::BasicPublish(p) }
        );
        prop_assert_eq!(
            &frames[1],
            &Frame::Header { channel: 3, header: ContentHeader::new(body.len() as u64, props) }
        );
        let mut joined = Vec::new();
        for (i, f) in frames[2..].iter().enumerate() {
            let Frame::Body { channel: 3, payload } = f else {
                return Err(TestCaseError::fail(format!("not a body frame: {f:?}")));
            };
            prop_assert!(!payload.is_empty() && payload.len() <= limit);
            // Every piece but the last is full.
            if i + 3 < frames.len() {
                prop_assert_eq!(payload.len(), limit);
            }
            joined.extend_from_slice(payload);
        }
        prop_assert_eq!(joined, body);
    }

    /// Publishing from borrowed names writes exactly what publishing a `basic::Publish` writes,
    /// errors included.
    #[test]
    fn publishing_from_borrowed_names_writes_the_same_octets(
        p in publish(),
        props in properties(),
        body in vec(any::<u8>(), 0..3000),
        frame_max in prop_oneof![Just(0u32), 4096u32..5000, 300u32..1200],
    ) {
        let mut owned = BytesMut::from(&b"before"[..]);
        let owned_result = encode_publish(&mut owned, 3, &p, &props, &body, frame_max);
        let borrowed_publish = PublishRef {
            exchange: p.exchange.as_str(),
            routing_key: p.routing_key.as_str(),
            mandatory: p.mandatory,
            immediate: p.immediate,
        };
        let mut borrowed = BytesMut::from(&b"before"[..]);
        let borrowed_result =
            encode_publish_ref(&mut borrowed, 3, &borrowed_publish, &props, &body, frame_max);
        prop_assert_eq!(borrowed_result, owned_result);
        prop_assert_eq!(&borrowed[..], &owned[..]);
    }
}

#[test]
fn publishing_a_name_longer_than_255_octets_writes_nothing() {
    let long = "k".repeat(256);
    let publish = PublishRef {
        routing_key: &long,
        ..Default::default()
    };
    let mut dst = BytesMut::from(&b"kept"[..]);
    let result = encode_publish_ref(&mut dst, 1, &publish, &BasicProperties::default(), b"x", 0);
    assert_eq!(
        result,
        Err(amqp_wire::WireError::StringTooLong {
            what: "basic.publish.routing-key",
            len: 256,
            max: 255
        })
    );
    assert_eq!(&dst[..], b"kept");
}

proptest! {
    // Cheap cases: run many.
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn random_bytes_never_panic(data in vec(any::<u8>(), 0..512), frame_max in any::<u32>()) {
        let mut src = BytesMut::from(&data[..]);
        let mut decoder = FrameDecoder::new(frame_max);
        while let Ok(Some(_)) = decoder.decode(&mut src) {}
        let _ = Reader::new(Bytes::from(data.clone())).table("t");
        let _ = Method::decode(Bytes::from(data.clone()));
        let _ = ContentHeader::decode(Bytes::from(data));
    }

    /// Random payloads inside well-formed frames, so the payload decoders see the garbage.
    #[test]
    fn random_payloads_never_panic(
        frame_type in prop_oneof![Just(1u8), Just(2), Just(3), Just(8)],
        prefix in prop_oneof![
            Just(vec![]),
            Just(vec![0x00, 0x3c, 0x00, 0x28]),
            Just(vec![0x00, 0x3c, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0]),
        ],
        payload in vec(any::<u8>(), 0..400),
    ) {
        let mut wire = vec![frame_type, 0, 1];
        let len = prefix.len() + payload.len();
        wire.extend_from_slice(&(len as u32).to_be_bytes());
        wire.extend_from_slice(&prefix);
        wire.extend_from_slice(&payload);
        wire.push(0xce);
        let mut src = BytesMut::from(&wire[..]);
        if let Ok(Some(frame)) = FrameDecoder::new(0).decode(&mut src) {
            // Whatever decodes must re-encode and decode to the same frame.
            let again = encode_frames(std::slice::from_ref(&frame));
            prop_assert_eq!(decode_frames(&mut again.clone(), 0), vec![frame]);
        }
    }
}

fn encoded_properties() -> impl Strategy<Value = Vec<u8>> {
    properties().prop_flat_map(|p| {
        let mut wire = BytesMut::new();
        p.encode(&mut wire);
        damaged(wire.to_vec())
    })
}

fn encoded_table() -> impl Strategy<Value = Vec<u8>> {
    field_table().prop_flat_map(|t| damaged(encode_table(&t).to_vec()))
}

proptest! {
    /// Checking without building (what a decoded header does with its properties) accepts
    /// exactly what decoding accepts, fails with the same error, and stops at the same place.
    #[test]
    fn checking_agrees_with_decoding(
        props in prop_oneof![encoded_properties(), vec(any::<u8>(), 0..64)],
        table in prop_oneof![encoded_table(), vec(any::<u8>(), 0..64)],
    ) {
        let mut checked = Reader::new(&props[..]);
        let mut decoded = Reader::new(Bytes::from(props.clone()));
        let flags = BasicProperties::check(&mut checked);
        let built = BasicProperties::decode(&mut decoded);
        prop_assert_eq!(flags.as_ref().err(), built.as_ref().err());
        if let (Ok(flags), Ok(built)) = (flags, built) {
            prop_assert_eq!(checked.remaining(), decoded.remaining());
            prop_assert_eq!(flags & 0xfffe, built.flags());
            if checked.remaining() == 0 {
                let raw = RawProperties::from_wire(Bytes::from(props.clone()), "p").unwrap();
                prop_assert_eq!(raw.decode(), built);
                prop_assert_eq!(raw.as_bytes(), &props[..]);
            }
        }

        let mut checked = Reader::new(&table[..]);
        let mut decoded = Reader::new(Bytes::from(table.clone()));
        let skipped = checked.skip_table("t");
        let built = decoded.table("t");
        prop_assert_eq!(skipped.err(), built.err());
        prop_assert_eq!(checked.remaining(), decoded.remaining());
    }
}
