//! The protocol's constants, reply codes, methods and content properties, generated at build
//! time by `amqp-codegen` from `spec/amqp0-9-1.xml` (or the file `$AMQP_SPEC` names).
//!
//! What is here:
//! - [`constants`](self::constants): frame types, `FRAME_END`, `FRAME_MIN_SIZE`, the protocol
//!   version and port.
//! - [`ReplyCode`]: an open `u16` with the named reply codes and their soft/hard class.
//! - one module per class (`connection`, `channel`, `exchange`, `queue`, `basic`, `tx`,
//!   `confirm`) holding `CLASS_ID` and one struct per method, each implementing
//!   [`AmqpMethod`].
//! - [`Method`]: every method, decoded from and encoded to a method frame's payload.
//! - [`FieldRef`]: one field's value, borrowed, as [`AmqpMethod::fields`], [`Method::fields`]
//!   and [`BasicProperties::fields`] list them by name.
//! - [`BasicProperties`]: the content properties of `basic`.
//! - [`domains`](self::domains): the checks behind `validate`.
//!
//! ```
//! use amqp_wire::{basic, AmqpMethod, Method, ShortStr};
//! use bytes::BytesMut;
//!
//! let publish = basic::Publish {
//!     routing_key: ShortStr::from_static("jobs"),
//!     mandatory: true,
//!     ..Default::default()
//! };
//! publish.validate()?;
//! let mut payload = BytesMut::new();
//! Method::from(publish.clone()).encode(&mut payload);
//! let decoded = Method::decode(payload.freeze())?;
//! assert_eq!(decoded.name(), basic::Publish::NAME);
//! assert_eq!(basic::Publish::try_from(decoded), Ok(publish));
//! # Ok::<(), amqp_wire::WireError>(())
//! ```

use bytes::BytesMut;

use crate::{FieldTable, LongStr, ShortStr, Timestamp};

/// A borrowed view of one field of a method (or one content property), tagged with its AMQP
/// type: what [`AmqpMethod::field`], [`Method::fields`] and [`BasicProperties::fields`] hand
/// out, so a field can be shown or inspected by name without knowing the method's struct.
///
/// Integers, bits, timestamps and reply codes are copied; strings and tables are borrowed.
///
/// ```
/// use amqp_wire::{basic, FieldRef, Method, ShortStr};
///
/// let get = Method::from(basic::Get { queue: ShortStr::from_static("jobs"), no_ack: true });
/// let fields: Vec<_> = get.fields().collect();
/// assert_eq!(fields[0], ("queue", FieldRef::ShortStr(&ShortStr::from_static("jobs"))));
/// assert_eq!(fields[1], ("no_ack", FieldRef::Bit(true)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldRef<'a> {
    /// A `bit` (adjacent bits share an octet on the wire).
    Bit(bool),
    /// An `octet`.
    Octet(u8),
    /// A `short` (16 bits) that is not a reply code.
    Short(u16),
    /// A `long` (32 bits).
    Long(u32),
    /// A `longlong` (64 bits).
    LongLong(u64),
    /// A `shortstr`.
    ShortStr(&'a ShortStr),
    /// A `longstr`: octets, not necessarily UTF-8.
    LongStr(&'a LongStr),
    /// A field `table`.
    Table(&'a FieldTable),
    /// A `timestamp`, in seconds since the Unix epoch.
    Timestamp(Timestamp),
    /// A `short` of the domain `reply-code`.
    ReplyCode(ReplyCode),
}

/// Implemented by every generated method struct (`basic::Publish`, `queue::DeclareOk`, …).
///
/// The constants describe the method as the specification does; `decode_fields` and
/// `encode_fields` handle the method's arguments only (the class and method ids in front of
/// them are [`Method`]'s business).
pub trait AmqpMethod: Sized + Into<Method> + TryFrom<Method, Error = Method> {
    /// The class id (`basic` is 60).
    const CLASS_ID: u16;
    /// The method id within the class (`basic.publish` is 40).
    const METHOD_ID: u16;
    /// `"class.method"`, as the specification names it (`"basic.publish"`).
    const NAME: &'static str;
    /// Whether the specification marks the method synchronous.
    const SYNCHRONOUS: bool;
    /// Whether a content header and body follow the method.
    const CARRIES_CONTENT: bool;
    /// The names of the methods that answer this one (`&["basic.get-ok", "basic.get-empty"]`),
    /// comparable with [`Method::name`]. Empty when nothing answers it.
    const RESPONSES: &'static [&'static str];
    /// The names of the method's fields, in wire order, reserved fields left out
    /// (`&["exchange", "routing_key", "mandatory", "immediate"]` for `basic.publish`).
    ///
    /// The names are those of the struct's Rust fields: snake_case, the specification's
    /// `type` as `kind`. [`field`](Self::field) takes an index into this list.
    const FIELD_NAMES: &'static [&'static str];

    /// Decodes the method's arguments. Reserved fields are read and dropped.
    ///
    /// # Errors
    /// `Truncated` if the input ends early, or the error of a malformed field.
    fn decode_fields(reader: &mut crate::Reader) -> Result<Self, crate::WireError>;

    /// Encodes the method's arguments; reserved fields are written with their zero value and
    /// adjacent bits are packed into octets.
    fn encode_fields(&self, dst: &mut BytesMut);

    /// Checks the fields against the asserts of the specification (notnull, length and
    /// `^[…]*$` regexps); the other asserts are only documented.
    ///
    /// # Errors
    /// [`WireError::Domain`](crate::WireError::Domain) for the first field that breaks a rule.
    fn validate(&self) -> Result<(), crate::WireError>;

    /// The value of the field named `FIELD_NAMES[index]`; `None` past the last field.
    fn field(&self, index: usize) -> Option<FieldRef<'_>>;

    /// Every field as `(name, value)`, in wire order, reserved fields left out.
    ///
    /// ```
    /// use amqp_wire::{basic, AmqpMethod, FieldRef};
    ///
    /// let ack = basic::Ack { delivery_tag: 7, multiple: false };
    /// let fields: Vec<_> = ack.fields().collect();
    /// assert_eq!(fields, [("delivery_tag", FieldRef::LongLong(7)), ("multiple", FieldRef::Bit(false))]);
    /// ```
    fn fields(&self) -> impl Iterator<Item = (&'static str, FieldRef<'_>)> + '_ {
        Self::FIELD_NAMES
            .iter()
            .enumerate()
            .filter_map(move |(index, &name)| Some((name, self.field(index)?)))
    }
}

/// Implemented by every method the specification gives responses (`queue::Declare`,
/// `basic::Get`, `channel::Close`, …): the type of the reply that answers it, so a client can
/// send a request and get back a typed answer.
///
/// `Reply` is the one response's struct (`queue::DeclareOk` for `queue::Declare`) or, for a
/// method with several responses, an enum of them (`basic::GetReply` with `GetOk` and
/// `GetEmpty`).
///
/// ```
/// use amqp_wire::{queue, Method, SyncMethod};
///
/// fn answer<M: SyncMethod>(reply: Method) -> Result<M::Reply, Method> {
///     M::Reply::try_from(reply)
/// }
/// let ok = Method::from(queue::PurgeOk { message_count: 3 });
/// assert_eq!(answer::<queue::Purge>(ok), Ok(queue::PurgeOk { message_count: 3 }));
/// assert_eq!(queue::Purge::REPLY_IDS, &[(50, 31)]);
/// ```
pub trait SyncMethod: AmqpMethod {
    /// What answers this method.
    type Reply: TryFrom<Method, Error = Method> + Into<Method> + std::fmt::Debug + Send + 'static;
    /// The `(class id, method id)` of each response, in the specification's order.
    const REPLY_IDS: &'static [(u16, u16)];
}

include!(concat!(env!("OUT_DIR"), "/amqp091.rs"));

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};

    use super::*;
    use crate::{FieldTable, Reader, ShortStr, WireError};

    fn encode(method: impl Into<Method>) -> Vec<u8> {
        let mut dst = BytesMut::new();
        method.into().encode(&mut dst);
        dst.to_vec()
    }

    fn decode(bytes: &[u8]) -> Result<Method, WireError> {
        Method::decode(Bytes::copy_from_slice(bytes))
    }

    #[test]
    fn publish_is_byte_exact_and_round_trips() {
        let publish = basic::Publish {
            exchange: ShortStr::from_static(""),
            routing_key: ShortStr::from_static("jobs"),
            mandatory: true,
            immediate: false,
        };
        let bytes = encode(publish.clone());
        // class 60, method 40, reserved short 0, "" , "jobs", bits (mandatory = bit 0).
        assert_eq!(bytes, b"\x00\x3c\x00\x28\x00\x00\x00\x04jobs\x01");
        let method = decode(&bytes).unwrap();
        assert_eq!(method, Method::BasicPublish(publish));
        assert_eq!(method.name(), "basic.publish");
        assert_eq!((method.class_id(), method.method_id()), (60, 40));
        assert!(method.carries_content() && !method.is_synchronous());
    }

    #[test]
    fn adjacent_bits_share_one_octet_in_field_order() {
        let declare = exchange::Declare {
            exchange: ShortStr::from_static("x"),
            kind: ShortStr::from_static("topic"),
            passive: false,
            durable: true,
            auto_delete: false,
            internal: true,
            no_wait: true,
            arguments: FieldTable::default(),
        };
        let bytes = encode(declare.clone());
        assert_eq!(
            bytes, b"\x00\x28\x00\x0a\x00\x00\x01x\x05topic\x1a\x00\x00\x00\x00",
            "durable = bit 1, internal = bit 3, no-wait = bit 4"
        );
        assert_eq!(
            decode(&bytes).unwrap(),
            Method::ExchangeDeclare(Box::new(declare))
        );
    }

    #[test]
    fn reserved_fields_are_written_as_zero_and_ignored_when_read() {
        let open = connection::Open {
            virtual_host: ShortStr::from_static("/"),
        };
        let bytes = encode(open.clone());
        // virtual-host, reserved shortstr (empty), reserved bit (0).
        assert_eq!(bytes, b"\x00\x0a\x00\x28\x01/\x00\x00");
        // A peer that fills the reserved fields is still understood.
        let filled = b"\x00\x0a\x00\x28\x01/\x03abc\x01";
        assert_eq!(decode(filled).unwrap(), Method::ConnectionOpen(open));
        assert_eq!(encode(channel::OpenOk), b"\x00\x14\x00\x0b\x00\x00\x00\x00");
    }

    #[test]
    fn reply_codes_are_typed_and_open() {
        let close = channel::Close {
            reply_code: ReplyCode::NOT_FOUND,
            reply_text: ShortStr::from_static("NOT_FOUND - no queue 'q'"),
            class_id: 50,
            method_id: 10,
        };
        let bytes = encode(close.clone());
        assert_eq!(bytes.get(4..6), Some(&[0x01, 0x94][..]));
        assert_eq!(decode(&bytes).unwrap(), Method::ChannelClose(close));

        assert_eq!(format!("{:?}", ReplyCode::NOT_FOUND), "NOT_FOUND(404)");
        assert_eq!(format!("{}", ReplyCode(999)), "999");
        assert_eq!(ReplyCode(312).name(), Some("NO_ROUTE"));
        assert!(ReplyCode::PRECONDITION_FAILED.is_soft_error());
        assert!(!ReplyCode::PRECONDITION_FAILED.is_hard_error());
        assert!(ReplyCode::CONNECTION_FORCED.is_hard_error());
        assert!(
            !ReplyCode::REPLY_SUCCESS.is_soft_error() && !ReplyCode::REPLY_SUCCESS.is_hard_error()
        );
        assert!(!ReplyCode(999).is_soft_error() && !ReplyCode(999).is_hard_error());
    }

    #[test]
    fn decode_rejects_unknown_ids_truncation_and_trailing_bytes() {
        assert_eq!(
            decode(b"\x00\x3c\x00\x29"),
            Err(WireError::UnknownMethod {
                class_id: 60,
                method_id: 41
            })
        );
        assert_eq!(
            decode(b"\x00\x3c"),
            Err(WireError::Truncated { what: "method id" })
        );
        assert_eq!(
            decode(b"\x00\x3c\x00\x28\x00\x00\x00\x04jo"),
            Err(WireError::Truncated {
                what: "basic.publish.routing-key"
            })
        );
        assert_eq!(
            decode(b"\x00\x5a\x00\x0b\xff"),
            Err(WireError::TrailingBytes {
                what: "tx.select-ok",
                count: 1
            })
        );
    }

    #[test]
    fn validate_enforces_domain_asserts() {
        let mut declare = queue::Declare {
            queue: ShortStr::from_static("orders.eu-west_1:a"),
            ..Default::default()
        };
        assert_eq!(declare.validate(), Ok(()));
        // queue-name may be empty (the server names the queue).
        declare.queue = ShortStr::from_static("");
        assert_eq!(declare.validate(), Ok(()));
        declare.queue = ShortStr::from_static("no spaces");
        assert_eq!(
            Method::from(declare.clone()).validate(),
            Err(WireError::Domain {
                what: "queue.declare.queue",
                rule: "must match ^[a-zA-Z0-9-_.:]*$"
            })
        );
        declare.queue = ShortStr::new(&"q".repeat(128)).unwrap();
        assert_eq!(
            declare.validate(),
            Err(WireError::Domain {
                what: "queue.declare.queue",
                rule: "must be at most 127 octets long"
            })
        );
        // Field-level notnull: exchange.declare needs a name.
        let declare = exchange::Declare::default();
        assert_eq!(
            declare.validate(),
            Err(WireError::Domain {
                what: "exchange.declare.exchange",
                rule: "must not be empty"
            })
        );
        // Domain notnull on an integer: reply-code.
        let close = connection::Close {
            reply_text: ShortStr::from_static("bye"),
            ..Default::default()
        };
        assert_eq!(
            close.validate(),
            Err(WireError::Domain {
                what: "connection.close.reply-code",
                rule: "must not be zero"
            })
        );
        assert_eq!(domains::path("p", b"/"), Ok(()));
        assert!(domains::path("p", b"").is_err());
    }

    #[test]
    fn trait_constants_and_conversions() {
        assert_eq!(basic::Get::NAME, "basic.get");
        assert_eq!(basic::Get::RESPONSES, &["basic.get-ok", "basic.get-empty"]);
        assert_eq!(
            (
                basic::Get::SYNCHRONOUS,
                basic::Get::CARRIES_CONTENT,
                basic::GetOk::CARRIES_CONTENT
            ),
            (true, false, true)
        );
        assert_eq!(
            (queue::UnbindOk::CLASS_ID, queue::UnbindOk::METHOD_ID),
            (50, 51)
        );
        assert_eq!(exchange::UnbindOk::METHOD_ID, 51);
        assert_eq!(confirm::CLASS_ID, 85);
        let method = Method::from(tx::Select);
        assert_eq!(method.responses(), &["tx.select-ok"]);
        assert_eq!(tx::Commit::try_from(method.clone()), Err(method.clone()));
        assert_eq!(tx::Select::try_from(method), Ok(tx::Select));
        assert_eq!(constants::FRAME_END, 0xce);
        assert_eq!(constants::FRAME_MIN_SIZE, 4096);
        assert_eq!(constants::PROTOCOL_PORT, 5672);
    }

    #[test]
    fn fields_are_listed_by_rust_name_in_wire_order_without_reserved_ones() {
        let publish = basic::Publish {
            exchange: ShortStr::from_static("ex"),
            routing_key: ShortStr::from_static("rk"),
            mandatory: true,
            immediate: false,
        };
        // basic.publish starts with a reserved short, which is not listed.
        assert_eq!(
            basic::Publish::FIELD_NAMES,
            ["exchange", "routing_key", "mandatory", "immediate"]
        );
        let ex = ShortStr::from_static("ex");
        let rk = ShortStr::from_static("rk");
        assert_eq!(
            publish.fields().collect::<Vec<_>>(),
            [
                ("exchange", FieldRef::ShortStr(&ex)),
                ("routing_key", FieldRef::ShortStr(&rk)),
                ("mandatory", FieldRef::Bit(true)),
                ("immediate", FieldRef::Bit(false)),
            ]
        );
        assert_eq!(publish.field(4), None);

        // `type` is listed as `kind`; five bits of one octet each keep their own value.
        let args = FieldTable::new().with("alternate-exchange", "ae").unwrap();
        let declare = Method::from(exchange::Declare {
            exchange: ShortStr::from_static("x"),
            kind: ShortStr::from_static("topic"),
            passive: false,
            durable: true,
            auto_delete: false,
            internal: true,
            no_wait: true,
            arguments: args.clone(),
        });
        let topic = ShortStr::from_static("topic");
        assert_eq!(
            declare.fields().skip(1).collect::<Vec<_>>(),
            [
                ("kind", FieldRef::ShortStr(&topic)),
                ("passive", FieldRef::Bit(false)),
                ("durable", FieldRef::Bit(true)),
                ("auto_delete", FieldRef::Bit(false)),
                ("internal", FieldRef::Bit(true)),
                ("no_wait", FieldRef::Bit(true)),
                ("arguments", FieldRef::Table(&args)),
            ]
        );
        assert_eq!(declare.field_names(), exchange::Declare::FIELD_NAMES);

        // Reply codes keep their type; plain shorts, longs and long strings are tagged so.
        let close = Method::from(connection::Close {
            reply_code: ReplyCode::CONNECTION_FORCED,
            reply_text: ShortStr::from_static("bye"),
            class_id: 0,
            method_id: 0,
        });
        assert_eq!(
            close.field(0),
            Some(FieldRef::ReplyCode(ReplyCode::CONNECTION_FORCED))
        );
        assert_eq!(close.field(2), Some(FieldRef::Short(0)));
        let tune = Method::from(connection::Tune {
            channel_max: 2047,
            frame_max: 131_072,
            heartbeat: 60,
        });
        assert_eq!(
            tune.fields().collect::<Vec<_>>(),
            [
                ("channel_max", FieldRef::Short(2047)),
                ("frame_max", FieldRef::Long(131_072)),
                ("heartbeat", FieldRef::Short(60)),
            ]
        );
        let secret = Bytes::from_static(b"\0guest\0guest");
        let start_ok = connection::StartOk {
            response: secret.clone(),
            ..Default::default()
        };
        assert_eq!(start_ok.field(2), Some(FieldRef::LongStr(&secret)));
        let get_ok = basic::GetOk {
            message_count: 3,
            ..Default::default()
        };
        assert_eq!(get_ok.field(0), Some(FieldRef::LongLong(0)));
        assert_eq!(get_ok.field(4), Some(FieldRef::Long(3)));

        // Methods with only reserved fields, or none, list nothing.
        for empty in [
            Method::from(connection::OpenOk),
            Method::from(channel::Open),
            Method::from(tx::Select),
        ] {
            assert_eq!(empty.field_names(), &[] as &[&str], "{}", empty.name());
            assert_eq!(empty.fields().count(), 0);
            assert_eq!(empty.field(0), None);
        }
        assert_eq!(connection::Open::FIELD_NAMES, ["virtual_host"]);
    }

    #[test]
    fn basic_properties_list_only_the_set_ones() {
        assert_eq!(BasicProperties::FIELD_NAMES.len(), 14);
        assert_eq!(BasicProperties::FIELD_NAMES.get(10), Some(&"kind"));
        assert_eq!(BasicProperties::FIELD_NAMES.get(13), Some(&"reserved"));
        assert_eq!(BasicProperties::default().fields().count(), 0);
        let headers = FieldTable::new().with("n", 5i64).unwrap();
        let props = BasicProperties::default()
            .with_kind(ShortStr::from_static("t"))
            .with_content_type(ShortStr::from_static("text/plain"))
            .with_headers(headers.clone())
            .with_delivery_mode(2)
            .with_timestamp(1_700_000_000);
        let (t, plain) = (
            ShortStr::from_static("t"),
            ShortStr::from_static("text/plain"),
        );
        assert_eq!(
            props.fields().collect::<Vec<_>>(),
            [
                ("content_type", FieldRef::ShortStr(&plain)),
                ("headers", FieldRef::Table(&headers)),
                ("delivery_mode", FieldRef::Octet(2)),
                ("timestamp", FieldRef::Timestamp(1_700_000_000)),
                ("kind", FieldRef::ShortStr(&t)),
            ]
        );
        assert_eq!(props.field(1), None, "content_encoding is not set");
        assert_eq!(props.field(14), None);
        // Index i is flag bit 15 - i.
        for (i, _) in BasicProperties::FIELD_NAMES.iter().enumerate() {
            let set = props.flags() & (1 << (15 - i)) != 0;
            assert_eq!(props.field(i).is_some(), set, "property {i}");
        }
    }

    #[test]
    fn basic_properties_flags_and_round_trip() {
        let props = BasicProperties::default()
            .with_content_type(ShortStr::from_static("text/plain"))
            .with_delivery_mode(2)
            .with_timestamp(1_700_000_000)
            .with_kind(ShortStr::from_static("greeting"));
        assert_eq!(props.flags(), 0x8000 | 0x1000 | 0x0040 | 0x0020);
        let mut dst = BytesMut::new();
        props.encode(&mut dst);
        let mut expected = b"\x90\x60\x0atext/plain\x02".to_vec();
        expected.extend_from_slice(&1_700_000_000u64.to_be_bytes());
        expected.extend_from_slice(b"\x08greeting");
        assert_eq!(dst.to_vec(), expected);
        let mut reader = Reader::new(dst.freeze());
        assert_eq!(BasicProperties::decode(&mut reader), Ok(props));
        assert_eq!(reader.remaining(), 0);

        let mut empty = BytesMut::new();
        BasicProperties::default().encode(&mut empty);
        assert_eq!(empty.to_vec(), b"\x00\x00");
    }

    #[test]
    fn basic_properties_reject_unknown_flags_and_follow_continuations() {
        let read = |bytes: &'static [u8]| {
            BasicProperties::decode(&mut Reader::new(Bytes::from_static(bytes)))
        };
        // Bit 1 names no property of basic.
        assert_eq!(
            read(b"\x00\x02"),
            Err(WireError::UnknownPropertyFlags {
                what: "basic.properties.flags",
                flags: 2
            })
        );
        // Bit 0: another flags word follows; an empty one is harmless.
        let mut reader = Reader::new(Bytes::from_static(b"\x10\x01\x00\x00\x02"));
        assert_eq!(
            BasicProperties::decode(&mut reader),
            Ok(BasicProperties::default().with_delivery_mode(2))
        );
        assert_eq!(reader.remaining(), 0);
        assert_eq!(
            read(b"\x00\x01\x80\x00"),
            Err(WireError::UnknownPropertyFlags {
                what: "basic.properties.flags",
                flags: 0x8000
            })
        );
        assert_eq!(
            read(b"\x80\x00\x05ab"),
            Err(WireError::Truncated {
                what: "basic.properties.content-type"
            })
        );
    }
}

/// The generated code of `amqp-codegen/tests/fixtures/mini.xml` (its golden file), compiled
/// against this crate's runtime: nine bits across two octets, reserved fields of every kind, a
/// keyword field and domain chains.
#[cfg(test)]
#[allow(dead_code, unreachable_pub)]
mod mini {
    use bytes::{Bytes, BytesMut};

    use crate::{FieldTable, LongStr, ShortStr, Timestamp, WireError};

    /// The fixture's own `AmqpMethod`, with the same required items as the real one.
    pub trait AmqpMethod: Sized + Into<Method> + TryFrom<Method, Error = Method> {
        const CLASS_ID: u16;
        const METHOD_ID: u16;
        const NAME: &'static str;
        const SYNCHRONOUS: bool;
        const CARRIES_CONTENT: bool;
        const RESPONSES: &'static [&'static str];
        const FIELD_NAMES: &'static [&'static str];
        fn decode_fields(reader: &mut crate::Reader) -> Result<Self, WireError>;
        fn encode_fields(&self, dst: &mut BytesMut);
        fn validate(&self) -> Result<(), WireError>;
        fn field(&self, index: usize) -> Option<FieldRef<'_>>;
    }

    /// The fixture's own `SyncMethod`.
    pub trait SyncMethod: AmqpMethod {
        type Reply: TryFrom<Method, Error = Method> + Into<Method>;
        const REPLY_IDS: &'static [(u16, u16)];
    }

    /// The fixture's own `FieldRef`: the real one's variants, with the fixture's `ReplyCode`.
    #[derive(Debug, Clone, Copy, PartialEq)]
    pub enum FieldRef<'a> {
        Bit(bool),
        Octet(u8),
        Short(u16),
        Long(u32),
        LongLong(u64),
        ShortStr(&'a ShortStr),
        LongStr(&'a LongStr),
        Table(&'a FieldTable),
        Timestamp(Timestamp),
        ReplyCode(ReplyCode),
    }

    include!("../../amqp-codegen/tests/fixtures/mini.rs");

    fn encode(method: impl Into<Method>) -> Vec<u8> {
        let mut dst = BytesMut::new();
        method.into().encode(&mut dst);
        dst.to_vec()
    }

    #[test]
    fn nine_bits_with_a_reserved_one_take_two_octets() {
        let post = sample::Post {
            tag: 7,
            kind: ShortStr::from_static("t"),
            a: true,
            b: false,
            d: true,
            e: false,
            f: false,
            g: false,
            h: true,
            i: true,
            sent_at: 1,
            size: 2,
        };
        let bytes = encode(post.clone());
        let mut expected = b"\x00\x0a\x00\x14\x00\x00\x00\x00\x00\x00\x00\x07\x01t".to_vec();
        // a = bit 0, reserved = bit 2 (zero), d = bit 3, h = bit 7; i starts the next octet.
        expected.extend_from_slice(&[0b1000_1001, 0b0000_0001]);
        expected.extend_from_slice(b"\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x02");
        assert_eq!(bytes, expected);
        assert_eq!(
            Method::decode(Bytes::from(bytes.clone())),
            Ok(Method::SamplePost(post.clone()))
        );
        // The reserved bit set by a peer is ignored.
        let mut with_reserved = bytes;
        with_reserved[14] |= 0b100;
        assert_eq!(
            Method::decode(Bytes::from(with_reserved)),
            Ok(Method::SamplePost(post))
        );
    }

    #[test]
    fn reserved_fields_of_every_type_are_zero() {
        assert_eq!(
            encode(sample::HelloOk),
            b"\x00\x0a\x00\x0b\x00\x00\x00\x00\x00\x00\x00\x00\x00"
        );
        let hello = sample::Hello {
            topic: ShortStr::from_static("a.b"),
            greeting: Bytes::from_static(b"hi"),
            priority: 3,
            arguments: Default::default(),
        };
        let bytes = encode(hello.clone());
        assert_eq!(
            bytes,
            b"\x00\x0a\x00\x0a\x00\x00\x03a.b\x00\x00\x00\x02hi\x03\x00\x00\x00\x00"
        );
        assert_eq!(
            Method::decode(Bytes::from(bytes)),
            Ok(Method::SampleHello(Box::new(hello)))
        );
    }

    #[test]
    fn domain_chains_carry_every_assert() {
        let mut hello = sample::Hello {
            topic: ShortStr::from_static("a.b"),
            greeting: Bytes::from_static(b"hi"),
            ..Default::default()
        };
        assert_eq!(hello.validate(), Ok(()));
        hello.topic = ShortStr::from_static("");
        assert_eq!(
            hello.validate(),
            Err(WireError::Domain {
                what: "sample.hello.topic",
                rule: "must not be empty"
            })
        );
        hello.topic = ShortStr::from_static("Upper");
        assert_eq!(
            hello.validate(),
            Err(WireError::Domain {
                what: "sample.hello.topic",
                rule: "must match ^[a-z0-9-_.]*$"
            })
        );
        hello.topic = ShortStr::new(&"a".repeat(65)).unwrap();
        assert!(hello.validate().is_err());
        hello.topic = ShortStr::from_static("ok");
        hello.greeting = Bytes::new();
        assert_eq!(
            hello.validate(),
            Err(WireError::Domain {
                what: "sample.hello.greeting",
                rule: "must not be empty"
            })
        );
    }

    #[test]
    fn keyword_fields_and_reply_codes() {
        let close = sample::Close {
            reply_code: ReplyCode::CHANNEL_ERROR,
            reply_text: ShortStr::from_static("x"),
            r#loop: true,
        };
        let bytes = encode(close.clone());
        assert_eq!(bytes, b"\x00\x0a\x00\x1e\x01\xf8\x01x\x01");
        assert_eq!(
            Method::decode(Bytes::from(bytes)),
            Ok(Method::SampleClose(close))
        );
        assert_eq!(format!("{:?}", ReplyCode(504)), "CHANNEL_ERROR(504)");
    }

    #[test]
    fn fields_of_the_fixture_skip_reserved_bits_and_unwrap_raw_names() {
        let post = sample::Post {
            a: true,
            d: true,
            i: true,
            sent_at: 9,
            ..Default::default()
        };
        // Between b and d sits a reserved bit; it is not listed, and d keeps its own value.
        assert_eq!(
            sample::Post::FIELD_NAMES,
            ["tag", "kind", "a", "b", "d", "e", "f", "g", "h", "i", "sent_at", "size"]
        );
        let bits: Vec<_> = Method::from(post.clone())
            .fields()
            .filter_map(|(name, v)| match v {
                FieldRef::Bit(b) => Some((name, b)),
                _ => None,
            })
            .collect();
        assert_eq!(
            bits,
            [
                ("a", true),
                ("b", false),
                ("d", true),
                ("e", false),
                ("f", false),
                ("g", false),
                ("h", false),
                ("i", true)
            ]
        );
        assert_eq!(post.field(10), Some(FieldRef::Timestamp(9)));
        let close = sample::Close {
            reply_code: ReplyCode::NOT_FOUND,
            reply_text: ShortStr::from_static("x"),
            r#loop: true,
        };
        assert_eq!(
            sample::Close::FIELD_NAMES,
            ["reply_code", "reply_text", "loop"]
        );
        assert_eq!(
            close.field(0),
            Some(FieldRef::ReplyCode(ReplyCode::NOT_FOUND))
        );
        assert_eq!(close.field(2), Some(FieldRef::Bit(true)));
        assert!(sample::HelloOk::FIELD_NAMES.is_empty());
        assert_eq!(Method::from(sample::HelloOk).field(0), None);
        let props = ContentProperties::default()
            .with_sent_at(5)
            .with_delivery_mode(1);
        assert_eq!(
            props.fields().collect::<Vec<_>>(),
            [
                ("delivery_mode", FieldRef::Octet(1)),
                ("sent_at", FieldRef::Timestamp(5))
            ]
        );
    }

    #[test]
    fn properties_of_another_class() {
        let props = ContentProperties::default().with_kind(ShortStr::from_static("k"));
        assert_eq!(props.flags(), 0x0800);
        assert_eq!(ContentProperties::CLASS_ID, 20);
        let mut dst = BytesMut::new();
        props.encode(&mut dst);
        assert_eq!(dst.to_vec(), b"\x08\x00\x01k");
        let mut reader = crate::Reader::new(dst.freeze());
        assert_eq!(ContentProperties::decode(&mut reader), Ok(props));
        assert_eq!(
            ContentProperties::decode(&mut crate::Reader::new(Bytes::from_static(b"\x04\x00"))),
            Err(WireError::UnknownPropertyFlags {
                what: "content.properties.flags",
                flags: 0x0400
            })
        );
    }
}
