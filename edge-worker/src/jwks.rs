//! The IdP's JWKS in a Worker: one parsed copy per isolate, shared between isolates of a
//! location through the Cache API. The rules (when to refresh, the rate limit of refetches,
//! how long a stale set serves) are the core's ([`mcpgate_filter::host::jwks`]); this module
//! does the I/O:
//!
//! * periodic refreshes run in the background (`waitUntil`) of the request that notices the
//!   set is old, after that request was served with the current keys;
//! * one fetch at a time per isolate (single flight: concurrent requests wait for it);
//! * the Cache API copy carries its fetch time (`x-mcpgate-fetched-at`) and lives
//!   `jwks_max_stale_seconds`; an isolate loads it instead of calling the IdP when it is newer
//!   than its own copy and fresh enough.

use std::rc::Rc;

use futures::future::{FutureExt as _, LocalBoxFuture, Shared};
use mcpgate_filter::host::jwks::{usable_document, KeySetCopy};
use worker::{Cache as EdgeCache, Headers, Response};

pub use mcpgate_filter::host::jwks::Trigger;

use crate::idp;
use crate::isolate::{now_secs, Isolate};

const FETCHED_AT: &str = "x-mcpgate-fetched-at";

/// This isolate's key set and its fetch state.
#[derive(Default)]
pub struct Cache {
    pub copy: KeySetCopy,
    last_attempt: Option<u64>,
    in_flight: Option<Shared<LocalBoxFuture<'static, ()>>>,
}

/// Whether a periodic refresh should start now (keys present but old, not rate limited, none
/// under way): the caller runs [`refresh`] in the background.
pub fn periodic_due(iso: &Isolate) -> bool {
    let c = iso.jwks.borrow();
    c.copy.is_loaded()
        && c.in_flight.is_none()
        && c.copy.due(
            Trigger::Periodic,
            c.last_attempt,
            now_secs(),
            &iso.host.common.jwks,
        )
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
            if !c
                .copy
                .due(trigger, c.last_attempt, now, &iso.host.common.jwks)
            {
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
    let ours = iso.jwks.borrow().copy.fetched_at();
    let have_keys = iso.jwks.borrow().copy.is_loaded();
    if cached_at <= ours && have_keys {
        return false;
    }
    let Ok(body) = resp.bytes().await else {
        return false;
    };
    let Some(set) = usable_document(200, &body) else {
        return false;
    };
    iso.jwks.borrow_mut().copy.install(set, cached_at);
    let fresh = now_secs().saturating_sub(cached_at) < iso.host.common.jwks.refresh;
    match trigger {
        // Another isolate refetched after this one did: most likely for the same new key.
        Trigger::UnknownKid if have_keys => cached_at > ours,
        _ => fresh,
    }
}

async fn from_idp(iso: &Isolate) {
    let req = iso.gate.jwks_request();
    let resp = idp::send(&req, iso.host.common.idp_timeout_ms).await;
    let Some(set) = usable_document(resp.status, &resp.body) else {
        worker::console_warn!(
            "mcpgate: JWKS fetch failed (status {}); keeping the last good key set",
            resp.status
        );
        return;
    };
    let now = now_secs();
    iso.jwks.borrow_mut().copy.install(set, now);
    worker::console_log!(
        "mcpgate: fetched the IdP's JWKS ({} bytes)",
        resp.body.len()
    );
    let headers = Headers::new();
    let _ = headers.set("content-type", "application/json");
    let _ = headers.set(FETCHED_AT, &now.to_string());
    let _ = headers.set(
        "cache-control",
        &format!("max-age={}", iso.host.common.jwks.max_stale),
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
