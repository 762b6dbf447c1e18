//! Whole requests through the gate (method, path, headers, body) with host calls answered by
//! fuzz bytes too: whatever arrives, the core answers without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcpgate_filter::jwt::KeySet;
use mcpgate_filter::store::{self, MemoryStore};
use mcpgate_filter::token_cache::TokenCache;
use mcpgate_filter::{Env, HttpResponse, Outcome, Reply, Request};
use std::sync::OnceLock;

#[path = "common.rs"]
mod common;

static FIXTURE: OnceLock<(mcpgate_filter::Gate, KeySet)> = OnceLock::new();

const METHODS: [&str; 5] = ["GET", "POST", "OPTIONS", "PUT", "DELETE"];
const PATHS: [&str; 10] = ["/mcp", "/register", "/authorize", "/consent", "/auth/callback", "/token", "/revoke", "/.well-known/oauth-authorization-server", "/.well-known/oauth-protected-resource/mcp", "/other"];

fuzz_target!(|data: &[u8]| {
    let (gate, keys) = FIXTURE.get_or_init(|| (common::gate(), KeySet::from_json(common::JWKS.as_bytes()).unwrap_or_default()));
    let Some((&selector, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    let mut parts = text.splitn(4, '\u{1}');
    let query = parts.next().unwrap_or("");
    let header_blob = parts.next().unwrap_or("");
    let body = parts.next().unwrap_or("");
    let upstream = parts.next().unwrap_or("").as_bytes().to_vec();
    let path = format!("{}{}{}", PATHS[(selector as usize >> 3) % PATHS.len()], if query.is_empty() { "" } else { "?" }, query);
    let headers: Vec<(&str, &str)> = header_blob.lines().filter_map(|l| l.split_once(':')).collect();
    let req = Request { method: METHODS[selector as usize % METHODS.len()], path: &path, headers: &headers, body: body.as_bytes(), client_address: Some("192.0.2.7") };
    let mut rng = common::Xorshift(u64::from(selector) + 1);
    let mut store = MemoryStore::new(64);
    let mut cache = TokenCache::new(8);
    let mut env = Env { now: 1_800_000_000, random: &mut rng, upstream_keys: Some(keys), store: true, native_rsa: None, cache: Some(&mut cache) };
    let mut out = gate.handle(&req, &mut env);
    for _ in 0..8 {
        let (k, reply) = match out {
            Outcome::Respond(r) => {
                assert!(r.status >= 200 && r.status < 600);
                return;
            }
            Outcome::Forward(_) => return,
            Outcome::Fetch { paused, .. } => (paused, Reply::Http(HttpResponse { status: 200, headers: vec![], body: upstream.clone() })),
            Outcome::Store { op, paused } => (paused, store::perform(&mut store, &op, 1_800_000_000)),
            Outcome::NeedKeys { paused } => (paused, Reply::Keys),
        };
        out = gate.resume(k, reply, &mut env);
    }
});
