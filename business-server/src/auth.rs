//! HMAC-SHA256 signed tokens (user, room, role, expiry) and the admin-key check.
//!
//! A token is `base64url(claims JSON) "." base64url(HMAC-SHA256(secret, first part))`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::protocol::{ErrorCode, ProtoError};

/// Room value in a token that admits every room.
pub const ANY_ROOM: &str = "*";

/// What a token holder may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads, chats, likes, gifts and buys.
    Viewer,
    /// A viewer that may also post notices.
    Host,
    /// Like a host, in every sense the protocol knows.
    Admin,
}

impl Role {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Host => "host",
            Role::Admin => "admin",
        }
    }

    /// Whether notices may be posted.
    pub fn may_post_notices(self) -> bool {
        matches!(self, Role::Host | Role::Admin)
    }
}

/// Signed token contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// User id.
    pub user: String,
    /// Room the token is valid for, or `*`.
    pub room: String,
    /// Role.
    pub role: Role,
    /// Expiry, unix seconds.
    pub exp: u64,
}

impl Claims {
    /// Whether the token admits `room`.
    pub fn allows_room(&self, room: &str) -> bool {
        self.room == ANY_ROOM || self.room == room
    }
}

/// Issues and verifies tokens with one secret.
#[derive(Clone)]
pub struct TokenSigner {
    mac: Hmac<Sha256>,
}

impl TokenSigner {
    /// A signer for `secret`.
    pub fn new(secret: &[u8]) -> Self {
        Self {
            mac: Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length"),
        }
    }

    /// Signs `claims`.
    pub fn issue(&self, claims: &Claims) -> String {
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
        let mut mac = self.mac.clone();
        mac.update(body.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{body}.{sig}")
    }

    /// Checks signature and expiry against `now` (unix seconds).
    pub fn verify(&self, token: &str, now: u64) -> Result<Claims, ProtoError> {
        let invalid = |why: &str| ProtoError::new(ErrorCode::TokenInvalid, format!("token {why}"));
        let (body, sig) = token
            .split_once('.')
            .ok_or_else(|| invalid("is malformed"))?;
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| invalid("signature is not base64url"))?;
        let mut mac = self.mac.clone();
        mac.update(body.as_bytes());
        mac.verify_slice(&sig)
            .map_err(|_| invalid("signature does not match"))?;
        let raw = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| invalid("body is not base64url"))?;
        let claims: Claims =
            serde_json::from_slice(&raw).map_err(|_| invalid("claims are malformed"))?;
        if claims.exp <= now {
            return Err(ProtoError::new(
                ErrorCode::TokenExpired,
                format!("token expired at {} (now {now})", claims.exp),
            ));
        }
        Ok(claims)
    }
}

/// Compares an offered admin key with the configured one in constant time.
pub fn admin_key_matches(offered: &str, expected: &str) -> bool {
    let a = Sha256::digest(offered.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Checks a user or room identifier: 1-64 characters of `[A-Za-z0-9_-]`.
pub fn valid_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: u64) -> Claims {
        Claims {
            user: "u1".into(),
            room: "r1".into(),
            role: Role::Viewer,
            exp,
        }
    }

    #[test]
    fn round_trip() {
        let s = TokenSigner::new(b"secret");
        let t = s.issue(&claims(100));
        assert_eq!(s.verify(&t, 50).unwrap(), claims(100));
    }

    #[test]
    fn rejects_forged_expired_and_garbage() {
        let s = TokenSigner::new(b"secret");
        let other = TokenSigner::new(b"other");
        let t = other.issue(&claims(100));
        assert_eq!(s.verify(&t, 50).unwrap_err().code, ErrorCode::TokenInvalid);
        assert_eq!(
            s.verify(&s.issue(&claims(100)), 100).unwrap_err().code,
            ErrorCode::TokenExpired
        );
        for bad in ["", "abc", "a.b", "....", "é.é"] {
            assert_eq!(s.verify(bad, 0).unwrap_err().code, ErrorCode::TokenInvalid);
        }
        let good = s.issue(&claims(100));
        let (body, sig) = good.split_once('.').unwrap();
        let tampered_body =
            URL_SAFE_NO_PAD.encode(br#"{"user":"u2","room":"r1","role":"admin","exp":100}"#);
        assert_eq!(
            s.verify(&format!("{tampered_body}.{sig}"), 0)
                .unwrap_err()
                .code,
            ErrorCode::TokenInvalid
        );
        assert!(s.verify(&format!("{body}.{sig}"), 0).is_ok());
    }

    #[test]
    fn names_and_admin_keys() {
        assert!(valid_name("room-1_A"));
        assert!(!valid_name(""));
        assert!(!valid_name("a b"));
        assert!(!valid_name(&"x".repeat(65)));
        assert!(admin_key_matches("k", "k"));
        assert!(!admin_key_matches("k", "K"));
    }
}
