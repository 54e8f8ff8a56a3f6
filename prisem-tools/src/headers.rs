//! Typed `key[:type]=value` arguments: message headers (`-H`) and queue or exchange arguments
//! (`--arg`).
//!
//! | type | field-table value | accepted text |
//! |---|---|---|
//! | `str` (`string`) | long string `S` | anything |
//! | `int` (`i64`, `long`) | signed 64-bit `l` | decimal integer |
//! | `i8`, `i16`, `i32`, `u8`, `u16`, `u32` | that width | decimal integer in range |
//! | `float` (`f64`, `double`) | 64-bit float `d` | `1.5`, `-2e3` |
//! | `f32` | 32-bit float `f` | as above |
//! | `bool` | boolean `t` | `true`/`false`, `yes`/`no`, `1`/`0` |
//! | `timestamp` | timestamp `T` | Unix seconds |
//! | `decimal` | decimal `D` | `12.345` (scale = digits after the point, at most 255) |
//! | `bytes` | byte array `x` | base64 |
//! | `void` | void `V` | empty |
//!
//! Headers default to `str`. Arguments default to `auto`: an integer when the text is one,
//! `true`/`false` as booleans, otherwise a string, because the broker insists on integers for
//! `x-max-length`, `x-message-ttl` and friends.
//!
//! For compatibility with rabbitmq-c's `amqp-publish -H "key: value"`, an argument with no `=`
//! whose key is followed by `": "` is a string header.
//!
//! ```
//! use prisem_tools::headers::{parse_header, DefaultType};
//! use amqp_wire::FieldValue;
//!
//! let (key, value) = parse_header("n:int=5", DefaultType::Str)?;
//! assert_eq!((key.as_str(), value), ("n", FieldValue::I64(5)));
//! # Ok::<(), prisem_tools::headers::HeaderError>(())
//! ```

use core::fmt;

use amqp_wire::{Decimal, FieldTable, FieldValue, ShortStr};
use base64::Engine as _;

/// What type a `key=value` without `:type` gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultType {
    /// A long string (message headers).
    Str,
    /// Integer, boolean or string, by the look of the text (queue and exchange arguments).
    Auto,
}

/// Why a `key[:type]=value` argument was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderError {
    /// The argument as given.
    pub input: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad header or argument {:?}: {}",
            self.input, self.reason
        )
    }
}

impl std::error::Error for HeaderError {}

/// The type names accepted after the `:`, for error messages.
pub const TYPE_NAMES: &str =
    "str, int, i8, i16, i32, i64, u8, u16, u32, float, f32, f64, bool, timestamp, decimal, bytes, void";

/// Parses one `key[:type]=value` (or rabbitmq-c's `key: value`) into a key and a value.
pub fn parse_header(
    input: &str,
    default: DefaultType,
) -> Result<(ShortStr, FieldValue), HeaderError> {
    let err = |reason: String| HeaderError {
        input: input.to_owned(),
        reason,
    };
    let (spec, text, ty) = match input.split_once('=') {
        Some((spec, text)) if !is_colon_space_form(input) => {
            let (key, ty) = match spec.rsplit_once(':') {
                Some((key, ty)) => (key, Some(ty)),
                None => (spec, None),
            };
            (key, text, ty)
        }
        _ => match input.split_once(':') {
            Some((key, text)) => (key, text.strip_prefix(' ').unwrap_or(text), Some("str")),
            None => {
                return Err(err(
                    "expected key=value, key:type=value or \"key: value\"".into()
                ))
            }
        },
    };
    if spec.is_empty() {
        return Err(err("the key is empty".into()));
    }
    let key = ShortStr::new(spec).map_err(|_| {
        err(format!(
            "the key is {} octets long; at most 255 fit",
            spec.len()
        ))
    })?;
    let value = match ty {
        Some(ty) => parse_typed(ty, text).map_err(err)?,
        None => match default {
            DefaultType::Str => FieldValue::LongStr(text.to_owned().into()),
            DefaultType::Auto => auto_value(text),
        },
    };
    Ok((key, value))
}

/// rabbitmq-c's form `key: value`: the first `:` comes before any `=` and is followed by a space.
fn is_colon_space_form(input: &str) -> bool {
    match (input.find(": "), input.find('=')) {
        (Some(colon), Some(eq)) => colon < eq && !input[..colon].contains(':'),
        (Some(_), None) => true,
        _ => false,
    }
}

fn auto_value(text: &str) -> FieldValue {
    if let Ok(n) = text.parse::<i64>() {
        FieldValue::I64(n)
    } else if text == "true" {
        FieldValue::Bool(true)
    } else if text == "false" {
        FieldValue::Bool(false)
    } else {
        FieldValue::LongStr(text.to_owned().into())
    }
}

fn int<T: core::str::FromStr>(ty: &str, text: &str) -> Result<T, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a valid {ty} (a decimal integer in range)"))
}

fn parse_typed(ty: &str, text: &str) -> Result<FieldValue, String> {
    Ok(match ty.to_ascii_lowercase().as_str() {
        "str" | "string" | "s" => FieldValue::LongStr(text.to_owned().into()),
        "int" | "i64" | "long" => FieldValue::I64(int(ty, text)?),
        "i32" => FieldValue::I32(int(ty, text)?),
        "i16" | "short" => FieldValue::I16(int(ty, text)?),
        "i8" => FieldValue::I8(int(ty, text)?),
        "u32" => FieldValue::U32(int(ty, text)?),
        "u16" => FieldValue::U16(int(ty, text)?),
        "u8" | "octet" => FieldValue::U8(int(ty, text)?),
        "float" | "f64" | "double" => FieldValue::F64(float(text)?),
        // Narrowing is the point of asking for f32.
        #[allow(clippy::cast_possible_truncation)]
        "f32" => FieldValue::F32(float(text)? as f32),
        "bool" | "boolean" => FieldValue::Bool(parse_bool(text)?),
        "timestamp" | "ts" => FieldValue::Timestamp(
            text.trim()
                .parse()
                .map_err(|_| format!("{text:?} is not a timestamp (Unix seconds, non-negative)"))?,
        ),
        "decimal" => FieldValue::Decimal(parse_decimal(text)?),
        "bytes" | "base64" => FieldValue::ByteArray(
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|e| format!("{text:?} is not base64: {e}"))?
                .into(),
        ),
        "void" | "null" => {
            if !text.is_empty() {
                return Err(format!("a void value takes no text, got {text:?}"));
            }
            FieldValue::Void
        }
        _ => return Err(format!("unknown type {ty:?}; known types: {TYPE_NAMES}")),
    })
}

fn float(text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .map_err(|_| format!("{text:?} is not a number"))
}

fn parse_bool(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "on" => Ok(true),
        "false" | "no" | "0" | "off" => Ok(false),
        _ => Err(format!(
            "{text:?} is not a boolean (true/false, yes/no, 1/0)"
        )),
    }
}

/// `-12.345` → scale 3, value -12345.
fn parse_decimal(text: &str) -> Result<Decimal, String> {
    let bad = || format!("{text:?} is not a decimal like 12.345 that fits 32 bits");
    let t = text.trim();
    let (int_part, frac) = t.split_once('.').unwrap_or((t, ""));
    let digits = int_part.trim_start_matches(['-', '+']);
    if digits.is_empty() && frac.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let scale = u8::try_from(frac.len()).map_err(|_| bad())?;
    let value: i32 = format!("{int_part}{frac}").parse().map_err(|_| bad())?;
    Ok(Decimal::new(scale, value))
}

/// Parses many arguments into one table; a later key replaces an earlier one.
pub fn parse_table<S: AsRef<str>>(
    inputs: &[S],
    default: DefaultType,
) -> Result<FieldTable, HeaderError> {
    let mut table = FieldTable::new();
    for input in inputs {
        let (key, value) = parse_header(input.as_ref(), default)?;
        table.insert_key(key, value);
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Result<(String, FieldValue), HeaderError> {
        parse_header(s, DefaultType::Str).map(|(k, v)| (k.as_str().to_owned(), v))
    }

    fn s(v: &str) -> FieldValue {
        FieldValue::LongStr(v.to_owned().into())
    }

    #[test]
    fn plain_is_a_string() {
        assert_eq!(h("a=b").unwrap(), ("a".into(), s("b")));
        assert_eq!(h("a=").unwrap(), ("a".into(), s("")));
        // Only the first `=` separates: the value may contain more.
        assert_eq!(h("q=x=1&y=2").unwrap(), ("q".into(), s("x=1&y=2")));
        assert_eq!(h("k=5").unwrap(), ("k".into(), s("5")));
    }

    #[test]
    fn typed_values() {
        assert_eq!(h("n:int=5").unwrap().1, FieldValue::I64(5));
        assert_eq!(
            h("n:int=-9223372036854775808").unwrap().1,
            FieldValue::I64(i64::MIN)
        );
        assert_eq!(h("n:i32=-7").unwrap().1, FieldValue::I32(-7));
        assert_eq!(h("n:i16=300").unwrap().1, FieldValue::I16(300));
        assert_eq!(h("n:i8=-3").unwrap().1, FieldValue::I8(-3));
        assert_eq!(h("n:u8=255").unwrap().1, FieldValue::U8(255));
        assert_eq!(h("n:u16=65535").unwrap().1, FieldValue::U16(65535));
        assert_eq!(
            h("n:u32=4000000000").unwrap().1,
            FieldValue::U32(4_000_000_000)
        );
        assert_eq!(h("f:float=1.5").unwrap().1, FieldValue::F64(1.5));
        assert_eq!(h("f:f32=0.25").unwrap().1, FieldValue::F32(0.25));
        assert_eq!(h("b:bool=true").unwrap().1, FieldValue::Bool(true));
        assert_eq!(h("b:bool=no").unwrap().1, FieldValue::Bool(false));
        assert_eq!(
            h("t:timestamp=1700000000").unwrap().1,
            FieldValue::Timestamp(1_700_000_000)
        );
        assert_eq!(
            h("d:decimal=-12.345").unwrap().1,
            FieldValue::Decimal(Decimal::new(3, -12345))
        );
        assert_eq!(
            h("d:decimal=7").unwrap().1,
            FieldValue::Decimal(Decimal::new(0, 7))
        );
        assert_eq!(
            h("x:bytes=AAH/").unwrap().1,
            FieldValue::ByteArray(bytes::Bytes::from_static(&[0, 1, 255]))
        );
        assert_eq!(h("v:void=").unwrap().1, FieldValue::Void);
        assert_eq!(h("s:str=a:b").unwrap().1, s("a:b"));
        assert_eq!(h("n:INT=1").unwrap().1, FieldValue::I64(1));
    }

    #[test]
    fn key_may_contain_colons_before_the_type() {
        assert_eq!(h("a:b:int=1").unwrap(), ("a:b".into(), FieldValue::I64(1)));
    }

    #[test]
    fn rabbitmq_c_colon_space_form() {
        assert_eq!(h("k1: v1").unwrap(), ("k1".into(), s("v1")));
        assert_eq!(h("k: a=b").unwrap(), ("k".into(), s("a=b")));
        assert_eq!(h("k:v").unwrap(), ("k".into(), s("v")));
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let e = h("n:int=five").unwrap_err();
        assert!(e.reason.contains("not a valid int"), "{e}");
        assert_eq!(e.input, "n:int=five");
        assert!(h("n:u8=256").unwrap_err().reason.contains("u8"));
        assert!(h("n:i8=-129").is_err());
        assert!(h("b:bool=maybe").unwrap_err().reason.contains("boolean"));
        assert!(h("f:float=x").unwrap_err().reason.contains("number"));
        assert!(h("t:timestamp=-1")
            .unwrap_err()
            .reason
            .contains("timestamp"));
        assert!(h("d:decimal=1.2.3").is_err());
        assert!(h("d:decimal=99999999999").is_err());
        assert!(h("d:decimal=.").is_err());
        assert!(h("x:bytes=@@").unwrap_err().reason.contains("base64"));
        assert!(h("v:void=x").is_err());
        let e = h("n:integer=1").unwrap_err();
        assert!(
            e.reason.contains("unknown type") && e.reason.contains("bool"),
            "{e}"
        );
        assert!(h("novalue").unwrap_err().reason.contains("key=value"));
        assert!(h("=v").unwrap_err().reason.contains("empty"));
        assert!(h(":int=3").unwrap_err().reason.contains("empty"));
        let long = format!("{}=v", "k".repeat(256));
        assert!(h(&long).unwrap_err().reason.contains("255"));
        assert!(format!("{}", h("n:int=x").unwrap_err()).contains("n:int=x"));
    }

    #[test]
    fn auto_default_for_arguments() {
        let a = |t: &str| parse_header(t, DefaultType::Auto).unwrap().1;
        assert_eq!(a("x-max-length=10"), FieldValue::I64(10));
        assert_eq!(a("x-single-active-consumer=true"), FieldValue::Bool(true));
        assert_eq!(a("x-queue-type=quorum"), s("quorum"));
        assert_eq!(a("x-queue-type:str=10"), s("10"));
    }

    #[test]
    fn tables_keep_order_and_last_wins() {
        let t = parse_table(&["a=1", "b:int=2", "a=3"], DefaultType::Str).unwrap();
        let entries: Vec<_> = t
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
            .collect();
        assert_eq!(
            entries,
            vec![("a".into(), s("3")), ("b".into(), FieldValue::I64(2))]
        );
        assert!(parse_table(&["a=1", "bad"], DefaultType::Str).is_err());
    }
}
