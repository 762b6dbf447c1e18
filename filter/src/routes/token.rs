//! `POST /token`: the `authorization_code` and `refresh_token` grants (RFC 6749 §4.1.3, §6),
//! issuing the proxy's own JWT access tokens and sealed, rotating refresh tokens.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use base64ct::{Base64, Encoding};
use serde_json::json;

use super::{form_body, PausedAt};
use crate::access_token::{self, Subject};
use crate::form;
use crate::gate::Gate;
use crate::http::{Env, Outcome, Reply, Request, Response, StoreOp};
use crate::idp::{self, UpstreamError, VerifyError};
use crate::pkce;
use crate::records::{Code, Grant, CODE_SECONDS};
use crate::respond::{self, oauth_error};
use crate::seal::{self, Kind, SealError};

/// Paused on a store operation or an IdP call.
#[derive(Debug)]
pub enum Paused {
    /// The code's single use was recorded (reply: created?).
    CodeConsumed(Grant),
    /// Checked whether the refresh token's family was revoked (reply: revoked?).
    FamilyChecked(Grant),
    /// Advanced the family past the presented refresh token's generation once the IdP
    /// refreshed (reply: advanced?); the grant carries what the IdP answered.
    RefreshConsumed(Grant),
    /// Reuse detected; the family is now revoked.
    FamilyRevoked,
    /// The IdP answered the refresh (reply: HTTP).
    Refreshed(Grant),
    /// The IdP's keys were refreshed to verify its new tokens.
    RefreshedKeys(Grant, idp::TokenSet),
}

fn invalid_grant(description: &str) -> Response {
    oauth_error(400, "invalid_grant", description)
}

fn invalid_client(description: &str) -> Response {
    let mut r = oauth_error(401, "invalid_client", description);
    r.headers
        .push(("www-authenticate".into(), "Basic realm=\"mcpgate\"".into()));
    r
}

fn unavailable() -> Response {
    respond::unavailable("the identity provider is unavailable; try again")
}

/// The store could not record a single use: refused (fails closed), nothing is spent.
fn store_unavailable() -> Response {
    let mut r = respond::unavailable("the authorization server's store is unavailable; try again");
    r.reason = Some("store_unavailable");
    r
}

/// The store key of a refresh-token family (its generation or its revocation).
pub(super) fn family_key(family: &str) -> String {
    format!("mcpgate:family:{family}")
}

/// The client id from HTTP Basic (public clients may send an empty secret) or the form.
fn client_id(req: &Request, form: &form::Params) -> Result<String, Response> {
    let basic = match req.header("authorization") {
        Err(_) => {
            return Err(oauth_error(
                400,
                "invalid_request",
                "duplicate authorization header",
            ))
        }
        Ok(Some(h)) => Some(h),
        Ok(None) => None,
    };
    let from_basic = match basic {
        Some(h) => {
            let creds = h
                .strip_prefix("Basic ")
                .and_then(|b| Base64::decode_vec(b.trim()).ok())
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| invalid_client("malformed Basic credentials"))?;
            let (id, _secret) = creds
                .split_once(':')
                .ok_or_else(|| invalid_client("malformed Basic credentials"))?;
            Some(form::decode(id).map_err(|_| invalid_client("malformed Basic credentials"))?)
        }
        None => None,
    };
    match (from_basic, form.get("client_id")) {
        (Some(a), Some(b)) if a != b => {
            Err(invalid_client("client_id differs between header and body"))
        }
        (Some(a), _) => Ok(a),
        (None, Some(b)) => Ok(b.to_string()),
        (None, None) => Err(invalid_client("client_id is required")),
    }
}

pub(super) fn handle(gate: &Gate, req: &Request, env: &mut Env) -> Outcome {
    let out = |r| Outcome::Respond(r);
    let form = match form_body(req) {
        Ok(f) => f,
        Err(r) => return out(r),
    };
    if form.get("grant_type") == Some("client_credentials") {
        return super::client_credentials::handle(gate, req, &form);
    }
    // Clients of a metadata document, and client assertions (RFC 7523).
    if let Some(o) = super::token_client::intercept(gate, req, &form) {
        return o;
    }
    let client = match client_id(req, &form) {
        Ok(c) => c,
        Err(r) => return out(r),
    };
    grant(gate, &form, &client, env)
}

/// The grant, once the client is known (and authenticated, where it must be).
pub(super) fn grant(gate: &Gate, form: &form::Params, client: &str, env: &mut Env) -> Outcome {
    match form.get("grant_type") {
        Some("authorization_code") => authorization_code(gate, form, client, env),
        Some("refresh_token") => refresh_token(gate, form, client, env),
        Some(_) => Outcome::Respond(oauth_error(
            400,
            "unsupported_grant_type",
            "grant_type must be authorization_code, refresh_token or client_credentials",
        )),
        None => Outcome::Respond(oauth_error(
            400,
            "invalid_request",
            "grant_type is required",
        )),
    }
}

fn authorization_code(gate: &Gate, form: &form::Params, client: &str, env: &mut Env) -> Outcome {
    let out = |r| Outcome::Respond(r);
    let Some(code) = form.get("code") else {
        return out(oauth_error(400, "invalid_request", "code is required"));
    };
    let code: Code = match seal::unseal(&gate.ring, Kind::Code, code, env.now) {
        Ok(c) => c,
        Err(SealError::Expired) => return out(invalid_grant("authorization code expired")),
        Err(_) => return out(invalid_grant("invalid authorization code")),
    };
    if code.grant.client_id != client {
        return out(invalid_grant(
            "authorization code was issued to another client",
        ));
    }
    if form.get("redirect_uri") != Some(code.redirect_uri.as_str()) {
        return out(invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    let Some(verifier) = form.get("code_verifier") else {
        return out(oauth_error(
            400,
            "invalid_request",
            "code_verifier is required (PKCE)",
        ));
    };
    if !pkce::verify(verifier, &code.code_challenge) {
        return out(invalid_grant(
            "code_verifier does not match the code_challenge",
        ));
    }
    if let Err(r) = check_resource(gate, &code.grant, form) {
        return out(r);
    }
    if env.store {
        return Outcome::Store {
            op: StoreOp::PutIfAbsent {
                key: format!("mcpgate:code:{}", code.grant.jti),
                ttl: CODE_SECONDS,
            },
            paused: PausedAt::Token(Paused::CodeConsumed(code.grant)).into(),
        };
    }
    redeem(gate, code.grant, env)
}

/// Issues the tokens of a redeemed code. A code too large to carry the IdP's token for the
/// origin (a user in very many groups; see `callback`) gets a fresh one from the IdP first,
/// through the refresh path.
fn redeem(gate: &Gate, grant: Grant, env: &mut Env) -> Outcome {
    let forwarding = gate.cfg.forwarding.upstream_token != crate::config::UpstreamToken::None;
    if forwarding && grant.upstream.is_none() && grant.upstream_refresh.is_some() {
        return refresh_upstream(gate, grant);
    }
    Outcome::Respond(issue(gate, grant, env))
}

fn refresh_token(gate: &Gate, form: &form::Params, client: &str, env: &mut Env) -> Outcome {
    let out = |r| Outcome::Respond(r);
    let Some(token) = form.get("refresh_token") else {
        return out(oauth_error(
            400,
            "invalid_request",
            "refresh_token is required",
        ));
    };
    let mut grant: Grant = match seal::unseal(&gate.ring, Kind::RefreshToken, token, env.now) {
        Ok(g) => g,
        Err(SealError::Expired) => return out(invalid_grant("refresh token expired")),
        Err(_) => return out(invalid_grant("invalid refresh token")),
    };
    if grant.client_id != client {
        return out(invalid_grant("refresh token was issued to another client"));
    }
    if let Err(r) = check_resource(gate, &grant, form) {
        return out(r);
    }
    if let Some(requested) = form.get("scope") {
        let granted: Vec<&str> = grant.scope.split(' ').collect();
        if !requested
            .split(' ')
            .filter(|s| !s.is_empty())
            .all(|s| granted.contains(&s))
        {
            return out(oauth_error(
                400,
                "invalid_scope",
                "scope may only narrow the original grant",
            ));
        }
        grant.scope = requested
            .split(' ')
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
    }
    if env.store {
        return Outcome::Store {
            op: StoreOp::IsRevoked {
                key: family_key(&grant.family),
            },
            paused: PausedAt::Token(Paused::FamilyChecked(grant)).into(),
        };
    }
    refresh_upstream(gate, grant)
}

/// The grant must be for this deployment's resource (sealed values are bound to it too), and a
/// `resource` parameter, when given, must name it (RFC 8707).
fn check_resource(gate: &Gate, grant: &Grant, form: &form::Params) -> Result<(), Response> {
    if grant.resource != gate.resource_url {
        return Err(invalid_grant("the grant is for another resource"));
    }
    match form.get("resource") {
        Some(r) if r != grant.resource && r.strip_suffix('/') != Some(grant.resource.as_str()) => {
            Err(oauth_error(
                400,
                "invalid_target",
                "resource is not this server's MCP endpoint",
            ))
        }
        _ => Ok(()),
    }
}

fn refresh_upstream(gate: &Gate, grant: Grant) -> Outcome {
    match &grant.upstream_refresh {
        Some(rt) => Outcome::Fetch {
            request: idp::refresh(gate, rt),
            paused: PausedAt::Token(Paused::Refreshed(grant)).into(),
        },
        None => Outcome::Respond(invalid_grant(
            "the identity provider issued no refresh token",
        )),
    }
}

pub(super) fn resume(gate: &Gate, paused: Paused, reply: Reply, env: &mut Env) -> Outcome {
    let out = |r| Outcome::Respond(r);
    match (paused, reply) {
        (Paused::CodeConsumed(grant), Reply::Store(first)) => {
            if first {
                redeem(gate, grant, env)
            } else {
                out(invalid_grant("authorization code already used"))
            }
        }
        // A code whose single use could not be recorded is not redeemed: try again.
        (Paused::CodeConsumed(_), Reply::StoreFailed) => out(store_unavailable()),
        (Paused::FamilyChecked(grant), Reply::Store(revoked)) => {
            if revoked {
                return out(invalid_grant("refresh token revoked"));
            }
            refresh_upstream(gate, grant)
        }
        // The rotation below fails closed; this early check need not.
        (Paused::FamilyChecked(grant), Reply::StoreFailed) => refresh_upstream(gate, grant),
        (Paused::RefreshConsumed(mut grant), Reply::Store(advanced)) => {
            if advanced {
                grant.generation += 1;
                return out(issue(gate, grant, env));
            }
            // A rotated-out refresh token came back: someone holds a copy. Revoke the family.
            Outcome::Store {
                op: StoreOp::Revoke {
                    key: family_key(&grant.family),
                    ttl: gate.cfg.refresh_token_lifetime,
                },
                paused: PausedAt::Token(Paused::FamilyRevoked).into(),
            }
        }
        (Paused::RefreshConsumed(_), Reply::StoreFailed) => out(store_unavailable()),
        (Paused::FamilyRevoked, Reply::Store(_) | Reply::StoreFailed) => out(invalid_grant(
            "refresh token reuse detected; the grant was revoked",
        )),
        (Paused::Refreshed(grant), Reply::Http(resp)) => match idp::parse_token_response(&resp) {
            Ok(tokens) => after_refresh(gate, grant, tokens, false, env),
            Err(UpstreamError::Unavailable) => out(unavailable()),
            Err(_) => out(invalid_grant("the identity provider refused the refresh")),
        },
        (Paused::RefreshedKeys(grant, tokens), Reply::Keys) => {
            after_refresh(gate, grant, tokens, true, env)
        }
        _ => out(oauth_error(500, "server_error", "unexpected host reply")),
    }
}

fn after_refresh(
    gate: &Gate,
    mut grant: Grant,
    tokens: idp::TokenSet,
    retried: bool,
    env: &mut Env,
) -> Outcome {
    match idp::verify(gate, &tokens, env) {
        Ok(id) => {
            if id.sub != grant.sub {
                return Outcome::Respond(invalid_grant(
                    "the identity provider returned another user",
                ));
            }
            // Never wider than what the IdP granted on this refresh (it may have narrowed).
            grant.scope = idp::granted_scope(gate, &tokens, &id.scope, &grant.scope);
            grant.username = id.username.or(grant.username);
            grant.groups = id.groups;
            grant.email = id.email.or(grant.email);
            grant.upstream = crate::upstream_token::pick(gate, &tokens, env.now);
            if !id.extra.is_empty() {
                grant.extra = id.extra;
            }
            // Cognito does not rotate refresh tokens; keep the old one unless a new one came.
            if tokens.refresh_token.is_some() {
                grant.upstream_refresh = tokens.refresh_token;
            }
            grant.upstream_expires_in = tokens.expires_in.unwrap_or(grant.upstream_expires_in);
            consume_and_issue(gate, grant, env)
        }
        Err(VerifyError::NeedKeys) if !retried => Outcome::NeedKeys {
            paused: PausedAt::Token(Paused::RefreshedKeys(grant, tokens)).into(),
        },
        Err(VerifyError::NeedKeys) if env.upstream_keys.is_none() => {
            Outcome::Respond(unavailable())
        }
        Err(_) => Outcome::Respond(invalid_grant(
            "the identity provider returned a token that failed verification",
        )),
    }
}

/// Moves the family past the presented refresh token's generation (one store record per
/// family, however often it rotates), then issues the rotated pair; a token of an older
/// generation means a copy is in other hands, and the family is revoked. Only after the IdP
/// refreshed: a client told to retry (503) must not find its token spent.
fn consume_and_issue(gate: &Gate, mut grant: Grant, env: &mut Env) -> Outcome {
    if !env.store {
        grant.generation += 1;
        return Outcome::Respond(issue(gate, grant, env));
    }
    Outcome::Store {
        op: StoreOp::Advance {
            key: family_key(&grant.family),
            from: grant.generation,
            ttl: gate.cfg.refresh_token_lifetime,
        },
        paused: PausedAt::Token(Paused::RefreshConsumed(grant)).into(),
    }
}

/// Issues an access token and a rotated refresh token for `grant` (the IdP's token for the
/// origin, when forwarded, sealed into the access token only).
fn issue(gate: &Gate, mut grant: Grant, env: &mut Env) -> Response {
    let mut lifetime = grant
        .upstream_expires_in
        .clamp(60, gate.cfg.access_token_max_lifetime);
    let mut proxy_claims = Vec::new();
    if let Some(carried) = grant.upstream.take() {
        let (capped, with_refresh) =
            crate::upstream_token::access_lifetime(gate, lifetime, &carried, env.now);
        lifetime = capped;
        let carried = crate::upstream_token::Carried {
            refresh: grant.upstream_refresh.clone().filter(|_| with_refresh),
            ..carried
        };
        let exp = env.now + lifetime;
        match crate::upstream_token::seal_claim(gate, &carried, exp, env.random) {
            Some(sealed) => proxy_claims.push((crate::upstream_token::CLAIM, sealed)),
            None => return oauth_error(500, "server_error", "could not issue a token"),
        }
    }
    let subject = Subject {
        client_id: grant.client_id.clone(),
        sub: grant.sub.clone(),
        scope: grant.scope.clone(),
        username: grant.username.clone(),
        groups: grant.groups.clone(),
        email: grant.email.clone(),
        extra: grant.extra.clone(),
        sid: Some(grant.family.clone()),
    };
    let Some(access) = access_token::mint_with(gate, &subject, lifetime, &proxy_claims, env) else {
        return oauth_error(500, "server_error", "could not issue a token");
    };
    if access.len() > gate.cfg.max_token_bytes {
        // The guard would refuse it: say why instead (the IdP's token for the origin makes
        // the access tokens of users in very many groups large).
        return oauth_error(
            500,
            "server_error",
            "the access token would exceed max_token_bytes; the proxy's operator must raise it",
        );
    }
    let mut body = json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": lifetime,
        "scope": grant.scope,
    });
    if grant.upstream_refresh.is_some() {
        grant.jti = form::random_token(env.random, 12);
        // Every refresh takes the groups from the IdP's new tokens: the refresh token need
        // not carry them (100 groups would make it several KiB).
        grant.groups = Vec::new();
        let exp = env.now + gate.cfg.refresh_token_lifetime;
        match seal::seal(&gate.ring, Kind::RefreshToken, &grant, exp, env.random) {
            Some(rt) => respond::insert(&mut body, "refresh_token", json!(rt)),
            None => return oauth_error(500, "server_error", "could not issue a token"),
        }
    }
    respond::json(200, &body)
}
