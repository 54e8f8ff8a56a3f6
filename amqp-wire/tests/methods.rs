//! Every method of the spec, by property test: payloads are built here, field by field from the
//! spec's own field list (not by the generated encoder), then decoded, checked and re-encoded.
//!
//! For each method: decode(b) names the right class and method, encode(decode(b)) == b, the
//! frame round-trips through the decoder, and one stray octet after the fields is refused.
//! Decoding in place (`MethodRef`, `FrameDecoder::decode_ref`) gives the same method, or the
//! same error, for every payload, damaged or not.

mod common;

use std::sync::OnceLock;

use amqp_codegen::model::WireType;
use amqp_wire::codec::put_table;
use amqp_wire::{FieldTable, Frame, FrameDecoder, FrameRef, Method, MethodRef, WireError};
use bytes::{BufMut, Bytes, BytesMut};
use common::{field_table, short_str};
use proptest::collection::vec;
use proptest::prelude::*;

/// What the test needs to know of one method.
#[derive(Debug, Clone)]
struct MethodSpec {
    class_id: u16,
    method_id: u16,
    name: String,
    fields: Vec<(WireType, bool)>,
}

fn methods() -> &'static [MethodSpec] {
    static METHODS: OnceLock<Vec<MethodSpec>> = OnceLock::new();
    METHODS.get_or_init(|| {
        let xml = amqp_codegen::AMQP_0_9_1_XML;
        let spec = amqp_codegen::parse(xml).expect("the spec parses");
        spec.classes
            .iter()
            .flat_map(|class| {
                class.methods.iter().map(move |m| MethodSpec {
                    class_id: class.index,
                    method_id: m.index,
                    name: format!("{}.{}", class.name, m.name),
                    fields: m.fields.iter().map(|f| (f.ty, f.reserved)).collect(),
                })
            })
            .collect()
    })
}

/// One argument's value, as it goes on the wire.
#[derive(Debug, Clone)]
enum Arg {
    Bit(bool),
    Octet(u8),
    Short(u16),
    Long(u32),
    LongLong(u64),
    ShortStr(Bytes),
    LongStr(Bytes),
    Table(FieldTable),
}

fn arg(ty: WireType, reserved: bool) -> BoxedStrategy<Arg> {
    // Reserved fields always carry their zero value; the encoder writes nothing else.
    if reserved {
        return Just(match ty {
            WireType::Bit => Arg::Bit(false),
            WireType::Octet => Arg::Octet(0),
            WireType::Short => Arg::Short(0),
            WireType::Long => Arg::Long(0),
            WireType::LongLong | WireType::Timestamp => Arg::LongLong(0),
            WireType::ShortStr => Arg::ShortStr(Bytes::new()),
            WireType::LongStr => Arg::LongStr(Bytes::new()),
            WireType::Table => Arg::Table(FieldTable::new()),
        })
        .boxed();
    }
    match ty {
        WireType::Bit => any::<bool>().prop_map(Arg::Bit).boxed(),
        WireType::Octet => any::<u8>().prop_map(Arg::Octet).boxed(),
        WireType::Short => any::<u16>().prop_map(Arg::Short).boxed(),
        WireType::Long => any::<u32>().prop_map(Arg::Long).boxed(),
        WireType::LongLong | WireType::Timestamp => any::<u64>().prop_map(Arg::LongLong).boxed(),
        WireType::ShortStr => short_str()
            .prop_map(|s| Arg::ShortStr(s.into_bytes()))
            .boxed(),
        WireType::LongStr => vec(any::<u8>(), 0..64)
            .prop_map(|v| Arg::LongStr(Bytes::from(v)))
            .boxed(),
        WireType::Table => field_table().prop_map(Arg::Table).boxed(),
    }
}

/// A method and a valid payload for it: ids, then the fields, adjacent bits packed low bit
/// first into octets of at most eight.
fn method_payload() -> impl Strategy<Value = (&'static MethodSpec, Bytes)> {
    (0..methods().len()).prop_flat_map(|i| {
        let m = &methods()[i];
        let args: Vec<BoxedStrategy<Arg>> = m.fields.iter().map(|&(t, r)| arg(t, r)).collect();
        args.prop_map(move |args| (m, payload(m, &args)))
    })
}

fn payload(m: &MethodSpec, args: &[Arg]) -> Bytes {
    common::method_payload(
        m.class_id,
        m.method_id,
        args,
        |a| match a {
            Arg::Bit(b) => Some(*b),
            _ => None,
        },
        |dst, a| match a {
            Arg::Bit(_) => unreachable!(),
            Arg::Octet(v) => dst.put_u8(*v),
            Arg::Short(v) => dst.put_u16(*v),
            Arg::Long(v) => dst.put_u32(*v),
            Arg::LongLong(v) => dst.put_u64(*v),
            Arg::ShortStr(s) => {
                dst.put_u8(s.len() as u8);
                dst.put_slice(s);
            }
            Arg::LongStr(s) => {
                dst.put_u32(s.len() as u32);
                dst.put_slice(s);
            }
            Arg::Table(t) => put_table(dst, t),
        },
    )
}

#[test]
fn the_spec_lists_every_method_the_enum_knows() {
    // A sanity check on the test's own input: RabbitMQ's 0-9-1 has 52 methods with its extensions
    // (connection.blocked/unblocked/update-secret, exchange.bind/unbind, basic.nack, confirm).
    let names: Vec<&str> = methods().iter().map(|m| m.name.as_str()).collect();
    assert!(names.len() >= 52, "{names:?}");
    for expected in [
        "connection.start",
        "connection.update-secret-ok",
        "exchange.unbind-ok",
        "basic.nack",
        "confirm.select-ok",
    ] {
        assert!(names.contains(&expected), "{expected} missing");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn every_method_round_trips((m, wire) in method_payload()) {
        let method = Method::decode(wire.clone())
            .map_err(|e| TestCaseError::fail(format!("{}: {e}", m.name)))?;
        prop_assert_eq!(method.class_id(), m.class_id);
        prop_assert_eq!(method.method_id(), m.method_id);
        prop_assert_eq!(method.name(), m.name.as_str());

        let mut again = BytesMut::new();
        method.encode(&mut again);
        prop_assert_eq!(&again[..], &wire[..], "{}", m.name);

        let frame = Frame::Method { channel: 9, method };
        let mut dst = BytesMut::new();
        frame.encode(&mut dst).unwrap();
        let decoded = FrameDecoder::new(0).decode(&mut dst).unwrap();
        prop_assert_eq!(decoded, Some(frame));
        prop_assert!(dst.is_empty());
    }

    /// In place, every method decodes to what `Method::decode` gives (copied), alone and in a
    /// frame; damaged (an octet changed, cut short, or an octet too many), to the same error.
    #[test]
    fn every_method_decodes_in_place_as_it_decodes(
        (m, wire) in method_payload(),
        damage in (any::<prop::sample::Index>(), any::<u8>(), 0..4u8),
    ) {
        let owned = Method::decode(wire.clone()).map_err(|e| TestCaseError::fail(format!("{}: {e}", m.name)))?;
        let in_place = MethodRef::decode(&wire).map_err(|e| TestCaseError::fail(format!("{}: {e}", m.name)))?;
        prop_assert_eq!(in_place.name(), m.name.as_str());
        prop_assert_eq!(in_place.clone().into_owned(), owned.clone());

        let mut framed = BytesMut::new();
        Frame::Method { channel: 9, method: owned }.encode(&mut framed).unwrap();
        let mut src = &framed[..];
        let frame = FrameDecoder::new(0).decode_ref(&mut src).unwrap();
        prop_assert_eq!(frame, Some(FrameRef::Method { channel: 9, method: in_place }));
        prop_assert!(src.is_empty());

        let (at, octet, how) = damage;
        let mut bad = wire.to_vec();
        match how {
            0 => {
                let at = at.index(bad.len());
                bad[at] = octet;
            }
            1 => bad.truncate(at.index(bad.len())),
            _ => bad.push(octet),
        }
        prop_assert_eq!(
            MethodRef::decode(&bad).map(MethodRef::into_owned),
            Method::decode(Bytes::from(bad.clone())),
            "{}", m.name
        );
    }

    #[test]
    fn every_method_refuses_trailing_bytes((m, wire) in method_payload(), extra in any::<u8>()) {
        let mut longer = BytesMut::from(&wire[..]);
        longer.put_u8(extra);
        match Method::decode(longer.freeze()) {
            Err(WireError::TrailingBytes { count: 1, .. }) => {}
            other => prop_assert!(false, "{}: {:?}", m.name, other),
        }
    }

    #[test]
    fn every_method_refuses_truncation((m, wire) in method_payload(), cut in any::<prop::sample::Index>()) {
        let cut = cut.index(wire.len());
        match Method::decode(wire.slice(..cut)) {
            Err(WireError::Truncated { .. }) => {}
            other => prop_assert!(false, "{} cut at {}: {:?}", m.name, cut, other),
        }
    }
}
