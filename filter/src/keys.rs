//! The proxy's key ring: every secret in `jwt_signing_key` / `previous_jwt_signing_keys` is
//! expanded with HKDF into a key id, a sealing key and a token-signing key. The first key
//! seals and signs; all of them open and verify, so rotation logs nobody out.

use alloc::string::String;
use alloc::vec::Vec;
use chacha20poly1305::{KeyInit, XChaCha20Poly1305};
use hkdf::Hkdf;
use serde_json::json;
use sha2::Sha256;

use crate::config::{Secret, SigningAlgorithm};
use crate::encoding::b64url_encode;
use crate::jwt::{Algorithm, HmacKey, Jwk, KeyMaterial, KeySet};

const SALT: &[u8] = b"mcpgate key ring v1";

type HmacSha256 = hmac::Hmac<Sha256>;

/// The private half of the token-signing key (for HS256, the keyed MAC state, ready to clone).
pub(crate) enum Signer {
    Hs256(HmacSha256),
    Es256(p256::ecdsa::SigningKey),
    EdDsa(ed25519_dalek::SigningKey),
}

pub(crate) struct RingKey {
    pub kid: String,
    pub alg: Algorithm,
    /// The exact base64url JWS header of the access tokens this key signs.
    pub header_b64: String,
    pub cipher: XChaCha20Poly1305,
    pub signer: Signer,
}

/// Current key first, then retired keys.
pub struct KeyRing {
    keys: Vec<RingKey>,
    /// Keys that verify the proxy's own access tokens.
    verify: KeySet,
    /// The deployment every sealed value is bound to (associated data, see
    /// [`KeyRing::bound_to`]); empty for a ring not bound to one.
    binding: Vec<u8>,
}

fn expand(hk: &Hkdf<Sha256>, info: &str) -> [u8; 32] {
    let mut okm = [0u8; 32];
    // 32 bytes is far below HKDF-SHA256's 8160-byte limit, so this cannot fail.
    let _ = hk.expand(info.as_bytes(), &mut okm);
    okm
}

impl KeyRing {
    pub fn new(secrets: &[Secret], alg: SigningAlgorithm) -> Option<Self> {
        let mut keys = Vec::with_capacity(secrets.len());
        let mut verify = Vec::with_capacity(secrets.len());
        for secret in secrets {
            let hk = Hkdf::<Sha256>::new(Some(SALT), secret.expose().as_bytes());
            let kid_bytes = expand(&hk, "kid");
            let kid = b64url_encode(kid_bytes.get(..6)?);
            let cipher = XChaCha20Poly1305::new_from_slice(&expand(&hk, "seal")).ok()?;
            let (signer, material, jwk_alg) = match alg {
                SigningAlgorithm::Hs256 => {
                    let k = expand(&hk, "token-hs256").to_vec();
                    let mac = <HmacSha256 as hmac::KeyInit>::new_from_slice(&k).ok()?;
                    (
                        Signer::Hs256(mac),
                        KeyMaterial::Hmac(HmacKey::new(k)),
                        Algorithm::Hs256,
                    )
                }
                SigningAlgorithm::Es256 => {
                    let sk =
                        p256::ecdsa::SigningKey::from_slice(&expand(&hk, "token-es256")).ok()?;
                    let vk = *sk.verifying_key();
                    (Signer::Es256(sk), KeyMaterial::EcP256(vk), Algorithm::Es256)
                }
                SigningAlgorithm::EdDsa => {
                    let sk = ed25519_dalek::SigningKey::from_bytes(&expand(&hk, "token-ed25519"));
                    let vk = sk.verifying_key();
                    (
                        Signer::EdDsa(sk),
                        KeyMaterial::Ed25519(vk),
                        Algorithm::EdDsa,
                    )
                }
            };
            verify.push(Jwk {
                kid: Some(kid.clone()),
                alg: Some(jwk_alg),
                material,
            });
            let header = json!({ "alg": jwk_alg.name(), "typ": "at+jwt", "kid": kid });
            let header_b64 = b64url_encode(&serde_json::to_vec(&header).ok()?);
            keys.push(RingKey {
                kid,
                alg: jwk_alg,
                header_b64,
                cipher,
                signer,
            });
        }
        if keys.is_empty() {
            return None;
        }
        Some(Self {
            keys,
            verify: KeySet::from_keys(verify),
            binding: Vec::new(),
        })
    }

    /// Binds every value this ring seals or opens to one deployment: its issuer and its
    /// resource (the MCP URL) become part of the associated data. Two gateways that share a
    /// secret (the same app client's secret, from which the default key derives) then never
    /// open each other's client ids, codes, refresh tokens or cookies.
    pub fn bound_to(mut self, issuer: &str, resource: &str) -> Self {
        let mut b = Vec::with_capacity(issuer.len() + resource.len() + 16);
        for part in [issuer, resource] {
            b.extend_from_slice(&(part.len() as u64).to_be_bytes());
            b.extend_from_slice(part.as_bytes());
        }
        self.binding = b;
        self
    }

    /// The deployment binding ([`KeyRing::bound_to`]).
    pub(crate) fn binding(&self) -> &[u8] {
        &self.binding
    }

    pub(crate) fn current(&self) -> Option<&RingKey> {
        self.keys.first()
    }

    pub(crate) fn by_kid(&self, kid: &str) -> Option<&RingKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    /// The key whose access tokens start with exactly this header segment.
    pub(crate) fn by_header(&self, header_b64: &str) -> Option<&RingKey> {
        self.keys.iter().find(|k| k.header_b64 == header_b64)
    }

    /// Keys that verify the proxy's own tokens.
    pub fn verify_keys(&self) -> &KeySet {
        &self.verify
    }

    /// The public JWKS document for asymmetric signing; `None` for HS256.
    pub fn public_jwks(&self) -> Option<serde_json::Value> {
        let mut keys = Vec::new();
        for k in self.verify.keys() {
            let kid = k.kid.as_deref().unwrap_or_default();
            match &k.material {
                KeyMaterial::EcP256(vk) => {
                    let point = vk.to_sec1_point(false);
                    keys.push(json!({
                        "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
                        "x": b64url_encode(point.x()?), "y": b64url_encode(point.y()?),
                    }));
                }
                KeyMaterial::Ed25519(vk) => keys.push(json!({
                    "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": kid,
                    "x": b64url_encode(vk.as_bytes()),
                })),
                _ => return None,
            }
        }
        Some(json!({ "keys": keys }))
    }
}
