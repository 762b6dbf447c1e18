//! Minimal JWT helpers: RS256 signing/verification with `rsa`, and unverified decoding for
//! assertions in tests.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::pkcs8::DecodePrivateKey as _;
use rsa::signature::{SignatureEncoding as _, Signer as _, Verifier as _};
use rsa::traits::PublicKeyParts as _;
use serde_json::{Map, Value};
use sha2::Sha256;

/// base64url without padding.
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decode base64url (padding tolerated).
pub fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()
}

/// An RSA key able to sign RS256 JWTs, with its public JWK.
#[derive(Clone)]
pub struct RsaJwtKey {
    kid: String,
    signing: SigningKey<Sha256>,
    verifying: VerifyingKey<Sha256>,
    n: String,
    e: String,
}

impl std::fmt::Debug for RsaJwtKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaJwtKey").field("kid", &self.kid).finish()
    }
}

impl RsaJwtKey {
    /// Load a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`).
    pub fn from_pkcs8_pem(kid: impl Into<String>, pem: &str) -> anyhow::Result<Self> {
        let der = pem_to_der(pem, "PRIVATE KEY")?;
        let key = rsa::PrivateKey::from_pkcs8_der(&der)
            .map_err(|e| anyhow::anyhow!("invalid PKCS#8 RSA key: {e}"))?;
        let public = key.to_public_key();
        let n = b64url(&public.n_bytes());
        let e = b64url(&public.e_bytes());
        Ok(Self {
            kid: kid.into(),
            signing: SigningKey::<Sha256>::new(key),
            verifying: VerifyingKey::<Sha256>::new(public),
            n,
            e,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK (`kty`, `alg`, `use`, `kid`, `n`, `e`), in Cognito's field order.
    pub fn jwk(&self) -> Value {
        serde_json::json!({
            "alg": "RS256",
            "e": self.e,
            "kid": self.kid,
            "kty": "RSA",
            "n": self.n,
            "use": "sig",
        })
    }

    /// Sign `header.payload` and return the compact JWT. `header` gets no implicit fields.
    pub fn sign_compact(&self, header: &Value, claims: &Value) -> String {
        let signing_input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let sig: Signature = self.signing.sign(signing_input.as_bytes());
        format!("{signing_input}.{}", b64url(&sig.to_bytes()))
    }

    /// Sign with the standard header `{"kid": ..., "alg": "RS256"}` (Cognito's order).
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_compact(
            &serde_json::json!({"kid": self.kid, "alg": "RS256"}),
            claims,
        )
    }

    /// Verify the RS256 signature of a compact JWT (no claim checks).
    pub fn verify_signature(&self, token: &str) -> bool {
        let Some((input, sig)) = token.rsplit_once('.') else {
            return false;
        };
        let Some(sig) = b64url_decode(sig) else {
            return false;
        };
        let Ok(sig) = Signature::try_from(sig.as_slice()) else {
            return false;
        };
        self.verifying.verify(input.as_bytes(), &sig).is_ok()
    }
}

fn pem_to_der(pem: &str, label: &str) -> anyhow::Result<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem
        .find(&begin)
        .ok_or_else(|| anyhow::anyhow!("PEM does not contain {begin}"))?
        + begin.len();
    let stop = pem[start..]
        .find(&end)
        .ok_or_else(|| anyhow::anyhow!("PEM does not contain {end}"))?
        + start;
    let body: String = pem[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|e| anyhow::anyhow!("PEM body is not base64: {e}"))
}

/// A decoded (not verified) compact JWT.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedJwt {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
}

impl DecodedJwt {
    /// Claim names, sorted — handy for asserting exact claim sets.
    pub fn claim_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.claims.keys().cloned().collect();
        names.sort();
        names
    }
    pub fn str_claim(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }
    pub fn kid(&self) -> Option<&str> {
        self.header.get("kid").and_then(Value::as_str)
    }
}

/// Decode a compact JWT's header and payload without verifying anything.
pub fn decode_unverified(token: &str) -> anyhow::Result<DecodedJwt> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(_s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        anyhow::bail!("not a compact JWS (three segments expected)");
    };
    let decode = |seg: &str| -> anyhow::Result<Map<String, Value>> {
        let bytes =
            b64url_decode(seg).ok_or_else(|| anyhow::anyhow!("segment is not base64url"))?;
        match serde_json::from_slice(&bytes)? {
            Value::Object(m) => Ok(m),
            _ => anyhow::bail!("segment is not a JSON object"),
        }
    };
    Ok(DecodedJwt {
        header: decode(h)?,
        claims: decode(p)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cognito::config::DEFAULT_KEYS_PEM;

    #[test]
    fn sign_then_verify_and_decode() {
        let k1 = RsaJwtKey::from_pkcs8_pem("k1", DEFAULT_KEYS_PEM[0]).unwrap();
        let k2 = RsaJwtKey::from_pkcs8_pem("k2", DEFAULT_KEYS_PEM[1]).unwrap();
        let t = k1.sign(&serde_json::json!({"sub": "x", "n": 1}));
        assert!(k1.verify_signature(&t));
        assert!(!k2.verify_signature(&t));
        let d = decode_unverified(&t).unwrap();
        assert_eq!(d.kid(), Some("k1"));
        assert_eq!(d.header["alg"], "RS256");
        assert_eq!(d.claim_names(), vec!["n", "sub"]);
        let jwk = k1.jwk();
        assert_eq!(jwk["e"], "AQAB");
        // 2048-bit modulus: 256 bytes -> 342 base64url chars.
        assert_eq!(jwk["n"].as_str().unwrap().len(), 342);
        // Tampering breaks the signature.
        let mut parts: Vec<&str> = t.split('.').collect();
        let other = b64url(br#"{"sub":"y","n":1}"#);
        parts[1] = &other;
        assert!(!k1.verify_signature(&parts.join(".")));
    }
}
