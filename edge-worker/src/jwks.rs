//! The IdP's JWKS: one parsed copy per isolate, shared between isolates of a location through
//! the Cache API, with the same rules as the Envoy host:
//!
//! * refreshed when older than `jwks_refresh_seconds` (in the background, after the request
//!   that noticed it was served with the current keys);
//! * refetched on demand when a token names an unknown `kid`, at most once per
//!   `jwks_min_refetch_seconds` (2 s while no key set was ever loaded);
//! * one fetch at a time per isolate (single flight: concurrent requests wait for it);
//! * after failed refreshes the last good set is served until `jwks_max_stale_seconds`, then
//!   none: the core fails closed (503).
//!
//! The Cache API copy carries its fetch time (`x-mcpgate-fetched-at`) and lives
//! `jwks_max_stale_seconds`; an isolate loads it instead of calling the IdP when it is newer
//! than its own copy and fresh enough.

use std::rc::Rc;

use futures::future::{FutureExt as _, LocalBoxFuture, Shared};
use mcpgate_filter::jwt::KeySet;
use worker::{Cache as EdgeCache, Headers, Response};

use crate::config::HostConfig;
use crate::idp;
use crate::isolate::{now_secs, Isolate};

/// Retry period while no key set was ever loaded.
const EMPTY_RETRY_SECONDS: u64 = 2;
const FETCHED_AT: &str = "x-mcpgate-fetched-at";

/// Why a refresh is wanted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// Only when the set is older than `jwks_refresh_seconds` (or missing).
    Periodic,
    /// A token names an unknown key.
    UnknownKid,
}

#[derive(Default)]
pub struct Cache {
    keys: Option<Rc<KeySet>>,
    fetched_at: u64,
    /// Incremented whenever a different key set is loaded.
    generation: u64,
    last_attempt: Option<u64>,
    in_flight: Option<Shared<LocalBoxFuture<'static, ()>>>,
}

impl Cache {
    /// The usable key set (`None` when never loaded or older than `jwks_max_stale_seconds`).
    pub fn current(&self, now: u64, host: &HostConfig) -> Option<Rc<KeySet>> {
        if now.saturating_sub(self.fetched_at) > host.jwks_max_stale_seconds {
            return None;
        }
        self.keys.clone()
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    fn wants_refresh(&self, trigger: Trigger, now: u64, host: &HostConfig) -> bool {
        match trigger {
            Trigger::UnknownKid => true,
            Trigger::Periodic => {
                self.keys.is_none()
                    || now.saturating_sub(self.fetched_at) >= host.jwks_refresh_seconds
            }
        }
    }

    fn allowed(&self, trigger: Trigger, now: u64, host: &HostConfig) -> bool {
        let base = match trigger {
            Trigger::UnknownKid => host.jwks_min_refetch_seconds,
            // After a failed periodic refresh, retry at the unknown-kid pace.
            Trigger::Periodic => host
                .jwks_min_refetch_seconds
                .clamp(1, host.jwks_refresh_seconds),
        };
        let interval = if self.keys.is_none() {
            base.min(EMPTY_RETRY_SECONDS)
        } else {
            base
        };
        self.last_attempt
            .is_none_or(|last| now >= last.saturating_add(interval))
    }

    fn install(&mut self, set: KeySet, fetched_at: u64) {
        self.keys = Some(Rc::new(set));
        self.fetched_at = fetched_at;
        self.generation = self.generation.wrapping_add(1);
    }
}

/// Whether a periodic refresh should start now (keys present but old, not rate limited, none
/// under way): the caller runs [`refresh`] in the background.
pub fn periodic_due(iso: &Isolate) -> bool {
    let c = iso.jwks.borrow();
    let now = now_secs();
    c.keys.is_some()
        && c.in_flight.is_none()
        && c.wants_refresh(Trigger::Periodic, now, &iso.host)
        && c.allowed(Trigger::Periodic, now, &iso.host)
}

/// Refreshes the key set when due for `trigger` and not rate limited; joins a refresh already
/// under way. Never fails: on error the previous set stays.
pub async fn refresh(iso: Rc<Isolate>, trigger: Trigger) {
    let fut = {
        let mut c = iso.jwks.borrow_mut();
        if let Some(f) = &c.in_flight {
            f.clone()
        } else {
            let now = now_secs();
            if !c.wants_refresh(trigger, now, &iso.host) || !c.allowed(trigger, now, &iso.host) {
                return;
            }
            c.last_attempt = Some(now);
            let f = fetch_and_install(iso.clone(), trigger)
                .boxed_local()
                .shared();
            c.in_flight = Some(f.clone());
            f
        }
    };
    fut.await;
}

async fn fetch_and_install(iso: Rc<Isolate>, trigger: Trigger) {
    let done = from_edge_cache(&iso, trigger).await;
    if !done {
        from_idp(&iso).await;
    }
    iso.jwks.borrow_mut().in_flight = None;
}

fn good(body: &[u8]) -> Option<KeySet> {
    KeySet::from_json(body).ok().filter(|set| !set.is_empty())
}

/// Loads the location's cached copy if it is newer than this isolate's. `true` when that
/// satisfies `trigger` (no IdP call needed).
async fn from_edge_cache(iso: &Isolate, trigger: Trigger) -> bool {
    let url = iso.gate.config().upstream.jwks_uri.as_str();
    let Ok(Some(mut resp)) = EdgeCache::default().get(url, false).await else {
        return false;
    };
    let cached_at = resp
        .headers()
        .get(FETCHED_AT)
        .ok()
        .flatten()
        .and_then(|v| v.parse::<u64>().ok());
    let Some(cached_at) = cached_at else {
        return false;
    };
    let ours = iso.jwks.borrow().fetched_at;
    let have_keys = iso.jwks.borrow().keys.is_some();
    if cached_at <= ours && have_keys {
        return false;
    }
    let Ok(body) = resp.bytes().await else {
        return false;
    };
    let Some(set) = good(&body) else {
        return false;
    };
    iso.jwks.borrow_mut().install(set, cached_at);
    let fresh = now_secs().saturating_sub(cached_at) < iso.host.jwks_refresh_seconds;
    match trigger {
        // Another isolate refetched after this one did: most likely for the same new key.
        Trigger::UnknownKid if have_keys => cached_at > ours,
        _ => fresh,
    }
}

async fn from_idp(iso: &Isolate) {
    let req = iso.gate.jwks_request();
    let resp = idp::send(&req, iso.host.idp_timeout_ms).await;
    let set = (resp.status == 200).then(|| good(&resp.body)).flatten();
    let Some(set) = set else {
        worker::console_warn!(
            "mcpgate: JWKS fetch failed (status {}); keeping the last good key set",
            resp.status
        );
        return;
    };
    let now = now_secs();
    iso.jwks.borrow_mut().install(set, now);
    worker::console_log!(
        "mcpgate: fetched the IdP's JWKS ({} bytes)",
        resp.body.len()
    );
    let headers = Headers::new();
    let _ = headers.set("content-type", "application/json");
    let _ = headers.set(FETCHED_AT, &now.to_string());
    let _ = headers.set(
        "cache-control",
        &format!("max-age={}", iso.host.jwks_max_stale_seconds),
    );
    if let Ok(copy) = Response::from_bytes(resp.body) {
        if let Err(e) = EdgeCache::default()
            .put(req.url.as_str(), copy.with_headers(headers))
            .await
        {
            worker::console_warn!("mcpgate: caching the JWKS failed: {e}");
        }
    }
}
