//! The one-time-use / revocation store: a Durable Object class, [`McpgateStore`], and the
//! Worker's client for it.
//!
//! Each entry is `<id> → <expiry, Unix seconds>` in the object's transactional storage, where
//! `<id>` is the hex of 128 bits of SHA-256 of the core's key. A Durable Object handles one
//! event at a time between storage calls (input gates), so the read-then-write of
//! `put_if_absent` cannot interleave with another request: two edge locations can never both
//! win the same authorization code. Expired entries count as absent; an alarm sweeps them.
//!
//! The Worker addresses the instance `mcpgate-store-<n>` where `n` is the key hash modulo
//! `MCPGATE_STORE_SHARDS` (default 1: one global instance).

use std::time::Duration;

use mcpgate_filter::StoreOp;
use sha2::{Digest, Sha256};
use worker::{
    durable_object, Date, DurableObject, Env, ListOptions, Method, ObjectNamespace, Request,
    RequestInit, Response, State,
};

/// Entries looked at per alarm run.
const SWEEP_BATCH: usize = 1000;
/// Between two sweeps of the whole object.
const SWEEP_INTERVAL: Duration = Duration::from_secs(3600);

fn now_secs() -> u64 {
    Date::now().as_millis() / 1000
}

/// The Worker's handle on the store.
pub struct StoreClient {
    namespace: ObjectNamespace,
    shards: u32,
}

impl StoreClient {
    pub fn new(namespace: ObjectNamespace, shards: u32) -> Self {
        Self {
            namespace,
            shards: shards.max(1),
        }
    }

    /// Carries out `op`. Failures answer `false` (and are logged): a one-time use is refused,
    /// a revocation check finds nothing — as the Envoy host's store does.
    pub async fn perform(&self, op: &StoreOp) -> bool {
        match self.call(op).await {
            Ok(answer) => answer,
            Err(e) => {
                worker::console_error!("mcpgate: store call failed: {e}");
                false
            }
        }
    }

    async fn call(&self, op: &StoreOp) -> worker::Result<bool> {
        let (verb, key, ttl, capacity) = match op {
            StoreOp::PutIfAbsent { key, ttl } => ("put", key, *ttl, 0),
            StoreOp::Exists { key } => ("exists", key, 0, 0),
            // A bucket's period travels as `ttl`, its size as `capacity`.
            StoreOp::Take {
                key,
                capacity,
                period,
            } => ("take", key, *period, *capacity),
        };
        let digest = Sha256::digest(key.as_bytes());
        let mut id = String::with_capacity(32);
        for b in digest.iter().take(16) {
            id.push_str(&format!("{b:02x}"));
        }
        let shard = digest
            .first()
            .map_or(0, |b| u32::from(*b))
            .wrapping_mul(257)
            .wrapping_add(digest.get(1).map_or(0, |b| u32::from(*b)))
            % self.shards;
        let stub = self
            .namespace
            .get_by_name(&format!("mcpgate-store-{shard}"))?;
        let url = format!("https://mcpgate-store/{verb}?id={id}&ttl={ttl}&capacity={capacity}");
        let mut init = RequestInit::new();
        init.with_method(Method::Post);
        let req = Request::new_with_init(&url, &init)?;
        let mut resp = stub.fetch_with_request(req).await?;
        if resp.status_code() != 200 {
            return Err(worker::Error::RustError(format!(
                "store answered {}",
                resp.status_code()
            )));
        }
        Ok(resp.text().await? == "1")
    }
}

/// The Durable Object class holding one shard of the store.
#[durable_object]
pub struct McpgateStore {
    state: State,
    /// Where the running sweep continues (in memory: a restart just sweeps from the start).
    sweep_from: std::cell::RefCell<Option<String>>,
}

fn param(url: &worker::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

impl McpgateStore {
    async fn live(&self, id: &str, now: u64) -> worker::Result<bool> {
        let exp: Option<u64> = self.state.storage().get(id).await?;
        Ok(exp.is_some_and(|e| e > now))
    }

    async fn ensure_alarm(&self) -> worker::Result<()> {
        let storage = self.state.storage();
        if storage.get_alarm().await?.is_none() {
            storage.set_alarm(SWEEP_INTERVAL).await?;
        }
        Ok(())
    }
}

impl DurableObject for McpgateStore {
    fn new(state: State, _env: Env) -> Self {
        Self {
            state,
            sweep_from: std::cell::RefCell::new(None),
        }
    }

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        let url = req.url()?;
        let Some(id) = param(&url, "id").filter(|id| id.len() == 32) else {
            return Response::error("bad store request", 400);
        };
        let now = now_secs();
        let answer = match url.path() {
            "/exists" => self.live(&id, now).await?,
            "/put" => {
                let ttl: u64 = param(&url, "ttl").and_then(|t| t.parse().ok()).unwrap_or(0);
                if self.live(&id, now).await? {
                    false
                } else {
                    self.state
                        .storage()
                        .put(&id, now.saturating_add(ttl))
                        .await?;
                    self.ensure_alarm().await?;
                    true
                }
            }
            "/take" => {
                let period: u64 = param(&url, "ttl")
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(60);
                let capacity: u32 = param(&url, "capacity")
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0);
                let key = format!("b:{id}");
                let stored: Option<(u64, u64)> = self.state.storage().get(&key).await?;
                let current =
                    stored.map(|(milli, updated)| mcpgate_filter::store::Bucket { milli, updated });
                let (taken, b) =
                    mcpgate_filter::store::Bucket::take(current, capacity, period, now);
                self.state.storage().put(&key, (b.milli, b.updated)).await?;
                self.ensure_alarm().await?;
                taken
            }
            _ => return Response::error("unknown store operation", 404),
        };
        Response::ok(if answer { "1" } else { "0" })
    }

    /// Deletes expired entries, a batch per run.
    async fn alarm(&self) -> worker::Result<Response> {
        let storage = self.state.storage();
        let now = now_secs();
        let start = self.sweep_from.borrow().clone();
        let mut opts = ListOptions::new().limit(SWEEP_BATCH);
        if let Some(s) = start.as_deref() {
            opts = opts.start(s);
        }
        let page = storage.list_with_options(opts).await?;
        let mut seen = 0usize;
        let mut last = None;
        let mut expired = Vec::new();
        for entry in page.entries() {
            let Ok(entry) = entry else { continue };
            let pair = js_sys::Array::from(&entry);
            let key = pair.get(0).as_string();
            let value = pair.get(1);
            // One-time entries hold their expiry; rate-limit buckets ([milli, updated]) count as
            // expired an hour after their last use (full again long before).
            let exp = value.as_f64().or_else(|| {
                js_sys::Array::from(&value)
                    .get(1)
                    .as_f64()
                    .map(|updated| updated + 3600.0)
            });
            seen += 1;
            if let (Some(k), Some(e)) = (key, exp) {
                if e <= now as f64 {
                    expired.push(k.clone());
                }
                last = Some(k);
            }
        }
        let removed = expired.len();
        if removed > 0 {
            storage.delete_multiple(expired).await?;
        }
        if seen >= SWEEP_BATCH {
            // More to look at: continue after the last key soon.
            *self.sweep_from.borrow_mut() = last.map(|k| format!("{k}\u{0}"));
            storage.set_alarm(Duration::from_secs(1)).await?;
        } else {
            *self.sweep_from.borrow_mut() = None;
            if seen > removed || start.is_some() {
                storage.set_alarm(SWEEP_INTERVAL).await?;
            }
        }
        Response::ok("swept")
    }
}
