//! Every method's and property's field enumeration, checked against the spec itself.
//!
//! For each method of `spec/amqp0-9-1.xml` a payload is built here from the spec's field list
//! (a distinct value per field, reserved fields filled with non-zero junk), decoded, and its
//! `fields()` compared with what the spec says: the non-reserved fields, in order, under their
//! Rust names, each tagged with its type and carrying the value that was put on the wire.

mod common;

use amqp_codegen::model::{Field, Spec, WireType};
use amqp_wire::codec::{put_long_str, put_table};
use amqp_wire::{AmqpMethod, BasicProperties, FieldRef, FieldTable, Method, ReplyCode, ShortStr};
use bytes::{BufMut, Bytes};

fn spec() -> Spec {
    amqp_codegen::parse(amqp_codegen::AMQP_0_9_1_XML).unwrap()
}

/// The Rust name of a spec field: snake_case, `type` as `kind`.
fn rust_name(spec_name: &str) -> String {
    match spec_name {
        "type" => "kind".to_owned(),
        other => other.replace('-', "_"),
    }
}

fn is_reply_code(spec: &Spec, field: &Field) -> bool {
    field.ty == WireType::Short
        && field
            .domain
            .as_deref()
            .and_then(|d| spec.domain(d))
            .is_some_and(|d| d.is_or_extends("reply-code"))
}

/// An owned value, to compare with a `FieldRef`.
#[derive(Debug, Clone, PartialEq)]
enum Want {
    Bit(bool),
    Octet(u8),
    Short(u16),
    Long(u32),
    LongLong(u64),
    ShortStr(String),
    LongStr(Bytes),
    Table(FieldTable),
    Timestamp(u64),
    ReplyCode(u16),
}

impl From<FieldRef<'_>> for Want {
    fn from(v: FieldRef<'_>) -> Self {
        match v {
            FieldRef::Bit(b) => Self::Bit(b),
            FieldRef::Octet(n) => Self::Octet(n),
            FieldRef::Short(n) => Self::Short(n),
            FieldRef::Long(n) => Self::Long(n),
            FieldRef::LongLong(n) => Self::LongLong(n),
            FieldRef::ShortStr(s) => Self::ShortStr(s.as_str().to_owned()),
            FieldRef::LongStr(b) => Self::LongStr(b.clone()),
            FieldRef::Table(t) => Self::Table(t.clone()),
            FieldRef::Timestamp(t) => Self::Timestamp(t),
            FieldRef::ReplyCode(c) => Self::ReplyCode(c.0),
        }
    }
}

/// The value field `k` of a method gets; `bits_odd` flips which bits are set.
fn value(spec: &Spec, field: &Field, k: usize, bits_odd: bool) -> Want {
    let n = u16::try_from(k).unwrap();
    match field.ty {
        WireType::Bit => Want::Bit((k % 2 == 1) == bits_odd),
        WireType::Octet => Want::Octet(u8::try_from(k).unwrap() + 1),
        WireType::Short if is_reply_code(spec, field) => Want::ReplyCode(300 + n),
        WireType::Short => Want::Short(1000 + n),
        WireType::Long => Want::Long(100_000 + u32::from(n)),
        WireType::LongLong => Want::LongLong(10_000_000_000 + u64::from(n)),
        WireType::Timestamp => Want::Timestamp(1_700_000_000 + u64::from(n)),
        WireType::ShortStr => Want::ShortStr(field.name.clone()),
        WireType::LongStr => Want::LongStr(Bytes::from(format!("long {}", field.name))),
        WireType::Table => Want::Table(FieldTable::new().with("field", &*field.name).unwrap()),
    }
}

/// Non-zero junk for a reserved field, which must be read and then ignored.
fn junk(ty: WireType) -> Want {
    match ty {
        WireType::Bit => Want::Bit(true),
        WireType::Octet => Want::Octet(0xee),
        WireType::Short => Want::Short(0xeeee),
        WireType::Long => Want::Long(0xeeee_eeee),
        WireType::LongLong | WireType::Timestamp => Want::LongLong(u64::MAX),
        WireType::ShortStr => Want::ShortStr("junk".to_owned()),
        WireType::LongStr => Want::LongStr(Bytes::from_static(b"junk")),
        WireType::Table => Want::Table(FieldTable::new().with("junk", true).unwrap()),
    }
}

/// Class id, method id, then the values, adjacent bits packed low bit first, eight an octet.
fn payload(class_id: u16, method_id: u16, values: &[Want]) -> Bytes {
    common::method_payload(
        class_id,
        method_id,
        values,
        |v| match v {
            Want::Bit(b) => Some(*b),
            _ => None,
        },
        |dst, v| match v {
            Want::Bit(_) => unreachable!(),
            Want::Octet(n) => dst.put_u8(*n),
            Want::Short(n) | Want::ReplyCode(n) => dst.put_u16(*n),
            Want::Long(n) => dst.put_u32(*n),
            Want::LongLong(n) | Want::Timestamp(n) => dst.put_u64(*n),
            Want::ShortStr(s) => {
                dst.put_u8(u8::try_from(s.len()).unwrap());
                dst.put_slice(s.as_bytes());
            }
            Want::LongStr(b) => put_long_str(dst, b),
            Want::Table(t) => put_table(dst, t),
        },
    )
}

#[test]
fn every_method_lists_its_non_reserved_fields_with_their_values() {
    let spec = spec();
    for class in &spec.classes {
        for m in &class.methods {
            let name = format!("{}.{}", class.name, m.name);
            for bits_odd in [false, true] {
                let values: Vec<Want> = m
                    .fields
                    .iter()
                    .enumerate()
                    .map(|(k, f)| {
                        if f.reserved {
                            junk(f.ty)
                        } else {
                            value(&spec, f, k, bits_odd)
                        }
                    })
                    .collect();
                let want: Vec<(String, Want)> = m
                    .fields
                    .iter()
                    .zip(&values)
                    .filter(|(f, _)| !f.reserved)
                    .map(|(f, v)| (rust_name(&f.name), v.clone()))
                    .collect();
                let method = Method::decode(payload(class.index, m.index, &values))
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(method.name(), name);
                let got: Vec<(String, Want)> = method
                    .fields()
                    .map(|(n, v)| (n.to_owned(), Want::from(v)))
                    .collect();
                assert_eq!(got, want, "{name}");
                let names: Vec<&str> = want.iter().map(|(n, _)| n.as_str()).collect();
                assert_eq!(method.field_names(), names, "{name}");
                assert_eq!(method.field(want.len()), None, "{name}");
            }
        }
    }
}

#[test]
fn the_trait_and_the_enum_agree() {
    fn check<M: AmqpMethod + Clone>(m: &M) {
        let via_trait: Vec<_> = m.fields().map(|(n, v)| (n, Want::from(v))).collect();
        let method: Method = m.clone().into();
        let via_enum: Vec<_> = method.fields().map(|(n, v)| (n, Want::from(v))).collect();
        assert_eq!(via_trait, via_enum, "{}", M::NAME);
        assert_eq!(M::FIELD_NAMES, method.field_names());
    }
    check(&amqp_wire::basic::Return {
        reply_code: ReplyCode::NO_ROUTE,
        reply_text: ShortStr::from_static("NO_ROUTE"),
        exchange: ShortStr::from_static("ex"),
        routing_key: ShortStr::from_static("rk"),
    });
    check(&amqp_wire::queue::Declare {
        queue: ShortStr::from_static("q"),
        durable: true,
        ..Default::default()
    });
    check(&amqp_wire::confirm::Select { nowait: true });
    check(&amqp_wire::tx::Commit);
}

#[test]
fn every_basic_property_is_listed_alone_when_alone() {
    let spec = spec();
    let basic = spec.class("basic").unwrap();
    let names: Vec<String> = basic
        .properties
        .iter()
        .map(|f| rust_name(&f.name))
        .collect();
    assert_eq!(BasicProperties::FIELD_NAMES, names);
    let s = ShortStr::from_static;
    let table = FieldTable::new().with("h", 1i32).unwrap();
    let each = [
        BasicProperties::default().with_content_type(s("a")),
        BasicProperties::default().with_content_encoding(s("b")),
        BasicProperties::default().with_headers(table.clone()),
        BasicProperties::default().with_delivery_mode(2),
        BasicProperties::default().with_priority(9),
        BasicProperties::default().with_correlation_id(s("c")),
        BasicProperties::default().with_reply_to(s("d")),
        BasicProperties::default().with_expiration(s("e")),
        BasicProperties::default().with_message_id(s("f")),
        BasicProperties::default().with_timestamp(7),
        BasicProperties::default().with_kind(s("g")),
        BasicProperties::default().with_user_id(s("h")),
        BasicProperties::default().with_app_id(s("i")),
        BasicProperties::default().with_reserved(s("j")),
    ];
    assert_eq!(each.len(), names.len());
    for (i, props) in each.iter().enumerate() {
        let listed: Vec<_> = props.fields().map(|(n, v)| (n, Want::from(v))).collect();
        let [(name, v)] = listed.as_slice() else {
            panic!("property {i}: {listed:?}")
        };
        assert_eq!(*name, names[i]);
        // The flag bit of the listed property is the one `flags` sets.
        assert_eq!(props.flags(), 1 << (15 - i), "{name}");
        let want_ty = basic.properties[i].ty;
        let ok = matches!(
            (want_ty, v),
            (WireType::ShortStr, Want::ShortStr(_))
                | (WireType::Table, Want::Table(_))
                | (WireType::Octet, Want::Octet(_))
                | (WireType::Timestamp, Want::Timestamp(_))
        );
        assert!(ok, "{name}: {want_ty:?} listed as {v:?}");
    }
    assert_eq!(each[2].field(2), Some(FieldRef::Table(&table)));
    assert_eq!(each[9].field(9), Some(FieldRef::Timestamp(7)));
}
