//! The ceiling: the cheapest client that can run the publish, confirm and consume scenarios,
//! so the table shows what the broker itself sustains on this machine.
//!
//! It is a TCP socket and amqp-wire's codec and nothing else: no channel state machine, no
//! tasks, no locks, no heartbeats. The publish is encoded once and its octets written again
//! and again, many messages per write call; deliveries are decoded frame by frame and acked
//! exactly as the other clients ack them. What a real client costs on top of this shows in the
//! report's "% of ceiling" column. The RPC and memory scenarios measure a client's latency
//! and memory, not the broker, so the ceiling does not run them.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use amqp_wire::constants::FRAME_MIN_SIZE;
use amqp_wire::{
    basic, channel, confirm, connection, encode_publish, queue, AmqpMethod, BasicProperties,
    FieldTable, Frame, FrameDecoder, Method, ProtocolHeader, ReplyCode, ShortStr,
};

use super::{ack_due, fail, payload, plain_uri, BoxError, ConfirmTally, Outcome, POLL_INTERVAL};
use super::{Scenario, WorkSpec};
use crate::e2e::usage::Meter;

/// The one channel every scenario uses.
const CHANNEL: u16 = 1;

/// About how many octets of publishes go into one write call.
const WRITE_BATCH: usize = 256 * 1024;

/// Room made in the read buffer before each read.
const READ_CHUNK: usize = 64 * 1024;

pub(super) async fn run(spec: &WorkSpec) -> Result<Outcome, BoxError> {
    let not_run = || {
        fail(format!(
            "the ceiling client does not run the {} scenario",
            spec.scenario.name()
        ))
    };
    if !spec.client.runs(spec.scenario) {
        return Err(not_run());
    }
    let mut conn = Conn::open(&spec.url).await?;
    let outcome = match spec.scenario {
        Scenario::Publish => publish(spec, &mut conn).await?,
        Scenario::Confirm => confirm(spec, &mut conn).await?,
        Scenario::Consume => consume(spec, &mut conn).await?,
        Scenario::Rpc | Scenario::Memory => return Err(not_run()),
    };
    conn.close().await?;
    Ok(outcome)
}

async fn publish(spec: &WorkSpec, conn: &mut Conn) -> Result<Outcome, BoxError> {
    let batch = Batch::new(spec, conn.frame_max)?;
    let queue = ShortStr::new(&spec.queue)?;
    let meter = Meter::start(spec.broker_pid)?;
    batch.write(&mut conn.wr.half, spec.count).await?;
    let mut depth = conn.queue_depth(&queue).await?;
    while depth < spec.count {
        tokio::time::sleep(POLL_INTERVAL).await;
        depth = conn.queue_depth(&queue).await?;
    }
    let sample = meter.stop()?;
    Ok(Outcome::messages(sample, depth, spec))
}

async fn confirm(spec: &WorkSpec, conn: &mut Conn) -> Result<Outcome, BoxError> {
    conn.wr
        .send(CHANNEL, confirm::Select { nowait: false })
        .await?;
    let _: confirm::SelectOk = conn.rd.expect(CHANNEL).await?;
    let batch = Batch::new(spec, conn.frame_max)?;
    let mut tally = ConfirmTally::new(spec.count);
    let meter = Meter::start(spec.broker_pid)?;
    // Publishing and reading confirms go on at once, on the two halves of the socket.
    let (rd, wr) = (&mut conn.rd, &mut conn.wr.half);
    let publishing = async {
        batch.write(wr, spec.count).await?;
        Ok::<(), BoxError>(())
    };
    let confirming = async {
        while !tally.complete() {
            match rd.next().await? {
                Frame::Method {
                    channel: CHANNEL,
                    method: Method::BasicAck(ack),
                } => tally.record(ack.delivery_tag, ack.multiple, false),
                Frame::Method {
                    channel: CHANNEL,
                    method: Method::BasicNack(nack),
                } => tally.record(nack.delivery_tag, nack.multiple, true),
                other => return Err(unexpected("basic.ack or basic.nack", &other)),
            }
        }
        Ok::<(), BoxError>(())
    };
    tokio::try_join!(publishing, confirming)?;
    let sample = meter.stop()?;
    let acked = tally.acked();
    Ok(Outcome::messages(sample, acked, spec))
}

async fn consume(spec: &WorkSpec, conn: &mut Conn) -> Result<Outcome, BoxError> {
    let qos = basic::Qos {
        prefetch_count: spec.prefetch,
        ..basic::Qos::default()
    };
    conn.wr.send(CHANNEL, qos).await?;
    let _: basic::QosOk = conn.rd.expect(CHANNEL).await?;
    let consume = basic::Consume {
        queue: ShortStr::new(&spec.queue)?,
        ..basic::Consume::default()
    };
    let meter = Meter::start(spec.broker_pid)?;
    conn.wr.send(CHANNEL, consume).await?;
    let _: basic::ConsumeOk = conn.rd.expect(CHANNEL).await?;
    let mut received = 0u64;
    let mut bytes = 0u64;
    while received < spec.count {
        let deliver = match conn.rd.next().await? {
            Frame::Method {
                channel: CHANNEL,
                method: Method::BasicDeliver(d),
            } => d,
            other => return Err(unexpected("basic.deliver", &other)),
        };
        match conn.rd.next().await? {
            Frame::Header {
                channel: CHANNEL, ..
            } => {}
            other => return Err(unexpected("a content header", &other)),
        }
        // Every message in the queue was pre-filled with exactly `size` octets, so the body
        // ends there; a body frame beyond it, or a method before it, is an error.
        let mut body = 0usize;
        while body < spec.size {
            match conn.rd.next().await? {
                Frame::Body {
                    channel: CHANNEL,
                    payload,
                } => body += payload.len(),
                other => return Err(unexpected("a content body", &other)),
            }
        }
        if body != spec.size {
            return Err(fail(format!(
                "delivery {} has a body of {body} octets, expected {}",
                deliver.delivery_tag, spec.size
            )));
        }
        received += 1;
        bytes += body as u64;
        if ack_due(received, spec) {
            let ack = basic::Ack {
                delivery_tag: deliver.delivery_tag,
                multiple: true,
            };
            conn.wr.send(CHANNEL, ack).await?;
        }
    }
    let sample = meter.stop()?;
    Ok(Outcome::moved(sample, received, bytes))
}

/// The scenario's `basic.publish` (method, header and body frames), encoded once and repeated
/// to fill about [`WRITE_BATCH`] octets.
struct Batch {
    octets: Vec<u8>,
    /// Octets of one message.
    one: usize,
    /// Messages in `octets`.
    copies: usize,
}

impl Batch {
    fn new(spec: &WorkSpec, frame_max: u32) -> Result<Self, BoxError> {
        let publish = basic::Publish {
            routing_key: ShortStr::new(&spec.queue)?,
            ..basic::Publish::default()
        };
        let mut one = BytesMut::new();
        encode_publish(
            &mut one,
            CHANNEL,
            &publish,
            &BasicProperties::default(),
            &payload(spec.size),
            frame_max,
        )?;
        let copies = (WRITE_BATCH / one.len()).max(1);
        Ok(Self {
            octets: one.repeat(copies),
            one: one.len(),
            copies,
        })
    }

    /// Writes `count` messages, a whole batch per write call and what is left at the end.
    async fn write(&self, half: &mut OwnedWriteHalf, count: u64) -> std::io::Result<()> {
        let mut left = count;
        while left > 0 {
            let n = left.min(self.copies as u64);
            // n ≤ copies, so the slice is within `octets`.
            let end = usize::try_from(n).map_or(self.octets.len(), |n| n * self.one);
            half.write_all(self.octets.get(..end).unwrap_or(&self.octets))
                .await?;
            left -= n;
        }
        Ok(())
    }
}

/// An open connection with channel [`CHANNEL`] open on it.
struct Conn {
    rd: FrameReader,
    wr: MethodWriter,
    /// The negotiated frame_max (0: no limit).
    frame_max: u32,
}

impl Conn {
    /// Connects and opens the connection and the channel: protocol header, start-ok (PLAIN),
    /// tune-ok echoing the broker's limits without heartbeats, connection.open, channel.open.
    async fn open(url: &str) -> Result<Self, BoxError> {
        let addr = plain_uri(url)?;
        let stream = TcpStream::connect((addr.host.as_str(), addr.port)).await?;
        stream.set_nodelay(true)?;
        let (rd, wr) = stream.into_split();
        let mut rd = FrameReader {
            half: rd,
            buf: BytesMut::with_capacity(READ_CHUNK),
            decoder: FrameDecoder::new(FRAME_MIN_SIZE),
        };
        let mut wr = MethodWriter {
            half: wr,
            out: BytesMut::new(),
        };
        wr.half
            .write_all(&ProtocolHeader::AMQP_0_9_1.to_bytes())
            .await?;
        let start: connection::Start = rd.expect(0).await?;
        if !start
            .mechanisms
            .split(|b| *b == b' ')
            .any(|m| m == b"PLAIN")
        {
            return Err(fail(format!(
                "the broker does not offer PLAIN (it offers {:?})",
                String::from_utf8_lossy(&start.mechanisms)
            )));
        }
        // PLAIN's response is authzid NUL authcid NUL password (RFC 4616), authzid empty.
        let mut response = Vec::with_capacity(
            addr.username_or_default().len() + addr.password_or_default().len() + 2,
        );
        response.push(0);
        response.extend_from_slice(addr.username_or_default().as_bytes());
        response.push(0);
        response.extend_from_slice(addr.password_or_default().as_bytes());
        let start_ok = connection::StartOk {
            client_properties: FieldTable::new().with("product", "e2e ceiling")?,
            mechanism: ShortStr::from_static("PLAIN"),
            response: Bytes::from(response),
            locale: ShortStr::from_static("en_US"),
        };
        wr.send(0, start_ok).await?;
        let tune: connection::Tune = rd.expect(0).await.map_err(|e| {
            fail(format!(
                "{e} (RabbitMQ drops a refused login without a word: check user {:?} and its \
                 password)",
                addr.username_or_default()
            ))
        })?;
        let tune_ok = connection::TuneOk {
            channel_max: tune.channel_max,
            frame_max: tune.frame_max,
            heartbeat: 0,
        };
        wr.send(0, tune_ok).await?;
        rd.decoder.set_frame_max(tune.frame_max);
        let open = connection::Open {
            virtual_host: ShortStr::new(&addr.vhost)?,
        };
        wr.send(0, open).await?;
        let _: connection::OpenOk = rd.expect(0).await?;
        wr.send(CHANNEL, channel::Open).await?;
        let _: channel::OpenOk = rd.expect(CHANNEL).await?;
        Ok(Self {
            rd,
            wr,
            frame_max: tune.frame_max,
        })
    }

    /// Messages ready in `queue`, from a passive `queue.declare` (as the other clients poll).
    async fn queue_depth(&mut self, queue: &ShortStr) -> Result<u64, BoxError> {
        let declare = queue::Declare {
            queue: queue.clone(),
            passive: true,
            ..queue::Declare::default()
        };
        self.wr.send(CHANNEL, declare).await?;
        let ok: queue::DeclareOk = self.rd.expect(CHANNEL).await?;
        Ok(u64::from(ok.message_count))
    }

    /// connection.close, then waits for close-ok; whatever else arrives meanwhile is dropped,
    /// as the spec has a peer do once it has sent close.
    async fn close(mut self) -> Result<(), BoxError> {
        let close = connection::Close {
            reply_code: ReplyCode::REPLY_SUCCESS,
            reply_text: ShortStr::from_static("bye"),
            ..connection::Close::default()
        };
        self.wr.send(0, close).await?;
        loop {
            if let Frame::Method {
                channel: 0,
                method: Method::ConnectionCloseOk(_),
            } = self.rd.next().await?
            {
                return Ok(());
            }
        }
    }
}

/// The read half: frames off the socket, the broker's closes turned into errors.
struct FrameReader {
    half: OwnedReadHalf,
    buf: BytesMut,
    decoder: FrameDecoder,
}

impl FrameReader {
    /// The next frame other than a heartbeat. A connection.close or channel.close from the
    /// broker is an error carrying its reply code and text; the connection is then dropped.
    async fn next(&mut self) -> Result<Frame, BoxError> {
        loop {
            let frame = match self.decoder.decode(&mut self.buf)? {
                Some(frame) => frame,
                None => {
                    self.buf.reserve(READ_CHUNK);
                    if self.half.read_buf(&mut self.buf).await? == 0 {
                        return Err(fail("the broker closed the connection"));
                    }
                    continue;
                }
            };
            return match frame {
                Frame::Heartbeat { .. } => continue,
                Frame::Method {
                    method: Method::ConnectionClose(c),
                    ..
                } => Err(fail(format!(
                    "the broker closed the connection: {} {} (class {}, method {})",
                    c.reply_code, c.reply_text, c.class_id, c.method_id
                ))),
                Frame::Method {
                    channel,
                    method: Method::ChannelClose(c),
                } => Err(fail(format!(
                    "the broker closed channel {channel}: {} {} (class {}, method {})",
                    c.reply_code, c.reply_text, c.class_id, c.method_id
                ))),
                frame => Ok(frame),
            };
        }
    }

    /// The next frame, which must be the method `M` on `channel`.
    async fn expect<M>(&mut self, channel: u16) -> Result<M, BoxError>
    where
        M: AmqpMethod + TryFrom<Method, Error = Method>,
    {
        let frame = self
            .next()
            .await
            .map_err(|e| fail(format!("waiting for {}: {e}", M::NAME)))?;
        match frame {
            Frame::Method { channel: c, method } if c == channel => {
                M::try_from(method).map_err(|other| {
                    fail(format!(
                        "expected {} on channel {channel}, got {}",
                        M::NAME,
                        other.name()
                    ))
                })
            }
            other => Err(unexpected(M::NAME, &other)),
        }
    }
}

/// The write half, for single methods (publishes go through [`Batch::write`]).
struct MethodWriter {
    half: OwnedWriteHalf,
    out: BytesMut,
}

impl MethodWriter {
    async fn send(&mut self, channel: u16, method: impl Into<Method>) -> Result<(), BoxError> {
        self.out.clear();
        Frame::Method {
            channel,
            method: method.into(),
        }
        .encode(&mut self.out)?;
        self.half.write_all(&self.out).await?;
        Ok(())
    }
}

/// The error for a frame that is not the one the scenario waits for.
fn unexpected(wanted: &str, got: &Frame) -> BoxError {
    let what = match got {
        Frame::Method { method, .. } => method.name().to_string(),
        Frame::Header { .. } => "a content header".to_string(),
        Frame::Body { payload, .. } => format!("a content body of {} octets", payload.len()),
        Frame::Heartbeat { .. } => "a heartbeat".to_string(),
    };
    fail(format!(
        "expected {wanted}, got {what} on channel {}",
        got.channel()
    ))
}
