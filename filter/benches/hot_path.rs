//! Criterion micro-benchmarks of the per-request hot paths: the MCP guard with the proxy's own
//! token (uncached and cached), an IdP RS256 token (uncached and cached), the 401 path,
//! a pass-through route, and sealing. Run with `cargo bench -p mcpgate-filter --bench hot_path`.

use criterion::{criterion_group, criterion_main, Criterion};
use mcpgate_filter::access_token::{self, Subject};
use mcpgate_filter::config::{parse_json, Secret, SigningAlgorithm};
use mcpgate_filter::jwt::KeySet;
use mcpgate_filter::keys::KeyRing;
use mcpgate_filter::seal::{self, Kind};
use mcpgate_filter::token_cache::TokenCache;
use mcpgate_filter::{Env, Gate, Outcome, Random, Request};
use std::hint::black_box;

#[path = "../src/jwt/tests/vectors.rs"]
mod vectors;

struct Xorshift(u64);
impl Random for Xorshift {
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            *b = self.0 as u8;
        }
    }
}

fn gate() -> Gate {
    let cfg = serde_json::json!({
        "user_pool_id": "eu-central-1_TEST",
        "client_id": vectors::APP_CLIENT,
        "client_secret": "app-secret",
        "base_url": "https://mcp.example.com",
        "cognito_domain": "https://auth.example.com",
        "jwt_signing_key": "a-signing-key-of-at-least-32-characters!",
        "accepted_client_ids": [vectors::APP_CLIENT],
    });
    Gate::new(
        parse_json(cfg.to_string().as_bytes(), &[], &|_| None)
            .unwrap()
            .config,
    )
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let gate = gate();
    let upstream = KeySet::from_json(vectors::test_jwks().as_bytes()).unwrap();
    let mut rng = Xorshift(7);
    let subject = Subject {
        client_id: "client".into(),
        sub: "6a1f1d2e-1111-2222-3333-444455556666".into(),
        scope: "openid email".into(),
        username: Some("alice".into()),
        groups: vec!["admins".into()],
        email: Some("alice@example.com".into()),
        extra: vec![],
        sid: None,
    };
    let own = {
        let mut env = Env {
            now: vectors::NOW,
            random: &mut rng,
            upstream_keys: None,
            store: false,
            native_rsa: None,
            cache: None,
        };
        access_token::mint(&gate, &subject, 3600, &mut env).unwrap()
    };
    let cognito = vectors::rs256(&vectors::cognito_access_claims());

    let mut run = |name: &str,
                   token: Option<&str>,
                   path: &str,
                   cache: Option<&mut TokenCache>,
                   c: &mut Criterion| {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers: Vec<(&str, &str)> = vec![
            (":authority", "mcp.example.com"),
            ("content-type", "application/json"),
            ("accept", "application/json, text/event-stream"),
            ("mcp-protocol-version", "2025-06-18"),
        ];
        if let Some(a) = &auth {
            headers.push(("authorization", a));
        }
        let mut cache = cache;
        c.bench_function(name, |b| {
            b.iter(|| {
                let req = Request {
                    method: "POST",
                    path,
                    headers: &headers,
                    body: b"",
                    client_address: Some("192.0.2.7"),
                };
                let mut env = Env {
                    now: vectors::NOW,
                    random: &mut rng,
                    upstream_keys: Some(&upstream),
                    store: false,
                    native_rsa: None,
                    cache: cache.as_deref_mut(),
                };
                match gate.handle(black_box(&req), &mut env) {
                    Outcome::Forward(f) => f.set_headers.len(),
                    Outcome::Respond(r) => r.status as usize,
                    _ => 0,
                }
            })
        });
    };
    run("mcp/own token, uncached", Some(&own), "/mcp", None, c);
    run(
        "mcp/own token, cache hit",
        Some(&own),
        "/mcp",
        Some(&mut TokenCache::new(256)),
        c,
    );
    run(
        "mcp/cognito RS256 token, uncached",
        Some(&cognito),
        "/mcp",
        None,
        c,
    );
    run(
        "mcp/cognito RS256 token, cache hit",
        Some(&cognito),
        "/mcp",
        Some(&mut TokenCache::new(256)),
        c,
    );
    run("mcp/no token (401)", None, "/mcp", None, c);
    run(
        "mcp/garbage token (401)",
        Some("garbage.token.value"),
        "/mcp",
        None,
        c,
    );
    run("route/pass-through path", None, "/health", None, c);

    let ring = KeyRing::new(
        &[Secret::new(
            "a-signing-key-of-at-least-32-characters!".into(),
        )],
        SigningAlgorithm::Hs256,
    )
    .unwrap();
    let value = serde_json::json!({"client_id": "c", "redirect_uri": "http://127.0.0.1/cb", "scope": "openid email", "sub": "6a1f1d2e"});
    c.bench_function("seal/seal a code-sized value", |b| {
        b.iter(|| seal::seal(&ring, Kind::Code, black_box(&value), u64::MAX, &mut rng).unwrap())
    });
    let sealed = seal::seal(&ring, Kind::Code, &value, u64::MAX, &mut rng).unwrap();
    c.bench_function("seal/unseal a code-sized value", |b| {
        b.iter(|| {
            seal::unseal::<serde_json::Value>(&ring, Kind::Code, black_box(&sealed), 0).unwrap()
        })
    });

    // The store's revocation check as Envoy does it: find one id in a record. A full slot
    // (32 entries, what every check reads now) against a whole shard of 20,000 entries
    // (what every check parsed before the store became a table of small slots).
    let record = |n: usize| {
        let mut e = mcpgate_filter::store::Entries::default();
        for i in 0..n {
            let op = mcpgate_filter::StoreOp::Advance {
                key: String::new(),
                from: 0,
                ttl: 1000,
            };
            e.apply(&format!("{i:032x}"), &op, 0, n).unwrap();
        }
        e.to_bytes()
    };
    let slot = record(32);
    let shard = record(20_000);
    let missing = format!("{:032x}", u64::MAX);
    c.bench_function("store/revocation check, full slot (32 entries)", |b| {
        b.iter(|| mcpgate_filter::store::Entries::find(black_box(&slot), &missing, 1))
    });
    c.bench_function(
        "store/revocation check, whole shard (20,000 entries)",
        |b| b.iter(|| mcpgate_filter::store::Entries::parse(black_box(&shard), 1).get(&missing, 1)),
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
