//! mcpgate as a Cloudflare Worker in real workerd (`wrangler dev --local`): the `edge-worker/`
//! bundle in front of the demo MCP server, the Cognito emulator as the IdP (see
//! `mcpgate_e2e::worker_setup`). The scenarios both hosts share come from
//! `mcpgate_e2e::scenarios` (Envoy runs the same list in `envoy_e2e.rs`); the Worker-only tests
//! (configuration errors, a port taken by another server, rate limits by `CF-Connecting-IP`,
//! CPU measurement) follow. Each test starts its own emulator, demo server and Worker.

use mcpgate_e2e::journey::Journey;
use mcpgate_e2e::scenarios;
use mcpgate_e2e::worker_setup::{
    misconfigured, spawn_wrangler, wait_serving, worker_bundle, write_config, WorkerOptions,
    WorkerStack,
};
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

/// A port picked free can be taken by another test process's server before wrangler binds
/// it. Seen in a full run: that server answered the readiness probe, the test went on, and got
/// "connection refused" once the other test ended. An impostor answering 200 to everything
/// holds the port here: the wait must not take its answer for the Worker's, and reports
/// wrangler's exit (which `WorkerStack::start` retries on another port).
#[tokio::test]
async fn an_answer_from_another_server_on_the_port_is_not_the_workers() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let impostor = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = impostor.local_addr().unwrap().port();
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = answered.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = impostor.accept().await {
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf).await;
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}")
                .await;
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let probe = format!("http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp");
    let direct = reqwest::get(&probe).await.unwrap();
    assert_eq!(direct.status(), 200, "the impostor answers the probe");

    let shim = worker_bundle().unwrap();
    let dir = mcpgate_e2e::harness::log_dir()
        .unwrap()
        .join(mcpgate_e2e::harness::unique_name("worker-port-taken"));
    std::fs::create_dir_all(&dir).unwrap();
    let config = write_config(&dir, &shim, &Default::default(), false, false).unwrap();
    let mut wrangler =
        spawn_wrangler("wrangler-port-taken", &config, port, &dir.join("state")).unwrap();
    let outcome = wait_serving(&mut wrangler, port, &probe).await.unwrap();
    assert!(
        outcome.is_err(),
        "an answer from another server was taken for the Worker's; log:\n{}",
        wrangler.log()
    );
    assert!(
        wrangler.log().contains("Address already in use"),
        "{}",
        wrangler.log()
    );
}

/// Miniflare (`wrangler dev --local`) sets `CF-Connecting-IP` to the client's address, as
/// Cloudflare does, so the per-address buckets (in the Durable Object) apply.
#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let stack = start(WorkerOptions::default().var("MCPGATE_RATE_LIMIT_PER_ADDRESS", "5")).await;
    scenarios::rate_limit_answers_429_with_retry_after(&stack).await;
}
