//! What the origin receives about the user besides the identity headers, decided by the
//! guard once a token is verified ([`plan`]) and added to its forward ([`Plan::forward`]):
//!
//! * the identity assertion (`identity_assertion`), signed by the proxy, reused from the
//!   verified-token cache while at least [`crate::assertion::REUSE_WHILE`] seconds of it are
//!   left;
//! * the IdP's token of the user (`forward_upstream_token`), opened from the proxy's access
//!   token (see [`crate::upstream_token`]). When it has expired or is within its renewal
//!   margin and the access token carries the IdP's refresh token, the request waits for a
//!   refresh at the IdP ([`Outcome::Fetch`]) and the renewed token is kept in the
//!   verified-token cache for the next requests.
//!
//! Renewals go one at a time per VM / isolate and token: while one runs, other requests
//! forward the token they have as long as it is still valid (the margin gives them that
//! time). Requests that find it already expired cannot wait for another request's call (a
//! host offers no such wait), so each of those renews it as well.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::PausedAt;
use crate::config::UpstreamToken;
use crate::gate::Gate;
use crate::http::{Env, Forward, HttpRequest, Outcome, Reply, Response};
use crate::idp::{self, UpstreamError};
use crate::jwt::Identity;
use crate::respond;
use crate::upstream_token::{self, Carried, Freshness};

/// A renewal older than this is taken as lost (its request gone), and another may start.
const RENEWAL_TIMEOUT: u64 = 30;

/// What the guard adds to its forward. `Debug` shows header names only.
#[derive(Default)]
pub struct Plan {
    headers: Vec<(String, String)>,
    next: Next,
}

#[derive(Default)]
enum Next {
    #[default]
    Forward,
    Renew(HttpRequest, Pending),
    Refuse(Response),
}

/// A renewal in flight: whose token, for which cached access token.
struct Pending {
    /// The proxy's access token (the cache key).
    token: String,
    sub: String,
    current: Carried,
}

impl core::fmt::Debug for Pending {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Pending")
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

/// Paused on the IdP's refresh. `Debug` shows no token.
pub struct Paused {
    forward: Forward,
    headers: Vec<(String, String)>,
    pending: Pending,
}

/// Header names only: the values are credentials.
fn names(headers: &[(String, String)]) -> Vec<&str> {
    headers.iter().map(|(k, _)| k.as_str()).collect()
}

impl core::fmt::Debug for Plan {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let next = match self.next {
            Next::Forward => "forward",
            Next::Renew(..) => "renew",
            Next::Refuse(_) => "refuse",
        };
        f.debug_struct("Plan")
            .field("headers", &names(&self.headers))
            .field("next", &next)
            .finish()
    }
}

impl core::fmt::Debug for Paused {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Paused")
            .field("headers", &names(&self.headers))
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

impl Paused {
    /// The CORS headers of the paused request (for its final answer).
    pub(super) fn response_headers(&self) -> &[(String, String)] {
        &self.forward.response_headers
    }
}

/// The header as the origin receives it: `Bearer …` in `authorization`.
fn header(name: &str, value: &str) -> (String, String) {
    let value = if name == "authorization" {
        alloc::format!("Bearer {value}")
    } else {
        value.to_string()
    };
    (name.to_string(), value)
}

fn invalid_token(gate: &Gate, description: &str) -> Response {
    respond::bearer_challenge(
        401,
        Some("invalid_token"),
        Some(description),
        &gate.paths.resource_metadata_url,
        &gate.cfg.required_scopes.join(" "),
        "upstream_token",
    )
}

/// Decides what `token` (verified as `id`; `own`: one of the proxy's) brings the origin.
pub(super) fn plan(gate: &Gate, token: &str, id: &Identity, own: bool, env: &mut Env) -> Plan {
    let f = &gate.cfg.forwarding;
    let upstream = own && f.upstream_token != UpstreamToken::None;
    let Some(keys) = gate.assertion_keys.as_ref().filter(|_| f.assertion) else {
        if !upstream {
            return Plan::default();
        }
        return with_upstream(gate, token, id, env, Plan::default());
    };
    let now = env.now;
    let mut plan = Plan::default();
    let mut slot = env.cache.as_deref_mut().and_then(|c| c.attached(token));
    let cached = slot
        .as_ref()
        .and_then(|a| a.assertion.clone())
        .filter(|(_, exp)| *exp >= now + crate::assertion::REUSE_WHILE);
    let assertion = match cached {
        Some((a, _)) => Some(a),
        None => {
            let jti = crate::form::random_token(env.random, 12);
            let signed = keys.sign(id, &gate.cfg.claim_headers, now, jti);
            if let (Some(s), Some(slot)) = (&signed, slot.as_mut()) {
                slot.assertion = Some(s.clone());
            }
            signed.map(|(a, _)| a)
        }
    };
    if let Some(a) = assertion {
        plan.headers.push(header(&f.assertion_header, &a));
    }
    if upstream {
        plan = with_upstream(gate, token, id, env, plan);
    }
    plan
}

/// Adds the IdP's token to `plan`, or the renewal it needs first.
fn with_upstream(gate: &Gate, token: &str, id: &Identity, env: &mut Env, mut plan: Plan) -> Plan {
    let now = env.now;
    let name = &gate.cfg.forwarding.upstream_token_header;
    let mut slot = env.cache.as_deref_mut().and_then(|c| c.attached(token));
    let carried = match slot.as_mut() {
        Some(a) if a.upstream_read => a.upstream.clone(),
        other => {
            let c = upstream_token::from_access_token(gate, token, now);
            if let Some(a) = other {
                a.upstream_read = true;
                a.upstream = c.clone();
            }
            c
        }
    };
    // An access token carrying none (a machine client's, or issued before forwarding was
    // turned on): nothing to forward.
    let Some(c) = carried else {
        return plan;
    };
    let renewing = slot
        .as_ref()
        .and_then(|a| a.renewing_since)
        .is_some_and(|since| since + RENEWAL_TIMEOUT > now);
    let renew = match (c.freshness(now), &c.refresh) {
        (Freshness::Fresh, _) | (Freshness::Ending, None) => false,
        (Freshness::Ending, Some(_)) => !renewing,
        (Freshness::Expired, Some(_)) => true,
        (Freshness::Expired, None) => {
            plan.next = Next::Refuse(invalid_token(
                gate,
                "the identity provider's token of this session expired; refresh the access token",
            ));
            return plan;
        }
    };
    match (&c.refresh, renew) {
        (Some(refresh), true) => {
            if let Some(a) = slot {
                a.renewing_since = Some(now);
            }
            plan.next = Next::Renew(
                idp::refresh(gate, refresh),
                Pending {
                    token: token.to_string(),
                    sub: id.sub.clone(),
                    current: c,
                },
            );
        }
        _ => plan.headers.push(header(name, &c.token)),
    }
    plan
}

impl Plan {
    /// The guard's forward with these headers, or the renewal (or refusal) they need first.
    pub(super) fn forward(self, mut forward: Forward) -> Outcome {
        match self.next {
            Next::Forward => {
                forward.set_headers.extend(self.headers);
                Outcome::Forward(forward)
            }
            Next::Refuse(r) => Outcome::Respond(r),
            Next::Renew(request, pending) => Outcome::Fetch {
                request,
                paused: PausedAt::OriginHeaders(Paused {
                    forward,
                    headers: self.headers,
                    pending,
                })
                .into(),
            },
        }
    }
}

/// The IdP answered the renewal.
pub(super) fn resume(gate: &Gate, paused: Paused, reply: Reply, env: &mut Env) -> Outcome {
    let Paused {
        mut forward,
        mut headers,
        pending,
    } = paused;
    let now = env.now;
    let renewed = match reply {
        Reply::Http(resp) => match idp::parse_token_response(&resp) {
            Ok(tokens) => {
                upstream_token::renewed(gate, &tokens, &pending.sub, &pending.current, now)
                    .ok_or(UpstreamError::Malformed)
            }
            Err(e) => Err(e),
        },
        _ => Err(UpstreamError::Malformed),
    };
    let slot = env
        .cache
        .as_deref_mut()
        .and_then(|c| c.attached(&pending.token));
    let name = &gate.cfg.forwarding.upstream_token_header;
    let current = pending.current;
    match renewed {
        Ok(c) => {
            headers.push(header(name, &c.token));
            if let Some(a) = slot {
                a.upstream = Some(c);
                a.renewing_since = None;
            }
        }
        Err(e) => {
            if let Some(a) = slot {
                a.renewing_since = None;
                // A refusal will not change: no more attempts with this refresh token.
                if e != UpstreamError::Unavailable {
                    if let Some(u) = a.upstream.as_mut() {
                        u.refresh = None;
                    }
                }
            }
            if current.exp > now {
                // Renewed early and failed: the current token is still good.
                headers.push(header(name, &current.token));
            } else if e == UpstreamError::Unavailable {
                let mut r = respond::unavailable("the identity provider is unavailable; try again");
                r.reason = Some("upstream_token_unavailable");
                return Outcome::Respond(r);
            } else {
                return Outcome::Respond(invalid_token(
                    gate,
                    "the identity provider refused to renew its token of this session; sign in again",
                ));
            }
        }
    }
    forward.set_headers.extend(headers);
    Outcome::Forward(forward)
}
