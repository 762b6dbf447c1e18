//! The optional store for what must be used once or revoked (authorization codes, refresh
//! tokens, revocations). The core asks for it through [`crate::Outcome::Store`]; hosts with a
//! synchronous store implement [`Store`] and answer with [`perform`], hosts with an
//! asynchronous one (a Durable Object) carry the same [`StoreOp`] there.
//!
//! Without a store, codes are single-use only within their 5-minute lifetime's honesty:
//! replay is bounded by expiry, refresh-token reuse is not detected and revocation only
//! reaches the IdP.

use alloc::collections::BTreeMap;
use alloc::string::String;

use crate::http::StoreOp;

/// Keys with an expiry; expired keys count as absent.
pub trait Store {
    /// Creates `key` (expiring at `expires_at`) unless a live one exists; true when created.
    fn put_if_absent(&mut self, key: &str, expires_at: u64, now: u64) -> bool;
    /// True when a live `key` exists.
    fn exists(&mut self, key: &str, now: u64) -> bool;
}

/// Carries out `op` on a synchronous store; the result is the `Reply::Store` value.
pub fn perform(store: &mut dyn Store, op: &StoreOp, now: u64) -> bool {
    match op {
        StoreOp::PutIfAbsent { key, ttl } => {
            store.put_if_absent(key, now.saturating_add(*ttl), now)
        }
        StoreOp::Exists { key } => store.exists(key, now),
    }
}

/// An in-memory store, bounded: when full, expired entries are dropped first, then the
/// entries closest to expiry.
#[derive(Debug, Default)]
pub struct MemoryStore {
    entries: BTreeMap<String, u64>,
    capacity: usize,
}

impl MemoryStore {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: BTreeMap::new(),
            capacity: capacity.max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn make_room(&mut self, now: u64) {
        if self.entries.len() < self.capacity {
            return;
        }
        self.entries.retain(|_, exp| *exp > now);
        while self.entries.len() >= self.capacity {
            let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, exp)| **exp)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            self.entries.remove(&oldest);
        }
    }
}

impl Store for MemoryStore {
    fn put_if_absent(&mut self, key: &str, expires_at: u64, now: u64) -> bool {
        if self.exists(key, now) {
            return false;
        }
        self.make_room(now);
        self.entries.insert(String::from(key), expires_at);
        true
    }

    fn exists(&mut self, key: &str, now: u64) -> bool {
        self.entries.get(key).is_some_and(|exp| *exp > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_if_absent_is_single_use_until_expiry() {
        let mut s = MemoryStore::new(10);
        let op = StoreOp::PutIfAbsent {
            key: "k".into(),
            ttl: 10,
        };
        assert!(perform(&mut s, &op, 100));
        assert!(!perform(&mut s, &op, 105));
        assert!(perform(&mut s, &StoreOp::Exists { key: "k".into() }, 109));
        assert!(!perform(&mut s, &StoreOp::Exists { key: "k".into() }, 110));
        assert!(perform(&mut s, &op, 110), "expired entries count as absent");
    }

    #[test]
    fn capacity_is_bounded() {
        let mut s = MemoryStore::new(3);
        for i in 0..100u64 {
            assert!(s.put_if_absent(&alloc::format!("k{i}"), 1000 + i, 0));
            assert!(s.len() <= 3);
        }
        assert!(s.exists("k99", 0));
        assert!(!s.exists("k0", 0));
    }
}
