//! Signature checks, one function per key family. RSA may be delegated to a host's native
//! implementation (Envoy's `verify_signature` foreign function) through [`NativeRsa`].

use hmac::{KeyInit, Mac};
use rsa::traits::SignatureScheme;
use sha2::{Digest, Sha256, Sha384, Sha512};
use subtle::ConstantTimeEq;

use super::alg::Algorithm;
use super::jwks::RsaKey;

type HmacSha256 = hmac::Hmac<Sha256>;

/// A host's native RSA PKCS#1 v1.5 verifier.
pub trait NativeRsa {
    /// Verifies `signature` over `message` with the DER SubjectPublicKeyInfo `spki_der`, hashing
    /// with `hash` ("sha256", "sha384", "sha512"). `None` means "not available here": the caller
    /// falls back to the pure-Rust implementation.
    fn verify_pkcs1v15(
        &self,
        hash: &'static str,
        spki_der: &[u8],
        signature: &[u8],
        message: &[u8],
    ) -> Option<bool>;
}

pub(crate) fn verify_rsa(
    alg: Algorithm,
    key: &RsaKey,
    message: &[u8],
    signature: &[u8],
    native: Option<&dyn NativeRsa>,
) -> bool {
    let hash = match alg {
        Algorithm::Rs256 => "sha256",
        Algorithm::Rs384 => "sha384",
        Algorithm::Rs512 => "sha512",
        _ => "",
    };
    if !hash.is_empty() {
        if let Some(verdict) =
            native.and_then(|n| n.verify_pkcs1v15(hash, &key.spki_der, signature, message))
        {
            return verdict;
        }
    }
    let result = match alg {
        Algorithm::Rs256 => {
            rsa::Pkcs1v15Sign::new::<Sha256>().verify(&key.key, &Sha256::digest(message), signature)
        }
        Algorithm::Rs384 => {
            rsa::Pkcs1v15Sign::new::<Sha384>().verify(&key.key, &Sha384::digest(message), signature)
        }
        Algorithm::Rs512 => {
            rsa::Pkcs1v15Sign::new::<Sha512>().verify(&key.key, &Sha512::digest(message), signature)
        }
        Algorithm::Ps256 => {
            rsa::pss::Pss::<Sha256>::new().verify(&key.key, &Sha256::digest(message), signature)
        }
        _ => return false,
    };
    result.is_ok()
}

pub(crate) fn verify_es256(
    key: &p256::ecdsa::VerifyingKey,
    message: &[u8],
    signature: &[u8],
) -> bool {
    use p256::ecdsa::signature::Verifier;
    // JWS uses the fixed 64-byte r||s form (RFC 7518 §3.4), not DER.
    if signature.len() != 64 {
        return false;
    }
    match p256::ecdsa::Signature::from_slice(signature) {
        Ok(sig) => key.verify(message, &sig).is_ok(),
        Err(_) => false,
    }
}

pub(crate) fn verify_eddsa(
    key: &ed25519_dalek::VerifyingKey,
    message: &[u8],
    signature: &[u8],
) -> bool {
    match ed25519_dalek::Signature::from_slice(signature) {
        Ok(sig) => key.verify_strict(message, &sig).is_ok(),
        Err(_) => false,
    }
}

/// HMAC-SHA-256 of `message` under `key`.
pub fn hs256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    if let Ok(mut mac) = HmacSha256::new_from_slice(key) {
        mac.update(message);
        out.copy_from_slice(&mac.finalize().into_bytes());
    }
    out
}

/// Constant-time HS256 check.
pub fn verify_hs256(key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    signature.len() == 32 && bool::from(hs256(key, message).ct_eq(signature))
}
