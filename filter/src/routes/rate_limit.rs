//! Rate limits on the endpoints that create state or call the IdP (`/register`, `/authorize`,
//! `/token`): a token bucket per client address and one per client id and address, kept in
//! the store (so they hold across workers / locations); 429 with `Retry-After` when empty.
//! Without a store, nothing is limited here (Envoy's own rate-limit filters can take over).
//!
//! Why the client bucket is keyed on (client id, address) and not on the client id alone: a
//! client id is public and unauthenticated (public clients, a Client ID Metadata Document URL
//! is shared by every user of that client), so a bucket per client id is one anybody can
//! drain — about `rate_limit_per_client` requests a minute from anywhere kept a client at 429
//! for all its users, refreshes included. Charging it only after the client proved something
//! (a code or refresh token opened) would still let one legitimate user of a shared public
//! client lock out all the others. Per (client, address), a party only ever exhausts its own
//! allowance; floods from many addresses meet the per-address buckets and the IdP's limits.
//! With no known address the client bucket is skipped (fails open) rather than shared.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use sha2::{Digest, Sha256};

use super::{dispatch, PausedAt, Route};
use crate::encoding::b64url_encode;
use crate::form::Params;
use crate::gate::Gate;
use crate::http::{Env, Outcome, Reply, Request, StoreOp};
use crate::respond;

/// Buckets refill over a minute.
const PERIOD: u64 = 60;

/// An owned copy of the request, so it can be handled once the buckets answered.
#[derive(Debug)]
pub struct Paused {
    route: Route,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    client_address: Option<String>,
    /// Buckets still to take from: key and capacity.
    pending: Vec<(String, u32)>,
    /// The capacity of the bucket being asked now (for `Retry-After`).
    asking: u32,
}

fn client_id(req: &Request) -> Option<String> {
    let from_query = Params::parse(req.query())
        .ok()?
        .get("client_id")
        .map(String::from);
    from_query.or_else(|| {
        let body = core::str::from_utf8(req.body).ok()?;
        Params::parse(body).ok()?.get("client_id").map(String::from)
    })
}

fn digest(s: &str) -> String {
    b64url_encode(Sha256::digest(s.as_bytes()).get(..12).unwrap_or(&[]))
}

/// Starts the bucket checks for a limited route; `None` lets the request through at once.
pub(super) fn check(gate: &Gate, r: Route, req: &Request, env: &mut Env) -> Option<Outcome> {
    if !env.store || !matches!(r, Route::Register | Route::Authorize | Route::Token) {
        return None;
    }
    let c = &gate.cfg;
    let mut pending = Vec::new();
    if let (Some(addr), n) = (req.client_address, c.rate_limit_per_address) {
        if n > 0 {
            pending.push((format!("mcpgate:rl:addr:{}", digest(addr)), n));
        }
    }
    if r != Route::Register && c.rate_limit_per_client > 0 {
        if let (Some(id), Some(addr)) = (client_id(req), req.client_address) {
            // Length-prefixed: no (client, address) pair spells another.
            let key = format!("{}:{id}\n{addr}", id.len());
            pending.push((
                format!("mcpgate:rl:client:{}", digest(&key)),
                c.rate_limit_per_client,
            ));
        }
    }
    if pending.is_empty() {
        return None;
    }
    let k = Paused {
        route: r,
        method: req.method.to_string(),
        path: req.path.to_string(),
        headers: req
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: req.body.to_vec(),
        client_address: req.client_address.map(String::from),
        pending,
        asking: 0,
    };
    Some(next(k))
}

fn next(mut k: Paused) -> Outcome {
    match k.pending.pop() {
        Some((key, capacity)) => {
            k.asking = capacity;
            Outcome::Store {
                op: StoreOp::Take {
                    key,
                    capacity,
                    period: PERIOD,
                },
                paused: PausedAt::RateLimit(k).into(),
            }
        }
        None => unreachable_outcome(),
    }
}

fn unreachable_outcome() -> Outcome {
    Outcome::Respond(respond::oauth_error(
        500,
        "server_error",
        "rate limiter state lost",
    ))
}

pub(super) fn resume(gate: &Gate, paused: Paused, reply: Reply, env: &mut Env) -> Outcome {
    match reply {
        // A store that cannot answer lets the request through: a limiter fails open.
        Reply::Store(true) | Reply::StoreFailed if !paused.pending.is_empty() => next(paused),
        Reply::Store(true) | Reply::StoreFailed => {
            let headers: Vec<(&str, &str)> = paused
                .headers
                .iter()
                .map(|(a, b)| (a.as_str(), b.as_str()))
                .collect();
            let req = Request {
                method: &paused.method,
                path: &paused.path,
                headers: &headers,
                body: &paused.body,
                client_address: paused.client_address.as_deref(),
            };
            dispatch(gate, paused.route, &req, env)
        }
        Reply::Store(false) => {
            let retry = PERIOD.div_ceil(u64::from(paused.asking.max(1)));
            let mut r = if paused.route == Route::Authorize {
                respond::error_page(
                    429,
                    "temporarily_unavailable",
                    "too many requests; try again shortly",
                )
            } else {
                respond::with_cors(respond::oauth_error(
                    429,
                    "temporarily_unavailable",
                    "too many requests; try again shortly",
                ))
            };
            r.headers.push(("retry-after".into(), retry.to_string()));
            r.reason = Some("rate_limited");
            Outcome::Respond(r)
        }
        _ => unreachable_outcome(),
    }
}
