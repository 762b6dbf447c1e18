//! The IdP's JWKS, fetched once per Envoy process and shared by every VM through shared data.
//!
//! * `mcpgate.jwks` holds `<fetched_at>\n<raw document>` of the last good fetch. Each VM keeps
//!   the parsed [`KeySet`] and re-parses only when the record's CAS value changes.
//! * `mcpgate.jwks.lease` holds `<lease_until_ms> <last_attempt_s>`: a VM fetches only after
//!   winning this lease by CAS (single flight across workers), and only when the last attempt
//!   is old enough (rate limit). It is created at configure time so the CAS is meaningful.
//! * Refreshed from `on_tick` when older than `jwks_refresh_seconds`, on demand for unknown
//!   `kid`s (at most every `jwks_min_refetch_seconds`); after failed refreshes the last good
//!   set is served until `jwks_max_stale_seconds`.

use std::rc::Rc;

use mcpgate_filter::jwt::KeySet;
use mcpgate_filter::HttpResponse;
use proxy_wasm::hostcalls;
use proxy_wasm::types::Status;

use crate::host_config::HostConfig;
use crate::metrics::{Metrics, JWKS_FETCH_FAILED, JWKS_FETCH_OK};

const DOC_KEY: &str = "mcpgate.jwks";
const LEASE_KEY: &str = "mcpgate.jwks.lease";
/// Retry period while no key set was ever fetched.
const EMPTY_RETRY_SECONDS: u64 = 2;

/// This VM's view of the shared key set.
#[derive(Debug, Default)]
pub struct Cache {
    /// CAS value of the shared record last parsed.
    cas: Option<u32>,
    keys: Option<Rc<KeySet>>,
    fetched_at: u64,
    /// Incremented whenever a different key set is loaded.
    generation: u64,
}

/// Why a refresh is wanted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// Periodic: only when the set is older than `jwks_refresh_seconds` (or missing).
    Tick,
    /// A token names an unknown key: rate limited by `jwks_min_refetch_seconds`.
    UnknownKid,
}

impl Cache {
    /// The usable key set (`None` when never fetched or older than `jwks_max_stale_seconds`).
    pub fn current(&self, now: u64, host: &HostConfig) -> Option<Rc<KeySet>> {
        if now.saturating_sub(self.fetched_at) > host.jwks_max_stale_seconds {
            return None;
        }
        self.keys.clone()
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Reads the shared record; `true` when this VM now holds a different document.
    pub fn sync(&mut self) -> bool {
        let Ok((data, cas)) = hostcalls::get_shared_data(DOC_KEY) else {
            return false;
        };
        if cas.is_none() || cas == self.cas {
            return false;
        }
        self.cas = cas;
        let data = data.unwrap_or_default();
        let Some(nl) = data.iter().position(|b| *b == b'\n') else {
            return false;
        };
        let fetched_at = data
            .get(..nl)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| h.parse::<u64>().ok());
        let (Some(fetched_at), Some(doc)) = (fetched_at, data.get(nl + 1..)) else {
            return false;
        };
        match KeySet::from_json(doc) {
            Ok(set) => {
                self.keys = Some(Rc::new(set));
                self.fetched_at = fetched_at;
                self.generation = self.generation.wrapping_add(1);
                true
            }
            Err(_) => false,
        }
    }

    /// Whether a refresh is due for `trigger` (before the lease and rate limit are checked).
    pub fn wants_refresh(&self, trigger: Trigger, now: u64, host: &HostConfig) -> bool {
        match trigger {
            Trigger::UnknownKid => true,
            Trigger::Tick => {
                self.keys.is_none()
                    || now.saturating_sub(self.fetched_at) >= host.jwks_refresh_seconds
            }
        }
    }

    /// Minimum seconds between two attempts for `trigger`.
    fn min_interval(&self, trigger: Trigger, host: &HostConfig) -> u64 {
        let base = match trigger {
            Trigger::UnknownKid => host.jwks_min_refetch_seconds,
            // After a failed periodic refresh, retry at the unknown-kid pace, not every tick.
            Trigger::Tick => host
                .jwks_min_refetch_seconds
                .clamp(1, host.jwks_refresh_seconds),
        };
        if self.keys.is_none() {
            base.min(EMPTY_RETRY_SECONDS)
        } else {
            base
        }
    }

    /// Tries to become the one fetcher: `Some(previous last attempt)` when this VM won the
    /// lease and must fetch now.
    pub fn try_lease(&self, trigger: Trigger, now_ms: u64, host: &HostConfig) -> Option<u64> {
        let now = now_ms / 1000;
        let min_interval = self.min_interval(trigger, host);
        for _ in 0..8 {
            let Ok((data, cas)) = hostcalls::get_shared_data(LEASE_KEY) else {
                return None;
            };
            let Some(cas) = cas else {
                init_lease();
                continue;
            };
            let (lease_until, last_attempt) = parse_lease(data.as_deref().unwrap_or_default());
            if lease_until > now_ms || now < last_attempt.saturating_add(min_interval) {
                return None;
            }
            let until = now_ms
                .saturating_add(host.idp_timeout_ms)
                .saturating_add(1000);
            let value = format!("{until} {now}");
            match hostcalls::set_shared_data(LEASE_KEY, Some(value.as_bytes()), Some(cas)) {
                Ok(()) => return Some(last_attempt),
                Err(Status::CasMismatch) => continue,
                Err(_) => return None,
            }
        }
        None
    }

    /// Gives the lease back. `attempted`: whether a fetch was actually sent (else the rate
    /// limit is not charged).
    pub fn release(&self, attempted: bool, previous_attempt: Option<u64>) {
        for _ in 0..8 {
            let Ok((data, Some(cas))) = hostcalls::get_shared_data(LEASE_KEY) else {
                return;
            };
            let (_, last_attempt) = parse_lease(data.as_deref().unwrap_or_default());
            let last_attempt = if attempted {
                last_attempt
            } else {
                previous_attempt.unwrap_or(0)
            };
            let value = format!("0 {last_attempt}");
            match hostcalls::set_shared_data(LEASE_KEY, Some(value.as_bytes()), Some(cas)) {
                Err(Status::CasMismatch) => continue,
                _ => return,
            }
        }
    }

    /// Handles the JWKS response: stores a good document for every VM and loads it here.
    /// Always releases the lease. `true` when a new set was stored.
    pub fn complete(&mut self, resp: &HttpResponse, now: u64, metrics: &Metrics) -> bool {
        let good =
            resp.status == 200 && KeySet::from_json(&resp.body).is_ok_and(|set| !set.is_empty());
        if good {
            let mut record = format!("{now}\n").into_bytes();
            record.extend_from_slice(&resp.body);
            let stored = hostcalls::set_shared_data(DOC_KEY, Some(&record), None).is_ok();
            metrics.inc(JWKS_FETCH_OK);
            log::info!(
                "mcpgate: fetched the IdP's JWKS ({} bytes)",
                resp.body.len()
            );
            self.sync();
            self.release(true, None);
            stored
        } else {
            metrics.inc(JWKS_FETCH_FAILED);
            log::warn!(
                "mcpgate: JWKS fetch failed (status {}); keeping the last good key set",
                resp.status
            );
            self.release(true, None);
            false
        }
    }
}

fn parse_lease(data: &[u8]) -> (u64, u64) {
    let text = String::from_utf8_lossy(data);
    let mut it = text
        .split(' ')
        .map(|s| s.trim().parse::<u64>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// Creates the lease record if absent (configure time).
pub fn init_lease() {
    if let Ok((None, None)) = hostcalls::get_shared_data(LEASE_KEY) {
        let _ = hostcalls::set_shared_data(LEASE_KEY, Some(b"0 0"), None);
    }
}
