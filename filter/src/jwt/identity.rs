//! Who a verified token speaks for: the part of the claims the backend gets to see.

use alloc::string::String;
use alloc::vec::Vec;

use super::claims::Claims;
use super::error::TokenError;

/// The identity carried by a verified token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub sub: String,
    /// `username` (Cognito access tokens, mcpgate tokens) or `cognito:username` (ID tokens).
    pub username: Option<String>,
    /// `cognito:groups`, or `groups` in mcpgate's own tokens.
    pub groups: Vec<String>,
    /// Granted scopes, space-delimited.
    pub scope: String,
    pub email: Option<String>,
    pub client_id: Option<String>,
    /// `exp`, seconds since the epoch.
    pub exp: u64,
    pub jti: Option<String>,
    /// The grant (refresh-token family) of one of the proxy's own access tokens (`sid`).
    pub sid: Option<String>,
    /// Claims named in [`crate::jwt::Policy::extra_claims`], as header-ready strings.
    pub extra: Vec<(String, String)>,
}

impl Identity {
    pub(crate) fn from_claims(claims: Claims, scope: String, exp: u64) -> Result<Self, TokenError> {
        let sub = claims.sub.ok_or(TokenError::MissingClaim("sub"))?;
        if sub.is_empty() {
            return Err(TokenError::InvalidClaim("sub"));
        }
        Ok(Self {
            sub,
            username: claims.username.or(claims.cognito_username),
            groups: claims.cognito_groups.or(claims.groups).unwrap_or_default(),
            scope,
            email: claims.email,
            client_id: claims.client_id,
            exp,
            jti: claims.jti,
            sid: None,
            extra: Vec::new(),
        })
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope.split(' ').any(|s| s == scope)
    }

    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

/// Renders a claim value for a header: strings as is, numbers and booleans as JSON, arrays of
/// those joined by commas; objects and nulls are skipped.
pub fn claim_text(v: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(alloc::format!("{n}")),
        Value::Bool(b) => Some(String::from(if *b { "true" } else { "false" })),
        Value::Array(items) => {
            let parts: Option<Vec<String>> = items
                .iter()
                .map(|i| match i {
                    Value::Array(_) => None,
                    other => claim_text(other),
                })
                .collect();
            parts.map(|p| p.join(","))
        }
        _ => None,
    }
}
