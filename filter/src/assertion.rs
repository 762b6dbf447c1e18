//! The identity assertion (`identity_assertion`): a short-lived JWT the proxy signs for the
//! origin on every forwarded request, so an origin that is not reachable only through the
//! proxy (behind the Worker, on the public internet) verifies who the user is instead of
//! trusting plain headers.
//!
//! Its keys are asymmetric whatever signs the proxy's own access tokens (HS256 by default):
//! one per secret of the key ring (HKDF, bound to the deployment like every sealed value),
//! ES256 — or EdDSA when the proxy's tokens are EdDSA — published in the proxy's JWKS with
//! `use: sig`. The current secret's key signs; the previous secrets' keys stay published, so
//! a rotation never fails a verifier that cached the set. The header's `typ` is
//! `mcpgate-identity+jwt`, so no verifier can take an assertion for an access token.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use hkdf::Hkdf;
use serde_json::{json, Map, Value};
use sha2::Sha256;

use crate::config::{Secret, SigningAlgorithm};
use crate::encoding::b64url_encode;
use crate::jwt::{Algorithm, Identity};

const SALT: &[u8] = b"mcpgate identity assertion v1";
/// The JWS `typ` of every assertion.
pub const TYP: &str = "mcpgate-identity+jwt";
/// How long an assertion is valid (the bound is 60 s).
pub const LIFETIME: u64 = 60;
/// A cached assertion is reused while at least this much of its life is left: at most one
/// signature per token and VM / isolate every half minute.
pub const REUSE_WHILE: u64 = 30;

enum Key {
    Es256(p256::ecdsa::SigningKey),
    EdDsa(ed25519_dalek::SigningKey),
}

struct AssertionKey {
    /// The exact base64url JWS header of the assertions this key signs.
    header_b64: String,
    key: Key,
    jwk: Value,
}

/// The assertion keys: current first, then those of retired secrets (published only).
pub struct AssertionKeys {
    keys: Vec<AssertionKey>,
    issuer: String,
    audience: String,
}

fn expand(hk: &Hkdf<Sha256>, info: &[u8]) -> [u8; 32] {
    let mut okm = [0u8; 32];
    // 32 bytes is far below HKDF-SHA256's limit, so this cannot fail.
    let _ = hk.expand(info, &mut okm);
    okm
}

impl AssertionKeys {
    /// One key per secret, bound to the deployment (`issuer`, `resource`): gateways sharing a
    /// secret never share an assertion key. EdDSA when the proxy's own tokens are EdDSA,
    /// ES256 otherwise (the most widely supported asymmetric algorithm).
    pub fn new(
        secrets: &[Secret],
        tokens: SigningAlgorithm,
        issuer: &str,
        resource: &str,
        audience: &str,
    ) -> Option<Self> {
        let alg = match tokens {
            SigningAlgorithm::EdDsa => Algorithm::EdDsa,
            SigningAlgorithm::Hs256 | SigningAlgorithm::Es256 => Algorithm::Es256,
        };
        let mut binding = Vec::with_capacity(issuer.len() + resource.len() + 16);
        for part in [issuer, resource] {
            binding.extend_from_slice(&(part.len() as u64).to_be_bytes());
            binding.extend_from_slice(part.as_bytes());
        }
        let info = |what: &str| {
            let mut i = Vec::with_capacity(what.len() + binding.len() + 1);
            i.extend_from_slice(what.as_bytes());
            i.push(0);
            i.extend_from_slice(&binding);
            i
        };
        let mut keys = Vec::with_capacity(secrets.len());
        for secret in secrets {
            let hk = Hkdf::<Sha256>::new(Some(SALT), secret.expose().as_bytes());
            let kid_bytes = expand(&hk, &info(&format!("kid-{}", alg.name())));
            let kid = format!("a-{}", b64url_encode(kid_bytes.get(..9)?));
            let (key, jwk) = match alg {
                Algorithm::EdDsa => {
                    let sk = ed25519_dalek::SigningKey::from_bytes(&expand(&hk, &info("ed25519")));
                    let jwk = json!({
                        "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": kid,
                        "x": b64url_encode(sk.verifying_key().as_bytes()),
                    });
                    (Key::EdDsa(sk), jwk)
                }
                _ => {
                    let sk =
                        p256::ecdsa::SigningKey::from_slice(&expand(&hk, &info("es256"))).ok()?;
                    let point = sk.verifying_key().to_sec1_point(false);
                    let jwk = json!({
                        "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
                        "x": b64url_encode(point.x()?), "y": b64url_encode(point.y()?),
                    });
                    (Key::Es256(sk), jwk)
                }
            };
            let header = json!({ "alg": alg.name(), "typ": TYP, "kid": kid });
            keys.push(AssertionKey {
                header_b64: b64url_encode(&serde_json::to_vec(&header).ok()?),
                key,
                jwk,
            });
        }
        if keys.is_empty() {
            return None;
        }
        Some(Self {
            keys,
            issuer: issuer.into(),
            audience: audience.into(),
        })
    }

    /// The public keys, for the proxy's JWKS.
    pub fn public_jwks(&self) -> impl Iterator<Item = &Value> {
        self.keys.iter().map(|k| &k.jwk)
    }

    /// The assertion's `aud`.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Signs an assertion of `id` (verified just now), valid for [`LIFETIME`] seconds from
    /// `now`; returns it with its `exp`. `claims` are the `claim_headers` claims to carry
    /// (never overriding a registered one).
    pub fn sign(
        &self,
        id: &Identity,
        claims: &[(String, String)],
        now: u64,
        jti: String,
    ) -> Option<(String, u64)> {
        let key = self.keys.first()?;
        let exp = now + LIFETIME;
        let mut c = Map::new();
        c.insert("iss".into(), json!(self.issuer));
        c.insert("aud".into(), json!(self.audience));
        c.insert("sub".into(), json!(id.sub));
        if let Some(client) = &id.client_id {
            c.insert("client_id".into(), json!(client));
        }
        c.insert("scope".into(), json!(id.scope));
        c.insert("groups".into(), json!(id.groups));
        if let Some(u) = &id.username {
            c.insert("username".into(), json!(u));
        }
        if let Some(e) = &id.email {
            c.insert("email".into(), json!(e));
        }
        c.insert("iat".into(), json!(now));
        c.insert("exp".into(), json!(exp));
        c.insert("jti".into(), json!(jti));
        for (claim, _) in claims {
            if let Some((_, v)) = id.extra.iter().find(|(k, _)| k == claim) {
                c.entry(claim.clone()).or_insert_with(|| json!(v));
            }
        }
        let payload = serde_json::to_vec(&Value::Object(c)).ok()?;
        let input = format!("{}.{}", key.header_b64, b64url_encode(&payload));
        let signature: Vec<u8> = match &key.key {
            Key::Es256(k) => {
                use p256::ecdsa::signature::Signer as _;
                let sig: p256::ecdsa::Signature = k.sign(input.as_bytes());
                sig.to_bytes().to_vec()
            }
            Key::EdDsa(k) => {
                use ed25519_dalek::Signer as _;
                k.sign(input.as_bytes()).to_bytes().to_vec()
            }
        };
        Some((format!("{input}.{}", b64url_encode(&signature)), exp))
    }
}
