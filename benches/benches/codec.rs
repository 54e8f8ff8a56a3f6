//! Codec benchmarks: `amqp-wire` side by side with `amq-protocol` (the codec under lapin) on the
//! same bytes, so one run shows the ratio.
//!
//! Cases, each decoded and encoded:
//! - `publish_100B`: basic.publish + content header + 100-octet body (3 frames);
//! - `deliver_4KiB`: basic.deliver + content header + 4096-octet body (3 frames);
//! - `pika_publish_100B`, `pika_deliver_4KiB`: the same messages as pika encodes them, with two
//!   headers as their only properties (`benches/data/pika/`, decoded only);
//! - `table_20`: a field table of 20 mixed entries (decoded: checked and kept as octets, and
//!   with every entry built).
//!
//! Message decoding runs over a read buffer holding [`MESSAGES`] messages back to back, as a
//! socket read would leave them: before each iteration the octets are copied into a reused read
//! buffer (outside the timed part, so they are in cache for both codecs alike), then every frame
//! in it is decoded and dropped. The reported time is for the whole buffer; divide by
//! [`MESSAGES`] for one message (criterion's "elements" throughput counts messages).
//! After each pair of decode benchmarks an interleaved comparison decodes the same buffer with
//! both codecs in alternation and prints the ratio of the medians, which outside load cannot
//! tilt towards one side. Both codecs get the same octets, and the set-up checks that both
//! decode them to the same values and that both encoders write exactly those octets, so each
//! pair does the same work.
//!
//! ```text
//! cargo bench -p benches --bench codec
//! ```
// criterion_group! defines an undocumented `pub fn`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::io::Cursor;
use std::time::{Duration, Instant};

use amq_protocol::frame::{gen_frame, parse_frame, AMQPContentHeader, AMQPFrame, WriteContext};
use amq_protocol::protocol::{basic as ap_basic, AMQPClass, BasicProperties as ApProperties};
use amq_protocol::types::generation::gen_field_table;
use amq_protocol::types::parsing::parse_field_table;
use amq_protocol::types::{
    AMQPValue, ByteArray, DecimalValue, FieldArray as ApArray, FieldTable as ApTable, LongString,
    ShortString,
};
use amqp_wire::{
    basic, codec::put_table, encode_content, encode_publish, BasicProperties, Decimal, FieldArray,
    FieldTable, FieldValue, Frame, FrameDecoder, FrameRef, Reader, ShortStr, WireError,
};
use bytes::{Buf, Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// Messages per read buffer in the decode benchmarks.
const MESSAGES: usize = 32;
const FRAME_MAX: u32 = 131_072;
const CHANNEL: u16 = 1;

const EXCHANGE: &str = "amq.direct";
const ROUTING_KEY: &str = "work.items";
const CONSUMER_TAG: &str = "amq.ctag-Zq3pU8mW1xLrT0hCk5fG9A";
const CONTENT_TYPE: &str = "application/octet-stream";
const CORRELATION_ID: &str = "7f1c6a0e-req";
const MESSAGE_ID: &str = "msg-0001";

/// One message's worth of content, described once and built for both codecs.
struct Message {
    ours: Vec<u8>,
    body: Vec<u8>,
    theirs: Vec<AMQPFrame>,
}

fn our_properties() -> BasicProperties {
    BasicProperties::default()
        .with_content_type(ShortStr::from_static(CONTENT_TYPE))
        .with_delivery_mode(2)
        .with_priority(4)
        .with_correlation_id(ShortStr::from_static(CORRELATION_ID))
        .with_message_id(ShortStr::from_static(MESSAGE_ID))
        .with_timestamp(1_700_000_000)
        .with_headers(
            FieldTable::new()
                .with("x-retry", 3i32)
                .unwrap()
                .with("x-source", "sensor-7")
                .unwrap(),
        )
}

fn their_properties() -> ApProperties {
    ApProperties::default()
        .with_content_type(CONTENT_TYPE.into())
        .with_delivery_mode(2)
        .with_priority(4)
        .with_correlation_id(CORRELATION_ID.into())
        .with_message_id(MESSAGE_ID.into())
        .with_timestamp(1_700_000_000)
        .with_headers({
            let mut headers = ApTable::default();
            headers.insert("x-retry".into(), AMQPValue::LongInt(3));
            headers.insert(
                "x-source".into(),
                AMQPValue::LongString(LongString::from("sensor-7")),
            );
            headers
        })
}

fn our_publish() -> basic::Publish {
    basic::Publish {
        exchange: ShortStr::from_static(EXCHANGE),
        routing_key: ShortStr::from_static(ROUTING_KEY),
        mandatory: false,
        immediate: false,
    }
}

fn our_deliver() -> basic::Deliver {
    basic::Deliver {
        consumer_tag: ShortStr::from_static(CONSUMER_TAG),
        delivery_tag: 1_234_567,
        redelivered: false,
        exchange: ShortStr::from_static(EXCHANGE),
        routing_key: ShortStr::from_static(ROUTING_KEY),
    }
}

fn their_frames(method: ap_basic::AMQPMethod, body: &[u8]) -> Vec<AMQPFrame> {
    vec![
        AMQPFrame::Method(CHANNEL, AMQPClass::Basic(method)),
        AMQPFrame::Header(
            CHANNEL,
            AMQPContentHeader {
                class_id: 60,
                body_size: body.len() as u64,
                properties: their_properties(),
            },
        ),
        AMQPFrame::Body(CHANNEL, body.to_vec()),
    ]
}

fn publish_message() -> Message {
    let body = vec![0xab; 100];
    let mut ours = BytesMut::new();
    encode_publish(
        &mut ours,
        CHANNEL,
        &our_publish(),
        &our_properties(),
        &body,
        FRAME_MAX,
    )
    .unwrap();
    let theirs = their_frames(
        ap_basic::AMQPMethod::Publish(ap_basic::Publish {
            exchange: EXCHANGE.into(),
            routing_key: ROUTING_KEY.into(),
            mandatory: false,
            immediate: false,
        }),
        &body,
    );
    Message {
        ours: ours.to_vec(),
        body,
        theirs,
    }
}

fn deliver_message() -> Message {
    let body = vec![0xcd; 4096];
    let mut ours = BytesMut::new();
    encode_content(
        &mut ours,
        CHANNEL,
        &our_deliver(),
        &our_properties(),
        &body,
        FRAME_MAX,
    )
    .unwrap();
    let theirs = their_frames(
        ap_basic::AMQPMethod::Deliver(ap_basic::Deliver {
            consumer_tag: CONSUMER_TAG.into(),
            delivery_tag: 1_234_567,
            redelivered: false,
            exchange: EXCHANGE.into(),
            routing_key: ROUTING_KEY.into(),
        }),
        &body,
    );
    Message {
        ours: ours.to_vec(),
        body,
        theirs,
    }
}

/// Twenty entries of mixed types, keys in sorted order (amq-protocol keeps its tables sorted,
/// so this way both encoders write the same octets).
fn table_entries() -> Vec<(&'static str, FieldValue, AMQPValue)> {
    vec![
        ("a-bool", FieldValue::Bool(true), AMQPValue::Boolean(true)),
        ("b-i8", FieldValue::I8(-5), AMQPValue::ShortShortInt(-5)),
        ("c-u8", FieldValue::U8(200), AMQPValue::ShortShortUInt(200)),
        ("d-i16", FieldValue::I16(-300), AMQPValue::ShortInt(-300)),
        (
            "e-u16",
            FieldValue::U16(60_000),
            AMQPValue::ShortUInt(60_000),
        ),
        (
            "f-i32",
            FieldValue::I32(-70_000),
            AMQPValue::LongInt(-70_000),
        ),
        (
            "g-u32",
            FieldValue::U32(4_000_000_000),
            AMQPValue::LongUInt(4_000_000_000),
        ),
        (
            "h-i64",
            FieldValue::I64(-1 << 40),
            AMQPValue::LongLongInt(-1 << 40),
        ),
        ("i-f32", FieldValue::F32(1.5), AMQPValue::Float(1.5)),
        ("j-f64", FieldValue::F64(-2.25), AMQPValue::Double(-2.25)),
        (
            "k-decimal",
            FieldValue::Decimal(Decimal::new(2, 12_345)),
            AMQPValue::DecimalValue(DecimalValue {
                scale: 2,
                value: 12_345,
            }),
        ),
        (
            "l-string",
            FieldValue::from("a long string value"),
            AMQPValue::LongString(LongString::from("a long string value")),
        ),
        (
            "m-timestamp",
            FieldValue::Timestamp(1_700_000_000),
            AMQPValue::Timestamp(1_700_000_000),
        ),
        ("n-void", FieldValue::Void, AMQPValue::Void),
        (
            "o-bytes",
            FieldValue::ByteArray(Bytes::from_static(b"\x00\x01\x02\x03\xfe\xff")),
            AMQPValue::ByteArray(ByteArray::from(&b"\x00\x01\x02\x03\xfe\xff"[..])),
        ),
        (
            "p-array",
            FieldValue::Array(FieldArray::from(vec![
                FieldValue::I32(1),
                FieldValue::from("two"),
                FieldValue::Bool(false),
            ])),
            AMQPValue::FieldArray(ApArray::from(vec![
                AMQPValue::LongInt(1),
                AMQPValue::LongString("two".into()),
                AMQPValue::Boolean(false),
            ])),
        ),
        (
            "q-table",
            FieldValue::Table(
                FieldTable::new()
                    .with("nested", 7i64)
                    .unwrap()
                    .with("z", "inner")
                    .unwrap(),
            ),
            AMQPValue::FieldTable({
                let mut t = ApTable::default();
                t.insert("nested".into(), AMQPValue::LongLongInt(7));
                t.insert("z".into(), AMQPValue::LongString("inner".into()));
                t
            }),
        ),
        (
            "r-queue-type",
            FieldValue::from("quorum"),
            AMQPValue::LongString("quorum".into()),
        ),
        (
            "s-max-length",
            FieldValue::I64(10_000),
            AMQPValue::LongLongInt(10_000),
        ),
        (
            "t-expires",
            FieldValue::I32(60_000),
            AMQPValue::LongInt(60_000),
        ),
    ]
}

fn tables() -> (FieldTable, ApTable) {
    let mut ours = FieldTable::new();
    let mut theirs = ApTable::default();
    for (key, our_value, their_value) in table_entries() {
        ours.insert(key, our_value).unwrap();
        theirs.insert(ShortString::from(key), their_value);
    }
    assert_eq!(ours.len(), 20);
    (ours, theirs)
}

/// amq-protocol's encoder into a reused fixed-size buffer (as lapin writes into its own send
/// buffer); returns how many octets it wrote.
fn their_encode(frames: &[AMQPFrame], out: &mut [u8]) -> usize {
    let mut ctx = WriteContext::from(Cursor::new(out));
    for frame in frames {
        ctx = gen_frame(frame)(ctx).unwrap();
    }
    ctx.position as usize
}

/// amq-protocol's table encoder, like [`their_encode`].
fn their_encode_table(table: &ApTable, out: &mut [u8]) -> usize {
    let ctx = gen_field_table(table)(WriteContext::from(Cursor::new(out))).unwrap();
    ctx.position as usize
}

/// Runs `decode` `iters` times, each after `refill` has put the octets back into the read
/// buffer, and returns the time spent in `decode` alone.
fn timed_refills<B>(
    iters: u64,
    buf: &mut B,
    refill: impl Fn(&mut B),
    decode: impl Fn(&mut B),
) -> Duration {
    let mut spent = Duration::ZERO;
    for _ in 0..iters {
        refill(buf);
        let start = Instant::now();
        decode(buf);
        spent += start.elapsed();
    }
    spent
}

// Not inlined, so a profiler (e.g. `valgrind --tool=callgrind --toggle-collect=…`) can single
// out the decoding from the set-up around it.
#[inline(never)]
fn our_decode_all(src: &mut BytesMut) -> usize {
    let mut decoder = FrameDecoder::new(FRAME_MAX);
    let mut n = 0;
    while let Some(frame) = decoder.decode(src).unwrap() {
        black_box(&frame);
        n += 1;
    }
    n
}

/// [`our_decode_all`] that also builds each content header's `BasicProperties`, as
/// amq-protocol always does: the like-for-like comparison.
#[inline(never)]
fn our_decode_all_built(src: &mut BytesMut) -> usize {
    let mut decoder = FrameDecoder::new(FRAME_MAX);
    let mut n = 0;
    while let Some(frame) = decoder.decode(src).unwrap() {
        if let Frame::Header { header, .. } = &frame {
            let properties = header.properties.decode();
            black_box(&properties);
        }
        black_box(&frame);
        n += 1;
    }
    n
}

/// The floor for any decoder that hands out shared handles: each frame's payload is split off
/// the read buffer as a `Bytes` and dropped, and nothing is parsed (the frames are trusted to
/// be whole). What a real decoder costs beyond this is its parsing, checking and building.
#[inline(never)]
fn floor_split_payloads(src: &mut BytesMut) -> usize {
    let mut n = 0;
    while let Some(&[_, _, _, s0, s1, s2, s3]) = src.get(..7) {
        let size = u32::from_be_bytes([s0, s1, s2, s3]) as usize;
        src.advance(7);
        black_box(src.split_to(size).freeze());
        src.advance(1);
        n += 1;
    }
    n
}

/// [`our_decode_all_built`] looking at each frame where the decoder returns it, instead of
/// moving it out of the `Result` first. Moving a 120-byte `Frame` right after the decoder wrote
/// it costs a store-forwarding stall per frame, which is a third of the decoding time; a caller
/// that matches the result in place (or binds only the fields it keeps) does not pay it.
#[inline(never)]
fn our_decode_all_built_in_place(src: &mut BytesMut) -> usize {
    let mut decoder = FrameDecoder::new(FRAME_MAX);
    look_at_built_in_place(|| decoder.decode(src))
}

/// [`our_decode_all_built_in_place`] through `FrameDecoder::batch`, which takes every whole
/// frame off the read buffer in one split and hands out slices of it.
#[inline(never)]
fn our_decode_all_built_batch(src: &mut BytesMut) -> usize {
    let mut decoder = FrameDecoder::new(FRAME_MAX);
    let mut batch = decoder.batch(src);
    look_at_built_in_place(|| batch.decode())
}

/// [`our_decode_all_built_in_place`] with frames that borrow the read buffer
/// (`FrameDecoder::decode_ref`): no `Bytes` handle, so no reference count, and the properties
/// built as `BasicPropertiesRef` (names borrowed, the `headers` table a checked view).
#[inline(never)]
fn our_decode_all_built_borrowed(src: &mut BytesMut) -> usize {
    let decoder = FrameDecoder::new(FRAME_MAX);
    let mut rest: &[u8] = src;
    let mut n = 0;
    loop {
        match &decoder.decode_ref(&mut rest) {
            Ok(Some(frame)) => {
                if let FrameRef::Header { header, .. } = frame {
                    let properties = header.properties.decode();
                    black_box(&properties);
                }
                black_box(frame);
                n += 1;
            }
            Ok(None) => break,
            Err(e) => panic!("{e}"),
        }
    }
    let used = src.len() - rest.len();
    src.advance(used);
    n
}

/// Takes frames from `next` until it has no more, looking at each where it is returned and
/// building each content header's properties; returns how many there were.
#[inline(always)]
fn look_at_built_in_place(mut next: impl FnMut() -> Result<Option<Frame>, WireError>) -> usize {
    let mut n = 0;
    loop {
        match &next() {
            Ok(Some(frame)) => {
                if let Frame::Header { header, .. } = frame {
                    let properties = header.properties.decode();
                    black_box(&properties);
                }
                black_box(frame);
                n += 1;
            }
            Ok(None) => return n,
            Err(e) => panic!("{e}"),
        }
    }
}

/// [`their_decode_all`], looking at each frame where the parser returns it: the like-for-like
/// comparison for [`our_decode_all_built_in_place`] (amq-protocol always builds the properties).
#[inline(never)]
fn their_decode_all_in_place(mut src: &[u8]) -> usize {
    let mut n = 0;
    while !src.is_empty() {
        match &parse_frame(src) {
            Ok((rest, frame)) => {
                black_box(frame);
                src = rest;
            }
            Err(e) => panic!("{e:?}"),
        }
        n += 1;
    }
    n
}

#[inline(never)]
fn their_decode_all(mut src: &[u8]) -> usize {
    let mut n = 0;
    while !src.is_empty() {
        let (rest, frame) = parse_frame(src).unwrap();
        black_box(&frame);
        src = rest;
        n += 1;
    }
    n
}

/// Both codecs agree on `message`: each decodes the other's octets to the frames it expects and
/// each encodes exactly the octets the other does.
fn check_message(message: &Message) {
    let mut theirs = vec![0; 8192];
    let n = their_encode(&message.theirs, &mut theirs);
    assert_eq!(theirs[..n], message.ours, "the two encoders disagree");

    let mut src = BytesMut::from(&message.ours[..]);
    let mut decoder = FrameDecoder::new(FRAME_MAX);
    let mut ours = Vec::new();
    while let Some(frame) = decoder.decode(&mut src).unwrap() {
        ours.push(frame);
    }
    assert_eq!(ours.len(), 3);
    assert!(matches!(&ours[2], Frame::Body { payload, .. } if payload[..] == message.body[..]));
    let mut src = &message.ours[..];
    for expected in &message.theirs {
        let (rest, frame) = parse_frame(src).unwrap();
        assert_eq!(&frame, expected);
        src = rest;
    }
}

fn bench_message(
    c: &mut Criterion,
    name: &str,
    message: &Message,
    encode_ours: impl Fn(&mut BytesMut),
) {
    check_message(message);
    bench_decode(c, name, &message.ours);

    let mut group = c.benchmark_group(format!("encode/{name}"));
    group.throughput(Throughput::Elements(1));
    let mut ours = BytesMut::with_capacity(8192);
    group.bench_function("amqp-wire", |b| {
        b.iter(|| {
            ours.clear();
            encode_ours(&mut ours);
            black_box(&ours);
        });
    });
    let mut theirs = vec![0; 8192];
    group.bench_function("amq-protocol", |b| {
        b.iter(|| black_box(their_encode(black_box(&message.theirs), &mut theirs)));
    });
    group.finish();
}

/// The decode benchmarks of one message (`one`: its three frames), repeated [`MESSAGES`]
/// times in the read buffer: both codecs, ours also with the properties built, then the
/// interleaved ratios.
fn bench_decode(c: &mut Criterion, name: &str, one: &[u8]) {
    let wire: Vec<u8> = one.repeat(MESSAGES);

    let mut group = c.benchmark_group(format!("decode/{name}"));
    group.throughput(Throughput::Elements(MESSAGES as u64));
    let mut ours = BytesMut::with_capacity(wire.len());
    group.bench_function("amqp-wire", |b| {
        b.iter_custom(|iters| {
            timed_refills(
                iters,
                &mut ours,
                |src| src.extend_from_slice(&wire),
                |src| assert_eq!(our_decode_all(src), 3 * MESSAGES),
            )
        });
    });
    let mut theirs = Vec::with_capacity(wire.len());
    group.bench_function("amq-protocol", |b| {
        b.iter_custom(|iters| {
            timed_refills(
                iters,
                &mut theirs,
                |src| {
                    src.clear();
                    src.extend_from_slice(&wire);
                },
                |src| assert_eq!(their_decode_all(src), 3 * MESSAGES),
            )
        });
    });
    group.bench_function("amqp-wire, properties built", |b| {
        b.iter_custom(|iters| {
            timed_refills(
                iters,
                &mut ours,
                |src| src.extend_from_slice(&wire),
                |src| assert_eq!(our_decode_all_built(src), 3 * MESSAGES),
            )
        });
    });
    group.finish();

    interleaved_decode_ratio(name, &wire, our_decode_all, their_decode_all);
    interleaved_decode_ratio(
        &format!("{name}, properties built"),
        &wire,
        our_decode_all_built,
        their_decode_all,
    );
    interleaved_decode_ratio(
        &format!("{name}, properties built, frames looked at in place"),
        &wire,
        our_decode_all_built_in_place,
        their_decode_all_in_place,
    );
    interleaved_decode_ratio(
        &format!("{name}, properties built, frames looked at in place, one batch"),
        &wire,
        our_decode_all_built_batch,
        their_decode_all_in_place,
    );
    interleaved_decode_ratio(
        &format!("{name}, properties built, frames borrowed (decode_ref)"),
        &wire,
        our_decode_all_built_borrowed,
        their_decode_all_in_place,
    );
}

/// Messages encoded by pika (`benches/data/pika/make.py`): a basic.publish and a basic.deliver
/// whose properties are two headers, as another client puts them on the wire. Both codecs
/// must decode each to three frames with the same body.
fn pika_messages(c: &mut Criterion) {
    for (name, one, body_len) in [
        (
            "pika_publish_100B",
            &include_bytes!("../data/pika/publish.bin")[..],
            100,
        ),
        (
            "pika_deliver_4KiB",
            &include_bytes!("../data/pika/deliver.bin")[..],
            4096,
        ),
    ] {
        let mut src = BytesMut::from(one);
        let mut decoder = FrameDecoder::new(FRAME_MAX);
        let mut ours = Vec::new();
        while let Some(frame) = decoder.decode(&mut src).unwrap() {
            ours.push(frame);
        }
        assert_eq!(ours.len(), 3);
        let Frame::Header { header, .. } = &ours[1] else {
            panic!("{name}: no content header")
        };
        let headers = header.properties.decode().headers.unwrap();
        assert_eq!(headers.get_i64("x-retry"), Some(3));
        assert!(matches!(&ours[2], Frame::Body { payload, .. } if payload.len() == body_len));
        assert_eq!(their_decode_all(one), 3);
        bench_decode(c, name, one);
        interleaved_decode_ratio(
            &format!("{name}, floor: split and drop each payload"),
            &one.repeat(MESSAGES),
            floor_split_payloads,
            their_decode_all,
        );
    }
}

/// Rounds of the interleaved comparison.
const INTERLEAVED_ROUNDS: usize = 2001;

/// Decodes the same read buffer with both codecs in alternation, round after round, and prints
/// the median time of each and their ratio. Criterion measures the two one after the other, so
/// on a shared or virtual machine a burst of outside load can land on one codec only;
/// alternating puts both under the same conditions, which makes the ratio much steadier than
/// the quotient of the two criterion estimates.
fn interleaved_decode_ratio(
    name: &str,
    wire: &[u8],
    our_decode: fn(&mut BytesMut) -> usize,
    their_decode: fn(&[u8]) -> usize,
) {
    let mut ours = BytesMut::with_capacity(wire.len());
    let mut theirs = Vec::with_capacity(wire.len());
    let mut our_times = Vec::with_capacity(INTERLEAVED_ROUNDS);
    let mut their_times = Vec::with_capacity(INTERLEAVED_ROUNDS);
    for _ in 0..INTERLEAVED_ROUNDS {
        our_times.push(timed_refills(
            1,
            &mut ours,
            |src| src.extend_from_slice(wire),
            |src| assert_eq!(our_decode(src), 3 * MESSAGES),
        ));
        their_times.push(timed_refills(
            1,
            &mut theirs,
            |src| {
                src.clear();
                src.extend_from_slice(wire);
            },
            |src| assert_eq!(their_decode(src), 3 * MESSAGES),
        ));
    }
    let median = |times: &mut Vec<Duration>| {
        times.sort_unstable();
        times[times.len() / 2]
    };
    let (ours, theirs) = (median(&mut our_times), median(&mut their_times));
    println!(
        "interleaved decode/{name}: amqp-wire {ours:.2?}, amq-protocol {theirs:.2?} per {MESSAGES} \
         messages (medians of {INTERLEAVED_ROUNDS} alternating rounds): {:.2}x",
        theirs.as_secs_f64() / ours.as_secs_f64()
    );
}

fn messages(c: &mut Criterion) {
    let publish = our_publish();
    let deliver = our_deliver();
    let properties = our_properties();
    let message = publish_message();
    bench_message(c, "publish_100B", &message, |dst| {
        encode_publish(
            dst,
            CHANNEL,
            &publish,
            &properties,
            &message.body,
            FRAME_MAX,
        )
        .unwrap();
    });
    let message = deliver_message();
    bench_message(c, "deliver_4KiB", &message, |dst| {
        encode_content(
            dst,
            CHANNEL,
            &deliver,
            &properties,
            &message.body,
            FRAME_MAX,
        )
        .unwrap();
    });
}

fn table(c: &mut Criterion) {
    let (ours, theirs) = tables();
    let mut wire = BytesMut::new();
    put_table(&mut wire, &ours);
    let wire = wire.freeze();
    let mut their_wire = vec![0; 1024];
    let n = their_encode_table(&theirs, &mut their_wire);
    assert_eq!(their_wire[..n], wire, "the two encoders disagree");
    assert_eq!(Reader::new(wire.clone()).table("t").unwrap(), ours);
    assert_eq!(parse_field_table(&wire[..]).unwrap().1, theirs);

    let mut group = c.benchmark_group("decode/table_20");
    group.throughput(Throughput::Elements(1));
    // A decoded table is checked, and keeps its octets until an entry is asked for.
    group.bench_function("amqp-wire", |b| {
        b.iter(|| black_box(Reader::new(black_box(&wire).clone()).table("t").unwrap()));
    });
    // The like-for-like comparison: every entry built, as amq-protocol always does.
    group.bench_function("amqp-wire, entries built", |b| {
        b.iter(|| {
            let table = Reader::new(black_box(&wire).clone()).table("t").unwrap();
            black_box(table.len());
            black_box(table)
        });
    });
    group.bench_function("amq-protocol", |b| {
        b.iter(|| black_box(parse_field_table(black_box(&wire[..])).unwrap().1));
    });
    group.finish();

    let mut group = c.benchmark_group("encode/table_20");
    group.throughput(Throughput::Elements(1));
    let mut out = BytesMut::with_capacity(1024);
    group.bench_function("amqp-wire", |b| {
        b.iter(|| {
            out.clear();
            put_table(&mut out, black_box(&ours));
            black_box(&out);
        });
    });
    let mut out = vec![0; 1024];
    group.bench_function("amq-protocol", |b| {
        b.iter(|| black_box(their_encode_table(black_box(&theirs), &mut out)));
    });
    group.finish();
}

fn config() -> Criterion {
    // Twelve benchmarks in well under two minutes on a small machine.
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = messages, pika_messages, table
}
criterion_main!(benches);
