//! The client against a scripted server over an in-memory pipe, for what a real broker never
//! does: going silent, sending garbage, oversized frames, frames on channels nobody opened,
//! methods out of place.

use std::time::Duration;

use amqp_client::options::*;
use amqp_client::*;
use amqp_wire::{basic, channel, connection, queue, Frame, FrameDecoder, Method};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// The server end of the pipe.
struct Peer {
    io: DuplexStream,
    buf: BytesMut,
    decoder: FrameDecoder,
}

impl Peer {
    fn new(io: DuplexStream) -> Self {
        Self {
            io,
            buf: BytesMut::new(),
            decoder: FrameDecoder::new(0),
        }
    }

    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 8192];
        let n = self.io.read(&mut chunk).await.unwrap_or(0);
        self.buf.extend_from_slice(&chunk[..n]);
        n > 0
    }

    /// The next frame, or `None` at end of file.
    async fn frame(&mut self) -> Option<Frame> {
        loop {
            if let Some(f) = self.decoder.decode(&mut self.buf).unwrap() {
                return Some(f);
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    /// The next method (heartbeats skipped).
    async fn method(&mut self) -> (u16, Method) {
        loop {
            match self.frame().await {
                Some(Frame::Method { channel, method }) => return (channel, method),
                Some(Frame::Heartbeat { .. }) => continue,
                Some(other) => panic!("expected a method, got {other:?}"),
                None => panic!("client closed the connection while a method was expected"),
            }
        }
    }

    async fn send(&mut self, channel: u16, method: impl Into<Method>) {
        let mut out = BytesMut::new();
        Frame::Method {
            channel,
            method: method.into(),
        }
        .encode(&mut out)
        .unwrap();
        self.io.write_all(&out).await.unwrap();
    }

    async fn send_raw(&mut self, bytes: &[u8]) {
        self.io.write_all(bytes).await.unwrap();
    }

    async fn protocol_header(&mut self) {
        while self.buf.len() < 8 {
            assert!(
                self.fill().await,
                "client closed before its protocol header"
            );
        }
        assert_eq!(&self.buf.split_to(8)[..], b"AMQP\x00\x00\x09\x01");
    }

    async fn start(&mut self) {
        self.protocol_header().await;
        self.send(
            0,
            connection::Start {
                version_major: 0,
                version_minor: 9,
                server_properties: FieldTable::new().with("product", "FakeMQ").unwrap(),
                mechanisms: Bytes::from_static(b"PLAIN AMQPLAIN"),
                locales: Bytes::from_static(b"en_US"),
            },
        )
        .await;
        let (_, m) = self.method().await;
        assert!(matches!(m, Method::ConnectionStartOk(_)), "{m:?}");
    }

    /// The whole handshake, proposing `heartbeat` seconds and `frame_max`.
    async fn handshake(&mut self, heartbeat: u16, frame_max: u32) {
        self.start().await;
        self.send(
            0,
            connection::Tune {
                channel_max: 16,
                frame_max,
                heartbeat,
            },
        )
        .await;
        let (_, m) = self.method().await;
        assert!(matches!(m, Method::ConnectionTuneOk(_)), "{m:?}");
        let (_, m) = self.method().await;
        assert!(matches!(m, Method::ConnectionOpen(_)), "{m:?}");
        self.send(0, connection::OpenOk {}).await;
    }

    /// Answers the next channel.open.
    async fn open_channel(&mut self) -> u16 {
        let (ch, m) = self.method().await;
        assert!(matches!(m, Method::ChannelOpen(_)), "{m:?}");
        self.send(ch, channel::OpenOk {}).await;
        ch
    }

    /// Expects connection.close with `code`, answers close-ok.
    async fn expect_close(&mut self, code: ReplyCode) -> connection::Close {
        let (ch, m) = self.method().await;
        assert_eq!(ch, 0);
        let Method::ConnectionClose(close) = m else {
            panic!("expected connection.close, got {m:?}");
        };
        assert_eq!(close.reply_code, code, "{close:?}");
        self.send(0, connection::CloseOk {}).await;
        close
    }
}

fn config() -> ConnectionConfig {
    ConnectionConfig::default().with_heartbeat(0)
}

/// A client connection and the scripted peer, after the handshake.
async fn pair(heartbeat: u16, frame_max: u32) -> (Connection, Peer) {
    let (client_io, server_io) = tokio::io::duplex(1 << 20);
    let mut peer = Peer::new(server_io);
    let cfg = config().with_heartbeat(heartbeat).with_frame_max(frame_max);
    let client = tokio::spawn(Connection::open_with(client_io, cfg));
    peer.handshake(heartbeat, frame_max).await;
    let conn = client.await.unwrap().unwrap();
    (conn, peer)
}

/// Opens a channel on both ends.
async fn channel(conn: &Connection, peer: &mut Peer) -> Channel {
    let (ch, _) = tokio::join!(conn.open_channel(), peer.open_channel());
    ch.unwrap()
}

fn library_close(e: &Error, code: ReplyCode) {
    let r = e
        .close_reason()
        .unwrap_or_else(|| panic!("expected a close, got {e}"));
    assert_eq!(r.code, code, "{e}");
    assert_eq!(r.initiator, Initiator::Library, "{e}");
    assert_eq!(r.scope, Scope::Connection, "{e}");
}

#[tokio::test]
async fn silent_peer_is_declared_dead_and_everything_waiting_wakes() {
    let (conn, mut peer) = pair(1, 131_072).await;
    let ch = channel(&conn, &mut peer).await;
    // A consumer, and a declare the peer never answers.
    let consume = tokio::spawn({
        let ch = ch.clone();
        async move { ch.basic_consume("q", ConsumeOptions::default()).await }
    });
    let (c, m) = peer.method().await;
    let Method::BasicConsume(_) = m else {
        panic!("{m:?}")
    };
    peer.send(
        c,
        basic::ConsumeOk {
            consumer_tag: ShortStr::from_static("ctag"),
        },
    )
    .await;
    let mut consumer = consume.await.unwrap().unwrap();
    let declare = tokio::spawn({
        let ch = ch.clone();
        async move {
            ch.queue_declare("never", QueueDeclareOptions::default())
                .await
        }
    });
    let (_, m) = peer.method().await;
    assert!(matches!(m, Method::QueueDeclare(_)), "{m:?}");

    // From now on the peer only listens. The idle client sends heartbeats meanwhile.
    let listener = tokio::spawn(async move {
        let mut heartbeats = 0;
        while let Some(f) = peer.frame().await {
            if f == Frame::HEARTBEAT {
                heartbeats += 1;
            }
        }
        heartbeats
    });

    let why = conn.closed().await;
    assert!(
        matches!(why, Error::MissedHeartbeats(d) if d == Duration::from_secs(1)),
        "{why}"
    );
    assert!(matches!(
        declare.await.unwrap(),
        Err(Error::MissedHeartbeats(_))
    ));
    assert!(matches!(
        consumer.next().await,
        Some(Err(Error::MissedHeartbeats(_)))
    ));
    assert!(consumer.next().await.is_none());
    assert!(!conn.is_open());
    assert!(matches!(
        ch.basic_qos(1, QosOptions::default()).await,
        Err(Error::MissedHeartbeats(_))
    ));
    drop((ch, consumer, conn));
    let heartbeats = listener.await.unwrap();
    assert!(heartbeats >= 1, "the client sent {heartbeats} heartbeats");
}

#[tokio::test]
async fn peer_heartbeats_keep_an_idle_connection_alive() {
    let (conn, mut peer) = pair(1, 131_072).await;
    // Answer heartbeats with heartbeats for several intervals.
    for _ in 0..6 {
        match peer.frame().await {
            Some(Frame::Heartbeat { .. }) => peer.send_raw(&[8, 0, 0, 0, 0, 0, 0, 0xCE]).await,
            other => panic!("{other:?}"),
        }
    }
    assert!(conn.is_open());
    let (r, close) = tokio::join!(conn.close(), peer.expect_close(ReplyCode::REPLY_SUCCESS));
    r.unwrap();
    assert_eq!(close.reply_text, "closed by the application");
}

#[tokio::test]
async fn garbage_closes_the_connection_with_frame_error() {
    let (conn, mut peer) = pair(0, 131_072).await;
    let ch = channel(&conn, &mut peer).await;
    peer.send_raw(b"\x09\x00\x00garbage that is no frame").await;
    peer.expect_close(ReplyCode::FRAME_ERROR).await;
    let e = conn.closed().await;
    library_close(&e, ReplyCode::FRAME_ERROR);
    assert!(e.to_string().contains("frame type"), "{e}");
    let e = ch.queue_purge("q").await.unwrap_err();
    library_close(&e, ReplyCode::FRAME_ERROR);
}

#[tokio::test]
async fn oversized_frame_closes_the_connection() {
    let (conn, mut peer) = pair(0, 4096).await;
    let _ch = channel(&conn, &mut peer).await;
    // A body frame header announcing 100 000 octets, over the negotiated 4096.
    peer.send_raw(&[3, 0, 1, 0, 1, 0x86, 0xA0]).await;
    let close = peer.expect_close(ReplyCode::FRAME_ERROR).await;
    assert!(close.reply_text.contains("4096"), "{close:?}");
    library_close(&conn.closed().await, ReplyCode::FRAME_ERROR);
}

#[tokio::test]
async fn frame_on_an_unopened_channel_is_a_channel_error() {
    let (conn, mut peer) = pair(0, 131_072).await;
    peer.send(9, basic::QosOk {}).await;
    let close = peer.expect_close(ReplyCode::CHANNEL_ERROR).await;
    assert_eq!((close.class_id, close.method_id), (60, 11));
    let e = conn.closed().await;
    library_close(&e, ReplyCode::CHANNEL_ERROR);
    assert!(e.to_string().contains("channel 9"), "{e}");
}

#[tokio::test]
async fn unexpected_method_is_a_connection_error() {
    let (conn, mut peer) = pair(0, 131_072).await;
    let ch = channel(&conn, &mut peer).await;
    // A reply nobody asked for.
    peer.send(
        ch.id(),
        queue::DeclareOk {
            queue: ShortStr::from_static("q"),
            message_count: 0,
            consumer_count: 0,
        },
    )
    .await;
    let close = peer.expect_close(ReplyCode::UNEXPECTED_FRAME).await;
    assert_eq!((close.class_id, close.method_id), (50, 11));
    let e = conn.closed().await;
    library_close(&e, ReplyCode::UNEXPECTED_FRAME);
    assert_eq!(
        e.close_reason().unwrap().method_name(),
        Some("queue.declare-ok")
    );
}

#[tokio::test]
async fn connection_start_after_open_is_unexpected() {
    let (conn, mut peer) = pair(0, 131_072).await;
    peer.send(
        0,
        connection::Start {
            version_major: 0,
            version_minor: 9,
            ..Default::default()
        },
    )
    .await;
    peer.expect_close(ReplyCode::UNEXPECTED_FRAME).await;
    library_close(&conn.closed().await, ReplyCode::UNEXPECTED_FRAME);
}

#[tokio::test]
async fn server_close_fails_everything_and_is_answered() {
    let (conn, mut peer) = pair(0, 131_072).await;
    let ch = channel(&conn, &mut peer).await;
    let pending = tokio::spawn({
        let ch = ch.clone();
        async move { ch.queue_purge("q").await }
    });
    let (_, m) = peer.method().await;
    assert!(matches!(m, Method::QueuePurge(_)));
    peer.send(
        0,
        connection::Close {
            reply_code: ReplyCode::CONNECTION_FORCED,
            reply_text: ShortStr::from_static("CONNECTION_FORCED - shutdown"),
            class_id: 0,
            method_id: 0,
        },
    )
    .await;
    let (_, m) = peer.method().await;
    assert!(matches!(m, Method::ConnectionCloseOk(_)), "{m:?}");
    let e = pending.await.unwrap().unwrap_err();
    let r = e.close_reason().unwrap();
    assert_eq!(r.code, ReplyCode::CONNECTION_FORCED);
    assert_eq!(r.initiator, Initiator::Server);
    // The client closes its end afterwards.
    assert!(peer.frame().await.is_none());
}

#[tokio::test]
async fn crossing_channel_closes_leave_the_connection_open() {
    let (conn, mut peer) = pair(0, 131_072).await;
    let ch = channel(&conn, &mut peer).await;
    let closing = tokio::spawn({
        let ch = ch.clone();
        async move { ch.close().await }
    });
    let (id, m) = peer.method().await;
    assert!(matches!(m, Method::ChannelClose(_)), "{m:?}");
    // The server closed the channel before it read ours: its close crosses ours.
    peer.send(
        id,
        channel::Close {
            reply_code: ReplyCode::NOT_FOUND,
            reply_text: ShortStr::from_static("NOT_FOUND - no queue 'q'"),
            class_id: 50,
            method_id: 10,
        },
    )
    .await;
    let (ch_id, m) = peer.method().await;
    assert_eq!(ch_id, id);
    assert!(matches!(m, Method::ChannelCloseOk(_)), "{m:?}");
    peer.send(id, channel::CloseOk {}).await;
    let e = closing.await.unwrap().unwrap_err();
    let r = e.close_reason().unwrap_or_else(|| panic!("{e}"));
    assert_eq!(r.code, ReplyCode::NOT_FOUND, "{e}");
    assert_eq!(r.initiator, Initiator::Server, "{e}");
    assert_eq!(r.scope, Scope::Channel, "{e}");
    // The connection survived: the next thing the server sees is a channel.open, and it works.
    let other = channel(&conn, &mut peer).await;
    assert!(conn.is_open());
    let purge = tokio::spawn({
        let other = other.clone();
        async move { other.queue_purge("q").await }
    });
    let (pid, m) = peer.method().await;
    assert!(matches!(m, Method::QueuePurge(_)), "{m:?}");
    peer.send(pid, queue::PurgeOk { message_count: 3 }).await;
    assert_eq!(purge.await.unwrap().unwrap(), 3);
}

#[tokio::test]
async fn crossing_connection_closes_end_with_the_servers_reason() {
    let (conn, mut peer) = pair(0, 131_072).await;
    let closing = tokio::spawn({
        let conn = conn.clone();
        async move { conn.close().await }
    });
    let (_, m) = peer.method().await;
    assert!(matches!(m, Method::ConnectionClose(_)), "{m:?}");
    peer.send(
        0,
        connection::Close {
            reply_code: ReplyCode::CONNECTION_FORCED,
            reply_text: ShortStr::from_static("CONNECTION_FORCED - shutdown"),
            class_id: 0,
            method_id: 0,
        },
    )
    .await;
    let (_, m) = peer.method().await;
    assert!(matches!(m, Method::ConnectionCloseOk(_)), "{m:?}");
    // The server's close-ok for ours may find the client already gone; that is fine.
    let mut out = BytesMut::new();
    Frame::Method {
        channel: 0,
        method: connection::CloseOk {}.into(),
    }
    .encode(&mut out)
    .unwrap();
    let _ = peer.io.write_all(&out).await;
    let e = closing.await.unwrap().unwrap_err();
    let r = e.close_reason().unwrap_or_else(|| panic!("{e}"));
    assert_eq!(r.code, ReplyCode::CONNECTION_FORCED, "{e}");
    assert_eq!(r.initiator, Initiator::Server, "{e}");
}

#[tokio::test]
async fn blocked_connection_holds_publishes_until_unblocked() {
    let (conn, mut peer) = pair(0, 131_072).await;
    let ch = channel(&conn, &mut peer).await;
    let mut events = conn.events();
    peer.send(
        0,
        connection::Blocked {
            reason: ShortStr::from_static("low on memory"),
        },
    )
    .await;
    assert_eq!(
        events.next().await,
        Some(ConnectionEvent::Blocked("low on memory".into()))
    );
    assert!(conn.is_blocked());
    let publish = tokio::spawn({
        let ch = ch.clone();
        async move {
            ch.publish(
                amqp_client::Publish::to_queue("q"),
                &BasicProperties::default(),
                b"x",
            )
            .await
            .map(drop)
        }
    });
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(!publish.is_finished(), "publish waits while blocked");
    peer.send(0, connection::Unblocked {}).await;
    assert_eq!(events.next().await, Some(ConnectionEvent::Unblocked));
    publish.await.unwrap().unwrap();
    let (_, m) = peer.method().await;
    assert!(matches!(m, Method::BasicPublish(_)), "{m:?}");
    assert!(matches!(peer.frame().await, Some(Frame::Header { .. })));
    assert!(matches!(peer.frame().await, Some(Frame::Body { .. })));
}

#[tokio::test]
async fn server_channel_flow_pauses_publishing_on_that_channel() {
    let (conn, mut peer) = pair(0, 131_072).await;
    let ch = channel(&conn, &mut peer).await;
    peer.send(ch.id(), channel::Flow { active: false }).await;
    let (_, m) = peer.method().await;
    assert!(matches!(m, Method::ChannelFlowOk(ok) if !ok.active));
    let publish = tokio::spawn({
        let ch = ch.clone();
        async move {
            ch.publish(
                amqp_client::Publish::to_queue("q"),
                &BasicProperties::default(),
                b"x",
            )
            .await
            .map(drop)
        }
    });
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(!publish.is_finished(), "publish waits while flow is off");
    peer.send(ch.id(), channel::Flow { active: true }).await;
    let (_, m) = peer.method().await;
    assert!(matches!(m, Method::ChannelFlowOk(ok) if ok.active));
    publish.await.unwrap().unwrap();
    let (_, m) = peer.method().await;
    assert!(matches!(m, Method::BasicPublish(_)), "{m:?}");
}

#[tokio::test]
async fn peer_hanging_up_during_login_is_an_error_not_a_hang() {
    let (client_io, server_io) = tokio::io::duplex(1 << 16);
    let mut peer = Peer::new(server_io);
    let client = tokio::spawn(Connection::open_with(client_io, config()));
    peer.start().await;
    drop(peer);
    let e = client.await.unwrap().unwrap_err();
    assert!(matches!(e, Error::Io(_)), "{e}");
    assert!(e.to_string().contains("credentials"), "{e}");
}

#[tokio::test]
async fn other_protocol_version_is_reported() {
    let (client_io, server_io) = tokio::io::duplex(1 << 16);
    let mut peer = Peer::new(server_io);
    let client = tokio::spawn(Connection::open_with(client_io, config()));
    peer.protocol_header().await;
    peer.send_raw(b"AMQP\x01\x01\x00\x0a").await;
    drop(peer);
    let e = client.await.unwrap().unwrap_err();
    assert!(matches!(e, Error::ProtocolVersion(_)), "{e}");
}

#[tokio::test]
async fn silent_server_times_the_handshake_out() {
    let (client_io, server_io) = tokio::io::duplex(1 << 16);
    let cfg = config().with_connect_timeout(Duration::from_millis(300));
    let e = Connection::open_with(client_io, cfg).await.unwrap_err();
    assert!(
        matches!(e, Error::ConnectTimeout(d) if d == Duration::from_millis(300)),
        "{e}"
    );
    drop(server_io);
}

#[tokio::test]
async fn deliveries_split_over_frames_arrive_whole() {
    let (conn, mut peer) = pair(0, 4096).await;
    let ch = channel(&conn, &mut peer).await;
    let consume = tokio::spawn({
        let ch = ch.clone();
        async move {
            ch.basic_consume(
                "q",
                ConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
            )
            .await
        }
    });
    let (c, _) = peer.method().await;
    peer.send(
        c,
        basic::ConsumeOk {
            consumer_tag: ShortStr::from_static("t"),
        },
    )
    .await;
    let mut consumer = consume.await.unwrap().unwrap();
    let body: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
    let mut out = BytesMut::new();
    amqp_wire::encode_content(
        &mut out,
        c,
        &basic::Deliver {
            consumer_tag: ShortStr::from_static("t"),
            delivery_tag: 1,
            ..Default::default()
        },
        &BasicProperties::default(),
        &body,
        4096,
    )
    .unwrap();
    // Trickle it in small pieces to exercise partial reads.
    for piece in out.chunks(1000) {
        peer.send_raw(piece).await;
    }
    let d = consumer.next().await.unwrap().unwrap();
    assert_eq!(&d.body[..], &body[..]);
}

#[tokio::test]
async fn closed_connection_lets_go_of_a_peer_that_stopped_reading() {
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let mut peer = Peer::new(server_io);
    let client = tokio::spawn(Connection::open_with(client_io, config()));
    peer.handshake(0, 131_072).await;
    let conn = client.await.unwrap().unwrap();
    let ch = channel(&conn, &mut peer).await;
    // The peer stops reading; the client queues far more than the pipe holds.
    let publisher = tokio::spawn(async move {
        let body = vec![0u8; 16 * 1024];
        for _ in 0..64 {
            if ch
                .publish(
                    amqp_client::Publish::to_queue("q"),
                    &BasicProperties::default(),
                    &body,
                )
                .await
                .is_err()
            {
                break;
            }
        }
    });
    peer.send(
        0,
        connection::Close {
            reply_code: ReplyCode::CONNECTION_FORCED,
            reply_text: ShortStr::from_static("CONNECTION_FORCED"),
            class_id: 0,
            method_id: 0,
        },
    )
    .await;
    let e = conn.closed().await;
    assert_eq!(e.reply_code(), Some(ReplyCode::CONNECTION_FORCED));
    publisher.await.unwrap();
    // The client's close-ok cannot be written, yet its task gives up the transport: writing
    // to the pipe eventually fails because the other end is gone.
    let mut gone = false;
    for _ in 0..100 {
        if peer
            .io
            .write_all(&[8, 0, 0, 0, 0, 0, 0, 0xCE])
            .await
            .is_err()
        {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "the client still holds the transport");
}

#[tokio::test]
async fn unanswered_request_times_out_and_the_channel_stays_usable() {
    let (client_io, server_io) = tokio::io::duplex(1 << 20);
    let mut peer = Peer::new(server_io);
    let cfg = config().with_request_timeout(Duration::from_millis(200));
    let client = tokio::spawn(Connection::open_with(client_io, cfg));
    peer.handshake(0, 131_072).await;
    let conn = client.await.unwrap().unwrap();
    let ch = channel(&conn, &mut peer).await;
    // The peer never answers basic.consume, as a quorum queue without quorum does.
    let e = ch
        .basic_consume("q", ConsumeOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Timeout {
                method: "basic.consume",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.is_retryable());
    let (_, m) = peer.method().await;
    assert!(matches!(m, Method::BasicConsume(_)), "{m:?}");
    // The late reply is matched to the abandoned request and discarded (the consumer it
    // started is cancelled); the next request gets its own answer.
    peer.send(
        1,
        basic::ConsumeOk {
            consumer_tag: "late".try_into().unwrap(),
        },
    )
    .await;
    let (_, m) = peer.method().await;
    assert!(matches!(m, Method::BasicCancel(_)), "{m:?}");
    let declare = tokio::spawn({
        let ch = ch.clone();
        async move { ch.queue_declare("q", Default::default()).await }
    });
    let (_, m) = peer.method().await;
    assert!(matches!(m, Method::QueueDeclare(_)), "{m:?}");
    peer.send(
        1,
        queue::DeclareOk {
            queue: "q".try_into().unwrap(),
            message_count: 0,
            consumer_count: 0,
        },
    )
    .await;
    assert_eq!(declare.await.unwrap().unwrap().name, "q");
    assert!(ch.is_open());
}

#[tokio::test]
async fn start_announcing_another_version_is_a_protocol_version_error() {
    let (client_io, server_io) = tokio::io::duplex(1 << 16);
    let mut peer = Peer::new(server_io);
    let client = tokio::spawn(Connection::open_with(client_io, config()));
    peer.protocol_header().await;
    peer.send(
        0,
        connection::Start {
            version_major: 0,
            version_minor: 8,
            server_properties: FieldTable::new(),
            mechanisms: Bytes::from_static(b"PLAIN"),
            locales: Bytes::from_static(b"en_US"),
        },
    )
    .await;
    let e = client.await.unwrap().unwrap_err();
    match e {
        Error::ProtocolVersion(h) => assert_eq!((h.major, h.minor), (0, 8)),
        other => panic!("expected ProtocolVersion, got {other}"),
    }
}

#[tokio::test]
async fn a_peer_that_stops_reading_is_a_stalled_write() {
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let mut peer = Peer::new(server_io);
    let cfg = config().with_write_stall_timeout(Some(Duration::from_millis(300)));
    let client = tokio::spawn(Connection::open_with(client_io, cfg));
    peer.handshake(0, 131_072).await;
    let conn = client.await.unwrap().unwrap();
    let ch = channel(&conn, &mut peer).await;
    // The peer stops reading; the client queues far more than the pipe holds.
    let publisher = tokio::spawn(async move {
        let body = vec![0u8; 16 * 1024];
        while ch
            .publish(
                amqp_client::Publish::to_queue("q"),
                &BasicProperties::default(),
                &body,
            )
            .await
            .is_ok()
        {}
    });
    let started = std::time::Instant::now();
    let e = tokio::time::timeout(Duration::from_secs(10), conn.closed())
        .await
        .expect("the stall ends the connection");
    let Error::Io(io) = &e else {
        panic!("expected an I/O error, got {e}");
    };
    assert_eq!(io.kind(), std::io::ErrorKind::TimedOut, "{e}");
    assert!(e.to_string().contains("stalled"), "{e}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    publisher.await.unwrap();
    drop(peer);
}

#[tokio::test]
async fn a_slow_but_moving_reader_is_not_a_stall() {
    let (client_io, server_io) = tokio::io::duplex(16 * 1024);
    let mut peer = Peer::new(server_io);
    let cfg = config().with_write_stall_timeout(Some(Duration::from_millis(300)));
    let client = tokio::spawn(Connection::open_with(client_io, cfg));
    peer.handshake(0, 131_072).await;
    let conn = client.await.unwrap().unwrap();
    let ch = channel(&conn, &mut peer).await;
    let publisher = tokio::spawn(async move {
        let body = vec![0u8; 16 * 1024];
        for _ in 0..40 {
            let _confirm = ch
                .publish(
                    amqp_client::Publish::to_queue("q"),
                    &BasicProperties::default(),
                    &body,
                )
                .await
                .unwrap();
        }
    });
    // 640 KiB through a 16 KiB pipe, read 16 KiB every 100 ms: never 300 ms without progress.
    let mut got = 0;
    while got < 40 * 16 * 1024 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut chunk = vec![0u8; 16 * 1024];
        got += peer.io.read(&mut chunk).await.unwrap();
    }
    publisher.await.unwrap();
    assert!(conn.is_open());
}
