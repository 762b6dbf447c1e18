//! What makes a token acceptable here: issuer, algorithms, audience rule, scopes, time.
//! Integrity (the signature) is checked before any claim is parsed.

use alloc::string::String;
use alloc::vec::Vec;

use super::alg::AlgorithmSet;
use super::claims::Claims;
use super::compact::{Compact, DEFAULT_MAX_TOKEN_BYTES};
use super::error::TokenError;
use super::identity::Identity;
use super::jwks::KeySet;
use super::signature::NativeRsa;

/// Default clock-skew allowance for `exp` and `nbf`.
pub const DEFAULT_LEEWAY_SECONDS: u64 = 30;

/// How a token proves it is meant for this server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AudienceRule {
    /// Cognito access tokens carry no `aud`: `client_id` must be one of these app clients and
    /// `token_use` must be `access`.
    CognitoAccess { client_ids: Vec<String> },
    /// Cognito ID tokens: `aud` is the app client id and `token_use` is `id`.
    CognitoId { client_id: String },
    /// Any other issuer, mcpgate's own tokens included: `aud` contains this value.
    Audience(String),
}

/// The acceptance rules for one kind of token.
#[derive(Clone, Debug)]
pub struct Policy {
    pub issuer: String,
    pub algorithms: AlgorithmSet,
    pub audience: AudienceRule,
    /// Every one of these must be granted.
    pub required_scopes: Vec<String>,
    pub leeway: u64,
    pub max_token_bytes: usize,
    /// Further claims to copy into [`Identity::extra`] (e.g. `custom:tenant`).
    pub extra_claims: Vec<String>,
}

impl Policy {
    pub fn new(issuer: String, algorithms: AlgorithmSet, audience: AudienceRule) -> Self {
        Self {
            issuer,
            algorithms,
            audience,
            required_scopes: Vec::new(),
            leeway: DEFAULT_LEEWAY_SECONDS,
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
            extra_claims: Vec::new(),
        }
    }

    /// Verifies `token` against `keys` at time `now` (seconds since the epoch).
    pub fn verify(
        &self,
        token: &str,
        keys: &KeySet,
        now: u64,
        native: Option<&dyn NativeRsa>,
    ) -> Result<Identity, TokenError> {
        let compact = Compact::parse(token, self.max_token_bytes)?;
        if !self.algorithms.contains(compact.alg) {
            return Err(TokenError::AlgorithmNotAllowed);
        }
        let key = keys.select(compact.alg, compact.kid.as_deref())?;
        key.verify(
            compact.alg,
            compact.signing_input.as_bytes(),
            &compact.signature,
            native,
        )?;
        let payload = compact.payload()?;
        let claims = Claims::from_json(&payload)?;
        let mut identity = self.check_claims(claims, now)?;
        if !self.extra_claims.is_empty() {
            let all: serde_json::Map<String, serde_json::Value> =
                serde_json::from_slice(&payload).map_err(|_| TokenError::BadJson)?;
            for name in &self.extra_claims {
                if let Some(text) = all.get(name).and_then(super::identity::claim_text) {
                    identity.extra.push((name.clone(), text));
                }
            }
        }
        Ok(identity)
    }

    /// Applies the claim rules to already authenticated claims.
    pub fn check_claims(&self, claims: Claims, now: u64) -> Result<Identity, TokenError> {
        let exp = claims.check_time(now, self.leeway)?;
        match claims.iss.as_deref() {
            None => return Err(TokenError::MissingClaim("iss")),
            Some(iss) if iss != self.issuer => return Err(TokenError::WrongIssuer),
            Some(_) => {}
        }
        match &self.audience {
            AudienceRule::CognitoAccess { client_ids } => {
                expect_token_use(&claims, "access")?;
                let client = claims
                    .client_id
                    .as_deref()
                    .ok_or(TokenError::MissingClaim("client_id"))?;
                if !client_ids.iter().any(|c| c == client) {
                    return Err(TokenError::WrongAudience);
                }
            }
            AudienceRule::CognitoId { client_id } => {
                expect_token_use(&claims, "id")?;
                if claims.aud.is_none() {
                    return Err(TokenError::MissingClaim("aud"));
                }
                if !claims.audience_contains(client_id)? {
                    return Err(TokenError::WrongAudience);
                }
            }
            AudienceRule::Audience(audience) => {
                if claims.aud.is_none() {
                    return Err(TokenError::MissingClaim("aud"));
                }
                if !claims.audience_contains(audience)? {
                    return Err(TokenError::WrongAudience);
                }
            }
        }
        let scopes = claims.scopes()?;
        if !self
            .required_scopes
            .iter()
            .all(|needed| scopes.iter().any(|s| s == needed))
        {
            return Err(TokenError::InsufficientScope);
        }
        let scope = scopes.join(" ");
        Identity::from_claims(claims, scope, exp)
    }
}

fn expect_token_use(claims: &Claims, expected: &str) -> Result<(), TokenError> {
    match claims.token_use.as_deref() {
        None => Err(TokenError::MissingClaim("token_use")),
        Some(t) if t == expected => Ok(()),
        Some(_) => Err(TokenError::WrongTokenUse),
    }
}
