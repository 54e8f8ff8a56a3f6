//! The frame dumper behind `amqp dump`: raw AMQP octets in, one JSON object per frame out.
//!
//! The input is one direction of a connection as captured (client to server, or server to
//! client), with or without the 8-octet protocol header in front. Decoding stops at the first
//! malformed frame (AMQP has no way to find the next frame boundary), which is reported as
//! `{"error":"…","offset":N}` with the offset of the frame that failed.
//!
//! ```
//! use prisem_tools::dump::{Dumper, DumpOptions};
//!
//! let mut lines = Vec::new();
//! let mut d = Dumper::new(DumpOptions::default());
//! d.feed(b"AMQP\x00\x00\x09\x01\x08\x00\x00\x00\x00\x00\x00\xce", &mut |v| lines.push(v.to_string()))
//!     .unwrap();
//! d.finish().unwrap();
//! assert_eq!(lines, [
//!     r#"{"frame":"protocol-header","version":"0-9-1"}"#,
//!     r#"{"frame":"heartbeat"}"#,
//! ]);
//! ```

use core::fmt;
use std::io::{Read, Write};

use amqp_wire::{FieldRef, Frame, FrameDecoder, Method, ProtocolHeader};
use bytes::BytesMut;
use serde_json::{json, Map, Value};

use crate::json;

/// The default largest frame `amqp dump` accepts: 128 MiB.
pub const DEFAULT_FRAME_MAX: u32 = 128 << 20;
/// The largest `--frame-max` accepted: 1 GiB.
pub const MAX_FRAME_MAX: u32 = 1 << 30;

/// How to dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DumpOptions {
    /// Largest frame accepted, framing included.
    pub frame_max: u32,
    /// Include body frames' content.
    pub show_body: bool,
    /// Show SASL responses and `connection.update-secret` secrets instead of their length.
    pub show_secrets: bool,
}

impl Default for DumpOptions {
    fn default() -> Self {
        Self {
            frame_max: DEFAULT_FRAME_MAX,
            show_body: false,
            show_secrets: false,
        }
    }
}

/// Why dumping stopped: what was wrong and where (octet offset into the input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpError {
    /// What went wrong.
    pub message: String,
    /// Offset of the frame (or header) that could not be decoded.
    pub offset: u64,
}

impl DumpError {
    /// The `{"error":"…","offset":N}` line.
    pub fn to_json(&self) -> Value {
        json!({"error": self.message, "offset": self.offset})
    }
}

impl fmt::Display for DumpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at offset {})", self.message, self.offset)
    }
}

impl std::error::Error for DumpError {}

/// A streaming dumper: feed it octets as they come, get JSON values out.
#[derive(Debug)]
pub struct Dumper {
    opts: DumpOptions,
    decoder: FrameDecoder,
    buf: BytesMut,
    /// Octets of input consumed so far (the offset of `buf`'s first octet).
    consumed: u64,
    /// Whether the start of the input has been looked at for a protocol header.
    started: bool,
}

impl Dumper {
    /// A dumper with the given options.
    pub fn new(opts: DumpOptions) -> Self {
        Self {
            opts,
            decoder: FrameDecoder::new(opts.frame_max),
            buf: BytesMut::new(),
            consumed: 0,
            started: false,
        }
    }

    /// Decodes what `data` completes, handing each frame's JSON to `out`.
    pub fn feed(&mut self, data: &[u8], out: &mut dyn FnMut(Value)) -> Result<(), DumpError> {
        self.buf.extend_from_slice(data);
        if !self.started {
            if self.buf.first() != Some(&b'A') {
                self.started = true;
            } else {
                let header = ProtocolHeader::decode(&self.buf).map_err(|e| DumpError {
                    message: e.to_string(),
                    offset: 0,
                })?;
                let Some(header) = header else {
                    return Ok(());
                };
                self.started = true;
                out(protocol_header_json(&header));
                let _ = self.buf.split_to(ProtocolHeader::LEN);
                self.consumed = ProtocolHeader::LEN as u64;
            }
        }
        loop {
            let offset = self.consumed;
            let before = self.buf.len();
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(frame)) => {
                    self.consumed += (before - self.buf.len()) as u64;
                    out(frame_json(&frame, &self.opts));
                }
                Ok(None) => return Ok(()),
                Err(e) => {
                    return Err(DumpError {
                        message: e.to_string(),
                        offset,
                    })
                }
            }
        }
    }

    /// Ends the input: an error if it stopped in the middle of a frame.
    pub fn finish(&mut self) -> Result<(), DumpError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let announced = match self.buf.get(3..7) {
            Some(&[a, b, c, d]) => format!(
                " of a {}-octet frame",
                u64::from(u32::from_be_bytes([a, b, c, d])) + 8
            ),
            _ => String::new(),
        };
        Err(DumpError {
            message: format!(
                "input ends inside a frame: {} octets{announced}",
                self.buf.len()
            ),
            offset: self.consumed,
        })
    }
}

/// Dumps everything `input` holds to `output`, one JSON line per frame; a decode error is
/// written as a line too, and returned. I/O errors are returned as `Err(Err(io))`.
pub fn dump(
    mut input: impl Read,
    mut output: impl Write,
    opts: DumpOptions,
) -> Result<(), Result<DumpError, std::io::Error>> {
    let mut dumper = Dumper::new(opts);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut lines = Vec::new();
    let result = loop {
        let n = match input.read(&mut chunk) {
            Ok(0) => break dumper.finish(),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Err(e)),
        };
        let fed = dumper.feed(chunk.get(..n).unwrap_or_default(), &mut |v| lines.push(v));
        for line in lines.drain(..) {
            writeln!(output, "{line}").map_err(Err)?;
        }
        if let Err(e) = fed {
            break Err(e);
        }
    };
    if let Err(e) = &result {
        writeln!(output, "{}", e.to_json()).map_err(Err)?;
    }
    output.flush().map_err(Err)?;
    result.map_err(Ok)
}

fn protocol_header_json(h: &ProtocolHeader) -> Value {
    let version = if h.protocol_id == 0 {
        format!("{}-{}-{}", h.major, h.minor, h.revision)
    } else {
        format!("{}-{}-{}-{}", h.protocol_id, h.major, h.minor, h.revision)
    };
    json!({"frame": "protocol-header", "version": version})
}

/// The JSON line for one frame.
pub fn frame_json(frame: &Frame, opts: &DumpOptions) -> Value {
    match frame {
        Frame::Method { channel, method } => json!({
            "frame": "method",
            "channel": channel,
            "method": method.name(),
            "fields": method_fields(method, opts.show_secrets),
        }),
        Frame::Header { channel, header } => json!({
            "frame": "header",
            "channel": channel,
            "class": header.class_id,
            "body_size": header.body_size,
            "properties": json::properties(&header.properties.decode()),
        }),
        Frame::Body { channel, payload } => {
            let mut m = Map::new();
            m.insert("frame".into(), json!("body"));
            m.insert("channel".into(), json!(channel));
            m.insert("size".into(), json!(payload.len()));
            if opts.show_body {
                json::insert_body(&mut m, payload);
            }
            Value::Object(m)
        }
        Frame::Heartbeat { .. } => json!({"frame": "heartbeat"}),
    }
}

/// The fields that carry credentials, as `(method, field)`: shown as their length unless
/// `--show-secrets` asks for them.
const SECRETS: &[(&str, &str)] = &[
    ("connection.start-ok", "response"),
    ("connection.secure-ok", "response"),
    ("connection.update-secret", "new_secret"),
];

/// A secret's stand-in: its length, and how to see it.
fn hidden(value: FieldRef<'_>) -> Value {
    match value {
        FieldRef::LongStr(b) => json!(format!(
            "<{} octets hidden; --show-secrets shows them>",
            b.len()
        )),
        FieldRef::ShortStr(s) => json!(format!(
            "<{} octets hidden; --show-secrets shows them>",
            s.len()
        )),
        _ => json!("<hidden; --show-secrets shows it>"),
    }
}

/// Every argument of a method, by name, as a JSON object, in wire order. Reserved fields are
/// not listed; names and values are those of [`json::field_name`] and [`json::field_ref`].
pub fn method_fields(method: &Method, show_secrets: bool) -> Map<String, Value> {
    method
        .fields()
        .map(|(name, value)| {
            let secret = !show_secrets && SECRETS.contains(&(method.name(), name));
            let value = if secret {
                hidden(value)
            } else {
                json::field_ref(value)
            };
            (json::field_name(name).to_owned(), value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use amqp_wire::{
        basic, channel, connection, exchange, tx, AmqpMethod, BasicProperties, ContentHeader,
        FieldTable, ReplyCode, ShortStr,
    };
    use bytes::Bytes;

    fn encode(frames: &[Frame]) -> Vec<u8> {
        let mut out = BytesMut::new();
        for f in frames {
            f.encode(&mut out).unwrap();
        }
        out.to_vec()
    }

    fn run(input: &[u8], opts: DumpOptions) -> (Vec<String>, Result<(), DumpError>) {
        let mut out = Vec::new();
        let r = dump(input, &mut out, opts).map_err(|e| e.unwrap());
        let text = String::from_utf8(out).unwrap();
        (text.lines().map(str::to_owned).collect(), r)
    }

    fn publish_frames() -> Vec<Frame> {
        let props = BasicProperties {
            content_type: Some(ShortStr::from_static("text/plain")),
            headers: Some(FieldTable::new().with("n", 5i64).unwrap()),
            ..Default::default()
        };
        vec![
            Frame::Method {
                channel: 1,
                method: Method::BasicPublish(basic::Publish {
                    exchange: ShortStr::from_static("ex"),
                    routing_key: ShortStr::from_static("rk"),
                    mandatory: true,
                    immediate: false,
                }),
            },
            Frame::Header {
                channel: 1,
                header: ContentHeader::new(5, props),
            },
            Frame::Body {
                channel: 1,
                payload: Bytes::from_static(b"hello"),
            },
            Frame::HEARTBEAT,
        ]
    }

    #[test]
    fn frames_with_and_without_protocol_header() {
        let frames = encode(&publish_frames());
        let expected = [
            r#"{"frame":"method","channel":1,"method":"basic.publish","fields":{"exchange":"ex","routing_key":"rk","mandatory":true,"immediate":false}}"#,
            r#"{"frame":"header","channel":1,"class":60,"body_size":5,"properties":{"content_type":"text/plain","headers":{"n":5}}}"#,
            r#"{"frame":"body","channel":1,"size":5}"#,
            r#"{"frame":"heartbeat"}"#,
        ];
        let (lines, r) = run(&frames, DumpOptions::default());
        r.unwrap();
        assert_eq!(lines, expected);

        let mut with_header = b"AMQP\x00\x00\x09\x01".to_vec();
        with_header.extend_from_slice(&frames);
        let (lines, r) = run(&with_header, DumpOptions::default());
        r.unwrap();
        assert_eq!(lines[0], r#"{"frame":"protocol-header","version":"0-9-1"}"#);
        assert_eq!(lines[1..], expected);
    }

    #[test]
    fn byte_at_a_time_gives_the_same_frames() {
        let mut input = b"AMQP\x00\x00\x09\x01".to_vec();
        input.extend_from_slice(&encode(&publish_frames()));
        let mut d = Dumper::new(DumpOptions::default());
        let mut lines = Vec::new();
        for b in &input {
            d.feed(std::slice::from_ref(b), &mut |v| lines.push(v.to_string()))
                .unwrap();
        }
        d.finish().unwrap();
        let (whole, _) = run(&input, DumpOptions::default());
        assert_eq!(lines, whole);
        assert_eq!(lines.len(), 5);
    }

    #[test]
    fn show_body() {
        let frames = encode(&publish_frames());
        let opts = DumpOptions {
            show_body: true,
            ..Default::default()
        };
        let (lines, _) = run(&frames, opts);
        assert_eq!(
            lines[2],
            r#"{"frame":"body","channel":1,"size":5,"body":"hello"}"#
        );
        let bin = encode(&[Frame::Body {
            channel: 2,
            payload: Bytes::from_static(&[0xff]),
        }]);
        let (lines, _) = run(&bin, opts);
        assert_eq!(
            lines[0],
            r#"{"frame":"body","channel":2,"size":1,"body_base64":"/w=="}"#
        );
    }

    #[test]
    fn secrets_are_hidden_unless_asked() {
        let start_ok = encode(&[Frame::Method {
            channel: 0,
            method: Method::from(connection::StartOk {
                client_properties: FieldTable::new().with("product", "x").unwrap(),
                mechanism: ShortStr::from_static("PLAIN"),
                response: Bytes::from_static(b"\0guest\0guest"),
                locale: ShortStr::from_static("en_US"),
            }),
        }]);
        let (lines, _) = run(&start_ok, DumpOptions::default());
        assert!(!lines[0].contains("guest"), "{}", lines[0]);
        assert!(
            lines[0].contains(r#""response":"<12 octets hidden"#),
            "{}",
            lines[0]
        );
        let (lines, _) = run(
            &start_ok,
            DumpOptions {
                show_secrets: true,
                ..Default::default()
            },
        );
        assert!(
            lines[0].contains(r#""response":"\u0000guest\u0000guest""#),
            "{}",
            lines[0]
        );
        assert!(lines[0].contains(r#""client_properties":{"product":"x"}"#));
    }

    #[test]
    fn every_secret_field_exists_and_is_hidden() {
        // Each entry of SECRETS names a real field of a real method.
        let methods = [
            (connection::StartOk::NAME, connection::StartOk::FIELD_NAMES),
            (
                connection::SecureOk::NAME,
                connection::SecureOk::FIELD_NAMES,
            ),
            (
                connection::UpdateSecret::NAME,
                connection::UpdateSecret::FIELD_NAMES,
            ),
        ];
        for (method, field) in SECRETS {
            assert!(
                methods
                    .iter()
                    .any(|(m, names)| m == method && names.contains(field)),
                "{method}.{field}"
            );
        }
        let input = encode(&[
            Frame::Method {
                channel: 0,
                method: Method::ConnectionSecureOk(connection::SecureOk {
                    response: Bytes::from_static(b"s3cret"),
                }),
            },
            Frame::Method {
                channel: 0,
                method: Method::ConnectionUpdateSecret(connection::UpdateSecret {
                    new_secret: Bytes::from_static(b"token-2"),
                    reason: ShortStr::from_static("refresh"),
                }),
            },
        ]);
        let (lines, r) = run(&input, DumpOptions::default());
        r.unwrap();
        assert_eq!(
            lines,
            [
                r#"{"frame":"method","channel":0,"method":"connection.secure-ok","fields":{"response":"<6 octets hidden; --show-secrets shows them>"}}"#,
                r#"{"frame":"method","channel":0,"method":"connection.update-secret","fields":{"new_secret":"<7 octets hidden; --show-secrets shows them>","reason":"refresh"}}"#,
            ]
        );
        let show = DumpOptions {
            show_secrets: true,
            ..Default::default()
        };
        let (lines, _) = run(&input, show);
        assert!(lines[0].contains(r#""response":"s3cret""#), "{}", lines[0]);
        assert!(
            lines[1].contains(r#""new_secret":"token-2""#),
            "{}",
            lines[1]
        );
    }

    #[test]
    fn reply_codes_and_type_fields() {
        let input = encode(&[
            Frame::Method {
                channel: 3,
                method: Method::ChannelClose(channel::Close {
                    reply_code: ReplyCode::NOT_FOUND,
                    reply_text: ShortStr::from_static("NOT_FOUND - no queue 'q'"),
                    class_id: 50,
                    method_id: 10,
                }),
            },
            Frame::Method {
                channel: 1,
                method: Method::ExchangeDeclare(Box::new(exchange::Declare {
                    exchange: ShortStr::from_static("e"),
                    kind: ShortStr::from_static("topic"),
                    durable: true,
                    ..Default::default()
                })),
            },
            Frame::Method {
                channel: 1,
                method: Method::TxSelect(tx::Select),
            },
        ]);
        let (lines, r) = run(&input, DumpOptions::default());
        r.unwrap();
        assert_eq!(
            lines[0],
            r#"{"frame":"method","channel":3,"method":"channel.close","fields":{"reply_code":404,"reply_text":"NOT_FOUND - no queue 'q'","class_id":50,"method_id":10}}"#
        );
        assert!(lines[1].contains(r#""type":"topic""#), "{}", lines[1]);
        assert!(lines[1].contains(r#""arguments":{}"#), "{}", lines[1]);
        assert_eq!(
            lines[2],
            r#"{"frame":"method","channel":1,"method":"tx.select","fields":{}}"#
        );
    }

    #[test]
    fn truncated_input_is_an_error_at_the_frame_offset() {
        let frames = encode(&publish_frames());
        let cut = &frames[..frames.len() - 3];
        let (lines, r) = run(cut, DumpOptions::default());
        let e = r.unwrap_err();
        // The heartbeat (8 octets) is the last frame; cutting 3 octets leaves 5 of it.
        assert_eq!(e.offset, (frames.len() - 8) as u64);
        assert!(e.message.contains("input ends inside a frame"), "{e}");
        let last: Value = serde_json::from_str(lines.last().unwrap()).unwrap();
        assert_eq!(last["offset"], json!(frames.len() - 8));
        assert_eq!(lines.len(), 4, "three frames, then the error");
    }

    #[test]
    fn garbage_is_an_error_with_offset() {
        let mut input = encode(&publish_frames()[..1]);
        let good = input.len();
        input.extend_from_slice(b"\x07\x00\x00\x00\x00\x00\x00\xce");
        let (lines, r) = run(&input, DumpOptions::default());
        let e = r.unwrap_err();
        assert_eq!(e.offset, good as u64);
        assert_eq!(lines.len(), 2);
        assert!(lines[1].starts_with(r#"{"error":"#), "{}", lines[1]);

        // A bad frame-end octet.
        let mut bad_end = encode(&publish_frames()[3..]);
        *bad_end.last_mut().unwrap() = 0;
        assert_eq!(
            run(&bad_end, DumpOptions::default()).1.unwrap_err().offset,
            0
        );

        // A protocol header that is not one.
        let (lines, r) = run(b"AMQX\x00\x00\x09\x01", DumpOptions::default());
        assert_eq!(r.unwrap_err().offset, 0);
        assert_eq!(lines.len(), 1);
    }

    #[test]
    fn frame_max_is_enforced() {
        let big = encode(&[Frame::Body {
            channel: 1,
            payload: Bytes::from(vec![0u8; 5000]),
        }]);
        let opts = DumpOptions {
            frame_max: 4096,
            ..Default::default()
        };
        let (_, r) = run(&big, opts);
        assert_eq!(r.unwrap_err().offset, 0);
        run(&big, DumpOptions::default()).1.unwrap();
    }

    #[test]
    fn other_protocol_versions_are_named() {
        let (lines, _) = run(b"AMQP\x03\x01\x00\x00", DumpOptions::default());
        assert_eq!(
            lines[0],
            r#"{"frame":"protocol-header","version":"3-1-0-0"}"#
        );
    }

    #[test]
    fn empty_input_prints_nothing() {
        let (lines, r) = run(b"", DumpOptions::default());
        r.unwrap();
        assert!(lines.is_empty());
    }
}
