//! The primitive readers and writers that frames, properties and the generated method codecs are
//! built from.
//!
//! Decoding goes through [`Reader`], a cursor over a [`Bytes`] payload: every read checks the
//! remaining length first and fails with a [`WireError`] naming the field, and strings come back
//! as slices of the payload (no copy). Encoding appends to a caller's [`BytesMut`] with the `put_*`
//! functions below, plus [`bytes::BufMut`] for the integers.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::table::{self, FieldTable};
use crate::TableRef;
use crate::{ShortStr, Timestamp, WireError};

/// A cursor over one payload (a method frame's arguments, a content header, a field table).
///
/// Every method takes `what`, the name of the field being read, e.g. `"basic.publish.exchange"`,
/// which the error carries if the read fails. None of them panics, whatever the input.
///
/// ```
/// use amqp_wire::Reader;
/// use bytes::Bytes;
///
/// let mut r = Reader::new(Bytes::from_static(b"\x00\x2a\x05hello"));
/// assert_eq!(r.u16("ticket")?, 42);
/// assert_eq!(r.short_str("queue")?, "hello");
/// r.finish("queue.declare")?;
/// assert!(r.u8("more").is_err());
/// # Ok::<(), amqp_wire::WireError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Reader<B = Bytes> {
    buf: B,
}

impl<B: Buf> Reader<B> {
    /// Starts reading at the beginning of `buf`.
    pub fn new(buf: B) -> Self {
        Self { buf }
    }

    /// How many bytes are left.
    pub fn remaining(&self) -> usize {
        self.buf.remaining()
    }

    /// The bytes not read yet.
    pub fn into_rest(self) -> B {
        self.buf
    }

    /// Succeeds only if every byte has been read; `what` names the enclosing structure.
    pub fn finish(&self, what: &'static str) -> Result<(), WireError> {
        match self.buf.remaining() {
            0 => Ok(()),
            count => Err(WireError::TrailingBytes { what, count }),
        }
    }

    fn need(&self, n: usize, what: &'static str) -> Result<(), WireError> {
        if self.buf.remaining() < n {
            return Err(WireError::Truncated { what });
        }
        Ok(())
    }

    /// An octet.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, WireError> {
        self.need(1, what)?;
        Ok(self.buf.get_u8())
    }

    /// A big-endian 16-bit unsigned integer (`short`).
    pub fn u16(&mut self, what: &'static str) -> Result<u16, WireError> {
        self.need(2, what)?;
        Ok(self.buf.get_u16())
    }

    /// A big-endian 32-bit unsigned integer (`long`).
    pub fn u32(&mut self, what: &'static str) -> Result<u32, WireError> {
        self.need(4, what)?;
        Ok(self.buf.get_u32())
    }

    /// A big-endian 64-bit unsigned integer (`longlong`).
    pub fn u64(&mut self, what: &'static str) -> Result<u64, WireError> {
        self.need(8, what)?;
        Ok(self.buf.get_u64())
    }

    /// A timestamp: u64 seconds since the Unix epoch.
    pub fn timestamp(&mut self, what: &'static str) -> Result<Timestamp, WireError> {
        self.u64(what)
    }

    /// Passes over `n` octets.
    pub fn skip(&mut self, n: usize, what: &'static str) -> Result<(), WireError> {
        self.need(n, what)?;
        self.buf.advance(n);
        Ok(())
    }

    /// The length of a region prefixed by its length as a `long` (u32), checked against what
    /// is left.
    fn long_len(&mut self, what: &'static str) -> Result<usize, WireError> {
        let len = self.u32(what)?;
        // A length that does not fit in usize cannot fit in the buffer either.
        let len = usize::try_from(len).map_err(|_| WireError::Truncated { what })?;
        self.need(len, what)?;
        Ok(len)
    }
}

impl Reader<Bytes> {
    /// The next `len` bytes, as a slice sharing the payload's buffer.
    pub(crate) fn bytes(&mut self, len: usize, what: &'static str) -> Result<Bytes, WireError> {
        self.need(len, what)?;
        Ok(self.buf.split_to(len))
    }

    /// A run of bytes prefixed by its length as a `long` (u32).
    pub(crate) fn long_prefixed(&mut self, what: &'static str) -> Result<Bytes, WireError> {
        let len = self.long_len(what)?;
        Ok(self.buf.split_to(len))
    }

    /// A short string: one length octet, then that many octets of UTF-8.
    ///
    /// A string short enough to be kept inline is copied; a longer one shares the payload's
    /// buffer.
    #[inline]
    pub fn short_str(&mut self, what: &'static str) -> Result<ShortStr, WireError> {
        // With a whole inline string's worth of octets ahead, length octet included, copy that
        // fixed-size window (two register moves) instead of exactly the string's octets.
        if let Some(window) = inline_window(&self.buf) {
            let s = ShortStr::from_window(window, what)?;
            self.buf.advance(1 + usize::from(window[0]));
            return Ok(s);
        }
        let len = usize::from(self.u8(what)?);
        if len <= crate::shortstr::INLINE {
            let s = ShortStr::from_slice(
                self.buf.get(..len).ok_or(WireError::Truncated { what })?,
                what,
            )?;
            self.buf.advance(len);
            return Ok(s);
        }
        let bytes = self.bytes(len, what)?;
        ShortStr::from_bytes(bytes, what)
    }

    /// A long string: a u32 length, then that many octets (any encoding). The result shares the
    /// payload's buffer.
    pub fn long_str(&mut self, what: &'static str) -> Result<Bytes, WireError> {
        self.long_prefixed(what)
    }

    /// A field table: a u32 length in octets, then key/value pairs.
    ///
    /// Tables and arrays nested deeper than [`FieldTable::MAX_DEPTH`] are rejected with
    /// [`WireError::NestingTooDeep`]. A key that appears twice keeps its first position and its
    /// last value, exactly as if the pairs had been [inserted](FieldTable::insert) in order.
    pub fn table(&mut self, what: &'static str) -> Result<FieldTable, WireError> {
        table::read_table(self, what, 1)
    }
}

/// Borrowed reads: the value is checked exactly as the [`Reader<Bytes>`] method of the same name
/// without `_ref` would decode it (the same errors), and left where it lies.
impl<'a> Reader<&'a [u8]> {
    /// The next `len` octets, taken off the front.
    #[inline]
    fn take(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        let (taken, rest) = self
            .buf
            .split_at_checked(len)
            .ok_or(WireError::Truncated { what })?;
        self.buf = rest;
        Ok(taken)
    }

    /// A short string: one length octet, then that many octets of UTF-8.
    #[inline]
    pub fn short_str_ref(&mut self, what: &'static str) -> Result<&'a str, WireError> {
        let len = usize::from(self.u8(what)?);
        core::str::from_utf8(self.take(len, what)?).map_err(|_| WireError::InvalidUtf8 { what })
    }

    /// A long string: a u32 length, then that many octets (any encoding).
    pub fn long_str_ref(&mut self, what: &'static str) -> Result<&'a [u8], WireError> {
        let len = self.long_len(what)?;
        self.take(len, what)
    }

    /// A field table: a u32 length in octets, then key/value pairs, checked in full.
    pub fn table_ref(&mut self, what: &'static str) -> Result<TableRef<'a>, WireError> {
        let before = self.buf;
        table::check_table(self, what, 1)?;
        let read = before.len() - self.buf.len();
        Ok(TableRef::from_checked(
            before.get(4..read).unwrap_or_default(),
        ))
    }
}

/// Checking without building: these pass over a value after checking it exactly as the
/// [`Reader<Bytes>`] method of the same name would decode it, and fail with the same error.
impl Reader<&[u8]> {
    /// Passes over a short string, checking its length and UTF-8.
    #[inline]
    pub fn skip_short_str(&mut self, what: &'static str) -> Result<(), WireError> {
        let len = usize::from(self.u8(what)?);
        let text = self.take(len, what)?;
        crate::shortstr::check_utf8(text, what)
    }

    /// Passes over a long string.
    pub fn skip_long_str(&mut self, what: &'static str) -> Result<(), WireError> {
        let len = self.long_len(what)?;
        self.buf.advance(len);
        Ok(())
    }

    /// Passes over a field table, checking everything [`Reader::table`] checks.
    pub fn skip_table(&mut self, what: &'static str) -> Result<(), WireError> {
        table::check_table(self, what, 1)
    }

    /// Passes over a length-prefixed region and returns a reader over just that region.
    pub(crate) fn sub_reader(&mut self, what: &'static str) -> Result<Self, WireError> {
        let len = self.long_len(what)?;
        Ok(Self::new(self.take(len, what)?))
    }
}

/// Where the generated method decoders read strings and tables from: a payload in a [`Bytes`]
/// (strings longer than the inline size and tables share it), or the octets of a frame still in
/// the read buffer ([`InPlace`]).
pub(crate) trait Source: Buf + Sized {
    /// The decoding error.
    type Error: From<WireError>;

    /// A short string.
    fn short_str(r: &mut Reader<Self>, what: &'static str) -> Result<ShortStr, Self::Error>;

    /// A long string.
    fn long_str(r: &mut Reader<Self>, what: &'static str) -> Result<Bytes, Self::Error>;

    /// A field table.
    fn table(r: &mut Reader<Self>, what: &'static str) -> Result<FieldTable, Self::Error>;
}

impl Source for Bytes {
    type Error = WireError;

    #[inline]
    fn short_str(r: &mut Reader<Self>, what: &'static str) -> Result<ShortStr, WireError> {
        r.short_str(what)
    }

    #[inline]
    fn long_str(r: &mut Reader<Self>, what: &'static str) -> Result<Bytes, WireError> {
        r.long_str(what)
    }

    #[inline]
    fn table(r: &mut Reader<Self>, what: &'static str) -> Result<FieldTable, WireError> {
        r.table(what)
    }
}

/// Why a method could not be decoded in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Borrowed {
    /// The octets are malformed: the error decoding from a `Bytes` gives too.
    Wire(WireError),
    /// A long string or a table, or more long short strings than [`LongStrs`] notes: decode
    /// from a `Bytes`.
    NeedsShared,
}

impl From<WireError> for Borrowed {
    fn from(error: WireError) -> Self {
        Self::Wire(error)
    }
}

/// The short strings of a method decoded in place that were too long to be kept inline: each was
/// checked where it lies and left there, and the method holds an empty string in its place until
/// [`fill`](Self::fill) puts in a slice of the frame's handle.
///
/// RabbitMQ's consumer tags (31 octets, in every `basic.deliver`) and its reply-to queue names
/// are such strings; noting them keeps their method on the in-place path, which then costs one
/// handle on the read buffer instead of a handle, a second decoding and a clone.
#[derive(Debug, Default)]
pub(crate) struct LongStrs {
    /// How many are noted in `at`.
    noted: u8,
    /// (index among the method's short strings, offset in the payload, length).
    at: [(u8, u32, u8); Self::MAX],
}

impl LongStrs {
    /// The most a method may have (`basic.return` has three short strings).
    const MAX: usize = 3;

    /// Whether none was noted: the method is whole.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.noted == 0
    }

    /// Puts the noted strings into `method`, as slices of `payload` (the frame's payload they
    /// were read from). The last one takes `payload` itself, narrowed, so a method with one long
    /// string touches no reference count here.
    pub(crate) fn fill(&self, method: &mut crate::Method, mut payload: Bytes) {
        let noted = self.at.get(..usize::from(self.noted)).unwrap_or_default();
        let Some((&(last_index, last_at, last_len), rest)) = noted.split_last() else {
            return;
        };
        for &(index, at, len) in rest {
            let start = at as usize;
            let end = (start + usize::from(len)).min(payload.len());
            if let Some(slot) = method.short_str_slot(index) {
                *slot = ShortStr::from_checked_bytes(payload.slice(start.min(end)..end));
            }
        }
        if let Some(slot) = method.short_str_slot(last_index) {
            let start = last_at as usize;
            payload.truncate(start + usize::from(last_len));
            payload.advance(start.min(payload.len()));
            *slot = ShortStr::from_checked_bytes(payload);
        }
    }
}

/// A method frame's payload read where it lies in the read buffer. A short string that does not
/// fit inline is checked and noted in a [`LongStrs`] rather than copied; a long string or a table
/// stops the decoding with [`Borrowed::NeedsShared`].
#[derive(Debug)]
pub(crate) struct InPlace<'a> {
    buf: &'a [u8],
    /// The payload's length, to turn what is left into an offset.
    len: usize,
    /// How many short strings the method has read so far, reserved ones included.
    read: u8,
    long: &'a mut LongStrs,
}

impl<'a> InPlace<'a> {
    /// Reads `payload` from the start, noting long short strings in `long` (which must be
    /// empty).
    #[inline]
    pub(crate) fn new(payload: &'a [u8], long: &'a mut LongStrs) -> Self {
        Self {
            buf: payload,
            len: payload.len(),
            read: 0,
            long,
        }
    }
}

impl Buf for InPlace<'_> {
    #[inline]
    fn remaining(&self) -> usize {
        self.buf.len()
    }

    #[inline]
    fn chunk(&self) -> &[u8] {
        self.buf
    }

    #[inline]
    fn advance(&mut self, cnt: usize) {
        self.buf = self.buf.get(cnt..).unwrap_or_default();
    }
}

impl Source for InPlace<'_> {
    type Error = Borrowed;

    #[inline]
    fn short_str(r: &mut Reader<Self>, what: &'static str) -> Result<ShortStr, Borrowed> {
        let index = r.buf.read;
        r.buf.read = index.wrapping_add(1);
        if let Some(window) = inline_window(r.buf.buf) {
            let s = ShortStr::from_window(window, what)?;
            r.buf.advance(1 + usize::from(window[0]));
            return Ok(s);
        }
        let octets = r.u8(what)?;
        let len = usize::from(octets);
        if len > crate::shortstr::INLINE {
            let text = r.buf.buf.get(..len).ok_or(WireError::Truncated { what })?;
            crate::shortstr::check_utf8(text, what)?;
            let at = r.buf.len - r.buf.buf.len();
            let long = &mut *r.buf.long;
            let slot = long
                .at
                .get_mut(usize::from(long.noted))
                .ok_or(Borrowed::NeedsShared)?;
            // A frame larger than 4 GiB cannot be buffered, so the offset fits.
            *slot = (
                index,
                u32::try_from(at).map_err(|_| Borrowed::NeedsShared)?,
                octets,
            );
            long.noted += 1;
            r.buf.advance(len);
            return Ok(ShortStr::default());
        }
        let s = ShortStr::from_slice(
            r.buf.buf.get(..len).ok_or(WireError::Truncated { what })?,
            what,
        )?;
        r.buf.advance(len);
        Ok(s)
    }

    fn long_str(_: &mut Reader<Self>, _: &'static str) -> Result<Bytes, Borrowed> {
        Err(Borrowed::NeedsShared)
    }

    fn table(_: &mut Reader<Self>, _: &'static str) -> Result<FieldTable, Borrowed> {
        Err(Borrowed::NeedsShared)
    }
}

/// Reads octets that a check has already accepted (a content header's properties, checked by
/// `BasicProperties::check` when the frame was decoded), so nothing is checked twice and
/// nothing can fail: strings are not checked for UTF-8 again, tables are not walked again, and
/// a read past the end (which a check rules out) gives zero or empty instead of an error.
/// Strings and tables share `octets`' buffer.
#[derive(Debug)]
pub(crate) struct CheckedReader<O> {
    octets: O,
    pos: usize,
}

impl<O: AsRef<[u8]>> CheckedReader<O> {
    /// Reads `octets` from the start.
    #[inline]
    pub(crate) fn new(octets: O) -> Self {
        Self { octets, pos: 0 }
    }

    /// The next `N` octets (zeros past the end).
    #[inline]
    fn array<const N: usize>(&mut self) -> [u8; N] {
        let at = self.pos;
        self.pos = at.saturating_add(N);
        self.octets
            .as_ref()
            .get(at..)
            .and_then(<[u8]>::first_chunk)
            .copied()
            .unwrap_or([0; N])
    }

    /// An octet.
    #[inline]
    pub(crate) fn u8(&mut self) -> u8 {
        let [b] = self.array();
        b
    }

    /// A big-endian `short`.
    #[inline]
    pub(crate) fn u16(&mut self) -> u16 {
        u16::from_be_bytes(self.array())
    }

    /// A big-endian `long`.
    #[inline]
    pub(crate) fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.array())
    }

    /// A big-endian `longlong`.
    #[inline]
    pub(crate) fn u64(&mut self) -> u64 {
        u64::from_be_bytes(self.array())
    }

    /// A timestamp.
    #[inline]
    pub(crate) fn timestamp(&mut self) -> Timestamp {
        self.u64()
    }

    /// Where the next `len` octets are (what is left of them past the end).
    #[inline]
    fn next_range(&mut self, len: usize) -> core::ops::Range<usize> {
        let all = self.octets.as_ref().len();
        let start = self.pos.min(all);
        let end = start.saturating_add(len).min(all);
        self.pos = self.pos.saturating_add(len);
        start..end
    }
}

/// Reads checked properties out of a content header's `Bytes`: strings and tables share it.
impl CheckedReader<&Bytes> {
    /// The next `len` octets as a slice of the buffer (what is left of them past the end).
    #[inline]
    pub(crate) fn region(&mut self, len: usize) -> Bytes {
        let range = self.next_range(len);
        self.octets.slice(range)
    }

    /// A short string, inline when it fits (no reference count touched), shared otherwise.
    #[inline]
    pub(crate) fn short_str(&mut self) -> ShortStr {
        if let Some(window) = self.octets.get(self.pos..).and_then(inline_window) {
            self.pos += 1 + usize::from(window[0]);
            return ShortStr::from_checked_window(window);
        }
        let len = self.u8();
        let at = self.pos;
        if usize::from(len) <= crate::shortstr::INLINE {
            let end = at.saturating_add(usize::from(len)).min(self.octets.len());
            self.pos = at + usize::from(len);
            return ShortStr::copy_checked(self.octets.get(at.min(end)..end).unwrap_or_default());
        }
        ShortStr::from_checked_bytes(self.region(usize::from(len)))
    }

    /// A field table, kept in its wire form.
    #[inline]
    pub(crate) fn table(&mut self) -> FieldTable {
        let len = self.u32() as usize;
        FieldTable::from_checked(self.region(len))
    }
}

/// Reads checked properties where they lie: strings and tables are borrowed.
impl<'a> CheckedReader<&'a [u8]> {
    /// The next `len` octets (what is left of them past the end).
    #[inline]
    pub(crate) fn region(&mut self, len: usize) -> &'a [u8] {
        let range = self.next_range(len);
        self.octets.get(range).unwrap_or_default()
    }

    /// A short string (checked already, so its UTF-8 is valid: the fallback is unreachable and
    /// exists because checking again is the only way to a `&str` without `unsafe`).
    #[inline]
    pub(crate) fn short_str(&mut self) -> &'a str {
        let len = usize::from(self.u8());
        core::str::from_utf8(self.region(len)).unwrap_or_default()
    }

    /// A field table.
    #[inline]
    pub(crate) fn table(&mut self) -> TableRef<'a> {
        let len = self.u32() as usize;
        TableRef::from_checked(self.region(len))
    }
}

/// The next 24 octets of `buf`, if there are that many and they start with a short string
/// short enough to be kept inline: exactly the inline form of that string (see
/// [`Encoded`](crate::shortstr::Encoded)).
#[inline]
fn inline_window(buf: &[u8]) -> Option<&crate::shortstr::Encoded> {
    buf.first_chunk()
        .filter(|window: &&crate::shortstr::Encoded| {
            usize::from(window[0]) <= crate::shortstr::INLINE
        })
}

/// Writes a short string: its length as one octet, then its octets.
pub fn put_short_str(dst: &mut BytesMut, s: &ShortStr) {
    let bytes = s.as_bytes();
    // ShortStr guarantees at most 255 octets.
    dst.put_u8(u8::try_from(bytes.len()).unwrap_or(u8::MAX));
    dst.put_slice(bytes);
}

/// Writes a long string: its length as a u32, then its octets.
///
/// A string longer than `u32::MAX` octets cannot be represented; its length is written as
/// `u32::MAX`, and the frame that holds it is refused by [`Frame::encode`](crate::Frame::encode)
/// because it is then itself larger than a frame can be.
pub fn put_long_str(dst: &mut BytesMut, s: &[u8]) {
    dst.put_u32(u32::try_from(s.len()).unwrap_or(u32::MAX));
    dst.put_slice(s);
}

/// Writes a field table: its length in octets as a u32, then each key and value, in insertion
/// order. Nested tables and arrays are written in the same pass, their lengths patched in place.
pub fn put_table(dst: &mut BytesMut, table: &FieldTable) {
    table::write_table(dst, table);
}

/// Writes a u32 placeholder, lets `body` append, then patches the placeholder with the number of
/// octets appended.
pub(crate) fn put_sized(dst: &mut BytesMut, body: impl FnOnce(&mut BytesMut)) {
    let start = dst.len();
    dst.put_u32(0);
    body(dst);
    let len = dst.len() - start - 4;
    patch_u32(dst, start, u32::try_from(len).unwrap_or(u32::MAX));
}

/// Overwrites the four octets at `at` (written earlier by the caller) with `value`.
pub(crate) fn patch_u32(dst: &mut BytesMut, at: usize, value: u32) {
    if let Some(slot) = dst.get_mut(at..at + 4) {
        slot.copy_from_slice(&value.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_big_endian() {
        let mut r = Reader::new(Bytes::from_static(&[
            1, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 4,
        ]));
        assert_eq!(r.u8("a").unwrap(), 1);
        assert_eq!(r.u16("b").unwrap(), 2);
        assert_eq!(r.u32("c").unwrap(), 3);
        assert_eq!(r.u64("d").unwrap(), 4);
        assert_eq!(r.remaining(), 0);
        assert_eq!(r.u8("e"), Err(WireError::Truncated { what: "e" }));
    }

    #[test]
    fn truncated_reads_consume_nothing_and_name_the_field() {
        let mut r = Reader::new(Bytes::from_static(&[0, 0, 0]));
        assert_eq!(r.u32("x"), Err(WireError::Truncated { what: "x" }));
        assert_eq!(r.remaining(), 3);
        let mut r = Reader::new(Bytes::from_static(b"\x05abc"));
        assert_eq!(r.short_str("q"), Err(WireError::Truncated { what: "q" }));
        let mut r = Reader::new(Bytes::from_static(b"\xff\xff\xff\xffabc"));
        assert_eq!(r.long_str("s"), Err(WireError::Truncated { what: "s" }));
    }

    #[test]
    fn long_str_shares_the_buffer() {
        let payload = Bytes::from(b"\x00\x00\x00\x03abcZ".to_vec());
        let base = payload.as_ptr() as usize;
        let mut r = Reader::new(payload);
        let s = r.long_str("s").unwrap();
        assert_eq!(&s[..], b"abc");
        assert_eq!(s.as_ptr() as usize, base + 4);
        assert_eq!(
            r.finish("p"),
            Err(WireError::TrailingBytes {
                what: "p",
                count: 1
            })
        );
    }

    #[test]
    fn string_writers() {
        let mut dst = BytesMut::new();
        put_short_str(&mut dst, &ShortStr::from_static("ab"));
        put_long_str(&mut dst, b"xyz");
        assert_eq!(&dst[..], b"\x02ab\x00\x00\x00\x03xyz");
    }
}
