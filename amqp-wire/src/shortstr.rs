//! [`ShortStr`]: AMQP's `shortstr`, a UTF-8 string of at most 255 octets backed by [`Bytes`].

use core::borrow::Borrow;
use core::cmp::Ordering;
use core::fmt;
use core::hash::{Hash, Hasher};
use core::ops::Deref;

use bytes::Bytes;

use crate::WireError;

/// An AMQP short string: valid UTF-8, at most [`ShortStr::MAX_LEN`] (255) octets.
///
/// The text lives in a [`Bytes`], so a short string decoded from a frame shares the frame's
/// buffer instead of copying it. Both invariants (length and UTF-8) are checked whenever a value
/// is built, so encoding can never fail.
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
#[derive(Clone, Default)]
pub struct ShortStr(Bytes);

impl ShortStr {
    /// The most octets a short string may hold.
    pub const MAX_LEN: usize = 255;

    /// Copies `s` into a new short string; fails if it is longer than 255 octets.
    pub fn new(s: &str) -> Result<Self, WireError> {
        check_len(s.len(), "short string")?;
        Ok(Self(Bytes::copy_from_slice(s.as_bytes())))
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
        Self(Bytes::from_static(s.as_bytes()))
    }

    /// Checks `bytes` (length and UTF-8) and wraps them without copying. `what` names the field
    /// in the error.
    pub fn from_bytes(bytes: Bytes, what: &'static str) -> Result<Self, WireError> {
        check_len(bytes.len(), what)?;
        // Names on the wire are nearly always ASCII, which is checked much faster.
        if !bytes.is_ascii() && core::str::from_utf8(&bytes).is_err() {
            return Err(WireError::InvalidUtf8 { what });
        }
        Ok(Self(bytes))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // The constructors only ever store valid UTF-8, so the fallback is unreachable; it
        // exists because re-checking is the only way to get a `&str` without `unsafe`.
        core::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The UTF-8 octets.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The underlying buffer.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// Length in octets (not characters).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the string is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
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
        &self.0
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

    /// Takes over the string's buffer without copying.
    fn try_from(s: String) -> Result<Self, WireError> {
        check_len(s.len(), "short string")?;
        Ok(Self(Bytes::from(s)))
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
        s.0
    }
}

impl From<ShortStr> for String {
    fn from(s: ShortStr) -> Self {
        s.as_str().to_owned()
    }
}

impl PartialEq for ShortStr {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
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
        self.0.cmp(&other.0)
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
