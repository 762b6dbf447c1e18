//! What the origin headers of issue 16 cost per MCP request: the identity assertion (signed
//! on every request, or reused from the verified-token cache) and the IdP's token carried in
//! the proxy's access token (opened on every request, or reused from the cache), against the
//! guard alone. Run with `cargo bench -p mcpgate-filter --bench forwarding`.

use criterion::{criterion_group, criterion_main, Criterion};
use mcpgate_filter::access_token::{self, Subject};
use mcpgate_filter::config::parse_json;
use mcpgate_filter::token_cache::TokenCache;
use mcpgate_filter::upstream_token::{self, Carried};
use mcpgate_filter::{Env, Gate, Outcome, Random, Request};
use serde_json::{json, Value};
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

fn gate(extra: Value) -> Gate {
    let mut cfg = json!({
        "user_pool_id": "eu-central-1_TEST",
        "client_id": vectors::APP_CLIENT,
        "client_secret": "app-secret",
        "base_url": "https://mcp.example.com",
        "cognito_domain": "https://auth.example.com",
        "jwt_signing_key": "a-signing-key-of-at-least-32-characters!",
    });
    for (k, v) in extra.as_object().unwrap() {
        cfg[k] = v.clone();
    }
    Gate::new(
        parse_json(cfg.to_string().as_bytes(), &[], &|_| None)
            .unwrap()
            .config,
    )
    .unwrap()
}

/// An access token of `gate`, carrying a Cognito-sized IdP token when `upstream`.
fn token(gate: &Gate, upstream: bool, rng: &mut Xorshift) -> String {
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
    let mut env = Env {
        now: vectors::NOW,
        random: rng,
        upstream_keys: None,
        store: false,
        native_rsa: None,
        cache: None,
    };
    let mut claims = Vec::new();
    if upstream {
        let carried = Carried {
            token: vectors::rs256(&vectors::cognito_access_claims()),
            exp: vectors::NOW + 3600,
            obtained: vectors::NOW,
            refresh: None,
        };
        let exp = vectors::NOW + 3540;
        let sealed = upstream_token::seal_claim(gate, &carried, exp, env.random).unwrap();
        claims.push((upstream_token::CLAIM, sealed));
    }
    access_token::mint_with(gate, &subject, 3540, &claims, &mut env).unwrap()
}

fn bench(c: &mut Criterion) {
    let mut rng = Xorshift(7);
    let cases = [
        ("guard alone", json!({}), false),
        (
            "+ assertion ES256",
            json!({"identity_assertion": true}),
            false,
        ),
        (
            "+ assertion EdDSA",
            json!({"identity_assertion": true, "signing_algorithm": "EdDSA"}),
            false,
        ),
        (
            "+ IdP token (access)",
            json!({"forward_upstream_token": "access"}),
            true,
        ),
        (
            "+ both",
            json!({"identity_assertion": true, "forward_upstream_token": "access"}),
            true,
        ),
    ];
    for (name, extra, upstream) in cases {
        let gate = gate(extra);
        let token = token(&gate, upstream, &mut rng);
        let auth = format!("Bearer {token}");
        let headers: Vec<(&str, &str)> = vec![
            (":authority", "mcp.example.com"),
            ("content-type", "application/json"),
            ("accept", "application/json, text/event-stream"),
            ("authorization", &auth),
        ];
        for cached in [false, true] {
            let mut cache = TokenCache::new(256);
            let label = if cached {
                "token cache on"
            } else {
                "no token cache (all derived per request)"
            };
            c.bench_function(&format!("origin headers/{name}, {label}"), |b| {
                b.iter(|| {
                    let req = Request {
                        method: "POST",
                        path: "/mcp",
                        headers: &headers,
                        body: b"",
                        client_address: None,
                    };
                    let mut env = Env {
                        now: vectors::NOW,
                        random: &mut rng,
                        upstream_keys: None,
                        store: false,
                        native_rsa: None,
                        cache: if cached { Some(&mut cache) } else { None },
                    };
                    match gate.handle(black_box(&req), &mut env) {
                        Outcome::Forward(f) => f.set_headers.len(),
                        _ => panic!("not forwarded"),
                    }
                })
            });
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
