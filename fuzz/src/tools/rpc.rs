//! The PRISEM RPC envelope and its appdata conventions.

use prisem_tools::rpc::{decode_base64, encode_base64, AppData, Envelope, Reply};
use serde_json::Value;

/// JSON values equal, numbers compared as `f64` to within a rounding step (the JSON parser
/// does not promise to read a float back to the last bit).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if x.is_f64() || y.is_f64() {
                let (x, y) = (
                    x.as_f64().unwrap_or(f64::NAN),
                    y.as_f64().unwrap_or(f64::NAN),
                );
                x == y || (x - y).abs() <= f64::EPSILON * 4.0 * x.abs().max(y.abs())
            } else {
                x == y
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((ka, va), (kb, vb))| ka == kb && json_eq(va, vb))
        }
        _ => a == b,
    }
}

fn check_appdata(appdata: &AppData) {
    for key in appdata.keys() {
        let value = appdata.get(key);
        let _ = (appdata.flag(key), appdata.contains(key));
        let string = appdata.string(key);
        if let Some(Value::String(s)) = value {
            assert_eq!(string, Ok(Some(s.as_str())));
        }
        if let Ok(bytes) = appdata.file(key) {
            // A file that decodes re-encodes to base64 that decodes to the same octets.
            assert_eq!(decode_base64(&encode_base64(&bytes)).as_ref(), Ok(&bytes));
        }
        let integer = appdata.integer(key);
        assert_eq!(appdata.time(key), integer);
        match value {
            Some(Value::Number(n)) if n.as_i64().is_some() => {
                assert_eq!(integer, Ok(n.as_i64()), "integer {key}");
            }
            Some(Value::String(s)) => {
                if let Ok(n) = s.trim().parse::<i64>() {
                    assert_eq!(integer, Ok(Some(n)), "integer {key} from {s:?}");
                }
            }
            _ => {}
        }
        if let Err(e) = &integer {
            assert_eq!(e.field, key, "error names another field");
        }
    }
}

/// A message body as a PRISEM server receives it.
///
/// Checks that an envelope that parses writes JSON that parses to the same envelope (JSON
/// numbers compared as numbers); that every appdata accessor answers without panicking and
/// agrees with the raw value (numbers and numeric strings as integers, files as base64 that
/// re-encodes to itself); that a reply read from the appdata survives `to_appdata` →
/// `from_appdata`; and that base64 text that decodes re-encodes to the same octets.
pub fn check_rpc_envelope(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(bytes) = decode_base64(text) {
            assert_eq!(decode_base64(&encode_base64(&bytes)).as_ref(), Ok(&bytes));
        }
    }
    let env = match Envelope::parse(data) {
        Ok(env) => env,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let json = env.to_json();
    let again = match Envelope::parse(&json) {
        Ok(a) => a,
        Err(e) => panic!("our own envelope does not parse: {e}"),
    };
    let same = json_eq(
        &Value::Object(env.appdata.0.clone()),
        &Value::Object(again.appdata.0.clone()),
    ) && Envelope {
        appdata: AppData::new(),
        ..env.clone()
    } == Envelope {
        appdata: AppData::new(),
        ..again.clone()
    };
    assert!(same, "envelope changed through JSON: {env:?} vs {again:?}");
    check_appdata(&env.appdata);
    if let Ok(reply) = Reply::from_appdata(&env.appdata) {
        assert_eq!(Reply::from_appdata(&reply.to_appdata()), Ok(reply));
    }
}
