//! Proptest strategies shared by the property tests.
#![allow(dead_code, unreachable_pub)]

use amqp_wire::{BasicProperties, Decimal, FieldArray, FieldTable, FieldValue, ShortStr};
use bytes::{BufMut, Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;

/// `encoded` (properties, a table…), maybe damaged: one octet changed, or cut short.
pub fn damaged(encoded: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = encoded.len();
    (0..len.max(1), any::<u8>(), 0..=len, any::<bool>()).prop_map(move |(at, octet, cut, flip)| {
        let mut data = encoded.clone();
        if flip {
            if let Some(b) = data.get_mut(at) {
                *b = octet;
            }
        } else {
            data.truncate(cut);
        }
        data
    })
}

pub fn short_str() -> impl Strategy<Value = ShortStr> {
    // Mostly short ASCII, sometimes any UTF-8 up to the 255-octet limit.
    prop_oneof![
        4 => "[a-z0-9.\\-]{0,12}",
        1 => "\\PC{0,60}",
    ]
    .prop_map(|s: String| {
        let mut end = s.len().min(ShortStr::MAX_LEN);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        ShortStr::new(&s[..end]).unwrap()
    })
}

pub fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

pub fn scalar() -> impl Strategy<Value = FieldValue> {
    prop_oneof![
        any::<bool>().prop_map(FieldValue::Bool),
        any::<i8>().prop_map(FieldValue::I8),
        any::<u8>().prop_map(FieldValue::U8),
        any::<i16>().prop_map(FieldValue::I16),
        any::<u16>().prop_map(FieldValue::U16),
        any::<i32>().prop_map(FieldValue::I32),
        any::<u32>().prop_map(FieldValue::U32),
        any::<i64>().prop_map(FieldValue::I64),
        // Any bit pattern, NaNs included: equality is bitwise.
        any::<u32>().prop_map(|b| FieldValue::F32(f32::from_bits(b))),
        any::<u64>().prop_map(|b| FieldValue::F64(f64::from_bits(b))),
        (any::<u8>(), any::<i32>()).prop_map(|(s, v)| FieldValue::Decimal(Decimal::new(s, v))),
        bytes(40).prop_map(FieldValue::LongStr),
        any::<u64>().prop_map(FieldValue::Timestamp),
        Just(FieldValue::Void),
        bytes(40).prop_map(FieldValue::ByteArray),
    ]
}

pub fn table_of(value: impl Strategy<Value = FieldValue>) -> impl Strategy<Value = FieldTable> {
    vec((short_str(), value), 0..8).prop_map(|pairs| pairs.into_iter().collect())
}

pub fn field_value() -> impl Strategy<Value = FieldValue> {
    scalar().prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..8).prop_map(|v| FieldValue::Array(FieldArray::from(v))),
            table_of(inner).prop_map(FieldValue::Table),
        ]
    })
}

pub fn field_table() -> impl Strategy<Value = FieldTable> {
    table_of(field_value())
}

pub fn properties() -> impl Strategy<Value = BasicProperties> {
    (
        (
            proptest::option::of(short_str()),
            proptest::option::of(short_str()),
            proptest::option::of(field_table()),
            proptest::option::of(any::<u8>()),
            proptest::option::of(any::<u8>()),
            proptest::option::of(short_str()),
            proptest::option::of(short_str()),
        ),
        (
            proptest::option::of(short_str()),
            proptest::option::of(short_str()),
            proptest::option::of(any::<u64>()),
            proptest::option::of(short_str()),
            proptest::option::of(short_str()),
            proptest::option::of(short_str()),
            proptest::option::of(short_str()),
        ),
    )
        .prop_map(
            |(
                (
                    content_type,
                    content_encoding,
                    headers,
                    delivery_mode,
                    priority,
                    correlation_id,
                    reply_to,
                ),
                (expiration, message_id, timestamp, kind, user_id, app_id, reserved),
            )| BasicProperties {
                content_type,
                content_encoding,
                headers,
                delivery_mode,
                priority,
                correlation_id,
                reply_to,
                expiration,
                message_id,
                timestamp,
                kind,
                user_id,
                app_id,
                reserved,
            },
        )
}

/// A method frame's payload laid out by hand: class id, method id, then the values in order,
/// each run of adjacent bits packed into octets low bit first, eight to an octet. `bit` tells a
/// bit value (and which) from the others; `put` writes any other value.
pub fn method_payload<T>(
    class_id: u16,
    method_id: u16,
    values: &[T],
    bit: impl Fn(&T) -> Option<bool>,
    mut put: impl FnMut(&mut BytesMut, &T),
) -> Bytes {
    let mut dst = BytesMut::new();
    dst.put_u16(class_id);
    dst.put_u16(method_id);
    let mut bits: Option<(u8, u8)> = None; // (octet, bits used)
    for v in values {
        if let Some(b) = bit(v) {
            let (octet, used) = match bits {
                Some((octet, used)) if used < 8 => (octet, used),
                Some((octet, _)) => {
                    dst.put_u8(octet);
                    (0, 0)
                }
                None => (0, 0),
            };
            bits = Some((octet | (u8::from(b) << used), used + 1));
            continue;
        }
        if let Some((octet, _)) = bits.take() {
            dst.put_u8(octet);
        }
        put(&mut dst, v);
    }
    if let Some((octet, _)) = bits {
        dst.put_u8(octet);
    }
    dst.freeze()
}
