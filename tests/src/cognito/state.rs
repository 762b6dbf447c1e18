//! Shared, mutable emulator state: keys, grants, fault modes and counters.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use super::config::CognitoConfig;
use crate::jwt::{b64url, RsaJwtKey};

/// Groups of endpoints that fault modes apply to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndpointGroup {
    /// Every non-control endpoint (a group-specific mode takes precedence).
    All,
    /// `/{pool}/.well-known/openid-configuration`.
    Discovery,
    /// `/{pool}/.well-known/jwks.json`.
    Jwks,
    /// `/oauth2/authorize`, `/login`, `/error`.
    Authorize,
    /// `/oauth2/token`, `/oauth2/revoke`.
    Token,
    /// `/oauth2/userInfo`.
    Userinfo,
}

/// How an endpoint group answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum FaultMode {
    /// Normal behaviour.
    #[default]
    Normal,
    /// Close the connection (FIN) without writing a response.
    Down,
    /// Abort the connection with a TCP RST, without a response.
    Reset,
    /// Wait `delay_ms` before handling the request normally.
    Slow { delay_ms: u64 },
    /// Answer with this 5xx status (default 503) and `{"error":"server_error"}`.
    #[serde(rename = "error5xx")]
    Error5xx {
        #[serde(default = "default_5xx")]
        status: u16,
    },
}

fn default_5xx() -> u16 {
    503
}

/// Request counters per endpoint name (`discovery`, `jwks`, `authorize`, `login`, `error`,
/// `token`, `token:<grant_type>`, `revoke`, `userinfo`, `other`). Faulted requests count too.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub requests: BTreeMap<String, u64>,
}

impl Stats {
    /// The count for one endpoint name (0 when never requested).
    pub fn count(&self, endpoint: &str) -> u64 {
        self.requests.get(endpoint).copied().unwrap_or(0)
    }
}

/// The signing keys: all loaded keys, the active one, and those published in the JWKS.
#[derive(Debug, Clone)]
pub struct KeyRing {
    keys: Vec<RsaJwtKey>,
    active: usize,
    published: Vec<usize>,
}

impl KeyRing {
    pub fn from_pems(pems: &[String]) -> anyhow::Result<Self> {
        anyhow::ensure!(!pems.is_empty(), "at least one signing key is required");
        let keys = pems
            .iter()
            .map(|pem| {
                // Cognito kids look like base64 of a SHA-256 (44 chars, may contain '+', '/', '=').
                let probe = RsaJwtKey::from_pkcs8_pem("probe", pem)?;
                let n = probe.jwk()["n"].as_str().unwrap_or_default().to_owned();
                let kid = base64::engine::general_purpose::STANDARD
                    .encode(sha2::Sha256::digest(n.as_bytes()));
                RsaJwtKey::from_pkcs8_pem(kid, pem)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self {
            keys,
            active: 0,
            published: vec![0],
        })
    }

    pub fn active(&self) -> &RsaJwtKey {
        &self.keys[self.active]
    }

    /// Key by 0-based index in rotation order (published or not).
    pub fn by_index(&self, i: usize) -> Option<&RsaJwtKey> {
        self.keys.get(i)
    }

    /// A published key by kid (what a relying party could verify with).
    pub fn published_by_kid(&self, kid: &str) -> Option<&RsaJwtKey> {
        self.published
            .iter()
            .map(|&i| &self.keys[i])
            .find(|k| k.kid() == kid)
    }

    pub fn published_kids(&self) -> Vec<String> {
        self.published
            .iter()
            .map(|&i| self.keys[i].kid().to_owned())
            .collect()
    }

    pub fn all_kids(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.kid().to_owned()).collect()
    }

    /// Switch to the next key (wrapping). The new key is published first; the old ones stay
    /// published unless `retire_old`. Returns the new kid.
    pub fn rotate(&mut self, retire_old: bool) -> String {
        let next = (self.active + 1) % self.keys.len();
        self.active = next;
        if retire_old {
            self.published = vec![next];
        } else {
            self.published.retain(|&i| i != next);
            self.published.insert(0, next);
        }
        self.keys[next].kid().to_owned()
    }

    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({
            "keys": self.published.iter().map(|&i| self.keys[i].jwk()).collect::<Vec<_>>()
        })
    }
}

/// An issued, not yet redeemed authorization code.
#[derive(Debug, Clone)]
pub(crate) struct CodeGrant {
    pub client_id: String,
    pub redirect_uri: String,
    pub username: String,
    pub scopes: Vec<String>,
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    pub expires_at: u64,
    pub auth_time: u64,
}

/// A refresh token's session.
#[derive(Debug, Clone)]
pub(crate) struct RefreshGrant {
    pub client_id: String,
    pub username: String,
    pub scopes: Vec<String>,
    pub origin_jti: String,
    pub event_id: String,
    pub auth_time: u64,
}

pub(crate) struct Inner {
    pub config: CognitoConfig,
    pub keys: KeyRing,
    pub codes: HashMap<String, CodeGrant>,
    pub refresh: HashMap<String, RefreshGrant>,
    /// `origin_jti`s of revoked refresh tokens: their access tokens stop working at userInfo.
    pub revoked_origins: HashSet<String>,
    pub modes: HashMap<EndpointGroup, FaultMode>,
    pub stats: Stats,
}

pub(crate) struct Shared {
    pub base_url: String,
    pub issuer: String,
    inner: Mutex<Inner>,
}

pub(crate) type SharedState = Arc<Shared>;

impl Shared {
    pub fn new(base_url: String, config: CognitoConfig, keys: KeyRing) -> SharedState {
        let issuer = format!("{base_url}/{}", config.pool_id);
        Arc::new(Shared {
            base_url,
            issuer,
            inner: Mutex::new(Inner {
                config,
                keys,
                codes: HashMap::new(),
                refresh: HashMap::new(),
                revoked_origins: HashSet::new(),
                modes: HashMap::new(),
                stats: Stats::default(),
            }),
        })
    }

    /// Lock the state; a poisoned lock (a panic elsewhere) is recovered rather than propagated.
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn count(&self, endpoint: &str) {
        *self
            .lock()
            .stats
            .requests
            .entry(endpoint.to_owned())
            .or_insert(0) += 1;
    }

    pub fn mode_for(&self, group: Option<EndpointGroup>) -> FaultMode {
        let inner = self.lock();
        group
            .and_then(|g| inner.modes.get(&g).copied())
            .or_else(|| inner.modes.get(&EndpointGroup::All).copied())
            .unwrap_or_default()
    }
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A random UUID v4 string (Cognito uses these for `sub`, `jti`, codes, event ids).
pub(crate) fn uuid_v4() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// An opaque refresh token shaped like Cognito's (a five-segment JWE).
pub(crate) fn opaque_refresh_token() -> String {
    let header = b64url(br#"{"cty":"JWT","enc":"A256GCM","alg":"RSA-OAEP"}"#);
    let seg = |n: usize| -> String {
        let bytes: Vec<u8> = (0..n).map(|_| rand::random::<u8>()).collect();
        b64url(&bytes)
    };
    format!("{header}.{}.{}.{}.{}", seg(256), seg(12), seg(96), seg(16))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cognito::config::DEFAULT_KEYS_PEM;

    fn ring() -> KeyRing {
        let pems: Vec<String> = DEFAULT_KEYS_PEM.iter().map(|s| s.to_string()).collect();
        KeyRing::from_pems(&pems).unwrap()
    }

    #[test]
    fn rotation_publishes_new_key_and_optionally_retires_old() {
        let mut r = ring();
        let all = r.all_kids();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].len(), 44, "Cognito-like base64 SHA-256 kid");
        assert_eq!(r.published_kids(), vec![all[0].clone()]);
        assert_eq!(r.rotate(false), all[1]);
        assert_eq!(r.published_kids(), vec![all[1].clone(), all[0].clone()]);
        assert_eq!(r.rotate(true), all[2]);
        assert_eq!(r.published_kids(), vec![all[2].clone()]);
        assert_eq!(r.active().kid(), all[2]);
        assert!(r.published_by_kid(&all[0]).is_none());
        // wraps around
        assert_eq!(r.rotate(false), all[0]);
    }

    #[test]
    fn fault_mode_json_shapes() {
        let m: FaultMode = serde_json::from_str(r#"{"mode":"slow","delay_ms":250}"#).unwrap();
        assert_eq!(m, FaultMode::Slow { delay_ms: 250 });
        let m: FaultMode = serde_json::from_str(r#"{"mode":"error5xx"}"#).unwrap();
        assert_eq!(m, FaultMode::Error5xx { status: 503 });
        let m: FaultMode = serde_json::from_str(r#"{"mode":"down"}"#).unwrap();
        assert_eq!(m, FaultMode::Down);
    }

    #[test]
    fn uuid_and_refresh_token_shapes() {
        let u = uuid_v4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_ne!(uuid_v4(), u);
        assert_eq!(opaque_refresh_token().split('.').count(), 5);
    }
}
