//! The IdP's JWKS in Envoy: fetched once per Envoy process and shared by every VM through
//! shared data. The rules (when to refresh, the refetch rate limit, how long a stale set
//! serves) are the core's ([`mcpgate_filter::host::jwks`]); this module does the I/O:
//!
//! * `mcpgate.jwks` holds `<fetched_at>\n<raw document>` of the last good fetch. Each VM keeps
//!   the parsed set and re-parses only when the record's CAS value changes.
//! * `mcpgate.jwks.lease` holds `<lease_until_ms> <last_attempt_s>`: a VM fetches only after
//!   winning this lease by CAS (single flight across workers), and only when the last attempt
//!   (by any VM) is old enough. It is created at configure time so the CAS is meaningful.
//! * Periodic refreshes run from `on_tick`; tokens naming an unknown `kid` ask for a refetch.

use mcpgate_filter::host::jwks::{usable_document, KeySetCopy, Trigger};
use mcpgate_filter::host::keys::JwksTimes;
use mcpgate_filter::HttpResponse;

use crate::hostcalls::{Host, SharedError};
use crate::metrics::{Counter, Metrics};

const DOC_KEY: &str = "mcpgate.jwks";
const LEASE_KEY: &str = "mcpgate.jwks.lease";

/// This VM's view of the shared key set.
#[derive(Debug, Default)]
pub struct Cache {
    /// The parsed set and its age (the core's rules apply to it).
    pub copy: KeySetCopy,
    /// CAS value of the shared record last parsed.
    cas: Option<u32>,
}

impl Cache {
    /// Reads the shared record; `true` when this VM now holds a different document.
    pub fn sync(&mut self, host: &dyn Host) -> bool {
        let (data, cas) = host.shared_get(DOC_KEY);
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
        match usable_document(200, doc) {
            Some(set) => {
                self.copy.install(set, fetched_at);
                true
            }
            None => false,
        }
    }

    /// Tries to become the one fetcher for `trigger`: `Some(previous last attempt)` when a
    /// fetch is due, allowed by the rate limit every VM shares, and this VM won the lease.
    pub fn try_lease(
        &self,
        host: &dyn Host,
        trigger: Trigger,
        times: &JwksTimes,
        idp_timeout_ms: u64,
    ) -> Option<u64> {
        let now_ms = host.now_ms();
        let now = now_ms / 1000;
        if !self.copy.wants_refresh(trigger, now, times) {
            return None;
        }
        for _ in 0..8 {
            let (data, cas) = host.shared_get(LEASE_KEY);
            let Some(cas) = cas else {
                init_lease(host);
                continue;
            };
            let (lease_until, last_attempt) = parse_lease(data.as_deref().unwrap_or_default());
            if lease_until > now_ms
                || !self
                    .copy
                    .may_attempt(trigger, Some(last_attempt), now, times)
            {
                return None;
            }
            let until = now_ms.saturating_add(idp_timeout_ms).saturating_add(1000);
            let value = format!("{until} {now}");
            match host.shared_set(LEASE_KEY, value.as_bytes(), Some(cas)) {
                Ok(()) => return Some(last_attempt),
                Err(SharedError::CasMismatch) => continue,
                Err(SharedError::Failed) => return None,
            }
        }
        None
    }

    /// Gives the lease back. `attempted`: whether a fetch was actually sent (else the rate
    /// limit is not charged: the previous attempt's time is restored).
    pub fn release(&self, host: &dyn Host, attempted: bool, previous_attempt: Option<u64>) {
        for _ in 0..8 {
            let (data, Some(cas)) = host.shared_get(LEASE_KEY) else {
                return;
            };
            let (_, last_attempt) = parse_lease(data.as_deref().unwrap_or_default());
            let last_attempt = if attempted {
                last_attempt
            } else {
                previous_attempt.unwrap_or(0)
            };
            let value = format!("0 {last_attempt}");
            match host.shared_set(LEASE_KEY, value.as_bytes(), Some(cas)) {
                Err(SharedError::CasMismatch) => continue,
                _ => return,
            }
        }
    }

    /// Handles the JWKS response: stores a good document for every VM and loads it here.
    /// Always releases the lease. `true` when a new set was stored.
    pub fn complete(&mut self, host: &dyn Host, resp: &HttpResponse, metrics: &Metrics) -> bool {
        let now = host.now_ms() / 1000;
        let stored = if usable_document(resp.status, &resp.body).is_some() {
            let mut record = format!("{now}\n").into_bytes();
            record.extend_from_slice(&resp.body);
            let stored = host.shared_set(DOC_KEY, &record, None).is_ok();
            metrics.inc(Counter::JwksFetchOk);
            log::info!(
                "mcpgate: fetched the IdP's JWKS ({} bytes)",
                resp.body.len()
            );
            self.sync(host);
            stored
        } else {
            metrics.inc(Counter::JwksFetchFailed);
            log::warn!(
                "mcpgate: JWKS fetch failed (status {}); keeping the last good key set",
                resp.status
            );
            false
        };
        self.release(host, true, None);
        stored
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
pub fn init_lease(host: &dyn Host) {
    if let (None, None) = host.shared_get(LEASE_KEY) {
        let _ = host.shared_set(LEASE_KEY, b"0 0", None);
    }
}
