//! Field tables and arrays, with the value types RabbitMQ actually sends and accepts.
//!
//! | tag | [`FieldValue`] | wire form |
//! |-----|----------------|-----------|
//! | `t` | `Bool`       | octet, non-zero is true |
//! | `b` | `I8`         | signed octet |
//! | `B` | `U8`         | octet |
//! | `s` | `I16`        | signed short (RabbitMQ's meaning, not the 0-9-1 PDF's short string) |
//! | `u` | `U16`        | short |
//! | `I` | `I32`        | signed long |
//! | `i` | `U32`        | long |
//! | `l` | `I64`        | signed long-long (`L` is also read as `I64`) |
//! | `f` | `F32`        | IEEE-754 single |
//! | `d` | `F64`        | IEEE-754 double |
//! | `D` | `Decimal`    | scale octet, signed long |
//! | `S` | `LongStr`    | u32 length, octets (any encoding) |
//! | `A` | `Array`      | u32 length **in octets**, then values |
//! | `T` | `Timestamp`  | u64 seconds |
//! | `F` | `Table`      | u32 length in octets, then key/value pairs |
//! | `V` | `Void`       | nothing |
//! | `x` | `ByteArray`  | u32 length, octets |

use core::fmt;
use std::collections::hash_map::{Entry, HashMap};
use std::sync::OnceLock;

use bytes::{BufMut, Bytes, BytesMut};

use crate::codec::{put_long_str, put_short_str, put_sized, Reader};
use crate::table_ref::{ArrayRef, FieldValueRef, TableRef};
use crate::{LongStr, ShortStr, Timestamp, WireError};

/// A decimal number: `value × 10^-scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Decimal {
    /// How many decimal digits of `value` are after the point.
    pub scale: u8,
    /// The unscaled value (signed, as RabbitMQ reads it).
    pub value: i32,
}

impl Decimal {
    /// `value × 10^-scale`.
    pub const fn new(scale: u8, value: i32) -> Self {
        Self { scale, value }
    }
}

/// One value in a [`FieldTable`] or [`FieldArray`].
///
/// Equality compares floats by their bits, so a value always equals itself after a round trip
/// (NaN included) and `FieldValue` can be `Eq`.
#[derive(Debug, Clone)]
pub enum FieldValue {
    /// `t`: a boolean.
    Bool(bool),
    /// `b`: a signed 8-bit integer.
    I8(i8),
    /// `B`: an unsigned 8-bit integer.
    U8(u8),
    /// `s`: a signed 16-bit integer.
    I16(i16),
    /// `u`: an unsigned 16-bit integer.
    U16(u16),
    /// `I`: a signed 32-bit integer.
    I32(i32),
    /// `i`: an unsigned 32-bit integer.
    U32(u32),
    /// `l` (or `L` when reading): a signed 64-bit integer.
    I64(i64),
    /// `f`: a 32-bit float.
    F32(f32),
    /// `d`: a 64-bit float.
    F64(f64),
    /// `D`: a decimal.
    Decimal(Decimal),
    /// `S`: a long string, octets with no encoding requirement.
    LongStr(LongStr),
    /// `A`: an array of values.
    Array(FieldArray),
    /// `T`: a timestamp, seconds since the Unix epoch.
    Timestamp(Timestamp),
    /// `F`: a nested table.
    Table(FieldTable),
    /// `V`: no value.
    Void,
    /// `x`: a byte array.
    ByteArray(Bytes),
}

/// The accessors [`FieldValue`] and [`FieldValueRef`](crate::FieldValueRef) share: those of the
/// variants that hold no octets (the two enums name their variants alike).
macro_rules! scalar_accessors {
    () => {
        /// The type tag octet the value is written with (`l` for a value read from `L`).
        pub fn tag(&self) -> u8 {
            match self {
                Self::Bool(_) => b't',
                Self::I8(_) => b'b',
                Self::U8(_) => b'B',
                Self::I16(_) => b's',
                Self::U16(_) => b'u',
                Self::I32(_) => b'I',
                Self::U32(_) => b'i',
                Self::I64(_) => b'l',
                Self::F32(_) => b'f',
                Self::F64(_) => b'd',
                Self::Decimal(_) => b'D',
                Self::LongStr(_) => b'S',
                Self::Array(_) => b'A',
                Self::Timestamp(_) => b'T',
                Self::Table(_) => b'F',
                Self::Void => b'V',
                Self::ByteArray(_) => b'x',
            }
        }

        /// The boolean, if this is `Bool`.
        pub fn as_bool(&self) -> Option<bool> {
            match *self {
                Self::Bool(b) => Some(b),
                _ => None,
            }
        }

        /// Any integer variant, widened to `i64` (`U8`…`U32`, `I8`…`I64`). Peers choose integer
        /// widths freely (`x-max-length` may arrive as `b`, `s`, `I` or `l`), so this is usually
        /// what a reader wants.
        pub fn as_i64(&self) -> Option<i64> {
            match *self {
                Self::I8(v) => Some(i64::from(v)),
                Self::U8(v) => Some(i64::from(v)),
                Self::I16(v) => Some(i64::from(v)),
                Self::U16(v) => Some(i64::from(v)),
                Self::I32(v) => Some(i64::from(v)),
                Self::U32(v) => Some(i64::from(v)),
                Self::I64(v) => Some(v),
                _ => None,
            }
        }

        /// `F32` or `F64`, as `f64`.
        pub fn as_f64(&self) -> Option<f64> {
            match *self {
                Self::F32(v) => Some(f64::from(v)),
                Self::F64(v) => Some(v),
                _ => None,
            }
        }

        /// The decimal, if this is `Decimal`.
        pub fn as_decimal(&self) -> Option<Decimal> {
            match *self {
                Self::Decimal(d) => Some(d),
                _ => None,
            }
        }

        /// The timestamp, if this is `Timestamp`.
        pub fn as_timestamp(&self) -> Option<Timestamp> {
            match *self {
                Self::Timestamp(t) => Some(t),
                _ => None,
            }
        }

        /// Whether this is `Void`.
        pub fn is_void(&self) -> bool {
            matches!(self, Self::Void)
        }
    };
}
pub(crate) use scalar_accessors;

impl FieldValue {
    scalar_accessors!();

    /// The text of a `LongStr` that is valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::LongStr(s) => core::str::from_utf8(s).ok(),
            _ => None,
        }
    }

    /// The octets of a `LongStr` or a `ByteArray`.
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            Self::LongStr(b) | Self::ByteArray(b) => Some(b),
            _ => None,
        }
    }

    /// The nested table, if this is `Table`.
    pub fn as_table(&self) -> Option<&FieldTable> {
        match self {
            Self::Table(t) => Some(t),
            _ => None,
        }
    }

    /// The array, if this is `Array`.
    pub fn as_array(&self) -> Option<&FieldArray> {
        match self {
            Self::Array(a) => Some(a),
            _ => None,
        }
    }
}

impl PartialEq for FieldValue {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Bool(a), Self::Bool(b)) => a == b,
            (Self::I8(a), Self::I8(b)) => a == b,
            (Self::U8(a), Self::U8(b)) => a == b,
            (Self::I16(a), Self::I16(b)) => a == b,
            (Self::U16(a), Self::U16(b)) => a == b,
            (Self::I32(a), Self::I32(b)) => a == b,
            (Self::U32(a), Self::U32(b)) => a == b,
            (Self::I64(a), Self::I64(b)) => a == b,
            (Self::F32(a), Self::F32(b)) => a.to_bits() == b.to_bits(),
            (Self::F64(a), Self::F64(b)) => a.to_bits() == b.to_bits(),
            (Self::Decimal(a), Self::Decimal(b)) => a == b,
            (Self::LongStr(a), Self::LongStr(b)) => a == b,
            (Self::Array(a), Self::Array(b)) => a == b,
            (Self::Timestamp(a), Self::Timestamp(b)) => a == b,
            (Self::Table(a), Self::Table(b)) => a == b,
            (Self::Void, Self::Void) => true,
            (Self::ByteArray(a), Self::ByteArray(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for FieldValue {}

macro_rules! from_scalar {
    ($($t:ty => $variant:ident),* $(,)?) => {$(
        impl From<$t> for FieldValue {
            fn from(v: $t) -> Self {
                Self::$variant(v)
            }
        }
    )*};
}

from_scalar! {
    bool => Bool,
    i8 => I8,
    u8 => U8,
    i16 => I16,
    u16 => U16,
    i32 => I32,
    u32 => U32,
    i64 => I64,
    f32 => F32,
    f64 => F64,
    Decimal => Decimal,
    FieldArray => Array,
    FieldTable => Table,
}

/// A `LongStr` holding the octets of the bytes (use [`FieldValue::ByteArray`] for `x`).
impl From<Bytes> for FieldValue {
    fn from(v: Bytes) -> Self {
        Self::LongStr(v)
    }
}

/// A `LongStr` (copied).
impl From<&str> for FieldValue {
    fn from(v: &str) -> Self {
        Self::LongStr(Bytes::copy_from_slice(v.as_bytes()))
    }
}

/// A `LongStr` (the string's buffer is taken over, not copied).
impl From<String> for FieldValue {
    fn from(v: String) -> Self {
        Self::LongStr(Bytes::from(v))
    }
}

/// A `LongStr` sharing the short string's buffer.
impl From<ShortStr> for FieldValue {
    fn from(v: ShortStr) -> Self {
        Self::LongStr(v.into_bytes())
    }
}

/// An `Array`.
impl From<Vec<Self>> for FieldValue {
    fn from(v: Vec<Self>) -> Self {
        Self::Array(FieldArray(v))
    }
}

/// An ordered list of [`FieldValue`]s (`A` in a table).
///
/// ```
/// use amqp_wire::{FieldArray, FieldValue};
///
/// let mut a = FieldArray::new();
/// a.push("first");
/// a.push(2i32);
/// assert_eq!(a[1], FieldValue::I32(2));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldArray(Vec<FieldValue>);

impl FieldArray {
    /// An empty array.
    pub const fn new() -> Self {
        Self(Vec::new())
    }

    /// Appends a value.
    pub fn push(&mut self, value: impl Into<FieldValue>) {
        self.0.push(value.into());
    }

    /// The values, as a vector.
    pub fn into_inner(self) -> Vec<FieldValue> {
        self.0
    }
}

impl core::ops::Deref for FieldArray {
    type Target = [FieldValue];

    fn deref(&self) -> &[FieldValue] {
        &self.0
    }
}

impl core::ops::DerefMut for FieldArray {
    fn deref_mut(&mut self) -> &mut [FieldValue] {
        &mut self.0
    }
}

impl From<Vec<FieldValue>> for FieldArray {
    fn from(v: Vec<FieldValue>) -> Self {
        Self(v)
    }
}

impl<V: Into<FieldValue>> FromIterator<V> for FieldArray {
    fn from_iter<I: IntoIterator<Item = V>>(iter: I) -> Self {
        Self(iter.into_iter().map(Into::into).collect())
    }
}

impl<V: Into<FieldValue>> Extend<V> for FieldArray {
    fn extend<I: IntoIterator<Item = V>>(&mut self, iter: I) {
        self.0.extend(iter.into_iter().map(Into::into));
    }
}

impl IntoIterator for FieldArray {
    type Item = FieldValue;
    type IntoIter = std::vec::IntoIter<FieldValue>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a FieldArray {
    type Item = &'a FieldValue;
    type IntoIter = core::slice::Iter<'a, FieldValue>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// A field table: keys (short strings) mapped to [`FieldValue`]s, in insertion order, each key
/// at most once.
///
/// Keys are at most 255 octets of UTF-8 (they are [`ShortStr`]s). [`insert`](Self::insert)
/// takes a `&str` and returns an error, leaving the table unchanged, when the key is too long;
/// [`insert_key`](Self::insert_key) takes an already checked [`ShortStr`] and cannot fail.
/// Inserting a key that is present replaces its value in place (the key keeps its position).
///
/// Equality compares the entries in order.
///
/// A decoded table keeps the octets it was decoded from (a slice of the frame, checked in full
/// when the frame was decoded) and builds its entries only when one is first asked for, so
/// decoding a table allocates nothing, and a table nobody reads costs one check of its octets.
/// Until it is changed, such a table encodes to exactly those octets, a repeated key included
/// (its entries, as [`iter`](Self::iter) shows them, keep the key's first position and last
/// value).
///
/// ```
/// use amqp_wire::{FieldTable, FieldValue};
///
/// let mut args = FieldTable::new();
/// args.insert("x-max-length", 10i64)?;
/// args.insert("x-queue-type", "quorum")?;
/// args.insert("x-max-length", 20i64)?; // replaces
/// assert_eq!(args.len(), 2);
/// assert_eq!(args.get_i64("x-max-length"), Some(20));
/// assert_eq!(args.get_str("x-queue-type"), Some("quorum"));
/// assert!(args.insert(&"k".repeat(256), FieldValue::Void).is_err());
/// # Ok::<(), amqp_wire::WireError>(())
/// ```
#[derive(Clone, Default)]
pub struct FieldTable {
    /// The checked wire octets of a decoded, unchanged table: its pairs, without the length
    /// prefix. Empty for a table built in memory or changed since it was decoded.
    wire: Bytes,
    /// The entries: parsed from `wire` on first access when that is set, the table itself
    /// otherwise (uninitialised meaning empty).
    entries: OnceLock<Vec<(ShortStr, FieldValue)>>,
}

/// Tables up to this many entries find duplicate keys on decode without an index (see `Dedup`);
/// bigger ones build a hash index so hostile input cannot make decoding quadratic.
const LINEAR_DEDUP_MAX: usize = 64;

impl FieldTable {
    /// How deeply tables and arrays may nest inside one another when decoding (the outermost
    /// table counts as 1). Deeper input is refused with [`WireError::NestingTooDeep`], so hostile
    /// input cannot exhaust the stack.
    pub const MAX_DEPTH: usize = 64;

    /// An empty table (does not allocate).
    pub const fn new() -> Self {
        Self {
            wire: Bytes::new(),
            entries: OnceLock::new(),
        }
    }

    /// A table over `wire`, pairs that [`check_pairs`] has accepted.
    pub(crate) fn from_checked(wire: Bytes) -> Self {
        Self {
            wire,
            entries: OnceLock::new(),
        }
    }

    /// The entries, parsed from the wire octets on first use.
    fn entries(&self) -> &[(ShortStr, FieldValue)] {
        self.entries.get_or_init(|| parse_checked(&self.wire))
    }

    /// Turns a decoded table into one built in memory (parsing it if that has not happened
    /// yet), before a change: from then on it encodes from its entries.
    fn make_owned(&mut self) {
        if !self.wire.is_empty() {
            let entries = self
                .entries
                .take()
                .unwrap_or_else(|| parse_checked(&self.wire));
            self.wire = Bytes::new();
            self.entries = OnceLock::from(entries);
        }
    }

    /// Runs `change` on the entries of the table, made owned first.
    fn change<R>(&mut self, change: impl FnOnce(&mut Vec<(ShortStr, FieldValue)>) -> R) -> R {
        self.make_owned();
        let mut entries = self.entries.take().unwrap_or_default();
        let result = change(&mut entries);
        self.entries = OnceLock::from(entries);
        result
    }

    /// The entries, owned.
    fn into_entries(mut self) -> Vec<(ShortStr, FieldValue)> {
        self.entries
            .take()
            .unwrap_or_else(|| parse_checked(&self.wire))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    /// Whether the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.wire.is_empty() && self.entries().is_empty()
    }

    /// Sets `key` to `value`, returning the value it replaces.
    ///
    /// Fails with [`WireError::StringTooLong`] (and changes nothing) if `key` is longer than 255
    /// octets. A present key keeps its position; a new one is appended.
    pub fn insert(
        &mut self,
        key: &str,
        value: impl Into<FieldValue>,
    ) -> Result<Option<FieldValue>, WireError> {
        let value = value.into();
        if let Some(slot) = self.value_mut(key) {
            return Ok(Some(core::mem::replace(slot, value)));
        }
        let key = ShortStr::new(key).map_err(|_| WireError::StringTooLong {
            what: "field table key",
            len: key.len(),
            max: ShortStr::MAX_LEN,
        })?;
        self.change(|entries| entries.push((key, value)));
        Ok(None)
    }

    /// Sets `key` to `value`, returning the value it replaces. Infallible: the key is already a
    /// valid short string.
    pub fn insert_key(
        &mut self,
        key: ShortStr,
        value: impl Into<FieldValue>,
    ) -> Option<FieldValue> {
        let value = value.into();
        if let Some(slot) = self.value_mut(&key) {
            return Some(core::mem::replace(slot, value));
        }
        self.change(|entries| entries.push((key, value)));
        None
    }

    /// [`insert`](Self::insert) in builder style:
    /// `FieldTable::new().with("x-expires", 60_000i32)?`.
    pub fn with(mut self, key: &str, value: impl Into<FieldValue>) -> Result<Self, WireError> {
        self.insert(key, value)?;
        Ok(self)
    }

    /// Removes `key`, returning its value; the other entries keep their order.
    pub fn remove(&mut self, key: &str) -> Option<FieldValue> {
        let at = self.entries().iter().position(|(k, _)| k == key)?;
        self.change(|entries| (at < entries.len()).then(|| entries.remove(at).1))
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        *self = Self::new();
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&FieldValue> {
        self.entries()
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// The value of `key`, mutably.
    pub fn value_mut(&mut self, key: &str) -> Option<&mut FieldValue> {
        self.make_owned();
        self.entries
            .get_mut()?
            .iter_mut()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The boolean value of `key` ([`FieldValue::as_bool`]).
    pub fn get_bool(&self, key: &str) -> Option<bool> {
        self.get(key)?.as_bool()
    }

    /// The integer value of `key`, whatever its width ([`FieldValue::as_i64`]).
    pub fn get_i64(&self, key: &str) -> Option<i64> {
        self.get(key)?.as_i64()
    }

    /// The float value of `key` ([`FieldValue::as_f64`]).
    pub fn get_f64(&self, key: &str) -> Option<f64> {
        self.get(key)?.as_f64()
    }

    /// The text of `key`'s long string, if it is UTF-8 ([`FieldValue::as_str`]).
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key)?.as_str()
    }

    /// The octets of `key`'s long string or byte array ([`FieldValue::as_bytes`]).
    pub fn get_bytes(&self, key: &str) -> Option<&Bytes> {
        self.get(key)?.as_bytes()
    }

    /// The timestamp value of `key`.
    pub fn get_timestamp(&self, key: &str) -> Option<Timestamp> {
        self.get(key)?.as_timestamp()
    }

    /// The nested table under `key`.
    pub fn get_table(&self, key: &str) -> Option<&Self> {
        self.get(key)?.as_table()
    }

    /// The array under `key`.
    pub fn get_array(&self, key: &str) -> Option<&FieldArray> {
        self.get(key)?.as_array()
    }

    /// The entries in order.
    pub fn iter(&self) -> TableIter<'_> {
        TableIter(self.entries().iter())
    }

    /// The keys in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &ShortStr> + ExactSizeIterator {
        self.entries().iter().map(|(k, _)| k)
    }

    /// The values in order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &FieldValue> + ExactSizeIterator {
        self.entries().iter().map(|(_, v)| v)
    }
}

impl PartialEq for FieldTable {
    fn eq(&self, other: &Self) -> bool {
        (!self.wire.is_empty() && self.wire == other.wire) || self.entries() == other.entries()
    }
}

impl Eq for FieldTable {}

impl fmt::Debug for FieldTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Iterator over a table's entries, in order.
#[derive(Debug, Clone)]
pub struct TableIter<'a>(core::slice::Iter<'a, (ShortStr, FieldValue)>);

impl<'a> Iterator for TableIter<'a> {
    type Item = (&'a ShortStr, &'a FieldValue);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (k, v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for TableIter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(k, v)| (k, v))
    }
}

impl ExactSizeIterator for TableIter<'_> {}

impl<'a> IntoIterator for &'a FieldTable {
    type Item = (&'a ShortStr, &'a FieldValue);
    type IntoIter = TableIter<'a>;

    fn into_iter(self) -> TableIter<'a> {
        self.iter()
    }
}

impl IntoIterator for FieldTable {
    type Item = (ShortStr, FieldValue);
    type IntoIter = std::vec::IntoIter<(ShortStr, FieldValue)>;

    fn into_iter(self) -> Self::IntoIter {
        self.into_entries().into_iter()
    }
}

/// Builds a table by inserting the pairs in order (a repeated key keeps its first position and
/// its last value).
impl<V: Into<FieldValue>> FromIterator<(ShortStr, V)> for FieldTable {
    fn from_iter<I: IntoIterator<Item = (ShortStr, V)>>(iter: I) -> Self {
        let mut table = Self::new();
        table.extend(iter);
        table
    }
}

impl<V: Into<FieldValue>> Extend<(ShortStr, V)> for FieldTable {
    fn extend<I: IntoIterator<Item = (ShortStr, V)>>(&mut self, iter: I) {
        self.change(|entries| {
            let mut dedup = Dedup::seeded(entries);
            for (k, v) in iter {
                dedup.push(entries, k, v.into());
            }
        });
    }
}

/// Keeps keys unique while entries are appended in bulk (decoding, `extend`).
///
/// Most tables have a handful of distinct keys, so the common case should cost next to nothing:
/// a 256-bit filter over a cheap hash of each key seen proves most new keys new without
/// comparing them to anything. Only a filter hit falls back to a linear scan, and a table past
/// [`LINEAR_DEDUP_MAX`] entries switches to a hash index, so hostile input cannot make decoding
/// quadratic.
#[derive(Default)]
struct Dedup {
    seen: [u64; 4],
    index: Option<HashMap<ShortStr, usize>>,
}

impl Dedup {
    /// A filter that knows the keys of `entries` already.
    fn seeded(entries: &[(ShortStr, FieldValue)]) -> Self {
        let mut dedup = Self::default();
        if entries.len() > LINEAR_DEDUP_MAX {
            dedup.index = Some(key_index(entries));
        } else {
            for (key, _) in entries {
                let h = filter_hash(key.as_bytes());
                if let Some(word) = dedup.seen.get_mut(usize::from(h >> 6)) {
                    *word |= 1u64 << (h & 63);
                }
            }
        }
        dedup
    }

    fn push(
        &mut self,
        entries: &mut Vec<(ShortStr, FieldValue)>,
        key: ShortStr,
        value: FieldValue,
    ) {
        if let Some(index) = &mut self.index {
            match index.entry(key.clone()) {
                Entry::Occupied(at) => {
                    if let Some(slot) = entries.get_mut(*at.get()) {
                        slot.1 = value;
                    }
                }
                Entry::Vacant(slot) => {
                    slot.insert(entries.len());
                    entries.push((key, value));
                }
            }
            return;
        }
        let h = filter_hash(key.as_bytes());
        let bit = 1u64 << (h & 63);
        if let Some(word) = self.seen.get_mut(usize::from(h >> 6)) {
            if *word & bit != 0 {
                if let Some(slot) = entries.iter_mut().find(|(k, _)| *k == key) {
                    slot.1 = value;
                    return;
                }
            }
            *word |= bit;
        }
        entries.push((key, value));
        if entries.len() > LINEAR_DEDUP_MAX {
            self.index = Some(key_index(entries));
        }
    }
}

/// Each key's position in `entries`.
fn key_index(entries: &[(ShortStr, FieldValue)]) -> HashMap<ShortStr, usize> {
    entries
        .iter()
        .enumerate()
        .map(|(i, (k, _))| (k.clone(), i))
        .collect()
}

/// FNV-1a, folded to 8 bits: only ever used to pick a bit of [`Dedup`]'s filter.
fn filter_hash(key: &[u8]) -> u8 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in key {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    let h = h ^ (h >> 16);
    (h ^ (h >> 8)) as u8
}

fn check_depth(depth: usize, what: &'static str) -> Result<(), WireError> {
    if depth > FieldTable::MAX_DEPTH {
        return Err(WireError::NestingTooDeep {
            what,
            max: FieldTable::MAX_DEPTH,
        });
    }
    Ok(())
}

/// Checks a table the way [`read_table`] decodes it, without building it: a table that passes
/// can be read through a [`TableRef`] without fail.
pub(crate) fn check_table(
    r: &mut Reader<&[u8]>,
    what: &'static str,
    depth: usize,
) -> Result<(), WireError> {
    check_depth(depth, what)?;
    let mut body = r.sub_reader(what)?;
    check_pairs(&mut body, what, depth)
}

/// Checks a table's pairs (the octets after its length): every key a short string, every value
/// a known tag with a whole value, nesting no deeper than [`FieldTable::MAX_DEPTH`].
pub(crate) fn check_pairs(
    body: &mut Reader<&[u8]>,
    what: &'static str,
    depth: usize,
) -> Result<(), WireError> {
    while body.remaining() > 0 {
        body.skip_short_str(what)?;
        check_value(body, what, depth)?;
    }
    Ok(())
}

/// Checks an array, the values an [`ArrayRef`] reads.
fn check_array(r: &mut Reader<&[u8]>, what: &'static str, depth: usize) -> Result<(), WireError> {
    check_depth(depth, what)?;
    let mut body = r.sub_reader(what)?;
    while body.remaining() > 0 {
        check_value(&mut body, what, depth)?;
    }
    Ok(())
}

/// Checks a tag and its value, as [`TableRef`] and [`ArrayRef`] read them.
fn check_value(r: &mut Reader<&[u8]>, what: &'static str, depth: usize) -> Result<(), WireError> {
    let width = match r.u8(what)? {
        b'V' => 0,
        b't' | b'b' | b'B' => 1,
        b's' | b'u' => 2,
        b'I' | b'i' | b'f' => 4,
        b'D' => 5,
        b'l' | b'L' | b'd' | b'T' => 8,
        b'S' | b'x' => return r.skip_long_str(what),
        b'A' => return check_array(r, what, depth + 1),
        b'F' => return check_table(r, what, depth + 1),
        tag => return Err(WireError::UnknownFieldType { what, tag }),
    };
    r.skip(width, what)
}

/// Decodes a table: its octets are checked now, and kept; the entries are built when first
/// asked for ([`parse_checked`]).
pub(crate) fn read_table(
    r: &mut Reader,
    what: &'static str,
    depth: usize,
) -> Result<FieldTable, WireError> {
    check_depth(depth, what)?;
    let wire = r.long_prefixed(what)?;
    check_pairs(&mut Reader::new(&wire[..]), what, depth)?;
    Ok(FieldTable::from_checked(wire))
}

/// The entries of table pairs that [`check_pairs`] accepted, read through a [`TableRef`] (so
/// nothing here fails; if it did, the entries read until then would be kept). A repeated key
/// keeps its first position and its last value. Keys too long to be kept inline, long strings
/// and nested tables share `wire`'s buffer.
fn parse_checked(wire: &Bytes) -> Vec<(ShortStr, FieldValue)> {
    // A guess from the length (entries are rarely under 16 octets) saves regrowing the vector;
    // capped, so a hostile length cannot make it large.
    let mut entries = Vec::with_capacity((wire.len() / 16).min(32));
    let mut dedup = Dedup::default();
    for (key, value) in TableRef::from_checked(wire) {
        let key = if key.len() <= crate::shortstr::INLINE {
            ShortStr::copy_checked(key.as_bytes())
        } else {
            ShortStr::from_checked_bytes(share(wire, key.as_bytes()))
        };
        dedup.push(&mut entries, key, owned_value(wire, value));
    }
    entries
}

/// The owned form of `value`, read from `wire`'s octets: its octets and those of the tables
/// and arrays in it share `wire`'s buffer. A nested table stays in its wire form, to be parsed
/// when first asked; an array is built now.
pub(crate) fn owned_value(wire: &Bytes, value: FieldValueRef<'_>) -> FieldValue {
    match value {
        FieldValueRef::Bool(v) => FieldValue::Bool(v),
        FieldValueRef::I8(v) => FieldValue::I8(v),
        FieldValueRef::U8(v) => FieldValue::U8(v),
        FieldValueRef::I16(v) => FieldValue::I16(v),
        FieldValueRef::U16(v) => FieldValue::U16(v),
        FieldValueRef::I32(v) => FieldValue::I32(v),
        FieldValueRef::U32(v) => FieldValue::U32(v),
        FieldValueRef::I64(v) => FieldValue::I64(v),
        FieldValueRef::F32(v) => FieldValue::F32(v),
        FieldValueRef::F64(v) => FieldValue::F64(v),
        FieldValueRef::Decimal(v) => FieldValue::Decimal(v),
        FieldValueRef::LongStr(s) => FieldValue::LongStr(share(wire, s)),
        FieldValueRef::Array(a) => FieldValue::Array(owned_array(wire, a)),
        FieldValueRef::Timestamp(t) => FieldValue::Timestamp(t),
        FieldValueRef::Table(t) => {
            FieldValue::Table(FieldTable::from_checked(share(wire, t.as_bytes())))
        }
        FieldValueRef::Void => FieldValue::Void,
        FieldValueRef::ByteArray(b) => FieldValue::ByteArray(share(wire, b)),
    }
}

/// The owned form of `array`, read from `wire`'s octets (see [`owned_value`]).
pub(crate) fn owned_array(wire: &Bytes, array: ArrayRef<'_>) -> FieldArray {
    let mut values = Vec::new();
    for value in array {
        values.push(owned_value(wire, value));
    }
    FieldArray(values)
}

/// `octets`, a slice of `wire`'s octets, as a slice of `wire` sharing its buffer. (Were it not
/// one, which the callers rule out, it would be copied.)
fn share(wire: &Bytes, octets: &[u8]) -> Bytes {
    if octets.is_empty() {
        return Bytes::new();
    }
    let start = (octets.as_ptr() as usize).wrapping_sub(wire.as_ptr() as usize);
    match start.checked_add(octets.len()) {
        Some(end) if end <= wire.len() => wire.slice(start..end),
        _ => Bytes::copy_from_slice(octets),
    }
}

pub(crate) fn write_table(dst: &mut BytesMut, table: &FieldTable) {
    if !table.wire.is_empty() {
        // A decoded, unchanged table: its own octets.
        put_long_str(dst, &table.wire);
        return;
    }
    put_sized(dst, |dst| {
        for (key, value) in table.entries() {
            put_short_str(dst, key);
            write_value(dst, value);
        }
    });
}

fn write_array(dst: &mut BytesMut, array: &FieldArray) {
    put_sized(dst, |dst| {
        for value in &array.0 {
            write_value(dst, value);
        }
    });
}

fn write_value(dst: &mut BytesMut, value: &FieldValue) {
    dst.put_u8(value.tag());
    match value {
        FieldValue::Bool(v) => dst.put_u8(u8::from(*v)),
        FieldValue::I8(v) => dst.put_i8(*v),
        FieldValue::U8(v) => dst.put_u8(*v),
        FieldValue::I16(v) => dst.put_i16(*v),
        FieldValue::U16(v) => dst.put_u16(*v),
        FieldValue::I32(v) => dst.put_i32(*v),
        FieldValue::U32(v) => dst.put_u32(*v),
        FieldValue::I64(v) => dst.put_i64(*v),
        FieldValue::F32(v) => dst.put_f32(*v),
        FieldValue::F64(v) => dst.put_f64(*v),
        FieldValue::Decimal(d) => {
            dst.put_u8(d.scale);
            dst.put_i32(d.value);
        }
        FieldValue::LongStr(b) | FieldValue::ByteArray(b) => put_long_str(dst, b),
        FieldValue::Array(a) => write_array(dst, a),
        FieldValue::Timestamp(t) => dst.put_u64(*t),
        FieldValue::Table(t) => write_table(dst, t),
        FieldValue::Void => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &'static [u8]) -> Result<FieldTable, WireError> {
        let mut r = Reader::new(Bytes::from_static(bytes));
        let t = r.table("t")?;
        r.finish("t")?;
        Ok(t)
    }

    #[test]
    fn insert_replaces_in_place_and_remove_keeps_order() {
        let mut t = FieldTable::new();
        assert_eq!(t.insert("a", 1i32).unwrap(), None);
        t.insert("b", 2i32).unwrap();
        t.insert("c", 3i32).unwrap();
        assert_eq!(t.insert("a", 9i64).unwrap(), Some(FieldValue::I32(1)));
        let keys: Vec<&str> = t.keys().map(|k| k.as_str()).collect();
        assert_eq!(keys, ["a", "b", "c"]);
        assert_eq!(t.remove("b"), Some(FieldValue::I32(2)));
        let keys: Vec<&str> = t.keys().map(|k| k.as_str()).collect();
        assert_eq!(keys, ["a", "c"]);
        assert_eq!(t.get_i64("a"), Some(9));
    }

    #[test]
    fn overlong_key_is_an_error_and_changes_nothing() {
        let mut t = FieldTable::new();
        let err = t.insert(&"k".repeat(300), true).unwrap_err();
        assert_eq!(
            err,
            WireError::StringTooLong {
                what: "field table key",
                len: 300,
                max: 255
            }
        );
        assert!(t.is_empty());
    }

    #[test]
    fn duplicate_keys_on_the_wire_keep_first_position_last_value() {
        let t = decode(b"\x00\x00\x00\x0c\x01aB\x01\x01bB\x02\x01aB\x03").unwrap();
        assert_eq!(t.len(), 2);
        let pairs: Vec<(&str, i64)> = t
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_i64().unwrap()))
            .collect();
        assert_eq!(pairs, [("a", 3), ("b", 2)]);
    }

    #[test]
    fn many_duplicates_use_the_index() {
        let mut wire = BytesMut::new();
        put_sized(&mut wire, |dst| {
            for round in 0..3u8 {
                for i in 0..100u8 {
                    put_short_str(dst, &ShortStr::new(&format!("k{i}")).unwrap());
                    dst.put_u8(b'B');
                    dst.put_u8(round);
                }
            }
        });
        let t = Reader::new(wire.freeze()).table("t").unwrap();
        assert_eq!(t.len(), 100);
        assert_eq!(t.keys().next().unwrap(), "k0");
        assert_eq!(t.keys().last().unwrap(), "k99");
        assert!(t.values().all(|v| *v == FieldValue::U8(2)));
    }

    #[test]
    fn a_decoded_table_changes_like_a_built_one() {
        let built = FieldTable::new()
            .with("a", 1i32)
            .unwrap()
            .with("b", "x")
            .unwrap();
        let mut wire = BytesMut::new();
        write_table(&mut wire, &built);
        let wire = wire.freeze();
        let decode = || Reader::new(wire.clone()).table("t").unwrap();

        // Unchanged: equal, and encoded as it came.
        let decoded = decode();
        assert_eq!(decoded, built);
        assert_eq!(decoded.len(), 2);
        assert!(!decoded.is_empty());
        let mut again = BytesMut::new();
        write_table(&mut again, &decoded);
        assert_eq!(again.freeze(), wire);

        // Every change works on the entries, and the table is then written from them.
        let mut t = decode();
        assert_eq!(t.insert("a", 2i64).unwrap(), Some(FieldValue::I32(1)));
        assert_eq!(t.insert_key(ShortStr::from_static("c"), true), None);
        *t.value_mut("b").unwrap() = FieldValue::from("y");
        assert_eq!(t.remove("c"), Some(FieldValue::Bool(true)));
        let expected = FieldTable::new()
            .with("a", 2i64)
            .unwrap()
            .with("b", "y")
            .unwrap();
        assert_eq!(t, expected);
        let (mut ours, mut theirs) = (BytesMut::new(), BytesMut::new());
        write_table(&mut ours, &t);
        write_table(&mut theirs, &expected);
        assert_eq!(ours, theirs);

        let mut t = decode();
        t.clear();
        assert!(t.is_empty());
        let mut empty = BytesMut::new();
        write_table(&mut empty, &t);
        assert_eq!(&empty[..], b"\x00\x00\x00\x00");

        let pairs: Vec<(ShortStr, FieldValue)> = decode().into_iter().collect();
        assert_eq!(pairs.len(), 2);
        assert_eq!(
            pairs[1],
            (ShortStr::from_static("b"), FieldValue::from("x"))
        );
    }

    #[test]
    fn extend_replaces_keys_already_present() {
        let mut wire = BytesMut::new();
        write_table(&mut wire, &FieldTable::new().with("a", 1i32).unwrap());
        for mut t in [
            FieldTable::new().with("a", 1i32).unwrap(),
            Reader::new(wire.clone().freeze()).table("t").unwrap(),
        ] {
            t.extend([
                (ShortStr::from_static("a"), FieldValue::I32(2)),
                (ShortStr::from_static("b"), FieldValue::I32(3)),
            ]);
            assert_eq!(t.len(), 2);
            assert_eq!(t.get_i64("a"), Some(2));
            assert_eq!(t.get_i64("b"), Some(3));
        }
    }

    #[test]
    fn capital_l_reads_as_i64() {
        let t = decode(b"\x00\x00\x00\x0b\x01nL\xff\xff\xff\xff\xff\xff\xff\xfe").unwrap();
        assert_eq!(t.get("n"), Some(&FieldValue::I64(-2)));
    }

    #[test]
    fn unknown_tag_is_named() {
        assert_eq!(
            decode(b"\x00\x00\x00\x03\x01kU"),
            Err(WireError::UnknownFieldType {
                what: "t",
                tag: b'U'
            })
        );
    }

    #[test]
    fn value_running_past_the_table_end_is_truncated() {
        // The table claims 4 octets, but its only value needs 4 more.
        assert_eq!(
            decode(b"\x00\x00\x00\x04\x01kI\x00\x00\x00\x00\x01"),
            Err(WireError::Truncated { what: "t" })
        );
    }

    #[test]
    fn parsed_entries_share_the_wire_octets() {
        let long_key = "k".repeat(crate::shortstr::INLINE + 1);
        let built = FieldTable::new()
            .with(&long_key, "a long string's octets")
            .unwrap()
            .with("x", Bytes::from_static(b"\x00\x01"))
            .unwrap()
            .with("t", FieldTable::new().with("n", 1i32).unwrap())
            .unwrap()
            .with("a", vec![FieldValue::from("in an array")])
            .unwrap();
        let mut wire = BytesMut::new();
        write_table(&mut wire, &built);
        let wire = wire.freeze();
        let within = |octets: &[u8]| {
            let range = wire.as_ptr_range();
            range.contains(&octets.as_ptr()) && octets.as_ptr_range().end <= range.end
        };
        let t = Reader::new(wire.clone()).table("t").unwrap();
        assert_eq!(t, built);
        let (key, value) = t.iter().next().unwrap();
        assert!(within(key.as_bytes()));
        assert!(within(value.as_bytes().unwrap()));
        assert!(within(t.get_bytes("x").unwrap()));
        assert!(within(&t.get_table("t").unwrap().wire));
        assert!(within(t.get_array("a").unwrap()[0].as_bytes().unwrap()));
        // Short keys are kept inline.
        assert!(!within(t.keys().nth(1).unwrap().as_bytes()));
    }

    #[test]
    fn sharing_octets_from_elsewhere_copies_them() {
        let whole = Bytes::from_static(b"abcdefgh");
        let wire = whole.slice(..6);
        let shared = share(&wire, &wire[2..4]);
        assert_eq!(shared, b"cd"[..]);
        assert_eq!(shared.as_ptr(), wire[2..].as_ptr());
        // Elsewhere, before the start, past the end, empty: copies (or nothing).
        let elsewhere = b"cdef".to_vec();
        for octets in [&elsewhere[..], &whole[4..], &whole[..0], &wire[6..]] {
            let copied = share(&wire, octets);
            assert_eq!(copied, octets);
            assert!(octets.is_empty() || copied.as_ptr() != octets.as_ptr());
        }
        assert_eq!(share(&whole.slice(2..), &whole[..4]), b"abcd"[..]);
    }

    #[test]
    fn float_equality_is_bitwise() {
        assert_eq!(FieldValue::F64(f64::NAN), FieldValue::F64(f64::NAN));
        assert_ne!(FieldValue::F64(0.0), FieldValue::F64(-0.0));
    }

    #[test]
    fn integer_getters_widen() {
        let t = FieldTable::new()
            .with("a", 7u8)
            .unwrap()
            .with("b", -3i16)
            .unwrap()
            .with("c", u32::MAX)
            .unwrap()
            .with("s", "text")
            .unwrap();
        assert_eq!(t.get_i64("a"), Some(7));
        assert_eq!(t.get_i64("b"), Some(-3));
        assert_eq!(t.get_i64("c"), Some(i64::from(u32::MAX)));
        assert_eq!(t.get_i64("s"), None);
        assert_eq!(t.get_str("s"), Some("text"));
        assert_eq!(t.get_bytes("s").map(|b| &b[..]), Some(&b"text"[..]));
    }
}
