//! The optional store for what must be used once or revoked: authorization codes (used
//! once), refresh-token families (one record each: the generation of the current refresh
//! token, or "revoked"), and rate-limit buckets. The core asks for it through
//! [`crate::Outcome::Store`]; every store applies the same rules, defined here:
//!
//! * [`Entry::apply`] — what an operation does to one entry and what it answers, for stores
//!   that keep one value per key (a Durable Object);
//! * [`Entries`] / [`Buckets`] — bounded records of a few entries or buckets, for stores
//!   that keep a fixed set of small values (Envoy's shared data: one record per hash slot,
//!   so an operation reads and parses a few hundred bytes, never a whole store);
//! * [`MemoryStore`] — the same rules in memory (tests, fuzzing, single-process hosts).
//!
//! A store that cannot answer (an error, a timeout, no room) replies
//! [`crate::Reply::StoreFailed`] and the core decides: rate limits fail open, one-time use
//! and rotations fail closed with a 503 the client may retry, a revocation check finds
//! nothing (see [`StoreOp`]).
//!
//! Without a store, codes are single-use only within their 5-minute lifetime's honesty:
//! replay is bounded by expiry, refresh-token reuse is not detected and revocation only
//! reaches the IdP.

use alloc::string::String;
use alloc::vec::Vec;

use crate::http::{Reply, StoreOp};

/// The id every store keeps `key`'s entry under: hex of the first 128 bits of SHA-256 of the
/// key (fixed length, no key material). Envoy's shared data, the fleet store's items and its
/// replicated revocations, and the Worker's Durable Objects all use it, so ids agree.
pub fn entry_id(key: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(key.as_bytes());
    crate::encoding::hex(digest.get(..16).unwrap_or_default())
}

/// The first 16 bits of an entry id: what hosts spread entries over slots or shards by.
pub fn id_prefix(id: &str) -> u16 {
    id.get(..4)
        .and_then(|h| u16::from_str_radix(h, 16).ok())
        .unwrap_or(0)
}

/// What an entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// A one-time value (an authorization code) was used.
    Used,
    /// A refresh-token family whose current refresh token has this generation.
    Generation(u64),
    /// A revoked refresh-token family (and so its access tokens).
    Revoked,
}

impl Mark {
    /// The mark as a short word without spaces (`u`, `g<n>`, `r`).
    pub fn to_text(self) -> String {
        match self {
            Self::Used => String::from("u"),
            Self::Generation(n) => alloc::format!("g{n}"),
            Self::Revoked => String::from("r"),
        }
    }

    pub fn from_text(s: &str) -> Option<Self> {
        match s {
            "u" => Some(Self::Used),
            "r" => Some(Self::Revoked),
            _ => s.strip_prefix('g')?.parse().ok().map(Self::Generation),
        }
    }

    /// Generation records may make room for others when a record is full: losing one only
    /// loses reuse detection for that (the least recently rotated) family. Used codes and
    /// revocations are never dropped before they expire.
    fn evictable(self) -> bool {
        matches!(self, Self::Generation(_))
    }
}

/// One live entry: its mark and when it expires (seconds since the epoch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub mark: Mark,
    pub expires_at: u64,
}

impl Entry {
    /// Applies an entry operation (not [`StoreOp::Take`]) to the live entry `current` of its
    /// key: the answer, and the entry to write (`None`: leave it as it is).
    ///
    /// * `PutIfAbsent`: created unless a live entry exists.
    /// * `Advance { from }`: a family's current generation `from` (or no record: lost or
    ///   never rotated) moves to `from + 1`; any other generation, or a revoked family,
    ///   answers false (a rotated-out refresh token came back).
    /// * `Revoke`: the family is revoked until at least `now + ttl`.
    /// * `IsRevoked`: whether the family is revoked.
    pub fn apply(current: Option<Entry>, op: &StoreOp, now: u64) -> (bool, Option<Entry>) {
        let current = current.filter(|e| e.expires_at > now);
        match op {
            StoreOp::PutIfAbsent { ttl, .. } => match current {
                Some(_) => (false, None),
                None => (true, Some(entry(Mark::Used, now, *ttl))),
            },
            StoreOp::Advance { from, ttl, .. } => match current.map(|e| e.mark) {
                None => (true, Some(entry(Mark::Generation(from + 1), now, *ttl))),
                Some(Mark::Generation(g)) if g == *from => {
                    (true, Some(entry(Mark::Generation(from + 1), now, *ttl)))
                }
                Some(_) => (false, None),
            },
            StoreOp::Revoke { ttl, .. } => {
                let until = now.saturating_add(*ttl);
                let expires_at = current.map_or(until, |e| e.expires_at.max(until));
                (
                    true,
                    Some(Entry {
                        mark: Mark::Revoked,
                        expires_at,
                    }),
                )
            }
            StoreOp::IsRevoked { .. } => (current.is_some_and(|e| e.mark == Mark::Revoked), None),
            StoreOp::Take { .. } => (true, None),
        }
    }
}

fn entry(mark: Mark, now: u64, ttl: u64) -> Entry {
    Entry {
        mark,
        expires_at: now.saturating_add(ttl),
    }
}

impl StoreOp {
    /// The key the operation is about.
    pub fn key(&self) -> &str {
        match self {
            Self::PutIfAbsent { key, .. }
            | Self::Advance { key, .. }
            | Self::Revoke { key, .. }
            | Self::IsRevoked { key }
            | Self::Take { key, .. } => key,
        }
    }

    /// Whether the operation only reads.
    pub fn read_only(&self) -> bool {
        matches!(self, Self::IsRevoked { .. })
    }
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

/// A rate limit for stores that can only count in one round trip (DynamoDB's atomic `ADD`,
/// which answers with the counts after the change): two fixed-window counters, the current
/// window of `period` seconds and the one before, weighted as a sliding window — the previous
/// window's count times the share of it still inside the last `period` seconds, plus the
/// current count. A request is allowed when that estimate, itself included, stays within
/// `capacity`.
///
/// Against [`Bucket`] (the same `capacity` per `period`): a full allowance at once, then as
/// many more as the window slides past earlier requests (the bucket refills evenly). The
/// estimate assumes the previous window's requests were spread evenly; bunched at its end,
/// up to `2 × capacity` pass within one period — the bucket's own worst case too (a full
/// bucket, then one refilled over the period). Refused requests must not count: a store
/// takes back the count it added for one (see the Envoy host's DynamoDB store).
pub struct Window;

impl Window {
    /// The window `now` falls in.
    pub fn index(now: u64, period: u64) -> u64 {
        now / period.max(1)
    }

    /// Whether a request is allowed, `current` being the current window's count with it and
    /// `previous` the previous window's.
    pub fn allows(previous: u64, current: u64, capacity: u32, period: u64, now: u64) -> bool {
        let period = period.max(1);
        let remaining = period - now % period;
        let estimate = previous
            .saturating_mul(remaining)
            .saturating_add(current.saturating_mul(period));
        estimate <= u64::from(capacity).saturating_mul(period)
    }
}

/// A store the host can call synchronously (in memory, or records it reads and writes at
/// once, like Envoy's shared data). `Err(Unavailable)`: it could not answer.
pub trait Store {
    /// Carries out an entry operation ([`Entry::apply`]).
    fn entry(&mut self, op: &StoreOp, now: u64) -> Result<bool, Unavailable>;
    /// Takes a token from a rate-limit bucket (see [`Bucket::take`]).
    fn take(
        &mut self,
        key: &str,
        capacity: u32,
        period: u64,
        now: u64,
    ) -> Result<bool, Unavailable>;
}

/// The store could not answer: an error, contention that did not settle, or no room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unavailable;

/// Carries out `op` on a synchronous store: the [`Reply`] to resume with.
pub fn perform(store: &mut dyn Store, op: &StoreOp, now: u64) -> Reply {
    let answer = match op {
        StoreOp::Take {
            key,
            capacity,
            period,
        } => store.take(key, *capacity, *period, now),
        other => store.entry(other, now),
    };
    match answer {
        Ok(a) => Reply::Store(a),
        Err(Unavailable) => Reply::StoreFailed,
    }
}

/// The first line of a record ([`Entries::to_bytes`], [`Buckets::to_bytes`]).
const RECORD_HEADER: &str = "mcpgate-store-v2\n";

/// A record has no room for another entry or bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full;

/// The lines of a record after its header (none when the header is missing), each as its
/// first `N` space-separated fields; lines with another number of fields are skipped.
fn record_lines<const N: usize>(data: &[u8]) -> impl Iterator<Item = [&str; N]> {
    data.strip_prefix(RECORD_HEADER.as_bytes())
        .and_then(|rest| core::str::from_utf8(rest).ok())
        .unwrap_or("")
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let out: [&str; N] = core::array::from_fn(|_| fields.next().unwrap_or(""));
            (fields.next().is_none() && out.iter().all(|f| !f.is_empty())).then_some(out)
        })
}

/// The live entries of one record (`<id> <expiry> <mark>` lines after a header), at most
/// `capacity` of them: how Envoy keeps one hash slot of its store in shared data, and how
/// [`MemoryStore`] keeps everything. Expired entries are dropped on every change; when the
/// record is still full, the generation record closest to expiry (the least recently rotated
/// family) makes room, and when there is none the change fails ([`Full`]): used codes and
/// revocations are never dropped (that would reopen a spent code or a revoked grant).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entries(Vec<(String, Entry)>);

impl Entries {
    /// The live entries of a record (expired, malformed or foreign lines dropped).
    pub fn parse(data: &[u8], now: u64) -> Self {
        Self(
            record_lines(data)
                .filter_map(|[id, exp, mark]| {
                    let e = Entry {
                        mark: Mark::from_text(mark)?,
                        expires_at: exp.parse().ok()?,
                    };
                    Some((String::from(id), e))
                })
                .filter(|(_, e)| e.expires_at > now)
                .collect(),
        )
    }

    /// The live entry `id` of a record, without parsing the others.
    pub fn find(data: &[u8], id: &str, now: u64) -> Option<Entry> {
        record_lines(data)
            .find(|[i, _, _]| *i == id)
            .and_then(|[_, exp, mark]| {
                Some(Entry {
                    mark: Mark::from_text(mark)?,
                    expires_at: exp.parse().ok()?,
                })
            })
            .filter(|e| e.expires_at > now)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::with_capacity(RECORD_HEADER.len() + self.0.len() * 48);
        out.push_str(RECORD_HEADER);
        for (id, e) in &self.0 {
            out.push_str(&alloc::format!(
                "{id} {} {}\n",
                e.expires_at,
                e.mark.to_text()
            ));
        }
        out.into_bytes()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The live entry `id`.
    pub fn get(&self, id: &str, now: u64) -> Option<Entry> {
        self.0
            .iter()
            .find(|(e, _)| e == id)
            .map(|(_, e)| *e)
            .filter(|e| e.expires_at > now)
    }

    /// Applies `op` ([`Entry::apply`]) to entry `id`: the answer, and whether the record
    /// changed (and must be written back).
    pub fn apply(
        &mut self,
        id: &str,
        op: &StoreOp,
        now: u64,
        capacity: usize,
    ) -> Result<(bool, bool), Full> {
        let (answer, write) = Entry::apply(self.get(id, now), op, now);
        let Some(new) = write else {
            return Ok((answer, false));
        };
        self.0.retain(|(_, e)| e.expires_at > now);
        if let Some(slot) = self.0.iter_mut().find(|(e, _)| e == id) {
            slot.1 = new;
            return Ok((answer, true));
        }
        if self.0.len() >= capacity.max(1) {
            let oldest = self
                .0
                .iter()
                .enumerate()
                .filter(|(_, (_, e))| e.mark.evictable())
                .min_by_key(|(_, (_, e))| e.expires_at)
                .map(|(i, _)| i);
            match oldest {
                Some(i) => {
                    self.0.swap_remove(i);
                }
                None => return Err(Full),
            }
        }
        self.0.push((String::from(id), new));
        Ok((answer, true))
    }
}

/// The rate-limit buckets of one record (`<id> <milli> <updated>` lines after a header), at
/// most `capacity`. Buckets idle for a whole period are full again: they are dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Buckets(Vec<(String, Bucket)>);

impl Buckets {
    pub fn parse(data: &[u8]) -> Self {
        Self(
            record_lines(data)
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
        let mut out = String::with_capacity(RECORD_HEADER.len() + self.0.len() * 56);
        out.push_str(RECORD_HEADER);
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
/// [`Buckets`]: the same rules as Envoy's records): for tests, fuzzing and single-process
/// hosts. A full store answers [`Unavailable`].
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

    /// Entries held (expired ones included until the next change).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Store for MemoryStore {
    fn entry(&mut self, op: &StoreOp, now: u64) -> Result<bool, Unavailable> {
        self.entries
            .apply(op.key(), op, now, self.capacity)
            .map(|(answer, _)| answer)
            .map_err(|Full| Unavailable)
    }

    fn take(
        &mut self,
        key: &str,
        capacity: u32,
        period: u64,
        now: u64,
    ) -> Result<bool, Unavailable> {
        self.buckets
            .take(key, (capacity, period), now, self.capacity)
            .map_err(|Full| Unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_ids_never_change() {
        // Deployed stores hold entries under these ids (and the Worker's shards follow them).
        let id = entry_id("mcpgate:code:j1");
        assert_eq!(id, "b3b21b96d08a36ece68875946c27c896");
        assert_eq!(id_prefix(&id), 0xb3b2);
        assert_eq!(id_prefix("zz"), 0, "malformed ids land in slot 0");
    }

    fn put(key: &str, ttl: u64) -> StoreOp {
        StoreOp::PutIfAbsent {
            key: key.into(),
            ttl,
        }
    }

    fn advance(key: &str, from: u64) -> StoreOp {
        StoreOp::Advance {
            key: key.into(),
            from,
            ttl: 1000,
        }
    }

    fn revoked(key: &str) -> StoreOp {
        StoreOp::IsRevoked { key: key.into() }
    }

    #[test]
    fn put_if_absent_is_single_use_until_expiry() {
        let mut s = MemoryStore::new(10);
        assert_eq!(perform(&mut s, &put("k", 10), 100), Reply::Store(true));
        assert_eq!(perform(&mut s, &put("k", 10), 105), Reply::Store(false));
        assert_eq!(
            perform(&mut s, &put("k", 10), 110),
            Reply::Store(true),
            "expired entries count as absent"
        );
    }

    #[test]
    fn a_family_is_one_entry_that_advances_once_per_generation() {
        let mut s = MemoryStore::new(10);
        // No record yet (never rotated, or lost): generation 0 and any other advance.
        assert_eq!(perform(&mut s, &advance("f", 0), 0), Reply::Store(true));
        assert_eq!(
            perform(&mut s, &advance("f", 0), 1),
            Reply::Store(false),
            "reuse"
        );
        for g in 1..100 {
            assert_eq!(perform(&mut s, &advance("f", g), g), Reply::Store(true));
        }
        assert_eq!(s.len(), 1, "one entry per family, however often it rotates");
        assert_eq!(perform(&mut s, &advance("f", 42), 200), Reply::Store(false));
        assert_eq!(perform(&mut s, &revoked("f"), 200), Reply::Store(false));
        let revoke = StoreOp::Revoke {
            key: "f".into(),
            ttl: 50,
        };
        assert_eq!(perform(&mut s, &revoke, 200), Reply::Store(true));
        assert_eq!(perform(&mut s, &revoked("f"), 201), Reply::Store(true));
        assert_eq!(
            perform(&mut s, &advance("f", 100), 201),
            Reply::Store(false),
            "a revoked family never advances"
        );
        // A revocation keeps the longer of the two lives (the generation's 1000 s).
        assert_eq!(perform(&mut s, &revoked("f"), 1098), Reply::Store(true));
        assert_eq!(s.len(), 1);
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
        assert_eq!(take(&mut s, 0), Reply::Store(true));
        assert_eq!(take(&mut s, 0), Reply::Store(true));
        assert_eq!(take(&mut s, 0), Reply::Store(false), "empty");
        assert_eq!(
            take(&mut s, 29),
            Reply::Store(false),
            "not yet a whole token"
        );
        assert_eq!(take(&mut s, 30), Reply::Store(true), "one token per 30 s");
        assert_eq!(take(&mut s, 31), Reply::Store(false));
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
    fn sliding_windows_allow_a_burst_then_follow_the_window() {
        // 2 per 60 s: a burst of 2, refused after, allowed again as the window slides.
        let allows = |prev, cur, now| Window::allows(prev, cur, 2, 60, now);
        assert!(allows(0, 1, 0) && allows(0, 2, 0) && !allows(0, 3, 0));
        assert_eq!(Window::index(59, 60), 0);
        assert_eq!(Window::index(60, 60), 1);
        // Next window: the previous two still weigh fully at its start…
        assert!(!allows(2, 1, 60));
        // …half of them after half a window, so one more fits.
        assert!(allows(2, 1, 90) && !allows(2, 2, 90));
        // A whole idle window later: a full allowance again.
        assert!(allows(0, 2, 120) && !allows(0, 3, 120));
        assert!(!allows(u64::MAX, u64::MAX, 0), "no overflow");
    }

    #[test]
    fn a_full_store_drops_the_oldest_family_never_a_code_or_a_revocation() {
        let mut s = MemoryStore::new(3);
        assert_eq!(perform(&mut s, &put("code", 5000), 0), Reply::Store(true));
        let revoke = StoreOp::Revoke {
            key: "bad".into(),
            ttl: 5000,
        };
        assert_eq!(perform(&mut s, &revoke, 0), Reply::Store(true));
        assert_eq!(perform(&mut s, &advance("old", 0), 0), Reply::Store(true));
        // Full: a new family makes room by dropping the family rotated longest ago.
        assert_eq!(perform(&mut s, &advance("new", 0), 10), Reply::Store(true));
        assert_eq!(s.len(), 3);
        assert_eq!(perform(&mut s, &put("code", 5000), 20), Reply::Store(false));
        assert_eq!(perform(&mut s, &revoked("bad"), 20), Reply::Store(true));
        assert_eq!(
            perform(&mut s, &advance("old", 5), 20),
            Reply::Store(true),
            "the dropped family lost its reuse detection, nothing else"
        );
        // Only codes and revocations left: no room, and the store says so.
        let mut s = MemoryStore::new(2);
        assert_eq!(perform(&mut s, &put("a", 100), 0), Reply::Store(true));
        assert_eq!(perform(&mut s, &put("b", 100), 0), Reply::Store(true));
        assert_eq!(perform(&mut s, &put("c", 100), 0), Reply::StoreFailed);
        assert_eq!(perform(&mut s, &advance("f", 0), 0), Reply::StoreFailed);
        assert_eq!(
            perform(&mut s, &put("a", 100), 0),
            Reply::Store(false),
            "still spent"
        );
        // Expired entries make room.
        assert_eq!(perform(&mut s, &put("c", 100), 100), Reply::Store(true));
    }

    #[test]
    fn records_round_trip_and_stay_bounded() {
        let mut e = Entries::parse(b"", 0);
        assert!(e.is_empty());
        assert_eq!(e.apply("a", &put("a", 50), 0, 2), Ok((true, true)));
        assert_eq!(e.apply("a", &put("a", 60), 0, 2), Ok((false, false)));
        assert_eq!(e.apply("b", &advance("b", 7), 0, 2), Ok((true, true)));
        let bytes = e.to_bytes();
        assert!(bytes.starts_with(RECORD_HEADER.as_bytes()));
        assert_eq!(Entries::parse(&bytes, 0), e);
        assert_eq!(
            Entries::find(&bytes, "b", 0),
            Some(Entry {
                mark: Mark::Generation(8),
                expires_at: 1000
            })
        );
        assert_eq!(Entries::find(&bytes, "a", 50), None, "expired");
        // Parsing drops what expired, and lines that are not entries.
        let mut text = bytes.clone();
        text.extend_from_slice(b"junk\nx y z w\nq 100 bogus\n");
        let later = Entries::parse(&text, 50);
        assert!(later.get("a", 50).is_none() && later.get("b", 50).is_some());
        assert_eq!(later.len(), 1);
        assert!(Entries::parse(b"no header\na 100 u\n", 0).is_empty());
        assert!(
            Entries::parse(b"mcpgate-store-v1\na 100\n", 0).is_empty(),
            "records of the previous format are not read"
        );
        for m in [
            Mark::Used,
            Mark::Revoked,
            Mark::Generation(0),
            Mark::Generation(u64::MAX),
        ] {
            assert_eq!(Mark::from_text(&m.to_text()), Some(m));
        }

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
