//! The IdP client: the token-endpoint requests the proxy makes with its own client
//! credentials (code exchange, refresh, revocation), and the checks on what comes back.
//! IdP error text never reaches clients.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use base64ct::{Base64, Encoding};
use serde::Deserialize;

use crate::config::ClientAuthMethod;
use crate::form;
use crate::gate::Gate;
use crate::http::{Env, HttpRequest, HttpResponse};
use crate::jwt::{Identity, TokenError};

/// Largest token response read from the IdP.
const MAX_TOKEN_RESPONSE: usize = 64 * 1024;

/// Tokens the IdP returned to the proxy. Never shown to clients.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct TokenSet {
    pub access_token: String,
    pub id_token: Option<String>,
    pub refresh_token: Option<String>,
    pub expires_in: Option<u64>,
    /// The scope the IdP granted (RFC 6749 §5.1), when it says.
    #[serde(default)]
    pub scope: Option<String>,
}

/// How an IdP call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpstreamError {
    /// No answer, timeout, 429 or 5xx: worth retrying later.
    Unavailable,
    /// The IdP refused the grant (e.g. `invalid_grant`).
    Rejected,
    /// 2xx with a body that is not a token response.
    Malformed,
}

/// Why the IdP's tokens could not be turned into an identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerifyError {
    /// The host's copy of the IdP keys lacks the signing key (or there is none).
    NeedKeys,
    Token(TokenError),
}

fn token_request(gate: &Gate, mut params: Vec<(&str, String)>) -> HttpRequest {
    let c = &gate.cfg;
    let mut headers = vec![
        (
            "content-type".to_string(),
            "application/x-www-form-urlencoded".to_string(),
        ),
        ("accept".to_string(), "application/json".to_string()),
    ];
    params.push(("client_id", c.client_id.clone()));
    if let Some(secret) = &c.client_secret {
        match c.token_endpoint_auth_method {
            ClientAuthMethod::ClientSecretBasic => {
                // RFC 6749 §2.3.1: both parts form-encoded before base64.
                let pair = format!(
                    "{}:{}",
                    form::encode(&c.client_id),
                    form::encode(secret.expose())
                );
                headers.push((
                    "authorization".to_string(),
                    format!("Basic {}", Base64::encode_string(pair.as_bytes())),
                ));
            }
            ClientAuthMethod::ClientSecretPost => {
                params.push(("client_secret", secret.expose().to_string()))
            }
        }
    }
    let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    HttpRequest {
        method: "POST",
        url: c.upstream.token_endpoint.clone(),
        headers,
        body: form::build(&pairs).into_bytes(),
        max_response_bytes: MAX_TOKEN_RESPONSE,
        cacheable: false,
    }
}

pub fn code_exchange(gate: &Gate, code: &str, verifier: &str) -> HttpRequest {
    token_request(
        gate,
        vec![
            ("grant_type", "authorization_code".into()),
            ("code", code.into()),
            ("redirect_uri", gate.cfg.callback_url()),
            ("code_verifier", verifier.into()),
        ],
    )
}

pub fn refresh(gate: &Gate, refresh_token: &str) -> HttpRequest {
    token_request(
        gate,
        vec![
            ("grant_type", "refresh_token".into()),
            ("refresh_token", refresh_token.into()),
        ],
    )
}

/// Revocation at the IdP (RFC 7009), when it has an endpoint.
pub fn revoke(gate: &Gate, refresh_token: &str) -> Option<HttpRequest> {
    let endpoint = gate.cfg.upstream.revocation_endpoint.clone()?;
    let mut req = token_request(gate, vec![("token", refresh_token.into())]);
    req.url = endpoint;
    Some(req)
}

/// No answer (status 0: connection failure, timeout), 429 or 5xx: worth retrying later.
pub fn unavailable(status: u16) -> bool {
    matches!(status, 0 | 429 | 500..=599)
}

pub fn parse_token_response(resp: &HttpResponse) -> Result<TokenSet, UpstreamError> {
    match resp.status {
        200 => serde_json::from_slice::<TokenSet>(&resp.body)
            .ok()
            .filter(|t| !t.access_token.is_empty())
            .ok_or(UpstreamError::Malformed),
        s if unavailable(s) => Err(UpstreamError::Unavailable),
        _ => Err(UpstreamError::Rejected),
    }
}

/// The scope a grant may carry: what the IdP granted intersected with `requested` (in the
/// order requested). What the IdP granted is the token response's `scope`, else the access
/// token's (`verified_access_scope` when the access token was verified, as with Cognito; else
/// read from the access token's payload when it is a JWT: it came straight from the token
/// endpoint over the proxy's authenticated back channel). When the IdP says nothing, only the
/// `required_scopes` are granted: a client's wish is never taken for the IdP's consent.
pub fn granted_scope(
    gate: &Gate,
    tokens: &TokenSet,
    verified_access_scope: &str,
    requested: &str,
) -> String {
    let from_idp = tokens
        .scope
        .clone()
        .filter(|s| !s.trim().is_empty())
        .or_else(|| {
            (!verified_access_scope.trim().is_empty()).then(|| verified_access_scope.to_string())
        })
        .or_else(|| jwt_scope(&tokens.access_token));
    let allowed: Vec<&str> = match &from_idp {
        Some(s) => s.split(' ').filter(|s| !s.is_empty()).collect(),
        None => gate
            .cfg
            .required_scopes
            .iter()
            .map(String::as_str)
            .collect(),
    };
    let mut out: Vec<&str> = Vec::new();
    for s in requested.split(' ').filter(|s| !s.is_empty()) {
        if allowed.contains(&s) && !out.contains(&s) {
            out.push(s);
        }
    }
    out.join(" ")
}

/// The `scope` (space-delimited) or `scp` (list or string) claim of a JWT's payload, read
/// without verification; `None` for opaque tokens.
fn jwt_scope(token: &str) -> Option<String> {
    let mut parts = token.split('.');
    let payload = parts.nth(1)?;
    if parts.count() != 1 || payload.len() > 64 * 1024 {
        return None;
    }
    let bytes = crate::encoding::b64url_decode(payload)?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    match claims.get("scope").or_else(|| claims.get("scp"))? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(items) => Some(
            items
                .iter()
                .filter_map(serde_json::Value::as_str)
                .collect::<Vec<_>>()
                .join(" "),
        ),
        _ => None,
    }
}

/// Checks the IdP's tokens and extracts the user's identity: for Cognito the access token
/// (`token_use: access`, our `client_id`) plus the ID token's email; for OIDC the ID token.
pub fn verify(gate: &Gate, tokens: &TokenSet, env: &Env) -> Result<Identity, VerifyError> {
    let keys = env.upstream_keys.ok_or(VerifyError::NeedKeys)?;
    let check = |policy: &crate::jwt::Policy, token: &str| {
        policy
            .verify(token, keys, env.now, env.native_rsa)
            .map_err(|e| match e {
                TokenError::UnknownKid => VerifyError::NeedKeys,
                e => VerifyError::Token(e),
            })
    };
    let id = match &tokens.id_token {
        Some(t) => Some(check(&gate.upstream_id, t)?),
        None => None,
    };
    match &gate.upstream_access {
        Some(access_policy) => {
            let mut identity = check(access_policy, &tokens.access_token)?;
            if let Some(id) = id {
                if id.sub != identity.sub {
                    return Err(VerifyError::Token(TokenError::InvalidClaim("sub")));
                }
                identity.email = identity.email.or(id.email);
                for (k, v) in id.extra {
                    if !identity.extra.iter().any(|(ek, _)| *ek == k) {
                        identity.extra.push((k, v));
                    }
                }
            }
            Ok(identity)
        }
        None => id.ok_or(VerifyError::Token(TokenError::MissingClaim("id_token"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classification() {
        let r = |status: u16, body: &str| HttpResponse {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        };
        assert_eq!(
            parse_token_response(&r(0, "")),
            Err(UpstreamError::Unavailable)
        );
        assert_eq!(
            parse_token_response(&r(503, "")),
            Err(UpstreamError::Unavailable)
        );
        assert_eq!(
            parse_token_response(&r(400, r#"{"error":"invalid_grant"}"#)),
            Err(UpstreamError::Rejected)
        );
        assert_eq!(
            parse_token_response(&r(200, "<html>")),
            Err(UpstreamError::Malformed)
        );
        assert_eq!(
            parse_token_response(&r(200, r#"{"access_token":""}"#)),
            Err(UpstreamError::Malformed)
        );
        let ok = parse_token_response(&r(
            200,
            r#"{"access_token":"a","expires_in":3600,"token_type":"Bearer"}"#,
        ))
        .unwrap();
        assert_eq!(ok.expires_in, Some(3600));
    }
}
