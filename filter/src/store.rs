//! The optional store for what must be used once or revoked (authorization codes, refresh
//! tokens, revocations). The core asks for it through [`crate::Outcome::Store`]; hosts with a
//! synchronous store implement [`Store`] and answer with [`perform`], hosts with an
//! asynchronous one (a Durable Object) carry the same [`StoreOp`] there. [`Entries`] and
//! [`Buckets`] are the bounded shard records a host keeps in one value (Envoy's shared data);
//! [`MemoryStore`] follows the same rules in memory.
//!
//! Without a store, codes are single-use only within their 5-minute lifetime's honesty:
//! replay is bounded by expiry, refresh-token reuse is not detected and revocation only
//! reaches the IdP.

use alloc::string::String;
use alloc::vec::Vec;

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

/// The first line of a shard record ([`Entries::to_bytes`], [`Buckets::to_bytes`]).
const SHARD_HEADER: &str = "mcpgate-store-v1\n";

/// A shard has no room for another entry or bucket: a one-time use is then refused (fails
/// closed), a new rate-limit bucket not kept (fails open: a limiter must not lock users out).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full;

/// The lines of a shard record after its header (none when the header is missing), each as
/// its first `N` space-separated fields; lines with another number of fields are skipped.
fn shard_lines<const N: usize>(data: &[u8]) -> impl Iterator<Item = [&str; N]> {
    data.strip_prefix(SHARD_HEADER.as_bytes())
        .and_then(|rest| core::str::from_utf8(rest).ok())
        .unwrap_or("")
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let out: [&str; N] = core::array::from_fn(|_| fields.next().unwrap_or(""));
            (fields.next().is_none() && out.iter().all(|f| !f.is_empty())).then_some(out)
        })
}

/// The live one-time entries of one shard (`<id> <expiry>` lines after a header), at most
/// `capacity` of them. How Envoy keeps its store in shared data and how [`MemoryStore`] keeps
/// it in memory: expired entries are dropped on every change, and when the shard is still
/// full a new entry is refused, never an older one evicted (that would reopen a spent code).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entries(Vec<(String, u64)>);

impl Entries {
    /// The live entries of a shard record (expired, malformed or foreign lines dropped).
    pub fn parse(data: &[u8], now: u64) -> Self {
        Self(
            shard_lines(data)
                .filter_map(|[id, exp]| Some((String::from(id), exp.parse().ok()?)))
                .filter(|(_, exp)| *exp > now)
                .collect(),
        )
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::with_capacity(SHARD_HEADER.len() + self.0.len() * 46);
        out.push_str(SHARD_HEADER);
        for (id, exp) in &self.0 {
            out.push_str(&alloc::format!("{id} {exp}\n"));
        }
        out.into_bytes()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a live entry `id` is here.
    pub fn contains(&self, id: &str, now: u64) -> bool {
        self.0.iter().any(|(e, exp)| e == id && *exp > now)
    }

    /// Adds `id` until `expires_at` unless a live one is here: `Ok(true)` added, `Ok(false)`
    /// already here. Expired entries make room first.
    pub fn insert(
        &mut self,
        id: &str,
        expires_at: u64,
        now: u64,
        capacity: usize,
    ) -> Result<bool, Full> {
        self.0.retain(|(_, exp)| *exp > now);
        if self.0.iter().any(|(e, _)| e == id) {
            return Ok(false);
        }
        if self.0.len() >= capacity {
            return Err(Full);
        }
        self.0.push((String::from(id), expires_at));
        Ok(true)
    }
}

/// The rate-limit buckets of one shard (`<id> <milli> <updated>` lines after a header), at
/// most `capacity`. Buckets idle for a whole period are full again: they are dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Buckets(Vec<(String, Bucket)>);

impl Buckets {
    pub fn parse(data: &[u8]) -> Self {
        Self(
            shard_lines(data)
                .filter_map(|[id, milli, updated]| {
                    let b = Bucket {
                        milli: milli.parse().ok()?,
                        updated: updated.parse().ok()?,
                    };
                    Some((String::from(id), b))
                })
                .collect(),
        )
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::with_capacity(SHARD_HEADER.len() + self.0.len() * 56);
        out.push_str(SHARD_HEADER);
        for (id, b) in &self.0 {
            out.push_str(&alloc::format!("{id} {} {}\n", b.milli, b.updated));
        }
        out.into_bytes()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Takes a token from bucket `id` ([`Bucket::take`]); whether one was taken.
    pub fn take(
        &mut self,
        id: &str,
        limit: (u32, u64),
        now: u64,
        capacity: usize,
    ) -> Result<bool, Full> {
        let (per_period, period) = limit;
        self.0
            .retain(|(_, b)| now.saturating_sub(b.updated) < period);
        let current = self.0.iter().position(|(e, _)| e == id);
        if current.is_none() && self.0.len() >= capacity {
            return Err(Full);
        }
        let (taken, b) = Bucket::take(
            current.and_then(|i| self.0.get(i)).map(|(_, b)| *b),
            per_period,
            period,
            now,
        );
        match current.and_then(|i| self.0.get_mut(i)) {
            Some(slot) => slot.1 = b,
            None => self.0.push((String::from(id), b)),
        }
        Ok(taken)
    }
}

/// An in-memory store of at most `capacity` entries and as many buckets ([`Entries`],
/// [`Buckets`]: the same rules as Envoy's shards): for tests, fuzzing and single-process hosts.
#[derive(Debug, Default)]
pub struct MemoryStore {
    entries: Entries,
    buckets: Buckets,
    capacity: usize,
}

impl MemoryStore {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Entries::default(),
            buckets: Buckets::default(),
            capacity: capacity.max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Store for MemoryStore {
    fn put_if_absent(&mut self, key: &str, expires_at: u64, now: u64) -> bool {
        self.entries
            .insert(key, expires_at, now, self.capacity)
            .unwrap_or(false)
    }

    fn exists(&mut self, key: &str, now: u64) -> bool {
        self.entries.contains(key, now)
    }

    fn take(&mut self, key: &str, capacity: u32, period: u64, now: u64) -> bool {
        self.buckets
            .take(key, (capacity, period), now, self.capacity)
            .unwrap_or(true)
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
    fn a_full_store_refuses_new_entries_and_never_evicts_live_ones() {
        let mut s = MemoryStore::new(3);
        for i in 0..3u64 {
            assert!(s.put_if_absent(&alloc::format!("k{i}"), 1000, 0));
        }
        for i in 3..100u64 {
            assert!(
                !s.put_if_absent(&alloc::format!("k{i}"), 1000, 0),
                "fails closed"
            );
            assert_eq!(s.len(), 3);
        }
        assert!(s.exists("k0", 0), "a spent code stays spent");
        // Expired entries make room.
        assert!(s.put_if_absent("late", 2000, 1000));
        assert!(!s.exists("k0", 1000));
    }

    #[test]
    fn shard_records_round_trip_and_stay_bounded() {
        let mut e = Entries::parse(b"", 0);
        assert!(e.is_empty());
        assert_eq!(e.insert("a", 50, 0, 2), Ok(true));
        assert_eq!(e.insert("a", 60, 0, 2), Ok(false));
        assert_eq!(e.insert("b", 100, 0, 2), Ok(true));
        assert_eq!(e.insert("c", 100, 0, 2), Err(Full));
        let bytes = e.to_bytes();
        assert!(bytes.starts_with(SHARD_HEADER.as_bytes()));
        assert_eq!(Entries::parse(&bytes, 0), e);
        // Parsing drops what expired, and lines that are not entries.
        let mut text = bytes.clone();
        text.extend_from_slice(b"junk\nx y z\n");
        let later = Entries::parse(&text, 50);
        assert!(!later.contains("a", 50) && later.contains("b", 50));
        assert_eq!(later.len(), 1);
        assert!(Entries::parse(b"no header\na 100\n", 0).is_empty());

        let mut b = Buckets::parse(b"");
        assert_eq!(b.take("x", (1, 60), 0, 2), Ok(true));
        assert_eq!(b.take("x", (1, 60), 1, 2), Ok(false), "empty");
        assert_eq!(b.take("y", (1, 60), 1, 2), Ok(true));
        assert_eq!(b.take("z", (1, 60), 1, 2), Err(Full));
        assert_eq!(Buckets::parse(&b.to_bytes()), b);
        // Idle for a whole period: full again, dropped, room for another.
        assert_eq!(b.take("z", (1, 60), 61, 2), Ok(true));
        assert_eq!(b.len(), 1);
    }
}
