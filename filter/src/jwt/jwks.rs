//! RFC 7517 JSON Web Key Sets: parsed once, keys prepared for fast verification, keys the
//! verifier cannot use skipped instead of failing the whole set.

use alloc::string::String;
use alloc::vec::Vec;
use serde::Deserialize;

use super::alg::{Algorithm, KeyFamily};
use super::der;
use super::error::TokenError;
use super::signature::{self, NativeRsa};
use crate::encoding::{b64url_decode, json_depth_within};

/// Largest JWKS document accepted (Cognito's is about 1 KiB).
pub const MAX_JWKS_BYTES: usize = 64 * 1024;
/// Most keys kept from one set.
pub const MAX_KEYS: usize = 32;

/// Why a whole key-set document was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JwksError {
    TooLarge,
    /// Not a JSON object with a `keys` array.
    Malformed,
}

impl core::fmt::Display for JwksError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::TooLarge => "JWKS document too large",
            Self::Malformed => "JWKS document is not an object with a keys array",
        })
    }
}

/// A key ready to verify signatures.
#[derive(Clone, Debug)]
pub enum KeyMaterial {
    Rsa(RsaKey),
    EcP256(p256::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
    /// A local HMAC secret (mcpgate's own HS256 tokens). [`KeySet::from_json`] never yields
    /// one, so a published key can never be used as an HMAC secret (algorithm confusion).
    Hmac(HmacKey),
}

/// An HMAC secret; its bytes never appear in `Debug` output.
#[derive(Clone)]
pub struct HmacKey(pub(crate) Vec<u8>);

impl HmacKey {
    pub fn new(secret: Vec<u8>) -> Self {
        Self(secret)
    }
}

impl core::fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("HmacKey(<redacted>)")
    }
}

/// An RSA public key, with its SubjectPublicKeyInfo DER for native verifiers.
#[derive(Clone, Debug)]
pub struct RsaKey {
    pub(crate) key: rsa::PublicKey,
    pub spki_der: Vec<u8>,
}

/// One usable key of a set.
#[derive(Clone, Debug)]
pub struct Jwk {
    pub kid: Option<String>,
    /// The `alg` the key is restricted to, when the JWK says so.
    pub alg: Option<Algorithm>,
    pub material: KeyMaterial,
}

impl Jwk {
    pub fn family(&self) -> KeyFamily {
        match self.material {
            KeyMaterial::Rsa(_) => KeyFamily::Rsa,
            KeyMaterial::EcP256(_) => KeyFamily::EcP256,
            KeyMaterial::Ed25519(_) => KeyFamily::Ed25519,
            KeyMaterial::Hmac(_) => KeyFamily::Symmetric,
        }
    }

    fn fits(&self, alg: Algorithm) -> bool {
        self.family() == alg.family() && self.alg.is_none_or(|a| a == alg)
    }

    /// Verifies `signature` over `signing_input` with this key.
    pub fn verify(
        &self,
        alg: Algorithm,
        signing_input: &[u8],
        sig: &[u8],
        native: Option<&dyn NativeRsa>,
    ) -> Result<(), TokenError> {
        if !self.fits(alg) {
            return Err(TokenError::KeyMismatch);
        }
        let ok = match &self.material {
            KeyMaterial::Rsa(key) => signature::verify_rsa(alg, key, signing_input, sig, native),
            KeyMaterial::EcP256(key) => signature::verify_es256(key, signing_input, sig),
            KeyMaterial::Ed25519(key) => signature::verify_eddsa(key, signing_input, sig),
            KeyMaterial::Hmac(key) => signature::verify_hs256(&key.0, signing_input, sig),
        };
        if ok {
            Ok(())
        } else {
            Err(TokenError::BadSignature)
        }
    }
}

/// The usable keys of one JWKS document.
#[derive(Clone, Debug, Default)]
pub struct KeySet {
    keys: Vec<Jwk>,
    /// How many keys of the document were skipped (unsupported type, bad encoding, wrong use).
    pub skipped: usize,
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    key_ops: Option<Vec<String>>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

impl KeySet {
    /// Parses a JWKS document.
    pub fn from_json(doc: &[u8]) -> Result<Self, JwksError> {
        if doc.len() > MAX_JWKS_BYTES {
            return Err(JwksError::TooLarge);
        }
        if !json_depth_within(doc, 4) {
            return Err(JwksError::Malformed);
        }
        let raw: RawSet = serde_json::from_slice(doc).map_err(|_| JwksError::Malformed)?;
        let mut set = KeySet::default();
        for value in raw.keys {
            match serde_json::from_value::<RawJwk>(value)
                .ok()
                .and_then(parse_jwk)
            {
                Some(jwk) if set.keys.len() < MAX_KEYS => set.keys.push(jwk),
                _ => set.skipped += 1,
            }
        }
        Ok(set)
    }

    pub fn from_keys(keys: Vec<Jwk>) -> Self {
        Self { keys, skipped: 0 }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn keys(&self) -> &[Jwk] {
        &self.keys
    }

    pub fn contains_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    /// Chooses the key for a token: by `kid` when present; otherwise the one key that fits
    /// `alg`, refusing when several do.
    pub fn select(&self, alg: Algorithm, kid: Option<&str>) -> Result<&Jwk, TokenError> {
        match kid {
            Some(kid) => {
                let key = self
                    .keys
                    .iter()
                    .find(|k| k.kid.as_deref() == Some(kid))
                    .ok_or(TokenError::UnknownKid)?;
                if key.fits(alg) {
                    Ok(key)
                } else {
                    Err(TokenError::KeyMismatch)
                }
            }
            None => {
                let mut fitting = self.keys.iter().filter(|k| k.fits(alg));
                match (fitting.next(), fitting.next()) {
                    (Some(key), None) => Ok(key),
                    (None, _) => Err(TokenError::UnknownKid),
                    (Some(_), Some(_)) => Err(TokenError::AmbiguousKey),
                }
            }
        }
    }
}

fn parse_jwk(raw: RawJwk) -> Option<Jwk> {
    if raw.use_.as_deref().is_some_and(|u| u != "sig") {
        return None;
    }
    if let Some(ops) = &raw.key_ops {
        if !ops.iter().any(|o| o == "verify") {
            return None;
        }
    }
    let alg = match raw.alg.as_deref() {
        Some(name) => Some(Algorithm::from_name(name)?),
        None => None,
    };
    let material = match (raw.kty.as_str(), raw.crv.as_deref()) {
        ("RSA", _) => {
            let n = b64url_decode(raw.n.as_deref()?)?;
            let e = b64url_decode(raw.e.as_deref()?)?;
            let key = rsa::PublicKey::new_with_size_limits(
                rsa::BoxedUint::from_be_slice_vartime(&n),
                rsa::BoxedUint::from_be_slice_vartime(&e),
                2048..=8192,
            )
            .ok()?;
            KeyMaterial::Rsa(RsaKey {
                key,
                spki_der: der::rsa_spki(&n, &e),
            })
        }
        ("EC", Some("P-256")) => {
            let x = b64url_decode(raw.x.as_deref()?)?;
            let y = b64url_decode(raw.y.as_deref()?)?;
            if x.len() != 32 || y.len() != 32 {
                return None;
            }
            let mut sec1 = Vec::with_capacity(65);
            sec1.push(0x04);
            sec1.extend_from_slice(&x);
            sec1.extend_from_slice(&y);
            KeyMaterial::EcP256(p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).ok()?)
        }
        ("OKP", Some("Ed25519")) => {
            let x: [u8; 32] = b64url_decode(raw.x.as_deref()?)?.try_into().ok()?;
            KeyMaterial::Ed25519(ed25519_dalek::VerifyingKey::from_bytes(&x).ok()?)
        }
        _ => return None,
    };
    let jwk = Jwk {
        kid: raw.kid,
        alg,
        material,
    };
    // A JWK whose declared alg contradicts its key type is unusable.
    match jwk.alg {
        Some(a) if a.family() != jwk.family() => None,
        _ => Some(jwk),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::tests::vectors::*;

    #[test]
    fn rfc7517_appendix_a_public_keys_parse() {
        // The EC key is marked "use": "enc", so only the RSA signing key is kept.
        let set = KeySet::from_json(RFC7517_A1.as_bytes()).unwrap();
        assert_eq!(set.len(), 1);
        assert_eq!(set.skipped, 1);
        assert!(matches!(set.keys()[0].material, KeyMaterial::Rsa(_)));
        assert_eq!(set.keys()[0].kid.as_deref(), Some("2011-04-29"));
        assert_eq!(set.keys()[0].alg, Some(Algorithm::Rs256));
        // The same EC key marked for signatures is usable.
        let sig = RFC7517_A1.replace(r#""use":"enc""#, r#""use":"sig""#);
        let set = KeySet::from_json(sig.as_bytes()).unwrap();
        assert_eq!(set.len(), 2);
        assert!(matches!(set.keys()[0].material, KeyMaterial::EcP256(_)));
    }

    #[test]
    fn unusable_keys_are_skipped_not_fatal() {
        let doc = alloc::format!(
            r#"{{"keys":[{{"kty":"oct","k":"c2VjcmV0"}},{{"kty":"RSA","n":"AQAB","e":"AQAB","kid":"tiny"}},
            {{"kty":"RSA","use":"enc","n":"{n}","e":"AQAB"}},{{"kty":"EC","crv":"P-384","x":"AA","y":"AA"}},
            {{"kty":"RSA","alg":"ES256","n":"{n}","e":"AQAB"}},"junk",
            {{"kty":"RSA","kid":"good","n":"{n}","e":"AQAB"}}]}}"#,
            n = RFC7515_A2_N
        );
        let set = KeySet::from_json(doc.as_bytes()).unwrap();
        assert_eq!(set.len(), 1);
        assert_eq!(set.skipped, 6);
        assert!(set.contains_kid("good"));
    }

    #[test]
    fn documents_that_are_not_key_sets_are_refused() {
        assert_eq!(KeySet::from_json(b"[]").unwrap_err(), JwksError::Malformed);
        assert_eq!(
            KeySet::from_json(b"{\"keys\":{}}").unwrap_err(),
            JwksError::Malformed
        );
        let deep = alloc::format!("{{\"keys\":[{}{}]}}", "[".repeat(10), "]".repeat(10));
        assert_eq!(
            KeySet::from_json(deep.as_bytes()).unwrap_err(),
            JwksError::Malformed
        );
        let big = alloc::vec![b' '; MAX_JWKS_BYTES + 1];
        assert_eq!(KeySet::from_json(&big).unwrap_err(), JwksError::TooLarge);
    }

    #[test]
    fn selection_by_kid_and_without_kid() {
        let set = KeySet::from_json(RFC7517_A1.as_bytes()).unwrap();
        assert!(set.select(Algorithm::Rs256, Some("2011-04-29")).is_ok());
        assert_eq!(
            set.select(Algorithm::Rs256, Some("nope")).unwrap_err(),
            TokenError::UnknownKid
        );
        assert_eq!(
            set.select(Algorithm::Es256, Some("2011-04-29"))
                .unwrap_err(),
            TokenError::KeyMismatch
        );
        // Exactly one RSA key: a token without kid may use it.
        assert!(set.select(Algorithm::Rs256, None).is_ok());
        let two = alloc::format!(
            r#"{{"keys":[{{"kty":"RSA","n":"{n}","e":"AQAB","kid":"a"}},{{"kty":"RSA","n":"{n}","e":"AQAB","kid":"b"}}]}}"#,
            n = RFC7515_A2_N
        );
        let set = KeySet::from_json(two.as_bytes()).unwrap();
        assert_eq!(
            set.select(Algorithm::Rs256, None).unwrap_err(),
            TokenError::AmbiguousKey
        );
        assert_eq!(
            set.select(Algorithm::EdDsa, None).unwrap_err(),
            TokenError::UnknownKid
        );
    }
}
