//! Byte-exact vectors, written out by hand from the protocol definition: every frame kind, the
//! protocol header, and every field value type, each checked in both directions.

use amqp_wire::{
    basic, encode_publish, BasicProperties, ContentHeader, Decimal, FieldArray, FieldTable,
    FieldValue, Frame, FrameDecoder, Method, ProtocolHeader, Reader, ShortStr,
};
use bytes::{Bytes, BytesMut};

fn encode(frame: &Frame) -> Vec<u8> {
    let mut dst = BytesMut::new();
    frame.encode(&mut dst).unwrap();
    dst.to_vec()
}

fn decode_one(wire: &[u8]) -> Frame {
    let mut src = BytesMut::from(wire);
    let frame = FrameDecoder::new(0).decode(&mut src).unwrap().unwrap();
    assert!(src.is_empty(), "decoder left {} bytes", src.len());
    frame
}

fn both_ways(frame: Frame, wire: &[u8]) {
    assert_eq!(encode(&frame), wire, "encoding {frame:?}");
    assert_eq!(decode_one(wire), frame);
}

fn s(text: &str) -> ShortStr {
    ShortStr::new(text).unwrap()
}

#[test]
fn protocol_header() {
    let mut dst = BytesMut::new();
    ProtocolHeader::AMQP_0_9_1.encode(&mut dst);
    assert_eq!(&dst[..], b"AMQP\x00\x00\x09\x01");
    assert_eq!(
        ProtocolHeader::decode(&dst).unwrap(),
        Some(ProtocolHeader::AMQP_0_9_1)
    );
}

#[test]
fn method_frame_basic_publish() {
    let frame = Frame::Method {
        channel: 1,
        method: Method::BasicPublish(basic::Publish {
            exchange: ShortStr::default(),
            routing_key: s("jobs"),
            mandatory: true,
            immediate: false,
        }),
    };
    #[rustfmt::skip]
    let wire: &[u8] = &[
        0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x0d, // method frame, channel 1, 13 octets
        0x00, 0x3c, 0x00, 0x28,                   // class 60, method 40
        0x00, 0x00,                               // reserved (ticket)
        0x00,                                     // exchange ""
        0x04, b'j', b'o', b'b', b's',             // routing-key "jobs"
        0x01,                                     // mandatory, not immediate
        0xce,
    ];
    both_ways(frame, wire);
}

#[test]
fn method_frame_basic_deliver() {
    let frame = Frame::Method {
        channel: 7,
        method: Method::BasicDeliver(basic::Deliver {
            consumer_tag: s("ctag"),
            delivery_tag: 0x0102_0304_0506_0708,
            redelivered: true,
            exchange: s("ex"),
            routing_key: s("rk"),
        }),
    };
    #[rustfmt::skip]
    let wire: &[u8] = &[
        0x01, 0x00, 0x07, 0x00, 0x00, 0x00, 0x18,
        0x00, 0x3c, 0x00, 0x3c,
        0x04, b'c', b't', b'a', b'g',
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
        0x01,
        0x02, b'e', b'x',
        0x02, b'r', b'k',
        0xce,
    ];
    both_ways(frame, wire);
}

#[test]
fn header_frame_with_several_properties() {
    let mut headers = FieldTable::new();
    headers.insert("a", 1i32).unwrap();
    let properties = BasicProperties {
        content_type: Some(s("text/plain")),
        headers: Some(headers),
        delivery_mode: Some(2),
        correlation_id: Some(s("c1")),
        timestamp: Some(1_700_000_000),
        ..Default::default()
    };
    let frame = Frame::Header {
        channel: 1,
        header: ContentHeader::new(5, properties),
    };
    #[rustfmt::skip]
    let wire: &[u8] = &[
        0x02, 0x00, 0x01, 0x00, 0x00, 0x00, 0x30, // header frame, channel 1, 48 octets
        0x00, 0x3c,                               // class 60
        0x00, 0x00,                               // weight
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, // body size 5
        0xb4, 0x40,     // flags: content-type, headers, delivery-mode, correlation-id, timestamp
        0x0a, b't', b'e', b'x', b't', b'/', b'p', b'l', b'a', b'i', b'n',
        0x00, 0x00, 0x00, 0x07, 0x01, b'a', b'I', 0x00, 0x00, 0x00, 0x01,
        0x02,
        0x02, b'c', b'1',
        0x00, 0x00, 0x00, 0x00, 0x65, 0x53, 0xf1, 0x00,
        0xce,
    ];
    both_ways(frame, wire);
}

#[test]
fn header_frame_with_every_property() {
    let properties = BasicProperties {
        content_type: Some(s("a")),
        content_encoding: Some(s("b")),
        headers: Some(FieldTable::new()),
        delivery_mode: Some(1),
        priority: Some(9),
        correlation_id: Some(s("c")),
        reply_to: Some(s("d")),
        expiration: Some(s("6")),
        message_id: Some(s("e")),
        timestamp: Some(1),
        kind: Some(s("f")),
        user_id: Some(s("g")),
        app_id: Some(s("h")),
        reserved: Some(s("i")),
    };
    let frame = Frame::Header {
        channel: 2,
        header: ContentHeader::new(0, properties),
    };
    #[rustfmt::skip]
    let wire: &[u8] = &[
        0x02, 0x00, 0x02, 0x00, 0x00, 0x00, 0x30,
        0x00, 0x3c, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0xff, 0xfc, // all 14 flags, no continuation
        0x01, b'a', 0x01, b'b',
        0x00, 0x00, 0x00, 0x00,
        0x01, 0x09,
        0x01, b'c', 0x01, b'd', 0x01, b'6', 0x01, b'e',
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
        0x01, b'f', 0x01, b'g', 0x01, b'h', 0x01, b'i',
        0xce,
    ];
    both_ways(frame, wire);
}

#[test]
fn header_frame_without_properties() {
    let frame = Frame::Header {
        channel: 1,
        header: ContentHeader::new(0x1_0000_0000, BasicProperties::default()),
    };
    #[rustfmt::skip]
    let wire: &[u8] = &[
        0x02, 0x00, 0x01, 0x00, 0x00, 0x00, 0x0e,
        0x00, 0x3c, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00,
        0xce,
    ];
    both_ways(frame, wire);
}

#[test]
fn body_frame() {
    let frame = Frame::Body {
        channel: 1,
        payload: Bytes::from_static(b"hello"),
    };
    both_ways(frame, b"\x03\x00\x01\x00\x00\x00\x05hello\xce");
}

#[test]
fn empty_body_frame() {
    let frame = Frame::Body {
        channel: 3,
        payload: Bytes::new(),
    };
    both_ways(frame, b"\x03\x00\x03\x00\x00\x00\x00\xce");
}

#[test]
fn heartbeat_frame() {
    both_ways(Frame::HEARTBEAT, b"\x08\x00\x00\x00\x00\x00\x00\xce");
}

#[test]
fn publish_helper_writes_method_header_and_split_body() {
    let publish = basic::Publish {
        exchange: ShortStr::default(),
        routing_key: s("q"),
        ..Default::default()
    };
    let body: Vec<u8> = (0..25u8).collect();
    let mut dst = BytesMut::from(&b"prefix"[..]);
    // The method frame (18 octets) fits in 20, the header frame (22) does not.
    let err = encode_publish(
        &mut dst,
        5,
        &publish,
        &BasicProperties::default(),
        &body,
        20,
    )
    .unwrap_err();
    assert_eq!(
        err,
        amqp_wire::WireError::FrameTooLarge {
            what: "content header frame",
            size: 22,
            max: 20
        }
    );
    assert_eq!(&dst[..], b"prefix", "a failed encode leaves dst alone");

    encode_publish(
        &mut dst,
        5,
        &publish,
        &BasicProperties::default(),
        &body,
        40,
    )
    .unwrap();
    let mut expected = b"prefix".to_vec();
    #[rustfmt::skip]
    expected.extend_from_slice(&[
        0x01, 0x00, 0x05, 0x00, 0x00, 0x00, 0x0a,
        0x00, 0x3c, 0x00, 0x28, 0x00, 0x00, 0x00, 0x01, b'q', 0x00,
        0xce,
        0x02, 0x00, 0x05, 0x00, 0x00, 0x00, 0x0e,
        0x00, 0x3c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x19, 0x00, 0x00,
        0xce,
    ]);
    // 25 octets at most 32 a frame: one body frame.
    expected.extend_from_slice(b"\x03\x00\x05\x00\x00\x00\x19");
    expected.extend_from_slice(&body);
    expected.push(0xce);
    assert_eq!(&dst[..], &expected[..]);
}

#[test]
fn publish_helper_splits_at_frame_max_minus_eight() {
    let publish = basic::Publish::default();
    let body: Vec<u8> = (0..25u8).collect();
    let mut dst = BytesMut::new();
    encode_publish(&mut dst, 1, &publish, &BasicProperties::default(), &body, 0).unwrap();
    let unsplit = dst.len();
    dst.clear();
    // The header frame is 22 octets, so 22 is the smallest frame_max that works: 14-octet pieces.
    encode_publish(
        &mut dst,
        1,
        &publish,
        &BasicProperties::default(),
        &body,
        22,
    )
    .unwrap();
    assert_eq!(dst.len(), unsplit + 8, "one extra body frame");
    let tail = &dst[dst.len() - (8 + 14) - (8 + 11)..];
    let mut expected = b"\x03\x00\x01\x00\x00\x00\x0e".to_vec();
    expected.extend_from_slice(&body[..14]);
    expected.extend_from_slice(b"\xce\x03\x00\x01\x00\x00\x00\x0b");
    expected.extend_from_slice(&body[14..]);
    expected.push(0xce);
    assert_eq!(tail, &expected[..]);
}

#[test]
fn publish_with_empty_body_sends_no_body_frame() {
    let mut dst = BytesMut::new();
    encode_publish(
        &mut dst,
        1,
        &basic::Publish::default(),
        &BasicProperties::default(),
        &[],
        4096,
    )
    .unwrap();
    let mut src = dst.clone();
    let mut decoder = FrameDecoder::new(4096);
    assert!(matches!(
        decoder.decode(&mut src).unwrap(),
        Some(Frame::Method { .. })
    ));
    match decoder.decode(&mut src).unwrap() {
        Some(Frame::Header { header, .. }) => assert_eq!(header.body_size, 0),
        other => panic!("expected a header frame, got {other:?}"),
    }
    assert!(src.is_empty());
}

/// `{"k": value}` on the wire.
fn one_entry(tag_and_value: &[u8]) -> Vec<u8> {
    let len = 2 + tag_and_value.len();
    let mut wire = (len as u32).to_be_bytes().to_vec();
    wire.extend_from_slice(b"\x01k");
    wire.extend_from_slice(tag_and_value);
    wire
}

fn table_both_ways(value: FieldValue, tag_and_value: &[u8]) {
    let mut table = FieldTable::new();
    table.insert("k", value).unwrap();
    let mut dst = BytesMut::new();
    amqp_wire::codec::put_table(&mut dst, &table);
    let wire = one_entry(tag_and_value);
    assert_eq!(&dst[..], &wire[..], "encoding {table:?}");
    let mut r = Reader::new(Bytes::from(wire));
    assert_eq!(r.table("t").unwrap(), table);
    r.finish("t").unwrap();
}

#[test]
fn every_field_value_type() {
    table_both_ways(FieldValue::Bool(true), b"t\x01");
    table_both_ways(FieldValue::Bool(false), b"t\x00");
    table_both_ways(FieldValue::I8(-2), b"b\xfe");
    table_both_ways(FieldValue::U8(200), b"B\xc8");
    table_both_ways(FieldValue::I16(-2), b"s\xff\xfe");
    table_both_ways(FieldValue::U16(0xabcd), b"u\xab\xcd");
    table_both_ways(FieldValue::I32(-2), b"I\xff\xff\xff\xfe");
    table_both_ways(FieldValue::U32(0xdead_beef), b"i\xde\xad\xbe\xef");
    table_both_ways(FieldValue::I64(-2), b"l\xff\xff\xff\xff\xff\xff\xff\xfe");
    table_both_ways(FieldValue::F32(1.5), b"f\x3f\xc0\x00\x00");
    table_both_ways(FieldValue::F64(-2.5), b"d\xc0\x04\x00\x00\x00\x00\x00\x00");
    table_both_ways(
        FieldValue::Decimal(Decimal::new(2, -12345)),
        b"D\x02\xff\xff\xcf\xc7",
    );
    table_both_ways(FieldValue::from("hé"), b"S\x00\x00\x00\x03h\xc3\xa9");
    table_both_ways(
        FieldValue::LongStr(Bytes::from_static(b"\xff\x00")),
        b"S\x00\x00\x00\x02\xff\x00",
    );
    let array: FieldArray = [FieldValue::I8(1), FieldValue::Void, FieldValue::from("x")]
        .into_iter()
        .collect();
    // The array length counts octets (2 + 1 + 6), not elements.
    table_both_ways(
        FieldValue::Array(array),
        b"A\x00\x00\x00\x09b\x01VS\x00\x00\x00\x01x",
    );
    table_both_ways(
        FieldValue::Timestamp(1_700_000_000),
        b"T\x00\x00\x00\x00\x65\x53\xf1\x00",
    );
    let inner = FieldTable::new().with("n", true).unwrap();
    table_both_ways(FieldValue::Table(inner), b"F\x00\x00\x00\x04\x01nt\x01");
    table_both_ways(FieldValue::Void, b"V");
    table_both_ways(
        FieldValue::ByteArray(Bytes::from_static(b"\x00\x01")),
        b"x\x00\x00\x00\x02\x00\x01",
    );
}

#[test]
fn capital_l_is_read_as_i64_and_written_as_l() {
    let wire = one_entry(b"L\x00\x00\x00\x00\x00\x00\x01\x00");
    let mut r = Reader::new(Bytes::from(wire.clone()));
    let mut table = r.table("t").unwrap();
    assert_eq!(table.get("k"), Some(&FieldValue::I64(256)));
    // Unchanged, a decoded table is forwarded as it came.
    let mut dst = BytesMut::new();
    amqp_wire::codec::put_table(&mut dst, &table);
    assert_eq!(&dst[..], &wire[..]);
    // Once changed, it is written from its values, and an I64 is `l`.
    table.insert("k2", true).unwrap();
    assert_eq!(table.remove("k2"), Some(FieldValue::Bool(true)));
    let mut dst = BytesMut::new();
    amqp_wire::codec::put_table(&mut dst, &table);
    assert_eq!(
        &dst[..],
        &one_entry(b"l\x00\x00\x00\x00\x00\x00\x01\x00")[..]
    );
}

#[test]
fn nested_lengths_are_patched() {
    let mut inner = FieldTable::new();
    inner
        .insert(
            "deep",
            FieldArray::from(vec![FieldValue::from(FieldTable::new())]),
        )
        .unwrap();
    let outer = FieldTable::new()
        .with("in", inner)
        .unwrap()
        .with("z", 1u8)
        .unwrap();
    let mut dst = BytesMut::new();
    amqp_wire::codec::put_table(&mut dst, &outer);
    #[rustfmt::skip]
    let wire: &[u8] = &[
        0x00, 0x00, 0x00, 0x1b,
        0x02, b'i', b'n', b'F',
        0x00, 0x00, 0x00, 0x0f,
        0x04, b'd', b'e', b'e', b'p', b'A',
        0x00, 0x00, 0x00, 0x05,
        b'F', 0x00, 0x00, 0x00, 0x00,
        0x01, b'z', b'B', 0x01,
    ];
    assert_eq!(&dst[..], wire);
}
