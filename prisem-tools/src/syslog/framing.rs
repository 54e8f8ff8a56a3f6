//! Splitting a syslog byte stream (TCP, unix stream) into messages, per RFC 6587: octet
//! counting (`LEN SP MSG`) or non-transparent framing ended by LF or NUL, detected for each
//! message from its first byte.

use bytes::{Buf, BytesMut};

/// One message taken from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The message, at most the maximum size.
    pub data: Vec<u8>,
    /// Whether the message was longer and was cut.
    pub truncated: bool,
}

/// A streaming deframer with a maximum message size.
#[derive(Debug)]
pub struct Deframer {
    max: usize,
    /// Octets of an octet-counted message still to discard after a truncated frame.
    skip: usize,
    /// Discarding up to the next LF/NUL after a truncated frame.
    discard_line: bool,
}

/// The longest length prefix we read: more digits than any sane size is not octet counting.
const MAX_LEN_DIGITS: usize = 10;

impl Deframer {
    /// A deframer cutting messages at `max` bytes (at least 1).
    pub fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            skip: 0,
            discard_line: false,
        }
    }

    /// The next complete message in `buf`, consuming it; `None` until more bytes come.
    pub fn next(&mut self, buf: &mut BytesMut) -> Option<Frame> {
        loop {
            if self.skip > 0 {
                let n = self.skip.min(buf.len());
                buf.advance(n);
                self.skip -= n;
                if self.skip > 0 {
                    return None;
                }
            }
            if self.discard_line {
                match buf.iter().position(|&b| b == b'\n' || b == 0) {
                    Some(i) => {
                        buf.advance(i + 1);
                        self.discard_line = false;
                    }
                    None => {
                        buf.clear();
                        return None;
                    }
                }
            }
            // Skip stray delimiters between messages (e.g. CR LF, or LF after a counted frame).
            let lead = buf
                .iter()
                .take_while(|&&b| b == b'\n' || b == b'\r' || b == 0)
                .count();
            buf.advance(lead);
            let first = *buf.first()?;
            if first.is_ascii_digit() {
                // RFC 6587 3.4.1: MSG-LEN SP SYSLOG-MSG, MSG-LEN a nonzero digit string.
                let digits = buf.iter().take_while(|b| b.is_ascii_digit()).count();
                if digits < buf.len() && digits <= MAX_LEN_DIGITS && first != b'0' {
                    if buf.get(digits) == Some(&b' ') {
                        let len: usize =
                            std::str::from_utf8(buf.get(..digits)?).ok()?.parse().ok()?;
                        if len <= self.max {
                            if buf.len() < digits + 1 + len {
                                return None;
                            }
                            buf.advance(digits + 1);
                            let data = buf.split_to(len).to_vec();
                            return Some(Frame {
                                data,
                                truncated: false,
                            });
                        }
                        if buf.len() < digits + 1 + self.max {
                            return None;
                        }
                        buf.advance(digits + 1);
                        let data = buf.split_to(self.max).to_vec();
                        self.skip = len - self.max;
                        return Some(Frame {
                            data,
                            truncated: true,
                        });
                    }
                } else if digits == buf.len() && digits <= MAX_LEN_DIGITS {
                    return None; // the length may continue
                }
            }
            match buf.iter().position(|&b| b == b'\n' || b == 0) {
                Some(i) if i <= self.max => {
                    let mut data = buf.split_to(i).to_vec();
                    buf.advance(1);
                    if data.last() == Some(&b'\r') {
                        data.pop();
                    }
                    if data.is_empty() {
                        continue;
                    }
                    return Some(Frame {
                        data,
                        truncated: false,
                    });
                }
                Some(_) => {}
                None if buf.len() <= self.max => return None,
                None => {}
            }
            let data = buf.split_to(self.max).to_vec();
            self.discard_line = true;
            return Some(Frame {
                data,
                truncated: true,
            });
        }
    }

    /// At end of stream: what is left in `buf`, as a last message.
    pub fn finish(&mut self, buf: &mut BytesMut) -> Option<Frame> {
        if let Some(f) = self.next(buf) {
            return Some(f);
        }
        if self.skip > 0 || self.discard_line || buf.is_empty() {
            buf.clear();
            return None;
        }
        let n = buf.len().min(self.max);
        let truncated = buf.len() > self.max;
        let data = buf.split_to(n).to_vec();
        buf.clear();
        Some(Frame { data, truncated })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(max: usize, chunks: &[&[u8]]) -> Vec<(String, bool)> {
        let mut d = Deframer::new(max);
        let mut buf = BytesMut::new();
        let mut out = vec![];
        for c in chunks {
            buf.extend_from_slice(c);
            while let Some(f) = d.next(&mut buf) {
                out.push((String::from_utf8(f.data).unwrap(), f.truncated));
            }
        }
        while let Some(f) = d.finish(&mut buf) {
            out.push((String::from_utf8(f.data).unwrap(), f.truncated));
        }
        out
    }

    fn s(v: &str) -> (String, bool) {
        (v.to_string(), false)
    }

    #[test]
    fn newline_nul_and_counted_mixed() {
        let got = all(
            100,
            &[b"<13>a\n<13>b\0", b"11 <13>c\nd e f", b"\r\n5 <13>x"],
        );
        assert_eq!(
            got,
            vec![s("<13>a"), s("<13>b"), s("<13>c\nd e f"), s("<13>x")]
        );
    }

    #[test]
    fn split_anywhere() {
        let stream = b"9 <13>hello<13>line\n13 <13>two\nlines";
        for cut in 0..stream.len() {
            let (a, b) = stream.split_at(cut);
            assert_eq!(
                all(100, &[a, b]),
                vec![s("<13>hello"), s("<13>line"), s("<13>two\nlines")],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn oversize_truncated_and_stream_continues() {
        let got = all(4, &[b"<13>abcdef\n10 <13>ghijkl<1>\n"]);
        assert_eq!(
            got,
            vec![("<13>".into(), true), ("<13>".into(), true), s("<1>")]
        );
    }

    #[test]
    fn digits_without_space_are_a_line() {
        assert_eq!(all(100, &[b"12345\n"]), vec![s("12345")]);
        assert_eq!(all(100, &[b"0 x\n"]), vec![s("0 x")]);
    }
}
