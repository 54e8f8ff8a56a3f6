//! The `appdata` object of a request, and the conventions PRISEM peers use inside it.
//!
//! Flags travel as the strings `"true"`/`"false"` (anything but `"true"` is false; a JSON
//! `true` is accepted too), times as Unix seconds given as a number *or* a numeric string, and
//! files as base64 text (an absent file is `""`). Every accessor says which field was wrong and
//! why, so a service can answer a bad request with a precise error reply.

use core::fmt;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The `appdata` object of a PRISEM request or reply.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AppData(pub Map<String, Value>);

/// Why an appdata field could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppDataError {
    /// The field's name.
    pub field: String,
    /// What is wrong with it.
    pub problem: String,
}

impl AppDataError {
    /// An error about `field`.
    pub fn new(field: &str, problem: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for AppDataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "appdata field '{}': {}", self.field, self.problem)
    }
}

impl std::error::Error for AppDataError {}

/// The JSON type name of a value, for error messages.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl AppData {
    /// An empty appdata object.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value` (builder style).
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.0.insert(key.to_owned(), value.into());
        self
    }

    /// Sets `key` to the base64 form of `contents`, as PRISEM peers send files.
    pub fn with_file(self, key: &str, contents: &[u8]) -> Self {
        self.with(key, encode_base64(contents))
    }

    /// Sets the flag `key` to the string `"true"` or `"false"`.
    pub fn with_flag(self, key: &str, on: bool) -> Self {
        self.with(key, if on { "true" } else { "false" })
    }

    /// The raw value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// Whether `key` is present (and not `null`).
    pub fn contains(&self, key: &str) -> bool {
        !matches!(self.0.get(key), None | Some(Value::Null))
    }

    /// The fields' names, in the order they arrived.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// A flag: true only for the string `"true"` (or a JSON `true`); absent, `"false"` and
    /// anything else is false, as the originals read them.
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.0.get(key), Some(Value::Bool(true)))
            || matches!(self.0.get(key), Some(Value::String(s)) if s == "true")
    }

    /// A string field; `None` when absent or `null`, an error when of another type.
    pub fn string(&self, key: &str) -> Result<Option<&str>, AppDataError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(AppDataError::new(
                key,
                format!("expected a string, got {}", type_name(other)),
            )),
        }
    }

    /// A file sent as base64: absent, `null` or `""` is an empty file. ASCII whitespace inside
    /// the text is ignored (Python's `encodestring` wrapped lines at 76 characters).
    pub fn file(&self, key: &str) -> Result<Vec<u8>, AppDataError> {
        match self.string(key)? {
            None => Ok(Vec::new()),
            Some(text) => decode_base64(text).map_err(|e| AppDataError::new(key, e)),
        }
    }

    /// An integer given as a JSON number or a numeric string (`"42"`, `" 42 "`, `"42.0"`).
    /// Absent, `null` and `""` are `None`. A fractional value is truncated toward zero.
    pub fn integer(&self, key: &str) -> Result<Option<i64>, AppDataError> {
        let value = match self.0.get(key) {
            None | Some(Value::Null) => return Ok(None),
            Some(v) => v,
        };
        let parsed = match value {
            Value::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().and_then(float_to_i64))
                .ok_or_else(|| format!("number {n} is out of range")),
            Value::String(s) if s.trim().is_empty() => return Ok(None),
            Value::String(s) => parse_integer(s.trim()),
            other => Err(format!(
                "expected a number or a numeric string, got {}",
                type_name(other)
            )),
        };
        parsed.map(Some).map_err(|e| AppDataError::new(key, e))
    }

    /// A time in Unix seconds, given as a number or a numeric string (peers sent both).
    pub fn time(&self, key: &str) -> Result<Option<i64>, AppDataError> {
        self.integer(key)
    }
}

fn float_to_i64(f: f64) -> Option<i64> {
    // i64::MAX as f64 rounds up to 2^63, so the bound is exclusive.
    (-9.223_372_036_854_776e18..9.223_372_036_854_776e18)
        .contains(&f)
        .then_some(f.trunc() as i64)
}

fn parse_integer(s: &str) -> Result<i64, String> {
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    match s.parse::<f64>() {
        Ok(f) => float_to_i64(f).ok_or_else(|| format!("{s:?} is out of range")),
        Err(_) => Err(format!("{s:?} is not a number")),
    }
}

/// Encodes bytes as standard, padded base64 (what Python's `base64.b64encode` writes).
pub fn encode_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes standard base64, with or without padding, ignoring ASCII whitespace.
pub fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let decoded = if text.bytes().any(|b| b.is_ascii_whitespace()) {
        let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        engine.decode(compact)
    } else {
        engine.decode(text)
    };
    decoded.map_err(|e| format!("not valid base64 ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn appdata(v: Value) -> AppData {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn flags_are_true_only_for_true() {
        let a = appdata(json!({"a": "true", "b": "false", "c": "True", "d": true, "e": 1}));
        assert!(a.flag("a"));
        assert!(!a.flag("b"));
        assert!(!a.flag("c"));
        assert!(a.flag("d"));
        assert!(!a.flag("e"));
        assert!(!a.flag("missing"));
    }

    #[test]
    fn times_are_numbers_or_numeric_strings() {
        let a = appdata(json!({
            "n": 1388707200, "s": "1388707200", "f": 1388707200.9, "fs": " 1388707200.5 ",
            "empty": "", "null": null, "bad": "yesterday", "arr": [1], "neg": "-5"
        }));
        assert_eq!(a.time("n").unwrap(), Some(1388707200));
        assert_eq!(a.time("s").unwrap(), Some(1388707200));
        assert_eq!(a.time("f").unwrap(), Some(1388707200));
        assert_eq!(a.time("fs").unwrap(), Some(1388707200));
        assert_eq!(a.time("empty").unwrap(), None);
        assert_eq!(a.time("null").unwrap(), None);
        assert_eq!(a.time("missing").unwrap(), None);
        assert_eq!(a.time("neg").unwrap(), Some(-5));
        let e = a.time("bad").unwrap_err();
        assert_eq!(e.field, "bad");
        assert!(e.to_string().contains("not a number"), "{e}");
        assert!(a.time("arr").unwrap_err().problem.contains("an array"));
        let huge = appdata(json!({"x": "1e300"}));
        assert!(huge.time("x").unwrap_err().problem.contains("out of range"));
    }

    #[test]
    fn files_are_base64_and_absent_is_empty() {
        let a = appdata(json!({
            "data": "aGVsbG8K", "nopad": "aGk", "wrapped": "aGVs\nbG8K\n", "empty": "",
            "bad": "not base64!", "num": 5
        }));
        assert_eq!(a.file("data").unwrap(), b"hello\n");
        assert_eq!(a.file("nopad").unwrap(), b"hi");
        assert_eq!(a.file("wrapped").unwrap(), b"hello\n");
        assert_eq!(a.file("empty").unwrap(), b"");
        assert_eq!(a.file("missing").unwrap(), b"");
        assert!(a.file("bad").unwrap_err().problem.contains("base64"));
        assert!(a.file("num").unwrap_err().problem.contains("a number"));
    }

    #[test]
    fn builders_round_trip() {
        let a = AppData::new()
            .with_file("data", b"\x00\xffbinary")
            .with_flag("stats", true)
            .with("iff", "foe");
        assert_eq!(a.file("data").unwrap(), b"\x00\xffbinary");
        assert!(a.flag("stats"));
        assert_eq!(a.string("iff").unwrap(), Some("foe"));
        assert_eq!(a.keys().collect::<Vec<_>>(), ["data", "stats", "iff"]);
    }
}
