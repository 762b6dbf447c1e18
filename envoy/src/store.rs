//! The optional store on Envoy shared data (one per Envoy process, shared by every worker's
//! VM): authorization codes, refresh-token families, revocations and rate-limit buckets.
//!
//! Shared data can only be compared-and-swapped on keys that already exist (creating an absent
//! key is never conditional), so the store is a fixed hash table created at configure time:
//! each key hashes to one of [`SLOTS`] slot records (and buckets to one of [`BUCKET_SLOTS`]),
//! each a small record in the core's format ([`Entries`], [`Buckets`]: at most
//! [`SLOT_CAPACITY`] entries, expired ones dropped on every write, the least recently rotated
//! family making room when a slot is full). An operation reads one slot — a few hundred
//! bytes, whatever the store holds — changes it and writes it back with the CAS value it read,
//! retrying on a concurrent change: two workers can never both win a `PutIfAbsent` or an
//! `Advance`. The revocation check on the MCP path reads one slot and scans it for one line.
//!
//! Bounded: at most `SLOTS × SLOT_CAPACITY` entries (≈ 50 bytes each: 13 MiB) and as many
//! buckets per `BUCKET_SLOTS × BUCKET_CAPACITY`. A slot full of codes and revocations (which
//! are never dropped early) answers [`Reply::StoreFailed`], as does contention that does not
//! settle; the core then fails closed for one-time use and open for rate limits.

use mcpgate_filter::store::{Buckets, Entries, Full, Mark};
use mcpgate_filter::{Reply, StoreOp};
use proxy_wasm::hostcalls;
use proxy_wasm::types::Status;

/// Slot records of codes, families and revocations.
pub const SLOTS: usize = 8192;
/// Entries per slot.
pub const SLOT_CAPACITY: usize = 32;
/// Slot records of rate-limit buckets (idle buckets are dropped after a minute).
pub const BUCKET_SLOTS: usize = 1024;
const BUCKET_CAPACITY: usize = 64;
const MAX_ATTEMPTS: usize = 64;

pub use mcpgate_filter::store::entry_id;

/// The slot among `slots` of an entry id (its first 16 bits).
fn slot_of(id: &str, slots: usize) -> usize {
    usize::from(mcpgate_filter::store::id_prefix(id)) % slots.max(1)
}

/// Entry id and its slot among `slots`.
fn locate(key: &str, slots: usize) -> (usize, String) {
    let id = entry_id(key);
    (slot_of(&id, slots), id)
}

fn entries_slot(index: usize) -> String {
    format!("mcpgate.slot.{index}")
}

fn buckets_slot(index: usize) -> String {
    format!("mcpgate.bucket.{index}")
}

/// Creates the slot records that do not exist yet. Called at configure time, before traffic.
pub fn init() {
    for i in 0..SLOTS {
        ensure(&entries_slot(i));
    }
}

/// Creates the rate-limit bucket slots (configure time).
pub fn init_buckets() {
    for i in 0..BUCKET_SLOTS {
        ensure(&buckets_slot(i));
    }
}

fn ensure(name: &str) {
    if let Ok((None, None)) = hostcalls::get_shared_data(name) {
        // Both kinds of slot start as the same empty record.
        let _ = hostcalls::set_shared_data(name, Some(&Entries::default().to_bytes()), None);
    }
}

/// What a change to a slot decided: write this record and answer, or answer without writing.
enum Change<T> {
    Write(Vec<u8>, T),
    Answer(T),
}

/// Reads slot `name`, lets `change` decide, writes back under the CAS value read (retrying on
/// a concurrent change). `None` when shared data could not be used or stayed contended.
fn update<T>(name: &str, change: impl Fn(&[u8]) -> Change<T>) -> Option<T> {
    for _ in 0..MAX_ATTEMPTS {
        let (data, cas) = hostcalls::get_shared_data(name).ok()?;
        let Some(cas) = cas else {
            ensure(name);
            continue;
        };
        match change(data.as_deref().unwrap_or_default()) {
            Change::Answer(answer) => return Some(answer),
            Change::Write(record, answer) => {
                match hostcalls::set_shared_data(name, Some(&record), Some(cas)) {
                    Ok(()) => return Some(answer),
                    Err(Status::CasMismatch) => continue,
                    Err(_) => return None,
                }
            }
        }
    }
    log::warn!("mcpgate: store slot {name} stayed contended");
    None
}

/// Carries out `op` (the core's rules, [`Entries`] / [`Buckets`]) on its slot.
pub fn perform(op: &StoreOp, now: u64) -> Reply {
    let answer = match op {
        StoreOp::Take {
            key,
            capacity,
            period,
        } => take(key, *capacity, *period, now),
        StoreOp::IsRevoked { key } => is_revoked(key, now),
        other => entry(other, now),
    };
    answer.map_or(Reply::StoreFailed, Reply::Store)
}

fn entry(op: &StoreOp, now: u64) -> Option<bool> {
    let (index, id) = locate(op.key(), SLOTS);
    let slot = entries_slot(index);
    let answer = update(&slot, |data| {
        let mut entries = Entries::parse(data, now);
        match entries.apply(&id, op, now, SLOT_CAPACITY) {
            Ok((answer, true)) => Change::Write(entries.to_bytes(), Ok(answer)),
            Ok((answer, false)) => Change::Answer(Ok(answer)),
            Err(Full) => Change::Answer(Err(Full)),
        }
    })?;
    match answer {
        Ok(a) => Some(a),
        Err(Full) => {
            log::error!("mcpgate: store slot {slot} is full of codes and revocations");
            None
        }
    }
}

/// Records a revocation replicated from the fleet's store: entry `id` (see [`entry_id`]) is
/// revoked until `expires_at`. `None` when the slot could not be written (full, contended).
pub fn revoke_id(id: &str, expires_at: u64, now: u64) -> Option<bool> {
    if expires_at <= now || id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Some(false);
    }
    let op = StoreOp::Revoke {
        key: String::new(),
        ttl: expires_at - now,
    };
    let slot = entries_slot(slot_of(id, SLOTS));
    let answer = update(&slot, |data| {
        let mut entries = Entries::parse(data, now);
        if entries
            .get(id, now)
            .is_some_and(|e| e.mark == Mark::Revoked && e.expires_at >= expires_at)
        {
            return Change::Answer(Ok(false));
        }
        match entries.apply(id, &op, now, SLOT_CAPACITY) {
            Ok(_) => Change::Write(entries.to_bytes(), Ok(true)),
            Err(Full) => Change::Answer(Err(Full)),
        }
    })?;
    match answer {
        Ok(new) => Some(new),
        Err(Full) => {
            log::error!("mcpgate: store slot {slot} is full of codes and revocations");
            None
        }
    }
}

/// The MCP path's check: one slot read, one line looked for.
fn is_revoked(key: &str, now: u64) -> Option<bool> {
    let (index, id) = locate(key, SLOTS);
    match hostcalls::get_shared_data(&entries_slot(index)) {
        Ok((Some(data), _)) => {
            Some(Entries::find(&data, &id, now).is_some_and(|e| e.mark == Mark::Revoked))
        }
        Ok((None, _)) => Some(false),
        Err(_) => None,
    }
}

/// Takes a token from the rate-limit bucket `key` (the core's bucket arithmetic), CAS'd like
/// the entries. `None` (the core lets the request through) when shared data cannot be used or
/// the slot is full.
fn take(key: &str, capacity: u32, period: u64, now: u64) -> Option<bool> {
    let (index, id) = locate(key, BUCKET_SLOTS);
    update(&buckets_slot(index), |data| {
        let mut buckets = Buckets::parse(data);
        match buckets.take(&id, (capacity, period), now, BUCKET_CAPACITY) {
            Ok(taken) => Change::Write(buckets.to_bytes(), Some(taken)),
            Err(Full) => Change::Answer(None),
        }
    })
    .flatten()
}
