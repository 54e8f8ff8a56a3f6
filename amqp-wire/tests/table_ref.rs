//! Property tests: a `TableRef` over a table's octets answers exactly as the `FieldTable` decoded
//! from them (lookups, typed getters, owned forms, value by value down through nested tables and
//! arrays), shows the pairs as they are on the wire, and `TableRef::new` accepts and refuses
//! exactly what decoding a table does.
//!
//! The tables are written by hand here, not by the crate's encoder, so they can hold what it
//! never writes: a key repeated, `L` for a signed 64-bit integer, nesting past the limit.

mod common;

use amqp_wire::{FieldTable, FieldValue, Reader, ShortStr, TableRef};
use bytes::Bytes;
use common::{damaged, scalar, short_str};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// A value as it is written on the wire.
#[derive(Debug, Clone)]
enum Raw {
    /// A scalar, written with its own tag.
    Scalar(FieldValue),
    /// A signed 64-bit integer written with `L` (read as `l`).
    CapitalL(i64),
    /// An array.
    Array(Vec<Self>),
    /// A table: its pairs as written, a key possibly repeated.
    Table(Vec<(ShortStr, Self)>),
}

/// Mostly one of three one-letter keys, so that keys repeat.
fn key() -> impl Strategy<Value = ShortStr> {
    prop_oneof![
        3 => "[abc]".prop_map(|k: String| ShortStr::new(&k).unwrap()),
        1 => short_str(),
    ]
}

fn raw() -> impl Strategy<Value = Raw> {
    let leaf = prop_oneof![
        5 => scalar().prop_map(Raw::Scalar),
        1 => any::<i64>().prop_map(Raw::CapitalL),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Raw::Array),
            vec((key(), inner), 0..6).prop_map(Raw::Table),
        ]
    })
}

fn pairs() -> impl Strategy<Value = Vec<(ShortStr, Raw)>> {
    vec((key(), raw()), 0..10)
}

/// Appends what `put` writes, preceded by its length as a u32.
fn put_sized(dst: &mut Vec<u8>, put: impl FnOnce(&mut Vec<u8>)) {
    let at = dst.len();
    dst.extend_from_slice(&[0; 4]);
    put(dst);
    let len = u32::try_from(dst.len() - at - 4).unwrap();
    dst[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

fn put_pairs(dst: &mut Vec<u8>, pairs: &[(ShortStr, Raw)]) {
    for (key, value) in pairs {
        dst.push(u8::try_from(key.len()).unwrap());
        dst.extend_from_slice(key.as_bytes());
        put_raw(dst, value);
    }
}

fn put_raw(dst: &mut Vec<u8>, value: &Raw) {
    match value {
        Raw::Scalar(v) => put_scalar(dst, v),
        Raw::CapitalL(n) => {
            dst.push(b'L');
            dst.extend_from_slice(&n.to_be_bytes());
        }
        Raw::Array(values) => {
            dst.push(b'A');
            put_sized(dst, |dst| values.iter().for_each(|v| put_raw(dst, v)));
        }
        Raw::Table(pairs) => {
            dst.push(b'F');
            put_sized(dst, |dst| put_pairs(dst, pairs));
        }
    }
}

fn put_scalar(dst: &mut Vec<u8>, value: &FieldValue) {
    dst.push(value.tag());
    match value {
        FieldValue::Bool(b) => dst.push(u8::from(*b)),
        FieldValue::I8(n) => dst.extend_from_slice(&n.to_be_bytes()),
        FieldValue::U8(n) => dst.push(*n),
        FieldValue::I16(n) => dst.extend_from_slice(&n.to_be_bytes()),
        FieldValue::U16(n) => dst.extend_from_slice(&n.to_be_bytes()),
        FieldValue::I32(n) => dst.extend_from_slice(&n.to_be_bytes()),
        FieldValue::U32(n) => dst.extend_from_slice(&n.to_be_bytes()),
        FieldValue::I64(n) => dst.extend_from_slice(&n.to_be_bytes()),
        FieldValue::F32(x) => dst.extend_from_slice(&x.to_be_bytes()),
        FieldValue::F64(x) => dst.extend_from_slice(&x.to_be_bytes()),
        FieldValue::Decimal(d) => {
            dst.push(d.scale);
            dst.extend_from_slice(&d.value.to_be_bytes());
        }
        FieldValue::LongStr(b) | FieldValue::ByteArray(b) => put_sized(dst, |dst| {
            dst.extend_from_slice(b);
        }),
        FieldValue::Timestamp(t) => dst.extend_from_slice(&t.to_be_bytes()),
        FieldValue::Void => {}
        FieldValue::Array(_) | FieldValue::Table(_) => unreachable!("not a scalar"),
    }
}

/// The octets of `pairs`, without the length.
fn encode(pairs: &[(ShortStr, Raw)]) -> Vec<u8> {
    let mut wire = Vec::new();
    put_pairs(&mut wire, pairs);
    wire
}

/// What `value` decodes to.
fn owned(value: &Raw) -> FieldValue {
    match value {
        Raw::Scalar(v) => v.clone(),
        Raw::CapitalL(n) => FieldValue::I64(*n),
        Raw::Array(values) => FieldValue::Array(values.iter().map(owned).collect()),
        Raw::Table(pairs) => FieldValue::Table(owned_table(pairs)),
    }
}

/// What `pairs` decode to: inserted in order, so a repeated key keeps its first position and
/// its last value.
fn owned_table(pairs: &[(ShortStr, Raw)]) -> FieldTable {
    pairs.iter().map(|(k, v)| (k.clone(), owned(v))).collect()
}

/// Decodes `pairs` (the octets after a table's length) as a table.
fn decode(pairs: &[u8]) -> Result<FieldTable, amqp_wire::WireError> {
    let mut framed = Vec::new();
    put_sized(&mut framed, |dst| dst.extend_from_slice(pairs));
    let mut r = Reader::new(Bytes::from(framed));
    let table = r.table("field table")?;
    r.finish("field table")?;
    Ok(table)
}

/// A key no table holds (longer than a short string may be).
fn absent_key() -> String {
    "absent".repeat(50)
}

/// Walks `table` (written as `pairs`) and everything nested in it, checking at every table that
/// the view shows the pairs in wire order and answers every lookup as the owned table does, and
/// at every value that each accessor answers as the owned value's does.
fn agree(table: TableRef<'_>, pairs: &[(ShortStr, Raw)]) -> Result<(), TestCaseError> {
    let absent = absent_key();
    let mut tables = vec![(table, pairs)];
    let mut values = Vec::new();
    while !tables.is_empty() || !values.is_empty() {
        if let Some((t, pairs)) = tables.pop() {
            let owned_t = owned_table(pairs);
            prop_assert_eq!(t.into_owned(), owned_t.clone());
            prop_assert_eq!(t.is_empty(), owned_t.is_empty());
            prop_assert_eq!(t.as_bytes(), &encode(pairs)[..]);
            prop_assert_eq!(TableRef::new(t.as_bytes()), Ok(t));
            let keys: Vec<&str> = t.iter().map(|(k, _)| k).collect();
            let wire_keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
            prop_assert_eq!(keys, wire_keys);
            for ((_, value), (_, raw)) in t.iter().zip(pairs) {
                values.push((value, raw));
            }
            for key in pairs.iter().map(|(k, _)| k.as_str()).chain([&absent[..]]) {
                prop_assert_eq!(
                    t.get(key).map(|v| v.into_owned()),
                    owned_t.get(key).cloned()
                );
                prop_assert_eq!(t.contains_key(key), owned_t.contains_key(key));
                prop_assert_eq!(t.get_bool(key), owned_t.get_bool(key));
                prop_assert_eq!(t.get_i64(key), owned_t.get_i64(key));
                prop_assert_eq!(
                    t.get_f64(key).map(f64::to_bits),
                    owned_t.get_f64(key).map(f64::to_bits)
                );
                prop_assert_eq!(t.get_str(key), owned_t.get_str(key));
                prop_assert_eq!(t.get_bytes(key), owned_t.get_bytes(key).map(|b| &b[..]));
                prop_assert_eq!(t.get_timestamp(key), owned_t.get_timestamp(key));
                prop_assert_eq!(
                    t.get_table(key).map(TableRef::into_owned),
                    owned_t.get_table(key).cloned()
                );
                prop_assert_eq!(
                    t.get_array(key).map(|a| a.into_owned()),
                    owned_t.get_array(key).cloned()
                );
            }
        }
        if let Some((v, raw)) = values.pop() {
            let owned_v = owned(raw);
            prop_assert_eq!(v.into_owned(), owned_v.clone());
            prop_assert_eq!(v.tag(), owned_v.tag());
            prop_assert_eq!(v.as_bool(), owned_v.as_bool());
            prop_assert_eq!(v.as_i64(), owned_v.as_i64());
            prop_assert_eq!(
                v.as_f64().map(f64::to_bits),
                owned_v.as_f64().map(f64::to_bits)
            );
            prop_assert_eq!(v.as_str(), owned_v.as_str());
            prop_assert_eq!(v.as_bytes(), owned_v.as_bytes().map(|b| &b[..]));
            prop_assert_eq!(v.as_decimal(), owned_v.as_decimal());
            prop_assert_eq!(v.as_timestamp(), owned_v.as_timestamp());
            prop_assert_eq!(
                v.as_table().map(TableRef::into_owned),
                owned_v.as_table().cloned()
            );
            prop_assert_eq!(
                v.as_array().map(|a| a.into_owned()),
                owned_v.as_array().cloned()
            );
            prop_assert_eq!(v.is_void(), owned_v.is_void());
            match raw {
                Raw::Table(pairs) => {
                    let Some(t) = v.as_table() else {
                        return Err(TestCaseError::fail(format!("not a table: {v:?}")));
                    };
                    tables.push((t, pairs));
                }
                Raw::Array(raws) => {
                    let Some(a) = v.as_array() else {
                        return Err(TestCaseError::fail(format!("not an array: {v:?}")));
                    };
                    prop_assert_eq!(a.is_empty(), raws.is_empty());
                    prop_assert_eq!(a.iter().count(), raws.len());
                    prop_assert_eq!(Some(a.into_owned()), owned_v.as_array().cloned());
                    for (value, raw) in a.iter().zip(raws) {
                        values.push((value, raw));
                    }
                }
                Raw::Scalar(_) | Raw::CapitalL(_) => {}
            }
        }
    }
    Ok(())
}

/// A table whose only pair holds `levels` tables and arrays nested in one another (the first
/// of `tables` telling which), around a `V`: its deepest value is at depth `levels + 1`.
fn nested(levels: usize, tables: &[bool]) -> Vec<u8> {
    let mut value = b"V".to_vec();
    for level in 0..levels {
        let mut outer = Vec::new();
        if tables.get(level).copied().unwrap_or(true) {
            outer.push(b'F');
            put_sized(&mut outer, |dst| {
                dst.extend_from_slice(b"\x01k");
                dst.extend_from_slice(&value);
            });
        } else {
            outer.push(b'A');
            put_sized(&mut outer, |dst| dst.extend_from_slice(&value));
        }
        value = outer;
    }
    let mut pairs = b"\x01k".to_vec();
    pairs.extend_from_slice(&value);
    pairs
}

fn table_octets() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => pairs().prop_flat_map(|p| damaged(encode(&p))),
        1 => pairs().prop_map(|p| encode(&p)),
        1 => vec(any::<u8>(), 0..64),
        1 => (
            FieldTable::MAX_DEPTH - 4..FieldTable::MAX_DEPTH + 4,
            vec(any::<bool>(), FieldTable::MAX_DEPTH + 4),
        )
            .prop_map(|(levels, tables)| nested(levels, &tables)),
    ]
}

proptest! {
    /// A view over a table's octets answers as the table decoded from them, at every level.
    #[test]
    fn views_agree_with_decoded_tables(pairs in pairs()) {
        let wire = encode(&pairs);
        let decoded = decode(&wire).unwrap();
        prop_assert_eq!(&decoded, &owned_table(&pairs));

        let t = TableRef::new(&wire).unwrap();
        let mut framed = Vec::new();
        put_sized(&mut framed, |dst| dst.extend_from_slice(&wire));
        prop_assert_eq!(Reader::new(&framed[..]).table_ref("t").unwrap(), t);

        // Every pair as it is on the wire, in order.
        let seen: Vec<(&str, FieldValue)> = t.iter().map(|(k, v)| (k, v.into_owned())).collect();
        let written: Vec<(&str, FieldValue)> =
            pairs.iter().map(|(k, v)| (k.as_str(), owned(v))).collect();
        prop_assert_eq!(seen, written);
        prop_assert_eq!(t.into_owned(), decoded);
        agree(t, &pairs)?;
    }

    /// `TableRef::new` accepts exactly what decoding a table accepts, with the same error, and
    /// what it accepts reads as what decoding builds.
    #[test]
    fn checking_agrees_with_decoding(octets in table_octets()) {
        let checked = TableRef::new(&octets);
        let decoded = decode(&octets);
        prop_assert_eq!(checked.map(TableRef::into_owned), decoded.clone());
        let mut framed = Vec::new();
        put_sized(&mut framed, |dst| dst.extend_from_slice(&octets));
        let borrowed = Reader::new(&framed[..]).table_ref("field table");
        prop_assert_eq!(borrowed.map(|t| t.as_bytes()), decoded.map(|_| &octets[..]));
    }
}

#[test]
fn nesting_is_limited_as_when_decoding() {
    let levels = FieldTable::MAX_DEPTH - 1;
    for tables in [[true; 64], [false; 64]] {
        assert!(TableRef::new(&nested(levels, &tables)).is_ok());
        let too_deep = nested(levels + 1, &tables);
        assert_eq!(
            TableRef::new(&too_deep).map(TableRef::into_owned),
            decode(&too_deep)
        );
        assert!(TableRef::new(&too_deep).is_err());
    }
}
