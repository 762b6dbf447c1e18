//! mcpgate as a Cloudflare Worker in real workerd (`wrangler dev --local`): the `edge-worker/`
//! bundle in front of the demo MCP server, the Cognito emulator as the IdP (see
//! `mcpgate_e2e::worker_setup`). The scenarios are the ones the Envoy host runs
//! (`mcpgate_e2e::scenarios`); each test starts its own emulator, demo server and Worker.

use mcpgate_e2e::scenarios;
use mcpgate_e2e::worker_setup::{misconfigured, WorkerOptions, WorkerStack};
use serde_json::{json, Value};

/// Accept machine-to-machine tokens of `m2m-client` on /mcp, no scope required.
fn m2m_options() -> WorkerOptions {
    WorkerOptions::default()
        .var("MCPGATE_ACCEPTED_CLIENT_IDS", "m2m-client")
        .var("MCPGATE_ACCEPTED_CLIENT_SCOPES", "[]")
}

async fn start(opts: WorkerOptions) -> WorkerStack {
    WorkerStack::start(opts).await.unwrap()
}

#[tokio::test]
async fn bad_config_answers_500_and_logs_the_variable_not_the_value() {
    let mut vars = std::collections::BTreeMap::new();
    vars.insert("MCPGATE_BASE_URL".to_owned(), "http://127.0.0.1:1".to_owned());
    vars.insert("MCPGATE_USER_POOL_ID".to_owned(), "us-east-1_abc".to_owned());
    vars.insert("MCPGATE_CLIENT_ID".to_owned(), "c".to_owned());
    vars.insert("MCPGATE_ORIGIN_URL".to_owned(), "http://127.0.0.1:2".to_owned());
    vars.insert(
        "MCPGATE_JWKS_REFRESH_SECONDS".to_owned(),
        "secret-looking-value".to_owned(),
    );
    let (status, body, log) = misconfigured(&vars).await.unwrap();
    assert_eq!(status, 500, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"], json!("server_error"));
    assert!(!body.to_string().contains("MCPGATE"), "generic body: {body}");
    assert!(log.contains("MCPGATE_JWKS_REFRESH_SECONDS"), "{log}");
    assert!(!log.contains("secret-looking-value"), "the value leaked: {log}");
}

#[tokio::test]
async fn metadata_and_unauthenticated_challenge() {
    let stack = start(WorkerOptions::default()).await;
    scenarios::metadata_and_challenge(&stack).await;
}

#[tokio::test]
async fn full_client_journey_through_the_worker() {
    let stack = start(WorkerOptions::default()).await;
    scenarios::full_client_journey(&stack).await;
}

#[tokio::test]
async fn durable_object_makes_codes_single_use() {
    let stack = start(WorkerOptions::default()).await;
    scenarios::code_replay_refused(&stack).await;
}

#[tokio::test]
async fn machine_token_is_accepted_and_identity_forwarded() {
    let stack = start(m2m_options()).await;
    scenarios::machine_token_accepted(&stack).await;
}

#[tokio::test]
async fn unacceptable_tokens_are_rejected_as_invalid_token() {
    let stack = start(
        m2m_options()
            .var("MCPGATE_JWKS_MIN_REFETCH_SECONDS", "0")
            .var("MCPGATE_JWKS_REFRESH_SECONDS", "600"),
    )
    .await;
    scenarios::unacceptable_tokens_rejected(&stack).await;
}

#[tokio::test]
async fn cached_keys_keep_working_while_the_jwks_is_down() {
    let stack = start(
        m2m_options()
            .var("MCPGATE_JWKS_REFRESH_SECONDS", "1")
            .var("MCPGATE_JWKS_MIN_REFETCH_SECONDS", "1"),
    )
    .await;
    scenarios::cached_keys_survive_jwks_outage(&stack).await;
}

#[tokio::test]
async fn rotated_key_is_picked_up_on_unknown_kid() {
    let stack = start(
        m2m_options()
            .var("MCPGATE_JWKS_REFRESH_SECONDS", "600")
            .var("MCPGATE_JWKS_MIN_REFETCH_SECONDS", "0"),
    )
    .await;
    scenarios::rotated_key_picked_up(&stack).await;
}

#[tokio::test]
async fn sse_streams_through_unbuffered() {
    let stack = start(m2m_options()).await;
    scenarios::sse_streams_unbuffered(&stack).await;
}
