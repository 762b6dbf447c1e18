//! Keeping a host's copy of the IdP's key set fresh, as pure state and rules; the host does
//! only the I/O (Envoy: a shared-data record, a CAS lease for single flight across workers,
//! refreshes from `on_tick`; the Worker: the Cache API, single flight per isolate, refreshes
//! in the background of the request that notices the set is old).
//!
//! * A set is usable until it is older than `jwks_max_stale_seconds` (then the core fails
//!   closed with 503).
//! * A periodic refresh is due when the set is older than `jwks_refresh_seconds`, or missing.
//! * A token naming an unknown `kid` always wants a refetch, rate limited to one per
//!   `jwks_min_refetch_seconds`; a failed periodic refresh is retried at that pace too (at
//!   least 1 s, at most the refresh period); while no set was ever loaded, every 2 s at most.

use alloc::rc::Rc;

use crate::host::keys::JwksTimes;
use crate::jwt::KeySet;

/// Retry period while no key set was ever loaded.
pub const EMPTY_RETRY_SECONDS: u64 = 2;

/// Why a refresh is wanted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// Only when the set is older than `jwks_refresh_seconds` (or missing).
    Periodic,
    /// A token names an unknown key.
    UnknownKid,
}

/// One VM's or isolate's copy of the IdP's key set.
#[derive(Clone, Debug, Default)]
pub struct KeySetCopy {
    keys: Option<Rc<KeySet>>,
    fetched_at: u64,
    /// Incremented whenever a different key set is loaded: caches of tokens verified under
    /// the previous one are emptied (see [`crate::host::env::VerifiedTokens`]).
    generation: u64,
}

impl KeySetCopy {
    /// The usable key set: `None` when never loaded or older than `jwks_max_stale_seconds`.
    pub fn current(&self, now: u64, times: &JwksTimes) -> Option<Rc<KeySet>> {
        if now.saturating_sub(self.fetched_at) > times.max_stale {
            return None;
        }
        self.keys.clone()
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn fetched_at(&self) -> u64 {
        self.fetched_at
    }

    pub fn is_loaded(&self) -> bool {
        self.keys.is_some()
    }

    /// Loads a set fetched at `fetched_at` (by this host or another VM / isolate).
    pub fn install(&mut self, set: KeySet, fetched_at: u64) {
        self.keys = Some(Rc::new(set));
        self.fetched_at = fetched_at;
        self.generation = self.generation.wrapping_add(1);
    }

    /// Whether a refresh is wanted for `trigger` (before rate limit and single flight).
    pub fn wants_refresh(&self, trigger: Trigger, now: u64, times: &JwksTimes) -> bool {
        match trigger {
            Trigger::UnknownKid => true,
            Trigger::Periodic => {
                self.keys.is_none() || now.saturating_sub(self.fetched_at) >= times.refresh
            }
        }
    }

    /// Minimum seconds between two fetch attempts for `trigger`.
    pub fn min_interval(&self, trigger: Trigger, times: &JwksTimes) -> u64 {
        let base = match trigger {
            Trigger::UnknownKid => times.min_refetch,
            // After a failed periodic refresh, retry at the unknown-kid pace, not every tick.
            Trigger::Periodic => times.min_refetch.clamp(1, times.refresh),
        };
        if self.keys.is_none() {
            base.min(EMPTY_RETRY_SECONDS)
        } else {
            base
        }
    }

    /// Whether a fetch for `trigger` may start now, given the last attempt (by anyone who
    /// shares the rate limit).
    pub fn may_attempt(
        &self,
        trigger: Trigger,
        last_attempt: Option<u64>,
        now: u64,
        times: &JwksTimes,
    ) -> bool {
        let interval = self.min_interval(trigger, times);
        last_attempt.is_none_or(|last| now >= last.saturating_add(interval))
    }

    /// Whether a fetch for `trigger` is wanted and allowed now.
    pub fn due(
        &self,
        trigger: Trigger,
        last_attempt: Option<u64>,
        now: u64,
        times: &JwksTimes,
    ) -> bool {
        self.wants_refresh(trigger, now, times)
            && self.may_attempt(trigger, last_attempt, now, times)
    }
}

/// A fetched key-set document worth keeping: a 200 with at least one usable key.
pub fn usable_document(status: u16, body: &[u8]) -> Option<KeySet> {
    if status != 200 {
        return None;
    }
    KeySet::from_json(body).ok().filter(|set| !set.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: JwksTimes = JwksTimes {
        refresh: 600,
        max_stale: 3600,
        min_refetch: 30,
    };

    fn loaded(at: u64) -> KeySetCopy {
        let mut c = KeySetCopy::default();
        c.install(KeySet::default(), at);
        c
    }

    #[test]
    fn usable_until_max_stale() {
        let c = loaded(1000);
        assert!(c.current(1000 + 3600, &T).is_some());
        assert!(c.current(1000 + 3601, &T).is_none());
        assert!(KeySetCopy::default().current(0, &T).is_none());
    }

    #[test]
    fn periodic_refresh_when_old_or_missing() {
        assert!(KeySetCopy::default().wants_refresh(Trigger::Periodic, 0, &T));
        let c = loaded(1000);
        assert!(!c.wants_refresh(Trigger::Periodic, 1599, &T));
        assert!(c.wants_refresh(Trigger::Periodic, 1600, &T));
        assert!(c.wants_refresh(Trigger::UnknownKid, 1001, &T));
    }

    #[test]
    fn attempts_are_rate_limited_per_trigger() {
        let c = loaded(1000);
        assert!(c.may_attempt(Trigger::UnknownKid, None, 1000, &T));
        assert!(!c.may_attempt(Trigger::UnknownKid, Some(1000), 1029, &T));
        assert!(c.may_attempt(Trigger::UnknownKid, Some(1000), 1030, &T));
        // Periodic retries at the refetch pace, clamped to at least 1 s and at most refresh.
        let fast = JwksTimes {
            min_refetch: 0,
            ..T
        };
        assert_eq!(c.min_interval(Trigger::Periodic, &fast), 1);
        assert_eq!(c.min_interval(Trigger::UnknownKid, &fast), 0);
        let slow = JwksTimes {
            refresh: 10,
            min_refetch: 60,
            ..T
        };
        assert_eq!(c.min_interval(Trigger::Periodic, &slow), 10);
        // Without any set, at most every 2 s.
        let empty = KeySetCopy::default();
        assert_eq!(
            empty.min_interval(Trigger::UnknownKid, &T),
            EMPTY_RETRY_SECONDS
        );
        assert_eq!(
            empty.min_interval(Trigger::Periodic, &T),
            EMPTY_RETRY_SECONDS
        );
        assert!(empty.due(Trigger::Periodic, Some(10), 12, &T));
        assert!(!c.due(Trigger::Periodic, None, 1001, &T));
    }

    #[test]
    fn every_install_is_a_new_generation() {
        let mut c = loaded(1);
        let g = c.generation();
        c.install(KeySet::default(), 2);
        assert_eq!(c.generation(), g + 1);
        assert_eq!(c.fetched_at(), 2);
    }

    #[test]
    fn only_200s_with_keys_are_kept() {
        let doc = br#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
        assert!(usable_document(200, doc).is_some());
        assert!(usable_document(500, doc).is_none());
        assert!(usable_document(200, br#"{"keys":[]}"#).is_none());
        assert!(usable_document(200, b"<html>").is_none());
    }
}
