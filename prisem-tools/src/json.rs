//! The stable JSON forms the tool prints: field values, message properties and deliveries.
//!
//! Field-table values map to JSON this way:
//!
//! | value | JSON |
//! |---|---|
//! | boolean | `true` / `false` |
//! | any integer | number |
//! | `f32`, `f64` | number (`"NaN"`, `"inf"`, `"-inf"` as strings, which JSON cannot hold as numbers) |
//! | decimal | string, e.g. `"-12.345"` |
//! | long string | string when UTF-8, else base64 string |
//! | byte array | base64 string |
//! | timestamp | integer (Unix seconds) |
//! | array | array |
//! | table | object (keys in wire order) |
//! | void | `null` |
//!
//! Method fields and message properties ([`FieldRef`]s) map the same way: bits to booleans,
//! integers, timestamps and reply codes to numbers, short strings to strings, long strings
//! to strings when UTF-8 and base64 otherwise, tables to objects. They are named by
//! [`field_name`] and [`property_name`].
//!
//! A delivery is `{"exchange","routing_key","redelivered","delivery_tag","properties":{…},
//! "body":"…"}`, with `"body_base64"` instead of `"body"` when the body is not UTF-8. Only the
//! properties that are set appear, under their snake_case names (`content_type`, …, `type`).

use amqp_wire::{BasicProperties, Decimal, FieldRef, FieldTable, FieldValue};
use base64::Engine as _;
use serde_json::{Map, Number, Value};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn float(v: f64) -> Value {
    match Number::from_f64(v) {
        Some(n) => Value::Number(n),
        None if v.is_nan() => Value::String("NaN".into()),
        None if v > 0.0 => Value::String("inf".into()),
        None => Value::String("-inf".into()),
    }
}

/// A decimal as text: `Decimal { scale: 3, value: -12345 }` is `"-12.345"`.
pub fn decimal_string(d: Decimal) -> String {
    let digits = d.value.unsigned_abs().to_string();
    let sign = if d.value < 0 { "-" } else { "" };
    let scale = usize::from(d.scale);
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int_part, frac) = padded.split_at(padded.len() - scale);
    format!("{sign}{int_part}.{frac}")
}

/// A field value as JSON.
pub fn field_value(value: &FieldValue) -> Value {
    match value {
        FieldValue::Bool(b) => Value::Bool(*b),
        FieldValue::I8(v) => Value::from(*v),
        FieldValue::U8(v) => Value::from(*v),
        FieldValue::I16(v) => Value::from(*v),
        FieldValue::U16(v) => Value::from(*v),
        FieldValue::I32(v) => Value::from(*v),
        FieldValue::U32(v) => Value::from(*v),
        FieldValue::I64(v) => Value::from(*v),
        FieldValue::F32(v) => float(f64::from(*v)),
        FieldValue::F64(v) => float(*v),
        FieldValue::Decimal(d) => Value::String(decimal_string(*d)),
        FieldValue::LongStr(s) => match core::str::from_utf8(s) {
            Ok(text) => Value::String(text.to_owned()),
            Err(_) => Value::String(b64(s)),
        },
        FieldValue::Array(a) => Value::Array(a.iter().map(field_value).collect()),
        FieldValue::Timestamp(t) => Value::from(*t),
        FieldValue::Table(t) => Value::Object(table(t)),
        FieldValue::Void => Value::Null,
        FieldValue::ByteArray(b) => Value::String(b64(b)),
    }
}

/// A field table as a JSON object, keys in wire order.
pub fn table(table: &FieldTable) -> Map<String, Value> {
    table
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), field_value(v)))
        .collect()
}

/// Text that is either UTF-8 or shown as base64 (for long strings outside tables).
pub fn long_str(bytes: &[u8]) -> Value {
    match core::str::from_utf8(bytes) {
        Ok(text) => Value::String(text.to_owned()),
        Err(_) => Value::String(b64(bytes)),
    }
}

/// A method field's or property's value as JSON (see the module docs).
pub fn field_ref(value: FieldRef<'_>) -> Value {
    match value {
        FieldRef::Bit(b) => Value::Bool(b),
        FieldRef::Octet(v) => Value::from(v),
        FieldRef::Short(v) => Value::from(v),
        FieldRef::Long(v) => Value::from(v),
        FieldRef::LongLong(v) | FieldRef::Timestamp(v) => Value::from(v),
        FieldRef::ShortStr(s) => Value::String(s.as_str().to_owned()),
        FieldRef::LongStr(b) => long_str(b),
        FieldRef::Table(t) => Value::Object(table(t)),
        FieldRef::ReplyCode(c) => Value::from(c.0),
    }
}

/// The JSON name of a method field, from its Rust name: the same, except `kind`, which is
/// the specification's `type`.
pub fn field_name(rust_name: &str) -> &str {
    match rust_name {
        "kind" => "type",
        other => other,
    }
}

/// The JSON name of a content property, from its Rust name: as [`field_name`], and the last
/// property, which RabbitMQ's definition calls `reserved`, is `cluster_id`, its name in AMQP
/// 0-9-1.
pub fn property_name(rust_name: &str) -> &str {
    match rust_name {
        "reserved" => "cluster_id",
        other => field_name(other),
    }
}

/// The set properties as a JSON object, in flag order, named by [`property_name`]; unset
/// ones are left out.
pub fn properties(p: &BasicProperties) -> Map<String, Value> {
    p.fields()
        .map(|(name, value)| (property_name(name).to_owned(), field_ref(value)))
        .collect()
}

/// Puts the body into `obj` as `"body"` (UTF-8 text) or `"body_base64"`.
pub fn insert_body(obj: &mut Map<String, Value>, body: &[u8]) {
    match core::str::from_utf8(body) {
        Ok(text) => obj.insert("body".into(), Value::String(text.to_owned())),
        Err(_) => obj.insert("body_base64".into(), Value::String(b64(body))),
    };
}

/// What a delivery line is made of; borrowed, so callers need not copy anything.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryView<'a> {
    /// The exchange the message was published to.
    pub exchange: &'a str,
    /// The routing key it was published with.
    pub routing_key: &'a str,
    /// Whether it was delivered before.
    pub redelivered: bool,
    /// The delivery tag on this channel.
    pub delivery_tag: u64,
    /// The message properties.
    pub properties: &'a BasicProperties,
    /// The body.
    pub body: &'a [u8],
}

/// A delivery as one JSON object (see the module docs for the shape).
pub fn delivery(d: &DeliveryView<'_>) -> Value {
    let mut m = Map::new();
    m.insert("exchange".into(), Value::String(d.exchange.to_owned()));
    m.insert(
        "routing_key".into(),
        Value::String(d.routing_key.to_owned()),
    );
    m.insert("redelivered".into(), Value::Bool(d.redelivered));
    m.insert("delivery_tag".into(), Value::from(d.delivery_tag));
    m.insert("properties".into(), Value::Object(properties(d.properties)));
    insert_body(&mut m, d.body);
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use amqp_wire::{FieldArray, ShortStr};
    use bytes::Bytes;
    use serde_json::json;

    #[test]
    fn every_field_value_kind() {
        let cases: Vec<(FieldValue, Value)> = vec![
            (FieldValue::Bool(true), json!(true)),
            (FieldValue::I8(-8), json!(-8)),
            (FieldValue::U8(200), json!(200)),
            (FieldValue::I16(-300), json!(-300)),
            (FieldValue::U16(60000), json!(60000)),
            (FieldValue::I32(-70000), json!(-70000)),
            (FieldValue::U32(4_000_000_000), json!(4_000_000_000u32)),
            (FieldValue::I64(i64::MIN), json!(i64::MIN)),
            (FieldValue::F32(0.5), json!(0.5)),
            (FieldValue::F64(-2.25), json!(-2.25)),
            (FieldValue::F64(f64::NAN), json!("NaN")),
            (FieldValue::F64(f64::INFINITY), json!("inf")),
            (FieldValue::F32(f32::NEG_INFINITY), json!("-inf")),
            (
                FieldValue::Decimal(Decimal::new(3, -12345)),
                json!("-12.345"),
            ),
            (FieldValue::Decimal(Decimal::new(2, 5)), json!("0.05")),
            (FieldValue::Decimal(Decimal::new(0, 42)), json!("42")),
            (
                FieldValue::Decimal(Decimal::new(1, i32::MIN)),
                json!("-214748364.8"),
            ),
            (FieldValue::LongStr(Bytes::from_static(b"hi")), json!("hi")),
            (
                FieldValue::LongStr(Bytes::from_static(&[0xff, 0])),
                json!("/wA="),
            ),
            (
                FieldValue::ByteArray(Bytes::from_static(b"hi")),
                json!("aGk="),
            ),
            (
                FieldValue::Timestamp(1_700_000_000),
                json!(1_700_000_000u64),
            ),
            (FieldValue::Void, Value::Null),
            (
                FieldValue::Array(FieldArray::from(vec![
                    FieldValue::I32(1),
                    FieldValue::Void,
                    FieldValue::from("x"),
                ])),
                json!([1, null, "x"]),
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(field_value(&value), expected, "{value:?}");
        }
    }

    #[test]
    fn nested_tables_keep_key_order() {
        let inner = FieldTable::new()
            .with("z", 1i32)
            .unwrap()
            .with("a", true)
            .unwrap();
        let t = FieldTable::new()
            .with("b", inner)
            .unwrap()
            .with("a", "s")
            .unwrap();
        let v = Value::Object(table(&t));
        assert_eq!(v, json!({"b": {"z": 1, "a": true}, "a": "s"}));
        assert_eq!(v.to_string(), r#"{"b":{"z":1,"a":true},"a":"s"}"#);
    }

    #[test]
    fn only_set_properties_appear() {
        assert_eq!(
            Value::Object(properties(&BasicProperties::default())),
            json!({})
        );
        let p = BasicProperties {
            content_type: Some(ShortStr::from_static("text/plain")),
            delivery_mode: Some(2),
            kind: Some(ShortStr::from_static("order")),
            ..Default::default()
        };
        assert_eq!(
            Value::Object(properties(&p)),
            json!({"content_type": "text/plain", "delivery_mode": 2, "type": "order"})
        );
    }

    #[test]
    fn every_property_by_name() {
        let s = ShortStr::from_static;
        let p = BasicProperties {
            content_type: Some(s("application/json")),
            content_encoding: Some(s("gzip")),
            headers: Some(FieldTable::new().with("n", 5i64).unwrap()),
            delivery_mode: Some(1),
            priority: Some(7),
            correlation_id: Some(s("c1")),
            reply_to: Some(s("rq")),
            expiration: Some(s("60000")),
            message_id: Some(s("m1")),
            timestamp: Some(1_700_000_001),
            kind: Some(s("t")),
            user_id: Some(s("guest")),
            app_id: Some(s("app")),
            reserved: Some(s("cl")),
        };
        assert_eq!(
            Value::Object(properties(&p)).to_string(),
            r#"{"content_type":"application/json","content_encoding":"gzip","headers":{"n":5},"delivery_mode":1,"priority":7,"correlation_id":"c1","reply_to":"rq","expiration":"60000","message_id":"m1","timestamp":1700000001,"type":"t","user_id":"guest","app_id":"app","cluster_id":"cl"}"#
        );
    }

    #[test]
    fn body_or_body_base64() {
        let p = BasicProperties::default();
        let mut view = DeliveryView {
            exchange: "ex",
            routing_key: "rk",
            redelivered: true,
            delivery_tag: 9,
            properties: &p,
            body: "héllo\n".as_bytes(),
        };
        assert_eq!(
            delivery(&view).to_string(),
            r#"{"exchange":"ex","routing_key":"rk","redelivered":true,"delivery_tag":9,"properties":{},"body":"héllo\n"}"#
        );
        view.body = &[0xc3, 0x28];
        let v = delivery(&view);
        assert_eq!(v["body_base64"], json!("wyg="));
        assert!(v.get("body").is_none());
        view.body = b"";
        assert_eq!(delivery(&view)["body"], json!(""));
    }
}
