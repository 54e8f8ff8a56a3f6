//! The syslog bridge's input: stream framing, line parsing and the spool format.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use bytes::BytesMut;
use chrono::{TimeZone, Utc};
use prisem_tools::syslog::framing::{Deframer, Frame};
use prisem_tools::syslog::parse::{
    sanitize_program, to_outgoing, Outgoing, Received, RoutingRule, Transport,
};
use prisem_tools::syslog::spool::Spool;
use serde_json::Value;

use crate::chunk_lengths;

/// The maximum message size a framing input runs under, chosen by its first octet: tiny sizes
/// (1..=64) that make truncation common, or sizes real configurations use.
pub fn syslog_max_for(selector: u8) -> usize {
    match selector >> 6 {
        0 | 1 => usize::from(selector & 63) + 1,
        2 => 2048,
        _ => 65_536,
    }
}

/// Deframes `stream` handed over in pieces of `chunks` octets, then ends the stream.
fn deframe(max: usize, stream: &[u8], chunks: &[usize]) -> Vec<Frame> {
    let mut deframer = Deframer::new(max);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut at = 0;
    for &n in chunks {
        buf.extend_from_slice(&stream[at..at + n]);
        at += n;
        while let Some(f) = deframer.next(&mut buf) {
            frames.push(f);
        }
        // Nothing is kept beyond one message (and the length prefix of the next).
        assert!(
            buf.len() <= max + 12,
            "{} octets buffered under a maximum of {max}",
            buf.len()
        );
    }
    while let Some(f) = deframer.finish(&mut buf) {
        frames.push(f);
    }
    assert!(buf.is_empty(), "finish left {} octets", buf.len());
    frames
}

/// A syslog byte stream (TCP, unix stream): octet 0 picks the maximum size, octet 1 the
/// chunking, the rest is the stream.
///
/// Checks that
/// - the frames do not depend on how the stream was chunked;
/// - no frame is empty or longer than the maximum, and the deframer buffers no more than one
///   maximum-sized message;
/// - the frames written back with octet counting (`LEN SP MSG`) deframe to the same messages,
///   none of them truncated.
pub fn check_syslog_framing(data: &[u8]) {
    let [selector, chunking, stream @ ..] = data else {
        return;
    };
    let max = syslog_max_for(*selector);
    let whole = deframe(max, stream, &[stream.len()]);
    let chunked = deframe(max, stream, &chunk_lengths(*chunking, stream.len()));
    assert_eq!(chunked, whole, "chunked deframing gave other frames");
    let mut counted = Vec::new();
    for f in &whole {
        assert!(!f.data.is_empty(), "empty frame");
        assert!(
            f.data.len() <= max,
            "frame of {} octets over {max}",
            f.data.len()
        );
        if f.truncated {
            assert_eq!(
                f.data.len(),
                max,
                "truncated frame shorter than the maximum"
            );
        }
        counted.extend_from_slice(format!("{} ", f.data.len()).as_bytes());
        counted.extend_from_slice(&f.data);
    }
    let again = deframe(max, &counted, &[counted.len()]);
    let data_of = |frames: &[Frame]| frames.iter().map(|f| f.data.clone()).collect::<Vec<_>>();
    assert_eq!(
        data_of(&again),
        data_of(&whole),
        "octet-counted frames deframe otherwise"
    );
    assert!(
        again.iter().all(|f| !f.truncated),
        "an octet-counted frame of the maximum size was cut"
    );
}

fn rule(templated: bool) -> RoutingRule {
    RoutingRule {
        template: templated.then(|| "{facility}.{severity}.{host}.{program}".to_owned()),
        aliases: vec![("sshd-session".into(), "sshd".into())],
        local_host: "loghost".into(),
    }
}

/// A received line from fuzz input: octet 0 picks the transport (bits 0-1), truncation (bit 2)
/// and the routing template (bit 3); the rest is the line.
fn received(data: &[u8]) -> Option<(Received, bool)> {
    let (&selector, raw) = data.split_first()?;
    let transport = match selector & 3 {
        0 => Transport::Udp,
        1 => Transport::Tcp,
        2 => Transport::Unix,
        _ => Transport::UnixStream,
    };
    let received_at = Utc.with_ymd_and_hms(2026, 3, 4, 12, 0, 0).single()?;
    let rec = Received {
        raw: raw.to_vec(),
        peer: "192.0.2.10:514".into(),
        transport,
        received_at,
        truncated: selector & 4 != 0,
    };
    Some((rec, selector & 8 != 0))
}

/// One received syslog line (RFC 3164, RFC 5424 or anything else).
///
/// Checks that the message always goes out: the body is a JSON object whose `raw` is the line
/// and whose `transport`, `peer` and `truncated` say how it came; the headers name the program
/// and host (or say why the line was not parsed) and all fit an AMQP field table; the routing
/// key is at most 255 octets and, when built from the template, has exactly its four words with
/// none of them a topic wildcard; the program name is made safe for a topic exchange.
pub fn check_syslog_parse(data: &[u8]) {
    let Some((rec, templated)) = received(data) else {
        return;
    };
    let out = to_outgoing(&rec, &rule(templated));
    let body: Value = match serde_json::from_slice(&out.body) {
        Ok(v) => v,
        Err(e) => panic!(
            "body is not JSON ({e}): {:?}",
            String::from_utf8_lossy(&out.body)
        ),
    };
    assert_eq!(
        body.get("raw").and_then(Value::as_str),
        Some(String::from_utf8_lossy(&rec.raw).as_ref()),
        "body raw differs from the line"
    );
    assert_eq!(
        body.get("transport").and_then(Value::as_str),
        Some(rec.transport.name())
    );
    assert_eq!(
        body.get("peer").and_then(Value::as_str),
        Some("192.0.2.10:514")
    );
    assert_eq!(
        body.get("truncated").and_then(Value::as_bool),
        Some(rec.truncated)
    );
    assert!(
        out.routing_key.len() <= 255,
        "routing key of {} octets",
        out.routing_key.len()
    );
    let header = |name: &str| {
        out.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let table = out.field_table();
    for (k, _) in &out.headers {
        assert!(table.get(k).is_some(), "header {k} lost in the field table");
    }
    if header("unparsed").is_some() {
        assert_eq!(out.routing_key, "unparsed");
        assert!(body.get("unparsed").is_some());
        return;
    }
    let program = header("program").unwrap_or_else(|| panic!("no program header: {out:?}"));
    assert_safe_program(program);
    assert!(header("host").is_some(), "no host header");
    if !templated {
        assert_eq!(out.routing_key, program);
    } else {
        // The template filled in once, each value as it is (never expanded again), then cut
        // at 255 octets on a character boundary.
        let word =
            |name: &str| sanitize_program(body.get(name).and_then(Value::as_str).unwrap_or(""));
        let host = sanitize_program(header("host").unwrap_or(""));
        let full = format!("{}.{}.{host}.{program}", word("facility"), word("severity"));
        let key = &out.routing_key;
        if full.len() <= 255 {
            assert_eq!(key, &full, "templated key");
        } else {
            assert!(
                full.starts_with(key.as_str()) && key.len() > 251,
                "cut key {key:?}"
            );
        }
        assert!(!key.contains(['*', '#']), "wildcard in key {key:?}");
    }
    check_program_name(&String::from_utf8_lossy(&rec.raw));
}

/// `sanitize_program` on any text: never empty, at most 255 octets, no topic separators,
/// wildcards, whitespace or control characters.
fn check_program_name(text: &str) {
    assert_safe_program(&sanitize_program(text));
}

fn assert_safe_program(p: &str) {
    assert!(!p.is_empty() && p.len() <= 255, "program name {p:?}");
    assert!(
        !p.contains(|c: char| matches!(c, '.' | '*' | '#') || c.is_whitespace() || c.is_control()),
        "unsafe program name {p:?}"
    );
}

/// A spool directory of this process, on tmpfs when there is one (the spool fsyncs).
fn spool_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = ["/dev/shm", "/tmp"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_dir())
            .unwrap_or_else(std::env::temp_dir);
        base.join(format!("prisem-fuzz-spool-{}", std::process::id()))
    })
}

fn clear(dir: &PathBuf) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Appends `msgs` to a fresh spool in `dir` (ids from 1) and seals it.
pub(crate) fn spool_save(dir: &Path, msgs: &[Outgoing]) -> std::io::Result<()> {
    let mut spool = Spool::open(dir, 1 << 30)?;
    for (id, m) in (1u64..).zip(msgs) {
        assert!(
            spool.append(id, m)?,
            "the spool refused a record under its limit"
        );
    }
    spool.seal()
}

/// Opens the spool in `dir` and reads every record back, oldest first.
fn spool_load(dir: &Path) -> std::io::Result<Vec<Outgoing>> {
    let mut spool = Spool::open(dir, 1 << 30)?;
    let mut out = Vec::new();
    while let Some(r) = spool.read_next()? {
        out.push(r.msg);
    }
    Ok(out)
}

/// Spools `msgs` and reads them back: they must be identical.
fn spool_round_trip(msgs: &[Outgoing]) {
    let dir = spool_dir();
    clear(dir);
    if let Err(e) = spool_save(dir, msgs) {
        panic!("spool save failed: {e}");
    }
    let back = match spool_load(dir) {
        Ok(l) => l,
        Err(e) => panic!("a spool we wrote does not read back: {e}"),
    };
    clear(dir);
    assert_eq!(back, msgs, "spooled messages read back otherwise");
}

/// The spool: octet 0 bit 0 picks the input's meaning.
///
/// - Set: the rest is a segment file as found on disk. Loading it must not panic; what loads
///   must be saved and loaded back identical.
/// - Clear: the rest is split at LF into received lines (each with a selector octet as in
///   `syslog_parse`); the messages the bridge would publish for them must be spooled and read
///   back identical.
pub fn check_syslog_spool(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    if selector & 1 == 1 {
        let dir = spool_dir();
        clear(dir);
        if std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(dir.join("spool-00000000000000000001.seg"), rest))
            .is_err()
        {
            return;
        }
        // Whatever reads back from a foreign file must spool and read back identical.
        let loaded = spool_load(dir);
        clear(dir);
        if let Ok(msgs) = loaded {
            spool_round_trip(&msgs);
        }
        return;
    }
    let msgs: Vec<Outgoing> = rest
        .split(|&b| b == b'\n')
        .filter_map(received)
        .map(|(rec, templated)| to_outgoing(&rec, &rule(templated)))
        .collect();
    spool_round_trip(&msgs);
}
