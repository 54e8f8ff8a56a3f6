//! The backbone's request bodies, query strings, Authorization header and bearer tokens.

use axum::response::IntoResponse;
use prisem_tools::backbone::api::{decode_request, RequestPart};
use prisem_tools::backbone::token::{Claims, Signer, TokenError};

const PARTS: [RequestPart; 7] = [
    RequestPart::NewClient,
    RequestPart::ClientChange,
    RequestPart::Send,
    RequestPart::Notify,
    RequestPart::TokenQuery,
    RequestPart::ReceiveQuery,
    RequestPart::Authorization,
];

/// Whether `s` is dot-separated words of letters, digits, `-` and `_` (at most 255 octets).
fn is_topic(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.split('.').all(|w| {
            !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// One request part (octet 0 picks which, 0-6) or, for 7, a bearer token; the rest is the input.
///
/// Checks that a rejected request is answered with a 4xx status, never a server error; that
/// what is accepted obeys the API's rules (a send's topic is plain words, no wildcard; a client
/// id is 1-64 safe characters; a receive count is 1-100; a bearer token is trimmed); and for
/// tokens: verification never panics, a token that verifies has not expired and fails with
/// another key, and claims that
/// decode sign into a token that verifies back to them until it expires.
pub fn check_backbone_api(data: &[u8]) {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    let Some(&part) = PARTS.get(usize::from(selector & 7)) else {
        check_token(input);
        return;
    };
    match decode_request(part, input) {
        Err(e) => {
            let status = e.into_response().status();
            assert!(status.is_client_error(), "{part:?} rejected with {status}");
        }
        Ok(value) => {
            let value = value.unwrap_or_default();
            match part {
                RequestPart::Send => assert!(is_topic(&value), "topic {value:?} accepted"),
                RequestPart::NewClient => assert!(
                    (1..=64).contains(&value.len())
                        && value
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')),
                    "client id {value:?} accepted"
                ),
                RequestPart::ReceiveQuery => {
                    let n: usize = value.parse().unwrap_or(0);
                    assert!((1..=100).contains(&n), "receive count {value:?}");
                }
                RequestPart::Authorization => assert_eq!(value.trim(), value),
                _ => {}
            }
        }
    }
}

fn check_token(input: &[u8]) {
    let signer = Signer::new(b"fuzz key one");
    let text = String::from_utf8_lossy(input);
    if let Ok(claims) = signer.verify(&text, 0) {
        assert!(claims.exp > 0, "expired token accepted");
        let other = Signer::new(b"fuzz key two");
        assert_eq!(other.verify(&text, 0), Err(TokenError::BadSignature));
    }
    let Ok(claims) = serde_json::from_slice::<Claims>(input) else {
        return;
    };
    let token = signer.sign(&claims);
    if claims.exp > i64::MIN {
        assert_eq!(signer.verify(&token, claims.exp - 1), Ok(claims.clone()));
    }
    assert_eq!(signer.verify(&token, claims.exp), Err(TokenError::Expired));
    let other = Signer::new(b"fuzz key two");
    assert_eq!(
        other.verify(&token, i64::MIN),
        Err(TokenError::BadSignature)
    );
}
