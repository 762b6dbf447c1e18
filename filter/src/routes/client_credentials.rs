//! `grant_type=client_credentials` at `/token` (RFC 6749 §4.4, the MCP client-credentials
//! extension) for machine clients that are the IdP's own confidential app clients, listed in
//! `accepted_client_ids` (the app clients whose own tokens the guard accepts anyway).
//!
//! The client's id and secret (`client_secret_basic` or `client_secret_post`) go on to the
//! IdP's own client-credentials grant, always as `client_secret_basic`; the IdP's access token
//! is verified like a directly presented one (issuer, signature, `token_use`, `client_id`,
//! `accepted_client_scopes`) and answered with the proxy's own access token, audience-bound to
//! the MCP resource, for the same client and scopes plus `required_scopes`. No refresh token:
//! a machine asks again. Scopes the IdP cannot grant to machines (`openid`, the proxy's
//! `required_scopes`) are not passed on; with none left the IdP grants the client's defaults.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use base64ct::{Base64, Encoding};
use serde_json::json;

use super::PausedAt;
use crate::access_token::{self, Subject};
use crate::form::{self, Params};
use crate::gate::Gate;
use crate::http::{Env, HttpRequest, HttpResponse, Outcome, Reply, Request, Response};
use crate::idp::{self, TokenSet};
use crate::jwt::TokenError;
use crate::respond::{self, oauth_error};

/// Scopes of the user-facing OpenID Connect flow, never granted to a machine client.
const USER_SCOPES: &[&str] = &[
    "openid",
    "email",
    "profile",
    "phone",
    "address",
    "offline_access",
    "aws.cognito.signin.user.admin",
];

/// Paused on the IdP.
#[derive(Debug)]
pub enum Paused {
    /// The IdP's client-credentials answer (reply: HTTP).
    Upstream { client_id: String },
    /// The IdP's keys were refreshed to verify its token (reply: keys).
    Keys { client_id: String, tokens: TokenSet },
}

fn unauthenticated(description: &str) -> Response {
    let mut r = oauth_error(401, "invalid_client", description);
    r.headers
        .push(("www-authenticate".into(), "Basic realm=\"mcpgate\"".into()));
    r
}

fn invalid_client(description: &str) -> Outcome {
    Outcome::Respond(unauthenticated(description))
}

fn error(status: u16, code: &'static str, description: &str) -> Outcome {
    Outcome::Respond(oauth_error(status, code, description))
}

/// The client's id and secret, from HTTP Basic (RFC 6749 §2.3.1, both parts form-encoded)
/// or from the body; exactly one of the two.
fn credentials(req: &Request, form: &Params) -> Result<(String, String), Response> {
    let header = req
        .header("authorization")
        .map_err(|_| oauth_error(400, "invalid_request", "duplicate authorization header"))?;
    let in_body = form.get("client_secret").is_some();
    match header {
        Some(h) => {
            if in_body {
                return Err(oauth_error(
                    400,
                    "invalid_request",
                    "one client authentication method at a time (RFC 6749 §2.3)",
                ));
            }
            let malformed = || unauthenticated("malformed Basic credentials");
            let creds = h
                .strip_prefix("Basic ")
                .and_then(|b| Base64::decode_vec(b.trim()).ok())
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(malformed)?;
            let (id, secret) = creds.split_once(':').ok_or_else(malformed)?;
            let id = form::decode(id).map_err(|_| malformed())?;
            let secret = form::decode(secret).map_err(|_| malformed())?;
            if form.get("client_id").is_some_and(|c| c != id) {
                return Err(unauthenticated("client_id differs between header and body"));
            }
            Ok((id, secret))
        }
        None => match (form.get("client_id"), form.get("client_secret")) {
            (Some(id), Some(secret)) => Ok((id.to_string(), secret.to_string())),
            _ => Err(unauthenticated(
                "client_credentials needs the client's id and secret \
                 (client_secret_basic or client_secret_post)",
            )),
        },
    }
}

fn scope_ok(s: &str) -> bool {
    s.len() <= 1024
        && s.bytes()
            .all(|b| b == b' ' || ((0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\'))
}

/// The IdP's client-credentials request for this client.
fn upstream_request(gate: &Gate, id: &str, secret: &str, scope: &str) -> HttpRequest {
    let mut pairs = alloc::vec![("grant_type", "client_credentials")];
    if !scope.is_empty() {
        pairs.push(("scope", scope));
    }
    let basic = format!("{}:{}", form::encode(id), form::encode(secret));
    HttpRequest {
        method: "POST",
        url: gate.cfg.upstream.token_endpoint.clone(),
        headers: alloc::vec![
            (
                "content-type".into(),
                "application/x-www-form-urlencoded".into()
            ),
            ("accept".into(), "application/json".into()),
            (
                "authorization".into(),
                format!("Basic {}", Base64::encode_string(basic.as_bytes())),
            ),
        ],
        body: form::build(&pairs).into_bytes(),
        max_response_bytes: 64 * 1024,
        cacheable: false,
    }
}

pub(super) fn handle(gate: &Gate, req: &Request, form: &Params) -> Outcome {
    if gate.direct.is_none() {
        return error(
            400,
            "unsupported_grant_type",
            "client_credentials is not enabled on this server (accepted_client_ids)",
        );
    }
    if form.get("client_assertion").is_some() {
        return invalid_client(
            "client_credentials clients authenticate with their secret, not an assertion",
        );
    }
    let (id, secret) = match credentials(req, form) {
        Ok(c) => c,
        Err(r) => return Outcome::Respond(r),
    };
    if !gate.cfg.accepted_client_ids.contains(&id) {
        return error(
            400,
            "unauthorized_client",
            "this client may not use client_credentials here",
        );
    }
    let resource = gate.cfg.resource_url();
    if let Some(r) = form.get("resource") {
        if r != resource && r.strip_suffix('/') != Some(resource.as_str()) {
            return error(
                400,
                "invalid_target",
                "resource is not this server's MCP endpoint",
            );
        }
    }
    let requested = form.get("scope").unwrap_or("");
    if !scope_ok(requested) {
        return error(400, "invalid_scope", "scope contains invalid characters");
    }
    let upstream: Vec<&str> = requested
        .split(' ')
        .filter(|s| !s.is_empty())
        .filter(|s| !USER_SCOPES.contains(s) && !gate.cfg.required_scopes.iter().any(|r| r == s))
        .collect();
    Outcome::Fetch {
        request: upstream_request(gate, &id, &secret, &upstream.join(" ")),
        paused: PausedAt::ClientCredentials(Paused::Upstream { client_id: id }).into(),
    }
}

/// The IdP's refusal, in the terms of RFC 6749 §5.2 (never its text).
fn refused(resp: &HttpResponse) -> Outcome {
    let code = serde_json::from_slice::<serde_json::Value>(&resp.body)
        .ok()
        .and_then(|v| v.get("error")?.as_str().map(String::from));
    match code.as_deref() {
        Some("invalid_client") => {
            invalid_client("the identity provider refused the client credentials")
        }
        Some("invalid_scope") => error(
            400,
            "invalid_scope",
            "the identity provider cannot grant the requested scope to this client",
        ),
        Some("unauthorized_client") => error(
            400,
            "unauthorized_client",
            "the identity provider does not allow client_credentials for this client",
        ),
        _ => error(
            400,
            "invalid_grant",
            "the identity provider refused the client credentials",
        ),
    }
}

pub(super) fn resume(gate: &Gate, paused: Paused, reply: Reply, env: &mut Env) -> Outcome {
    match (paused, reply) {
        (Paused::Upstream { client_id }, Reply::Http(resp)) => {
            match idp::parse_token_response(&resp) {
                Ok(tokens) => verified(gate, client_id, tokens, false, env),
                Err(idp::UpstreamError::Unavailable) => Outcome::Respond(respond::unavailable(
                    "the identity provider is unavailable; try again",
                )),
                Err(idp::UpstreamError::Rejected) => refused(&resp),
                Err(idp::UpstreamError::Malformed) => error(
                    502,
                    "server_error",
                    "the identity provider's answer is not a token response",
                ),
            }
        }
        (Paused::Keys { client_id, tokens }, Reply::Keys) => {
            verified(gate, client_id, tokens, true, env)
        }
        _ => error(500, "server_error", "unexpected host reply"),
    }
}

fn verified(
    gate: &Gate,
    client_id: String,
    tokens: TokenSet,
    retried: bool,
    env: &mut Env,
) -> Outcome {
    let Some(policy) = &gate.direct else {
        return error(500, "server_error", "client_credentials is not configured");
    };
    let Some(keys) = env.upstream_keys else {
        return if retried {
            Outcome::Respond(respond::unavailable(
                "signing keys are unavailable; try again",
            ))
        } else {
            Outcome::NeedKeys {
                paused: PausedAt::ClientCredentials(Paused::Keys { client_id, tokens }).into(),
            }
        };
    };
    let identity = match policy.verify(&tokens.access_token, keys, env.now, env.native_rsa) {
        Ok(id) => id,
        Err(TokenError::UnknownKid) if !retried => {
            return Outcome::NeedKeys {
                paused: PausedAt::ClientCredentials(Paused::Keys { client_id, tokens }).into(),
            }
        }
        Err(TokenError::InsufficientScope) => {
            return error(
                400,
                "invalid_scope",
                "the identity provider granted none of the scopes this server requires",
            )
        }
        Err(_) => {
            return error(
                400,
                "invalid_grant",
                "the identity provider returned a token that failed verification",
            )
        }
    };
    if identity
        .client_id
        .as_deref()
        .is_some_and(|c| c != client_id)
    {
        return error(
            400,
            "invalid_grant",
            "the identity provider returned a token for another client",
        );
    }
    let scope = gate.with_required_scopes(identity.scope.split(' '));
    let upstream_life = tokens
        .expires_in
        .unwrap_or_else(|| identity.exp.saturating_sub(env.now));
    let lifetime = upstream_life.clamp(60, gate.cfg.access_token_max_lifetime);
    let subject = Subject {
        client_id: client_id.clone(),
        sub: identity.sub.clone(),
        scope: scope.clone(),
        username: identity.username.clone(),
        groups: identity.groups.clone(),
        email: identity.email.clone(),
        extra: identity.extra.clone(),
        // No refresh family: a machine client asks for a new token instead.
        sid: None,
    };
    let Some(access) = access_token::mint(gate, &subject, lifetime, env) else {
        return error(500, "server_error", "could not issue a token");
    };
    let body: Response = respond::json(
        200,
        &json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": lifetime,
            "scope": scope,
        }),
    );
    Outcome::Respond(body)
}
