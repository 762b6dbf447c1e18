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
    /// Takes a token from a rate-limit bucket (see [`Bucket::take`]).
    fn take(&mut self, key: &str, capacity: u32, period: u64, now: u64) -> bool;
}

/// A token bucket: `milli` thousandths of a token, as of `updated` (seconds). Stored by hosts
/// as 16 bytes ([`Bucket::to_bytes`]); the arithmetic lives here so every store agrees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bucket {
    pub milli: u64,
    pub updated: u64,
}

impl Bucket {
    /// Refills `bucket` (a missing one is full) up to `now` and takes one token if there is
    /// one. Returns whether it was taken and the new state.
    pub fn take(bucket: Option<Bucket>, capacity: u32, period: u64, now: u64) -> (bool, Bucket) {
        let full = u64::from(capacity) * 1000;
        let b = bucket.unwrap_or(Bucket {
            milli: full,
            updated: now,
        });
        let elapsed = now.saturating_sub(b.updated);
        let refill = elapsed.saturating_mul(full) / period.max(1);
        let milli = b.milli.saturating_add(refill).min(full);
        if milli >= 1000 {
            (
                true,
                Bucket {
                    milli: milli - 1000,
                    updated: now,
                },
            )
        } else {
            // Unchanged: refilling from the same instant next time loses no fractions.
            (false, b)
        }
    }

    pub fn to_bytes(self) -> [u8; 16] {
        let mut out = [0u8; 16];
        let (milli, updated) = out.split_at_mut(8);
        milli.copy_from_slice(&self.milli.to_be_bytes());
        updated.copy_from_slice(&self.updated.to_be_bytes());
        out
    }

    pub fn from_bytes(b: &[u8]) -> Option<Bucket> {
        Some(Bucket {
            milli: u64::from_be_bytes(b.get(..8)?.try_into().ok()?),
            updated: u64::from_be_bytes(b.get(8..16)?.try_into().ok()?),
        })
    }
}

/// Carries out `op` on a synchronous store; the result is the `Reply::Store` value.
pub fn perform(store: &mut dyn Store, op: &StoreOp, now: u64) -> bool {
    match op {
        StoreOp::PutIfAbsent { key, ttl } => {
            store.put_if_absent(key, now.saturating_add(*ttl), now)
        }
        StoreOp::Exists { key } => store.exists(key, now),
        StoreOp::Take {
            key,
            capacity,
            period,
        } => store.take(key, *capacity, *period, now),
    }
}

/// An in-memory store, bounded: when full, expired entries are dropped first, then the
/// entries closest to expiry.
#[derive(Debug, Default)]
pub struct MemoryStore {
    entries: BTreeMap<String, u64>,
    buckets: BTreeMap<String, Bucket>,
    capacity: usize,
}

impl MemoryStore {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: BTreeMap::new(),
            buckets: BTreeMap::new(),
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

    fn take(&mut self, key: &str, capacity: u32, period: u64, now: u64) -> bool {
        if !self.buckets.contains_key(key) && self.buckets.len() >= self.capacity {
            // Buckets idle for a whole period are full again: forgetting them changes nothing.
            self.buckets
                .retain(|_, b| now.saturating_sub(b.updated) < period);
            if self.buckets.len() >= self.capacity {
                return true;
            }
        }
        let (taken, b) = Bucket::take(self.buckets.get(key).copied(), capacity, period, now);
        self.buckets.insert(String::from(key), b);
        taken
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
    fn buckets_refill_evenly() {
        let mut s = MemoryStore::new(10);
        let take = |s: &mut MemoryStore, now| {
            perform(
                s,
                &StoreOp::Take {
                    key: "b".into(),
                    capacity: 2,
                    period: 60,
                },
                now,
            )
        };
        assert!(take(&mut s, 0));
        assert!(take(&mut s, 0));
        assert!(!take(&mut s, 0), "empty");
        assert!(!take(&mut s, 29), "not yet a whole token");
        assert!(take(&mut s, 30), "one token per 30 s");
        assert!(!take(&mut s, 31));
        assert_eq!(
            Bucket::from_bytes(
                &Bucket {
                    milli: 7,
                    updated: 9
                }
                .to_bytes()
            ),
            Some(Bucket {
                milli: 7,
                updated: 9
            })
        );
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
