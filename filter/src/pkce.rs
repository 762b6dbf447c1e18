//! PKCE (RFC 7636), S256 only.

use alloc::string::String;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::encoding::b64url_encode;

/// True for a code verifier of 43–128 unreserved characters (RFC 7636 §4.1).
pub fn valid_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// True for an S256 challenge: 43 base64url characters (a SHA-256 digest).
pub fn valid_challenge(c: &str) -> bool {
    c.len() == 43
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub fn challenge_for(verifier: &str) -> String {
    b64url_encode(&Sha256::digest(verifier.as_bytes()))
}

/// Checks `verifier` against a stored S256 `challenge` in constant time.
pub fn verify(verifier: &str, challenge: &str) -> bool {
    valid_verifier(verifier)
        && bool::from(
            challenge_for(verifier)
                .as_bytes()
                .ct_eq(challenge.as_bytes()),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_example() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert_eq!(challenge_for(verifier), challenge);
        assert!(verify(verifier, challenge));
        assert!(valid_challenge(challenge));
    }

    #[test]
    fn bad_verifiers_fail() {
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(
            !verify("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj", challenge),
            "wrong"
        );
        assert!(!valid_verifier("short"), "too short");
        assert!(!valid_verifier(&"a".repeat(129)), "too long");
        assert!(
            !valid_verifier(&alloc::format!("{}+", "a".repeat(43))),
            "alphabet"
        );
        assert!(!valid_challenge("plain-challenge"), "not a digest");
        assert!(!valid_challenge(&"a".repeat(44)));
    }
}
