//! mcpgate in a real Envoy (1.40, V8): the `envoy/` filter built for wasm32-wasip1 in front of
//! the demo MCP server, the Cognito emulator as the IdP (see `mcpgate_e2e::envoy_setup`).
//! The scenarios both hosts share come from `mcpgate_e2e::scenarios` (the Worker runs the same
//! list in `worker_e2e.rs`); the Envoy-only tests (plugin config, one JWKS fetch per process,
//! stats, body limit) follow. Each test starts its own emulator, demo server and Envoy on
//! OS-chosen ports.

use std::time::{Duration, Instant};

use mcpgate_e2e::cognito::{CognitoEmulator, MintRequest, TokenTemplate};
use mcpgate_e2e::envoy_setup::{default_config, envoy_refusal, GateOptions, GateStack};
use mcpgate_e2e::harness::{http_client, wait_until};
use mcpgate_e2e::scenarios::{
    call_whoami, jwks_fetches, m2m_options, m2m_token, now, wait_accepted,
};
use serde_json::{json, Value};

mcpgate_e2e::shared_scenario_tests!(GateStack);

/// The same scenarios in front of an MCP server written with the official Python SDK.
mod python_origin {
    use super::GateStack;
    mcpgate_e2e::shared_scenario_tests!(GateStack, mcpgate_e2e::origin::OriginKind::Python);
}

async fn start(opts: GateOptions) -> GateStack {
    GateStack::start(opts).await.unwrap()
}

#[tokio::test]
async fn bad_plugin_config_is_refused_naming_the_key() {
    let idp = CognitoEmulator::start(Default::default()).await.unwrap();
    let mut config = default_config(&idp, "http://127.0.0.1:10000");

    config.insert("bogus_key".into(), json!(1));
    let err = envoy_refusal(&Value::Object(config.clone()))
        .await
        .unwrap()
        .expect("Envoy started with an unknown key");
    assert!(err.contains("config key `bogus_key`: unknown key"), "{err}");
    config.remove("bogus_key");

    config.insert("clusters".into(), json!({}));
    let err = envoy_refusal(&Value::Object(config.clone()))
        .await
        .unwrap()
        .expect("Envoy started without a cluster for the IdP");
    let authority = format!("127.0.0.1:{}", idp.port());
    assert!(
        err.contains(&format!(
            "config key `clusters`: no Envoy cluster for {authority}"
        )),
        "{err}"
    );

    config.insert("clusters".into(), json!({ authority.clone(): "idp" }));
    config.insert("jwks_refresh_seconds".into(), json!("soon"));
    let err = envoy_refusal(&Value::Object(config))
        .await
        .unwrap()
        .expect("Envoy started with a bad jwks_refresh_seconds");
    assert!(err.contains("config key `jwks_refresh_seconds`"), "{err}");
}

#[tokio::test]
async fn jwks_is_fetched_once_per_process_not_per_worker() {
    let stack = start(m2m_options::<GateOptions>().concurrency(2)).await;
    let token = m2m_token(&stack).await;
    wait_accepted(&stack, &token).await;
    // New connections spread over both workers; each worker's VM must have the keys.
    for _ in 0..16 {
        let (status, _, body) = call_whoami(&stack, Some(&token)).await;
        assert_eq!(status, 200, "{body}");
    }
    // Several ticks of every VM (main thread + 2 workers) have passed since the fetch.
    let deadline = Instant::now() + Duration::from_secs(3);
    wait_until(
        deadline + Duration::from_secs(5),
        "3 s of ticks",
        || async { (Instant::now() >= deadline).then_some(()) },
    )
    .await
    .unwrap();
    assert_eq!(
        jwks_fetches(&stack),
        1,
        "one fetch for the whole Envoy process"
    );
    assert_eq!(stack.counter("mcpgate.jwks_fetch_ok").await.unwrap(), 1);
    assert_eq!(
        stack
            .envoy
            .child
            .log()
            .matches("fetched the IdP's JWKS")
            .count(),
        1
    );
}

#[tokio::test]
async fn metrics_are_visible_in_envoy_stats() {
    let stack = start(m2m_options()).await;
    let token = m2m_token(&stack).await;
    wait_accepted(&stack, &token).await;
    let (status, _, _) = call_whoami(&stack, None).await;
    assert_eq!(status, 401);
    let expired = stack
        .idp
        .mint(
            &MintRequest::template(TokenTemplate::Machine, "", "m2m-client")
                .claim("exp", json!(now() - 3600)),
        )
        .unwrap();
    let (status, _, _) = call_whoami(&stack, Some(&expired)).await;
    assert_eq!(status, 401);

    // Forwarded requests reach /stats on the VM's next tick (100 ms).
    wait_until(
        Duration::from_secs(10),
        "requests_allowed in /stats",
        || async {
            (stack.counter("mcpgate.requests_allowed").await.unwrap_or(0) >= 1).then_some(())
        },
    )
    .await
    .unwrap();
    assert!(stack.counter("mcpgate.jwks_fetch_ok").await.unwrap() >= 1);
    assert_eq!(stack.counter("mcpgate.jwks_fetch_failed").await.unwrap(), 0);
    assert!(
        stack
            .counter("mcpgate.requests_denied.missing_token")
            .await
            .unwrap()
            >= 1
    );
    let stats = http_client()
        .get(format!("{}/stats", stack.envoy.admin_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let denied: Vec<&str> = stats
        .lines()
        .filter(|l| l.starts_with("wasmcustom.mcpgate.requests_denied."))
        .collect();
    assert!(denied.len() >= 2, "{denied:?}");
    for name in ["mcpgate.idp_calls_ok", "mcpgate.idp_calls_failed"] {
        assert!(
            stats.contains(&format!("{name}: ")),
            "{name} missing from /stats"
        );
    }
}

#[tokio::test]
async fn oversized_oauth_body_is_refused_with_413() {
    let stack = start(GateOptions::default()).await;
    let resp = http_client()
        .post(format!("{}/register", stack.base_url))
        .header("content-type", "application/json")
        .body(vec![b' '; 200 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": "invalid_request", "error_description": "request body too large"})
    );
}

/// The verified-token cache stays within `token_cache_size` however many distinct valid
/// tokens arrive (`mcpgate.token_cache_entries`, the sum over the VMs: one worker here).
#[tokio::test]
async fn token_cache_stays_within_its_bound() {
    let stack = start(m2m_options::<GateOptions>().set("token_cache_size", json!(8))).await;
    let first = m2m_token(&stack).await;
    wait_accepted(&stack, &first).await;
    let entries = || async { stack.counter("mcpgate.token_cache_entries").await.unwrap() };
    assert_eq!(entries().await, 1, "the accepted token is cached");
    for i in 0..30 {
        let token = stack
            .idp
            .mint(
                &MintRequest::template(TokenTemplate::Machine, "", "m2m-client")
                    .claim("jti", json!(format!("bound-{i}"))),
            )
            .unwrap();
        let (status, _, body) = call_whoami(&stack, Some(&token)).await;
        assert_eq!(status, 200, "token {i}: {body}");
    }
    assert_eq!(entries().await, 8, "30 distinct tokens, 8 cached");
    // A cached token still hits (the cache works, it is not merely empty).
    let (status, _, _) = call_whoami(&stack, Some(&first)).await;
    assert_eq!(status, 200);
    assert_eq!(entries().await, 8);
}

/// Metadata documents need a cluster that reaches any host: without `cimd_cluster` Envoy turns
/// them off and the metadata says so (no CIMD, no `private_key_jwt`), so clients that prefer
/// them register instead; with it they are advertised.
#[tokio::test]
async fn metadata_documents_are_advertised_only_when_envoy_can_fetch_them() {
    for (with_cluster, expected) in [(false, false), (true, true)] {
        let mut opts = GateOptions::default();
        if with_cluster {
            opts = opts.set(
                "cimd_cluster",
                json!(mcpgate_e2e::envoy_setup::CIMD_CLUSTER),
            );
        }
        let stack = start(opts).await;
        let asm: Value = http_client()
            .get(format!(
                "{}/.well-known/oauth-authorization-server",
                stack.base_url
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            asm["client_id_metadata_document_supported"],
            json!(expected),
            "{asm}"
        );
        let methods = asm["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap();
        assert_eq!(
            methods.contains(&json!("private_key_jwt")),
            expected,
            "{asm}"
        );
        if !with_cluster {
            assert!(stack
                .envoy
                .child
                .log()
                .contains("Client ID Metadata Documents are off"));
        }
    }
}

/// The per-address limits key on the TCP peer, never on `X-Forwarded-For`: a client rotating
/// the header does not escape its limit, and one naming a victim's address does not drain the
/// victim's bucket (`use_remote_address: true` on the connection manager, as every shipped
/// configuration sets it).
#[tokio::test]
async fn per_address_limits_ignore_x_forwarded_for() {
    let stack = start(
        GateOptions::default()
            .set("rate_limit_per_address", json!(3))
            .set("rate_limit_per_client", json!(1000)),
    )
    .await;
    let http = http_client();
    let mut statuses = Vec::new();
    for i in 0..6 {
        let resp = http
            .post(format!("{}/register", stack.base_url))
            .header("x-forwarded-for", format!("203.0.113.{i}"))
            .json(&json!({"redirect_uris": ["http://127.0.0.1:1/cb"]}))
            .send()
            .await
            .unwrap();
        statuses.push(resp.status().as_u16());
    }
    assert_eq!(
        statuses,
        [201, 201, 201, 429, 429, 429],
        "one bucket for 127.0.0.1, whatever X-Forwarded-For says"
    );
}
