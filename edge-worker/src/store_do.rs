//! The store: a Durable Object class, [`McpgateStore`], and the Worker's client for it.
//!
//! Each entry is `e:<id> → "<expiry> <mark>"` in the object's transactional storage (the
//! core's [`Entry`]: a used code, a refresh-token family's generation, a revoked family),
//! each bucket `b:<id> → [milli, updated]`, where `<id>` is the hex of 128 bits of SHA-256 of
//! the core's key. What an operation does is the core's rule ([`Entry::apply`],
//! [`Bucket::take`]). A Durable Object handles one event at a time between storage calls
//! (input gates), so the read-then-write of an operation cannot interleave with another
//! request: two edge locations can never both win the same authorization code or the same
//! rotation. Expired entries count as absent; an alarm sweeps them.
//!
//! The Worker addresses the instance `mcpgate-store-<n>` where `n` is the key hash modulo
//! `MCPGATE_STORE_SHARDS` (default 1: one global instance). A call that fails (the object
//! unreachable, a storage error) is answered [`Reply::StoreFailed`]: the core then lets rate
//! limits through and refuses one-time use with a 503 the client may retry.

use std::time::Duration;

use mcpgate_filter::store::{self, Bucket, Entry, Mark};
use mcpgate_filter::{Reply, StoreOp};
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

    /// Carries out `op`; a failure is logged and answered [`Reply::StoreFailed`] (the core
    /// decides what it means for the request).
    pub async fn perform(&self, op: &StoreOp) -> Reply {
        match self.call(op).await {
            Ok(answer) => Reply::Store(answer),
            Err(e) => {
                worker::console_error!("mcpgate: store call failed: {e}");
                Reply::StoreFailed
            }
        }
    }

    async fn call(&self, op: &StoreOp) -> worker::Result<bool> {
        // A bucket's period travels as `ttl`, its size as `capacity`.
        let (verb, ttl, capacity, from) = match op {
            StoreOp::PutIfAbsent { ttl, .. } => ("put", *ttl, 0, 0),
            StoreOp::Advance { from, ttl, .. } => ("advance", *ttl, 0, *from),
            StoreOp::Revoke { ttl, .. } => ("revoke", *ttl, 0, 0),
            StoreOp::IsRevoked { .. } => ("revoked", 0, 0, 0),
            StoreOp::Take {
                capacity, period, ..
            } => ("take", *period, *capacity, 0),
        };
        let id = store::entry_id(op.key());
        // The shard formula of the first release (deployed objects keep their entries).
        let [first, second] = store::id_prefix(&id).to_be_bytes();
        let shard = (u32::from(first) * 257 + u32::from(second)) % self.shards;
        let stub = self
            .namespace
            .get_by_name(&format!("mcpgate-store-{shard}"))?;
        let url = format!(
            "https://mcpgate-store/{verb}?id={id}&ttl={ttl}&capacity={capacity}&from={from}"
        );
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
    async fn ensure_alarm(&self) -> worker::Result<()> {
        let storage = self.state.storage();
        if storage.get_alarm().await?.is_none() {
            storage.set_alarm(SWEEP_INTERVAL).await?;
        }
        Ok(())
    }

    /// An entry operation: the core's rule on the stored entry, written back when it changed.
    async fn entry(&self, id: &str, op: &StoreOp, now: u64) -> worker::Result<bool> {
        let key = format!("e:{id}");
        let stored: Option<String> = self.state.storage().get(&key).await?;
        let current = stored.as_deref().and_then(parse_entry);
        let (answer, write) = Entry::apply(current, op, now);
        if let Some(e) = write {
            self.state
                .storage()
                .put(&key, format!("{} {}", e.expires_at, e.mark.to_text()))
                .await?;
            self.ensure_alarm().await?;
        }
        Ok(answer)
    }
}

/// `"<expiry> <mark>"` as stored.
fn parse_entry(s: &str) -> Option<Entry> {
    let (exp, mark) = s.split_once(' ')?;
    Some(Entry {
        mark: Mark::from_text(mark)?,
        expires_at: exp.parse().ok()?,
    })
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
        let number = |name: &str| param(&url, name).and_then(|t| t.parse::<u64>().ok());
        let now = now_secs();
        // The key travels hashed; the operation's own key is not needed here.
        let key = String::new();
        let ttl = number("ttl").unwrap_or(0);
        let op = match url.path() {
            "/put" => StoreOp::PutIfAbsent { key, ttl },
            "/advance" => StoreOp::Advance {
                key,
                from: number("from").unwrap_or(0),
                ttl,
            },
            "/revoke" => StoreOp::Revoke { key, ttl },
            "/revoked" => StoreOp::IsRevoked { key },
            "/take" => {
                let period = number("ttl").unwrap_or(60);
                let capacity = u32::try_from(number("capacity").unwrap_or(0)).unwrap_or(0);
                let key = format!("b:{id}");
                let stored: Option<(u64, u64)> = self.state.storage().get(&key).await?;
                let current = stored.map(|(milli, updated)| Bucket { milli, updated });
                let (taken, b) = Bucket::take(current, capacity, period, now);
                self.state.storage().put(&key, (b.milli, b.updated)).await?;
                self.ensure_alarm().await?;
                return Response::ok(if taken { "1" } else { "0" });
            }
            _ => return Response::error("unknown store operation", 404),
        };
        let answer = self.entry(&id, &op, now).await?;
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
            // Entries hold "<expiry> <mark>"; rate-limit buckets ([milli, updated]) count as
            // expired an hour after their last use (full again long before); values of an
            // earlier version (a bare expiry) are swept by their expiry too.
            let exp = match value.as_string() {
                Some(text) => parse_entry(&text).map(|e| e.expires_at as f64),
                None => value.as_f64().or_else(|| {
                    js_sys::Array::from(&value)
                        .get(1)
                        .as_f64()
                        .map(|updated| updated + 3600.0)
                }),
            };
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
