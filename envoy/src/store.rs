//! The optional one-time-use / revocation store on Envoy shared data (one per Envoy process,
//! shared by every worker's VM).
//!
//! Shared data can only be compared-and-swapped on keys that already exist (creating an absent
//! key is never conditional), so entries live in a fixed set of shard records created at
//! configure time. Each shard holds lines `<id> <expiry>`; an operation reads the shard, drops
//! expired entries and writes it back with the CAS value it read, retrying on a concurrent
//! change. Two workers therefore can never both win a `PutIfAbsent` for the same key.

use proxy_wasm::hostcalls;
use proxy_wasm::types::Status;
use sha2::{Digest, Sha256};

const SHARDS: usize = 64;
const HEADER: &str = "mcpgate-store-v1\n";
/// At most this many live entries per shard (≈ 45 bytes each); beyond it a put fails closed.
const MAX_ENTRIES_PER_SHARD: usize = 20_000;
const MAX_ATTEMPTS: usize = 64;

fn shard_name(index: usize) -> String {
    format!("mcpgate.store.{index}")
}

/// Entry id (hex of 128 bits of SHA-256 of the key) and its shard.
fn locate(key: &str) -> (String, String) {
    let digest = Sha256::digest(key.as_bytes());
    let mut id = String::with_capacity(32);
    for b in digest.iter().take(16) {
        id.push_str(&format!("{b:02x}"));
    }
    let first = digest.first().copied().unwrap_or(0);
    (shard_name(usize::from(first) % SHARDS), id)
}

/// Creates the shard records that do not exist yet. Called at configure time, before traffic.
pub fn init() {
    for i in 0..SHARDS {
        ensure(&shard_name(i));
    }
}

fn ensure(name: &str) {
    if let Ok((None, None)) = hostcalls::get_shared_data(name) {
        let _ = hostcalls::set_shared_data(name, Some(HEADER.as_bytes()), None);
    }
}

fn parse(data: &[u8], now: u64) -> Vec<(String, u64)> {
    let text = String::from_utf8_lossy(data);
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let (id, exp) = line.split_once(' ')?;
            let exp: u64 = exp.parse().ok()?;
            (exp > now).then(|| (id.to_string(), exp))
        })
        .collect()
}

fn serialize(entries: &[(String, u64)]) -> Vec<u8> {
    let mut out = String::with_capacity(HEADER.len() + entries.len() * 46);
    out.push_str(HEADER);
    for (id, exp) in entries {
        out.push_str(id);
        out.push(' ');
        out.push_str(&exp.to_string());
        out.push('\n');
    }
    out.into_bytes()
}

/// Creates `key` unless a live entry exists. `true` = created (first use).
/// Fails closed (`false`) when the shard stays contended or is full.
pub fn put_if_absent(key: &str, ttl: u64, now: u64) -> bool {
    let (shard, id) = locate(key);
    for _ in 0..MAX_ATTEMPTS {
        let (data, cas) = match hostcalls::get_shared_data(&shard) {
            Ok(v) => v,
            Err(_) => return false,
        };
        let Some(cas) = cas else {
            ensure(&shard);
            continue;
        };
        let mut entries = parse(data.as_deref().unwrap_or_default(), now);
        if entries.iter().any(|(e, _)| *e == id) {
            return false;
        }
        if entries.len() >= MAX_ENTRIES_PER_SHARD {
            log::error!("mcpgate: store shard {shard} is full; refusing a one-time use");
            return false;
        }
        entries.push((id.clone(), now.saturating_add(ttl)));
        match hostcalls::set_shared_data(&shard, Some(&serialize(&entries)), Some(cas)) {
            Ok(()) => return true,
            Err(Status::CasMismatch) => continue,
            Err(_) => return false,
        }
    }
    log::warn!("mcpgate: store shard {shard} stayed contended; refusing a one-time use");
    false
}

/// Whether a live entry for `key` exists.
pub fn exists(key: &str, now: u64) -> bool {
    let (shard, id) = locate(key);
    match hostcalls::get_shared_data(&shard) {
        Ok((Some(data), _)) => parse(&data, now).iter().any(|(e, _)| *e == id),
        _ => false,
    }
}

fn bucket_shard_name(index: usize) -> String {
    format!("mcpgate.buckets.{index}")
}

/// Creates the rate-limit bucket shards (configure time).
pub fn init_buckets() {
    for i in 0..SHARDS {
        ensure(&bucket_shard_name(i));
    }
}

/// Takes a token from the rate-limit bucket `key` (the core's [`Bucket`] arithmetic), CAS'd
/// like the one-time entries. Buckets idle for a whole period are full again and dropped.
/// Fails open (`true`) when shared data cannot be used: a limiter must not lock users out.
pub fn take(key: &str, capacity: u32, period: u64, now: u64) -> bool {
    use mcpgate_filter::store::Bucket;
    let (shard, id) = locate(key);
    let shard = shard.replace("mcpgate.store.", "mcpgate.buckets.");
    for _ in 0..MAX_ATTEMPTS {
        let Ok((data, Some(cas))) = hostcalls::get_shared_data(&shard) else {
            ensure(&shard);
            return true;
        };
        let text = String::from_utf8_lossy(data.as_deref().unwrap_or_default()).into_owned();
        let mut buckets: Vec<(String, Bucket)> = text
            .lines()
            .skip(1)
            .filter_map(|line| {
                let mut parts = line.split(' ');
                let (id, milli, updated) = (parts.next()?, parts.next()?, parts.next()?);
                let b = Bucket {
                    milli: milli.parse().ok()?,
                    updated: updated.parse().ok()?,
                };
                (now.saturating_sub(b.updated) < period).then(|| (id.to_string(), b))
            })
            .collect();
        let current = buckets.iter().find(|(e, _)| *e == id).map(|(_, b)| *b);
        let (taken, b) = Bucket::take(current, capacity, period, now);
        buckets.retain(|(e, _)| *e != id);
        if buckets.len() >= MAX_ENTRIES_PER_SHARD {
            return true;
        }
        buckets.push((id.clone(), b));
        let mut out = String::with_capacity(HEADER.len() + buckets.len() * 56);
        out.push_str(HEADER);
        for (e, b) in &buckets {
            out.push_str(&format!("{e} {} {}\n", b.milli, b.updated));
        }
        match hostcalls::set_shared_data(&shard, Some(out.as_bytes()), Some(cas)) {
            Ok(()) => return taken,
            Err(Status::CasMismatch) => continue,
            Err(_) => return true,
        }
    }
    true
}
