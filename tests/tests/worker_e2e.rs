//! mcpgate as a Cloudflare Worker in real workerd (`wrangler dev --local`): the `edge-worker/`
//! bundle in front of the demo MCP server, the Cognito emulator as the IdP (see
//! `mcpgate_e2e::worker_setup`). The scenarios both hosts share come from
//! `mcpgate_e2e::scenarios` (Envoy runs the same list in `envoy_e2e.rs`); the Worker-only tests
//! (configuration errors, rate limits by `CF-Connecting-IP`, CPU measurement) follow. Each test
//! starts its own emulator, demo server and Worker.

use mcpgate_e2e::journey::Journey;
use mcpgate_e2e::scenarios;
use mcpgate_e2e::worker_setup::{misconfigured, WorkerOptions, WorkerStack};
use serde_json::{json, Value};

mcpgate_e2e::shared_scenario_tests!(WorkerStack);

/// The same scenarios in front of an MCP server written with the official Python SDK.
mod python_origin {
    use super::WorkerStack;
    mcpgate_e2e::shared_scenario_tests!(WorkerStack, mcpgate_e2e::origin::OriginKind::Python);
}

async fn start(opts: WorkerOptions) -> WorkerStack {
    WorkerStack::start(opts).await.unwrap()
}

/// A FastMCP deployment's variables (`FASTMCP_SERVER_AUTH_AWS_COGNITO_*` for the pool, the
/// region, the client, its secret, the base URL and the signing key; the emulator's endpoints
/// as `MCPGATE_UPSTREAM_*`, where a real pool would have `MCPGATE_COGNITO_DOMAIN`): a user
/// signs in and calls a tool.
#[tokio::test]
async fn a_fastmcp_environment_configures_the_worker() {
    let stack = start(WorkerOptions::default().fastmcp_names()).await;
    assert!(stack
        .vars
        .keys()
        .all(|k| !k.starts_with("MCPGATE_USER_POOL_ID") && !k.starts_with("MCPGATE_CLIENT_ID")));
    let secrets = std::fs::read_to_string(stack.dir.join(".dev.vars")).unwrap();
    assert!(secrets.contains("FASTMCP_SERVER_AUTH_AWS_COGNITO_CLIENT_SECRET="));
    assert!(!secrets.contains("MCPGATE_"));
    let mut j = Journey::register(&stack.base_url).await.unwrap();
    let tokens = j.login("alice", "alice-password").await.unwrap();
    let out = mcpgate_e2e::journey::whoami(&stack.mcp_url(), &tokens.access)
        .await
        .unwrap();
    assert_eq!(
        out["headers"]["x-mcpgate-username"],
        json!("alice"),
        "{out}"
    );
}

#[tokio::test]
async fn bad_config_answers_500_and_logs_the_variable_not_the_value() {
    let mut vars = std::collections::BTreeMap::new();
    vars.insert(
        "MCPGATE_BASE_URL".to_owned(),
        "http://127.0.0.1:1".to_owned(),
    );
    vars.insert(
        "MCPGATE_USER_POOL_ID".to_owned(),
        "us-east-1_abc".to_owned(),
    );
    vars.insert("MCPGATE_CLIENT_ID".to_owned(), "c".to_owned());
    vars.insert(
        "MCPGATE_COGNITO_DOMAIN".to_owned(),
        "https://auth.example.com".to_owned(),
    );
    vars.insert(
        "MCPGATE_ORIGIN_URL".to_owned(),
        "http://127.0.0.1:2".to_owned(),
    );
    vars.insert(
        "MCPGATE_JWKS_REFRESH_SECONDS".to_owned(),
        "secret-looking-value".to_owned(),
    );
    let (status, body, log) = misconfigured(&vars).await.unwrap();
    assert_eq!(status, 500, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"], json!("server_error"));
    assert!(
        !body.to_string().contains("MCPGATE"),
        "generic body: {body}"
    );
    assert!(log.contains("MCPGATE_JWKS_REFRESH_SECONDS"), "{log}");
    assert!(
        !log.contains("secret-looking-value"),
        "the value leaked: {log}"
    );
}

/// Miniflare (`wrangler dev --local`) sets `CF-Connecting-IP` to the client's address, as
/// Cloudflare does, so the per-address buckets (in the Durable Object) apply.
#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let stack = start(WorkerOptions::default().var("MCPGATE_RATE_LIMIT_PER_ADDRESS", "5")).await;
    scenarios::rate_limit_answers_429_with_retry_after(&stack).await;
}
