//! The streaming decoder's edge cases: partial input, and each way a stream can be malformed.

use amqp_wire::{
    basic, encode_content, encode_publish, queue, BasicProperties, FieldTable, FieldValue, Frame,
    FrameDecoder, Method, ProtocolHeader, ShortStr, WireError,
};
use bytes::{BufMut, Bytes, BytesMut};

/// A frame with the given type, channel and payload, sized correctly and properly ended.
fn raw_frame(frame_type: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![frame_type];
    v.extend_from_slice(&channel.to_be_bytes());
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v.push(0xce);
    v
}

fn decode_all(decoder: &mut FrameDecoder, src: &mut BytesMut) -> Result<Vec<Frame>, WireError> {
    let mut frames = Vec::new();
    while let Some(frame) = decoder.decode(src)? {
        frames.push(frame);
    }
    Ok(frames)
}

fn decode_err(wire: &[u8]) -> WireError {
    let mut src = BytesMut::from(wire);
    match decode_all(&mut FrameDecoder::new(0), &mut src) {
        Err(e) => e,
        Ok(frames) => panic!("expected an error, decoded {frames:?}"),
    }
}

/// A stream of a few frames: a whole message, a heartbeat, a deliver with a split body.
fn sample_stream() -> BytesMut {
    let mut dst = BytesMut::new();
    let publish = basic::Publish {
        exchange: ShortStr::from_static("amq.direct"),
        routing_key: ShortStr::from_static("jobs"),
        mandatory: true,
        immediate: false,
    };
    let properties = BasicProperties {
        content_type: Some(ShortStr::from_static("application/json")),
        headers: Some(FieldTable::new().with("x-retries", 3i64).unwrap()),
        delivery_mode: Some(2),
        ..Default::default()
    };
    encode_publish(&mut dst, 1, &publish, &properties, b"{\"id\":1}", 4096).unwrap();
    Frame::HEARTBEAT.encode(&mut dst).unwrap();
    let deliver = basic::Deliver {
        consumer_tag: ShortStr::from_static("ctag-1"),
        delivery_tag: 42,
        redelivered: false,
        exchange: ShortStr::default(),
        routing_key: ShortStr::from_static("q"),
    };
    encode_content(
        &mut dst,
        2,
        &deliver,
        &BasicProperties::default(),
        &[9u8; 100],
        40,
    )
    .unwrap();
    dst
}

#[test]
fn whole_stream_decodes_in_order() {
    let mut src = sample_stream();
    let frames = decode_all(&mut FrameDecoder::new(4096), &mut src).unwrap();
    assert!(src.is_empty());
    let kinds: Vec<(u8, u16)> = frames
        .iter()
        .map(|f| (f.frame_type(), f.channel()))
        .collect();
    let mut expected = vec![(1, 1), (2, 1), (3, 1), (8, 0), (1, 2), (2, 2)];
    // 100 octets in pieces of 32: four body frames.
    expected.extend([(3, 2); 4]);
    assert_eq!(kinds, expected);
    match &frames[2] {
        Frame::Body { payload, .. } => assert_eq!(&payload[..], b"{\"id\":1}"),
        other => panic!("{other:?}"),
    }
    match &frames[1] {
        Frame::Header { header, .. } => {
            assert_eq!(header.body_size, 8);
            assert_eq!(
                header
                    .properties
                    .decode()
                    .headers
                    .unwrap()
                    .get_i64("x-retries"),
                Some(3)
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn byte_by_byte_gives_the_same_frames() {
    let whole = sample_stream();
    let expected = decode_all(&mut FrameDecoder::new(4096), &mut whole.clone()).unwrap();
    let mut decoder = FrameDecoder::new(4096);
    let mut src = BytesMut::new();
    let mut frames = Vec::new();
    for &b in whole.iter() {
        src.put_u8(b);
        frames.extend(decode_all(&mut decoder, &mut src).unwrap());
    }
    assert!(src.is_empty());
    assert_eq!(frames, expected);
}

#[test]
fn incomplete_input_consumes_nothing() {
    let whole = raw_frame(3, 1, b"abc");
    for cut in 0..whole.len() {
        let mut src = BytesMut::from(&whole[..cut]);
        assert_eq!(FrameDecoder::new(0).decode(&mut src), Ok(None), "cut {cut}");
        assert_eq!(src.len(), cut);
    }
}

#[test]
fn size_is_checked_before_the_payload_arrives() {
    // Only the 7-octet header: a body frame announcing 4089 payload octets (4097 in all).
    let mut src = BytesMut::from(&b"\x03\x00\x01\x00\x00\x0f\xf9"[..]);
    assert_eq!(
        FrameDecoder::new(4096).decode(&mut src),
        Err(WireError::FrameTooLarge {
            what: "content body frame",
            size: 4097,
            max: 4096
        })
    );
    // 4088 payload octets is exactly 4096: fine, wait for it, and make room for it.
    let mut src = BytesMut::from(&b"\x03\x00\x01\x00\x00\x0f\xf8"[..]);
    assert_eq!(FrameDecoder::new(4096).decode(&mut src), Ok(None));
    assert!(src.capacity() >= 4096);
}

#[test]
fn default_limit_is_frame_min_size() {
    let decoder = FrameDecoder::default();
    assert_eq!(decoder.frame_max(), 4096);
    let mut d = decoder;
    d.set_frame_max(131_072);
    assert_eq!(d.frame_max(), 131_072);
}

#[test]
fn wrong_frame_end() {
    let mut wire = raw_frame(3, 1, b"abc");
    *wire.last_mut().unwrap() = 0xcf;
    assert_eq!(
        decode_err(&wire),
        WireError::BadFrameEnd {
            what: "content body frame",
            found: 0xcf
        }
    );
}

#[test]
fn unknown_frame_type() {
    assert_eq!(
        decode_err(&raw_frame(4, 1, b"")),
        WireError::UnknownFrameType { frame_type: 4 }
    );
    // Known as soon as the first octet arrives.
    assert_eq!(
        decode_err(b"\x00"),
        WireError::UnknownFrameType { frame_type: 0 }
    );
}

#[test]
fn unknown_class_or_method() {
    assert_eq!(
        decode_err(&raw_frame(1, 1, b"\x00\x63\x00\x01")),
        WireError::UnknownMethod {
            class_id: 99,
            method_id: 1
        }
    );
    assert_eq!(
        decode_err(&raw_frame(1, 1, b"\x00\x3c\x03\xe7")),
        WireError::UnknownMethod {
            class_id: 60,
            method_id: 999
        }
    );
}

#[test]
fn content_header_for_a_class_without_content() {
    let payload = b"\x00\x32\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";
    assert_eq!(
        decode_err(&raw_frame(2, 1, payload)),
        WireError::UnknownClass { class_id: 50 }
    );
}

#[test]
fn content_header_weight_must_be_zero() {
    let payload = b"\x00\x3c\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";
    assert!(matches!(
        decode_err(&raw_frame(2, 1, payload)),
        WireError::Domain { .. }
    ));
}

#[test]
fn trailing_bytes_after_a_method() {
    // basic.qos with one octet too many.
    let payload = b"\x00\x3c\x00\x0a\x00\x00\x00\x00\x00\x0a\x00\xff";
    match decode_err(&raw_frame(1, 1, payload)) {
        WireError::TrailingBytes { what, count } => {
            assert_eq!(count, 1);
            assert!(what.contains("basic.qos"), "{what}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn trailing_bytes_after_a_content_header() {
    let payload = b"\x00\x3c\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01";
    assert_eq!(
        decode_err(&raw_frame(2, 1, payload)),
        WireError::TrailingBytes {
            what: "content header",
            count: 1
        }
    );
}

#[test]
fn truncated_fields_name_the_field() {
    // basic.publish whose routing key claims 4 octets but the frame holds 2.
    let payload = b"\x00\x3c\x00\x28\x00\x00\x00\x04jo";
    match decode_err(&raw_frame(1, 1, payload)) {
        WireError::Truncated { what } => assert!(what.contains("basic.publish"), "{what}"),
        other => panic!("{other:?}"),
    }
    // A method frame too short for its ids.
    match decode_err(&raw_frame(1, 1, b"\x00")) {
        WireError::Truncated { .. } => {}
        other => panic!("{other:?}"),
    }
    // Content header cut inside the body size.
    assert_eq!(
        decode_err(&raw_frame(2, 1, b"\x00\x3c\x00\x00\x00\x00")),
        WireError::Truncated {
            what: "content header body-size"
        }
    );
}

#[test]
fn bad_utf8_in_a_short_string() {
    let payload = b"\x00\x3c\x00\x28\x00\x00\x00\x02\xc3\x28\x00";
    match decode_err(&raw_frame(1, 1, payload)) {
        WireError::InvalidUtf8 { what } => assert!(what.contains("basic.publish"), "{what}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn heartbeat_must_be_on_channel_zero_and_empty() {
    assert_eq!(
        decode_err(&raw_frame(8, 1, b"")),
        WireError::InvalidHeartbeat {
            channel: 1,
            size: 0
        }
    );
    assert_eq!(
        decode_err(&raw_frame(8, 0, b"x")),
        WireError::InvalidHeartbeat {
            channel: 0,
            size: 1
        }
    );
}

#[test]
fn protocol_header_reply_is_a_version_mismatch() {
    let reply = b"AMQP\x00\x00\x09\x01";
    for cut in 0..reply.len() {
        let mut src = BytesMut::from(&reply[..cut]);
        assert_eq!(FrameDecoder::new(0).decode(&mut src), Ok(None), "cut {cut}");
    }
    assert_eq!(
        decode_err(b"AMQP\x01\x01\x00\x0a"),
        WireError::ProtocolVersionMismatch {
            server: ProtocolHeader {
                protocol_id: 1,
                major: 1,
                minor: 0,
                revision: 10
            }
        }
    );
    assert_eq!(
        decode_err(b"AMQX"),
        WireError::UnknownFrameType { frame_type: b'A' }
    );
}

/// A content header whose `headers` property nests `depth` tables.
fn nested_header(depth: usize) -> Vec<u8> {
    // Innermost first: an empty table, then each level wraps the previous in {"n": F...}.
    let mut table = vec![0u8, 0, 0, 0];
    for _ in 1..depth {
        let mut outer = Vec::with_capacity(table.len() + 7);
        outer.extend_from_slice(&((table.len() + 3) as u32).to_be_bytes());
        outer.extend_from_slice(b"\x01nF");
        outer.extend_from_slice(&table);
        table = outer;
    }
    let mut payload = b"\x00\x3c\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x20\x00".to_vec();
    payload.extend_from_slice(&table);
    raw_frame(2, 1, &payload)
}

#[test]
fn nesting_depth_is_limited() {
    let max = FieldTable::MAX_DEPTH;
    let mut src = BytesMut::from(&nested_header(max)[..]);
    let frame = FrameDecoder::new(0).decode(&mut src).unwrap().unwrap();
    let Frame::Header { header, .. } = frame else {
        panic!("not a header")
    };
    let mut depth = 1;
    let properties = header.properties.decode();
    let mut t = properties.headers.as_ref().unwrap();
    while let Some(inner) = t.get_table("n") {
        depth += 1;
        t = inner;
    }
    assert_eq!(depth, max);

    assert!(matches!(
        decode_err(&nested_header(max + 1)),
        WireError::NestingTooDeep { max: m, .. } if m == max
    ));
}

#[test]
fn hostile_nesting_does_not_overflow_the_stack() {
    // A million nested arrays, each one octet longer than the last: 'A' + length each.
    let depth = 1_000_000usize;
    let mut payload = b"\x00\x3c\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x20\x00".to_vec();
    payload.extend_from_slice(&((depth * 5 + 2) as u32).to_be_bytes());
    payload.extend_from_slice(b"\x01a");
    for level in 0..depth {
        payload.push(b'A');
        payload.extend_from_slice(&(((depth - level - 1) * 5) as u32).to_be_bytes());
    }
    let err = decode_err(&raw_frame(2, 1, &payload));
    assert!(matches!(err, WireError::NestingTooDeep { .. }), "{err:?}");
}

#[test]
fn arrays_count_toward_the_depth_too() {
    // headers = {"a": [[[...]]]}, with arrays nested to one level past the limit.
    let mut value = b"A\x00\x00\x00\x00".to_vec();
    for _ in 0..FieldTable::MAX_DEPTH - 1 {
        let mut outer = b"A".to_vec();
        outer.extend_from_slice(&(value.len() as u32).to_be_bytes());
        outer.extend_from_slice(&value);
        value = outer;
    }
    let mut table = ((value.len() + 2) as u32).to_be_bytes().to_vec();
    table.extend_from_slice(b"\x01a");
    table.extend_from_slice(&value);
    let mut payload = b"\x00\x3c\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x20\x00".to_vec();
    payload.extend_from_slice(&table);
    assert!(matches!(
        decode_err(&raw_frame(2, 1, &payload)),
        WireError::NestingTooDeep { .. }
    ));
}

#[test]
fn body_payload_is_a_slice_of_the_read_buffer() {
    let mut src = BytesMut::from(&raw_frame(3, 1, &[5u8; 1000])[..]);
    let base = src.as_ptr() as usize;
    let Some(Frame::Body { payload, .. }) = FrameDecoder::new(0).decode(&mut src).unwrap() else {
        panic!("not a body frame")
    };
    assert_eq!(payload.len(), 1000);
    assert_eq!(payload.as_ptr() as usize, base + 7, "payload was copied");
}

#[test]
fn long_method_strings_are_slices_of_the_read_buffer_and_short_ones_inline() {
    let long = "orders.eu-west.priority.high";
    let mut dst = BytesMut::new();
    Frame::Method {
        channel: 1,
        method: Method::BasicPublish(basic::Publish {
            exchange: ShortStr::from_static("amq.topic"),
            routing_key: ShortStr::from_static(long),
            ..Default::default()
        }),
    }
    .encode(&mut dst)
    .unwrap();
    let buffer = dst.as_ptr() as usize..dst.as_ptr() as usize + dst.len();
    let Some(Frame::Method {
        method: Method::BasicPublish(p),
        ..
    }) = FrameDecoder::new(0).decode(&mut dst).unwrap()
    else {
        panic!("not basic.publish")
    };
    assert_eq!(p.routing_key, long);
    let at = p.routing_key.as_bytes().as_ptr() as usize;
    assert!(buffer.contains(&at), "a long routing key was copied");
    assert_eq!(p.exchange, "amq.topic");
    let at = p.exchange.as_bytes().as_ptr() as usize;
    assert!(
        !buffer.contains(&at),
        "a short exchange name was not kept inline"
    );
}

#[test]
fn content_methods_only() {
    let mut dst = BytesMut::new();
    let qos = basic::Qos::default();
    let err = encode_content(&mut dst, 1, &qos, &BasicProperties::default(), b"x", 0).unwrap_err();
    assert!(matches!(err, WireError::Domain { .. }));
    assert!(dst.is_empty());
}

#[test]
fn frame_max_too_small_for_a_body() {
    let mut dst = BytesMut::new();
    let err = encode_publish(
        &mut dst,
        1,
        &basic::Publish::default(),
        &BasicProperties::default(),
        b"x",
        8,
    )
    .unwrap_err();
    assert_eq!(err, WireError::FrameMaxTooSmall { frame_max: 8 });
    assert!(dst.is_empty());
}

#[test]
fn table_values_decode_through_a_header() {
    let mut headers = FieldTable::new();
    headers.insert("x-death", FieldValue::Void).unwrap();
    let mut dst = BytesMut::new();
    Frame::Header {
        channel: 1,
        header: amqp_wire::ContentHeader::new(
            3,
            BasicProperties {
                headers: Some(headers.clone()),
                ..Default::default()
            },
        ),
    }
    .encode(&mut dst)
    .unwrap();
    let Some(Frame::Header { header, .. }) = FrameDecoder::new(0).decode(&mut dst).unwrap() else {
        panic!("not a header")
    };
    assert_eq!(header.properties.decode().headers, Some(headers));
}

/// A method frame whose names all fit inline is decoded in place; one with a longer name or a
/// table from a handle on the read buffer. Both give exactly what `Method::decode` gives for the
/// payload, errors included, and consume the whole frame.
#[test]
fn method_frames_decode_alike_in_place_and_shared() {
    let encode = |method: Method| {
        let mut dst = BytesMut::new();
        method.encode(&mut dst);
        dst.to_vec()
    };
    let publish = encode(
        basic::Publish {
            exchange: ShortStr::from_static("amq.direct"),
            routing_key: ShortStr::from_static("jobs"),
            ..Default::default()
        }
        .into(),
    );
    let deliver = encode(
        basic::Deliver {
            // RabbitMQ's consumer tags are 31 octets: longer than the inline size.
            consumer_tag: ShortStr::from_static("amq.ctag-Zq3pU8mW1xLrT0hCk5fG9A"),
            delivery_tag: 7,
            exchange: ShortStr::from_static("ex"),
            routing_key: ShortStr::from_static("rk"),
            ..Default::default()
        }
        .into(),
    );
    let declare = encode(
        queue::Declare {
            queue: ShortStr::from_static("q"),
            arguments: FieldTable::new().with("x-max-length", 10i64).unwrap(),
            ..Default::default()
        }
        .into(),
    );
    let mut bad_utf8 = publish.clone();
    bad_utf8[7] = 0xff; // inside "amq.direct"
    let mut bad_long_utf8 = deliver.clone();
    bad_long_utf8[10] = 0xff; // inside the consumer tag
    let mut trailing = publish.clone();
    trailing.push(0);
    let truncated = publish[..publish.len() - 3].to_vec();
    let mut unknown = publish.clone();
    unknown[3] = 99;
    // Three names past the inline size, the most a method holds.
    let long = |prefix: &str| ShortStr::new(&format!("{prefix}-{}", "x".repeat(40))).unwrap();
    let returned = encode(
        basic::Return {
            reply_code: 312.into(),
            reply_text: long("NO_ROUTE"),
            exchange: long("exchange"),
            routing_key: long("amq.rabbitmq.reply-to.g1h2AA5yZXBseUAyNjg5NjAy"),
        }
        .into(),
    );
    let declare_ok = encode(
        queue::DeclareOk {
            queue: long("amq.gen"),
            message_count: 3,
            consumer_count: 1,
        }
        .into(),
    );
    // connection.open with a long reserved short string: read, checked, and dropped.
    let mut open = vec![0, 10, 0, 40, 1, b'/', 30];
    open.extend_from_slice(&[b'c'; 30]);
    open.push(0);
    let mut open_bad_reserved = open.clone();
    open_bad_reserved[10] = 0xff;
    let truncated_in_long = deliver[..20].to_vec();
    let mut bad_after_long = deliver.clone();
    let at = bad_after_long.len() - 1; // the last octet of the routing key
    bad_after_long[at] = 0xff;

    for payload in [
        publish,
        deliver,
        declare,
        bad_utf8,
        bad_long_utf8,
        trailing,
        truncated,
        unknown,
        returned,
        declare_ok,
        open,
        open_bad_reserved,
        truncated_in_long,
        bad_after_long,
    ] {
        let expected = Method::decode(Bytes::from(payload.clone()));
        let mut src = BytesMut::from(&raw_frame(1, 5, &payload)[..]);
        let got = FrameDecoder::new(0).decode(&mut src);
        match (&expected, got) {
            (
                Ok(method),
                Ok(Some(Frame::Method {
                    channel: 5,
                    method: got,
                })),
            ) => {
                assert_eq!(&got, method);
                assert!(src.is_empty(), "the frame was not consumed");
            }
            (Err(error), Err(got)) => assert_eq!(&got, error),
            (expected, got) => panic!("expected {expected:?}, got {got:?} for {payload:?}"),
        }
    }
}

/// Names too long to be kept inline are not copied: each is a slice of the read buffer the frame
/// arrived in, and the rest of the method is read in place around them.
#[test]
fn long_names_in_a_method_share_the_read_buffer() {
    let long = |prefix: &str| ShortStr::new(&format!("{prefix}-{}", "y".repeat(30))).unwrap();
    let sent = basic::Return {
        reply_code: 312.into(),
        reply_text: long("NO_ROUTE"),
        exchange: ShortStr::from_static("ex"),
        routing_key: long("rk"),
    };
    let mut payload = BytesMut::new();
    Method::from(sent.clone()).encode(&mut payload);
    let mut src = BytesMut::from(&raw_frame(1, 3, &payload)[..]);
    let buffer = src.as_ptr_range();
    let Some(Frame::Method {
        channel: 3,
        method: Method::BasicReturn(got),
    }) = FrameDecoder::new(0).decode(&mut src).unwrap()
    else {
        panic!("not a basic.return")
    };
    assert_eq!(got, sent);
    assert!(src.is_empty());
    for name in [&got.reply_text, &got.routing_key] {
        let octets = name.as_bytes().as_ptr_range();
        assert!(
            buffer.start <= octets.start && octets.end <= buffer.end,
            "{name} was copied"
        );
    }
}
