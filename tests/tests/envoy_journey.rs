//! What an MCP client's grant survives in Envoy with the filter: a restart of Envoy, and the
//! rate limits shared by its workers. The journey itself, from the first 401 to revocation,
//! is the shared scenario `full_client_journey` (run for Envoy in `envoy_e2e.rs`).

use std::time::Duration;

use mcpgate_e2e::envoy_setup::{GateOptions, GateStack};
use mcpgate_e2e::harness::EnvoyProcess;
use mcpgate_e2e::journey::{whoami, Journey};
use mcpgate_e2e::scenarios;
use serde_json::json;

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
    let out = whoami(&stack.mcp_url(), &tokens.access).await.unwrap();
    assert_eq!(
        out["headers"]["x-mcpgate-username"],
        json!("alice"),
        "{out}"
    );
    // …and so is the refresh token (sealed, no server-side state to lose).
    let (status, body) = j.refresh(tokens.refresh.as_deref().unwrap()).await.unwrap();
    assert_eq!(status, 200, "{body}");
}

/// Two workers: the buckets are shared data, whichever worker answers.
#[tokio::test]
async fn rate_limits_answer_429_with_retry_after_across_workers() {
    let stack = GateStack::start(
        GateOptions::default()
            .set("rate_limit_per_address", json!(5))
            .concurrency(2),
    )
    .await
    .unwrap();
    scenarios::rate_limit_answers_429_with_retry_after(&stack).await;
}
