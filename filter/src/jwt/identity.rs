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
        })
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope.split(' ').any(|s| s == scope)
    }

    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}
