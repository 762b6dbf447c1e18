//! Per-tool authorization (`tool_rules`) end to end, shared by every host and run in front
//! of both origins (listed in [`shared_scenario_tests!`](crate::shared_scenario_tests)): the
//! rmcp client signs in through the Cognito emulator and calls tools through the proxy.
//!
//! The rules ([`tool_rule_options`]): `echo` needs the `profile` scope (which the emulator's
//! app client may grant, but the test client does not ask for at first), `count` the
//! `admins` group (alice is in it, bob is not); `tools/list` answers are filtered.

use rmcp::model::CallToolRequestParams;
use serde_json::{json, Map, Value};

use crate::harness::http_client;
use crate::journey::{mcp_client, Tokens};
use crate::scenarios::{jsonrpc_answer, resource_metadata, sign_in, Host, HostOptions};

/// `echo` needs `profile`, `count` needs `admins`; `tools/list` answers filtered.
pub fn tool_rule_options<O: HostOptions>() -> O {
    O::default()
        .config(
            "tool_rules",
            json!([
                {"method": "tools/call", "name": "echo", "scopes": ["profile"]},
                {"name": "count", "groups": ["admins"]},
            ]),
        )
        .config("filter_tools_list", json!(true))
}

/// The tools `tools/list` shows the holder of `token`, through the rmcp client.
pub async fn listed_tools(h: &impl Host, token: &str) -> Vec<String> {
    let client = mcp_client(&h.mcp_url(), token).await.unwrap();
    let tools = client.list_all_tools().await.unwrap();
    client.cancel().await.unwrap();
    tools.iter().map(|t| t.name.to_string()).collect()
}

/// `tools/call name(arguments)` through the rmcp client: the text of the answer, or the
/// `WWW-Authenticate` challenge the call ran into.
pub async fn call_tool(
    h: &impl Host,
    token: &str,
    name: &'static str,
    arguments: Value,
) -> Result<String, String> {
    let client = mcp_client(&h.mcp_url(), token).await.unwrap();
    let args: Map<String, Value> = arguments.as_object().cloned().unwrap_or_default();
    let result = client
        .call_tool(CallToolRequestParams::new(name).with_arguments(args))
        .await;
    let out = match result {
        Ok(r) => Ok(serde_json::to_value(&r.content).unwrap().to_string()),
        Err(e) => Err(e
            .auth_challenge()
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("{name}: failed without a challenge: {e}"))),
    };
    let _ = client.cancel().await;
    out
}

/// A raw MCP POST: status, `WWW-Authenticate`, the JSON-RPC answer.
pub async fn post_mcp(
    h: &impl Host,
    token: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> (u16, Option<String>, Value) {
    let mut req = http_client()
        .post(h.mcp_url())
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .json(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let www = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let ct = resp
        .headers()
        .get("content-type")
        .map_or(String::new(), |v| v.to_str().unwrap().to_owned());
    let text = resp.text().await.unwrap();
    (status, www, jsonrpc_answer(&ct, &text))
}

fn tools_call(id: u64, name: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": name, "arguments": arguments}})
}

/// `scope="…"` of a challenge.
fn challenge_scope(www: &str) -> String {
    let start = www
        .find("scope=\"")
        .unwrap_or_else(|| panic!("no scope in {www}"))
        + 7;
    let end = www[start..].find('"').unwrap() + start;
    www[start..end].to_owned()
}

/// Step-up: alice's first token (`openid email`) does not list `echo` and is refused it
/// with 403 `insufficient_scope` naming `openid profile` (plus a JSON-RPC error with the
/// request's id); the client authorizes again asking for those scopes, the emulator grants
/// them, the proxy's new token carries them, and `echo` is listed and answers.
pub async fn step_up_after_insufficient_scope(h: &impl Host) {
    let (mut j, tokens) = sign_in(h, "alice", "alice-password").await;
    let names = listed_tools(h, &tokens.access).await;
    assert!(!names.iter().any(|n| n == "echo"), "{names:?}");
    for tool in ["whoami", "count"] {
        assert!(names.iter().any(|n| n == tool), "{tool} in {names:?}");
    }

    let www = call_tool(h, &tokens.access, "echo", json!({"text": "hi"}))
        .await
        .unwrap_err();
    assert!(www.starts_with("Bearer "), "{www}");
    assert!(www.contains("error=\"insufficient_scope\""), "{www}");
    assert_eq!(challenge_scope(&www), "openid profile");
    assert_eq!(
        resource_metadata(&www),
        format!("{}/.well-known/oauth-protected-resource/mcp", h.base_url())
    );
    // Clients that read the body get a JSON-RPC error for their request.
    let (status, _, body) = post_mcp(
        h,
        &tokens.access,
        &tools_call(41, "echo", json!({"text": "hi"})),
        &[],
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(body["id"], 41, "{body}");
    assert_eq!(body["error"]["data"]["scope"], "openid profile", "{body}");

    // Authorize again with the challenge's scopes (the client's registration is kept).
    j.scope = challenge_scope(&www);
    let stepped: Tokens = j.login("alice", "alice-password").await.unwrap();
    let granted = stepped.body["scope"].as_str().unwrap_or_default();
    assert!(
        granted.split(' ').any(|s| s == "profile"),
        "the proxy grants what the IdP granted: {}",
        stepped.body
    );
    let names = listed_tools(h, &stepped.access).await;
    assert!(names.iter().any(|n| n == "echo"), "{names:?}");
    let out = call_tool(h, &stepped.access, "echo", json!({"text": "stepped up"}))
        .await
        .unwrap();
    assert!(out.contains("stepped up"), "{out}");
}

/// A group rule: alice (`admins`) calls `count`; bob is refused it (no scope can fix that)
/// and his filtered `tools/list` does not show it, while `whoami` stays his.
pub async fn group_rule_alice_but_not_bob(h: &impl Host) {
    let (_, alice) = sign_in(h, "alice", "alice-password").await;
    let out = call_tool(h, &alice.access, "count", json!({"n": 1, "interval_ms": 0}))
        .await
        .unwrap();
    assert!(out.contains("counted 1"), "{out}");

    let (_, bob) = sign_in(h, "bob", "bob-password").await;
    let names = listed_tools(h, &bob.access).await;
    assert!(!names.iter().any(|n| n == "count"), "{names:?}");
    assert!(names.iter().any(|n| n == "whoami"), "{names:?}");
    let www = call_tool(h, &bob.access, "count", json!({"n": 1}))
        .await
        .unwrap_err();
    assert!(www.contains("error=\"insufficient_scope\""), "{www}");
    assert!(www.contains("group"), "the description says why: {www}");
    let (status, _, body) =
        post_mcp(h, &bob.access, &tools_call(5, "whoami", json!({})), &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["result"]["structuredContent"]["headers"]["x-mcpgate-username"], "bob",
        "{body}"
    );
}

/// The 2026-07-28 `Mcp-Method` / `Mcp-Name` headers must match the body: naming an allowed
/// tool in the headers while the body calls another is 400 with JSON-RPC error -32020 and
/// never reaches the origin; matching headers (plain and base64) pass; a batch is refused.
pub async fn header_body_mismatch_refused(h: &impl Host) {
    let (_, bob) = sign_in(h, "bob", "bob-password").await;
    let before = h.origin_requests().await.len();
    let count = tools_call(7, "count", json!({"n": 1}));
    let cases: [&[(&str, &str)]; 3] = [
        &[("mcp-method", "tools/call"), ("mcp-name", "whoami")],
        &[("mcp-method", "tools/list")],
        &[("mcp-name", "=?base64?d2hvYW1p?=")],
    ];
    for headers in cases {
        let (status, _, body) = post_mcp(h, &bob.access, &count, headers).await;
        assert_eq!(status, 400, "{headers:?}: {body}");
        assert_eq!(body["error"]["code"], -32020, "{headers:?}: {body}");
        assert_eq!(body["id"], 7, "{body}");
    }
    let batch = json!([tools_call(8, "whoami", json!({}))]);
    let (status, _, body) = post_mcp(h, &bob.access, &batch, &[]).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!(-32600)),
        "{body}"
    );
    assert_eq!(
        h.origin_requests().await.len(),
        before,
        "refused requests never reach the origin"
    );
    for name in ["whoami", "=?base64?d2hvYW1p?="] {
        let headers = [("mcp-method", "tools/call"), ("mcp-name", name)];
        let (status, _, body) = post_mcp(
            h,
            &bob.access,
            &tools_call(9, "whoami", json!({})),
            &headers,
        )
        .await;
        assert_eq!(status, 200, "{name}: {body}");
        assert_eq!(body["id"], 9, "{body}");
    }
}
