//! [`ShortStr`]: AMQP's `shortstr`, a UTF-8 string of at most 255 octets, kept inline when it
//! is short and in a [`Bytes`] otherwise.

use core::borrow::Borrow;
use core::cmp::Ordering;
use core::fmt;
use core::hash::{Hash, Hasher};
use core::ops::Deref;

use bytes::Bytes;

use crate::WireError;

/// The most octets a short string keeps inline (it is then 32 bytes, like a [`Bytes`]).
pub(crate) const INLINE: usize = 23;

/// An inline string as the wire carries it: its length (at most [`INLINE`]) in the first octet,
/// then its octets; whatever follows is unused. Decoding copies these 24 octets straight from
/// the frame, length octet included, in two moves that the processor can forward whole to the
/// next reader (assembling the length and the text separately made it stall).
pub(crate) type Encoded = [u8; INLINE + 1];

/// An AMQP short string: valid UTF-8, at most [`ShortStr::MAX_LEN`] (255) octets.
///
/// A string of up to 23 octets (most exchange, queue and routing-key names) is stored inline,
/// so making, cloning and dropping one touches no reference count and allocates nothing. A
/// longer one lives in a [`Bytes`]: decoded from a frame, it shares the frame's buffer instead of
/// copying it. Both invariants (length and UTF-8) are checked whenever a value is built, so
/// encoding can never fail.
///
/// Comparison, ordering and hashing behave exactly as for the `str` it holds.
///
/// ```
/// use amqp_wire::ShortStr;
///
/// let name = ShortStr::new("orders")?;
/// assert_eq!(name, "orders");
/// assert_eq!(name.len(), 6);
/// assert!(ShortStr::new(&"x".repeat(256)).is_err());
/// # Ok::<(), amqp_wire::WireError>(())
/// ```
#[derive(Clone)]
pub struct ShortStr(Repr);

#[derive(Clone)]
enum Repr {
    /// Up to [`INLINE`] octets, length first (see [`Encoded`]).
    Inline(Encoded),
    Shared(Bytes),
}

impl Default for ShortStr {
    fn default() -> Self {
        Self(Repr::Inline([0; INLINE + 1]))
    }
}

impl ShortStr {
    /// The most octets a short string may hold.
    pub const MAX_LEN: usize = 255;

    /// Copies `s` into a new short string; fails if it is longer than 255 octets.
    pub fn new(s: &str) -> Result<Self, WireError> {
        check_len(s.len(), "short string")?;
        Ok(Self::copy_checked(s.as_bytes()))
    }

    /// Wraps a static string without copying it.
    ///
    /// # Panics
    ///
    /// Panics if `s` is longer than 255 octets. In a `const` context that is a compile-time
    /// error, which is the intended use: `const Q: ShortStr = ShortStr::from_static("jobs");`.
    pub const fn from_static(s: &'static str) -> Self {
        assert!(
            s.len() <= Self::MAX_LEN,
            "a short string holds at most 255 octets"
        );
        Self(Repr::Shared(Bytes::from_static(s.as_bytes())))
    }

    /// Checks `bytes` (length and UTF-8) and wraps them without copying (or, if they fit
    /// inline, copies them and lets the buffer go). `what` names the field in the error.
    pub fn from_bytes(bytes: Bytes, what: &'static str) -> Result<Self, WireError> {
        check_len(bytes.len(), what)?;
        check_utf8(&bytes, what)?;
        Ok(match inline(&bytes) {
            Some(repr) => Self(repr),
            None => Self(Repr::Shared(bytes)),
        })
    }

    /// Checks `octets` (at most 255, UTF-8) and copies them. `what` names the field in the
    /// error.
    #[inline]
    pub fn from_slice(octets: &[u8], what: &'static str) -> Result<Self, WireError> {
        check_len(octets.len(), what)?;
        check_utf8(octets, what)?;
        Ok(Self::copy_checked(octets))
    }

    /// The short string encoded at the start of `window` (its length octet first), which the
    /// caller has seen to be at most [`INLINE`], checked as UTF-8 and kept inline. Whatever
    /// follows it in the window is carried along unseen.
    #[inline]
    pub(crate) fn from_window(window: &Encoded, what: &'static str) -> Result<Self, WireError> {
        check_utf8(encoded_octets(window), what)?;
        Ok(Self(Repr::Inline(*window)))
    }

    /// [`from_window`](Self::from_window) for octets the caller has already checked (length
    /// and UTF-8).
    #[inline]
    pub(crate) fn from_checked_window(window: &Encoded) -> Self {
        Self(Repr::Inline(*window))
    }

    /// Octets already checked (length and UTF-8) by the caller: inline if they fit, shared
    /// otherwise.
    #[inline]
    pub(crate) fn from_checked_bytes(bytes: Bytes) -> Self {
        match inline(&bytes) {
            Some(repr) => Self(repr),
            None => Self(Repr::Shared(bytes)),
        }
    }

    /// Copies octets already known to be a valid short string (length and UTF-8).
    #[inline]
    pub(crate) fn copy_checked(octets: &[u8]) -> Self {
        Self(inline(octets).unwrap_or_else(|| Repr::Shared(Bytes::copy_from_slice(octets))))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // The constructors only ever store valid UTF-8, so the fallback is unreachable; it
        // exists because re-checking is the only way to get a `&str` without `unsafe`.
        core::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// The UTF-8 octets.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline(encoded) => encoded_octets(encoded),
            Repr::Shared(bytes) => bytes,
        }
    }

    /// The octets as a [`Bytes`] (a copy for an inline string).
    pub fn into_bytes(self) -> Bytes {
        match self.0 {
            Repr::Inline(_) => Bytes::copy_from_slice(self.as_bytes()),
            Repr::Shared(bytes) => bytes,
        }
    }

    /// Length in octets (not characters).
    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Inline([len, ..]) => usize::from(*len),
            Repr::Shared(bytes) => bytes.len(),
        }
    }

    /// Whether the string is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The octets of an inline string: as many as its first octet says, after it.
#[inline]
fn encoded_octets(encoded: &Encoded) -> &[u8] {
    let [len, text @ ..] = encoded;
    text.get(..usize::from(*len)).unwrap_or_default()
}

/// The inline form of `octets`, if they fit.
#[inline]
fn inline(octets: &[u8]) -> Option<Repr> {
    let buf = inline_buf(octets)?;
    let mut encoded = [0; INLINE + 1];
    let [len, text @ ..] = &mut encoded;
    *len = u8::try_from(octets.len()).ok()?;
    *text = buf;
    Some(Repr::Inline(encoded))
}

/// `src` (at most [`INLINE`] octets) at the start of an otherwise zeroed inline buffer; `None`
/// if it does not fit.
///
/// The octets are gathered with at most three loads and written at fixed offsets: writes of
/// run-time length into a buffer that is read back whole right after stall the processor.
#[inline]
fn inline_buf(src: &[u8]) -> Option<[u8; INLINE]> {
    let len = src.len();
    let mut buf = [0; INLINE];
    match len {
        0..=3 => {
            for (d, s) in buf.iter_mut().zip(src) {
                *d = *s;
            }
        }
        4..=7 => {
            let head = u32::from_le_bytes(*src.first_chunk()?);
            // The last four octets, shifted so that those past `head` land at octets 4..len
            // (none when len is 4: the shift is then the whole width, and gives 0).
            let tail = u32::from_le_bytes(*src.last_chunk()?)
                .checked_shr(8 * (8 - len as u32))
                .unwrap_or(0);
            *buf.first_chunk_mut::<4>()? = head.to_le_bytes();
            *buf.get_mut(4..)?.first_chunk_mut::<4>()? = tail.to_le_bytes();
        }
        8..=15 => {
            let head = u64::from_le_bytes(*src.first_chunk()?);
            let tail = u64::from_le_bytes(*src.last_chunk()?)
                .checked_shr(8 * (16 - len as u32))
                .unwrap_or(0);
            *buf.first_chunk_mut::<8>()? = head.to_le_bytes();
            *buf.get_mut(8..)?.first_chunk_mut::<8>()? = tail.to_le_bytes();
        }
        16..=INLINE => {
            let head = u128::from_le_bytes(*src.first_chunk()?);
            let tail = u64::from_le_bytes(*src.last_chunk()?)
                .checked_shr(8 * (24 - len as u32))
                .unwrap_or(0);
            *buf.first_chunk_mut::<16>()? = head.to_le_bytes();
            *buf.get_mut(16..)?.first_chunk_mut::<7>()? = *tail.to_le_bytes().first_chunk()?;
        }
        _ => return None,
    }
    Some(buf)
}

/// Fails unless `bytes` are UTF-8.
#[inline]
pub(crate) fn check_utf8(bytes: &[u8], what: &'static str) -> Result<(), WireError> {
    // Names on the wire are nearly always ASCII, which is checked much faster.
    if !bytes.is_ascii() && core::str::from_utf8(bytes).is_err() {
        return Err(WireError::InvalidUtf8 { what });
    }
    Ok(())
}

fn check_len(len: usize, what: &'static str) -> Result<(), WireError> {
    if len > ShortStr::MAX_LEN {
        return Err(WireError::StringTooLong {
            what,
            len,
            max: ShortStr::MAX_LEN,
        });
    }
    Ok(())
}

/// What the short-string setters of the properties (`BasicProperties::with_content_type`, …)
/// take: a [`ShortStr`], which sets the property as it is, or a `&str` / `String`, which is
/// checked first (at most 255 octets) and so gives a `Result`.
///
/// ```
/// use amqp_wire::{BasicProperties, ShortStr};
///
/// let props = BasicProperties::default()
///     .with_content_type("text/plain")?
///     .with_reply_to(String::from("amq.rabbitmq.reply-to"))?
///     .with_app_id(ShortStr::from_static("billing"))
///     .with_delivery_mode(2);
/// assert_eq!(props.content_type.as_deref(), Some("text/plain"));
/// assert!(BasicProperties::default().with_message_id("x".repeat(256)).is_err());
/// # Ok::<(), amqp_wire::WireError>(())
/// ```
pub trait IntoShortStr: Sized {
    /// What a setter given this returns, for a setter that would return `T`: `T` itself for a
    /// [`ShortStr`], `Result<T, WireError>` for a string that may be too long.
    type Output<T>;

    /// Converts the value (`what` names the property in the error) and hands it to `set`.
    fn set_with<T>(self, what: &'static str, set: impl FnOnce(ShortStr) -> T) -> Self::Output<T>;
}

impl IntoShortStr for ShortStr {
    type Output<T> = T;

    fn set_with<T>(self, _what: &'static str, set: impl FnOnce(Self) -> T) -> T {
        set(self)
    }
}

impl IntoShortStr for &ShortStr {
    type Output<T> = T;

    fn set_with<T>(self, _what: &'static str, set: impl FnOnce(ShortStr) -> T) -> T {
        set(self.clone())
    }
}

impl IntoShortStr for &str {
    type Output<T> = Result<T, WireError>;

    fn set_with<T>(
        self,
        what: &'static str,
        set: impl FnOnce(ShortStr) -> T,
    ) -> Result<T, WireError> {
        Ok(set(ShortStr::from_slice(self.as_bytes(), what)?))
    }
}

impl IntoShortStr for &String {
    type Output<T> = Result<T, WireError>;

    fn set_with<T>(
        self,
        what: &'static str,
        set: impl FnOnce(ShortStr) -> T,
    ) -> Result<T, WireError> {
        self.as_str().set_with(what, set)
    }
}

impl IntoShortStr for String {
    type Output<T> = Result<T, WireError>;

    fn set_with<T>(
        self,
        what: &'static str,
        set: impl FnOnce(ShortStr) -> T,
    ) -> Result<T, WireError> {
        Ok(set(ShortStr::from_bytes(Bytes::from(self), what)?))
    }
}

impl Deref for ShortStr {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for ShortStr {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<[u8]> for ShortStr {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Borrow<str> for ShortStr {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl TryFrom<&str> for ShortStr {
    type Error = WireError;

    fn try_from(s: &str) -> Result<Self, WireError> {
        Self::new(s)
    }
}

impl TryFrom<String> for ShortStr {
    type Error = WireError;

    /// Takes over the string's buffer without copying (unless it fits inline).
    fn try_from(s: String) -> Result<Self, WireError> {
        check_len(s.len(), "short string")?;
        Ok(Self(
            inline(s.as_bytes()).unwrap_or_else(|| Repr::Shared(Bytes::from(s))),
        ))
    }
}

impl TryFrom<&String> for ShortStr {
    type Error = WireError;

    fn try_from(s: &String) -> Result<Self, WireError> {
        Self::new(s)
    }
}

impl TryFrom<Bytes> for ShortStr {
    type Error = WireError;

    fn try_from(bytes: Bytes) -> Result<Self, WireError> {
        Self::from_bytes(bytes, "short string")
    }
}

impl From<ShortStr> for Bytes {
    fn from(s: ShortStr) -> Self {
        s.into_bytes()
    }
}

impl From<ShortStr> for String {
    fn from(s: ShortStr) -> Self {
        s.as_str().to_owned()
    }
}

impl PartialEq for ShortStr {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for ShortStr {}

impl PartialOrd for ShortStr {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ShortStr {
    /// Octet order, which for UTF-8 is also the order of `str`.
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl Hash for ShortStr {
    /// Hashes like the `str`, so `Borrow<str>` lookups in hash maps work.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialEq<str> for ShortStr {
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<&str> for ShortStr {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<ShortStr> for str {
    fn eq(&self, other: &ShortStr) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<ShortStr> for &str {
    fn eq(&self, other: &ShortStr) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl fmt::Debug for ShortStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for ShortStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_buffers_hold_exactly_the_octets_at_every_length() {
        let src: Vec<u8> = (1..=40).collect();
        for len in 0..=INLINE {
            let buf = inline_buf(&src[..len]).unwrap();
            assert_eq!(&buf[..len], &src[..len], "length {len}");
            assert!(
                buf[len..].iter().all(|&b| b == 0),
                "length {len} wrote past the end"
            );
        }
        assert_eq!(inline_buf(&src[..INLINE + 1]), None);
    }

    #[test]
    fn length_limit_is_255_octets() {
        assert!(ShortStr::new(&"a".repeat(255)).is_ok());
        assert_eq!(
            ShortStr::new(&"a".repeat(256)),
            Err(WireError::StringTooLong {
                what: "short string",
                len: 256,
                max: 255
            })
        );
        // 128 two-octet characters: 256 octets although only 128 chars.
        assert!(ShortStr::try_from("é".repeat(128)).is_err());
    }

    #[test]
    fn from_bytes_rejects_bad_utf8() {
        assert_eq!(
            ShortStr::from_bytes(Bytes::from_static(b"\xff\xfe"), "k"),
            Err(WireError::InvalidUtf8 { what: "k" })
        );
        let s = ShortStr::from_bytes(Bytes::from_static("día".as_bytes()), "k").unwrap();
        assert_eq!(s.as_str(), "día");
    }

    #[test]
    fn behaves_like_its_str() {
        use std::collections::HashMap;
        let a = ShortStr::from_static("alpha");
        let b = ShortStr::new("beta").unwrap();
        assert!(a < b);
        assert_eq!(format!("{a}"), "alpha");
        assert_eq!(format!("{a:?}"), "\"alpha\"");
        let mut m = HashMap::new();
        m.insert(a.clone(), 1);
        assert_eq!(m.get("alpha"), Some(&1));
        assert!(ShortStr::default().is_empty());
        assert!(a.starts_with("al"));
    }
}
