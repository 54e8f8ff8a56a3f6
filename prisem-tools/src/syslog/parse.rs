//! Turning one received syslog line into the message the bridge publishes: RFC 5424 and
//! RFC 3164 parsing (a BSD or an ISO 8601 timestamp; one without a zone is local time), the
//! routing key, the JSON body and the headers.

use amqp_client::{FieldTable, FieldValue};
use chrono::{
    DateTime, Datelike, FixedOffset, Local, NaiveDateTime, Offset, SecondsFormat, TimeZone, Utc,
};
use serde_json::{json, Map, Value};
use syslog_loose::{ProcId, Variant};

/// How a line reached the bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A UDP datagram.
    Udp,
    /// A TCP connection.
    Tcp,
    /// A unix datagram socket.
    Unix,
    /// A unix stream socket.
    UnixStream,
}

impl Transport {
    /// The name used in the body and the `transport` header.
    pub fn name(self) -> &'static str {
        match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
            Self::Unix => "unix",
            Self::UnixStream => "unix-stream",
        }
    }
}

/// One line as received, before parsing.
#[derive(Debug, Clone)]
pub struct Received {
    /// The bytes of the line (framing removed, cut at the maximum size).
    pub raw: Vec<u8>,
    /// The peer: `ip:port` for UDP and TCP, the socket path for unix sockets.
    pub peer: String,
    /// How it arrived.
    pub transport: Transport,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
    /// Whether it was cut at the maximum message size.
    pub truncated: bool,
}

/// The message to publish for one received line.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// The routing key on the `syslog` exchange.
    pub routing_key: String,
    /// Header name and value pairs (all strings).
    pub headers: Vec<(String, String)>,
    /// The JSON body.
    pub body: Vec<u8>,
}

impl Outgoing {
    /// The headers as an AMQP field table.
    pub fn field_table(&self) -> FieldTable {
        let mut t = FieldTable::new();
        for (k, v) in &self.headers {
            // Keys are ours and short; a failure would only drop the header.
            let _ = t.insert(k, FieldValue::from(v.as_str()));
        }
        t
    }
}

/// How routing keys are made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingRule {
    /// A template with `{facility}`, `{severity}`, `{program}` and `{host}` placeholders;
    /// `None` is the program alone.
    pub template: Option<String>,
    /// Program aliases applied before the key is made (`sshd-session` → `sshd`).
    pub aliases: Vec<(String, String)>,
    /// The host name given to RFC 3164 lines from local (unix) sockets, which carry none.
    pub local_host: String,
}

impl Default for RoutingRule {
    fn default() -> Self {
        Self {
            template: None,
            aliases: vec![("sshd-session".into(), "sshd".into())],
            local_host: crate::identity::short_hostname(),
        }
    }
}

/// Why a line went out under `unparsed`.
fn unparsed_reason(raw: &[u8]) -> Result<&str, &'static str> {
    let text = std::str::from_utf8(raw).map_err(|_| "not valid UTF-8")?;
    let rest = text
        .strip_prefix('<')
        .ok_or("no <PRI> header at the start of the line")?;
    let end = rest
        .find('>')
        .filter(|&e| (1..=3).contains(&e))
        .ok_or("malformed <PRI> header")?;
    let pri = rest
        .get(..end)
        .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| d.parse::<u16>().ok())
        .ok_or("malformed <PRI> header")?;
    if pri > 191 {
        return Err("<PRI> out of range (0..=191)");
    }
    Ok(text)
}

/// A local-socket RFC 3164 line (`<PRI>Mmm dd hh:mm:ss TAG: MSG`, as syslog(3) and `logger`
/// write it) with `host` put after its timestamp, so it parses like a line from the network.
/// `None` for anything else (RFC 5424 lines, lines that already look different).
fn with_local_host(text: &str, host: &str) -> Option<String> {
    let close = text.find('>')?;
    let (head, rest) = (text.get(..=close)?, text.get(close + 1..)?);
    let ts = rest.get(..16)?.as_bytes();
    let shape = ts.iter().enumerate().all(|(i, &b)| match i {
        0..=2 => b.is_ascii_alphabetic(),
        3 | 15 => b == b' ',
        6 => b == b' ',
        9 | 12 => b == b':',
        4 => b == b' ' || b.is_ascii_digit(),
        _ => b.is_ascii_digit(),
    });
    if !shape {
        return None;
    }
    Some(format!(
        "{head}{}{host} {}",
        rest.get(..16)?,
        rest.get(16..)?
    ))
}

/// An RFC 3164-shaped line whose timestamp is ISO 8601 without a zone
/// (`<PRI>2026-12-05T01:32:00 HOST TAG: MSG`, as syslog-ng's `loggen` and some relays write it)
/// with the local zone's offset at that time added, so that it is read as local time, like a
/// classic RFC 3164 timestamp. `None` for anything else (a timestamp with a zone, RFC 5424, a
/// date that does not exist).
fn with_local_zone(text: &str) -> Option<String> {
    let close = text.find('>')?;
    // `<PRI>` is at most `<191>`.
    if close > 4 {
        return None;
    }
    let rest = text.get(close + 1..)?;
    let ts = rest.get(..rest.find(' ')?)?;
    if ts.as_bytes().get(10) != Some(&b'T') {
        return None;
    }
    let naive = NaiveDateTime::parse_from_str(ts, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
    let offset = Local.from_local_datetime(&naive).earliest()?.offset().fix();
    Some(format!(
        "{}{ts}{offset}{}",
        text.get(..=close)?,
        rest.get(ts.len()..)?
    ))
}

/// The year of an RFC 3164 timestamp (which has none), relative to when it was received: a
/// December line received in January is from last year, a January line received in December
/// from next year (a clock slightly ahead).
pub fn year_for(month: u32, received: DateTime<Utc>) -> i32 {
    let local = received.with_timezone(&Local);
    let (year, now_month) = (local.year(), local.month());
    match (month, now_month) {
        (12, 1) => year - 1,
        (1, 12) => year + 1,
        _ => year,
    }
}

/// Normalises a program name for a topic exchange: `[pid]` stripped; `.`, `*`, `#` and
/// whitespace become `_`; empty becomes `unknown`; at most 255 bytes.
pub fn sanitize_program(program: &str) -> String {
    let base = match program.find('[') {
        Some(i) if program.ends_with(']') => program.get(..i).unwrap_or(program),
        _ => program,
    };
    let mut out: String = base
        .chars()
        .map(|c| match c {
            '.' | '*' | '#' => '_',
            c if c.is_whitespace() || c.is_control() => '_',
            c => c,
        })
        .collect();
    truncate_utf8(&mut out, 255);
    if out.is_empty() {
        "unknown".into()
    } else {
        out
    }
}

fn truncate_utf8(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

fn render_key(
    rule: &RoutingRule,
    facility: &str,
    severity: &str,
    program: &str,
    host: &str,
) -> String {
    let Some(t) = &rule.template else {
        return program.to_string();
    };
    // One pass over the template: a value never has its own text expanded (a host named
    // `{program}` stays that text).
    let fields = [
        ("{facility}", sanitize_program(facility)),
        ("{severity}", sanitize_program(severity)),
        ("{host}", sanitize_program(host)),
        ("{program}", program.to_owned()),
    ];
    let mut key = String::with_capacity(t.len() + 64);
    let mut rest = t.as_str();
    'template: while !rest.is_empty() {
        for (placeholder, value) in &fields {
            if let Some(after) = rest.strip_prefix(placeholder) {
                key.push_str(value);
                rest = after;
                continue 'template;
            }
        }
        let mut chars = rest.chars();
        key.extend(chars.next());
        rest = chars.as_str();
    }
    truncate_utf8(&mut key, 255);
    key
}

fn stamp(t: DateTime<FixedOffset>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Parses one received line into the message to publish. Never fails: a line that cannot be
/// parsed goes out under the routing key `unparsed` with an `unparsed` header saying why.
pub fn to_outgoing(rec: &Received, rule: &RoutingRule) -> Outgoing {
    let received_at = rec.received_at.to_rfc3339_opts(SecondsFormat::Micros, true);
    let raw_text = String::from_utf8_lossy(&rec.raw);
    let mut headers = vec![
        ("peer".to_string(), rec.peer.clone()),
        ("transport".to_string(), rec.transport.name().to_string()),
    ];
    if rec.truncated {
        headers.push(("truncated".into(), "true".into()));
    }
    let local = matches!(rec.transport, Transport::Unix | Transport::UnixStream);
    let mut with_host = None;
    let parsed = unparsed_reason(&rec.raw).and_then(|text| {
        let received = rec.received_at;
        if local {
            with_host = with_local_host(text, &rule.local_host);
        }
        if with_host.is_none() {
            with_host = with_local_zone(text);
        }
        syslog_loose::parse_message_with_year_exact_tz(
            with_host.as_deref().unwrap_or(text),
            move |(month, ..)| year_for(month, received),
            Some(Local),
            Variant::Either,
        )
        .map_err(|_| "neither RFC 5424 nor RFC 3164")
    });
    let msg = match parsed {
        Ok(m) => m,
        Err(reason) => {
            headers.push(("unparsed".into(), reason.into()));
            let mut body = Map::new();
            body.insert("raw".into(), Value::from(raw_text.as_ref()));
            if std::str::from_utf8(&rec.raw).is_err() {
                use base64::Engine;
                let b64 = base64::engine::general_purpose::STANDARD.encode(&rec.raw);
                body.insert("raw_base64".into(), Value::from(b64));
            }
            body.insert("unparsed".into(), Value::from(reason));
            body.insert("peer".into(), Value::from(rec.peer.as_str()));
            body.insert("transport".into(), Value::from(rec.transport.name()));
            body.insert("received_at".into(), Value::from(received_at));
            body.insert("truncated".into(), Value::from(rec.truncated));
            return Outgoing {
                routing_key: "unparsed".into(),
                headers,
                body: Value::Object(body).to_string().into_bytes(),
            };
        }
    };
    let facility = msg.facility.map(|f| f.as_str()).unwrap_or("");
    let severity = msg.severity.map(|s| s.as_str()).unwrap_or("");
    let host = msg.hostname.unwrap_or("");
    let mut program = msg.appname.unwrap_or("").to_string();
    for (from, to) in &rule.aliases {
        if program == *from {
            program.clone_from(to);
        }
    }
    let program_key = sanitize_program(&program);
    let pid = match &msg.procid {
        Some(ProcId::PID(p)) => Value::from(*p),
        Some(ProcId::Name(n)) => Value::from(*n),
        None => Value::Null,
    };
    let sd: Map<String, Value> = msg
        .structured_data
        .iter()
        .map(|e| {
            let params: Map<String, Value> = e
                .params
                .iter()
                .map(|(k, v)| ((*k).to_string(), Value::from(*v)))
                .collect();
            (e.id.to_string(), Value::Object(params))
        })
        .collect();
    let body = json!({
        "raw": raw_text,
        "facility": msg.facility.map(|f| f.as_str()),
        "severity": msg.severity.map(|s| s.as_str()),
        "timestamp": msg.timestamp.map(stamp),
        "host": msg.hostname,
        "program": if program.is_empty() { Value::Null } else { Value::from(program.as_str()) },
        "pid": pid,
        "msgid": msg.msgid,
        "sd": sd,
        "message": msg.msg,
        "peer": rec.peer,
        "transport": rec.transport.name(),
        "received_at": received_at,
        "truncated": rec.truncated,
    });
    headers.insert(0, ("program".into(), program_key.clone()));
    headers.insert(1, ("host".into(), host.to_string()));
    Outgoing {
        routing_key: render_key(rule, facility, severity, &program_key, host),
        headers,
        body: body.to_string().into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    pub(super) fn rec(raw: &[u8]) -> Received {
        Received {
            raw: raw.to_vec(),
            peer: "192.0.2.7:514".into(),
            transport: Transport::Udp,
            received_at: Utc.with_ymd_and_hms(2026, 3, 4, 12, 0, 0).unwrap(),
            truncated: false,
        }
    }

    fn body(o: &Outgoing) -> Value {
        serde_json::from_slice(&o.body).unwrap()
    }

    #[test]
    fn placeholders_in_values_are_not_expanded() {
        // Caught by the syslog_parse fuzz target: the template was expanded one placeholder
        // after the other, so a sender naming its host `{program}` had the program put there.
        let rule = RoutingRule {
            template: Some("{facility}.{severity}.{host}.{program}".into()),
            aliases: Vec::new(),
            local_host: "loghost".into(),
        };
        let o = to_outgoing(
            &rec(b"<38>1 2026-03-04T12:00:00Z {program} sshd 7 - - Failed password"),
            &rule,
        );
        assert_eq!(o.routing_key, "auth.info.{program}.sshd");
        let o = to_outgoing(
            &rec(b"<38>1 2026-03-04T12:00:00Z gw.example {host}{severity} 7 - - x"),
            &rule,
        );
        assert_eq!(o.routing_key, "auth.info.gw_example.{host}{severity}");
    }

    #[test]
    fn rfc5424_fields() {
        let o = to_outgoing(
            &rec(b"<38>1 2026-03-04T11:59:58.120+01:00 gw.example sshd 4242 AUTH [origin ip=\"192.0.2.1\"] Failed password"),
            &RoutingRule::default(),
        );
        assert_eq!(o.routing_key, "sshd");
        let b = body(&o);
        assert_eq!(b["facility"], "auth");
        assert_eq!(b["severity"], "info");
        assert_eq!(b["timestamp"], "2026-03-04T11:59:58.120+01:00");
        assert_eq!(b["host"], "gw.example");
        assert_eq!(b["pid"], 4242);
        assert_eq!(b["msgid"], "AUTH");
        assert_eq!(b["sd"]["origin"]["ip"], "192.0.2.1");
        assert_eq!(b["message"], "Failed password");
        assert_eq!(b["peer"], "192.0.2.7:514");
        assert!(o.headers.contains(&("host".into(), "gw.example".into())));
    }

    #[test]
    fn rfc3164_fields_and_alias() {
        let o = to_outgoing(
            &rec(b"<86>Mar  4 11:59:58 gw sshd-session[812]: Invalid user x from 198.51.100.9 port 4711"),
            &RoutingRule::default(),
        );
        assert_eq!(o.routing_key, "sshd");
        let b = body(&o);
        assert_eq!(b["facility"], "authpriv");
        assert_eq!(b["program"], "sshd");
        assert_eq!(b["pid"], 812);
        assert!(b["timestamp"]
            .as_str()
            .unwrap()
            .starts_with("2026-03-04T11:59:58"));
        assert_eq!(b["message"], "Invalid user x from 198.51.100.9 port 4711");
    }

    #[test]
    fn iso_timestamps_without_a_zone_are_local_time() {
        // The shape syslog-ng's loggen sends by default.
        let o = to_outgoing(
            &rec(b"<38>2026-12-05T01:32:00 gw prg00000[1234]: seq: 0000000007, thread: 0000"),
            &RoutingRule::default(),
        );
        assert_eq!(o.routing_key, "prg00000");
        let b = body(&o);
        assert_eq!(b["host"], "gw");
        assert_eq!(b["pid"], 1234);
        assert_eq!(b["message"], "seq: 0000000007, thread: 0000");
        let ts = DateTime::parse_from_rfc3339(b["timestamp"].as_str().unwrap()).unwrap();
        let expected = Local
            .with_ymd_and_hms(2026, 12, 5, 1, 32, 0)
            .earliest()
            .unwrap();
        assert_eq!(ts, expected);
        // The raw line keeps what was sent.
        assert!(b["raw"]
            .as_str()
            .unwrap()
            .starts_with("<38>2026-12-05T01:32:00 gw"));

        // A date that does not exist, or a zone already there, is left to the parser.
        assert_eq!(with_local_zone("<38>2026-13-45T01:32:00 gw x: y"), None);
        assert_eq!(with_local_zone("<38>2026-12-05T01:32:00Z gw x: y"), None);
        assert_eq!(
            with_local_zone("<38>1 2026-12-05T01:32:00Z gw x - - - y"),
            None
        );
        assert_eq!(with_local_zone("<38>2026-12-05T01:32:00"), None);
    }

    #[test]
    fn local_socket_lines_get_the_local_host() {
        let mut r = rec(b"<13>Mar  4 11:59:58 CRON.daily: hello");
        r.transport = Transport::Unix;
        let rule = RoutingRule {
            local_host: "box".into(),
            ..Default::default()
        };
        let o = to_outgoing(&r, &rule);
        assert_eq!(o.routing_key, "CRON_daily");
        let b = body(&o);
        assert_eq!(b["host"], "box");
        assert_eq!(b["message"], "hello");
        assert_eq!(b["raw"], "<13>Mar  4 11:59:58 CRON.daily: hello");
    }

    #[test]
    fn year_rule_across_new_year() {
        let jan = Utc.with_ymd_and_hms(2027, 1, 1, 12, 0, 0).unwrap();
        let dec = Utc.with_ymd_and_hms(2026, 12, 31, 12, 0, 0).unwrap();
        assert_eq!(year_for(12, jan), 2026);
        assert_eq!(year_for(1, dec), 2027);
        assert_eq!(year_for(6, dec), 2026);
    }

    #[test]
    fn unparsed_lines_keep_raw_and_reason() {
        for (raw, reason) in [
            (
                &b"no header here"[..],
                "no <PRI> header at the start of the line",
            ),
            (b"<999>1 - - - - - x", "<PRI> out of range (0..=191)"),
            (b"<3x>oops", "malformed <PRI> header"),
            (b"<13>\xff\xfe bad", "not valid UTF-8"),
        ] {
            let o = to_outgoing(&rec(raw), &RoutingRule::default());
            assert_eq!(o.routing_key, "unparsed", "{raw:?}");
            assert!(
                o.headers.contains(&("unparsed".into(), reason.into())),
                "{raw:?}"
            );
            let b = body(&o);
            assert_eq!(b["raw"], String::from_utf8_lossy(raw).as_ref());
        }
    }

    #[test]
    fn program_sanitised() {
        assert_eq!(sanitize_program("CRON[12]"), "CRON");
        assert_eq!(sanitize_program("a.b*c#d e"), "a_b_c_d_e");
        assert_eq!(sanitize_program(""), "unknown");
        assert_eq!(sanitize_program(&"é".repeat(200)).len(), 254);
    }

    #[test]
    fn template_key() {
        let rule = RoutingRule {
            template: Some("{facility}.{severity}.{program}".into()),
            ..Default::default()
        };
        let o = to_outgoing(&rec(b"<13>Mar  4 11:59:58 h my.app: hi"), &rule);
        assert_eq!(o.routing_key, "user.notice.my_app");
    }
}
