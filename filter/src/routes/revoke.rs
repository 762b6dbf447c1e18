//! `POST /revoke` (RFC 7009): 200 for a well-formed request once the token is revoked (or is
//! not one to revoke). With a store, a token revokes its whole grant: the refresh-token family
//! and every access token issued from it (RFC 7009 §2.1: SHOULD for a refresh token, MAY for
//! an access token), one store record; the IdP's refresh token is revoked upstream too when
//! the IdP has a revocation endpoint. When the IdP is all that could revoke a refresh token
//! (no store, or the store failed) and it does not answer, the answer is 503 with
//! `Retry-After`: the client must assume the token still works and retry (RFC 7009 §2.2.1);
//! so is an access token whose revocation the store could not record.

use alloc::format;

use super::token::family_key;
use super::{form_body, PausedAt};
use crate::gate::Gate;
use crate::http::{Env, Outcome, Reply, Request, Response, StoreOp};
use crate::idp;
use crate::records::Grant;
use crate::respond::{self, oauth_error};
use crate::seal::{self, Kind};

/// Paused on the store or the IdP.
#[derive(Debug)]
pub enum Paused {
    /// The family was marked revoked; next revoke upstream if possible.
    FamilyRevoked(Option<alloc::string::String>),
    /// The upstream revocation was asked; `local`: the proxy revoked the token itself too.
    Upstream {
        local: bool,
    },
    Done,
}

fn ok() -> Response {
    let mut r = respond::json(200, &serde_json::json!({}));
    r.body.clear();
    r.headers.retain(|(k, _)| k != "content-type");
    r
}

pub(super) fn handle(gate: &Gate, req: &Request, env: &mut Env) -> Outcome {
    let form = match form_body(req) {
        Ok(f) => f,
        Err(r) => return Outcome::Respond(r),
    };
    let Some(token) = form.get("token") else {
        return Outcome::Respond(oauth_error(400, "invalid_request", "token is required"));
    };
    let client = form.get("client_id");
    // Expired refresh tokens are still worth revoking upstream: open them with no clock.
    if let Ok(grant) = seal::unseal::<Grant>(&gate.ring, Kind::RefreshToken, token, 0) {
        if client.is_some_and(|c| c != grant.client_id) {
            // RFC 7009 §2.1: a token of another client is not revoked, and that is not an error.
            return Outcome::Respond(ok());
        }
        if env.store {
            return Outcome::Store {
                op: StoreOp::Revoke {
                    key: family_key(&grant.family),
                    ttl: gate.cfg.refresh_token_lifetime,
                },
                paused: PausedAt::Revoke(Paused::FamilyRevoked(grant.upstream_refresh)).into(),
            };
        }
        return revoke_upstream(gate, grant.upstream_refresh.as_deref(), false);
    }
    if let Ok(identity) = crate::access_token::verify(gate, token, env.now) {
        if client.is_some_and(|c| identity.client_id.as_deref() != Some(c)) {
            return Outcome::Respond(ok());
        }
        let op = match (identity.sid, identity.jti) {
            // The grant: its refresh tokens stop refreshing, its access tokens stop working.
            (Some(sid), _) => Some(StoreOp::Revoke {
                key: family_key(&sid),
                ttl: gate.cfg.refresh_token_lifetime,
            }),
            // A token issued before grants were named: itself, until it expires.
            (None, Some(jti)) => Some(StoreOp::Revoke {
                key: format!("mcpgate:access:{jti}"),
                ttl: identity.exp.saturating_sub(env.now) + gate.cfg.leeway_seconds,
            }),
            (None, None) => None,
        };
        if let (true, Some(op)) = (env.store, op) {
            return Outcome::Store {
                op,
                paused: PausedAt::Revoke(Paused::Done).into(),
            };
        }
    }
    Outcome::Respond(ok())
}

fn store_unavailable() -> Response {
    let mut r = respond::unavailable(
        "the authorization server's store is unavailable; the token is not revoked yet, try again",
    );
    r.reason = Some("store_unavailable");
    r
}

fn revoke_upstream(gate: &Gate, upstream_refresh: Option<&str>, local: bool) -> Outcome {
    match upstream_refresh.and_then(|rt| idp::revoke(gate, rt)) {
        Some(request) => Outcome::Fetch {
            request,
            paused: PausedAt::Revoke(Paused::Upstream { local }).into(),
        },
        None => Outcome::Respond(ok()),
    }
}

pub(super) fn resume(gate: &Gate, paused: Paused, reply: Reply, _env: &mut Env) -> Outcome {
    match (paused, reply) {
        // The store could not record it: as without a store, the IdP is all that revokes.
        (Paused::FamilyRevoked(upstream_refresh), Reply::StoreFailed) => {
            match upstream_refresh.and_then(|rt| idp::revoke(gate, &rt)) {
                Some(request) => Outcome::Fetch {
                    request,
                    paused: PausedAt::Revoke(Paused::Upstream { local: false }).into(),
                },
                None => Outcome::Respond(store_unavailable()),
            }
        }
        (Paused::FamilyRevoked(upstream_refresh), _) => {
            revoke_upstream(gate, upstream_refresh.as_deref(), true)
        }
        (Paused::Done, Reply::StoreFailed) => Outcome::Respond(store_unavailable()),
        // Nothing was revoked: the token still refreshes, and the client must know it.
        (Paused::Upstream { local: false }, Reply::Http(resp)) if idp::unavailable(resp.status) => {
            Outcome::Respond(respond::unavailable(
                "the identity provider is unavailable; the token is not revoked yet, try again",
            ))
        }
        // The IdP refusing (an unknown or already revoked token) leaves nothing to revoke; with
        // a store the proxy's own revocation already holds.
        (Paused::Upstream { .. } | Paused::Done, _) => Outcome::Respond(ok()),
    }
}
