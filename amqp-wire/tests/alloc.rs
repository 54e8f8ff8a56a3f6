//! Decoding the frames of a message allocates nothing: bodies and strings are `Bytes` handles
//! into the read buffer, handles into a shared buffer only bump a reference count, and
//! properties stay in their checked wire form until asked for. Frames decoded in place
//! (`FrameDecoder::decode_ref`) do not even touch a reference count.
//!
//! This file holds a single test, because the counting allocator sees every thread of the test
//! binary.

use std::alloc::System;

use amqp_wire::{
    basic, encode_content, encode_publish, BasicProperties, Frame, FrameDecoder, FrameRef, ShortStr,
};
use bytes::BytesMut;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const MESSAGES: usize = 50;

fn properties() -> BasicProperties {
    BasicProperties {
        content_type: Some(ShortStr::from_static("application/octet-stream")),
        delivery_mode: Some(2),
        priority: Some(4),
        correlation_id: Some(ShortStr::from_static("7f1c6a0e-req")),
        reply_to: Some(ShortStr::from_static("amq.rabbitmq.reply-to")),
        message_id: Some(ShortStr::from_static("msg-0001")),
        timestamp: Some(1_700_000_000),
        app_id: Some(ShortStr::from_static("bench")),
        ..Default::default()
    }
}

/// Decodes every frame of a freshly built stream, frame by frame and through a batch
/// (`FrameDecoder::batch`), and returns how many allocations and reallocations happened
/// meanwhile: the least over several runs, the larger of the two ways.
///
/// The counter is global, so it also sees the test harness's own thread, which allocates now and
/// then (e.g. when it first blocks waiting for the test). Decoding the same bytes is
/// deterministic, so its own count is the same every run, and the minimum is that count.
fn decode_allocations(build: impl Fn() -> BytesMut, check: impl Fn(&[Frame])) -> usize {
    let least = |batched: bool| {
        (0..10)
            .map(|_| {
                let mut src = build();
                // Make the buffer shared once, as the first frame split off a fresh read buffer
                // would.
                drop(src.split_to(0));
                let mut frames = Vec::with_capacity(3 * MESSAGES);
                let mut decoder = FrameDecoder::new(131_072);
                let region = Region::new(GLOBAL);
                if batched {
                    let mut batch = decoder.batch(&mut src);
                    while let Some(frame) = batch.decode().unwrap() {
                        frames.push(frame);
                    }
                } else {
                    while let Some(frame) = decoder.decode(&mut src).unwrap() {
                        frames.push(frame);
                    }
                }
                let stats = region.change();
                assert!(src.is_empty());
                check(&frames);
                stats.allocations + stats.reallocations
            })
            .min()
            .unwrap_or(usize::MAX)
    };
    least(false).max(least(true))
}

#[test]
fn decoding_messages_allocates_nothing() {
    // (a) basic.publish + header + 100-octet body.
    let publish = basic::Publish {
        exchange: ShortStr::from_static("amq.direct"),
        routing_key: ShortStr::from_static("work.items"),
        mandatory: false,
        immediate: false,
    };
    let allocations = decode_allocations(
        || {
            let mut wire = BytesMut::new();
            for _ in 0..MESSAGES {
                encode_publish(&mut wire, 1, &publish, &properties(), &[0xab; 100], 131_072)
                    .unwrap();
            }
            wire
        },
        |frames| {
            assert_eq!(frames.len(), 3 * MESSAGES);
            assert!(matches!(&frames[2], Frame::Body { payload, .. } if payload.len() == 100));
        },
    );
    assert_eq!(allocations, 0, "publish + header + 100 B body");

    // (b) basic.deliver + header + 4 KiB body.
    let deliver = basic::Deliver {
        consumer_tag: ShortStr::from_static("amq.ctag-Zq3pU8mW1xLrT0hCk5fG9A"),
        delivery_tag: 1,
        redelivered: false,
        exchange: ShortStr::from_static("amq.direct"),
        routing_key: ShortStr::from_static("work.items"),
    };
    let allocations = decode_allocations(
        || {
            let mut wire = BytesMut::new();
            for _ in 0..MESSAGES {
                encode_content(
                    &mut wire,
                    1,
                    &deliver,
                    &properties(),
                    &[0xcd; 4096],
                    131_072,
                )
                .unwrap();
            }
            wire
        },
        |frames| {
            assert_eq!(frames.len(), 3 * MESSAGES);
            assert!(matches!(&frames[2], Frame::Body { payload, .. } if payload.len() == 4096));
        },
    );
    assert_eq!(allocations, 0, "deliver + header + 4 KiB body");

    // A header whose properties hold a table is checked, not built: still nothing.
    let with_headers = BasicProperties {
        headers: Some(amqp_wire::FieldTable::new().with("k", 1i32).unwrap()),
        ..Default::default()
    };
    let one_header = || {
        let mut wire = BytesMut::new();
        encode_publish(&mut wire, 1, &publish, &with_headers, b"", 131_072).unwrap();
        wire
    };
    let allocations = decode_allocations(one_header, |frames| assert_eq!(frames.len(), 2));
    assert_eq!(allocations, 0, "a header with a headers table");

    // Building properties without a table allocates nothing either: strings up to 23 octets
    // are inline, longer ones share the header's buffer.
    let mut src = BytesMut::new();
    for _ in 0..MESSAGES {
        encode_publish(&mut src, 1, &publish, &properties(), b"x", 131_072).unwrap();
    }
    let frames: Vec<Frame> =
        std::iter::from_fn(|| FrameDecoder::new(0).decode(&mut src).unwrap()).collect();
    let headers: Vec<_> = frames
        .iter()
        .filter_map(|f| match f {
            Frame::Header { header, .. } => Some(&header.properties),
            _ => None,
        })
        .collect();
    assert_eq!(headers.len(), MESSAGES);
    let least = (0..5)
        .map(|_| {
            let region = Region::new(GLOBAL);
            for raw in &headers {
                std::hint::black_box(raw.decode());
            }
            let stats = region.change();
            stats.allocations + stats.reallocations
        })
        .min()
        .unwrap_or(usize::MAX);
    assert_eq!(least, 0, "building properties without a table");

    // Building properties that hold a headers table allocates nothing either: the table keeps
    // its checked octets. Reading an entry builds the entries, which the counter sees.
    let mut src = one_header();
    let frames: Vec<Frame> =
        std::iter::from_fn(|| FrameDecoder::new(0).decode(&mut src).unwrap()).collect();
    let Frame::Header { header, .. } = &frames[1] else {
        panic!("not a header")
    };
    let least = (0..5)
        .map(|_| {
            let region = Region::new(GLOBAL);
            std::hint::black_box(header.properties.decode());
            let stats = region.change();
            stats.allocations + stats.reallocations
        })
        .min()
        .unwrap_or(usize::MAX);
    assert_eq!(least, 0, "building properties with a headers table");
    let built = header.properties.decode();
    let region = Region::new(GLOBAL);
    let value = built.headers.as_ref().and_then(|h| h.get_i64("k"));
    let stats = region.change();
    assert_eq!(value, Some(1));
    assert_eq!(built, with_headers);
    assert!(
        stats.allocations > 0,
        "the counting allocator saw nothing while building a table's entries"
    );

    // Decoding in place (`FrameDecoder::decode_ref`), building each header's properties and
    // reading an entry of its `headers` table allocates nothing at all.
    let mut wire = BytesMut::new();
    for _ in 0..MESSAGES {
        let mut props = properties();
        props.headers.clone_from(&with_headers.headers);
        encode_content(&mut wire, 1, &deliver, &props, &[0xcd; 4096], 131_072).unwrap();
    }
    let least = (0..5)
        .map(|_| {
            let decoder = FrameDecoder::new(131_072);
            let mut rest = &wire[..];
            let (mut frames, mut found) = (0, 0);
            let region = Region::new(GLOBAL);
            while let Some(frame) = decoder.decode_ref(&mut rest).unwrap() {
                if let FrameRef::Header { header, .. } = &frame {
                    let built = header.properties.decode();
                    found += usize::from(built.headers.and_then(|h| h.get_i64("k")) == Some(1));
                }
                std::hint::black_box(&frame);
                frames += 1;
            }
            let stats = region.change();
            assert_eq!((frames, found, rest.len()), (3 * MESSAGES, MESSAGES, 0));
            stats.allocations + stats.reallocations
        })
        .min()
        .unwrap_or(usize::MAX);
    assert_eq!(
        least, 0,
        "decoding in place, building properties, reading a header"
    );
}
