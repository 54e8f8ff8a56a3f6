//! Generates typed Rust from the AMQP 0-9-1 XML protocol definition.
//!
//! Two steps: [`parse`] reads a definition in the official XML schema into a [`Spec`]
//! (constants, domains resolved to wire types, classes, methods, fields, content properties),
//! and [`generate`] turns a [`Spec`] into Rust source formatted with prettyplease.
//!
//! ```
//! let xml = r#"<amqp major="0" minor="9" revision="1" port="5672">
//!   <constant name="frame-end" value="206"/>
//!   <domain name="bit" type="bit"/>
//!   <class name="tx" index="90">
//!     <method name="select" synchronous="1" index="10"><response name="select-ok"/></method>
//!     <method name="select-ok" synchronous="1" index="11"/>
//!   </class>
//! </amqp>"#;
//! let spec = amqp_codegen::parse(xml)?;
//! assert_eq!(spec.classes[0].methods[1].name, "select-ok");
//! let rust = amqp_codegen::generate(&spec)?;
//! assert!(rust.contains("pub struct SelectOk;"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What the generated code expects of the crate that includes it
//!
//! The output is `include!`d into a module (the wire crate's `spec`) that has the trait
//! `AmqpMethod` (with the consts `CLASS_ID`, `METHOD_ID`, `NAME`, `SYNCHRONOUS`,
//! `CARRIES_CONTENT`, `RESPONSES`, `FIELD_NAMES` and the fns `decode_fields`, `encode_fields`,
//! `validate`, `field`), the trait `SyncMethod: AmqpMethod` (with the associated type `Reply`
//! and the const `REPLY_IDS`) and the enum `FieldRef<'a>` (variants `Bit`, `Octet`, `Short`, `Long`,
//! `LongLong`, `Timestamp` and `ReplyCode` by value; `ShortStr`, `LongStr`, `Table` by
//! reference) in scope, and it refers to the crate's runtime by these paths:
//! `crate::{Reader, WireError, ShortStr, IntoShortStr, LongStr, Timestamp, FieldTable}`,
//! `crate::codec::{put_short_str, put_long_str, put_table}`, the `bytes` crate, and the
//! variants `WireError::{Domain, UnknownMethod, UnknownPropertyFlags}`.
//!
//! # What it generates
//!
//! - `constants`: frame types, sizes, `PROTOCOL_MAJOR/MINOR/REVISION`, `PROTOCOL_PORT`.
//! - `ReplyCode(pub u16)`: named consts, `name()`, `is_soft_error()`, `is_hard_error()`.
//! - `domains`: one check function per domain with enforceable asserts.
//! - one module per class with `CLASS_ID` and one struct per method implementing
//!   `AmqpMethod`, `From<_> for Method` and `TryFrom<Method>`.
//! - for each method the specification gives responses, `SyncMethod` with its typed reply
//!   (the response's struct, or an enum `<Method>Reply` when there are several, like
//!   `basic::GetReply`) and the replies' ids.
//! - `Method`: every method, with `decode`, `encode`, per-method facts (`name`,
//!   `is_synchronous`, `responses`, `reply_ids`), `Method::name_of(class_id, method_id)` and the
//!   fields by name (`field_names`, `field`, `fields`).
//! - `<Class>Properties` for each class with content properties, with the same three (`fields`
//!   yields the set properties only).
//!
//! Fields are enumerated under their Rust names (`routing_key`; the spec's `type` is `kind`, a
//! keyword like `loop` is listed without its `r#`), in wire order, reserved fields left out.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod byteclass;
mod doc;
mod gen;
pub mod model;
mod names;
mod parse;

pub use gen::{generate, GenError};

/// The AMQP 0-9-1 definition this crate ships: the protocol with RabbitMQ's extensions, in the
/// official XML schema. `amqp-wire` generates its code from it.
///
/// It is a copy of the workspace's `spec/amqp0-9-1.xml`, carried inside the package so the
/// published crates build on their own; a test fails when the two differ.
///
/// ```
/// let spec = amqp_codegen::parse(amqp_codegen::AMQP_0_9_1_XML)?;
/// assert!(spec.classes.iter().any(|c| c.name == "basic"));
/// # Ok::<(), amqp_codegen::SpecError>(())
/// ```
pub const AMQP_0_9_1_XML: &str = include_str!("../spec/amqp0-9-1.xml");
pub use model::Spec;
pub use parse::{parse, SpecError, SpecErrorKind};
