//! Criterion micro-benchmarks of per-tool authorization in the core: an MCP `tools/call`
//! with a cached own token, without and with a 10-rule `tool_rules` set (the body parse, the
//! header check, the rules), and the `tools/list` filter over a 20-tool answer (JSON, SSE).
//! Run with `cargo bench -p mcpgate-filter --bench tool_rules`.

use criterion::{criterion_group, criterion_main, Criterion};
use mcpgate_filter::access_token::{self, Subject};
use mcpgate_filter::config::parse_json;
use mcpgate_filter::token_cache::TokenCache;
use mcpgate_filter::{Env, Forward, Gate, Outcome, Random, Request};
use serde_json::{json, Value};
use std::hint::black_box;

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

const NOW: u64 = 1_800_000_000;

fn gate(extra: Value) -> Gate {
    let mut cfg = json!({
        "user_pool_id": "eu-central-1_TEST",
        "client_id": "app",
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

/// The bench's 10 rules (as `bench/src/main.rs`); `whoami` is matched by the last.
fn ten_rules() -> Value {
    json!({"tool_rules": [
        {"name": "admin_*", "groups": ["admins"]},
        {"name": "delete_*", "scopes": ["mcp/write"], "groups": ["admins"]},
        {"name": "write_*", "scopes": ["mcp/write"]},
        {"name": "deploy", "groups": ["ops"]},
        {"name": "billing_*", "claims": {"custom:tenant": "acme"}},
        {"method": "resources/read", "name": "file:///secret/*", "scopes": ["files"]},
        {"method": "prompts/get", "name": "internal_*", "groups": ["staff"]},
        {"name": "search", "scopes": ["openid"]},
        {"name": "fetch_*", "scopes": ["email"]},
        {"name": "whoami"},
    ], "filter_tools_list": true})
}

fn tools_answer(id: u64) -> String {
    let tools: Vec<Value> = [
        "whoami",
        "search",
        "fetch_page",
        "admin_users",
        "admin_logs",
        "delete_user",
        "write_file",
        "deploy",
        "billing_report",
        "echo",
        "count",
        "t1",
        "t2",
        "t3",
        "t4",
        "t5",
        "t6",
        "t7",
        "t8",
        "t9",
    ]
    .iter()
    .map(|n| {
        json!({"name": n, "description": format!("The {n} tool"),
                    "inputSchema": {"type": "object", "properties": {"q": {"type": "string"}}}})
    })
    .collect();
    json!({"jsonrpc": "2.0", "id": id, "result": {"tools": tools}}).to_string()
}

fn bench(c: &mut Criterion) {
    let mut rng = Xorshift(7);
    let subject = Subject {
        client_id: "client".into(),
        sub: "user-1".into(),
        scope: "openid email".into(),
        username: Some("alice".into()),
        groups: vec!["admins".into()],
        ..Default::default()
    };
    let call = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}"#;
    let list = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#;
    c.bench_function("tool_rules/parse a tools/call body", |b| {
        b.iter(|| mcpgate_filter::mcp_request::parse(black_box(&call[..])).unwrap())
    });
    let msg = mcpgate_filter::mcp_request::parse(&call[..]).unwrap();
    let mcp_headers = [("mcp-method", "tools/call"), ("mcp-name", "whoami")];
    c.bench_function("tool_rules/check Mcp-Method and Mcp-Name", |b| {
        b.iter(|| mcpgate_filter::mcp_request::check_headers(black_box(&mcp_headers), &msg))
    });
    let mut list_filter = None;
    for (name, extra, body, mcp_headers) in [
        (
            "tool_rules/tools/call, no rules",
            json!({}),
            &call[..],
            true,
        ),
        (
            "tool_rules/tools/call, 10 rules",
            ten_rules(),
            &call[..],
            true,
        ),
        (
            "tool_rules/tools/list, 10 rules",
            ten_rules(),
            &list[..],
            false,
        ),
    ] {
        let gate = gate(extra);
        let own = {
            let mut env = Env {
                now: NOW,
                random: &mut rng,
                upstream_keys: None,
                store: false,
                native_rsa: None,
                cache: None,
            };
            access_token::mint(&gate, &subject, 3600, &mut env).unwrap()
        };
        let auth = format!("Bearer {own}");
        let mut headers: Vec<(&str, &str)> = vec![
            (":authority", "mcp.example.com"),
            ("content-type", "application/json"),
            ("accept", "application/json, text/event-stream"),
            ("mcp-protocol-version", "2026-07-28"),
            ("authorization", &auth),
        ];
        if mcp_headers {
            headers.extend([("mcp-method", "tools/call"), ("mcp-name", "whoami")]);
        }
        let mut cache = TokenCache::new(256);
        let mut last: Option<Forward> = None;
        c.bench_function(name, |b| {
            b.iter(|| {
                let req = Request {
                    method: "POST",
                    path: "/mcp",
                    headers: &headers,
                    body: black_box(body),
                    client_address: None,
                };
                let mut env = Env {
                    now: NOW,
                    random: &mut rng,
                    upstream_keys: None,
                    store: false,
                    native_rsa: None,
                    cache: Some(&mut cache),
                };
                match gate.handle(&req, &mut env) {
                    Outcome::Forward(f) => last = Some(f),
                    _ => panic!("{name}: not forwarded"),
                }
            })
        });
        if let Some(f) = last.and_then(|f| f.list_filter) {
            list_filter = Some(f);
        }
    }
    let filter = list_filter.expect("a tools/list filter");
    let answer = tools_answer(1);
    c.bench_function("tool_rules/filter a 20-tool JSON answer", |b| {
        b.iter(|| filter.json(black_box(answer.as_bytes())))
    });
    let stream = format!("event: message\ndata: {answer}\n\n");
    c.bench_function(
        "tool_rules/filter a 20-tool SSE answer (4 KiB chunks)",
        |b| {
            b.iter(|| {
                let mut sse = filter.sse();
                let mut out = Vec::new();
                for chunk in stream.as_bytes().chunks(4096) {
                    sse.push(black_box(chunk), &mut out);
                }
                sse.finish(&mut out);
                out
            })
        },
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
