//! Bearer tokens: `base64url(claims JSON) "." base64url(HMAC-SHA256(key, claims))`.
//!
//! The claims are the client id, the expiry (Unix seconds) and the client's creation time, so a
//! token issued to a client that was deleted (and maybe created again under the same id) no
//! longer matches the register.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The client the token was issued to.
    pub sub: String,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// The creation time of the client record it was issued for.
    pub gen: String,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenError {
    /// Not two base64 parts, or claims that are not JSON.
    Malformed,
    /// The signature does not match.
    BadSignature,
    /// Past its expiry.
    Expired,
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Malformed => "the token is malformed",
            Self::BadSignature => "the token's signature is invalid",
            Self::Expired => "the token has expired",
        })
    }
}

/// Signs and checks tokens with one key.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer { key: <hidden> }")
    }
}

impl Signer {
    /// A signer keyed with `key` (any length; 32 random bytes or more recommended).
    pub fn new(key: &[u8]) -> Self {
        Self { key: key.to_vec() }
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes keys of any length.
        match HmacSha256::new_from_slice(&self.key) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC accepts keys of every length"),
        }
    }

    /// A token for `claims`.
    pub fn sign(&self, claims: &Claims) -> String {
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{body}.{sig}")
    }

    /// The claims of `token` if its signature is good (compared in constant time) and it has
    /// not expired at `now` (Unix seconds).
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        let (body, sig) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| TokenError::Malformed)?;
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        mac.verify_slice(&sig)
            .map_err(|_| TokenError::BadSignature)?;
        let raw = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| TokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&raw).map_err(|_| TokenError::Malformed)?;
        if claims.exp <= now {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: "alpha".into(),
            exp,
            gen: "2026-01-01T00:00:00.000Z".into(),
        }
    }

    #[test]
    fn round_trip_expiry_and_forgery() {
        let s = Signer::new(b"key one");
        let t = s.sign(&claims(1000));
        assert_eq!(s.verify(&t, 999).unwrap(), claims(1000));
        assert_eq!(s.verify(&t, 1000), Err(TokenError::Expired));
        assert_eq!(
            Signer::new(b"key two").verify(&t, 0),
            Err(TokenError::BadSignature)
        );
        // Changing the claims without the key breaks the signature.
        let (_, sig) = t.split_once('.').unwrap();
        let forged = format!(
            "{}.{sig}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(i64::MAX)).unwrap())
        );
        assert_eq!(s.verify(&forged, 0), Err(TokenError::BadSignature));
        assert_eq!(s.verify("nodot", 0), Err(TokenError::Malformed));
        assert_eq!(s.verify("a.!!", 0), Err(TokenError::Malformed));
    }
}
