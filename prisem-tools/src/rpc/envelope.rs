//! The JSON envelope every PRISEM message travels in, and the reply a service gives.

use core::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::appdata::{encode_base64, type_name, AppData, AppDataError};
use crate::identity::Identity;

/// The PRISEM protocol version our programs speak; it names the queues (`anon_0.5.5`).
pub const PROTOCOL_VERSION: &str = "0.5.5";

/// One PRISEM message: the service's `appdata` and informational fields about the sender.
///
/// Servers read only `appdata`. The other fields were never validated by the originals (2014
/// peers sent `"protocolver": "0.5"`), so [`Envelope::parse`] accepts any value for them and
/// keeps what it can.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// The request or reply proper.
    pub appdata: AppData,
    /// The sender's short host name + `.` + `RPC_DOMAIN`.
    pub hostname: String,
    /// The sending program's service name (`anon`, `logmon`, …).
    pub name: String,
    /// The sender's process id.
    pub pid: u32,
    /// The AMQP library of the sender (the originals: pika's version).
    pub pika_version: String,
    /// The sender's operating system build.
    pub platform: String,
    /// The PRISEM protocol version.
    pub protocolver: String,
    /// The sender's release.
    pub release: String,
    /// When it was sent, in Unix seconds.
    pub time: i64,
}

/// Why a message body is not a PRISEM envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvelopeError {
    /// The body is not JSON (or not UTF-8).
    Json(String),
    /// The body is JSON but not an object.
    NotAnObject(&'static str),
    /// There is no `appdata` object.
    NoAppData,
    /// `appdata` is not an object.
    AppDataNotAnObject(&'static str),
}

impl fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Json(e) => write!(f, "request is not valid JSON: {e}"),
            Self::NotAnObject(t) => write!(f, "request is {t}, not a JSON object"),
            Self::NoAppData => f.write_str("request has no 'appdata' object"),
            Self::AppDataNotAnObject(t) => write!(f, "request 'appdata' is {t}, not an object"),
        }
    }
}

impl std::error::Error for EnvelopeError {}

impl Envelope {
    /// An envelope from `identity` carrying `appdata`, stamped with the current time.
    pub fn new(identity: &Identity, appdata: AppData) -> Self {
        Self {
            appdata,
            hostname: identity.hostname.clone(),
            name: identity.program.clone(),
            pid: identity.pid,
            pika_version: identity.library.clone(),
            platform: identity.platform.clone(),
            protocolver: PROTOCOL_VERSION.to_owned(),
            release: identity.release.clone(),
            time: crate::identity::unix_now(),
        }
    }

    /// The JSON body.
    pub fn to_json(&self) -> Vec<u8> {
        // ok: serializing strings, numbers and a JSON map cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses a message body. Only `appdata` must be well formed; the informational fields are
    /// taken when they have the expected type and left empty (or 0) otherwise.
    pub fn parse(body: &[u8]) -> Result<Self, EnvelopeError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| EnvelopeError::Json(e.to_string()))?;
        let Value::Object(mut map) = value else {
            return Err(EnvelopeError::NotAnObject(type_name(&value)));
        };
        let appdata = match map.remove("appdata") {
            None | Some(Value::Null) => return Err(EnvelopeError::NoAppData),
            Some(Value::Object(a)) => AppData(a),
            Some(other) => return Err(EnvelopeError::AppDataNotAnObject(type_name(&other))),
        };
        let text = |map: &Map<String, Value>, key: &str| match map.get(key) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        let number = |map: &Map<String, Value>, key: &str| match map.get(key) {
            Some(Value::Number(n)) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        };
        Ok(Self {
            hostname: text(&map, "hostname"),
            name: text(&map, "name"),
            pid: number(&map, "pid")
                .and_then(|p| u32::try_from(p).ok())
                .unwrap_or(0),
            pika_version: text(&map, "pika_version"),
            platform: text(&map, "platform"),
            protocolver: text(&map, "protocolver"),
            release: text(&map, "release"),
            time: number(&map, "time").unwrap_or(0),
            appdata,
        })
    }
}

/// A service's answer: the exit status and the two output streams of the work it did.
///
/// On the wire it is the appdata `{"retcode": int, "stdout": base64, "stderr": base64}`,
/// an empty stream being `""`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    /// 0 for success; anything else is an error (the client exits with it).
    pub retcode: i32,
    /// What the client prints on standard output.
    pub stdout: Vec<u8>,
    /// What the client prints on standard error.
    pub stderr: Vec<u8>,
}

impl Reply {
    /// A successful reply with `stdout`.
    pub fn ok(stdout: impl Into<Vec<u8>>) -> Self {
        Self {
            retcode: 0,
            stdout: stdout.into(),
            stderr: Vec::new(),
        }
    }

    /// An error reply: `retcode` and the reason on standard error (a newline is added when
    /// missing).
    pub fn error(retcode: i32, reason: impl fmt::Display) -> Self {
        let mut stderr = reason.to_string().into_bytes();
        if stderr.last() != Some(&b'\n') {
            stderr.push(b'\n');
        }
        Self {
            retcode,
            stdout: Vec::new(),
            stderr,
        }
    }

    /// The reply as appdata.
    pub fn to_appdata(&self) -> AppData {
        let stream = |bytes: &[u8]| {
            if bytes.is_empty() {
                String::new()
            } else {
                encode_base64(bytes)
            }
        };
        AppData::new()
            .with("retcode", self.retcode)
            .with("stdout", stream(&self.stdout))
            .with("stderr", stream(&self.stderr))
    }

    /// Reads a reply from appdata; `retcode` may be a number or a numeric string.
    pub fn from_appdata(appdata: &AppData) -> Result<Self, AppDataError> {
        let retcode = appdata
            .integer("retcode")?
            .ok_or_else(|| AppDataError::new("retcode", "missing"))?;
        let retcode = i32::try_from(retcode)
            .map_err(|_| AppDataError::new("retcode", format!("{retcode} is out of range")))?;
        Ok(Self {
            retcode,
            stdout: appdata.file("stdout")?,
            stderr: appdata.file("stderr")?,
        })
    }

    /// Whether this reply reports success.
    pub fn is_ok(&self) -> bool {
        self.retcode == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_takes_appdata_and_tolerates_odd_informational_fields() {
        let body = json!({
            "appdata": {"data": "aGk="}, "hostname": "h.localdomain", "name": "anon",
            "pid": "4384", "protocolver": 0.5, "release": "0.5.5", "time": 1413590832.7
        });
        let env = Envelope::parse(body.to_string().as_bytes()).unwrap();
        assert_eq!(env.appdata.file("data").unwrap(), b"hi");
        assert_eq!(env.pid, 4384);
        assert_eq!(env.protocolver, "0.5");
        assert_eq!(env.time, 1413590832);
        assert_eq!(env.platform, "");
    }

    #[test]
    fn parse_errors_say_what_is_wrong() {
        let cases: [(&[u8], &str); 5] = [
            (b"{not json", "not valid JSON"),
            (b"[1,2]", "an array, not a JSON object"),
            (b"{\"name\":\"x\"}", "no 'appdata'"),
            (b"{\"appdata\":\"x\"}", "'appdata' is a string"),
            (b"\xff\xfe", "not valid JSON"),
        ];
        for (body, want) in cases {
            let e = Envelope::parse(body).unwrap_err().to_string();
            assert!(e.contains(want), "{e:?} lacks {want:?}");
        }
    }

    #[test]
    fn envelope_json_has_the_contract_fields() {
        let id = Identity::for_program("anon");
        let env = Envelope::new(&id, AppData::new().with("x", 1));
        let v: Value = serde_json::from_slice(&env.to_json()).unwrap();
        for key in [
            "appdata",
            "hostname",
            "name",
            "pid",
            "pika_version",
            "platform",
            "protocolver",
            "release",
            "time",
        ] {
            assert!(v.get(key).is_some(), "{key} missing in {v}");
        }
        assert_eq!(v["protocolver"], "0.5.5");
        assert_eq!(v["name"], "anon");
        assert!(v["time"].is_i64());
        assert_eq!(Envelope::parse(&env.to_json()).unwrap(), env);
    }

    #[test]
    fn reply_round_trips_and_empty_streams_are_empty_strings() {
        let r = Reply {
            retcode: 3,
            stdout: b"out".to_vec(),
            stderr: Vec::new(),
        };
        let a = r.to_appdata();
        assert_eq!(
            serde_json::to_value(&a).unwrap(),
            json!({"retcode": 3, "stdout": "b3V0", "stderr": ""})
        );
        assert_eq!(Reply::from_appdata(&a).unwrap(), r);
        let e = Reply::error(1, "Error: nope");
        assert_eq!(e.stderr, b"Error: nope\n");
        assert!(!e.is_ok());
    }
}
