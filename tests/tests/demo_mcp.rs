//! The demo MCP server with the official rmcp streamable-HTTP client, and its SSE streaming.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use mcpgate_e2e::demo_mcp::DemoMcp;
use mcpgate_e2e::harness::http_client;
use reqwest::header::{HeaderName, HeaderValue};
use rmcp::model::{CallToolRequestParams, ClientConfig, ProgressNotificationParam};
use rmcp::service::NotificationContext;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{ClientHandler, RoleClient, ServiceExt as _};
use serde_json::{json, Value};

fn args(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().cloned().unwrap()
}

#[derive(Clone, Default)]
struct CountingClient {
    progress: Arc<AtomicU32>,
}

impl ClientHandler for CountingClient {
    async fn on_progress(
        &self,
        _params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.progress.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn rmcp_client_lists_and_calls_tools() {
    let server = DemoMcp::start().await.unwrap();
    let mut headers = HashMap::new();
    headers.insert(
        HeaderName::from_static("x-mcpgate-user"),
        HeaderValue::from_static("alice"),
    );
    headers.insert(
        HeaderName::from_static("x-mcpgate-groups"),
        HeaderValue::from_static("admins"),
    );
    headers.insert(
        HeaderName::from_static("x-other"),
        HeaderValue::from_static("ignored"),
    );
    let mut config = StreamableHttpClientTransportConfig::with_uri(server.mcp_url());
    config.custom_headers = headers;
    let transport = StreamableHttpClientTransport::from_config(config);
    let client = ClientConfig::default().serve(transport).await.unwrap();

    let info = client.peer_info().unwrap();
    assert_eq!(info.server_info.as_ref().unwrap().name, "mcpgate-demo-mcp");

    let mut tools: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    tools.sort();
    assert_eq!(
        tools,
        vec![
            "count",
            "echo",
            "upstream_userinfo",
            "verify_assertion",
            "whoami"
        ]
    );

    let r = client
        .call_tool(CallToolRequestParams::new("whoami"))
        .await
        .unwrap();
    assert_eq!(
        r.structured_content,
        Some(json!({
            "headers": {"x-mcpgate-groups": "admins", "x-mcpgate-user": "alice"},
            "authorization_present": false
        }))
    );

    let r = client
        .call_tool(
            CallToolRequestParams::new("echo").with_arguments(args(json!({"text": "héllo"}))),
        )
        .await
        .unwrap();
    assert_eq!(r.content[0].as_text().unwrap().text, "héllo");
    assert_ne!(r.is_error, Some(true));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn whoami_reports_authorization_presence() {
    let server = DemoMcp::start().await.unwrap();
    let mut config = StreamableHttpClientTransportConfig::with_uri(server.mcp_url());
    config.auth_header = Some("some-token".into());
    let client = ClientConfig::default()
        .serve(StreamableHttpClientTransport::from_config(config))
        .await
        .unwrap();
    let r = client
        .call_tool(CallToolRequestParams::new("whoami"))
        .await
        .unwrap();
    assert_eq!(
        r.structured_content,
        Some(json!({"headers": {}, "authorization_present": true}))
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn count_progress_reaches_the_rmcp_client() {
    let server = DemoMcp::start().await.unwrap();
    let handler = CountingClient::default();
    let progress = handler.progress.clone();
    let client = handler
        .serve(StreamableHttpClientTransport::from_uri(server.mcp_url()))
        .await
        .unwrap();
    let r = client
        .call_tool(
            CallToolRequestParams::new("count")
                .with_arguments(args(json!({"n": 3, "interval_ms": 20}))),
        )
        .await
        .unwrap();
    assert_eq!(r.content[0].as_text().unwrap().text, "counted 3");
    // Notifications precede the response on the same stream.
    assert_eq!(progress.load(Ordering::SeqCst), 3);
    client.cancel().await.unwrap();
}

/// A raw JSON-RPC POST as any MCP client (or a proxy in front) would send it.
fn post(url: &str, body: Value) -> reqwest::RequestBuilder {
    http_client()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .json(&body)
}

#[tokio::test]
async fn count_answers_an_sse_stream_whose_events_arrive_over_time() {
    let server = DemoMcp::start().await.unwrap();
    // Simple calls answer plain JSON.
    let r = post(
        &server.mcp_url(),
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
               "params": {"name": "echo", "arguments": {"text": "x"}}}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    assert_eq!(
        r.json::<Value>().await.unwrap()["result"]["content"][0]["text"],
        "x"
    );

    let n = 5u64;
    let t0 = Instant::now();
    let r = post(
        &server.mcp_url(),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
               "params": {"name": "count", "arguments": {"n": n}}}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut stream = r.bytes_stream();
    let mut buf = String::new();
    let mut arrivals: Vec<(Duration, Value)> = Vec::new();
    while let Some(chunk) = stream.next().await {
        buf.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            for line in event.lines() {
                if let Some(data) = line.strip_prefix("data:") {
                    if let Ok(v) = serde_json::from_str::<Value>(data.trim()) {
                        arrivals.push((t0.elapsed(), v));
                    }
                }
            }
        }
    }
    let progress: Vec<&(Duration, Value)> = arrivals
        .iter()
        .filter(|(_, v)| v["method"] == "notifications/progress")
        .collect();
    assert_eq!(progress.len() as u64, n, "{arrivals:?}");
    let last = arrivals.last().unwrap();
    assert_eq!(last.1["id"], 2);
    assert_eq!(last.1["result"]["content"][0]["text"], "counted 5");
    // Streamed, not buffered: the first event arrived well before the last one.
    let spread = last.0 - progress[0].0;
    assert!(
        spread >= Duration::from_millis(100 * (n - 1) * 8 / 10),
        "events arrived together: {arrivals:?}"
    );
}

#[tokio::test]
async fn dropping_the_handle_closes_the_server() {
    let server = DemoMcp::start().await.unwrap();
    let url = format!("{}/healthz", server.base_url());
    let http = http_client();
    assert_eq!(
        http.get(&url).send().await.unwrap().text().await.unwrap(),
        "ok"
    );
    drop(server);
    // The pooled keep-alive connection is closed too, and nothing accepts new ones.
    mcpgate_e2e::harness::wait_until(Duration::from_secs(5), "the server to go away", || {
        let r = http.get(&url).send();
        async move { r.await.is_err().then_some(()) }
    })
    .await
    .unwrap();
}
