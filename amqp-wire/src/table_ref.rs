//! Borrowed views of field tables, arrays and their values, over octets still in the read
//! buffer: what [`FrameRef`](crate::FrameRef) hands out instead of owned [`FieldTable`]s.
//!
//! This is the only place that knows how each tag's value is laid out when decoding: the owned
//! [`FieldTable`] builds its entries by reading its octets through a [`TableRef`] and turning
//! each [`FieldValueRef`] into a [`FieldValue`] that shares its buffer.

use core::fmt;
use core::iter::FusedIterator;

use bytes::Bytes;

use crate::codec::Reader;
use crate::table::{self, Decimal, FieldArray, FieldTable, FieldValue};
use crate::{Timestamp, WireError};

/// What errors from checking a table with [`TableRef::new`] name.
const WHAT: &str = "field table";

/// A field table looked at where it lies: its pairs (the octets after the length), checked in
/// full when the frame holding them was decoded (or by [`new`](Self::new)).
///
/// Nothing is built: [`iter`](Self::iter) and the getters read the pairs each time they are
/// called, and hand out borrowed [`FieldValueRef`]s. [`into_owned`](Self::into_owned) makes a
/// [`FieldTable`].
///
/// A key may appear more than once on the wire. [`iter`](Self::iter) shows the pairs as they
/// are, in wire order, a repeated key each time it appears (unlike [`FieldTable::iter`], which
/// shows each key once, at its first position, with its last value); [`get`](Self::get) and the
/// typed getters answer like [`FieldTable::get`] and its typed getters: the last value for the
/// key.
///
/// Equality compares the octets: two views are equal when their pairs are the same octets.
/// Tables with the same entries written differently (a repeated key, `L` for `l`, another
/// order) are not equal; compare their [`into_owned`](Self::into_owned) forms for that.
///
/// ```
/// use amqp_wire::{FieldValue, TableRef};
///
/// // "a" = U8 1, "b" = LongStr "x", "a" = U8 3: "a" is on the wire twice.
/// let pairs = b"\x01aB\x01\x01bS\x00\x00\x00\x01x\x01aB\x03";
/// let table = TableRef::new(pairs)?;
/// let keys: Vec<&str> = table.iter().map(|(k, _)| k).collect();
/// assert_eq!(keys, ["a", "b", "a"]);
/// assert_eq!(table.get_i64("a"), Some(3));
/// assert_eq!(table.get_str("b"), Some("x"));
///
/// let owned = table.into_owned();
/// assert_eq!(owned.len(), 2);
/// assert_eq!(owned.get("a"), Some(&FieldValue::U8(3)));
/// assert!(TableRef::new(b"\x01aU").is_err());
/// # Ok::<(), amqp_wire::WireError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct TableRef<'a> {
    pairs: &'a [u8],
}

impl<'a> TableRef<'a> {
    /// Checks `pairs`, a table's octets after its length, exactly as decoding a table does
    /// ([`Reader::table`]), with the same errors (naming `"field table"`); nesting counts from
    /// this table as depth 1.
    pub fn new(pairs: &'a [u8]) -> Result<Self, WireError> {
        table::check_pairs(&mut Reader::new(pairs), WHAT, 1)?;
        Ok(Self { pairs })
    }

    /// A view of `pairs` that a check has accepted.
    pub(crate) fn from_checked(pairs: &'a [u8]) -> Self {
        Self { pairs }
    }

    /// The pairs' wire octets (without the length prefix).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.pairs
    }

    /// An owned table of the same entries (a copy of the octets).
    pub fn into_owned(self) -> FieldTable {
        FieldTable::from_checked(Bytes::copy_from_slice(self.pairs))
    }

    /// Whether the table has no pairs.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The pairs in wire order: a key that appears more than once on the wire appears as many
    /// times here, each time with the value it has there (unlike [`FieldTable::iter`]).
    pub fn iter(&self) -> TableRefIter<'a> {
        TableRefIter { rest: self.pairs }
    }

    /// The value of `key`: the last one on the wire if the key appears more than once, as
    /// [`FieldTable::get`] answers.
    pub fn get(&self, key: &str) -> Option<FieldValueRef<'a>> {
        self.iter()
            .filter(|&(k, _)| k == key)
            .last()
            .map(|(_, v)| v)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.iter().any(|(k, _)| k == key)
    }

    /// The boolean value of `key` ([`FieldValueRef::as_bool`]).
    pub fn get_bool(&self, key: &str) -> Option<bool> {
        self.get(key)?.as_bool()
    }

    /// The integer value of `key`, whatever its width ([`FieldValueRef::as_i64`]).
    pub fn get_i64(&self, key: &str) -> Option<i64> {
        self.get(key)?.as_i64()
    }

    /// The float value of `key` ([`FieldValueRef::as_f64`]).
    pub fn get_f64(&self, key: &str) -> Option<f64> {
        self.get(key)?.as_f64()
    }

    /// The text of `key`'s long string, if it is UTF-8 ([`FieldValueRef::as_str`]).
    pub fn get_str(&self, key: &str) -> Option<&'a str> {
        self.get(key)?.as_str()
    }

    /// The octets of `key`'s long string or byte array ([`FieldValueRef::as_bytes`]).
    pub fn get_bytes(&self, key: &str) -> Option<&'a [u8]> {
        self.get(key)?.as_bytes()
    }

    /// The timestamp value of `key`.
    pub fn get_timestamp(&self, key: &str) -> Option<Timestamp> {
        self.get(key)?.as_timestamp()
    }

    /// The nested table under `key`.
    pub fn get_table(&self, key: &str) -> Option<Self> {
        self.get(key)?.as_table()
    }

    /// The array under `key`.
    pub fn get_array(&self, key: &str) -> Option<ArrayRef<'a>> {
        self.get(key)?.as_array()
    }
}

/// The pairs as a map, in wire order (a repeated key shows each time it is on the wire).
impl fmt::Debug for TableRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for TableRef<'a> {
    type Item = (&'a str, FieldValueRef<'a>);
    type IntoIter = TableRefIter<'a>;

    fn into_iter(self) -> TableRefIter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &TableRef<'a> {
    type Item = (&'a str, FieldValueRef<'a>);
    type IntoIter = TableRefIter<'a>;

    fn into_iter(self) -> TableRefIter<'a> {
        self.iter()
    }
}

/// Iterator over a [`TableRef`]'s pairs, in wire order.
#[derive(Debug, Clone)]
pub struct TableRefIter<'a> {
    /// The pairs not read yet.
    rest: &'a [u8],
}

impl<'a> Iterator for TableRefIter<'a> {
    type Item = (&'a str, FieldValueRef<'a>);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let pair =
            read_key(&mut self.rest).and_then(|key| Some((key, read_value(&mut self.rest)?)));
        // Checked octets always hold whole pairs; anything else ends the iteration.
        if pair.is_none() {
            self.rest = &[];
        }
        pair
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // A pair takes at least two octets: the key's length and the value's tag.
        let len = self.rest.len();
        (usize::from(len > 0), Some(len.div_ceil(2)))
    }
}

impl FusedIterator for TableRefIter<'_> {}

/// A field array (`A`) looked at where it lies: its values (the octets after the length),
/// checked with the table holding them.
///
/// Equality compares the octets, as for [`TableRef`].
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct ArrayRef<'a> {
    values: &'a [u8],
}

impl<'a> ArrayRef<'a> {
    /// A view of `values` that a check has accepted.
    pub(crate) fn from_checked(values: &'a [u8]) -> Self {
        Self { values }
    }

    /// The values' wire octets (without the length prefix).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.values
    }

    /// Whether the array has no values.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The values in order.
    pub fn iter(&self) -> ArrayRefIter<'a> {
        ArrayRefIter { rest: self.values }
    }

    /// An owned array of the same values (one copy of the octets, which the values' strings
    /// and nested tables then share).
    pub fn into_owned(self) -> FieldArray {
        let wire = Bytes::copy_from_slice(self.values);
        table::owned_array(&wire, ArrayRef::from_checked(&wire))
    }
}

/// The values as a list.
impl fmt::Debug for ArrayRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for ArrayRef<'a> {
    type Item = FieldValueRef<'a>;
    type IntoIter = ArrayRefIter<'a>;

    fn into_iter(self) -> ArrayRefIter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &ArrayRef<'a> {
    type Item = FieldValueRef<'a>;
    type IntoIter = ArrayRefIter<'a>;

    fn into_iter(self) -> ArrayRefIter<'a> {
        self.iter()
    }
}

/// Iterator over an [`ArrayRef`]'s values, in order.
#[derive(Debug, Clone)]
pub struct ArrayRefIter<'a> {
    /// The values not read yet.
    rest: &'a [u8],
}

impl<'a> Iterator for ArrayRefIter<'a> {
    type Item = FieldValueRef<'a>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let value = read_value(&mut self.rest);
        // Checked octets always hold whole values; anything else ends the iteration.
        if value.is_none() {
            self.rest = &[];
        }
        value
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // A value takes at least its tag's octet.
        let len = self.rest.len();
        (usize::from(len > 0), Some(len))
    }
}

impl FusedIterator for ArrayRefIter<'_> {}

/// One value in a [`TableRef`] or [`ArrayRef`], where it lies: the borrowed form of
/// [`FieldValue`], variant for variant, with the same accessors giving the same answers.
///
/// Equality compares floats by their bits, as [`FieldValue`]'s does, and tables and arrays by
/// their octets.
#[derive(Clone, Copy)]
pub enum FieldValueRef<'a> {
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
    /// `l` or `L`: a signed 64-bit integer.
    I64(i64),
    /// `f`: a 32-bit float.
    F32(f32),
    /// `d`: a 64-bit float.
    F64(f64),
    /// `D`: a decimal.
    Decimal(Decimal),
    /// `S`: a long string, octets with no encoding requirement.
    LongStr(&'a [u8]),
    /// `A`: an array of values.
    Array(ArrayRef<'a>),
    /// `T`: a timestamp, seconds since the Unix epoch.
    Timestamp(Timestamp),
    /// `F`: a nested table.
    Table(TableRef<'a>),
    /// `V`: no value.
    Void,
    /// `x`: a byte array.
    ByteArray(&'a [u8]),
}

impl<'a> FieldValueRef<'a> {
    crate::table::scalar_accessors!();

    /// The text of a `LongStr` that is valid UTF-8 (not of a `ByteArray`).
    pub fn as_str(&self) -> Option<&'a str> {
        match *self {
            Self::LongStr(s) => core::str::from_utf8(s).ok(),
            _ => None,
        }
    }

    /// The octets of a `LongStr` or a `ByteArray`.
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match *self {
            Self::LongStr(b) | Self::ByteArray(b) => Some(b),
            _ => None,
        }
    }

    /// The nested table, if this is `Table`.
    pub fn as_table(&self) -> Option<TableRef<'a>> {
        match *self {
            Self::Table(t) => Some(t),
            _ => None,
        }
    }

    /// The array, if this is `Array`.
    pub fn as_array(&self) -> Option<ArrayRef<'a>> {
        match *self {
            Self::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The owned value (strings, tables and arrays copied).
    pub fn into_owned(self) -> FieldValue {
        match self {
            Self::LongStr(s) => FieldValue::LongStr(Bytes::copy_from_slice(s)),
            Self::ByteArray(b) => FieldValue::ByteArray(Bytes::copy_from_slice(b)),
            Self::Table(t) => FieldValue::Table(t.into_owned()),
            Self::Array(a) => FieldValue::Array(a.into_owned()),
            // Nothing left that borrows: no octets to share.
            scalar => table::owned_value(&Bytes::new(), scalar),
        }
    }
}

impl PartialEq for FieldValueRef<'_> {
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

impl Eq for FieldValueRef<'_> {}

/// Prints like [`FieldValue`]'s `Debug`: octets as a byte string literal, tables as maps,
/// arrays as lists.
impl fmt::Debug for FieldValueRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, value): (&str, &dyn fmt::Debug) = match self {
            Self::Bool(v) => ("Bool", v),
            Self::I8(v) => ("I8", v),
            Self::U8(v) => ("U8", v),
            Self::I16(v) => ("I16", v),
            Self::U16(v) => ("U16", v),
            Self::I32(v) => ("I32", v),
            Self::U32(v) => ("U32", v),
            Self::I64(v) => ("I64", v),
            Self::F32(v) => ("F32", v),
            Self::F64(v) => ("F64", v),
            Self::Decimal(v) => ("Decimal", v),
            Self::LongStr(v) => ("LongStr", &Octets(v)),
            Self::Array(v) => ("Array", v),
            Self::Timestamp(v) => ("Timestamp", v),
            Self::Table(v) => ("Table", v),
            Self::Void => return f.write_str("Void"),
            Self::ByteArray(v) => ("ByteArray", &Octets(v)),
        };
        f.debug_tuple(name).field(value).finish()
    }
}

/// Octets printed as a byte string literal (`b"..."`, anything but printable ASCII escaped).
struct Octets<'a>(&'a [u8]);

impl fmt::Debug for Octets<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}

/// The next `N` octets of `rest`, taken off it.
#[inline]
fn take<const N: usize>(rest: &mut &[u8]) -> Option<[u8; N]> {
    let (taken, after) = rest.split_first_chunk::<N>()?;
    *rest = after;
    Some(*taken)
}

/// The next `len` octets of `rest`, taken off it.
#[inline]
fn take_slice<'a>(rest: &mut &'a [u8], len: usize) -> Option<&'a [u8]> {
    let (taken, after) = rest.split_at_checked(len)?;
    *rest = after;
    Some(taken)
}

/// A run of octets after its length as a u32 (a long string, an array, a table).
#[inline]
fn read_long<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = usize::try_from(u32::from_be_bytes(take(rest)?)).ok()?;
    take_slice(rest, len)
}

/// A key: a short string.
#[inline]
fn read_key<'a>(rest: &mut &'a [u8]) -> Option<&'a str> {
    let [len] = take(rest)?;
    core::str::from_utf8(take_slice(rest, usize::from(len))?).ok()
}

/// Reads a tag and its value off `rest`: the one place that knows how each tag's value is laid
/// out when decoding (the checks in [`table`] only pass over values).
///
/// Nested tables and arrays are not read, only marked out, so this never recurses. It reads
/// octets that a check has accepted, so it does not fail on them; on anything else it may give
/// `None`, and never panics.
#[inline]
fn read_value<'a>(rest: &mut &'a [u8]) -> Option<FieldValueRef<'a>> {
    let [tag] = take(rest)?;
    Some(match tag {
        b't' => FieldValueRef::Bool(take::<1>(rest)? != [0]),
        b'b' => FieldValueRef::I8(i8::from_be_bytes(take(rest)?)),
        b'B' => FieldValueRef::U8(u8::from_be_bytes(take(rest)?)),
        b's' => FieldValueRef::I16(i16::from_be_bytes(take(rest)?)),
        b'u' => FieldValueRef::U16(u16::from_be_bytes(take(rest)?)),
        b'I' => FieldValueRef::I32(i32::from_be_bytes(take(rest)?)),
        b'i' => FieldValueRef::U32(u32::from_be_bytes(take(rest)?)),
        // RabbitMQ reads `L` as a signed 64-bit integer too; we always write `l`.
        b'l' | b'L' => FieldValueRef::I64(i64::from_be_bytes(take(rest)?)),
        b'f' => FieldValueRef::F32(f32::from_be_bytes(take(rest)?)),
        b'd' => FieldValueRef::F64(f64::from_be_bytes(take(rest)?)),
        b'D' => {
            let [scale] = take(rest)?;
            FieldValueRef::Decimal(Decimal {
                scale,
                value: i32::from_be_bytes(take(rest)?),
            })
        }
        b'S' => FieldValueRef::LongStr(read_long(rest)?),
        b'A' => FieldValueRef::Array(ArrayRef::from_checked(read_long(rest)?)),
        b'T' => FieldValueRef::Timestamp(u64::from_be_bytes(take(rest)?)),
        b'F' => FieldValueRef::Table(TableRef::from_checked(read_long(rest)?)),
        b'V' => FieldValueRef::Void,
        b'x' => FieldValueRef::ByteArray(read_long(rest)?),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `pairs` with their length in front, decoded as an owned table.
    fn decode(pairs: &[u8]) -> Result<FieldTable, WireError> {
        let mut wire = u32::try_from(pairs.len()).unwrap().to_be_bytes().to_vec();
        wire.extend_from_slice(pairs);
        Reader::new(Bytes::from(wire)).table(WHAT)
    }

    // "a" = U8 1, "b" = LongStr "x", "c" = ByteArray "yz", "a" = L -2.
    const REPEATED: &[u8] =
        b"\x01aB\x01\x01bS\x00\x00\x00\x01x\x01cx\x00\x00\x00\x02yz\x01aL\xff\xff\xff\xff\xff\xff\xff\xfe";

    #[test]
    fn iteration_is_in_wire_order_and_get_takes_the_last_value() {
        let t = TableRef::new(REPEATED).unwrap();
        let pairs: Vec<_> = t.iter().collect();
        assert_eq!(
            pairs,
            [
                ("a", FieldValueRef::U8(1)),
                ("b", FieldValueRef::LongStr(b"x")),
                ("c", FieldValueRef::ByteArray(b"yz")),
                ("a", FieldValueRef::I64(-2)),
            ]
        );
        assert_eq!(t.get("a"), Some(FieldValueRef::I64(-2)));
        assert_eq!(t.get("a").map(|v| v.tag()), Some(b'l'));
        assert_eq!(t.get_i64("a"), Some(-2));
        assert_eq!(t.get("z"), None);
        assert!(t.contains_key("c") && !t.contains_key("z"));
        assert!(!t.is_empty() && TableRef::default().is_empty());

        let owned = decode(REPEATED).unwrap();
        assert_eq!(t.into_owned(), owned);
        let keys: Vec<&str> = owned.keys().map(|k| k.as_str()).collect();
        assert_eq!(keys, ["a", "b", "c"]);
        for key in ["a", "b", "c", "z"] {
            assert_eq!(
                t.get(key).map(FieldValueRef::into_owned).as_ref(),
                owned.get(key)
            );
        }
    }

    #[test]
    fn getters_answer_like_the_owned_table() {
        let t = TableRef::new(REPEATED).unwrap();
        let owned = decode(REPEATED).unwrap();
        for key in ["a", "b", "c", "z"] {
            assert_eq!(t.get_str(key), owned.get_str(key));
            assert_eq!(t.get_bytes(key), owned.get_bytes(key).map(|b| &b[..]));
            assert_eq!(t.get_i64(key), owned.get_i64(key));
            assert_eq!(t.get_bool(key), owned.get_bool(key));
        }
        // A byte array has octets but no text; a long string has both.
        assert_eq!(t.get_str("c"), None);
        assert_eq!(t.get_bytes("c"), Some(&b"yz"[..]));
        assert_eq!(t.get_str("b"), Some("x"));
        // A long string that is not UTF-8 has octets only.
        let t = TableRef::new(b"\x01sS\x00\x00\x00\x01\xff").unwrap();
        assert_eq!(t.get_str("s"), None);
        assert_eq!(t.get_bytes("s"), Some(&b"\xff"[..]));
    }

    #[test]
    fn nested_tables_and_arrays() {
        let owned = FieldTable::new()
            .with(
                "t",
                FieldTable::new()
                    .with("n", 7u16)
                    .unwrap()
                    .with("f", 1.5f32)
                    .unwrap(),
            )
            .unwrap()
            .with(
                "a",
                FieldValue::from(vec![
                    FieldValue::from("s"),
                    FieldValue::Timestamp(9),
                    FieldValue::Decimal(Decimal::new(2, -314)),
                    FieldValue::Void,
                    FieldValue::from(true),
                ]),
            )
            .unwrap();
        let mut wire = bytes::BytesMut::new();
        crate::codec::put_table(&mut wire, &owned);
        let t = Reader::new(&wire[..]).table_ref("t").unwrap();
        assert_eq!(t, TableRef::new(wire.get(4..).unwrap()).unwrap());

        let inner = t.get_table("t").unwrap();
        assert_eq!(inner.get_i64("n"), Some(7));
        assert_eq!(inner.get_f64("f"), Some(1.5));
        assert_eq!(inner.into_owned(), *owned.get_table("t").unwrap());

        let array = t.get_array("a").unwrap();
        let values: Vec<_> = array.iter().collect();
        assert_eq!(values.len(), 5);
        assert_eq!(values[0].as_str(), Some("s"));
        assert_eq!(values[1].as_timestamp(), Some(9));
        assert_eq!(values[2].as_decimal(), Some(Decimal::new(2, -314)));
        assert!(values[3].is_void());
        assert_eq!(values[4].as_bool(), Some(true));
        assert_eq!(array.into_owned(), *owned.get_array("a").unwrap());
        assert_eq!(t.get("a").unwrap().into_owned(), *owned.get("a").unwrap());
        assert!(!array.is_empty() && ArrayRef::default().is_empty());
        assert_eq!(t.get_table("a"), None);
        assert_eq!(t.get_array("t"), None);
        assert_eq!(t.into_owned(), owned);
    }

    #[test]
    fn debug_prints_entries_not_octets() {
        let owned = FieldTable::new()
            .with("k", "v\n")
            .unwrap()
            .with("a", vec![FieldValue::I32(1), FieldValue::Void])
            .unwrap()
            .with("t", FieldTable::new().with("x", 2u8).unwrap())
            .unwrap();
        let mut wire = bytes::BytesMut::new();
        crate::codec::put_table(&mut wire, &owned);
        let t = Reader::new(&wire[..]).table_ref("t").unwrap();
        // As the owned table prints, but for arrays, which print as plain lists.
        assert_eq!(
            format!("{t:?}"),
            r#"{"k": LongStr(b"v\n"), "a": Array([I32(1), Void]), "t": Table({"x": U8(2)})}"#
        );
        let scalars = FieldTable::new()
            .with("n", -1i64)
            .unwrap()
            .with("s", "z")
            .unwrap();
        let mut wire = bytes::BytesMut::new();
        crate::codec::put_table(&mut wire, &scalars);
        let t = Reader::new(&wire[..]).table_ref("t").unwrap();
        assert_eq!(format!("{t:?}"), format!("{scalars:?}"));
        // A repeated key shows each time it is on the wire.
        assert_eq!(
            format!("{:?}", TableRef::new(REPEATED).unwrap()),
            r#"{"a": U8(1), "b": LongStr(b"x"), "c": ByteArray(b"yz"), "a": I64(-2)}"#
        );
    }

    #[test]
    fn new_checks_like_decoding() {
        let deep = |levels: usize| {
            let mut pairs = b"\x01kV".to_vec();
            for _ in 1..levels {
                let mut outer = b"\x01kF".to_vec();
                outer.extend_from_slice(&u32::try_from(pairs.len()).unwrap().to_be_bytes());
                outer.extend_from_slice(&pairs);
                pairs = outer;
            }
            pairs
        };
        for pairs in [
            &b""[..],
            b"\x01kU",
            b"\x01kI\x00\x00",
            b"\x05k",
            b"\x01\xffV",
            b"\x01kS\x00\x00\x00\x05abc",
            b"\x01kA\x00\x00\x00\x02Vz",
            &deep(FieldTable::MAX_DEPTH),
            &deep(FieldTable::MAX_DEPTH + 1),
            REPEATED,
        ] {
            assert_eq!(
                TableRef::new(pairs).map(TableRef::into_owned),
                decode(pairs)
            );
        }
        assert!(TableRef::new(&deep(FieldTable::MAX_DEPTH)).is_ok());
        assert_eq!(
            TableRef::new(&deep(FieldTable::MAX_DEPTH + 1)),
            Err(WireError::NestingTooDeep {
                what: WHAT,
                max: FieldTable::MAX_DEPTH
            })
        );
        assert_eq!(
            TableRef::new(b"\x01kU"),
            Err(WireError::UnknownFieldType {
                what: WHAT,
                tag: b'U'
            })
        );
    }

    #[test]
    fn unchecked_octets_end_the_iteration_without_panicking() {
        for pairs in [
            &b"\x01aB\x01\x01bI\x00"[..],
            b"\x01aB\x01\x01bU",
            b"\x01aB\x01\x09b",
            b"\x01aB\x01\x01\xff",
            b"\x01aB\x01\x01bS\xff\xff\xff\xff",
        ] {
            let t = TableRef::from_checked(pairs);
            let mut iter = t.iter();
            assert_eq!(iter.next(), Some(("a", FieldValueRef::U8(1))));
            assert_eq!(iter.next(), None);
            assert_eq!(iter.next(), None);
            assert_eq!(t.get_i64("a"), Some(1));
            assert_eq!(t.into_owned().get_i64("a"), Some(1));
            let a = ArrayRef::from_checked(pairs.get(2..).unwrap());
            assert_eq!(a.iter().count(), 1);
        }
    }

    proptest::proptest! {
        /// Octets that no check has seen are read as far as they make sense, and never panic.
        #[test]
        fn unchecked_octets_never_panic(octets in proptest::collection::vec(0u8..=255, 0..96)) {
            let t = TableRef::from_checked(&octets);
            let a = ArrayRef::from_checked(&octets);
            let _ = (t.iter().count(), a.iter().count(), t.get("k"), t.contains_key("k"));
            let _ = (format!("{t:?}"), format!("{a:?}"));
            let owned = t.into_owned();
            let _ = (owned.len(), a.into_owned().len());
            // What is read is what the owned table holds.
            for (key, value) in t {
                proptest::prop_assert!(owned.contains_key(key));
                let _ = value.into_owned();
            }
        }
    }

    #[test]
    fn values_answer_like_owned_values() {
        let values = [
            FieldValueRef::Bool(true),
            FieldValueRef::I8(-1),
            FieldValueRef::U8(255),
            FieldValueRef::I16(-300),
            FieldValueRef::U16(60_000),
            FieldValueRef::I32(i32::MIN),
            FieldValueRef::U32(u32::MAX),
            FieldValueRef::I64(i64::MAX),
            FieldValueRef::F32(f32::NAN),
            FieldValueRef::F64(-0.0),
            FieldValueRef::Decimal(Decimal::new(3, 12)),
            FieldValueRef::LongStr(b"text"),
            FieldValueRef::Array(ArrayRef::from_checked(b"B\x01V")),
            FieldValueRef::Timestamp(1_700_000_000),
            FieldValueRef::Table(TableRef::from_checked(b"\x01kV")),
            FieldValueRef::Void,
            FieldValueRef::ByteArray(b"\x00\x01"),
        ];
        for v in values {
            let owned = v.into_owned();
            assert_eq!(v, v);
            assert_eq!(v.tag(), owned.tag());
            assert_eq!(v.as_bool(), owned.as_bool());
            assert_eq!(v.as_i64(), owned.as_i64());
            assert_eq!(
                v.as_f64().map(f64::to_bits),
                owned.as_f64().map(f64::to_bits)
            );
            assert_eq!(v.as_str(), owned.as_str());
            assert_eq!(v.as_bytes(), owned.as_bytes().map(|b| &b[..]));
            assert_eq!(v.as_decimal(), owned.as_decimal());
            assert_eq!(v.as_timestamp(), owned.as_timestamp());
            assert_eq!(
                v.as_table().map(TableRef::into_owned).as_ref(),
                owned.as_table()
            );
            assert_eq!(
                v.as_array().map(ArrayRef::into_owned).as_ref(),
                owned.as_array()
            );
            assert_eq!(v.is_void(), owned.is_void());
        }
        assert_ne!(FieldValueRef::F64(0.0), FieldValueRef::F64(-0.0));
        assert_ne!(FieldValueRef::LongStr(b"x"), FieldValueRef::ByteArray(b"x"));
    }
}
