//! The MCP client's whole journey through Envoy with the filter, and what survives a restart:
//! 401 with `resource_metadata` → discovery from that URL → registration → consent → sign-in
//! at the emulator → callback → token → `tools/list` and `whoami` with the rmcp client (the
//! identity arrives, the token does not) → refresh (rotated) → revoke.

use mcpgate_e2e::envoy_setup::{GateOptions, GateStack};
use mcpgate_e2e::harness::{http_client, EnvoyProcess};
use mcpgate_e2e::journey::{mcp_client, Journey};
use rmcp::model::CallToolRequestParams;
use serde_json::{json, Value};
use std::time::Duration;

/// `resource_metadata="…"` from a Bearer challenge.
fn resource_metadata(www: &str) -> String {
    let start = www.find("resource_metadata=\"").expect("resource_metadata") + 19;
    let end = www[start..].find('"').unwrap() + start;
    www[start..end].to_owned()
}

async fn whoami(mcp_url: &str, token: &str) -> Value {
    let client = mcp_client(mcp_url, token).await.unwrap();
    let r = client
        .call_tool(CallToolRequestParams::new("whoami"))
        .await
        .unwrap();
    client.cancel().await.unwrap();
    r.structured_content.unwrap()
}

#[tokio::test]
async fn mcp_client_journey_from_401_to_revoke() {
    let stack = GateStack::start(GateOptions::default()).await.unwrap();
    let http = http_client();

    // Unauthenticated: 401 pointing at the protected-resource metadata.
    let resp = http
        .post(stack.mcp_url())
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let www = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    let prm_url = resource_metadata(&www);
    assert_eq!(
        prm_url,
        format!(
            "{}/.well-known/oauth-protected-resource/mcp",
            stack.base_url
        )
    );

    // Discovery, following the documents like a client would.
    let prm: Value = http
        .get(&prm_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(prm["resource"], json!(stack.mcp_url()));
    let issuer = prm["authorization_servers"][0].as_str().unwrap();
    let asm: Value = http
        .get(format!("{issuer}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(asm["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        asm["registration_endpoint"],
        json!(format!("{}/register", stack.base_url))
    );

    // Registration, consent, sign-in at the emulator, callback, token.
    let mut j = Journey::register(&stack.base_url).await.unwrap();
    let tokens = j.login("alice", "alice-password").await.unwrap();
    assert_eq!(tokens.body["token_type"], "Bearer");
    let refresh = tokens.refresh.clone().expect("a refresh token");

    // MCP with the real client: tools/list, then whoami carries the identity, not the token.
    let client = mcp_client(&stack.mcp_url(), &tokens.access).await.unwrap();
    let tools = client.list_all_tools().await.unwrap();
    assert!(tools.iter().any(|t| t.name == "whoami"), "{tools:?}");
    client.cancel().await.unwrap();
    let out = whoami(&stack.mcp_url(), &tokens.access).await;
    assert_eq!(out["authorization_present"], json!(false), "{out}");
    assert_eq!(
        out["headers"]["x-mcpgate-username"],
        json!("alice"),
        "{out}"
    );
    assert_eq!(
        out["headers"]["x-mcpgate-sub"],
        json!("11111111-1111-4111-8111-111111111111"),
        "{out}"
    );
    assert_eq!(out["headers"]["x-mcpgate-groups"], json!("admins"), "{out}");
    assert_eq!(
        out["headers"]["x-mcpgate-email"],
        json!("alice@example.com"),
        "{out}"
    );

    // Refresh: new tokens, the refresh token rotated; the new access token works.
    let (status, body) = j.refresh(&refresh).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let refresh2 = body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(refresh2, refresh);
    let out = whoami(&stack.mcp_url(), body["access_token"].as_str().unwrap()).await;
    assert_eq!(out["headers"]["x-mcpgate-username"], json!("alice"));

    // The rotated-out refresh token is refused (reuse detection in the shared-data store)…
    let (status, body) = j.refresh(&refresh).await.unwrap();
    assert_eq!(
        (status, body["error"].clone()),
        (400, json!("invalid_grant")),
        "{body}"
    );

    // …and revocation ends the grant: 200, then the refresh is refused.
    let mut j2 = Journey::register(&stack.base_url).await.unwrap();
    let t2 = j2.login("bob", "bob-password").await.unwrap();
    let r2 = t2.refresh.unwrap();
    assert_eq!(j2.revoke(&r2).await.unwrap(), 200);
    let (status, body) = j2.refresh(&r2).await.unwrap();
    assert_eq!(
        (status, body["error"].clone()),
        (400, json!("invalid_grant")),
        "{body}"
    );
    assert!(
        stack.idp.stats().count("revoke") >= 1,
        "revoked at the IdP too"
    );
}

#[tokio::test]
async fn tokens_survive_an_envoy_restart_with_the_same_keys() {
    let mut stack = GateStack::start(GateOptions::default()).await.unwrap();
    let mut j = Journey::register(&stack.base_url).await.unwrap();
    let tokens = j.login("alice", "alice-password").await.unwrap();

    // Stop Envoy and start a new one with the same configuration (same port, same keys).
    let config = std::fs::read_to_string(&stack.envoy.config_path).unwrap();
    stack.envoy.child.kill();
    stack.envoy = EnvoyProcess::start("envoy-restarted", &config, &[], Duration::from_secs(60))
        .await
        .unwrap();
    mcpgate_e2e::harness::wait_until(
        Duration::from_secs(20),
        "the restarted filter's keys",
        || async { (stack.counter("mcpgate.jwks_fetch_ok").await.unwrap_or(0) >= 1).then_some(()) },
    )
    .await
    .unwrap();

    // The access token issued before the restart is still accepted…
    let out = whoami(&stack.mcp_url(), &tokens.access).await;
    assert_eq!(
        out["headers"]["x-mcpgate-username"],
        json!("alice"),
        "{out}"
    );
    // …and so is the refresh token (sealed, no server-side state to lose).
    let (status, body) = j.refresh(tokens.refresh.as_deref().unwrap()).await.unwrap();
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after_across_workers() {
    let stack = GateStack::start(
        GateOptions::default()
            .set("rate_limit_per_address", json!(5))
            .concurrency(2),
    )
    .await
    .unwrap();
    let http = http_client();
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..8 {
        let resp = http
            .post(format!("{}/register", stack.base_url))
            .json(&json!({"redirect_uris": ["http://127.0.0.1:1/cb"]}))
            .send()
            .await
            .unwrap();
        statuses.push(resp.status().as_u16());
        if resp.status() == 429 {
            retry_after = resp
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["error"], "temporarily_unavailable");
        }
    }
    // Five per minute per address, whichever worker answered (the buckets are shared data).
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(retry_after.as_deref(), Some("12"));
}
