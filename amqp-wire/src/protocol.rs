//! The protocol header a client sends first, and a server sends back when it refuses the version.

use core::fmt;

use bytes::{BufMut, BytesMut};

use crate::WireError;

/// `AMQP` followed by four octets naming the protocol version.
///
/// A client opens a connection by sending [`ProtocolHeader::AMQP_0_9_1`]
/// (`AMQP\0\0\x09\x01`). A server that cannot speak that version answers with the header of the
/// version it does speak, then closes the socket; [`FrameDecoder`](crate::FrameDecoder) reports
/// that as [`WireError::ProtocolVersionMismatch`].
///
/// ```
/// use amqp_wire::ProtocolHeader;
///
/// assert_eq!(&ProtocolHeader::AMQP_0_9_1.to_bytes(), b"AMQP\x00\x00\x09\x01");
/// let reply = ProtocolHeader::decode(b"AMQP\x01\x01\x00\x0a")?.unwrap();
/// assert!(!reply.is_amqp_0_9_1());
/// assert_eq!(ProtocolHeader::decode(b"AMQ")?, None); // wait for more
/// assert!(ProtocolHeader::decode(b"HTTP/1.1").is_err());
/// # Ok::<(), amqp_wire::WireError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProtocolHeader {
    /// Protocol id (0 for AMQP 0-9-1; 0-10 servers send 1 here).
    pub protocol_id: u8,
    /// Major version.
    pub major: u8,
    /// Minor version.
    pub minor: u8,
    /// Revision.
    pub revision: u8,
}

const MAGIC: &[u8; 4] = b"AMQP";

impl ProtocolHeader {
    /// AMQP 0-9-1: `AMQP\0\0\x09\x01`.
    pub const AMQP_0_9_1: Self = Self {
        protocol_id: 0,
        major: 0,
        minor: 9,
        revision: 1,
    };

    /// Length on the wire.
    pub const LEN: usize = 8;

    /// The eight octets.
    pub const fn to_bytes(self) -> [u8; 8] {
        [
            b'A',
            b'M',
            b'Q',
            b'P',
            self.protocol_id,
            self.major,
            self.minor,
            self.revision,
        ]
    }

    /// Appends the eight octets to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_slice(&self.to_bytes());
    }

    /// Reads a header from the start of `src` (which it does not consume).
    ///
    /// `Ok(None)` if `src` is a proper prefix of some header (fewer than 8 octets, all matching
    /// `AMQP` so far); [`WireError::InvalidProtocolHeader`] as soon as the octets cannot be one
    /// (octets not received yet are shown as zero).
    pub fn decode(src: &[u8]) -> Result<Option<Self>, WireError> {
        if !Self::could_start(src) {
            let mut found = [0u8; 8];
            for (slot, b) in found.iter_mut().zip(src) {
                *slot = *b;
            }
            return Err(WireError::InvalidProtocolHeader { found });
        }
        match src.get(4..Self::LEN) {
            Some(&[protocol_id, major, minor, revision]) => Ok(Some(Self {
                protocol_id,
                major,
                minor,
                revision,
            })),
            _ => Ok(None),
        }
    }

    /// Whether `src` begins like a protocol header (its first octets, up to four, match `AMQP`).
    pub(crate) fn could_start(src: &[u8]) -> bool {
        src.iter().zip(MAGIC).all(|(a, b)| a == b)
    }

    /// Whether this is the version this crate speaks.
    pub fn is_amqp_0_9_1(&self) -> bool {
        *self == Self::AMQP_0_9_1
    }
}

impl Default for ProtocolHeader {
    fn default() -> Self {
        Self::AMQP_0_9_1
    }
}

impl fmt::Display for ProtocolHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AMQP {}-{}-{}", self.major, self.minor, self.revision)?;
        if self.protocol_id != 0 {
            write!(f, " (protocol id {})", self.protocol_id)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_0_9_1_header() {
        let mut dst = BytesMut::new();
        ProtocolHeader::AMQP_0_9_1.encode(&mut dst);
        assert_eq!(&dst[..], b"AMQP\x00\x00\x09\x01");
        assert_eq!(ProtocolHeader::AMQP_0_9_1.to_string(), "AMQP 0-9-1");
    }

    #[test]
    fn recognises_any_version_reply() {
        let h = ProtocolHeader::decode(b"AMQP\x01\x01\x00\x0a\x00")
            .unwrap()
            .unwrap();
        assert_eq!(
            h,
            ProtocolHeader {
                protocol_id: 1,
                major: 1,
                minor: 0,
                revision: 10
            }
        );
        assert_eq!(h.to_string(), "AMQP 1-0-10 (protocol id 1)");
        for n in 0..8 {
            assert_eq!(
                ProtocolHeader::decode(&b"AMQP\x00\x00\x09\x01"[..n]),
                Ok(None)
            );
        }
    }

    #[test]
    fn rejects_other_protocols_early() {
        assert_eq!(
            ProtocolHeader::decode(b"AMX"),
            Err(WireError::InvalidProtocolHeader {
                found: *b"AMX\0\0\0\0\0"
            })
        );
    }
}
