//! The seed corpus, built with the codec's own encoder so every seed is a well-formed input the
//! fuzzer can mutate from. `examples/seeds.rs` writes them to `corpus/<target>/seed-<name>`.

use amqp_wire::{
    basic, channel, connection, encode_content, encode_publish, queue, BasicProperties,
    ContentHeader, Decimal, FieldArray, FieldTable, FieldValue, Frame, Method, ProtocolHeader,
    ReplyCode, ShortStr,
};
use bytes::{Bytes, BytesMut};

/// One seed file.
#[derive(Debug, Clone)]
pub struct Seed {
    /// The fuzz target it belongs to.
    pub target: &'static str,
    /// The file name without the `seed-` prefix.
    pub name: &'static str,
    /// Its contents.
    pub bytes: Vec<u8>,
}

fn s(text: &str) -> ShortStr {
    ShortStr::new(text).unwrap_or_default()
}

/// A table holding every value type RabbitMQ knows, nested tables and arrays included.
pub fn table_with_every_type() -> FieldTable {
    let mut nested = FieldTable::new();
    nested.insert_key(s("inner"), 1i32);
    nested.insert_key(s("text"), "nested");
    let array: FieldArray = [
        FieldValue::I64(-1),
        FieldValue::from("two"),
        FieldValue::Bool(true),
        FieldValue::Void,
        FieldValue::Array(FieldArray::from(vec![FieldValue::U8(3)])),
    ]
    .into_iter()
    .collect();
    let mut t = FieldTable::new();
    t.insert_key(s("bool"), true);
    t.insert_key(s("i8"), -8i8);
    t.insert_key(s("u8"), 8u8);
    t.insert_key(s("i16"), -16i16);
    t.insert_key(s("u16"), 16u16);
    t.insert_key(s("i32"), -32i32);
    t.insert_key(s("u32"), 32u32);
    t.insert_key(s("i64"), -64i64);
    t.insert_key(s("f32"), 3.5f32);
    t.insert_key(s("f64"), -0.25f64);
    t.insert_key(s("decimal"), Decimal::new(2, 12_345));
    t.insert_key(s("longstr"), "long string");
    t.insert_key(s("array"), array);
    t.insert_key(s("timestamp"), FieldValue::Timestamp(1_700_000_000));
    t.insert_key(s("table"), nested);
    t.insert_key(s("void"), FieldValue::Void);
    t.insert_key(
        s("bytes"),
        FieldValue::ByteArray(Bytes::from_static(b"\x00\x01\xfe\xff")),
    );
    t
}

/// Server properties shaped like RabbitMQ's.
pub fn server_properties() -> FieldTable {
    let mut capabilities = FieldTable::new();
    for name in [
        "publisher_confirms",
        "exchange_exchange_bindings",
        "basic.nack",
        "consumer_cancel_notify",
        "connection.blocked",
        "consumer_priorities",
        "authentication_failure_close",
        "per_consumer_qos",
        "direct_reply_to",
    ] {
        capabilities.insert_key(s(name), true);
    }
    let mut t = FieldTable::new();
    t.insert_key(s("capabilities"), capabilities);
    t.insert_key(s("cluster_name"), "rabbit@localhost");
    t.insert_key(s("copyright"), "Copyright (c) the RabbitMQ authors");
    t.insert_key(s("information"), "Licensed under the MPL 2.0");
    t.insert_key(s("platform"), "Erlang/OTP 26.2.1");
    t.insert_key(s("product"), "RabbitMQ");
    t.insert_key(s("version"), "3.13.7");
    t
}

/// connection.start as RabbitMQ sends it.
pub fn connection_start() -> connection::Start {
    connection::Start {
        version_major: 0,
        version_minor: 9,
        server_properties: server_properties(),
        mechanisms: Bytes::from_static(b"PLAIN AMQPLAIN"),
        locales: Bytes::from_static(b"en_US"),
    }
}

/// Every one of the 14 properties set.
pub fn all_properties() -> BasicProperties {
    BasicProperties {
        content_type: Some(s("application/json")),
        content_encoding: Some(s("gzip")),
        headers: Some(table_with_every_type()),
        delivery_mode: Some(2),
        priority: Some(5),
        correlation_id: Some(s("req-42")),
        reply_to: Some(s("amq.rabbitmq.reply-to")),
        expiration: Some(s("60000")),
        message_id: Some(s("msg-0001")),
        timestamp: Some(1_700_000_000),
        kind: Some(s("order.created")),
        user_id: Some(s("guest")),
        app_id: Some(s("seeds")),
        reserved: Some(s("cluster")),
    }
}

/// basic.publish to `amq.direct`.
pub fn publish() -> basic::Publish {
    basic::Publish {
        exchange: s("amq.direct"),
        routing_key: s("work.items"),
        mandatory: true,
        immediate: false,
    }
}

/// basic.deliver to a consumer.
pub fn deliver() -> basic::Deliver {
    basic::Deliver {
        consumer_tag: s("amq.ctag-Zq3pU8mW1xLrT0hCk5fG9A"),
        delivery_tag: 42,
        redelivered: true,
        exchange: s("amq.direct"),
        routing_key: s("work.items"),
    }
}

fn frames(frames: &[Frame]) -> BytesMut {
    let mut out = BytesMut::new();
    for frame in frames {
        frame.encode(&mut out).unwrap_or_default();
    }
    out
}

fn method_frame(channel: u16, method: impl Into<Method>) -> Frame {
    Frame::Method {
        channel,
        method: method.into(),
    }
}

/// A frame-stream seed: the `frame_max` selector octet (2: 131072), a chunking octet, the stream.
fn stream(chunking: u8, wire: &[u8]) -> Vec<u8> {
    let mut bytes = vec![2, chunking];
    bytes.extend_from_slice(wire);
    bytes
}

fn payload(method: impl Into<Method>) -> Vec<u8> {
    let mut out = BytesMut::new();
    method.into().encode(&mut out);
    out.to_vec()
}

fn table_bytes(table: &FieldTable) -> Vec<u8> {
    let mut out = BytesMut::new();
    amqp_wire::codec::put_table(&mut out, table);
    out.to_vec()
}

/// Every seed, for every target.
pub fn seeds() -> Vec<Seed> {
    let seed = |target, name, bytes| Seed {
        target,
        name,
        bytes,
    };
    let mut out = Vec::new();

    // frame_decoder: whole conversations' worth of frames.
    out.push(seed(
        "frame_decoder",
        "connection-start",
        stream(3, &frames(&[method_frame(0, connection_start())])),
    ));
    out.push(seed(
        "frame_decoder",
        "tune-heartbeat-close",
        stream(
            1,
            &frames(&[
                method_frame(
                    0,
                    connection::Tune {
                        channel_max: 2047,
                        frame_max: 131_072,
                        heartbeat: 60,
                    },
                ),
                Frame::HEARTBEAT,
                method_frame(
                    1,
                    channel::Close {
                        reply_code: ReplyCode::NOT_FOUND,
                        reply_text: s("NOT_FOUND - no queue 'jobs' in vhost '/'"),
                        class_id: 50,
                        method_id: 10,
                    },
                ),
                Frame::HEARTBEAT,
            ]),
        ),
    ));
    let mut wire = BytesMut::new();
    let props = BasicProperties::default()
        .with_content_type(s("text/plain"))
        .with_delivery_mode(2);
    encode_publish(&mut wire, 1, &publish(), &props, &[0xab; 100], 131_072).unwrap_or_default();
    out.push(seed("frame_decoder", "publish", stream(2, &wire)));
    let mut wire = BytesMut::new();
    // frame_max 4096 splits the 5000-octet body into two frames.
    encode_content(&mut wire, 3, &deliver(), &props, &[0xcd; 5000], 4096).unwrap_or_default();
    out.push(seed("frame_decoder", "deliver", stream(3, &wire)));
    out.push(seed(
        "frame_decoder",
        "all-properties",
        stream(
            0,
            &frames(&[Frame::Header {
                channel: 2,
                header: ContentHeader::new(0, all_properties()),
            }]),
        ),
    ));
    // A server refusing our protocol version answers with its own header.
    let mut refusal = BytesMut::new();
    ProtocolHeader {
        protocol_id: 1,
        major: 1,
        minor: 0,
        revision: 10,
    }
    .encode(&mut refusal);
    out.push(seed(
        "frame_decoder",
        "version-refusal",
        stream(1, &refusal),
    ));

    // method_payload: method frame payloads.
    out.push(seed(
        "method_payload",
        "connection-start",
        payload(connection_start()),
    ));
    out.push(seed("method_payload", "basic-publish", payload(publish())));
    out.push(seed("method_payload", "basic-deliver", payload(deliver())));
    out.push(seed(
        "method_payload",
        "queue-declare",
        payload(queue::Declare {
            queue: s("orders"),
            durable: true,
            arguments: FieldTable::new()
                .with("x-queue-type", "quorum")
                .and_then(|t| t.with("x-max-length", 10_000i64))
                .unwrap_or_default(),
            ..Default::default()
        }),
    ));
    out.push(seed(
        "method_payload",
        "basic-nack",
        payload(basic::Nack {
            delivery_tag: 7,
            multiple: true,
            requeue: true,
        }),
    ));
    out.push(seed(
        "method_payload",
        "connection-close",
        payload(connection::Close {
            reply_code: ReplyCode::CONNECTION_FORCED,
            reply_text: s("CONNECTION_FORCED - broker forced connection closure"),
            class_id: 0,
            method_id: 0,
        }),
    ));

    // field_table: tables.
    out.push(seed(
        "field_table",
        "every-type",
        table_bytes(&table_with_every_type()),
    ));
    out.push(seed(
        "field_table",
        "server-properties",
        table_bytes(&server_properties()),
    ));
    out.push(seed(
        "field_table",
        "empty",
        table_bytes(&FieldTable::new()),
    ));
    out.extend(crate::tools::seeds::seeds());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_seed_decodes_and_passes_its_check() {
        for seed in seeds() {
            if seed.target == "method_payload" {
                assert!(Method::decode(Bytes::from(seed.bytes.clone())).is_ok());
            }
            assert!(
                crate::check(seed.target, &seed.bytes),
                "unknown target {}",
                seed.target
            );
        }
        for target in crate::TARGETS {
            assert!(
                seeds().iter().any(|s| s.target == target),
                "no seed for {target}"
            );
        }
    }
}
