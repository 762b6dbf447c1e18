//! The guard of every protected path (the MCP endpoint and, by default, everything else the
//! origin serves): a valid bearer token becomes identity headers for the origin; the
//! client's own token never travels upstream (no token passthrough). It decides on the
//! canonical path (see [`crate::path`]) and forwards exactly that path. With `tool_rules`,
//! MCP POSTs are then authorized per method and tool (`super::tools`).

use alloc::format;
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::{tools, PausedAt};
use crate::access_token;
use crate::gate::Gate;
use crate::http::{Env, Forward, Outcome, Reply, Request, StoreOp};
use crate::jwt::{Identity, TokenError};
use crate::mcp_request::McpMessage;
use crate::respond;

/// What the MCP request asks for, when `tool_rules` apply to it (or why it cannot be
/// authorized: answered once the token is checked).
pub(super) type Mcp = Option<Result<McpMessage, crate::http::Response>>;

/// Paused on the revocation check or on the IdP's keys.
#[derive(Debug)]
pub enum Paused {
    /// With what the origin gets besides the identity headers, added once not revoked.
    Revocation(Forward, super::origin_headers::Plan),
    Keys {
        token: String,
        path: String,
        /// The forward prepared so far (headers to strip, canonical path).
        base: Forward,
        mcp: Mcp,
    },
}

impl Paused {
    /// The CORS headers of the paused request (for its final answer).
    pub(super) fn response_headers(&self) -> &[(String, String)] {
        match self {
            Self::Revocation(f, _) | Self::Keys { base: f, .. } => &f.response_headers,
        }
    }
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
    let mut r = respond::unavailable("signing keys are unavailable; try again");
    r.reason = Some("no_keys");
    Outcome::Respond(r)
}

/// `path` is the canonical path; `rewrite` the path and query to forward when it differs
/// from the request's; `cors` the headers for the origin's response (see `super::cors`).
pub(super) fn handle(
    gate: &Gate,
    req: &Request,
    path: &str,
    rewrite: Option<String>,
    cors: Vec<(String, String)>,
    env: &mut Env,
) -> Outcome {
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
    let mut base = super::forward_base(gate, req, rewrite);
    base.remove("authorization");
    base.response_headers = cors;
    let mcp = tools::applies(gate, req.method, path).then(|| tools::inspect(gate, req));
    verify(gate, token, path, base, mcp, false, env)
}

fn verify(
    gate: &Gate,
    token: &str,
    path: &str,
    base: Forward,
    mcp: Mcp,
    retried: bool,
    env: &mut Env,
) -> Outcome {
    let (leeway, now) = (gate.cfg.leeway_seconds, env.now);
    // A token seen before: its identity and its headers for the origin in one lookup.
    let cached = env
        .cache
        .as_deref_mut()
        .and_then(|c| c.hit(token, now, leeway))
        .map(|(id, own, attached)| {
            let headers = attached
                .identity_headers
                .get_or_insert_with(|| identity_headers(gate, id).into());
            (Rc::clone(id), own, Some(Rc::clone(headers)))
        });
    let (identity, is_own, headers) = match cached {
        Some(hit) => hit,
        None => match authenticate(gate, token, path, &base, &mcp, retried, env) {
            Ok((id, own)) => {
                let id = Rc::new(id);
                if let Some(cache) = env.cache.as_deref_mut() {
                    cache.insert(token, Rc::clone(&id), own);
                }
                (id, own, None)
            }
            Err(out) => return *out,
        },
    };
    // Restrictions ignore case: an origin that ignores it must not be a way around them.
    if let Some(rule) = gate
        .cfg
        .group_rules
        .iter()
        .find(|r| crate::path::matches_prefix(path, &r.path_prefix, true))
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
    let list_filter = match mcp {
        None => None,
        Some(Err(refused)) => return Outcome::Respond(refused),
        Some(Ok(msg)) => match tools::authorize(gate, &msg, &identity) {
            Ok(filter) => filter,
            Err(refused) => return Outcome::Respond(refused),
        },
    };
    // The proxy's own tokens are revoked with their grant (`sid`: the refresh-token family);
    // one small store record answers, whatever the store holds.
    let revocation = match (&identity.sid, &identity.jti) {
        _ if !(is_own && env.store) => None,
        (Some(sid), _) => Some(super::token::family_key(sid)),
        // Tokens issued before grants were named: revoked one by one.
        (None, Some(jti)) => Some(format!("mcpgate:access:{jti}")),
        (None, None) => None,
    };
    let plan = super::origin_headers::plan(gate, token, &identity, is_own, env);
    let mut forward = forward(gate, token, &identity, base, headers, env);
    if list_filter.is_some() {
        // The answer must reach the filter readable.
        forward.remove("accept-encoding");
        forward.list_filter = list_filter;
    }
    match revocation {
        Some(key) => Outcome::Store {
            op: StoreOp::IsRevoked { key },
            paused: PausedAt::Guard(Paused::Revocation(forward, plan)).into(),
        },
        None => plan.forward(forward),
    }
}

/// Checks a token not in the cache: the proxy's own first, then (when configured) the IdP's.
fn authenticate(
    gate: &Gate,
    token: &str,
    path: &str,
    base: &Forward,
    mcp: &Mcp,
    retried: bool,
    env: &mut Env,
) -> Result<(Identity, bool), alloc::boxed::Box<Outcome>> {
    let need_keys = || Outcome::NeedKeys {
        paused: PausedAt::Guard(Paused::Keys {
            token: token.to_string(),
            path: path.to_string(),
            base: base.clone(),
            mcp: mcp.clone(),
        })
        .into(),
    };
    match (access_token::verify(gate, token, env.now), &gate.direct) {
        (Ok(id), _) => Ok((id, true)),
        // Not one of the proxy's tokens: maybe an IdP token presented directly.
        (Err(TokenError::UnknownKid), Some(direct)) => {
            let Some(keys) = env.upstream_keys else {
                return Err(alloc::boxed::Box::new(if retried {
                    no_keys()
                } else {
                    need_keys()
                }));
            };
            match direct.verify(token, keys, env.now, env.native_rsa) {
                Ok(id) => Ok((id, false)),
                Err(TokenError::UnknownKid) if !retried => Err(need_keys().into()),
                Err(e) => Err(challenge(gate, Some(&e)).into()),
            }
        }
        (Err(TokenError::UnknownKid), None) => {
            // Neither ours nor accepted from the IdP: say why in the generic verifier's terms.
            let e = crate::jwt::compact::Compact::parse(token, gate.cfg.max_token_bytes)
                .err()
                .unwrap_or(TokenError::UnknownKid);
            Err(challenge(gate, Some(&e)).into())
        }
        (Err(e), _) => Err(challenge(gate, Some(&e)).into()),
    }
}

/// Header values must not carry line breaks or other controls (each becomes a space).
fn clean(v: &str) -> String {
    if !v.chars().any(char::is_control) {
        // The usual case: one copy, not a character at a time.
        return v.into();
    }
    v.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `base` with the identity headers of `token` (verified as `id`): the list the cache handed
/// out with the identity (`headers`), else the one kept with the token in the cache, built
/// now if it is the first — one list per cached token, shared, never copied.
fn forward(
    gate: &Gate,
    token: &str,
    id: &Identity,
    mut base: Forward,
    headers: Option<Rc<[(String, String)]>>,
    env: &mut Env,
) -> Forward {
    let headers =
        headers.unwrap_or_else(
            || match env.cache.as_deref_mut().and_then(|c| c.attached(token)) {
                Some(a) => Rc::clone(
                    a.identity_headers
                        .get_or_insert_with(|| identity_headers(gate, id).into()),
                ),
                None => identity_headers(gate, id).into(),
            },
        );
    base.identity_headers = Some(headers);
    base
}

fn identity_headers(gate: &Gate, id: &Identity) -> Vec<(String, String)> {
    let h = &gate.cfg.identity_headers;
    let groups = (!id.groups.is_empty()).then(|| id.groups.join(","));
    let fields = [
        (&h.sub, Some(id.sub.as_str())),
        (&h.username, id.username.as_deref()),
        (&h.groups, groups.as_deref()),
        (&h.scope, Some(id.scope.as_str())),
        (&h.client_id, id.client_id.as_deref()),
        (&h.email, id.email.as_deref()),
    ];
    let mut set: Vec<(String, String)> = Vec::with_capacity(8);
    for (name, value) in fields {
        if let (Some(name), Some(value)) = (name, value) {
            set.push((name.clone(), clean(value)));
        }
    }
    for (claim, header) in &gate.cfg.claim_headers {
        if let Some((_, v)) = id.extra.iter().find(|(k, _)| k == claim) {
            set.push((header.clone(), clean(v)));
        }
    }
    set
}

pub(super) fn resume(gate: &Gate, paused: Paused, reply: Reply, env: &mut Env) -> Outcome {
    match (paused, reply) {
        (Paused::Revocation(fwd, plan), Reply::Store(revoked)) => {
            if revoked {
                challenge(gate, Some(&TokenError::Revoked))
            } else {
                plan.forward(fwd)
            }
        }
        // A store that cannot answer finds nothing revoked: the MCP path keeps working.
        (Paused::Revocation(fwd, plan), Reply::StoreFailed) => plan.forward(fwd),
        (
            Paused::Keys {
                token,
                path,
                base,
                mcp,
            },
            Reply::Keys,
        ) => verify(gate, &token, &path, base, mcp, true, env),
        _ => Outcome::Respond(respond::oauth_error(
            500,
            "server_error",
            "unexpected host reply",
        )),
    }
}
