//! Sealed values: AEAD-encrypted, authenticated state carried by clients instead of kept in a
//! store (registrations, transactions, codes, refresh tokens, consent cookies).
//!
//! Format: `<kid>.<base64url(nonce ‖ ciphertext)>`, XChaCha20-Poly1305 with a 24-byte random
//! nonce. The plaintext is an 8-byte big-endian expiry followed by JSON. The associated data is
//! the [`Kind`] and the deployment the ring is bound to ([`KeyRing::bound_to`]: issuer and
//! resource), so a value sealed as one kind never opens as another, nor at another gateway
//! that happens to hold the same secret.

use alloc::string::String;
use alloc::vec::Vec;
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::XNonce;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::encoding::{b64url_decode, b64url_encode};
use crate::http::Random;
use crate::keys::KeyRing;

/// Longest sealed value accepted for opening. An authorization code carries the user's groups
/// and the IdP's refresh token: with 100 Cognito groups of 40–60 characters and a 1,800-byte
/// Cognito refresh token it is about 11 KiB (measured in the core's tests; see the README's
/// security model). Opening is linear in the length, and every value arrives within the
/// request limits (`max_header_bytes`, `max_body_bytes`) anyway.
pub const MAX_SEALED_BYTES: usize = 16 * 1024;

/// What a sealed value is; bound into the AEAD as associated data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    ClientId,
    Transaction,
    State,
    Code,
    RefreshToken,
    ConsentBinding,
    Approvals,
    /// The IdP's token of the user inside the proxy's access token (`forward_upstream_token`).
    UpstreamToken,
}

impl Kind {
    fn label(self) -> &'static [u8] {
        match self {
            Self::ClientId => b"mcpgate/v2/client_id",
            Self::Transaction => b"mcpgate/v2/transaction",
            Self::State => b"mcpgate/v2/state",
            Self::Code => b"mcpgate/v2/code",
            Self::RefreshToken => b"mcpgate/v2/refresh_token",
            Self::ConsentBinding => b"mcpgate/v2/consent_binding",
            Self::Approvals => b"mcpgate/v2/approvals",
            Self::UpstreamToken => b"mcpgate/v2/upstream_token",
        }
    }

    /// The associated data: the kind's label, then the ring's deployment binding.
    fn aad(self, ring: &KeyRing) -> Vec<u8> {
        let label = self.label();
        let mut aad = Vec::with_capacity(label.len() + 1 + ring.binding().len());
        aad.extend_from_slice(label);
        aad.push(0);
        aad.extend_from_slice(ring.binding());
        aad
    }
}

/// Why a sealed value did not open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SealError {
    /// Too long, not `kid.data`, or not base64url.
    Malformed,
    /// Sealed with a key no longer in the ring.
    UnknownKey,
    /// Tampered with, truncated, or of another kind.
    Invalid,
    Expired,
}

/// Seals `value` as `kind`, valid until `exp` (seconds since the epoch).
pub fn seal<T: Serialize>(
    ring: &KeyRing,
    kind: Kind,
    value: &T,
    exp: u64,
    random: &mut dyn Random,
) -> Option<String> {
    let key = ring.current()?;
    let mut plaintext = Vec::with_capacity(256);
    plaintext.extend_from_slice(&exp.to_be_bytes());
    plaintext.extend_from_slice(&serde_json::to_vec(value).ok()?);
    let mut nonce = [0u8; 24];
    random.fill(&mut nonce);
    let ciphertext = key
        .cipher
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: &plaintext,
                aad: &kind.aad(ring),
            },
        )
        .ok()?;
    let mut out = Vec::with_capacity(24 + ciphertext.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    let mut s = String::with_capacity(key.kid.len() + 1 + out.len() * 4 / 3 + 4);
    s.push_str(&key.kid);
    s.push('.');
    s.push_str(&b64url_encode(&out));
    Some(s)
}

/// Opens a value sealed as `kind`, refusing it after its expiry.
pub fn unseal<T: DeserializeOwned>(
    ring: &KeyRing,
    kind: Kind,
    sealed: &str,
    now: u64,
) -> Result<T, SealError> {
    if sealed.len() > MAX_SEALED_BYTES {
        return Err(SealError::Malformed);
    }
    let (kid, data) = sealed.split_once('.').ok_or(SealError::Malformed)?;
    let bytes = b64url_decode(data).ok_or(SealError::Malformed)?;
    if bytes.len() < 24 + 16 + 8 {
        return Err(SealError::Malformed);
    }
    let key = ring.by_kid(kid).ok_or(SealError::UnknownKey)?;
    let (nonce, ciphertext) = bytes.split_at(24);
    let nonce = XNonce::try_from(nonce).map_err(|_| SealError::Malformed)?;
    let plaintext = key
        .cipher
        .decrypt(
            &nonce,
            Payload {
                msg: ciphertext,
                aad: &kind.aad(ring),
            },
        )
        .map_err(|_| SealError::Invalid)?;
    let (exp, json) = plaintext.split_at_checked(8).ok_or(SealError::Invalid)?;
    let exp = u64::from_be_bytes(exp.try_into().map_err(|_| SealError::Invalid)?);
    if exp <= now {
        return Err(SealError::Expired);
    }
    serde_json::from_slice(json).map_err(|_| SealError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Secret, SigningAlgorithm};
    use crate::testutil::SeqRandom;
    use alloc::string::ToString;

    fn ring(secrets: &[&str]) -> KeyRing {
        let s: Vec<Secret> = secrets.iter().map(|s| Secret::new(s.to_string())).collect();
        KeyRing::new(&s, SigningAlgorithm::Hs256).unwrap()
    }

    const A: &str = "first-secret-of-at-least-32-characters";
    const B: &str = "second-secret-of-at-least-32-characters";

    #[test]
    fn round_trip_and_expiry() {
        let r = ring(&[A]);
        let s = seal(&r, Kind::Code, &"hello", 100, &mut SeqRandom(1)).unwrap();
        assert_eq!(unseal::<String>(&r, Kind::Code, &s, 99).unwrap(), "hello");
        assert_eq!(
            unseal::<String>(&r, Kind::Code, &s, 100),
            Err(SealError::Expired)
        );
    }

    #[test]
    fn kinds_never_swap() {
        let r = ring(&[A]);
        let s = seal(&r, Kind::RefreshToken, &"x", 100, &mut SeqRandom(1)).unwrap();
        for other in [
            Kind::ClientId,
            Kind::Transaction,
            Kind::State,
            Kind::Code,
            Kind::ConsentBinding,
            Kind::Approvals,
        ] {
            assert_eq!(
                unseal::<String>(&r, other, &s, 0),
                Err(SealError::Invalid),
                "{other:?}"
            );
        }
    }

    #[test]
    fn every_bit_flip_is_detected() {
        let r = ring(&[A]);
        let s = seal(&r, Kind::Code, &"payload", 100, &mut SeqRandom(1)).unwrap();
        let (kid, data) = s.split_once('.').unwrap();
        let raw = b64url_decode(data).unwrap();
        for i in 0..raw.len() * 8 {
            let mut t = raw.clone();
            t[i / 8] ^= 1 << (i % 8);
            let forged = alloc::format!("{kid}.{}", b64url_encode(&t));
            assert_eq!(
                unseal::<String>(&r, Kind::Code, &forged, 0),
                Err(SealError::Invalid),
                "bit {i}"
            );
        }
    }

    #[test]
    fn truncation_and_garbage_are_malformed_or_invalid() {
        let r = ring(&[A]);
        let s = seal(&r, Kind::Code, &"payload", 100, &mut SeqRandom(1)).unwrap();
        assert_eq!(
            unseal::<String>(&r, Kind::Code, &s[..s.len() - 4], 0),
            Err(SealError::Invalid)
        );
        assert_eq!(
            unseal::<String>(&r, Kind::Code, &s[..20], 0),
            Err(SealError::Malformed)
        );
        assert_eq!(
            unseal::<String>(&r, Kind::Code, "no-dot", 0),
            Err(SealError::Malformed)
        );
        assert_eq!(
            unseal::<String>(&r, Kind::Code, "kid.***", 0),
            Err(SealError::Malformed)
        );
        let long = "a".repeat(MAX_SEALED_BYTES + 1);
        assert_eq!(
            unseal::<String>(&r, Kind::Code, &long, 0),
            Err(SealError::Malformed)
        );
    }

    #[test]
    fn rotation_opens_old_values_and_retired_keys_are_refused() {
        let old = ring(&[A]);
        let s = seal(&old, Kind::Code, &"v", 100, &mut SeqRandom(1)).unwrap();
        let rotated = ring(&[B, A]);
        assert_eq!(unseal::<String>(&rotated, Kind::Code, &s, 0).unwrap(), "v");
        let fresh = seal(&rotated, Kind::Code, &"w", 100, &mut SeqRandom(2)).unwrap();
        assert!(
            !fresh.starts_with(s.split('.').next().unwrap()),
            "new values use the new kid"
        );
        let retired = ring(&[B]);
        assert_eq!(
            unseal::<String>(&retired, Kind::Code, &s, 0),
            Err(SealError::UnknownKey)
        );
    }

    #[test]
    fn a_different_secret_with_a_forged_kid_fails() {
        let r = ring(&[A]);
        let s = seal(&r, Kind::Code, &"v", 100, &mut SeqRandom(1)).unwrap();
        let other = ring(&[B]);
        let other_kid = other.current().unwrap().kid.clone();
        let forged = alloc::format!("{other_kid}.{}", s.split_once('.').unwrap().1);
        assert_eq!(
            unseal::<String>(&other, Kind::Code, &forged, 0),
            Err(SealError::Invalid)
        );
    }
}
