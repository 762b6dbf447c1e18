//! The binaries as child processes, and real Envoy (from `.venv`, see scripts/ensure-envoy.sh)
//! proxying the demo MCP server: headers added by Envoy reach `whoami`, SSE is not buffered.

use std::process::Command;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use mcpgate_e2e::demo_mcp::DemoMcp;
use mcpgate_e2e::harness::{
    free_port, http_client, retry_if_port_taken, wait_for_http, wait_until, ChildProcess,
    EnvoyProcess,
};
use serde_json::{json, Value};

const STARTUP: Duration = Duration::from_secs(30);

#[tokio::test]
async fn cognito_emulator_binary_serves_and_prints_its_urls() {
    let port = free_port().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cognito-emulator"));
    cmd.args(["--port", &port.to_string()]);
    let child = ChildProcess::spawn("cognito-emulator", cmd).unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let issuer = format!("{base}/us-east-1_McpGate01");
    let status = wait_for_http(
        &format!("{issuer}/.well-known/openid-configuration"),
        STARTUP,
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    wait_until(STARTUP, "the issuer line in the log", || {
        let found = child.log().contains(&format!("issuer={issuer}\n"));
        async move { found.then_some(()) }
    })
    .await
    .unwrap();
    assert!(child.log().contains(&format!("base_url={base}\n")));
}

#[tokio::test]
async fn cognito_emulator_binary_loads_a_config_file() {
    let config = mcpgate_e2e::cognito::CognitoConfig {
        pool_id: "eu-west-1_FromFile".into(),
        ..Default::default()
    };
    let path = mcpgate_e2e::harness::log_dir().unwrap().join(format!(
        "{}.json",
        mcpgate_e2e::harness::unique_name("cognito-config")
    ));
    std::fs::write(&path, serde_json::to_string(&config).unwrap()).unwrap();
    let port = free_port().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cognito-emulator"));
    cmd.arg(format!("--port={port}")).arg("--config").arg(&path);
    let _child = ChildProcess::spawn("cognito-emulator-config", cmd).unwrap();
    let url = format!("http://127.0.0.1:{port}/eu-west-1_FromFile/.well-known/jwks.json");
    assert_eq!(wait_for_http(&url, STARTUP).await.unwrap(), 200);
}

#[tokio::test]
async fn demo_mcp_binary_serves_mcp() {
    let port = free_port().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_demo-mcp"));
    cmd.env("DEMO_MCP_PORT", port.to_string());
    let child = ChildProcess::spawn("demo-mcp", cmd).unwrap();
    let base = format!("http://127.0.0.1:{port}");
    assert_eq!(
        wait_for_http(&format!("{base}/healthz"), STARTUP)
            .await
            .unwrap(),
        200
    );
    let r: Value = http_client()
        .post(format!("{base}/mcp"))
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["id"], 7);
    assert_eq!(
        r["result"]["tools"].as_array().unwrap().len(),
        5,
        "whoami, echo, count and the two identity tools"
    );
    assert!(child.log().contains(&format!("mcp_url={base}/mcp")));
}

fn envoy_config(upstream_port: u16) -> String {
    format!(
        r#"
admin:
  address: {{ socket_address: {{ address: 127.0.0.1, port_value: 0 }} }}
static_resources:
  listeners:
  - name: main
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: 0 }} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              request_headers_to_add:
              - header: {{ key: x-mcpgate-via, value: envoy }}
              routes:
              - match: {{ prefix: "/" }}
                route: {{ cluster: upstream, timeout: 0s }}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: upstream
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: upstream
      endpoints:
      - lb_endpoints:
        - endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {upstream_port} }} }} }}
"#
    )
}

#[tokio::test]
async fn real_envoy_proxies_the_demo_server_without_buffering_sse() {
    let upstream = DemoMcp::start().await.unwrap();
    let envoy = EnvoyProcess::start(
        "envoy-passthrough",
        &envoy_config(upstream.port()),
        &[],
        STARTUP,
    )
    .await
    .unwrap();
    let port = envoy.listener_port("main").await.unwrap();
    let mcp = format!("http://127.0.0.1:{port}/mcp");
    let post = |body: Value| {
        http_client()
            .post(&mcp)
            .header("accept", "application/json, text/event-stream")
            .header("x-mcpgate-user", "alice")
            .json(&body)
    };

    let r: Value = post(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                               "params": {"name": "whoami", "arguments": {}}}))
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        r["result"]["structuredContent"],
        json!({"headers": {"x-mcpgate-user": "alice", "x-mcpgate-via": "envoy"},
               "authorization_present": false})
    );

    let n = 4u64;
    let t0 = Instant::now();
    let resp = post(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                           "params": {"name": "count", "arguments": {"n": n, "interval_ms": 150}}}))
    .send()
    .await
    .unwrap();
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut first_chunk_at = None;
    let mut body = String::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        first_chunk_at.get_or_insert_with(|| t0.elapsed());
        body.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
    }
    let total = t0.elapsed();
    assert_eq!(body.matches("notifications/progress").count() as u64, n);
    assert!(body.contains("counted 4"));
    let first = first_chunk_at.unwrap();
    assert!(
        total - first >= Duration::from_millis(150 * (n - 1) * 8 / 10),
        "SSE buffered by the proxy: first chunk at {first:?}, end at {total:?}"
    );
    assert_eq!(
        envoy.stat("http.ingress.downstream_rq_2xx").await.unwrap(),
        Some(2)
    );
}

/// A port picked free can be taken by another test process before Envoy binds it (a full run
/// saw the fleet test fail so: "cannot bind …: Address already in use", Envoy exited). The
/// stacks start again on another port; anything else is not retried.
#[tokio::test]
async fn an_envoy_whose_port_was_taken_starts_again_on_another() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let held = taken.local_addr().unwrap().port();
    let attempts = std::cell::Cell::new(0);
    let envoy = retry_if_port_taken(|| {
        attempts.set(attempts.get() + 1);
        let port = if attempts.get() == 1 {
            held
        } else {
            free_port().unwrap()
        };
        let yaml = envoy_config(1).replacen("port_value: 0", &format!("port_value: {port}"), 1);
        async move { EnvoyProcess::start("envoy-port-taken", &yaml, &[], STARTUP).await }
    })
    .await
    .unwrap();
    assert_eq!(
        attempts.get(),
        2,
        "one failed start on the taken port, then another port"
    );
    assert_ne!(envoy.listener_port("main").await.unwrap(), held);

    let other = std::cell::Cell::new(0);
    let refused: anyhow::Result<()> = retry_if_port_taken(|| {
        other.set(other.get() + 1);
        async { anyhow::bail!("the configuration was refused") }
    })
    .await;
    assert!(refused.is_err());
    assert_eq!(other.get(), 1, "other errors are returned at once");
}
