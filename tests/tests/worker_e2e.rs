//! mcpgate as a Cloudflare Worker in real workerd (`wrangler dev --local`): the `edge-worker/`
//! bundle in front of the demo MCP server, the Cognito emulator as the IdP (see
//! `mcpgate_e2e::worker_setup`). The scenarios both hosts share come from
//! `mcpgate_e2e::scenarios` (Envoy runs the same list in `envoy_e2e.rs`); the Worker-only tests
//! (configuration errors, rate limits by `CF-Connecting-IP`, CPU measurement) follow. Each test
//! starts its own emulator, demo server and Worker.

use mcpgate_e2e::journey::Journey;
use mcpgate_e2e::scenarios::{self, m2m_options};
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

/// CPU seconds (user + system) used so far by the `workerd` processes of a stack.
fn workerd_cpu_seconds(stack: &WorkerStack) -> f64 {
    let pgid = stack.wrangler.pid().to_string();
    let tick = 100.0; // USER_HZ on Linux
    let mut total = 0.0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        if !head.contains("(workerd") {
            continue;
        }
        let f: Vec<&str> = rest.split_whitespace().collect();
        // After "pid (comm)": state ppid pgrp session ... utime(12) stime(13).
        if f.get(2) != Some(&pgid.as_str()) {
            continue;
        }
        let t: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
        total += t / tick;
    }
    total
}

/// Prints workerd CPU per request: unauthenticated 401s (runtime + routing), authenticated MCP
/// calls (proxy token, verified once then cached; origin round trip through the Worker) and
/// `/token` code exchanges (IdP call + RS256 verification of Cognito's tokens in wasm). Run:
/// `cargo test -p mcpgate-e2e --test worker_e2e -- --ignored --nocapture measure`.
#[tokio::test]
#[ignore = "measurement, not a check"]
async fn measure_workerd_cpu_per_request() {
    let stack = start(m2m_options()).await;
    let n = 300;
    let measure = |name: &str, before: f64, count: usize| {
        let used = workerd_cpu_seconds(&stack) - before;
        println!(
            "{name}: {count} requests, workerd CPU {:.3} s = {:.0} µs/request",
            used,
            used * 1e6 / count as f64
        );
    };
    for _ in 0..20 {
        scenarios::call_whoami(&stack, None).await;
    }
    let t = workerd_cpu_seconds(&stack);
    for _ in 0..n {
        let (status, _, _) = scenarios::call_whoami(&stack, None).await;
        assert_eq!(status, 401);
    }
    measure("401 without token", t, n);

    let mut j = Journey::register(&stack.base_url).await.unwrap();
    let access = j.login("alice", "alice-password").await.unwrap().access;
    scenarios::wait_accepted(&stack, &access).await;
    let t = workerd_cpu_seconds(&stack);
    for _ in 0..n {
        let (status, _, _) = scenarios::call_whoami(&stack, Some(&access)).await;
        assert_eq!(status, 200);
    }
    measure(
        "MCP tools/call whoami, proxy token (store check included)",
        t,
        n,
    );

    let m2m = scenarios::m2m_token(&stack).await;
    scenarios::wait_accepted(&stack, &m2m).await;
    let t = workerd_cpu_seconds(&stack);
    for _ in 0..n {
        let (status, _, _) = scenarios::call_whoami(&stack, Some(&m2m)).await;
        assert_eq!(status, 200);
    }
    measure("MCP tools/call whoami, Cognito m2m token (cached)", t, n);

    let k = 30;
    let mut codes = Vec::new();
    for _ in 0..k {
        // A client each, as the per-client rate limit would refuse 30 sign-ins of one.
        let mut j = Journey::register(&stack.base_url).await.unwrap();
        let (code, verifier) = j.authorize("alice", "alice-password").await.unwrap();
        codes.push((j, code, verifier));
    }
    let t = workerd_cpu_seconds(&stack);
    for (j, code, verifier) in &codes {
        let (status, _) = j.exchange(code, verifier).await.unwrap();
        assert_eq!(status, 200);
    }
    measure("/token authorization_code exchange", t, k);
}
