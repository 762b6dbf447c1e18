//! The optional one-time-use / revocation store on Envoy shared data (one per Envoy process,
//! shared by every worker's VM).
//!
//! Shared data can only be compared-and-swapped on keys that already exist (creating an absent
//! key is never conditional), so entries live in a fixed set of shard records created at
//! configure time, in the core's shard format ([`Entries`], [`Buckets`]: bounded, expired
//! entries dropped on every write). An operation reads a shard, changes it and writes it back
//! with the CAS value it read, retrying on a concurrent change. Two workers therefore can never
//! both win a `PutIfAbsent` for the same key.

use mcpgate_filter::store::{Buckets, Entries, Full};
use proxy_wasm::hostcalls;
use proxy_wasm::types::Status;
use sha2::{Digest, Sha256};

const SHARDS: usize = 64;
/// At most this many live entries (≈ 45 bytes each) or buckets per shard.
const MAX_ENTRIES_PER_SHARD: usize = 20_000;
const MAX_ATTEMPTS: usize = 64;

/// Entry id (hex of 128 bits of SHA-256 of the key) and its shard's index.
fn locate(key: &str) -> (usize, String) {
    let digest = Sha256::digest(key.as_bytes());
    let mut id = String::with_capacity(32);
    for b in digest.iter().take(16) {
        id.push_str(&format!("{b:02x}"));
    }
    let first = digest.first().copied().unwrap_or(0);
    (usize::from(first) % SHARDS, id)
}

fn entries_shard(index: usize) -> String {
    format!("mcpgate.store.{index}")
}

fn buckets_shard(index: usize) -> String {
    format!("mcpgate.buckets.{index}")
}

/// Creates the shard records that do not exist yet. Called at configure time, before traffic.
pub fn init() {
    for i in 0..SHARDS {
        ensure(&entries_shard(i));
    }
}

/// Creates the rate-limit bucket shards (configure time).
pub fn init_buckets() {
    for i in 0..SHARDS {
        ensure(&buckets_shard(i));
    }
}

fn ensure(name: &str) {
    if let Ok((None, None)) = hostcalls::get_shared_data(name) {
        // Both kinds of shard start as the same empty record.
        let _ = hostcalls::set_shared_data(name, Some(&Entries::default().to_bytes()), None);
    }
}

/// What a change to a shard decided: write this record and answer, or answer without writing.
enum Change<T> {
    Write(Vec<u8>, T),
    Answer(T),
}

/// Reads shard `name`, lets `change` decide, writes back under the CAS value read (retrying on
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
    log::warn!("mcpgate: store shard {name} stayed contended");
    None
}

/// Creates `key` unless a live entry exists. `true` = created (first use).
/// Fails closed (`false`) when the shard stays contended or is full.
pub fn put_if_absent(key: &str, ttl: u64, now: u64) -> bool {
    let (index, id) = locate(key);
    let shard = entries_shard(index);
    let created = update(&shard, |data| {
        let mut entries = Entries::parse(data, now);
        match entries.insert(&id, now.saturating_add(ttl), now, MAX_ENTRIES_PER_SHARD) {
            Ok(true) => Change::Write(entries.to_bytes(), Ok(true)),
            other => Change::Answer(other),
        }
    });
    match created {
        Some(Ok(created)) => created,
        Some(Err(Full)) => {
            log::error!("mcpgate: store shard {shard} is full; refusing a one-time use");
            false
        }
        None => false,
    }
}

/// Whether a live entry for `key` exists.
pub fn exists(key: &str, now: u64) -> bool {
    let (index, id) = locate(key);
    match hostcalls::get_shared_data(&entries_shard(index)) {
        Ok((Some(data), _)) => Entries::parse(&data, now).contains(&id, now),
        _ => false,
    }
}

/// Takes a token from the rate-limit bucket `key` (the core's bucket arithmetic), CAS'd like
/// the one-time entries. Fails open (`true`) when shared data cannot be used or the shard is
/// full: a limiter must not lock users out.
pub fn take(key: &str, capacity: u32, period: u64, now: u64) -> bool {
    let (index, id) = locate(key);
    update(&buckets_shard(index), |data| {
        let mut buckets = Buckets::parse(data);
        match buckets.take(&id, (capacity, period), now, MAX_ENTRIES_PER_SHARD) {
            Ok(taken) => Change::Write(buckets.to_bytes(), taken),
            Err(Full) => Change::Answer(true),
        }
    })
    .unwrap_or(true)
}
