//! mcpgate in a real Envoy (1.40, V8): the `envoy/` filter built for wasm32-wasip1 in front of
//! the demo MCP server, the Cognito emulator as the IdP (see `mcpgate_e2e::envoy_setup`).
//! Each test starts its own emulator, demo server and Envoy on OS-chosen ports.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt as _;
use mcpgate_e2e::cognito::{CognitoEmulator, EndpointGroup, FaultMode, MintRequest, TokenTemplate};
use mcpgate_e2e::envoy_setup::{default_config, envoy_refusal, GateOptions, GateStack};
use mcpgate_e2e::harness::{http_client, wait_until};
use rmcp::model::{CallToolRequestParams, ClientConfig};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::ServiceExt as _;
use serde_json::{json, Value};

const DEADLINE: Duration = Duration::from_secs(20);

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Accept machine-to-machine tokens of `m2m-client` on /mcp, no scope required.
fn m2m_options() -> GateOptions {
    GateOptions::default()
        .set("accepted_client_ids", json!(["m2m-client"]))
        .set("accepted_client_scopes", json!([]))
}

/// A `client_credentials` access token from the emulator's token endpoint.
async fn client_credentials(stack: &GateStack, client: &str, secret: &str) -> String {
    let r: Value = http_client()
        .post(stack.idp.token_endpoint())
        .basic_auth(client, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    r["access_token"].as_str().unwrap().to_owned()
}

async fn m2m_token(stack: &GateStack) -> String {
    client_credentials(stack, "m2m-client", "m2m-client-secret").await
}

/// POST a JSON-RPC `tools/call whoami` to /mcp with `token`; status, WWW-Authenticate, body.
async fn call_whoami(stack: &GateStack, token: Option<&str>) -> (u16, Option<String>, Value) {
    let mut req = http_client()
        .post(stack.mcp_url())
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": "whoami", "arguments": {}}}));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let www = resp
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, www, body)
}

/// The JWKS fetches the emulator has seen.
fn jwks_fetches(stack: &GateStack) -> u64 {
    stack.idp.stats().count("jwks")
}

/// Wait until the filter accepts `token` on /mcp (its VMs have loaded the key set).
async fn wait_accepted(stack: &GateStack, token: &str) -> Value {
    wait_until(DEADLINE, "the token to be accepted", || async {
        let (status, _, body) = call_whoami(stack, Some(token)).await;
        (status == 200).then_some(body)
    })
    .await
    .unwrap()
}

/// The `kid` of a compact JWT's header.
fn kid_of(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let header: Value =
        serde_json::from_slice(&mcpgate_e2e::jwt::b64url_decode(header).unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

fn assert_invalid_token(what: &str, status: u16, www: Option<&str>) {
    assert_eq!(status, 401, "{what}: status");
    let www = www.unwrap_or_else(|| panic!("{what}: no WWW-Authenticate"));
    assert!(
        www.starts_with("Bearer ") && www.contains("error=\"invalid_token\""),
        "{what}: WWW-Authenticate {www}"
    );
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
async fn metadata_routes_are_answered_by_the_filter() {
    let stack = GateStack::start(GateOptions::default()).await.unwrap();
    let base = &stack.base_url;
    let http = http_client();

    let prm: Value = http
        .get(format!("{base}/.well-known/oauth-protected-resource/mcp"))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(prm["resource"], json!(stack.mcp_url()));
    assert!(
        prm["authorization_servers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == base.as_str()),
        "{prm}"
    );

    let asm: Value = http
        .get(format!("{base}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(asm["issuer"], json!(base));
    assert_eq!(asm["token_endpoint"], json!(format!("{base}/token")));
    assert!(asm["code_challenge_methods_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("S256")));

    // No token: the challenge points at the protected-resource metadata.
    let (status, www, _) = call_whoami(&stack, None).await;
    assert_eq!(status, 401);
    let www = www.unwrap();
    assert!(www.contains("resource_metadata="), "{www}");
}

#[tokio::test]
async fn machine_token_is_accepted_and_identity_forwarded() {
    let stack = GateStack::start(m2m_options()).await.unwrap();
    let token = m2m_token(&stack).await;
    wait_accepted(&stack, &token).await;

    let mut config = StreamableHttpClientTransportConfig::with_uri(stack.mcp_url());
    config.auth_header = Some(token);
    let client = ClientConfig::default()
        .serve(StreamableHttpClientTransport::from_config(config))
        .await
        .unwrap();
    let r = client
        .call_tool(CallToolRequestParams::new("whoami"))
        .await
        .unwrap();
    let out = r.structured_content.unwrap();
    assert_eq!(out["authorization_present"], json!(false), "{out}");
    let headers = out["headers"].as_object().unwrap();
    assert_eq!(headers["x-mcpgate-client-id"], json!("m2m-client"), "{out}");
    assert_eq!(headers["x-mcpgate-sub"], json!("m2m-client"), "{out}");
    assert!(
        headers["x-mcpgate-scope"]
            .as_str()
            .unwrap()
            .contains("https://api.example/read"),
        "{out}"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn unacceptable_tokens_are_rejected_as_invalid_token() {
    let stack = GateStack::start(
        m2m_options()
            .set("jwks_min_refetch_seconds", json!(0))
            .set("jwks_refresh_seconds", json!(600)),
    )
    .await
    .unwrap();
    let good = m2m_token(&stack).await;
    wait_accepted(&stack, &good).await;

    let id = stack
        .idp
        .mint(&MintRequest::template(
            TokenTemplate::Id,
            "alice",
            "m2m-client",
        ))
        .unwrap();
    let (status, www, _) = call_whoami(&stack, Some(&id)).await;
    assert_invalid_token("ID token", status, www.as_deref());

    let other = client_credentials(&stack, "other-client", "other-client-secret").await;
    let (status, www, _) = call_whoami(&stack, Some(&other)).await;
    assert_invalid_token("another client's token", status, www.as_deref());

    let t = now();
    let expired = stack
        .idp
        .mint(
            &MintRequest::template(TokenTemplate::Machine, "", "m2m-client")
                .claim("iat", json!(t - 7200))
                .claim("auth_time", json!(t - 7200))
                .claim("exp", json!(t - 3600)),
        )
        .unwrap();
    let (status, www, _) = call_whoami(&stack, Some(&expired)).await;
    assert_invalid_token("expired token", status, www.as_deref());

    // Rotate, retiring the old key; a token of the new key makes the filter refetch.
    let old_key_token = stack
        .idp
        .mint(&MintRequest::template(
            TokenTemplate::Machine,
            "",
            "m2m-client",
        ))
        .unwrap();
    stack.idp.rotate_keys(true);
    let new = m2m_token(&stack).await;
    let (status, _, _) = call_whoami(&stack, Some(&new)).await;
    assert_eq!(status, 200, "token of the new key");
    let (status, www, _) = call_whoami(&stack, Some(&old_key_token)).await;
    assert_invalid_token("token of a retired key", status, www.as_deref());
}

#[tokio::test]
async fn cached_keys_keep_working_while_the_jwks_is_down() {
    let stack = GateStack::start(
        m2m_options()
            .set("jwks_refresh_seconds", json!(1))
            .set("jwks_min_refetch_seconds", json!(1)),
    )
    .await
    .unwrap();
    let token = m2m_token(&stack).await;
    wait_accepted(&stack, &token).await;

    stack.idp.set_mode(EndpointGroup::Jwks, FaultMode::Down);
    wait_until(DEADLINE, "a failed JWKS refresh", || async {
        let failed = stack
            .counter("mcpgate.jwks_fetch_failed")
            .await
            .unwrap_or(0);
        (failed >= 2).then_some(())
    })
    .await
    .unwrap();
    let (status, _, body) = call_whoami(&stack, Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["result"]["structuredContent"]["headers"]["x-mcpgate-client-id"],
        json!("m2m-client")
    );

    // Back up: refreshes succeed again.
    let ok_before = stack.counter("mcpgate.jwks_fetch_ok").await.unwrap();
    stack.idp.set_mode(EndpointGroup::Jwks, FaultMode::Normal);
    wait_until(DEADLINE, "a successful JWKS refresh", || async {
        let ok = stack.counter("mcpgate.jwks_fetch_ok").await.unwrap_or(0);
        (ok > ok_before).then_some(())
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn rotated_key_is_picked_up_on_unknown_kid() {
    let stack = GateStack::start(
        m2m_options()
            .set("jwks_refresh_seconds", json!(600))
            .set("jwks_min_refetch_seconds", json!(0)),
    )
    .await
    .unwrap();
    let token = m2m_token(&stack).await;
    wait_accepted(&stack, &token).await;
    assert_eq!(jwks_fetches(&stack), 1);

    let info = stack.idp.rotate_keys(false);
    let rotated = m2m_token(&stack).await;
    assert_eq!(kid_of(&rotated), info.active_kid);
    let (status, _, body) = call_whoami(&stack, Some(&rotated)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        jwks_fetches(&stack),
        2,
        "the unknown kid made the filter refetch"
    );
    // The old key is still published: its tokens keep working without another fetch.
    let (status, _, _) = call_whoami(&stack, Some(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(jwks_fetches(&stack), 2);
}

#[tokio::test]
async fn jwks_is_fetched_once_per_process_not_per_worker() {
    let stack = GateStack::start(m2m_options().concurrency(2))
        .await
        .unwrap();
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
async fn sse_streams_through_unbuffered() {
    let stack = GateStack::start(m2m_options()).await.unwrap();
    let token = m2m_token(&stack).await;
    wait_accepted(&stack, &token).await;

    let n = 4u64;
    let t0 = Instant::now();
    let resp = http_client()
        .post(stack.mcp_url())
        .bearer_auth(&token)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                      "params": {"name": "count", "arguments": {"n": n, "interval_ms": 150}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
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
        "SSE buffered by the filter: first chunk at {first:?}, end at {total:?}"
    );
}

#[tokio::test]
async fn metrics_are_visible_in_envoy_stats() {
    let stack = GateStack::start(m2m_options()).await.unwrap();
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

    assert!(stack.counter("mcpgate.requests_allowed").await.unwrap() >= 1);
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

/// Cookies set by the proxy, replayed like a browser would (name=value only).
#[derive(Default)]
struct Jar(std::collections::BTreeMap<String, String>);

impl Jar {
    fn take(&mut self, resp: &reqwest::Response) {
        for v in resp.headers().get_all("set-cookie") {
            if let Some((name, rest)) = v.to_str().ok().and_then(|s| s.split_once('=')) {
                let value = rest.split(';').next().unwrap_or("").to_owned();
                self.0.insert(name.to_owned(), value);
            }
        }
    }
    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn location(resp: &reqwest::Response) -> String {
    resp.headers()["location"].to_str().unwrap().to_owned()
}

fn form_value(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].to_owned()
}

#[tokio::test]
async fn full_oauth_flow_through_envoy_reaches_the_mcp_server_as_alice() {
    let stack = GateStack::start(GateOptions::default()).await.unwrap();
    let base = stack.base_url.clone();
    let http = http_client();
    let mut jar = Jar::default();
    let redirect_uri = "http://127.0.0.1:33333/cb";

    // Dynamic client registration (a POST with a body, buffered by the filter).
    let reg: Value = http
        .post(format!("{base}/register"))
        .json(
            &json!({"redirect_uris": [redirect_uri], "client_name": "e2e",
                      "token_endpoint_auth_method": "none",
                      "grant_types": ["authorization_code", "refresh_token"],
                      "response_types": ["code"]}),
        )
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    let client_id = reg["client_id"].as_str().unwrap().to_owned();

    // Authorization request → consent page.
    let pkce = mcpgate_e2e::cognito::pkce_pair();
    let resp = http
        .get(format!("{base}/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", &client_id),
            ("redirect_uri", redirect_uri),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
            ("state", "client-state"),
            ("scope", "openid"),
            ("resource", &stack.mcp_url()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    jar.take(&resp);
    let page = resp.text().await.unwrap();

    // Approve → redirect to the IdP.
    let resp = http
        .post(format!("{base}/consent"))
        .header("cookie", jar.header())
        .form(&[
            ("txn", form_value(&page, "txn")),
            ("csrf", form_value(&page, "csrf")),
            ("action", "approve".into()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    jar.take(&resp);
    let idp_url = location(&resp);
    assert!(
        idp_url.starts_with(&stack.idp.authorization_endpoint()),
        "{idp_url}"
    );

    // Sign in at the IdP → back to the proxy's callback, which exchanges the code (an IdP call
    // through dispatch_http_call) and redirects to the client.
    let callback =
        mcpgate_e2e::cognito::hosted_ui_login(&http, &idp_url, "alice", "alice-password")
            .await
            .unwrap();
    assert!(
        callback
            .as_str()
            .starts_with(&format!("{base}/auth/callback")),
        "{callback}"
    );
    let resp = http
        .get(callback.as_str())
        .header("cookie", jar.header())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302, "{:?}", resp.text().await);
    let back = url::Url::parse(&location(&resp)).unwrap();
    assert!(back.as_str().starts_with(redirect_uri), "{back}");
    let q: std::collections::BTreeMap<String, String> = back.query_pairs().into_owned().collect();
    assert_eq!(q["state"], "client-state");
    assert!(q.contains_key("code"), "no code in the redirect: {back}");
    assert!(stack.counter("mcpgate.idp_calls_ok").await.unwrap() >= 1);

    // Code → mcpgate's access token.
    let tok: Value = http
        .post(format!("{base}/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", q["code"].as_str()),
            ("redirect_uri", redirect_uri),
            ("client_id", &client_id),
            ("code_verifier", &pkce.verifier),
            ("resource", &stack.mcp_url()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = tok["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{tok}"));

    let (status, _, body) = call_whoami(&stack, Some(access)).await;
    assert_eq!(status, 200, "{body}");
    let out = &body["result"]["structuredContent"];
    assert_eq!(out["authorization_present"], json!(false), "{out}");
    assert_eq!(
        out["headers"]["x-mcpgate-username"],
        json!("alice"),
        "{out}"
    );

    // The code is single use (shared-data store).
    let again = http
        .post(format!("{base}/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", q["code"].as_str()),
            ("redirect_uri", redirect_uri),
            ("client_id", &client_id),
            ("code_verifier", &pkce.verifier),
        ])
        .send()
        .await
        .unwrap();
    assert!(
        again.status().is_client_error(),
        "code replay answered {}",
        again.status()
    );
}

#[tokio::test]
async fn oversized_oauth_body_is_refused_with_413() {
    let stack = GateStack::start(GateOptions::default()).await.unwrap();
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
