//! The scanner: finds IPv4 and IPv6 addresses, CIDR blocks and DNS names in arbitrary bytes.
//!
//! The input is any byte string (log text need not be UTF-8); every match is ASCII. The scanner
//! never allocates per byte and never panics: it jumps with `memchr` from one `.` or `:` to the
//! next, takes the run of "token" bytes around it (`[A-Za-z0-9.:-]`), and parses candidates only
//! inside that run. Text without dots or colons is skipped at memchr speed.
//!
//! # What matches
//!
//! - **ipv4** — four decimal octets `a.b.c.d`, each 0–255 written with 1–3 digits and **no
//!   leading zero** (`01.2.3.4` and `1.2.3.010` are not addresses: leading zeros mean octal to
//!   some parsers and decimal to others, so we refuse to guess).
//! - **ipv6** — RFC 4291 text: eight groups of 1–4 hex digits, or fewer with one `::`, and an
//!   optional dotted-quad tail (`::ffff:192.0.2.1`). It must contain a decimal digit unless all
//!   eight groups are spelled out, so words like `dead::beef` and a bare `::` are not taken.
//!   A zone (`fe80::1%eth0`) ends the match before the `%`.
//! - **cidr4** / **cidr6** — an address followed by `/n` with `n` ≤ 32 (≤ 128), no leading zero.
//!   When the suffix is not a valid prefix length (`/33`, `/024`, `/24x`) the address matches
//!   alone and the suffix is left as text.
//! - **domain** — two or more labels of `[A-Za-z0-9-]` (1–63 bytes each, not starting or ending
//!   with `-`) joined by dots, 253 bytes at most, whose last label (the TLD) is 2–63 ASCII
//!   letters. `openssh 7.4.1.2.3` is not a domain (numeric TLD); `sshd.service` *is* one to the
//!   scanner (only mapped domains are ever rewritten). A trailing dot is not part of the match.
//!
//! # What does not match
//!
//! A candidate glued to its neighbours is dropped whole, never cut: no match in `1.2.3.4.5`
//! (neither `1.2.3.4` nor `2.3.4.5`), `a1.2.3.4`, `1.2.3.4a`, `1.2.3.256`, `1.2.3.4.example`
//! (that is the domain `1.2.3.4.example`), or `::1::2`. Exactly:
//!
//! - an IPv4 address or domain may follow any byte but a letter, digit, `.` (or, for domains,
//!   `-` and `_`); `src:192.0.2.1` and `ip=192.0.2.1` match;
//! - an IPv6 address may not follow a letter, digit, `.` or `:`;
//! - no match may be followed by a letter or digit, nor by a `.` that starts another label
//!   (a sentence-ending `.` is fine); a domain may not be followed by `-` or `_`; an IPv6
//!   address may not be followed by `:` and a hex digit. A `:port` after IPv4 or a domain is
//!   fine, so is a `-` between two addresses (`192.0.2.1-192.0.2.9` gives two matches).
//!
//! ```
//! use prisem_tools::addr::{scan, Kind};
//!
//! let text = b"Jan  1 host sshd[7]: Failed for root from 192.0.2.7 port 22\nopenssh 7.4.1.2.3\n";
//! let found: Vec<_> = scan(text).collect();
//! assert_eq!(found.len(), 1);
//! assert_eq!(found[0].kind, Kind::Ipv4);
//! assert_eq!(found[0].text(text), b"192.0.2.7");
//! assert_eq!(found[0].line, 1);
//! ```

use core::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// What a [`Match`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Kind {
    /// A dotted-quad IPv4 address.
    Ipv4,
    /// An IPv6 address (IPv4-mapped ones included).
    Ipv6,
    /// An IPv4 address with a `/n` prefix length.
    Cidr4,
    /// An IPv6 address with a `/n` prefix length.
    Cidr6,
    /// A DNS name.
    Domain,
}

impl Kind {
    /// The name used in JSON output: `ipv4`, `ipv6`, `cidr4`, `cidr6` or `domain`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ipv4 => "ipv4",
            Self::Ipv6 => "ipv6",
            Self::Cidr4 => "cidr4",
            Self::Cidr6 => "cidr6",
            Self::Domain => "domain",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One address, network or name found in a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    /// What was found.
    pub kind: Kind,
    /// Byte offset of the first byte.
    pub start: usize,
    /// Byte offset just past the last byte.
    pub end: usize,
    /// The 1-based line number of `start`.
    pub line: usize,
    /// The address as written (for CIDR matches host bits included); `None` for domains.
    pub ip: Option<IpAddr>,
    /// The prefix length: as written for CIDR matches, 32 or 128 for addresses, 0 for domains.
    pub prefix: u8,
}

impl Match {
    /// The matched bytes of `haystack` (the text this match was found in).
    pub fn text<'h>(&self, haystack: &'h [u8]) -> &'h [u8] {
        haystack.get(self.start..self.end).unwrap_or_default()
    }

    /// The matched bytes as a string (matches are always ASCII).
    pub fn as_str<'h>(&self, haystack: &'h [u8]) -> &'h str {
        core::str::from_utf8(self.text(haystack)).unwrap_or_default()
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether the match is empty (never, for matches the scanner returns).
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }

    /// The network of an address or CIDR match (`/32` or `/128` for a bare address, host bits
    /// cleared for CIDR); `None` for domains.
    pub fn net(&self) -> Option<IpNet> {
        let net = match self.ip? {
            IpAddr::V4(a) => IpNet::V4(Ipv4Net::new(a, self.prefix).ok()?),
            IpAddr::V6(a) => IpNet::V6(Ipv6Net::new(a, self.prefix).ok()?),
        };
        Some(net.trunc())
    }
}

/// Scans `text` for addresses, CIDR blocks and DNS names, in order of position.
pub fn scan(text: &[u8]) -> Scanner<'_> {
    Scanner::new(text)
}

/// The iterator [`scan`] returns.
#[derive(Debug, Clone)]
pub struct Scanner<'a> {
    text: &'a [u8],
    /// Where the search for the next `.` or `:` resumes; never inside a token already seen.
    cursor: usize,
    /// The next candidate position inside the current token.
    pos: usize,
    /// The end of the current token.
    tok_end: usize,
    /// Line number of `line_pos`.
    line: usize,
    line_pos: usize,
}

// Byte classes.
const DIGIT: u8 = 1;
const HEX: u8 = 2;
const ALPHA: u8 = 4;
/// `[A-Za-z0-9.:-]`: the bytes a token is made of.
const TOKEN: u8 = 8;
/// `[A-Za-z0-9-]`: the bytes of a DNS label.
const LABEL: u8 = 16;

const CLASSES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let mut k = 0;
        if c.is_ascii_digit() {
            k |= DIGIT | HEX | TOKEN | LABEL;
        }
        if c.is_ascii_alphabetic() {
            k |= ALPHA | TOKEN | LABEL;
        }
        if matches!(c, b'a'..=b'f' | b'A'..=b'F') {
            k |= HEX;
        }
        if c == b'-' {
            k |= TOKEN | LABEL;
        }
        if c == b'.' || c == b':' {
            k |= TOKEN;
        }
        #[allow(clippy::indexing_slicing)] // ok: b < 256 by the loop condition
        {
            t[b] = k;
        }
        b += 1;
    }
    t
};

#[inline(always)]
fn class(b: u8) -> u8 {
    #[allow(clippy::indexing_slicing)] // ok: a u8 always indexes a 256-entry table
    CLASSES[usize::from(b)]
}

#[inline(always)]
fn is(b: u8, k: u8) -> bool {
    class(b) & k != 0
}

#[inline(always)]
fn is_alnum(b: u8) -> bool {
    is(b, DIGIT | ALPHA)
}

/// The byte at `i`, or NUL past the end (NUL is a boundary like any non-token byte).
#[inline(always)]
fn at(text: &[u8], i: usize) -> u8 {
    text.get(i).copied().unwrap_or(0)
}

fn hex_value(b: u8) -> u32 {
    match b {
        b'0'..=b'9' => u32::from(b - b'0'),
        b'a'..=b'f' => u32::from(b - b'a' + 10),
        b'A'..=b'F' => u32::from(b - b'A' + 10),
        _ => 0,
    }
}

/// Whether a match ending before `pos` is properly terminated: not followed by a letter or
/// digit, nor by a `.` that starts another label.
#[inline]
fn ends_cleanly(text: &[u8], pos: usize) -> bool {
    let n = at(text, pos);
    !(is_alnum(n) || (n == b'.' && is(at(text, pos + 1), LABEL)))
}

/// A decimal prefix length at `pos` (no leading zero), at most `max`, properly terminated.
fn parse_prefix(text: &[u8], pos: usize, max: u8) -> Option<(u8, usize)> {
    let mut end = pos;
    let mut value: u32 = 0;
    while is(at(text, end), DIGIT) && end - pos < 4 {
        value = value * 10 + u32::from(at(text, end) - b'0');
        end += 1;
    }
    let len = end - pos;
    if len == 0 || len > 3 || (len > 1 && at(text, pos) == b'0') || value > u32::from(max) {
        return None;
    }
    if !ends_cleanly(text, end) {
        return None;
    }
    Some((u8::try_from(value).ok()?, end))
}

/// Four octets at `i` (no boundary checks); returns the end and the address.
fn parse_quad(text: &[u8], i: usize) -> Option<(usize, u32)> {
    let mut pos = i;
    let mut addr: u32 = 0;
    for k in 0..4 {
        if k > 0 {
            if at(text, pos) != b'.' {
                return None;
            }
            pos += 1;
        }
        let first = at(text, pos);
        let mut value: u32 = 0;
        let mut len = 0;
        while is(at(text, pos), DIGIT) {
            if len == 3 {
                return None;
            }
            value = value * 10 + u32::from(at(text, pos) - b'0');
            pos += 1;
            len += 1;
        }
        if len == 0 || (len > 1 && first == b'0') || value > 255 {
            return None;
        }
        addr = (addr << 8) | value;
    }
    Some((pos, addr))
}

fn parse_ipv4(text: &[u8], i: usize, line: usize) -> Option<Match> {
    let (end, addr) = parse_quad(text, i)?;
    if !ends_cleanly(text, end) {
        return None;
    }
    let ip = IpAddr::V4(Ipv4Addr::from(addr));
    if at(text, end) == b'/' {
        if let Some((prefix, cidr_end)) = parse_prefix(text, end + 1, 32) {
            return Some(Match {
                kind: Kind::Cidr4,
                start: i,
                end: cidr_end,
                line,
                ip: Some(ip),
                prefix,
            });
        }
    }
    Some(Match {
        kind: Kind::Ipv4,
        start: i,
        end,
        line,
        ip: Some(ip),
        prefix: 32,
    })
}

fn parse_ipv6(text: &[u8], i: usize, line: usize) -> Option<Match> {
    let mut segs = [0u16; 8];
    let mut n = 0usize;
    let mut gap: Option<usize> = None;
    let mut saw_digit = false;
    let mut pos = i;
    if at(text, pos) == b':' {
        if at(text, pos + 1) != b':' {
            return None;
        }
        gap = Some(0);
        pos += 2;
    }
    while is(at(text, pos), HEX) {
        let start = pos;
        let mut value: u32 = 0;
        while is(at(text, pos), HEX) && pos - start < 5 {
            value = (value << 4) | hex_value(at(text, pos));
            pos += 1;
        }
        if at(text, pos) == b'.' {
            // A dotted-quad tail takes the last two groups.
            if n > 6 {
                return None;
            }
            let (end, v4) = parse_quad(text, start)?;
            let [hi, lo] = [(v4 >> 16) as u16, v4 as u16];
            *segs.get_mut(n)? = hi;
            *segs.get_mut(n + 1)? = lo;
            n += 2;
            pos = end;
            saw_digit = true;
            break;
        }
        if pos - start > 4 || n >= 8 {
            return None;
        }
        saw_digit |= text.get(start..pos)?.iter().any(u8::is_ascii_digit);
        *segs.get_mut(n)? = value as u16;
        n += 1;
        if at(text, pos) != b':' {
            break;
        }
        if at(text, pos + 1) == b':' {
            if gap.is_some() {
                return None;
            }
            gap = Some(n);
            pos += 2;
        } else if is(at(text, pos + 1), HEX) {
            pos += 1;
        } else {
            break; // a trailing ':' is punctuation, not part of the address
        }
    }
    let segs = match gap {
        None if n == 8 => segs,
        Some(g) if n <= 7 => {
            // Move the groups after the gap to the end.
            let mut full = [0u16; 8];
            let head = segs.get(..g)?;
            let tail = segs.get(g..n)?;
            full.get_mut(..g)?.copy_from_slice(head);
            full.get_mut(8 - tail.len()..)?.copy_from_slice(tail);
            full
        }
        _ => return None,
    };
    if !(saw_digit || n == 8) || !ends_cleanly(text, pos) {
        return None;
    }
    if at(text, pos) == b':' && (is(at(text, pos + 1), HEX) || at(text, pos + 1) == b':') {
        return None;
    }
    let ip = IpAddr::V6(Ipv6Addr::from(segs));
    if at(text, pos) == b'/' {
        if let Some((prefix, cidr_end)) = parse_prefix(text, pos + 1, 128) {
            return Some(Match {
                kind: Kind::Cidr6,
                start: i,
                end: cidr_end,
                line,
                ip: Some(ip),
                prefix,
            });
        }
    }
    Some(Match {
        kind: Kind::Ipv6,
        start: i,
        end: pos,
        line,
        ip: Some(ip),
        prefix: 128,
    })
}

fn parse_domain(text: &[u8], i: usize, line: usize) -> Option<Match> {
    let mut pos = i;
    let mut labels = 0;
    let mut last;
    loop {
        let start = pos;
        while is(at(text, pos), LABEL) {
            pos += 1;
            if pos - start > 63 {
                return None;
            }
        }
        if pos == start || at(text, start) == b'-' || at(text, pos - 1) == b'-' {
            return None;
        }
        labels += 1;
        last = start;
        if pos - i > 253 {
            return None;
        }
        if at(text, pos) == b'.' && is_alnum(at(text, pos + 1)) {
            pos += 1;
        } else {
            break;
        }
    }
    let tld = text.get(last..pos)?;
    if labels < 2 || tld.len() < 2 || !tld.iter().all(u8::is_ascii_alphabetic) {
        return None;
    }
    let next = at(text, pos);
    if next == b'_' || !ends_cleanly(text, pos) {
        return None;
    }
    Some(Match {
        kind: Kind::Domain,
        start: i,
        end: pos,
        line,
        ip: None,
        prefix: 0,
    })
}

impl<'a> Scanner<'a> {
    /// A scanner over `text`.
    pub fn new(text: &'a [u8]) -> Self {
        Self {
            text,
            cursor: 0,
            pos: 0,
            tok_end: 0,
            line: 1,
            line_pos: 0,
        }
    }

    /// A match starting at `i` inside the current token, if any.
    fn try_at(&self, i: usize) -> Option<Match> {
        let text = self.text;
        let b = at(text, i);
        let left = if i == 0 { 0 } else { at(text, i - 1) };
        let left_is_word = is_alnum(left) || left == b'.';
        if (is(b, HEX) || b == b':') && !left_is_word && left != b':' {
            if let Some(m) = parse_ipv6(text, i, 0) {
                return Some(m);
            }
        }
        if is(b, DIGIT) && !left_is_word {
            if let Some(m) = parse_ipv4(text, i, 0) {
                return Some(m);
            }
        }
        if is_alnum(b) && !left_is_word && left != b'-' && left != b'_' {
            return parse_domain(text, i, 0);
        }
        None
    }

    fn line_of(&mut self, start: usize) -> usize {
        if let Some(gap) = self.text.get(self.line_pos..start) {
            self.line += memchr::memchr_iter(b'\n', gap).count();
            self.line_pos = start;
        }
        self.line
    }
}

impl Iterator for Scanner<'_> {
    type Item = Match;

    fn next(&mut self) -> Option<Match> {
        let text = self.text;
        loop {
            // Candidates inside the current token: its start, then after each ':' or '-'.
            while self.pos < self.tok_end {
                let i = self.pos;
                if let Some(mut m) = self.try_at(i) {
                    self.pos = m.end;
                    // A CIDR suffix reaches past the token ('/' is not a token byte).
                    self.cursor = self.cursor.max(m.end);
                    m.line = self.line_of(m.start);
                    return Some(m);
                }
                let rest = text.get(i..self.tok_end).unwrap_or_default();
                self.pos = match memchr::memchr2(b':', b'-', rest) {
                    Some(off) => i + off + 1,
                    None => self.tok_end,
                };
            }
            // The next token: the run of token bytes around the next '.' or ':'.
            let rest = text.get(self.cursor..)?;
            let anchor = self.cursor + memchr::memchr2(b'.', b':', rest)?;
            let mut start = anchor;
            while start > self.cursor && is(at(text, start - 1), TOKEN) {
                start -= 1;
            }
            let mut end = anchor + 1;
            while is(at(text, end), TOKEN) {
                end += 1;
            }
            self.pos = start;
            self.tok_end = end;
            self.cursor = end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn found(text: &str) -> Vec<(Kind, &str)> {
        scan(text.as_bytes())
            .map(|m| (m.kind, &text[m.start..m.end]))
            .collect()
    }

    fn texts(text: &str) -> Vec<&str> {
        found(text).into_iter().map(|(_, t)| t).collect()
    }

    #[test]
    fn finds_ipv4_in_log_lines() {
        let t = "Feb  2 06:09:34 gw sshd[4242]: Failed password for root from 192.0.2.15 port 2222 ssh2";
        assert_eq!(found(t), [(Kind::Ipv4, "192.0.2.15")]);
        assert_eq!(
            texts("ip=198.51.100.7,dst:203.0.113.9:443"),
            ["198.51.100.7", "203.0.113.9"]
        );
        assert_eq!(
            texts("(192.0.2.1) [192.0.2.2] <192.0.2.3>"),
            ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
        );
        assert_eq!(texts("from 192.0.2.1."), ["192.0.2.1"]);
        assert_eq!(texts("192.0.2.1-192.0.2.9"), ["192.0.2.1", "192.0.2.9"]);
        assert_eq!(
            texts("0.0.0.0 255.255.255.255"),
            ["0.0.0.0", "255.255.255.255"]
        );
        assert_eq!(texts("192.0.2.1"), ["192.0.2.1"]);
        assert_eq!(texts("x_192.0.2.1_y"), ["192.0.2.1"]);
    }

    #[test]
    fn refuses_lookalikes() {
        for t in [
            "1.2.3.4.5",
            "openssh 7.4.1.2.3",
            "a1.2.3.4",
            "1.2.3.4a",
            "11.2.3.4b",
            "01.2.3.4",
            "1.2.3.04",
            "1.02.3.4",
            "256.1.2.3",
            "1.2.3.256",
            "1.2.3.1000",
            "1.2.3",
            "1.2.3.",
            "1..2.3.4",
            "x.1.2.3.4 ",
            "2.3.4.5.6.7",
            "version 10.0.19041.1",
        ] {
            assert_eq!(found(t), [], "{t:?}");
        }
        // A dotted quad followed by letter labels is a (reverse) domain, not an address.
        assert_eq!(
            found("1.2.0.192.in-addr.arpa"),
            [(Kind::Domain, "1.2.0.192.in-addr.arpa")]
        );
    }

    #[test]
    fn finds_cidr_blocks() {
        assert_eq!(
            found("block 192.0.2.0/24 now"),
            [(Kind::Cidr4, "192.0.2.0/24")]
        );
        assert_eq!(found("176.31.1.3/16,"), [(Kind::Cidr4, "176.31.1.3/16")]);
        assert_eq!(found("0.0.0.0/0"), [(Kind::Cidr4, "0.0.0.0/0")]);
        // Invalid suffixes: the address alone.
        for t in [
            "192.0.2.0/33",
            "192.0.2.0/024",
            "192.0.2.0/24x",
            "192.0.2.0/",
            "192.0.2.0/index",
        ] {
            assert_eq!(found(t), [(Kind::Ipv4, "192.0.2.0")], "{t:?}");
        }
        assert_eq!(found("2001:db8::/32 x"), [(Kind::Cidr6, "2001:db8::/32")]);
        assert_eq!(
            found("2001:db8:1::/128"),
            [(Kind::Cidr6, "2001:db8:1::/128")]
        );
        assert_eq!(found("2001:db8:1::/129"), [(Kind::Ipv6, "2001:db8:1::")]);
        let m = scan(b"198.51.100.77/24").next().unwrap();
        assert_eq!(m.net().unwrap().to_string(), "198.51.100.0/24");
        assert_eq!(m.ip.unwrap().to_string(), "198.51.100.77");
    }

    #[test]
    fn finds_ipv6() {
        assert_eq!(
            found("from 2001:db8::1 port"),
            [(Kind::Ipv6, "2001:db8::1")]
        );
        assert_eq!(texts("[2001:db8::10]:443"), ["2001:db8::10"]);
        assert_eq!(texts("2001:db8:0:0:0:0:0:1"), ["2001:db8:0:0:0:0:0:1"]);
        assert_eq!(texts("::1 and fe80::1%eth0"), ["::1", "fe80::1"]);
        assert_eq!(texts("2001:DB8::A:b"), ["2001:DB8::A:b"]);
        assert_eq!(texts("2001:db8::"), ["2001:db8::"]);
        assert_eq!(texts("addr 2001:db8::5: refused"), ["2001:db8::5"]);
        assert_eq!(
            texts("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
            ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"]
        );
        let m = scan(b"x ::ffff:192.0.2.1 y").next().unwrap();
        assert_eq!((m.kind, m.start, m.end), (Kind::Ipv6, 2, 18));
        assert_eq!(m.ip.unwrap(), "::ffff:192.0.2.1".parse::<IpAddr>().unwrap());
        assert_eq!(texts("64:ff9b::198.51.100.3"), ["64:ff9b::198.51.100.3"]);
        let long = "2001:0db8:0000:0000:0000:ff00:0042:8329";
        assert_eq!(long.len(), 39);
        assert_eq!(found(long), [(Kind::Ipv6, long)]);
        assert_eq!(scan(long.as_bytes()).next().unwrap().ip, long.parse().ok());
    }

    #[test]
    fn refuses_ipv6_lookalikes() {
        for t in [
            "06:09:34",
            "00:1a:2b:3c:4d:5e",
            "std::vec",
            "dead::beef",
            "a :: b",
            "1::2::3",
            "1:2:3:4:5:6:7:8:9",
            "2001:db8::1g",
            "2001:db8::12345",
            "x2001:db8::1",
            "::ffff:1.2.3.4.5",
        ] {
            assert_eq!(found(t), [], "{t:?}");
        }
        // Nine groups are no IPv6 address; the dotted quad after a ':' is an IPv4 address, as
        // in `src:192.0.2.1`.
        assert_eq!(found("1:2:3:4:5:6:7:1.2.3.4"), [(Kind::Ipv4, "1.2.3.4")]);
    }

    #[test]
    fn finds_domains() {
        assert_eq!(
            found("mail from relay.corp.example:25"),
            [(Kind::Domain, "relay.corp.example")]
        );
        assert_eq!(
            texts("see www.example. and x@mail.example, b.example.org."),
            ["www.example", "mail.example", "b.example.org"]
        );
        assert_eq!(
            texts("http://www.ops-1.example/path"),
            ["www.ops-1.example"]
        );
        assert_eq!(texts("host:db.example"), ["db.example"]);
        for t in [
            "e.g.",
            "a.b",
            "-x.example",
            "x-.example",
            "foo.example_bar",
            "foo.c0m",
            "a.b.3",
            "x-db.example",
        ] {
            let want: &[&str] = if t == "x-db.example" {
                &["x-db.example"]
            } else {
                &[]
            };
            assert_eq!(texts(t), want, "{t:?}");
        }
        let long_label = format!("{}.example", "a".repeat(64));
        assert_eq!(texts(&long_label), Vec::<&str>::new());
        let ok_label = format!("{}.example", "a".repeat(63));
        assert_eq!(texts(&ok_label), [ok_label.as_str()]);
    }

    #[test]
    fn reports_lines_and_offsets() {
        let text = b"first 192.0.2.1\n\nthird 2001:db8::2 and 198.51.100.3\nx.example";
        let ms: Vec<_> = scan(text).collect();
        let summary: Vec<_> = ms
            .iter()
            .map(|m| (m.line, m.start, m.end, m.as_str(text)))
            .collect();
        assert_eq!(
            summary,
            [
                (1, 6, 15, "192.0.2.1"),
                (3, 23, 34, "2001:db8::2"),
                (3, 39, 51, "198.51.100.3"),
                (4, 52, 61, "x.example")
            ]
        );
    }

    #[test]
    fn survives_binary_and_edges() {
        assert_eq!(found(""), []);
        assert_eq!(found("."), []);
        assert_eq!(found(":"), []);
        assert_eq!(found("::"), []);
        let mut bin = vec![0xff, 0xfe, b'.', 0x00];
        bin.extend_from_slice(b"192.0.2.4");
        bin.extend_from_slice(&[0xc3, 0x28, b':']);
        let ms: Vec<_> = scan(&bin).collect();
        assert_eq!(ms.len(), 1);
        assert_eq!(ms[0].text(&bin), b"192.0.2.4");
    }

    proptest! {
        #[test]
        fn never_panics_and_matches_are_sane(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut last_end = 0;
            let mut last_line = 1;
            for m in scan(&bytes) {
                prop_assert!(m.start >= last_end && m.end > m.start && m.end <= bytes.len());
                prop_assert!(m.line >= last_line);
                prop_assert_eq!(m.line, 1 + bytes[..m.start].iter().filter(|&&b| b == b'\n').count());
                last_end = m.end;
                last_line = m.line;
            }
        }

        #[test]
        fn finds_every_embedded_address(a: [u8; 4], v6: [u16; 8], pre in "[ (\\[=,;]", post in "[ )\\],;\n]") {
            let v4 = Ipv4Addr::from(a);
            let v6 = Ipv6Addr::from(v6);
            let v6_text = v6.to_string();
            // Digit-free IPv6 text is only taken with all eight groups (see the module docs).
            prop_assume!(v6_text.bytes().any(|b| b.is_ascii_digit()) || !v6_text.contains("::"));
            let text = format!("x{pre}{v4}{post}y{pre}{v6}{post}");
            let ms: Vec<_> = scan(text.as_bytes()).collect();
            prop_assert_eq!(ms.len(), 2, "{}", text);
            prop_assert_eq!(ms[0].ip, Some(IpAddr::V4(v4)));
            prop_assert_eq!(ms[1].ip, Some(IpAddr::V6(v6)));
        }

        #[test]
        fn dense_address_soup_never_panics(s in "[0-9a-f:./x -]{0,200}") {
            for m in scan(s.as_bytes()) {
                prop_assert!(m.end <= s.len());
            }
        }
    }
}
