//! Revocations replicated into each Envoy process, so the MCP path never waits on DynamoDB:
//! every `Revoke` also writes an item to the table's revocation feed (partition
//! `revocations`, sorted by the revoking process's clock); each process polls the feed and
//! records what it finds in its shared-data store, where every VM's revocation check reads
//! it (one slot, as with `store: shared_data`). The revoking process records its own at
//! once.
//!
//! One VM per process polls: it wins the poll record (`mcpgate.revocations.poll`,
//! `<lease_until_ms> <next_due_ms> <loaded> <page>`) by CAS from `on_tick`. After start it
//! loads the whole feed (page by page, each page's revocations applied as it comes), then
//! every `revocation_poll_ms` it asks for revocations stamped within the last
//! [`OVERLAP_MS`] — a window much wider than the poll interval, so a revocation written late
//! or by a process whose clock is behind is still seen (applying one twice changes nothing).
//!
//! Staleness: a revocation made at another process is enforced here within
//! `revocation_poll_ms` + one tick + the query's round trip (1 s + 0.25 s + a few ms by
//! default; the e2e test measures it). While DynamoDB cannot be reached the replica keeps
//! what it has and the polls retry.

use super::requests::FeedPage;
use crate::hostcalls::{Host, SharedError};

const RECORD: &str = "mcpgate.revocations.poll";
/// How far back each incremental poll looks (milliseconds).
pub const OVERLAP_MS: u64 = 60_000;

/// What the poller VM asks for next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Revocations stamped after this instant (ms).
    pub from_ms: u64,
    /// The page to continue from (a full load's `LastEvaluatedKey`).
    pub start: Option<String>,
    /// Whether this is part of the full load after start.
    pub full: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct State {
    lease_until_ms: u64,
    next_due_ms: u64,
    loaded: bool,
    page: Option<String>,
}

impl State {
    fn parse(data: &[u8]) -> Self {
        let text = String::from_utf8_lossy(data);
        let mut it = text.split(' ');
        let mut num = || {
            it.next()
                .and_then(|p| p.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        let lease_until_ms = num();
        let next_due_ms = num();
        let loaded = num() == 1;
        let page = text
            .split(' ')
            .nth(3)
            .map(str::trim)
            .filter(|p| !p.is_empty() && *p != "-")
            .map(str::to_string);
        Self {
            lease_until_ms,
            next_due_ms,
            loaded,
            page,
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        format!(
            "{} {} {} {}",
            self.lease_until_ms,
            self.next_due_ms,
            u8::from(self.loaded),
            self.page.as_deref().unwrap_or("-")
        )
        .into_bytes()
    }
}

/// Creates the poll record if absent (configure time).
pub fn init(host: &dyn Host) {
    if let (None, None) = host.shared_get(RECORD) {
        let _ = host.shared_set(RECORD, &State::default().to_bytes(), None);
    }
}

/// Rewrites the poll record with `change` under CAS; `None` when it could not.
fn update<T>(host: &dyn Host, change: impl Fn(&mut State) -> Option<T>) -> Option<T> {
    for _ in 0..8 {
        let (data, cas) = host.shared_get(RECORD);
        let Some(cas) = cas else {
            init(host);
            continue;
        };
        let mut state = State::parse(data.as_deref().unwrap_or_default());
        let answer = change(&mut state)?;
        match host.shared_set(RECORD, &state.to_bytes(), Some(cas)) {
            Ok(()) => return Some(answer),
            Err(SharedError::CasMismatch) => continue,
            Err(SharedError::Failed) => return None,
        }
    }
    None
}

/// When a poll is due and this VM wins it: what to ask for. The lease lasts two call
/// timeouts, so a poll whose answer never comes is taken over.
pub fn take(host: &dyn Host, timeout_ms: u64) -> Option<Plan> {
    let now_ms = host.now_ms();
    update(host, |s| {
        if s.lease_until_ms > now_ms || s.next_due_ms > now_ms {
            return None;
        }
        s.lease_until_ms = now_ms.saturating_add(timeout_ms.saturating_mul(2));
        Some(plan(s, now_ms))
    })
}

fn plan(s: &State, now_ms: u64) -> Plan {
    if s.loaded {
        Plan {
            from_ms: now_ms.saturating_sub(OVERLAP_MS),
            start: s.page.clone(),
            full: false,
        }
    } else {
        Plan {
            from_ms: 0,
            start: s.page.clone(),
            full: true,
        }
    }
}

/// Applies one answer of the feed (`None`: no usable answer) and decides what comes next:
/// another page to ask for at once (still holding the lease), or nothing until the next
/// poll is due. Returns the plan for the next page and how many revocations were new here.
pub fn complete(
    host: &dyn Host,
    plan: &Plan,
    page: Option<FeedPage>,
    poll_ms: u64,
    timeout_ms: u64,
) -> (Option<Plan>, usize) {
    let now_ms = host.now_ms();
    let now = now_ms / 1000;
    let mut new = 0;
    let mut complete = page.is_some();
    if let Some(p) = &page {
        for (id, exp) in &p.revoked {
            match host.store_revoked(id, *exp, now) {
                Some(true) => new += 1,
                Some(false) => {}
                // Not recorded: ask for this page again next time.
                None => complete = false,
            }
        }
    }
    let next = update(host, |s| {
        match (&page, complete) {
            (Some(p), true) if p.next.is_some() => {
                s.page.clone_from(&p.next);
                s.lease_until_ms = now_ms.saturating_add(timeout_ms.saturating_mul(2));
                return Some(Some(Plan {
                    start: p.next.clone(),
                    ..plan.clone()
                }));
            }
            (Some(_), true) => {
                s.page = None;
                s.loaded = s.loaded || plan.full;
            }
            // Failed: the same page (or poll) again at the next due time.
            _ => {}
        }
        s.lease_until_ms = 0;
        s.next_due_ms = now_ms.saturating_add(poll_ms);
        Some(None)
    })
    .flatten();
    (next, new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_poll_record_round_trips() {
        let s = State {
            lease_until_ms: 5,
            next_due_ms: 7,
            loaded: true,
            page: Some("0000000000000001#ab".into()),
        };
        assert_eq!(State::parse(&s.to_bytes()), s);
        assert_eq!(State::parse(b"0 0 0 -"), State::default());
        assert_eq!(State::parse(b"garbage"), State::default());
    }
}
