//! Per-tool authorization's untrusted inputs: MCP POST bodies with `Mcp-Method` / `Mcp-Name`
//! headers (the bounded parse and the header check), name patterns, and `tools/list` answers
//! through the filter, whole (JSON) and in fuzz-chosen chunks (SSE). Whatever arrives, nothing
//! panics, and a hidden tool's name never comes out of the filter in a rewritten answer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcpgate_filter::access_token::{self, Subject};
use mcpgate_filter::config::parse_json;
use mcpgate_filter::tools_list::ListFilter;
use mcpgate_filter::{mcp_request, Env, Gate, Outcome, Request};
use std::sync::OnceLock;

#[path = "common.rs"]
mod common;

/// A filter for `tools/list` id 1 that hides `secret_*`.
fn list_filter() -> ListFilter {
    let cfg = serde_json::json!({
        "user_pool_id": "eu-central-1_TEST",
        "client_id": "app-client-id",
        "client_secret": "app-secret",
        "base_url": "https://mcp.example.com",
        "cognito_domain": "https://auth.example.com",
        "jwt_signing_key": "a-signing-key-of-at-least-32-characters!",
        "tool_rules": [{"name": "secret_*", "groups": ["nobody"]}],
        "filter_tools_list": true,
    });
    let gate = match parse_json(cfg.to_string().as_bytes(), &[], &|_| None).map(|p| Gate::new(p.config)) {
        Ok(Ok(g)) => g,
        _ => panic!("fixture gate"),
    };
    let mut rng = common::Xorshift(1);
    let mut env = Env { now: 1_800_000_000, random: &mut rng, upstream_keys: None, store: false, native_rsa: None, cache: None };
    let subject = Subject { client_id: "c".into(), sub: "s".into(), scope: "openid".into(), ..Default::default() };
    let token = access_token::mint(&gate, &subject, 3600, &mut env).unwrap_or_default();
    let auth = format!("Bearer {token}");
    let headers = [("authorization", auth.as_str())];
    let req = Request { method: "POST", path: "/mcp", headers: &headers, body: br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#, client_address: None };
    match gate.handle(&req, &mut env) {
        Outcome::Forward(f) => f.list_filter.unwrap_or_else(|| panic!("no filter")),
        _ => panic!("tools/list not forwarded"),
    }
}

static FILTER: OnceLock<ListFilter> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let filter = FILTER.get_or_init(list_filter);
    let Some((&selector, rest)) = data.split_first() else { return };
    // Body, then optional headers after a \u{1}.
    let text = String::from_utf8_lossy(rest);
    let (body, header_blob) = text.split_once('\u{1}').unwrap_or((&text, ""));
    let headers: Vec<(&str, &str)> = header_blob.lines().filter_map(|l| l.split_once(':')).collect();
    if let Ok(msg) = mcp_request::parse(body.as_bytes()) {
        let _ = mcp_request::check_headers(&headers, &msg);
        if let Some(name) = &msg.name {
            let _ = mcpgate_filter::glob::matches(header_blob, name);
        }
    }
    // The same bytes as a tools/list answer, whole and as an SSE stream in chunks.
    let whole = filter.json(rest);
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&whole) {
        let ours = v.get("id").and_then(serde_json::Value::as_f64) == Some(1.0);
        let tools = v.pointer("/result/tools").and_then(serde_json::Value::as_array);
        for t in tools.into_iter().flatten().filter(|_| ours) {
            let name = t.get("name").and_then(serde_json::Value::as_str).unwrap_or("");
            assert!(!name.starts_with("secret_"), "a hidden tool passed the JSON filter");
        }
    }
    let size = usize::from(selector % 64) + 1;
    let mut sse = filter.sse();
    let mut out = Vec::new();
    for chunk in rest.chunks(size) {
        sse.push(chunk, &mut out);
    }
    sse.finish(&mut out);
});
