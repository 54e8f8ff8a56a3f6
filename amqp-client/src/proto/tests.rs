//! The state machine against a scripted server, frame by frame, no sockets.

use std::time::{Duration, Instant};

use amqp_wire::{
    basic, channel, connection, exchange, queue, BasicProperties, ContentHeader, FieldTable, Frame,
    FrameDecoder, Method, ReplyCode, ShortStr,
};
use bytes::{Bytes, BytesMut};

use super::handshake::{negotiate, sasl_response};
use super::*;
use crate::config::ConnectionConfig;
use crate::error::{Error, Initiator, Scope};

fn s(v: &str) -> ShortStr {
    ShortStr::new(v).unwrap()
}

/// Decodes everything the client queued for the server.
fn sent(p: &mut Proto<u32>) -> Vec<Frame> {
    let mut out = BytesMut::new();
    p.take_output(&mut out);
    let mut frames = Vec::new();
    if out.starts_with(b"AMQP") {
        let _ = out.split_to(8);
    }
    let mut dec = FrameDecoder::new(0);
    while let Some(f) = dec.decode(&mut out).unwrap() {
        frames.push(f);
    }
    assert!(out.is_empty(), "trailing bytes in output");
    frames
}

fn methods(p: &mut Proto<u32>) -> Vec<Method> {
    sent(p)
        .into_iter()
        .map(|f| match f {
            Frame::Method { method, .. } => method,
            other => panic!("expected a method frame, got {other:?}"),
        })
        .collect()
}

fn events(p: &mut Proto<u32>) -> Vec<Event<u32>> {
    std::iter::from_fn(|| p.poll_event()).collect()
}

fn m(channel: u16, method: impl Into<Method>) -> Frame {
    Frame::Method {
        channel,
        method: method.into(),
    }
}

fn start() -> connection::Start {
    connection::Start {
        version_major: 0,
        version_minor: 9,
        server_properties: FieldTable::new().with("product", "TestMQ").unwrap(),
        mechanisms: Bytes::from_static(b"AMQPLAIN PLAIN"),
        locales: Bytes::from_static(b"en_US"),
    }
}

fn tune(channel_max: u16, frame_max: u32, heartbeat: u16) -> connection::Tune {
    connection::Tune {
        channel_max,
        frame_max,
        heartbeat,
    }
}

/// A connection through the handshake, with the given config.
fn open_with(cfg: &ConnectionConfig, now: Instant) -> Proto<u32> {
    let mut p = Proto::new(cfg, now);
    let mut out = BytesMut::new();
    p.take_output(&mut out);
    assert_eq!(&out[..], b"AMQP\x00\x00\x09\x01");
    p.handle_frame(m(0, start()));
    let _ = methods(&mut p);
    p.handle_frame(m(0, tune(2047, 131_072, 60)));
    let _ = methods(&mut p);
    p.handle_frame(m(0, connection::OpenOk {}));
    assert!(matches!(events(&mut p).as_slice(), [Event::Opened { .. }]));
    p
}

fn open(now: Instant) -> Proto<u32> {
    open_with(&ConnectionConfig::default(), now)
}

/// Opens channel 1 on an open connection.
fn with_channel(p: &mut Proto<u32>) -> u16 {
    let id = p.open_channel(100).unwrap();
    assert!(matches!(methods(p).as_slice(), [Method::ChannelOpen(_)]));
    p.handle_frame(m(id, channel::OpenOk {}));
    assert!(matches!(
        events(p).as_slice(),
        [Event::Reply { token: 100, .. }]
    ));
    id
}

fn closed_error(ev: &[Event<u32>]) -> &Error {
    ev.iter()
        .find_map(|e| match e {
            Event::Closed { error, .. } => Some(error),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no Closed event in {ev:?}"))
}

fn library_close_sent(p: &mut Proto<u32>, code: ReplyCode) {
    match methods(p).as_slice() {
        [.., Method::ConnectionClose(c)] => assert_eq!(c.reply_code, code, "{c:?}"),
        other => panic!("expected connection.close, got {other:?}"),
    }
}

#[test]
fn handshake_plain_with_negotiation() {
    let now = Instant::now();
    let cfg = ConnectionConfig::default()
        .with_credentials("alice", "pw")
        .with_vhost("prod")
        .with_connection_name("conn-x")
        .with_heartbeat(30)
        .with_frame_max(0)
        .with_channel_max(100);
    let mut p = Proto::<u32>::new(&cfg, now);
    let mut out = BytesMut::new();
    p.take_output(&mut out);
    assert_eq!(&out[..], b"AMQP\x00\x00\x09\x01");

    p.handle_frame(m(0, start()));
    let [Method::ConnectionStartOk(ok)]: [Method; 1] = methods(&mut p).try_into().unwrap() else {
        panic!("start-ok expected");
    };
    assert_eq!(ok.mechanism, "PLAIN");
    assert_eq!(&ok.response[..], b"\0alice\0pw");
    assert_eq!(ok.locale, "en_US");
    assert_eq!(
        ok.client_properties.get_str("connection_name"),
        Some("conn-x")
    );
    let caps = ok.client_properties.get_table("capabilities").unwrap();
    assert_eq!(caps.get_bool("publisher_confirms"), Some(true));

    // Server: channel_max 2047, frame_max 131072, heartbeat 60; client: 100, 0, 30.
    p.handle_frame(m(0, tune(2047, 131_072, 60)));
    let sent = methods(&mut p);
    let [Method::ConnectionTuneOk(t), Method::ConnectionOpen(o)] = sent.as_slice() else {
        panic!("tune-ok + open expected, got {sent:?}");
    };
    assert_eq!(
        (t.channel_max, t.frame_max, t.heartbeat),
        (100, 131_072, 30)
    );
    assert_eq!(o.virtual_host, "prod");
    assert!(!p.is_open());

    p.handle_frame(m(0, connection::OpenOk {}));
    assert!(p.is_open());
    match events(&mut p).as_slice() {
        [Event::Opened {
            server_properties,
            tuning,
        }] => {
            assert_eq!(server_properties.get_str("product"), Some("TestMQ"));
            assert_eq!(tuning.heartbeat, 30);
            assert_eq!(tuning.channel_max, 100);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn tune_zero_means_no_limit_and_yields_to_the_other_side() {
    assert_eq!(negotiate(0, 0), 0);
    assert_eq!(negotiate(0, 5), 5);
    assert_eq!(negotiate(7, 0), 7);
    assert_eq!(negotiate(7, 5), 5);
    assert_eq!(negotiate(3, 5), 3);
}

#[test]
fn amqplain_response_is_a_table_body() {
    let r = sasl_response(SaslMechanism::AmqPlain, "u", "p");
    assert_eq!(
        &r[..],
        b"\x05LOGINS\x00\x00\x00\x01u\x08PASSWORDS\x00\x00\x00\x01p"
    );
    assert!(sasl_response(SaslMechanism::External, "u", "p").is_empty());
}

#[test]
fn mechanism_preference_follows_the_config() {
    let now = Instant::now();
    let cfg = ConnectionConfig::default()
        .with_auth_mechanisms(vec![SaslMechanism::AmqPlain, SaslMechanism::Plain]);
    let mut p = Proto::<u32>::new(&cfg, now);
    p.handle_frame(m(0, start()));
    let [Method::ConnectionStartOk(ok)]: [Method; 1] = methods(&mut p).try_into().unwrap() else {
        panic!()
    };
    assert_eq!(ok.mechanism, "AMQPLAIN");
}

#[test]
fn no_common_mechanism_fails_without_hanging() {
    let now = Instant::now();
    let cfg = ConnectionConfig::default().with_auth_mechanisms(vec![SaslMechanism::External]);
    let mut p = Proto::<u32>::new(&cfg, now);
    p.handle_frame(m(0, start()));
    let ev = events(&mut p);
    let err = closed_error(&ev);
    assert!(
        matches!(err, Error::Authentication(msg) if msg.contains("EXTERNAL")),
        "{err}"
    );
    assert!(p.is_finished());
}

#[test]
fn access_refused_during_login_is_an_authentication_error() {
    let now = Instant::now();
    let mut p = Proto::<u32>::new(&ConnectionConfig::default(), now);
    p.handle_frame(m(0, start()));
    let _ = methods(&mut p);
    p.handle_frame(m(
        0,
        connection::Close {
            reply_code: ReplyCode::ACCESS_REFUSED,
            reply_text: s("ACCESS_REFUSED - Login was refused"),
            class_id: 0,
            method_id: 0,
        },
    ));
    assert!(matches!(
        methods(&mut p).as_slice(),
        [Method::ConnectionCloseOk(_)]
    ));
    let ev = events(&mut p);
    match closed_error(&ev) {
        Error::Authentication(msg) => {
            assert_eq!(msg, "ACCESS_REFUSED - Login was refused");
        }
        other => panic!("{other:?}"),
    }
    assert!(p.is_finished());
}

#[test]
fn access_refused_to_the_vhost_keeps_the_close_reason() {
    // After tune the login has succeeded; a 403 now refuses the virtual host, not the user.
    let now = Instant::now();
    let mut p = Proto::<u32>::new(&ConnectionConfig::default(), now);
    p.handle_frame(m(0, start()));
    p.handle_frame(m(0, tune(2047, 131_072, 0)));
    let _ = methods(&mut p);
    p.handle_frame(m(
        0,
        connection::Close {
            reply_code: ReplyCode::ACCESS_REFUSED,
            reply_text: s("ACCESS_REFUSED - access to vhost 'v' refused for user 'u'"),
            class_id: 10,
            method_id: 40,
        },
    ));
    let ev = events(&mut p);
    let err = closed_error(&ev);
    assert_eq!(err.reply_code(), Some(ReplyCode::ACCESS_REFUSED), "{err:?}");
    assert_eq!(err.close_reason().unwrap().initiator, Initiator::Server);
}

#[test]
fn eof_during_login_says_where() {
    let now = Instant::now();
    let mut p = Proto::<u32>::new(&ConnectionConfig::default(), now);
    p.handle_frame(m(0, start()));
    p.handle_eof();
    let ev = events(&mut p);
    let err = closed_error(&ev);
    assert!(err.to_string().contains("credentials"), "{err}");
}

#[test]
fn handshake_times_out() {
    let now = Instant::now();
    let cfg = ConnectionConfig::default().with_connect_timeout(Duration::from_secs(3));
    let mut p = Proto::<u32>::new(&cfg, now);
    assert_eq!(p.next_deadline(), Some(now + Duration::from_secs(3)));
    p.handle_timeout(now + Duration::from_secs(2));
    assert!(events(&mut p).is_empty());
    p.handle_timeout(now + Duration::from_secs(3));
    let ev = events(&mut p);
    assert!(matches!(closed_error(&ev), Error::ConnectTimeout(d) if *d == Duration::from_secs(3)));
}

#[test]
fn handle_input_takes_one_frame_per_call_and_leaves_a_partial_one() {
    let now = Instant::now();
    let mut p = open(now);
    let mut buf = BytesMut::new();
    Frame::Heartbeat { channel: 0 }.encode(&mut buf).unwrap();
    Frame::Heartbeat { channel: 0 }.encode(&mut buf).unwrap();
    let one = buf.len() / 2;
    buf.extend_from_slice(&[8, 0]);
    let at = now + Duration::from_secs(119);
    assert!(p.handle_input(at, &mut buf));
    assert_eq!(buf.len(), one + 2);
    assert!(p.handle_input(at, &mut buf));
    assert!(!p.handle_input(at, &mut buf));
    assert_eq!(&buf[..], &[8, 0]);
    // The frames proved the peer alive at `at`: 125 s after the start is not two silent
    // intervals of 60 s.
    p.handle_timeout(now + Duration::from_secs(125));
    assert!(p.is_open());
    assert!(events(&mut p).is_empty());
}

#[test]
fn server_answering_with_another_protocol_version() {
    let now = Instant::now();
    let mut p = Proto::<u32>::new(&ConnectionConfig::default(), now);
    let mut buf = BytesMut::from(&b"AMQP\x00\x00\x08\x00"[..]);
    assert!(!p.handle_input(now, &mut buf));
    let ev = events(&mut p);
    assert!(matches!(closed_error(&ev), Error::ProtocolVersion(_)));
}

#[test]
fn rpc_replies_are_matched_in_order_per_channel() {
    let now = Instant::now();
    let mut p = open(now);
    let a = with_channel(&mut p);
    let b = p.open_channel(200).unwrap();
    assert_ne!(a, b);
    let _ = methods(&mut p);
    p.handle_frame(m(b, channel::OpenOk {}));
    let _ = events(&mut p);

    let declare = |q: &str| {
        Method::QueueDeclare(queue::Declare {
            queue: s(q),
            ..Default::default()
        })
    };
    p.call(a, &declare("q1"), 1).unwrap();
    p.call(b, &declare("q2"), 2).unwrap();
    p.call(a, &Method::BasicQos(basic::Qos::default()), 3)
        .unwrap();
    assert_eq!(methods(&mut p).len(), 3);

    p.handle_frame(m(
        b,
        queue::DeclareOk {
            queue: s("q2"),
            message_count: 0,
            consumer_count: 0,
        },
    ));
    p.handle_frame(m(
        a,
        queue::DeclareOk {
            queue: s("q1"),
            message_count: 5,
            consumer_count: 1,
        },
    ));
    p.handle_frame(m(a, basic::QosOk {}));
    let tokens: Vec<(u16, u32)> = events(&mut p)
        .into_iter()
        .map(|e| match e {
            Event::Reply { channel, token, .. } => (channel, token),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(tokens, vec![(b, 2), (a, 1), (a, 3)]);
}

#[test]
fn a_reply_goes_to_the_oldest_request_it_answers() {
    // RabbitMQ answers queue.declare before an earlier basic.cancel.
    let now = Instant::now();
    let mut p = open(now);
    let id = with_channel(&mut p);
    let cancel = Method::BasicCancel(basic::Cancel {
        consumer_tag: s("c"),
        no_wait: false,
    });
    let declare = Method::QueueDeclare(queue::Declare {
        queue: s("q"),
        passive: true,
        ..Default::default()
    });
    p.call(id, &cancel, 1).unwrap();
    p.call(id, &declare, 2).unwrap();
    p.call(id, &declare, 3).unwrap();
    let ok = |q: &str| queue::DeclareOk {
        queue: s(q),
        message_count: 0,
        consumer_count: 0,
    };
    p.handle_frame(m(id, ok("first")));
    p.handle_frame(m(
        id,
        basic::CancelOk {
            consumer_tag: s("c"),
        },
    ));
    p.handle_frame(m(id, ok("second")));
    let order: Vec<u32> = events(&mut p)
        .into_iter()
        .map(|e| match e {
            Event::Reply { token, .. } => token,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(order, vec![2, 1, 3]);
    assert!(p.is_open());
}

#[test]
fn reply_that_answers_nothing_is_a_connection_error() {
    let now = Instant::now();
    let mut p = open(now);
    let id = with_channel(&mut p);
    p.handle_frame(m(id, basic::QosOk {}));
    library_close_sent(&mut p, ReplyCode::UNEXPECTED_FRAME);
    let ev = events(&mut p);
    let reason = closed_error(&ev).close_reason().unwrap().clone();
    assert_eq!(reason.initiator, Initiator::Library);
    assert_eq!((reason.class_id, reason.method_id), (60, 11));
    assert_eq!(reason.method_name(), Some("basic.qos-ok"));
    // Commands fail from now on; close-ok finishes.
    assert!(p
        .call(id, &Method::BasicQos(basic::Qos::default()), 9)
        .is_err());
    p.handle_frame(m(0, connection::CloseOk {}));
    assert!(p.is_finished());
}

#[test]
fn frame_on_unopened_channel_is_a_channel_error() {
    let now = Instant::now();
    let mut p = open(now);
    p.handle_frame(m(7, basic::QosOk {}));
    library_close_sent(&mut p, ReplyCode::CHANNEL_ERROR);
    let ev = events(&mut p);
    assert!(closed_error(&ev).to_string().contains("channel 7"));
}

#[test]
fn garbage_and_oversized_frames_close_with_frame_error() {
    let now = Instant::now();
    let mut p = open(now);
    let mut buf = BytesMut::from(&b"\x09garbage-garbage"[..]);
    assert!(!p.handle_input(now, &mut buf));
    library_close_sent(&mut p, ReplyCode::FRAME_ERROR);
    assert!(closed_error(&events(&mut p))
        .to_string()
        .contains("frame type"));

    let mut p = open(now);
    // A body frame announcing 1 MiB, above the negotiated 128 KiB.
    let mut buf = BytesMut::from(&b"\x03\x00\x01\x00\x10\x00\x00"[..]);
    assert!(!p.handle_input(now, &mut buf));
    library_close_sent(&mut p, ReplyCode::FRAME_ERROR);
    let ev = events(&mut p);
    assert!(
        closed_error(&ev).to_string().contains("larger"),
        "{:?}",
        closed_error(&ev)
    );
}

#[test]
fn unknown_method_is_command_invalid() {
    let now = Instant::now();
    let mut p = open(now);
    let mut buf = BytesMut::from(&b"\x01\x00\x01\x00\x00\x00\x04\x00\x3c\x03\xe7\xce"[..]);
    assert!(!p.handle_input(now, &mut buf));
    library_close_sent(&mut p, ReplyCode::COMMAND_INVALID);
}

#[test]
fn deliveries_are_assembled_and_single_frame_bodies_are_not_copied() {
    let now = Instant::now();
    let mut p = open(now);
    let id = with_channel(&mut p);
    let deliver = basic::Deliver {
        consumer_tag: s("ctag"),
        delivery_tag: 42,
        redelivered: true,
        exchange: s("ex"),
        routing_key: s("rk"),
    };
    let body = Bytes::from_static(b"hello world");
    let props = BasicProperties {
        content_type: Some(s("text/plain")),
        ..Default::default()
    };
    p.handle_frame(m(id, deliver.clone()));
    p.handle_frame(Frame::Header {
        channel: id,
        header: ContentHeader::new(body.len() as u64, props.clone()),
    });
    assert!(events(&mut p).is_empty());
    p.handle_frame(Frame::Body {
        channel: id,
        payload: body.clone(),
    });
    match events(&mut p).as_slice() {
        [Event::Delivery {
            deliver: d,
            properties,
            body: got,
            ..
        }] => {
            assert_eq!(d, &deliver);
            assert_eq!(properties.decode(), props);
            assert_eq!(got, &body);
            assert_eq!(
                got.as_ptr(),
                body.as_ptr(),
                "one-frame body is the frame's bytes"
            );
        }
        other => panic!("{other:?}"),
    }

    // Three body frames are joined; an empty body needs no body frame.
    p.handle_frame(m(id, deliver.clone()));
    p.handle_frame(Frame::Header {
        channel: id,
        header: ContentHeader::new(9, BasicProperties::default()),
    });
    for part in [&b"abc"[..], b"def", b"ghi"] {
        p.handle_frame(Frame::Body {
            channel: id,
            payload: Bytes::copy_from_slice(part),
        });
    }
    p.handle_frame(m(id, deliver));
    p.handle_frame(Frame::Header {
        channel: id,
        header: ContentHeader::new(0, BasicProperties::default()),
    });
    let ev = events(&mut p);
    let bodies: Vec<&[u8]> = ev
        .iter()
        .map(|e| match e {
            Event::Delivery { body, .. } => &body[..],
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(bodies, vec![&b"abcdefghi"[..], b""]);
}

#[test]
fn content_errors_are_connection_errors() {
    let now = Instant::now();
    let deliver = basic::Deliver {
        consumer_tag: s("c"),
        delivery_tag: 1,
        ..Default::default()
    };
    // A method where a header belongs.
    let mut p = open(now);
    let id = with_channel(&mut p);
    p.handle_frame(m(id, deliver.clone()));
    p.handle_frame(m(id, deliver.clone()));
    library_close_sent(&mut p, ReplyCode::UNEXPECTED_FRAME);

    // A body overrunning the announced size.
    let mut p = open(now);
    let id = with_channel(&mut p);
    p.handle_frame(m(id, deliver.clone()));
    p.handle_frame(Frame::Header {
        channel: id,
        header: ContentHeader::new(2, BasicProperties::default()),
    });
    p.handle_frame(Frame::Body {
        channel: id,
        payload: Bytes::from_static(b"abc"),
    });
    library_close_sent(&mut p, ReplyCode::FRAME_ERROR);

    // A body with no header.
    let mut p = open(now);
    let id = with_channel(&mut p);
    p.handle_frame(Frame::Body {
        channel: id,
        payload: Bytes::from_static(b"abc"),
    });
    library_close_sent(&mut p, ReplyCode::UNEXPECTED_FRAME);

    // A body bigger than the client accepts.
    let cfg = ConnectionConfig {
        max_message_size: 10,
        ..Default::default()
    };
    let mut p = open_with(&cfg, now);
    let id = with_channel(&mut p);
    p.handle_frame(m(id, deliver));
    p.handle_frame(Frame::Header {
        channel: id,
        header: ContentHeader::new(11, BasicProperties::default()),
    });
    library_close_sent(&mut p, ReplyCode::RESOURCE_ERROR);
}

#[test]
fn get_ok_completes_with_its_content_and_get_empty_directly() {
    let now = Instant::now();
    let mut p = open(now);
    let id = with_channel(&mut p);
    let get = Method::BasicGet(basic::Get {
        queue: s("q"),
        no_ack: false,
    });
    p.call(id, &get, 1).unwrap();
    p.call(id, &get, 2).unwrap();
    let _ = methods(&mut p);
    p.handle_frame(m(
        id,
        basic::GetOk {
            delivery_tag: 1,
            message_count: 3,
            ..Default::default()
        },
    ));
    p.handle_frame(Frame::Header {
        channel: id,
        header: ContentHeader::new(1, BasicProperties::default()),
    });
    assert!(events(&mut p).is_empty());
    p.handle_frame(Frame::Body {
        channel: id,
        payload: Bytes::from_static(b"x"),
    });
    p.handle_frame(m(id, basic::GetEmpty {}));
    match events(&mut p).as_slice() {
        [Event::Reply {
            token: 1,
            reply: Reply::GetOk(get),
            ..
        }, Event::Reply {
            token: 2,
            reply: Reply::Method(Method::BasicGetEmpty(_)),
            ..
        }] => {
            assert_eq!(get.0.message_count, 3);
            assert_eq!(&get.2[..], b"x");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn publish_encodes_method_header_and_split_bodies_contiguously() {
    let cfg = ConnectionConfig::default().with_frame_max(4096);
    let mut p = open_with(&cfg, Instant::now());
    assert_eq!(p.tuning().frame_max, 4096);
    let id = with_channel(&mut p);

    let body = vec![7u8; 10_000];
    let props = BasicProperties {
        delivery_mode: Some(2),
        ..Default::default()
    };
    assert_eq!(
        p.publish(id, "ex", "rk", true, false, &props, &body)
            .unwrap(),
        None
    );
    let frames = sent(&mut p);
    assert_eq!(frames.len(), 5, "method, header, 3 bodies");
    match &frames[0] {
        Frame::Method {
            method: Method::BasicPublish(publish),
            ..
        } => {
            assert_eq!(publish.exchange, "ex");
            assert_eq!(publish.routing_key, "rk");
            assert!(publish.mandatory);
            assert!(!publish.immediate);
        }
        other => panic!("{other:?}"),
    }
    match &frames[1] {
        Frame::Header { header, .. } => {
            assert_eq!(header.body_size, 10_000);
            assert_eq!(header.properties.decode(), props);
        }
        other => panic!("{other:?}"),
    }
    let sizes: Vec<usize> = frames[2..]
        .iter()
        .map(|f| match f {
            Frame::Body { payload, .. } => payload.len(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(sizes, vec![4088, 4088, 1824]);
}

#[test]
fn a_publish_that_cannot_be_encoded_is_refused_and_sends_nothing() {
    let cfg = ConnectionConfig::default().with_frame_max(4096);
    let mut p = open_with(&cfg, Instant::now());
    let id = with_channel(&mut p);

    // A header of more than 4096 octets cannot travel in one frame.
    let mut headers = FieldTable::new();
    for i in 0..40 {
        headers
            .insert(format!("h{i}").as_str(), "x".repeat(100).as_str())
            .unwrap();
    }
    let big = BasicProperties {
        headers: Some(headers),
        ..Default::default()
    };
    let refused = p.publish(id, "ex", "rk", false, false, &big, b"body");
    assert!(
        matches!(
            refused,
            Err(CommandError::Invalid(
                amqp_wire::WireError::FrameTooLarge { .. }
            ))
        ),
        "{refused:?}"
    );
    assert!(sent(&mut p).is_empty(), "a partial message went out");

    // The channel is still usable.
    p.publish(
        id,
        "ex",
        "rk",
        false,
        false,
        &BasicProperties::default(),
        b"ok",
    )
    .unwrap();
    assert_eq!(sent(&mut p).len(), 3);
}

#[test]
fn confirm_mode_numbers_publishes_and_reports_acks() {
    let now = Instant::now();
    let mut p = open(now);
    let id = with_channel(&mut p);
    p.call(
        id,
        &Method::ConfirmSelect(amqp_wire::confirm::Select { nowait: false }),
        5,
    )
    .unwrap();
    let props = BasicProperties::default();
    assert_eq!(
        p.publish(id, "", "q", false, false, &props, b"a").unwrap(),
        Some(1)
    );
    assert_eq!(
        p.publish(id, "", "q", false, false, &props, b"b").unwrap(),
        Some(2)
    );
    p.handle_frame(m(id, amqp_wire::confirm::SelectOk {}));
    p.handle_frame(m(
        id,
        basic::Ack {
            delivery_tag: 2,
            multiple: true,
        },
    ));
    p.handle_frame(m(
        id,
        basic::Nack {
            delivery_tag: 3,
            multiple: false,
            requeue: false,
        },
    ));
    let ev = events(&mut p);
    assert!(matches!(ev[0], Event::Reply { token: 5, .. }));
    assert!(matches!(
        ev[1],
        Event::Confirm {
            delivery_tag: 2,
            multiple: true,
            ack: true,
            ..
        }
    ));
    assert!(matches!(
        ev[2],
        Event::Confirm {
            delivery_tag: 3,
            ack: false,
            ..
        }
    ));
}

#[test]
fn server_channel_close_fails_pending_and_leaves_others() {
    let now = Instant::now();
    let mut p = open(now);
    let a = with_channel(&mut p);
    let b = p.open_channel(7).unwrap();
    p.handle_frame(m(b, channel::OpenOk {}));
    let _ = events(&mut p);
    let _ = methods(&mut p);
    p.call(a, &Method::BasicQos(basic::Qos::default()), 11)
        .unwrap();
    let _ = methods(&mut p);
    p.handle_frame(m(
        a,
        channel::Close {
            reply_code: ReplyCode::PRECONDITION_FAILED,
            reply_text: s("PRECONDITION_FAILED - inequivalent arg"),
            class_id: 50,
            method_id: 10,
        },
    ));
    assert!(matches!(
        methods(&mut p).as_slice(),
        [Method::ChannelCloseOk(_)]
    ));
    match events(&mut p).as_slice() {
        [Event::ChannelClosed {
            channel,
            reason,
            pending,
            user: None,
        }] => {
            assert_eq!(*channel, a);
            assert_eq!(pending, &vec![11]);
            assert_eq!(reason.code, ReplyCode::PRECONDITION_FAILED);
            assert_eq!(reason.scope, Scope::Channel);
            assert_eq!(reason.initiator, Initiator::Server);
            assert_eq!(reason.method_name(), Some("queue.declare"));
        }
        other => panic!("{other:?}"),
    }
    assert!(p.is_open());
    assert!(p.send(a, &Method::BasicAck(basic::Ack::default())).is_err());
    p.call(b, &Method::BasicQos(basic::Qos::default()), 12)
        .unwrap();
    let c = p.open_channel(13).unwrap();
    assert!(c != b && c != 0);
}

#[test]
fn our_channel_close_discards_until_close_ok() {
    let now = Instant::now();
    let mut p = open(now);
    let id = with_channel(&mut p);
    p.call(id, &Method::BasicQos(basic::Qos::default()), 1)
        .unwrap();
    p.close_channel(id, ReplyCode::REPLY_SUCCESS, "bye", 2)
        .unwrap();
    let sent = methods(&mut p);
    assert!(matches!(sent.last(), Some(Method::ChannelClose(_))));
    // A reply and a delivery arriving meanwhile are discarded, not errors.
    p.handle_frame(m(id, basic::QosOk {}));
    p.handle_frame(m(
        id,
        basic::Deliver {
            consumer_tag: s("c"),
            ..Default::default()
        },
    ));
    p.handle_frame(Frame::Header {
        channel: id,
        header: ContentHeader::new(1, BasicProperties::default()),
    });
    p.handle_frame(Frame::Body {
        channel: id,
        payload: Bytes::from_static(b"x"),
    });
    assert!(events(&mut p).is_empty());
    p.handle_frame(m(id, channel::CloseOk {}));
    match events(&mut p).as_slice() {
        [Event::Reply { token: 2, .. }, Event::ChannelClosed {
            pending, reason, ..
        }] => {
            assert_eq!(pending, &vec![1]);
            assert_eq!(reason.initiator, Initiator::User);
        }
        other => panic!("{other:?}"),
    }
    assert!(p.is_open());
}

fn server_channel_close(code: ReplyCode) -> channel::Close {
    channel::Close {
        reply_code: code,
        reply_text: s("soft error"),
        class_id: 50,
        method_id: 10,
    }
}

#[test]
fn crossing_channel_closes_end_with_the_servers_reason() {
    // Our close goes out first; the server's close crosses it, then its close-ok follows.
    let now = Instant::now();
    let mut p = open_with(&ConnectionConfig::default().with_channel_max(1), now);
    let id = with_channel(&mut p);
    p.call(id, &Method::BasicQos(basic::Qos::default()), 1)
        .unwrap();
    p.close_channel(id, ReplyCode::REPLY_SUCCESS, "bye", 2)
        .unwrap();
    assert!(matches!(
        methods(&mut p).as_slice(),
        [Method::BasicQos(_), Method::ChannelClose(_)]
    ));
    p.handle_frame(m(id, server_channel_close(ReplyCode::NOT_FOUND)));
    assert!(matches!(
        methods(&mut p).as_slice(),
        [Method::ChannelCloseOk(_)]
    ));
    match events(&mut p).as_slice() {
        [Event::ChannelClosed {
            channel,
            reason,
            pending,
            user: None,
        }] => {
            assert_eq!(*channel, id);
            assert_eq!(reason.code, ReplyCode::NOT_FOUND);
            assert_eq!(reason.initiator, Initiator::Server);
            assert_eq!(reason.scope, Scope::Channel);
            // The close request fails with the server's reason too.
            assert_eq!(pending, &vec![1, 2]);
        }
        other => panic!("{other:?}"),
    }
    assert!(p
        .send(id, &Method::BasicAck(basic::Ack::default()))
        .is_err());
    // The number stays taken until the server answers our close.
    assert!(matches!(
        p.open_channel(3),
        Err(CommandError::ChannelsExhausted(1))
    ));
    p.handle_frame(m(id, channel::CloseOk {}));
    assert!(p.is_open(), "{:?}", p.error());
    assert!(methods(&mut p).is_empty());
    assert!(events(&mut p).is_empty());
    assert_eq!(p.open_channel(4).unwrap(), id);
}

#[test]
fn server_channel_close_before_ours_is_answered_and_ours_is_refused() {
    // The server's close arrives first: it is answered, and a later close is not sent.
    let now = Instant::now();
    let mut p = open(now);
    let id = with_channel(&mut p);
    p.handle_frame(m(id, server_channel_close(ReplyCode::PRECONDITION_FAILED)));
    assert!(matches!(
        methods(&mut p).as_slice(),
        [Method::ChannelCloseOk(_)]
    ));
    assert!(matches!(
        events(&mut p).as_slice(),
        [Event::ChannelClosed { reason, .. }] if reason.code == ReplyCode::PRECONDITION_FAILED
    ));
    assert!(matches!(
        p.close_channel(id, ReplyCode::REPLY_SUCCESS, "bye", 2),
        Err(CommandError::ChannelNotOpen)
    ));
    assert!(methods(&mut p).is_empty());
    assert!(p.is_open());
}

#[test]
fn crossing_connection_closes_end_with_the_servers_reason() {
    let t0 = Instant::now();
    let forced = || connection::Close {
        reply_code: ReplyCode::CONNECTION_FORCED,
        reply_text: s("CONNECTION_FORCED - shutdown"),
        class_id: 0,
        method_id: 0,
    };
    // Ours first, then theirs, then their close-ok.
    let mut p = open(t0);
    p.close(ReplyCode::REPLY_SUCCESS, "bye", t0);
    assert!(matches!(
        methods(&mut p).as_slice(),
        [Method::ConnectionClose(_)]
    ));
    p.handle_frame(m(0, forced()));
    assert!(matches!(
        methods(&mut p).as_slice(),
        [Method::ConnectionCloseOk(_)]
    ));
    p.handle_frame(m(0, connection::CloseOk {}));
    let ev = events(&mut p);
    match ev.as_slice() {
        [Event::Closed { error, .. }] => {
            let r = error.close_reason().unwrap();
            assert_eq!(r.code, ReplyCode::CONNECTION_FORCED);
            assert_eq!(r.initiator, Initiator::Server);
        }
        other => panic!("{other:?}"),
    }
    assert!(p.is_finished());

    // Theirs first: answered, and a later close sends nothing and reports nothing more.
    let mut p = open(t0);
    p.handle_frame(m(0, forced()));
    assert!(matches!(
        methods(&mut p).as_slice(),
        [Method::ConnectionCloseOk(_)]
    ));
    let ev = events(&mut p);
    assert_eq!(
        closed_error(&ev).reply_code(),
        Some(ReplyCode::CONNECTION_FORCED)
    );
    p.close(ReplyCode::REPLY_SUCCESS, "bye", t0);
    assert!(methods(&mut p).is_empty());
    assert!(events(&mut p).is_empty());
    assert!(p.is_finished());
}

#[test]
fn server_initiated_messages_are_events() {
    let now = Instant::now();
    let mut p = open(now);
    let id = with_channel(&mut p);
    p.handle_frame(m(
        id,
        basic::Cancel {
            consumer_tag: s("c1"),
            no_wait: false,
        },
    ));
    p.handle_frame(m(id, channel::Flow { active: false }));
    p.handle_frame(m(
        0,
        connection::Blocked {
            reason: s("low on memory"),
        },
    ));
    assert!(p.is_blocked());
    p.handle_frame(m(0, connection::Unblocked {}));
    assert!(!p.is_blocked());
    let sent = methods(&mut p);
    assert!(matches!(
        sent.as_slice(),
        [Method::BasicCancelOk(ok), Method::ChannelFlowOk(f)] if ok.consumer_tag == "c1" && !f.active
    ));
    let ev = events(&mut p);
    assert!(matches!(ev[0], Event::ConsumerCancelled { .. }));
    assert!(matches!(ev[1], Event::Flow { active: false, .. }));
    assert!(matches!(&ev[2], Event::Blocked { reason } if reason == "low on memory"));
    assert!(matches!(ev[3], Event::Unblocked));
}

#[test]
fn heartbeats_are_sent_when_idle_and_silence_kills() {
    let t0 = Instant::now();
    let mut p = open(t0); // heartbeat 60 s
    let _ = sent(&mut p);
    assert_eq!(p.next_deadline(), Some(t0 + Duration::from_secs(30)));

    // Something was written since the last check (the handshake): no heartbeat yet.
    p.handle_timeout(t0 + Duration::from_secs(30));
    assert!(sent(&mut p).is_empty());
    // Idle for a half interval: a heartbeat goes out.
    p.note_received(t0 + Duration::from_secs(59));
    p.handle_timeout(t0 + Duration::from_secs(60));
    let frames = sent(&mut p);
    assert_eq!(frames, vec![Frame::HEARTBEAT]);
    assert!(p.is_open());

    // Nothing received for two intervals after the last bytes: dead.
    p.handle_timeout(t0 + Duration::from_secs(90));
    p.handle_timeout(t0 + Duration::from_secs(120));
    assert!(p.is_open());
    p.handle_timeout(t0 + Duration::from_secs(180));
    let ev = events(&mut p);
    assert!(
        matches!(closed_error(&ev), Error::MissedHeartbeats(d) if *d == Duration::from_secs(60))
    );
    assert!(p.is_finished());
}

#[test]
fn paused_reading_does_not_count_as_peer_silence() {
    let t0 = Instant::now();
    let mut p = open(t0);
    p.set_read_paused(true, t0);
    p.handle_timeout(t0 + Duration::from_secs(300));
    assert!(p.is_open());
    p.set_read_paused(false, t0 + Duration::from_secs(300));
    p.handle_timeout(t0 + Duration::from_secs(330));
    assert!(p.is_open());
}

#[test]
fn graceful_close_waits_for_close_ok_or_the_timeout() {
    let t0 = Instant::now();
    let mut p = open(t0);
    let id = with_channel(&mut p);
    p.call(id, &Method::BasicQos(basic::Qos::default()), 4)
        .unwrap();
    p.close(ReplyCode::REPLY_SUCCESS, "bye", t0);
    assert!(matches!(
        methods(&mut p).last(),
        Some(Method::ConnectionClose(_))
    ));
    assert!(!p.is_open());
    assert!(
        events(&mut p).is_empty(),
        "nothing reported before close-ok"
    );
    p.handle_frame(m(0, connection::CloseOk {}));
    let ev = events(&mut p);
    match ev.as_slice() {
        [Event::Closed { error, pending }] => {
            assert_eq!(pending, &vec![4]);
            let r = error.close_reason().unwrap();
            assert_eq!(r.initiator, Initiator::User);
            assert!(r.is_normal());
        }
        other => panic!("{other:?}"),
    }
    assert!(p.is_finished());

    // Without an answer, the close timeout ends it.
    let mut p = open(t0);
    p.close(ReplyCode::REPLY_SUCCESS, "bye", t0);
    let deadline = p.next_deadline().unwrap();
    assert!(deadline <= t0 + ConnectionConfig::default().close_timeout);
    p.handle_timeout(t0 + ConnectionConfig::default().close_timeout);
    assert!(p.is_finished());
    assert!(matches!(events(&mut p).as_slice(), [Event::Closed { .. }]));
}

#[test]
fn server_connection_close_is_answered_and_reported() {
    let t0 = Instant::now();
    let mut p = open(t0);
    let id = with_channel(&mut p);
    p.call(id, &Method::BasicQos(basic::Qos::default()), 4)
        .unwrap();
    let _ = methods(&mut p);
    p.handle_frame(m(
        0,
        connection::Close {
            reply_code: ReplyCode::CONNECTION_FORCED,
            reply_text: s("CONNECTION_FORCED - broker shutdown"),
            class_id: 0,
            method_id: 0,
        },
    ));
    assert!(matches!(
        methods(&mut p).as_slice(),
        [Method::ConnectionCloseOk(_)]
    ));
    let ev = events(&mut p);
    match ev.as_slice() {
        [Event::Closed { error, pending }] => {
            assert_eq!(pending, &vec![4]);
            assert_eq!(error.reply_code(), Some(ReplyCode::CONNECTION_FORCED));
            assert!(error.is_connection_error());
        }
        other => panic!("{other:?}"),
    }
    assert!(p.is_finished());
}

#[test]
fn channel_numbers_are_bounded_by_channel_max() {
    let now = Instant::now();
    let cfg = ConnectionConfig::default().with_channel_max(2);
    let mut p = open_with(&cfg, now);
    assert_eq!(p.open_channel(1).unwrap(), 1);
    assert_eq!(p.open_channel(2).unwrap(), 2);
    assert!(matches!(
        p.open_channel(3),
        Err(CommandError::ChannelsExhausted(2))
    ));
    // Once the server closes channel 1, its number is free again.
    p.handle_frame(m(1, channel::OpenOk {}));
    p.handle_frame(m(
        1,
        channel::Close {
            reply_code: ReplyCode::NOT_FOUND,
            reply_text: s("NOT_FOUND"),
            class_id: 0,
            method_id: 0,
        },
    ));
    assert_eq!(p.open_channel(4).unwrap(), 1);
}

#[test]
fn method_names_cover_errata_ids() {
    assert_eq!(Method::name_of(40, 51), Some("exchange.unbind-ok"));
    assert_eq!(Method::name_of(60, 111), Some("basic.recover-ok"));
    assert_eq!(Method::name_of(99, 1), None);
    assert_eq!(
        Method::from(exchange::Unbind::default()).reply_ids(),
        &[(40, 51)]
    );
    assert_eq!(
        Method::from(basic::Get::default()).reply_ids(),
        &[(60, 71), (60, 72)]
    );
    assert_eq!(
        Method::from(basic::Recover::default()).reply_ids(),
        &[(60, 111)]
    );
}

/// A connection whose channels carry an owner's record, through the handshake.
fn open_with_users(p: &mut Proto<u32, &'static str>) {
    p.handle_frame(m(0, start()));
    p.handle_frame(m(0, tune(2047, 131_072, 60)));
    p.handle_frame(m(0, connection::OpenOk {}));
    assert!(matches!(p.poll_event(), Some(Event::Opened { .. })));
    assert!(p.poll_event().is_none());
    p.take_output(&mut BytesMut::new());
}

#[test]
fn the_owners_record_lives_in_the_channel_and_outlives_a_lost_connection() {
    let now = Instant::now();
    let cfg = ConnectionConfig::default();
    let mut p = Proto::<u32, &'static str>::new(&cfg, now);
    open_with_users(&mut p);
    let id = p.open_channel(1).unwrap();
    p.set_user(id, "first");
    p.handle_frame(m(id, channel::OpenOk {}));
    assert!(matches!(
        p.poll_event(),
        Some(Event::Reply { token: 1, .. })
    ));

    // Lost: the requests fail, the record stays, detached.
    p.call(id, &Method::from(basic::Qos::default()), 2).unwrap();
    p.handle_eof();
    assert!(matches!(
        p.poll_event(),
        Some(Event::Closed { pending, .. }) if pending == [2]
    ));
    assert_eq!(p.users().collect::<Vec<_>>(), [(id, &"first")]);

    // The next connection: the number stays taken and the channel is not open until it is
    // opened again at its number, which keeps the record.
    p.renew(&cfg, now);
    open_with_users(&mut p);
    assert_eq!(p.users().collect::<Vec<_>>(), [(id, &"first")]);
    assert!(matches!(
        p.send(id, &Method::from(basic::Ack::default())),
        Err(CommandError::ChannelNotOpen)
    ));
    let scratch = p.open_channel(3).unwrap();
    assert_ne!(scratch, id);
    p.open_channel_at(id, 4).unwrap();
    p.handle_frame(m(id, channel::OpenOk {}));
    assert!(matches!(
        p.poll_event(),
        Some(Event::Reply { token: 4, .. })
    ));
    assert_eq!(p.user_mut(id), Some(&mut "first"));

    // The channel's end hands the record back.
    let close = channel::Close {
        reply_code: ReplyCode::PRECONDITION_FAILED,
        reply_text: s("PRECONDITION_FAILED"),
        class_id: 0,
        method_id: 0,
    };
    p.handle_frame(m(id, close));
    assert!(matches!(
        p.poll_event(),
        Some(Event::ChannelClosed { channel, user: Some("first"), .. }) if channel == id
    ));
    assert!(p.users().next().is_none());

    // A record taken away while detached frees the number.
    let id = p.open_channel(5).unwrap();
    p.set_user(id, "second");
    p.handle_eof();
    assert_eq!(p.take_user(id), Some("second"));
    p.renew(&cfg, now);
    open_with_users(&mut p);
    p.open_channel_at(id, 6).unwrap();
    assert!(p.user_mut(id).is_none());
}
