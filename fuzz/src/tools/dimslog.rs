//! DIMS log lines.

use chrono::Timelike;
use prisem_tools::dimslog::{FullLine, LogLine, Timestamp};

/// The timestamp as a line can carry it: microseconds.
fn to_micros(t: Timestamp) -> Timestamp {
    match t {
        Timestamp::Zoned(z) => {
            Timestamp::Zoned(z.with_nanosecond(z.nanosecond() / 1000 * 1000).unwrap_or(z))
        }
        Timestamp::Naive(n) => {
            Timestamp::Naive(n.with_nanosecond(n.nanosecond() / 1000 * 1000).unwrap_or(n))
        }
    }
}

/// One log line as a peer sends it (invalid UTF-8 replaced, as the consumer does).
///
/// Checks that parsing never fails and that the wire form written back
/// (`Display`) parses to the same line — for a full line every field equal and the time equal
/// to the microsecond — and is itself a fixed point; that a line without the full shape is kept
/// as it came; and that the display forms in UTC and local time can be made.
pub fn check_dimslog_line(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let line = LogLine::parse(&text);
    let wire = line.to_string();
    let again = LogLine::parse(&wire);
    match (&line, &again) {
        (LogLine::Full(a), LogLine::Full(b)) => {
            let a = FullLine {
                timestamp: to_micros(a.timestamp),
                ..a.clone()
            };
            assert_eq!(&a, b, "full line {text:?} written as {wire:?}");
        }
        _ => assert_eq!(line, again, "line {text:?} written as {wire:?}"),
    }
    assert_eq!(
        again.to_string(),
        wire,
        "the wire form is not a fixed point"
    );
    let trimmed = text.trim_end_matches(['\n', '\r']);
    if let LogLine::Raw(raw) = &line {
        assert_eq!(raw, trimmed);
    }
    if let LogLine::Bare { guid, message } = &line {
        assert_eq!(format!("{guid}: {message}"), trimmed);
    }
    let _ = (
        line.render(true),
        line.render(false),
        line.level(),
        line.host(),
        line.guid(),
    );
}
