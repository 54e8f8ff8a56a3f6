//! Keyed, prefix-preserving pseudonyms for addresses (the Crypto-PAn construction).
//!
//! Bit `i` of the pseudonym is bit `i` of the address XOR the first bit of
//! `AES-128_K(first i bits of the address ‖ the rest of a secret pad)`, so two addresses that
//! share their first `n` bits get pseudonyms that share their first `n` bits, and the same key
//! gives the same mapping in every run and on every host. The 32-byte key is split as in the
//! original Crypto-PAn: the first 16 bytes are the AES key, the pad is the AES encryption of the
//! last 16. IPv4 addresses follow the original exactly (the address bits replace the pad's first
//! 32 bits), and give the outputs published with the Crypto-PAn reference code for its sample
//! key; IPv6 addresses use the same rule over all 128 bits of the block, the usual extension.
//!
//! # Key file
//!
//! Either exactly 32 raw bytes, or 64 hex digits (upper or lower case) with optional
//! surrounding whitespace, e.g. made with `head -c 32 /dev/urandom | xxd -p -c 64 > anon.key`.
//!
//! ```
//! use prisem_tools::addr::Pseudonymizer;
//! use std::net::Ipv4Addr;
//!
//! let p = Pseudonymizer::new(&[7u8; 32]);
//! let a = p.ipv4(Ipv4Addr::new(192, 0, 2, 1));
//! let b = p.ipv4(Ipv4Addr::new(192, 0, 2, 200));
//! assert_eq!(a.octets()[..3], b.octets()[..3]); // same /24, same pseudonym /24
//! assert_eq!(a, p.ipv4(Ipv4Addr::new(192, 0, 2, 1))); // deterministic
//! ```

use core::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use aes::cipher::{generic_array::GenericArray, BlockEncrypt, KeyInit};
use aes::Aes128;

/// The prefix-preserving pseudonym function for one key.
#[derive(Clone)]
pub struct Pseudonymizer {
    cipher: Aes128,
    pad: [u8; 16],
}

impl fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.write_str("Pseudonymizer { .. }")
    }
}

/// Why a key file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError(pub String);

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KeyError {}

impl Pseudonymizer {
    /// The pseudonym function for a 32-byte key.
    pub fn new(key: &[u8; 32]) -> Self {
        let (aes_key, pad_seed) = key.split_at(16);
        let cipher = Aes128::new(GenericArray::from_slice(aes_key));
        let mut pad = GenericArray::clone_from_slice(pad_seed);
        cipher.encrypt_block(&mut pad);
        let mut pad_bytes = [0u8; 16];
        pad_bytes.copy_from_slice(&pad);
        Self {
            cipher,
            pad: pad_bytes,
        }
    }

    /// Reads a key from the contents of a key file (32 raw bytes or 64 hex digits).
    pub fn from_key_bytes(contents: &[u8]) -> Result<Self, KeyError> {
        if let Ok(raw) = <[u8; 32]>::try_from(contents) {
            return Ok(Self::new(&raw));
        }
        let text = contents.trim_ascii();
        if text.len() != 64 {
            return Err(KeyError(format!(
                "a key file holds 32 raw bytes or 64 hex digits; this one has {} bytes",
                contents.len()
            )));
        }
        let mut key = [0u8; 32];
        for (byte, pair) in key.iter_mut().zip(text.chunks_exact(2)) {
            let digit = |b: u8| char::from(b).to_digit(16);
            match pair {
                [hi, lo] => match (digit(*hi), digit(*lo)) {
                    (Some(h), Some(l)) => *byte = (h * 16 + l) as u8,
                    _ => {
                        return Err(KeyError(format!(
                            "a 64-character key file must be hex digits, found {:?}",
                            String::from_utf8_lossy(pair)
                        )))
                    }
                },
                _ => return Err(KeyError("odd number of hex digits".to_owned())),
            }
        }
        Ok(Self::new(&key))
    }

    /// Reads a key file.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let contents = std::fs::read(path)
            .map_err(|e| KeyError(format!("cannot read key file {}: {e}", path.display())))?;
        Self::from_key_bytes(&contents)
            .map_err(|e| KeyError(format!("key file {}: {e}", path.display())))
    }

    /// The first bit of AES_K(block), as the low bit of a u8.
    fn prf_bit(&self, block: [u8; 16]) -> u8 {
        let mut b = GenericArray::from(block);
        self.cipher.encrypt_block(&mut b);
        b.first().copied().unwrap_or(0) >> 7
    }

    /// The pseudonym of an IPv4 address.
    pub fn ipv4(&self, addr: Ipv4Addr) -> Ipv4Addr {
        let orig = u32::from(addr);
        let [p0, p1, p2, p3, ..] = self.pad;
        let pad_word = u32::from_be_bytes([p0, p1, p2, p3]);
        let mut otp: u32 = 0;
        for pos in 0..32u32 {
            let keep = if pos == 0 { 0 } else { u32::MAX << (32 - pos) };
            let word = (orig & keep) | (pad_word & !keep);
            let mut block = self.pad;
            for (dst, src) in block.iter_mut().zip(word.to_be_bytes()) {
                *dst = src;
            }
            otp |= u32::from(self.prf_bit(block)) << (31 - pos);
        }
        Ipv4Addr::from(orig ^ otp)
    }

    /// The pseudonym of an IPv6 address.
    pub fn ipv6(&self, addr: Ipv6Addr) -> Ipv6Addr {
        let orig = u128::from(addr);
        let pad = u128::from_be_bytes(self.pad);
        let mut otp: u128 = 0;
        for pos in 0..128u32 {
            let keep = if pos == 0 {
                0
            } else {
                u128::MAX << (128 - pos)
            };
            let block = ((orig & keep) | (pad & !keep)).to_be_bytes();
            otp |= u128::from(self.prf_bit(block)) << (127 - pos);
        }
        Ipv6Addr::from(orig ^ otp)
    }

    /// The pseudonym of an address of either family.
    pub fn ip(&self, addr: IpAddr) -> IpAddr {
        match addr {
            IpAddr::V4(a) => IpAddr::V4(self.ipv4(a)),
            IpAddr::V6(a) => IpAddr::V6(self.ipv6(a)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key() -> Pseudonymizer {
        let mut k = [0u8; 32];
        for (i, b) in k.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37).wrapping_add(11);
        }
        Pseudonymizer::new(&k)
    }

    fn common_prefix(a: u128, b: u128, width: u32) -> u32 {
        (a ^ b)
            .leading_zeros()
            .saturating_sub(128 - width)
            .min(width)
    }

    #[test]
    fn key_files_raw_and_hex() {
        let raw = [0x5au8; 32];
        let hex = format!("  {}\n", "5A".repeat(32));
        let a = Pseudonymizer::from_key_bytes(&raw).unwrap();
        let b = Pseudonymizer::from_key_bytes(hex.as_bytes()).unwrap();
        let ip = Ipv4Addr::new(198, 51, 100, 23);
        assert_eq!(a.ipv4(ip), b.ipv4(ip));
        let short = Pseudonymizer::from_key_bytes(b"abc").unwrap_err();
        assert!(short.0.contains("32 raw bytes or 64 hex digits"), "{short}");
        let bad = Pseudonymizer::from_key_bytes("zz".repeat(32).as_bytes()).unwrap_err();
        assert!(bad.0.contains("hex digits"), "{bad}");
        let missing = Pseudonymizer::load(Path::new("/nonexistent/anon.key")).unwrap_err();
        assert!(missing.0.contains("/nonexistent/anon.key"));
        assert_eq!(format!("{a:?}"), "Pseudonymizer { .. }");
    }

    #[test]
    fn different_keys_differ_and_same_key_repeats() {
        let p = key();
        let q = Pseudonymizer::new(&[1u8; 32]);
        let ip = Ipv4Addr::new(192, 0, 2, 1);
        assert_eq!(p.ipv4(ip), key().ipv4(ip));
        assert_ne!(p.ipv4(ip), q.ipv4(ip));
        let v6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        assert_eq!(p.ipv6(v6), key().ipv6(v6));
        assert_ne!(p.ipv6(v6), v6);
    }

    #[test]
    fn mapping_is_pinned_across_releases() {
        // Pseudonyms published from one run must stay valid in the next: a change here breaks
        // every operator's stored mappings.
        let hex = b"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";
        let p = Pseudonymizer::from_key_bytes(hex).unwrap();
        let cases = [
            ("192.0.2.1", "2.90.93.17"),
            ("198.51.100.200", "6.247.27.188"),
            ("2001:db8::1", "dd92:2c44:3fc0:ff1e:7ff9:c7f0:8180:7e00"),
        ];
        for (from, to) in cases {
            assert_eq!(p.ip(from.parse().unwrap()).to_string(), to, "{from}");
        }
    }

    proptest! {
        #[test]
        fn ipv4_prefixes_are_preserved(a: u32, b: u32) {
            let p = key();
            let (pa, pb) = (u32::from(p.ipv4(a.into())), u32::from(p.ipv4(b.into())));
            prop_assert_eq!(
                common_prefix(a.into(), b.into(), 32),
                common_prefix(pa.into(), pb.into(), 32)
            );
        }

        #[test]
        fn ipv4_shared_prefix_of_given_length(a: u32, low: u32, n in 0u32..=32) {
            // b shares exactly the first n bits of a (or all of them when n = 32).
            let keep = if n == 0 { 0 } else { u32::MAX << (32 - n) };
            let b = (a & keep) | (low & !keep);
            let p = key();
            let (pa, pb) = (u32::from(p.ipv4(a.into())), u32::from(p.ipv4(b.into())));
            prop_assert_eq!(pa & keep, pb & keep);
        }

        #[test]
        fn ipv6_prefixes_are_preserved(a: u128, b: u128) {
            let p = key();
            let (pa, pb) = (u128::from(p.ipv6(a.into())), u128::from(p.ipv6(b.into())));
            prop_assert_eq!(common_prefix(a, b, 128), common_prefix(pa, pb, 128));
        }
    }
}
