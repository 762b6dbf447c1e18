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

    let a = scenarios::authorize_as_alice(&stack).await;
    let (status, tok) = scenarios::exchange_code_for_test(&stack, &a).await;
    assert_eq!(status, 200);
    let access = tok["access_token"].as_str().unwrap().to_owned();
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
        codes.push(scenarios::authorize_as_alice(&stack).await);
    }
    let t = workerd_cpu_seconds(&stack);
    for a in &codes {
        let (status, _) = scenarios::exchange_code_for_test(&stack, a).await;
        assert_eq!(status, 200);
    }
    measure("/token authorization_code exchange", t, k);
}
