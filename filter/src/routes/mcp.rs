//! The MCP endpoint guard: a valid bearer token becomes identity headers for the MCP
//! server; the client's own token never travels upstream (no token passthrough).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::Step;
use crate::gate::Gate;
use crate::http::{Env, Forward, Outcome, Reply, Request, StoreOp};
use crate::jwt::{Identity, TokenError};
use crate::respond;

/// Paused on the revocation check or on the IdP's keys.
#[derive(Debug)]
pub enum Resume {
    Revocation(Forward),
    Keys { token: String, path: String },
}

fn challenge(gate: &Gate, err: Option<&TokenError>) -> Outcome {
    let scope = gate.cfg.required_scopes.join(" ");
    let url = &gate.paths.resource_metadata_url;
    let r = match err {
        None => respond::bearer_challenge(401, None, None, url, &scope, "missing_token"),
        Some(e) => {
            let b = e.bearer_error();
            respond::bearer_challenge(
                b.status(),
                Some(b.code()),
                Some(e.description()),
                url,
                &scope,
                e.reason(),
            )
        }
    };
    Outcome::Respond(r)
}

fn no_keys() -> Outcome {
    let mut r = respond::oauth_error(
        503,
        "temporarily_unavailable",
        "signing keys are unavailable; try again",
    );
    r.headers.push(("retry-after".into(), "5".into()));
    r.reason = Some("no_keys");
    Outcome::Respond(r)
}

pub(super) fn handle(gate: &Gate, req: &Request, env: &mut Env) -> Outcome {
    let auth = match req.header("authorization") {
        Ok(a) => a,
        Err(_) => {
            return Outcome::Respond(respond::oauth_error(
                400,
                "invalid_request",
                "more than one authorization header",
            ))
        }
    };
    // RFC 6750 §2.3 query tokens are refused: URLs end up in logs.
    if req
        .query()
        .split('&')
        .any(|p| p.starts_with("access_token="))
    {
        return Outcome::Respond(respond::oauth_error(
            400,
            "invalid_request",
            "tokens are accepted only in the Authorization header",
        ));
    }
    let token = match auth {
        None => return challenge(gate, None),
        Some(h) => match h.split_once(' ') {
            Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") && !t.trim().is_empty() => {
                t.trim()
            }
            _ => return challenge(gate, None),
        },
    };
    verify(gate, token, req.path_only(), false, env)
}

fn verify(gate: &Gate, token: &str, path: &str, retried: bool, env: &mut Env) -> Outcome {
    let own = gate
        .own
        .verify(token, gate.ring.verify_keys(), env.now, None);
    let (identity, is_own) = match (own, &gate.direct) {
        (Ok(id), _) => (id, true),
        // Not one of the proxy's keys: maybe an IdP token presented directly.
        (Err(TokenError::UnknownKid | TokenError::AlgorithmNotAllowed), Some(direct)) => {
            let Some(keys) = env.upstream_keys else {
                return if retried {
                    no_keys()
                } else {
                    Outcome::NeedKeys {
                        resume: Step::Mcp(Resume::Keys {
                            token: token.to_string(),
                            path: path.to_string(),
                        })
                        .into(),
                    }
                };
            };
            match direct.verify(token, keys, env.now, env.native_rsa) {
                Ok(id) => (id, false),
                Err(TokenError::UnknownKid) if !retried => {
                    return Outcome::NeedKeys {
                        resume: Step::Mcp(Resume::Keys {
                            token: token.to_string(),
                            path: path.to_string(),
                        })
                        .into(),
                    }
                }
                Err(e) => return challenge(gate, Some(&e)),
            }
        }
        (Err(e), _) => return challenge(gate, Some(&e)),
    };
    if let Some(rule) = gate
        .cfg
        .group_rules
        .iter()
        .find(|r| path.starts_with(&r.path_prefix))
    {
        if !rule.groups.iter().any(|g| identity.in_group(g)) {
            let scope = gate.cfg.required_scopes.join(" ");
            return Outcome::Respond(respond::bearer_challenge(
                403,
                Some("insufficient_scope"),
                Some("group membership required for this path"),
                &gate.paths.resource_metadata_url,
                &scope,
                "group",
            ));
        }
    }
    let own_jti = identity.jti.clone().filter(|_| is_own);
    let forward = forward(gate, identity);
    match own_jti {
        Some(jti) if env.store => Outcome::Store {
            op: StoreOp::Exists {
                key: format!("mcpgate:access:{jti}"),
            },
            resume: Step::Mcp(Resume::Revocation(forward)).into(),
        },
        _ => Outcome::Forward(forward),
    }
}

/// Header values must not carry line breaks or other controls.
fn clean(v: &str) -> String {
    v.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn forward(gate: &Gate, id: Identity) -> Forward {
    let h = &gate.cfg.identity_headers;
    let mut set: Vec<(String, String)> = Vec::with_capacity(8);
    set.push((h.sub.clone(), clean(&id.sub)));
    if let Some(u) = &id.username {
        set.push((h.username.clone(), clean(u)));
    }
    if !id.groups.is_empty() {
        set.push((h.groups.clone(), clean(&id.groups.join(","))));
    }
    set.push((h.scope.clone(), clean(&id.scope)));
    if let Some(c) = &id.client_id {
        set.push((h.client_id.clone(), clean(c)));
    }
    if let Some(e) = &id.email {
        set.push((h.email.clone(), clean(e)));
    }
    for (claim, header) in &gate.cfg.claim_headers {
        if let Some((_, v)) = id.extra.iter().find(|(k, _)| k == claim) {
            set.push((header.clone(), clean(v)));
        }
    }
    let mut remove = gate.strip_headers.clone();
    remove.push("authorization".to_string());
    Forward {
        remove_headers: remove,
        set_headers: set,
    }
}

pub(super) fn resume(gate: &Gate, k: Resume, reply: Reply, env: &mut Env) -> Outcome {
    match (k, reply) {
        (Resume::Revocation(fwd), Reply::Store(revoked)) => {
            if revoked {
                challenge(gate, Some(&TokenError::Revoked))
            } else {
                Outcome::Forward(fwd)
            }
        }
        (Resume::Keys { token, path }, Reply::Keys) => verify(gate, &token, &path, true, env),
        _ => Outcome::Respond(respond::oauth_error(
            500,
            "server_error",
            "unexpected host reply",
        )),
    }
}
