//! `POST /revoke` (RFC 7009): 200 for a well-formed request once the token is revoked (or is
//! not one to revoke). A refresh token revokes its whole family in the store (when configured)
//! and its IdP refresh token upstream (when the IdP has a revocation endpoint); an access token
//! is recorded as revoked until it expires. When the IdP is all that could revoke a refresh
//! token (no store) and it does not answer, the answer is 503 with `Retry-After`: the client
//! must assume the token still works and retry (RFC 7009 §2.2.1).

use alloc::format;

use super::{form_body, Step};
use crate::gate::Gate;
use crate::http::{Env, Outcome, Reply, Request, Response, StoreOp};
use crate::idp;
use crate::records::Grant;
use crate::respond::{self, oauth_error};
use crate::seal::{self, Kind};

/// Paused on the store or the IdP.
#[derive(Debug)]
pub enum Resume {
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
                op: StoreOp::PutIfAbsent {
                    key: format!("mcpgate:family:{}", grant.family),
                    ttl: gate.cfg.refresh_token_lifetime,
                },
                resume: Step::Revoke(Resume::FamilyRevoked(grant.upstream_refresh)).into(),
            };
        }
        return revoke_upstream(gate, grant.upstream_refresh.as_deref(), false);
    }
    if let Ok(identity) = crate::access_token::verify(gate, token, env.now) {
        if let (true, Some(jti)) = (env.store, identity.jti) {
            let ttl = identity.exp.saturating_sub(env.now) + gate.cfg.leeway_seconds;
            return Outcome::Store {
                op: StoreOp::PutIfAbsent {
                    key: format!("mcpgate:access:{jti}"),
                    ttl,
                },
                resume: Step::Revoke(Resume::Done).into(),
            };
        }
    }
    Outcome::Respond(ok())
}

fn revoke_upstream(gate: &Gate, upstream_refresh: Option<&str>, local: bool) -> Outcome {
    match upstream_refresh.and_then(|rt| idp::revoke(gate, rt)) {
        Some(request) => Outcome::Fetch {
            request,
            resume: Step::Revoke(Resume::Upstream { local }).into(),
        },
        None => Outcome::Respond(ok()),
    }
}

pub(super) fn resume(gate: &Gate, k: Resume, reply: Reply, _env: &mut Env) -> Outcome {
    match (k, reply) {
        (Resume::FamilyRevoked(upstream_refresh), _) => {
            revoke_upstream(gate, upstream_refresh.as_deref(), true)
        }
        // Nothing was revoked: the token still refreshes, and the client must know it.
        (Resume::Upstream { local: false }, Reply::Http(resp)) if idp::unavailable(resp.status) => {
            Outcome::Respond(respond::unavailable(
                "the identity provider is unavailable; the token is not revoked yet, try again",
            ))
        }
        // The IdP refusing (an unknown or already revoked token) leaves nothing to revoke; with
        // a store the proxy's own revocation already holds.
        (Resume::Upstream { .. } | Resume::Done, _) => Outcome::Respond(ok()),
    }
}
