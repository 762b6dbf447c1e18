//! OAuth POSTs whose body comes after the headers, in the Worker under workerd: answered
//! whatever the body's timing, none reaching the MCP server (`mcpgate_e2e::slow_body`, shared
//! with Envoy), and an MCP request held for a key refetch keeping its body. HTTP/1.1 only: `wrangler dev` serves no HTTP/2 without TLS.

use mcpgate_e2e::scenarios::m2m_jwks_options;
use mcpgate_e2e::slow_body::{self, Transport};
use mcpgate_e2e::worker_setup::{WorkerOptions, WorkerStack};

#[tokio::test]
async fn oauth_posts_answered_whatever_the_body_timing_http1() {
    let stack = WorkerStack::start(WorkerOptions::default()).await.unwrap();
    slow_body::oauth_posts_answered_whatever_the_body_timing(&stack, Transport::Http1).await;
}

#[tokio::test]
async fn mcp_request_held_for_a_key_refetch_keeps_its_body() {
    let stack = WorkerStack::start(m2m_jwks_options(600, 0)).await.unwrap();
    slow_body::mcp_request_held_for_a_key_refetch_keeps_its_body(&stack).await;
}

#[tokio::test]
async fn mcp_posts_under_tool_rules_decided_whatever_the_body_timing() {
    let stack = WorkerStack::start(slow_body::tool_rules_options())
        .await
        .unwrap();
    slow_body::mcp_posts_under_tool_rules_decided_whatever_the_body_timing(&stack).await;
}
