//! OAuth POSTs whose body comes after the headers, in real Envoy 1.40 with the filter: answered
//! whatever the body's timing over HTTP/1.1 and h2c, none reaching the MCP server
//! (`mcpgate_e2e::slow_body`, shared with the Worker), MCP requests held for a key refetch
//! keeping their body until decided; and where Envoy does not hold requests
//! at their headers (`allow_on_headers_stop_iteration` not declared, or declared but not set in
//! Envoy), the routes are refused with a 503 that says what to set, never leaked upstream.

use std::time::{Duration, Instant};

use mcpgate_e2e::envoy_setup::{GateOptions, GateStack};
use mcpgate_e2e::harness::{http_client, wait_until};
use mcpgate_e2e::hostile::authority;
use mcpgate_e2e::scenarios::{m2m_jwks_options, Host};
use mcpgate_e2e::slow_body::{
    self, assert_refusal, placeholder, send_http1, Transport, ANSWER_BOUND, ROUTES,
};
use serde_json::Value;

const REFUSED_AT_START: &str = "are refused with 503: the configuration does not declare";
const REFUSED_AT_RUNTIME: &str = "Envoy held a request's body back from the filter";

#[tokio::test]
async fn oauth_posts_answered_whatever_the_body_timing_http1() {
    let stack = GateStack::start(GateOptions::default()).await.unwrap();
    slow_body::oauth_posts_answered_whatever_the_body_timing(&stack, Transport::Http1).await;
}

#[tokio::test]
async fn oauth_posts_answered_whatever_the_body_timing_h2c() {
    let stack = GateStack::start(GateOptions::default()).await.unwrap();
    slow_body::oauth_posts_answered_whatever_the_body_timing(&stack, Transport::H2c).await;
}

/// Envoy hands the filter the body of a request held at its headers: the filter must keep it
/// (not continue the request) until the IdP's keys are fetched and the token is decided.
#[tokio::test]
async fn mcp_request_held_for_a_key_refetch_keeps_its_body() {
    let stack = GateStack::start(m2m_jwks_options(600, 0)).await.unwrap();
    slow_body::mcp_request_held_for_a_key_refetch_keeps_its_body(&stack).await;
}

/// MCP POSTs under `tool_rules` are held at their headers like OAuth POSTs: decided from
/// their body whenever it comes.
#[tokio::test]
async fn mcp_posts_under_tool_rules_decided_whatever_the_body_timing() {
    let stack = GateStack::start(slow_body::tool_rules_options())
        .await
        .unwrap();
    slow_body::mcp_posts_under_tool_rules_decided_whatever_the_body_timing(&stack).await;
}

async fn unsupported_gauge(stack: &GateStack) -> u64 {
    stack
        .counter("mcpgate.oauth_body_unsupported")
        .await
        .unwrap()
}

/// Every OAuth POST route, its body 50 ms after the headers: refused with the 503 at once.
async fn assert_every_route_refused(stack: &GateStack) {
    let authority = authority(&stack.base_url);
    for route in ROUTES {
        let post = placeholder(route);
        let t0 = Instant::now();
        let (answer, _) = send_http1(&authority, &post.req(), Duration::from_millis(50))
            .await
            .unwrap();
        assert_refusal(&answer, &route.to_string());
        assert!(
            t0.elapsed() < ANSWER_BOUND,
            "{route}: refused only after {:?}",
            t0.elapsed()
        );
    }
}

/// Without the declaration the filter says so at start (log, gauge) and refuses the OAuth POST
/// routes with a 503 naming the setting — as JSON, or as a page for a browser; the routes that
/// need no body keep working, and nothing reaches the MCP server.
#[tokio::test]
async fn undeclared_stop_iteration_is_reported_at_start_and_refused() {
    let stack = GateStack::start(
        GateOptions::default().set("allow_on_headers_stop_iteration", Value::Null),
    )
    .await
    .unwrap();
    let log = stack.envoy.child.log();
    assert!(log.contains(REFUSED_AT_START), "no start-up line:\n{log}");
    assert!(unsupported_gauge(&stack).await >= 1);

    assert_every_route_refused(&stack).await;

    // A browser posting the consent form gets a page, not JSON.
    let resp = http_client()
        .post(format!("{}/consent", stack.base_url))
        .header("accept", "text/html,application/xhtml+xml")
        .form(&[("txn", "x"), ("csrf", "y"), ("action", "approve")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("allow_on_headers_stop_iteration"));

    // What needs no body still works.
    let resp = http_client()
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            stack.base_url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        stack
            .counter("mcpgate.requests_denied.oauth_body_unsupported")
            .await
            .unwrap(),
        ROUTES.len() as u64 + 1
    );
    assert!(
        stack.origin_requests().await.is_empty(),
        "{:?}",
        stack.origin_requests().await
    );
}

/// Declared to the filter but not set in Envoy's `PluginConfig`: Envoy holds the body back.
/// The watchdog finds out on the first OAuth POST (answered with the 503 within a few
/// seconds, not left hanging), logs it, and from then on the routes are refused at once.
#[tokio::test]
async fn declared_but_unset_stop_iteration_is_detected_and_refused() {
    let stack = GateStack::start(GateOptions::default().envoy_stop_iteration(false))
        .await
        .unwrap();
    assert!(!stack.envoy.child.log().contains(REFUSED_AT_START));
    assert_eq!(unsupported_gauge(&stack).await, 0);

    let authority = authority(&stack.base_url);
    let t0 = Instant::now();
    let register = placeholder(slow_body::Route::Register).req();
    let (answer, _) = send_http1(&authority, &register, Duration::ZERO)
        .await
        .unwrap();
    assert_refusal(&answer, "the first registration");
    assert!(
        t0.elapsed() < Duration::from_secs(4),
        "the watchdog answered only after {:?}",
        t0.elapsed()
    );
    wait_until(
        Duration::from_secs(5),
        "the watchdog's log line",
        || async {
            stack
                .envoy
                .child
                .log()
                .contains(REFUSED_AT_RUNTIME)
                .then_some(())
        },
    )
    .await
    .unwrap();
    assert_eq!(
        unsupported_gauge(&stack).await,
        1,
        "the worker's VM refuses"
    );

    assert_every_route_refused(&stack).await;
    assert!(
        stack.origin_requests().await.is_empty(),
        "{:?}",
        stack.origin_requests().await
    );
}
