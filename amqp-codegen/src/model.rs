//! The protocol model that [`parse`](crate::parse) builds and [`generate`](crate::generate)
//! reads.
//!
//! Everything keeps the order of the XML file, so that generation is deterministic and the
//! wire order of fields is the order of the `<field>` elements.

use std::fmt;

/// A whole protocol definition: the `<amqp>` element and everything in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// `major` attribute of `<amqp>`.
    pub major: u8,
    /// `minor` attribute of `<amqp>`.
    pub minor: u8,
    /// `revision` attribute of `<amqp>` (0 when absent).
    pub revision: u8,
    /// `port` attribute of `<amqp>`: the standard TCP port.
    pub port: u16,
    /// `comment` attribute of `<amqp>`, if any.
    pub comment: Option<String>,
    /// The documentation of the whole protocol.
    pub docs: Docs,
    /// `<constant>` elements, in file order.
    pub constants: Vec<Constant>,
    /// `<domain>` elements, in file order, each resolved to its wire type.
    pub domains: Vec<Domain>,
    /// `<class>` elements, in file order.
    pub classes: Vec<Class>,
}

impl Spec {
    /// The domain called `name`, if the spec defines one.
    pub fn domain(&self, name: &str) -> Option<&Domain> {
        self.domains.iter().find(|d| d.name == name)
    }

    /// The class called `name`, if the spec defines one.
    pub fn class(&self, name: &str) -> Option<&Class> {
        self.classes.iter().find(|c| c.name == name)
    }
}

/// Documentation gathered from the `<doc>` and `<rule>` children of an element.
///
/// Text is stored as parsed (whitespace collapsed, no markdown escaping); escaping for rustdoc
/// happens when code is generated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Docs {
    /// Paragraphs of the plain `<doc>` elements; a blank line inside a `<doc>` starts a new one.
    pub paragraphs: Vec<String>,
    /// `<doc type="grammar">` blocks, each as its lines with the common indentation removed.
    pub grammar: Vec<Vec<String>>,
    /// `<rule>` elements (and the older `<doc name="rule">`).
    pub rules: Vec<Rule>,
}

impl Docs {
    /// True when there is no documentation at all.
    pub fn is_empty(&self) -> bool {
        self.paragraphs.is_empty() && self.grammar.is_empty() && self.rules.is_empty()
    }
}

/// A `<rule>`: a requirement the specification places on a peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rule {
    /// The `name` attribute, if any.
    pub name: Option<String>,
    /// Paragraphs of its plain `<doc>` children (scenario docs are left out).
    pub paragraphs: Vec<String>,
}

/// A `<constant>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constant {
    /// `name`, e.g. `frame-end`.
    pub name: String,
    /// `value`.
    pub value: u64,
    /// `class`, e.g. `soft-error` or `hard-error`.
    pub class: Option<String>,
    /// Documentation.
    pub docs: Docs,
    /// Line of the element in the XML file (1-based).
    pub line: u32,
}

impl Constant {
    /// Whether this constant is a reply code: it is classed as a soft or hard error, or it is
    /// named `reply-…` (like `reply-success`).
    pub fn is_reply_code(&self) -> bool {
        self.error_class().is_some() || self.name.starts_with("reply-")
    }

    /// The error class of a reply code, if the constant has one.
    pub fn error_class(&self) -> Option<ErrorClass> {
        match self.class.as_deref() {
            Some("soft-error") => Some(ErrorClass::Soft),
            Some("hard-error") => Some(ErrorClass::Hard),
            _ => None,
        }
    }
}

/// Whether an error reply code closes a channel or the whole connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Closes the channel (`soft-error`).
    Soft,
    /// Closes the connection (`hard-error`).
    Hard,
}

/// The primitive types values have on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WireType {
    /// `bit`: one bit, adjacent bits packed into octets.
    Bit,
    /// `octet`: an unsigned 8-bit integer.
    Octet,
    /// `short`: an unsigned 16-bit integer.
    Short,
    /// `long`: an unsigned 32-bit integer.
    Long,
    /// `longlong`: an unsigned 64-bit integer.
    LongLong,
    /// `shortstr`: up to 255 octets with an 8-bit length.
    ShortStr,
    /// `longstr`: octets with a 32-bit length.
    LongStr,
    /// `timestamp`: 64-bit seconds since the Unix epoch.
    Timestamp,
    /// `table`: a field table with a 32-bit length.
    Table,
}

impl WireType {
    /// Every wire type, in the order above.
    pub const ALL: [Self; 9] = [
        Self::Bit,
        Self::Octet,
        Self::Short,
        Self::Long,
        Self::LongLong,
        Self::ShortStr,
        Self::LongStr,
        Self::Timestamp,
        Self::Table,
    ];

    /// The type for its XML name (`"shortstr"` → [`WireType::ShortStr`]).
    pub fn from_xml_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.xml_name() == name)
    }

    /// The XML name of the type.
    pub fn xml_name(self) -> &'static str {
        match self {
            Self::Bit => "bit",
            Self::Octet => "octet",
            Self::Short => "short",
            Self::Long => "long",
            Self::LongLong => "longlong",
            Self::ShortStr => "shortstr",
            Self::LongStr => "longstr",
            Self::Timestamp => "timestamp",
            Self::Table => "table",
        }
    }

    /// Whether values of the type are integers.
    pub fn is_integer(self) -> bool {
        matches!(
            self,
            Self::Octet | Self::Short | Self::Long | Self::LongLong | Self::Timestamp
        )
    }

    /// Whether values of the type are strings of octets.
    pub fn is_string(self) -> bool {
        matches!(self, Self::ShortStr | Self::LongStr)
    }
}

impl fmt::Display for WireType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.xml_name())
    }
}

/// A `<domain>`: a named type with optional assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    /// `name`, e.g. `exchange-name`.
    pub name: String,
    /// The `type` attribute as written (a wire type or another domain).
    pub type_name: String,
    /// The wire type, after following domain-to-domain chains.
    pub ty: WireType,
    /// The domains passed through to reach the wire type, nearest first (empty when `type`
    /// names a wire type directly).
    pub chain: Vec<String>,
    /// The assertions of this domain followed by those of the domains it refers to.
    pub asserts: Vec<Assert>,
    /// `label`, if any.
    pub label: Option<String>,
    /// Documentation.
    pub docs: Docs,
    /// Line of the element (1-based).
    pub line: u32,
}

impl Domain {
    /// Whether this domain is, or is built on, the domain called `name`.
    pub fn is_or_extends(&self, name: &str) -> bool {
        self.name == name || self.chain.iter().any(|d| d == name)
    }
}

/// An `<assert>`: a constraint on the values of a domain or field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assert {
    /// `check="notnull"`: strings must not be empty, integers must not be zero.
    NotNull,
    /// `check="length" value="N"`: at most N octets.
    Length(u32),
    /// `check="regexp" value="…"`: the value must match the expression.
    Regexp(String),
    /// Any other check (`le`, `enum`, `syntax`, …), kept for documentation only.
    Other {
        /// The `check` attribute.
        check: String,
        /// The remaining attributes, in file order, as `(name, value)`.
        attributes: Vec<(String, String)>,
    },
}

impl fmt::Display for Assert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotNull => f.write_str("notnull"),
            Self::Length(n) => write!(f, "length {n}"),
            Self::Regexp(re) => write!(f, "regexp {re}"),
            Self::Other { check, attributes } => {
                f.write_str(check)?;
                for (name, value) in attributes {
                    write!(f, " {name}={value}")?;
                }
                Ok(())
            }
        }
    }
}

/// Who implements a class or method, from a `<chassis>` element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chassis {
    /// `name`: `server` or `client`.
    pub name: String,
    /// `implement`: `MUST`, `SHOULD` or `MAY`.
    pub implement: String,
}

/// A `<class>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Class {
    /// `name`, e.g. `basic`.
    pub name: String,
    /// `index`: the class id.
    pub index: u16,
    /// `handler`, if any.
    pub handler: Option<String>,
    /// `label`, if any.
    pub label: Option<String>,
    /// Documentation.
    pub docs: Docs,
    /// `<chassis>` children.
    pub chassis: Vec<Chassis>,
    /// Class-level `<field>`s: the content properties, in flag order.
    pub properties: Vec<Field>,
    /// `<method>`s, in file order.
    pub methods: Vec<Method>,
    /// Line of the element (1-based).
    pub line: u32,
}

impl Class {
    /// The method called `name`, if the class has one.
    pub fn method(&self, name: &str) -> Option<&Method> {
        self.methods.iter().find(|m| m.name == name)
    }
}

/// A `<method>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Method {
    /// `name`, e.g. `publish`.
    pub name: String,
    /// `index`: the method id within its class.
    pub index: u16,
    /// `synchronous="1"`.
    pub synchronous: bool,
    /// `content="1"`: a content header and body follow the method.
    pub content: bool,
    /// `deprecated="1"`.
    pub deprecated: bool,
    /// `<response name="…">` children: the methods of the same class that answer this one.
    pub responses: Vec<String>,
    /// `<chassis>` children.
    pub chassis: Vec<Chassis>,
    /// `label`, if any.
    pub label: Option<String>,
    /// Documentation.
    pub docs: Docs,
    /// `<field>`s, in wire order.
    pub fields: Vec<Field>,
    /// Line of the element (1-based).
    pub line: u32,
}

/// A `<field>` of a method, or a content property of a class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// `name`, e.g. `routing-key`.
    pub name: String,
    /// `domain`, if the field names one (else it used `type`).
    pub domain: Option<String>,
    /// The wire type.
    pub ty: WireType,
    /// `reserved="1"`: the field is unused and always carries its zero value.
    pub reserved: bool,
    /// The assertions inherited from the domain (and the domains it refers to).
    pub domain_asserts: Vec<Assert>,
    /// The assertions written on the field itself.
    pub field_asserts: Vec<Assert>,
    /// `label`, if any.
    pub label: Option<String>,
    /// Documentation.
    pub docs: Docs,
    /// Line of the element (1-based).
    pub line: u32,
}

impl Field {
    /// All assertions that apply to the field: the domain's, then the field's own.
    pub fn asserts(&self) -> impl Iterator<Item = &Assert> {
        self.domain_asserts.iter().chain(&self.field_asserts)
    }
}
