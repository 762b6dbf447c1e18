//! `POST /revoke` (RFC 7009): always 200 for a well-formed request. A refresh token revokes
//! its whole family in the store (when configured) and its IdP refresh token upstream (when
//! the IdP has a revocation endpoint); an access token is recorded as revoked until it expires.

use alloc::format;

use super::records::Grant;
use super::{form_body, upstream, Step};
use crate::gate::Gate;
use crate::http::{Env, Outcome, Reply, Request, Response, StoreOp};
use crate::respond::{self, oauth_error};
use crate::seal::{self, Kind};

/// Paused on the store or the IdP.
#[derive(Debug)]
pub enum Resume {
    /// The family was marked revoked; next revoke upstream if possible.
    FamilyRevoked(Option<alloc::string::String>),
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
        return revoke_upstream(gate, grant.upstream_refresh.as_deref());
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

fn revoke_upstream(gate: &Gate, upstream_refresh: Option<&str>) -> Outcome {
    match upstream_refresh.and_then(|rt| upstream::revoke(gate, rt)) {
        Some(request) => Outcome::Fetch {
            request,
            resume: Step::Revoke(Resume::Done).into(),
        },
        None => Outcome::Respond(ok()),
    }
}

pub(super) fn resume(gate: &Gate, k: Resume, _reply: Reply, _env: &mut Env) -> Outcome {
    match k {
        Resume::FamilyRevoked(upstream_refresh) => {
            revoke_upstream(gate, upstream_refresh.as_deref())
        }
        // Upstream failures do not change the answer: the proxy's own state is revoked.
        Resume::Done => Outcome::Respond(ok()),
    }
}
