//! DIMS log lines: building them and parsing the three shapes peers send.

use core::fmt;
use core::str::FromStr;

use chrono::{DateTime, FixedOffset, Local, NaiveDateTime, SecondsFormat, Timelike, Utc};

use crate::identity::Identity;

/// A syslog severity, as DIMS lines name them (upper case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// 0: the system is unusable.
    Emergency = 0,
    /// 1: act at once.
    Alert = 1,
    /// 2: critical condition.
    Critical = 2,
    /// 3: error.
    Error = 3,
    /// 4: warning.
    Warning = 4,
    /// 5: normal but significant.
    Notice = 5,
    /// 6: informational (the default).
    Info = 6,
    /// 7: debugging.
    Debug = 7,
}

impl Level {
    /// Every level, most severe first.
    pub const ALL: [Self; 8] = [
        Self::Emergency,
        Self::Alert,
        Self::Critical,
        Self::Error,
        Self::Warning,
        Self::Notice,
        Self::Info,
        Self::Debug,
    ];

    /// The name written in lines (`INFO`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Emergency => "EMERGENCY",
            Self::Alert => "ALERT",
            Self::Critical => "CRITICAL",
            Self::Error => "ERROR",
            Self::Warning => "WARNING",
            Self::Notice => "NOTICE",
            Self::Info => "INFO",
            Self::Debug => "DEBUG",
        }
    }

    /// The syslog number (0 most severe).
    pub fn number(self) -> u8 {
        self as u8
    }

    /// Whether this level is at least as severe as `threshold`.
    pub fn at_least(self, threshold: Self) -> bool {
        self <= threshold
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Level {
    type Err = String;

    /// Accepts the names in any case, the usual short forms (`WARN`, `ERR`, `CRIT`, `EMERG`)
    /// and the syslog numbers 0–7.
    fn from_str(s: &str) -> Result<Self, String> {
        let level = match s.to_ascii_uppercase().as_str() {
            "EMERGENCY" | "EMERG" | "PANIC" | "0" => Self::Emergency,
            "ALERT" | "1" => Self::Alert,
            "CRITICAL" | "CRIT" | "2" => Self::Critical,
            "ERROR" | "ERR" | "3" => Self::Error,
            "WARNING" | "WARN" | "4" => Self::Warning,
            "NOTICE" | "5" => Self::Notice,
            "INFO" | "6" => Self::Info,
            "DEBUG" | "7" => Self::Debug,
            _ => {
                return Err(format!(
                    "unknown level {s:?} (EMERGENCY, ALERT, CRITICAL, ERROR, WARNING, NOTICE, INFO, DEBUG or 0-7)"
                ))
            }
        };
        Ok(level)
    }
}

/// When a line was written, as its sender stamped it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timestamp {
    /// An ISO 8601 time with a zone (`2014-11-05T17:01:53.628154-08:00`, `…Z`).
    Zoned(DateTime<FixedOffset>),
    /// An ISO 8601 time without a zone (shown as sent: its zone is unknown).
    Naive(NaiveDateTime),
}

impl Timestamp {
    fn parse(s: &str) -> Option<Self> {
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Some(Self::Zoned(t));
        }
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
            .ok()
            .map(Self::Naive)
    }

    /// The time as ISO 8601 with microseconds, converted to UTC or to local time. A time sent
    /// without a zone is shown unchanged.
    pub fn render(&self, utc: bool) -> String {
        const FMT: &str = "%Y-%m-%dT%H:%M:%S%.6f%:z";
        match self {
            Self::Zoned(t) if utc => t.with_timezone(&Utc).format(FMT).to_string(),
            Self::Zoned(t) => t.with_timezone(&Local).format(FMT).to_string(),
            Self::Naive(t) => t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
        }
    }
}

/// One log line in any of the shapes DIMS programs sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogLine {
    /// `ISO8601 host GUID component LEVEL message`, or the v1.1.3 client shape with
    /// `[submodule] [pid]` before the level.
    Full(FullLine),
    /// A server's bare `<guid>: <message>`.
    Bare {
        /// The sender's GUID.
        guid: String,
        /// The text after `: `.
        message: String,
    },
    /// Anything else (including a line without a space), kept as it came.
    Raw(String),
}

/// The fields of a full DIMS line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullLine {
    /// The sender's time.
    pub timestamp: Timestamp,
    /// The sender's host.
    pub host: String,
    /// The sender's process GUID.
    pub guid: String,
    /// The program or component.
    pub component: String,
    /// `[submodule]` of the v1.1.3 client shape, without the brackets.
    pub submodule: Option<String>,
    /// `[pid]` of the v1.1.3 client shape, without the brackets.
    pub pid: Option<String>,
    /// The severity.
    pub level: Level,
    /// The message (may be empty).
    pub message: String,
}

/// Splits off the first whitespace-delimited token.
fn token(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start_matches([' ', '\t']);
    if s.is_empty() {
        return None;
    }
    let end = s.find([' ', '\t']).unwrap_or(s.len());
    let (tok, rest) = s.split_at(end);
    Some((tok, rest))
}

fn bracketed(tok: &str) -> Option<&str> {
    tok.strip_prefix('[')?.strip_suffix(']')
}

/// Whether `s` has the 8-4-4-4-12 hex form of a UUID.
pub fn looks_like_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl LogLine {
    /// Parses one line (a trailing newline is ignored). Never fails: what fits no shape is
    /// [`LogLine::Raw`].
    pub fn parse(line: &str) -> Self {
        let line = line.trim_end_matches(['\n', '\r']);
        Self::parse_full(line)
            .map(Self::Full)
            .or_else(|| {
                let (guid, message) = line.split_once(": ")?;
                looks_like_guid(guid).then(|| Self::Bare {
                    guid: guid.to_owned(),
                    message: message.to_owned(),
                })
            })
            .unwrap_or_else(|| Self::Raw(line.to_owned()))
    }

    fn parse_full(line: &str) -> Option<FullLine> {
        let (ts, rest) = token(line)?;
        let timestamp = Timestamp::parse(ts)?;
        let (host, rest) = token(rest)?;
        let (guid, rest) = token(rest)?;
        let (component, rest) = token(rest)?;
        let (mut tok, mut rest) = token(rest)?;
        let (mut submodule, mut pid) = (None, None);
        if let Some(sub) = bracketed(tok) {
            let (p, r) = token(rest)?;
            submodule = Some(sub.to_owned());
            pid = Some(bracketed(p)?.to_owned());
            (tok, rest) = token(r)?;
        }
        let level = tok.parse().ok()?;
        let message = rest.strip_prefix([' ', '\t']).unwrap_or(rest);
        Some(FullLine {
            timestamp,
            host: host.to_owned(),
            guid: guid.to_owned(),
            component: component.to_owned(),
            submodule,
            pid,
            level,
            message: message.to_owned(),
        })
    }

    /// A new line from `identity`, stamped now in local time (as the originals did). Line
    /// breaks in the message are written as `\n` so that one event stays one line.
    pub fn new(identity: &Identity, level: Level, message: &str) -> Self {
        // Lines carry microseconds; keep the value equal to what they say.
        let now = Local::now().fixed_offset();
        let now = now
            .with_nanosecond(now.nanosecond() / 1000 * 1000)
            .unwrap_or(now);
        Self::Full(FullLine {
            timestamp: Timestamp::Zoned(now),
            host: identity.hostname.clone(),
            guid: identity.guid.clone(),
            component: identity.program.clone(),
            submodule: None,
            pid: None,
            level,
            message: one_line(message),
        })
    }

    /// The severity; lines without one count as INFO.
    pub fn level(&self) -> Level {
        match self {
            Self::Full(f) => f.level,
            _ => Level::Info,
        }
    }

    /// The sender's host, when the line names it.
    pub fn host(&self) -> Option<&str> {
        match self {
            Self::Full(f) => Some(&f.host),
            _ => None,
        }
    }

    /// The component, when the line names it.
    pub fn component(&self) -> Option<&str> {
        match self {
            Self::Full(f) => Some(&f.component),
            _ => None,
        }
    }

    /// The GUID, when the line has one.
    pub fn guid(&self) -> Option<&str> {
        match self {
            Self::Full(f) => Some(&f.guid),
            Self::Bare { guid, .. } => Some(guid),
            Self::Raw(_) => None,
        }
    }

    /// The line for display: a full line with its own timestamp converted to UTC or local
    /// time; the other shapes as they came.
    pub fn render(&self, utc: bool) -> String {
        match self {
            Self::Full(f) => f.render(&f.timestamp.render(utc)),
            Self::Bare { guid, message } => format!("{guid}: {message}"),
            Self::Raw(s) => s.clone(),
        }
    }
}

impl FullLine {
    fn render(&self, timestamp: &str) -> String {
        let mut out = format!("{timestamp} {} {} {}", self.host, self.guid, self.component);
        if let (Some(sub), Some(pid)) = (&self.submodule, &self.pid) {
            out.push_str(&format!(" [{sub}] [{pid}]"));
        }
        out.push(' ');
        out.push_str(self.level.name());
        if !self.message.is_empty() {
            out.push(' ');
            out.push_str(&self.message);
        }
        out
    }
}

impl fmt::Display for LogLine {
    /// The line as it goes on the wire (a full line keeps its sender's zone).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(full) => {
                let ts = match full.timestamp {
                    Timestamp::Zoned(t) => t.to_rfc3339_opts(SecondsFormat::Micros, false),
                    Timestamp::Naive(t) => t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
                };
                f.write_str(&full.render(&ts))
            }
            other => f.write_str(&other.render(true)),
        }
    }
}

/// The message with CR and LF escaped, so one event is one line.
pub(crate) fn one_line(message: &str) -> String {
    if message.contains(['\n', '\r']) {
        message.replace('\r', "\\r").replace('\n', "\\n")
    } else {
        message.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUID: &str = "76f1f5bb-19b2-4696-adbc-b5598cb35d1a";

    #[test]
    fn parses_the_full_shape_and_keeps_the_senders_time() {
        let l = LogLine::parse(&format!(
            "2014-11-05T17:01:53.628154-08:00 27b-6.local {GUID} logmon INFO some text here\n"
        ));
        let LogLine::Full(f) = &l else {
            panic!("{l:?}")
        };
        assert_eq!(f.host, "27b-6.local");
        assert_eq!(f.guid, GUID);
        assert_eq!(f.component, "logmon");
        assert_eq!(f.level, Level::Info);
        assert_eq!(f.message, "some text here");
        assert_eq!(f.submodule, None);
        assert_eq!(
            l.render(true),
            format!(
                "2014-11-06T01:01:53.628154+00:00 27b-6.local {GUID} logmon INFO some text here"
            )
        );
        assert_eq!(
            l.to_string(),
            format!(
                "2014-11-05T17:01:53.628154-08:00 27b-6.local {GUID} logmon INFO some text here"
            )
        );
    }

    #[test]
    fn parses_the_client_shape_with_submodule_and_pid() {
        let text = format!(
            "2014-11-05T17:01:53Z h.localdomain {GUID} anon_client [-] [4242] WARNING careful"
        );
        let l = LogLine::parse(&text);
        let LogLine::Full(f) = &l else {
            panic!("{l:?}")
        };
        assert_eq!(f.submodule.as_deref(), Some("-"));
        assert_eq!(f.pid.as_deref(), Some("4242"));
        assert_eq!(f.level, Level::Warning);
        assert_eq!(f.message, "careful");
        assert_eq!(l.render(true), text.replace("53Z", "53.000000+00:00"));
    }

    #[test]
    fn parses_bare_server_lines_and_keeps_anything_else_raw() {
        let l = LogLine::parse(&format!("{GUID}: started anon server"));
        assert_eq!(
            l,
            LogLine::Bare {
                guid: GUID.into(),
                message: "started anon server".into()
            }
        );
        assert_eq!(l.render(false), format!("{GUID}: started anon server"));
        for raw in [
            "nospacesatall",
            "",
            "x: y",
            "2014-11-05T17:01:53Z onlyhost",
            "hello world",
        ] {
            assert_eq!(LogLine::parse(raw), LogLine::Raw(raw.into()), "{raw:?}");
            assert_eq!(LogLine::parse(raw).render(true), raw);
        }
        // An unknown level makes the line raw rather than mis-parsed.
        let odd = format!("2014-11-05T17:01:53Z h {GUID} c LOUD msg");
        assert_eq!(LogLine::parse(&odd), LogLine::Raw(odd.clone()));
    }

    #[test]
    fn naive_times_and_empty_messages() {
        let l = LogLine::parse(&format!("2014-11-05T17:01:53.5 h {GUID} c DEBUG"));
        let LogLine::Full(f) = &l else {
            panic!("{l:?}")
        };
        assert_eq!(f.message, "");
        assert_eq!(
            l.render(true),
            format!("2014-11-05T17:01:53.500000 h {GUID} c DEBUG")
        );
    }

    #[test]
    fn built_lines_parse_back_and_stay_one_line() {
        let id = Identity::new("anon", "example.org");
        let l = LogLine::new(&id, Level::Error, "two\nlines\r\n");
        let wire = l.to_string();
        assert!(!wire.contains('\n'));
        let back = LogLine::parse(&wire);
        assert_eq!(back, l);
        assert_eq!(back.guid(), Some(id.guid.as_str()));
        assert_eq!(back.component(), Some("anon"));
        assert_eq!(back.level(), Level::Error);
        let LogLine::Full(f) = back else { panic!() };
        assert_eq!(f.message, "two\\nlines\\r\\n");
    }

    #[test]
    fn levels_order_and_names() {
        assert!(Level::Error.at_least(Level::Warning));
        assert!(!Level::Debug.at_least(Level::Info));
        for l in Level::ALL {
            assert_eq!(l.name().parse::<Level>().unwrap(), l);
            assert_eq!(l.number().to_string().parse::<Level>().unwrap(), l);
        }
        assert_eq!("warn".parse::<Level>().unwrap(), Level::Warning);
        assert!("loud"
            .parse::<Level>()
            .unwrap_err()
            .contains("unknown level"));
    }
}
