//! End-to-end scenarios shared by every host of the core: each function drives one behaviour
//! through a running proxy (Envoy with the filter, or the Worker in workerd) described by a
//! [`Host`], with the Cognito emulator as the IdP and the demo MCP server upstream. The host
//! test files only start their stack with the options a scenario names and call it.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt as _;
use rmcp::model::{CallToolRequestParams, ClientConfig};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::ServiceExt as _;
use serde_json::{json, Value};

use crate::cognito::{EmulatorHandle, EndpointGroup, FaultMode, MintRequest, TokenTemplate};
use crate::harness::{http_client, wait_until};

/// Deadline of each polled condition in a scenario.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A running proxy in front of the demo MCP server.
pub trait Host {
    /// `http://127.0.0.1:{port}` (the proxy's `base_url`).
    fn base_url(&self) -> &str;
    fn idp(&self) -> &EmulatorHandle;
    fn mcp_url(&self) -> String {
        format!("{}/mcp", self.base_url())
    }
    /// Successful JWKS fetches, when the host counts them (Envoy's `mcpgate.jwks_fetch_ok`).
    fn jwks_fetch_ok(&self) -> impl Future<Output = Option<u64>>;
}

impl Host for crate::envoy_setup::GateStack {
    fn base_url(&self) -> &str {
        &self.base_url
    }
    fn idp(&self) -> &EmulatorHandle {
        &self.idp
    }
    async fn jwks_fetch_ok(&self) -> Option<u64> {
        self.counter("mcpgate.jwks_fetch_ok").await.ok()
    }
}

impl Host for crate::worker_setup::WorkerStack {
    fn base_url(&self) -> &str {
        &self.base_url
    }
    fn idp(&self) -> &EmulatorHandle {
        &self.idp
    }
    async fn jwks_fetch_ok(&self) -> Option<u64> {
        None
    }
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A `client_credentials` access token from the emulator's token endpoint.
pub async fn client_credentials(idp: &EmulatorHandle, client: &str, secret: &str) -> String {
    let r: Value = http_client()
        .post(idp.token_endpoint())
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

pub async fn m2m_token(h: &impl Host) -> String {
    client_credentials(h.idp(), "m2m-client", "m2m-client-secret").await
}

/// POST a JSON-RPC `tools/call whoami` to /mcp with `token`; status, WWW-Authenticate, body.
pub async fn call_whoami(h: &impl Host, token: Option<&str>) -> (u16, Option<String>, Value) {
    let mut req = http_client()
        .post(h.mcp_url())
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
pub fn jwks_fetches(h: &impl Host) -> u64 {
    h.idp().stats().count("jwks")
}

/// Wait until the proxy accepts `token` on /mcp (it has loaded the key set).
pub async fn wait_accepted(h: &impl Host, token: &str) -> Value {
    wait_until(DEADLINE, "the token to be accepted", || async {
        let (status, _, body) = call_whoami(h, Some(token)).await;
        (status == 200).then_some(body)
    })
    .await
    .unwrap()
}

/// The `kid` of a compact JWT's header.
pub fn kid_of(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let header: Value =
        serde_json::from_slice(&crate::jwt::b64url_decode(header).unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

pub fn assert_invalid_token(what: &str, status: u16, www: Option<&str>) {
    assert_eq!(status, 401, "{what}: status");
    let www = www.unwrap_or_else(|| panic!("{what}: no WWW-Authenticate"));
    assert!(
        www.starts_with("Bearer ") && www.contains("error=\"invalid_token\""),
        "{what}: WWW-Authenticate {www}"
    );
}

/// Protected-resource and authorization-server metadata are answered by the proxy; a request
/// without a token gets a 401 pointing at the resource metadata.
pub async fn metadata_and_challenge(h: &impl Host) {
    let base = h.base_url();
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
    assert_eq!(prm["resource"], json!(h.mcp_url()));
    assert!(
        prm["authorization_servers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == base),
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

    let (status, www, _) = call_whoami(h, None).await;
    assert_eq!(status, 401);
    let www = www.unwrap();
    assert!(
        www.contains(&format!(
            "resource_metadata=\"{base}/.well-known/oauth-protected-resource/mcp\""
        )),
        "{www}"
    );
}

/// Needs `accepted_client_ids = ["m2m-client"]`, no required scopes.
pub async fn machine_token_accepted(h: &impl Host) {
    let token = m2m_token(h).await;
    wait_accepted(h, &token).await;
    let mut config = StreamableHttpClientTransportConfig::with_uri(h.mcp_url());
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

/// ID token, another client's token, an expired token and a retired key's token are all
/// refused as `invalid_token`. Needs m2m options with `jwks_min_refetch_seconds = 0`.
pub async fn unacceptable_tokens_rejected(h: &impl Host) {
    let good = m2m_token(h).await;
    wait_accepted(h, &good).await;
    let idp = h.idp();

    let id = idp
        .mint(&MintRequest::template(
            TokenTemplate::Id,
            "alice",
            "m2m-client",
        ))
        .unwrap();
    let (status, www, _) = call_whoami(h, Some(&id)).await;
    assert_invalid_token("ID token", status, www.as_deref());

    let other = client_credentials(idp, "other-client", "other-client-secret").await;
    let (status, www, _) = call_whoami(h, Some(&other)).await;
    assert_invalid_token("another client's token", status, www.as_deref());

    let t = now();
    let expired = idp
        .mint(
            &MintRequest::template(TokenTemplate::Machine, "", "m2m-client")
                .claim("iat", json!(t - 7200))
                .claim("auth_time", json!(t - 7200))
                .claim("exp", json!(t - 3600)),
        )
        .unwrap();
    let (status, www, _) = call_whoami(h, Some(&expired)).await;
    assert_invalid_token("expired token", status, www.as_deref());

    // Rotate, retiring the old key; a token of the new key makes the proxy refetch.
    let old_key_token = idp
        .mint(&MintRequest::template(
            TokenTemplate::Machine,
            "",
            "m2m-client",
        ))
        .unwrap();
    idp.rotate_keys(true);
    let new = m2m_token(h).await;
    let (status, _, _) = call_whoami(h, Some(&new)).await;
    assert_eq!(status, 200, "token of the new key");
    let (status, www, _) = call_whoami(h, Some(&old_key_token)).await;
    assert_invalid_token("token of a retired key", status, www.as_deref());
}

/// With the JWKS endpoint down, refreshes fail and the cached keys keep serving; once it is
/// back, refreshes reach it again. Needs `jwks_refresh_seconds = jwks_min_refetch_seconds = 1`.
pub async fn cached_keys_survive_jwks_outage(h: &impl Host) {
    let token = m2m_token(h).await;
    wait_accepted(h, &token).await;

    h.idp().set_mode(EndpointGroup::Jwks, FaultMode::Down);
    let before = jwks_fetches(h);
    // Requests keep coming (a Worker refreshes when a request finds its keys old).
    wait_until(DEADLINE, "two failed JWKS refreshes", || async {
        let (status, _, body) = call_whoami(h, Some(&token)).await;
        assert_eq!(status, 200, "refused while the JWKS is down: {body}");
        (jwks_fetches(h) >= before + 2).then_some(())
    })
    .await
    .unwrap();
    let (status, _, body) = call_whoami(h, Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["result"]["structuredContent"]["headers"]["x-mcpgate-client-id"],
        json!("m2m-client")
    );

    // Back up: refreshes reach the IdP again (and succeed, where the host counts them).
    let ok_before = h.jwks_fetch_ok().await;
    h.idp().set_mode(EndpointGroup::Jwks, FaultMode::Normal);
    let down_count = jwks_fetches(h);
    wait_until(DEADLINE, "a JWKS refresh after the outage", || async {
        let (status, _, _) = call_whoami(h, Some(&token)).await;
        assert_eq!(status, 200);
        let reached = jwks_fetches(h) > down_count;
        let counted = match ok_before {
            Some(before) => h.jwks_fetch_ok().await.unwrap_or(0) > before,
            None => true,
        };
        (reached && counted).then_some(())
    })
    .await
    .unwrap();
}

/// A token signed by a newly published key makes the proxy refetch once; tokens of the old,
/// still published key keep working without another fetch. Needs m2m options,
/// `jwks_refresh_seconds = 600`, `jwks_min_refetch_seconds = 0`.
pub async fn rotated_key_picked_up(h: &impl Host) {
    let token = m2m_token(h).await;
    wait_accepted(h, &token).await;
    assert_eq!(jwks_fetches(h), 1);

    let info = h.idp().rotate_keys(false);
    let rotated = m2m_token(h).await;
    assert_eq!(kid_of(&rotated), info.active_kid);
    let (status, _, body) = call_whoami(h, Some(&rotated)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(jwks_fetches(h), 2, "the unknown kid made the proxy refetch");
    let (status, _, _) = call_whoami(h, Some(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(jwks_fetches(h), 2);
}

/// The `count` tool's progress notifications arrive over time (not buffered by the proxy).
pub async fn sse_streams_unbuffered(h: &impl Host) {
    let token = m2m_token(h).await;
    wait_accepted(h, &token).await;
    let n = 4u64;
    let t0 = Instant::now();
    let resp = http_client()
        .post(h.mcp_url())
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
        "SSE buffered by the proxy: first chunk at {first:?}, end at {total:?}"
    );
}

/// Cookies set by the proxy, replayed like a browser would (name=value only).
#[derive(Default)]
pub struct Jar(BTreeMap<String, String>);

impl Jar {
    pub fn take(&mut self, resp: &reqwest::Response) {
        for v in resp.headers().get_all("set-cookie") {
            if let Some((name, rest)) = v.to_str().ok().and_then(|s| s.split_once('=')) {
                let value = rest.split(';').next().unwrap_or("").to_owned();
                self.0.insert(name.to_owned(), value);
            }
        }
    }
    pub fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

pub fn location(resp: &reqwest::Response) -> String {
    resp.headers()["location"].to_str().unwrap().to_owned()
}

pub fn form_value(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].to_owned()
}

/// What the browser part of the journey produced.
pub struct Authorized {
    pub client_id: String,
    pub redirect_uri: String,
    pub code: String,
    pub verifier: String,
}

/// Register → authorize → consent page → approve → emulator login → callback → client redirect.
pub async fn authorize_as_alice(h: &impl Host) -> Authorized {
    let base = h.base_url().to_owned();
    let http = http_client();
    let mut jar = Jar::default();
    let redirect_uri = "http://127.0.0.1:33333/cb";

    let reg = http
        .post(format!("{base}/register"))
        .json(
            &json!({"redirect_uris": [redirect_uri], "client_name": "e2e",
                      "token_endpoint_auth_method": "none",
                      "grant_types": ["authorization_code", "refresh_token"],
                      "response_types": ["code"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(reg.status(), 201);
    let reg: Value = reg.json().await.unwrap();
    let client_id = reg["client_id"].as_str().unwrap().to_owned();

    let pkce = crate::cognito::pkce_pair();
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
            ("resource", &h.mcp_url()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "consent page");
    jar.take(&resp);
    let page = resp.text().await.unwrap();
    assert!(page.contains("e2e"), "the consent page names the client");
    assert!(
        page.contains("127.0.0.1"),
        "the consent page shows the redirect host"
    );

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
        idp_url.starts_with(&h.idp().authorization_endpoint()),
        "{idp_url}"
    );

    let callback = crate::cognito::hosted_ui_login(&http, &idp_url, "alice", "alice-password")
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
    let q: BTreeMap<String, String> = back.query_pairs().into_owned().collect();
    assert_eq!(q["state"], "client-state");
    assert_eq!(
        q.get("iss").map(String::as_str),
        Some(base.as_str()),
        "RFC 9207 iss"
    );
    Authorized {
        client_id,
        redirect_uri: redirect_uri.to_owned(),
        code: q
            .get("code")
            .cloned()
            .unwrap_or_else(|| panic!("no code: {back}")),
        verifier: pkce.verifier,
    }
}

async fn token_request(h: &impl Host, form: &[(&str, &str)]) -> (u16, Value) {
    let resp = http_client()
        .post(format!("{}/token", h.base_url()))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn exchange_code(h: &impl Host, a: &Authorized) -> (u16, Value) {
    let resource = h.mcp_url();
    token_request(
        h,
        &[
            ("grant_type", "authorization_code"),
            ("code", &a.code),
            ("redirect_uri", &a.redirect_uri),
            ("client_id", &a.client_id),
            ("code_verifier", &a.verifier),
            ("resource", &resource),
        ],
    )
    .await
}

/// `authorization_code` grant for `a` at the proxy's `/token`: status and JSON body.
pub async fn exchange_code_for_test(h: &impl Host, a: &Authorized) -> (u16, Value) {
    exchange_code(h, a).await
}

/// The whole client journey: authorization as alice, code → tokens, MCP `tools/list` and
/// `whoami` through rmcp (identity headers, no `Authorization` upstream), refresh (rotating),
/// revocation of the refresh token and of the access token.
pub async fn full_client_journey(h: &impl Host) {
    let a = authorize_as_alice(h).await;
    let (status, tok) = exchange_code(h, &a).await;
    assert_eq!(status, 200, "{tok}");
    let access = tok["access_token"].as_str().unwrap().to_owned();
    let refresh = tok["refresh_token"].as_str().unwrap().to_owned();

    let mut config = StreamableHttpClientTransportConfig::with_uri(h.mcp_url());
    config.auth_header = Some(access.clone());
    let client = ClientConfig::default()
        .serve(StreamableHttpClientTransport::from_config(config))
        .await
        .unwrap();
    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    for tool in ["whoami", "echo", "count"] {
        assert!(names.contains(&tool), "{names:?}");
    }
    let r = client
        .call_tool(CallToolRequestParams::new("whoami"))
        .await
        .unwrap();
    let out = r.structured_content.unwrap();
    assert_eq!(out["authorization_present"], json!(false), "{out}");
    assert_eq!(
        out["headers"]["x-mcpgate-username"],
        json!("alice"),
        "{out}"
    );
    assert!(out["headers"]["x-mcpgate-sub"].is_string(), "{out}");
    client.cancel().await.unwrap();

    // Refresh: a new pair, the refresh token rotates.
    let (status, fresh) = token_request(
        h,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &a.client_id),
        ],
    )
    .await;
    assert_eq!(status, 200, "{fresh}");
    let access2 = fresh["access_token"].as_str().unwrap().to_owned();
    let refresh2 = fresh["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(refresh2, refresh, "refresh tokens rotate");
    let (status, _, body) = call_whoami(h, Some(&access2)).await;
    assert_eq!(status, 200, "{body}");

    // Revoke the new refresh token: it no longer refreshes.
    let revoke = |token: String| {
        let url = format!("{}/revoke", h.base_url());
        let client_id = a.client_id.clone();
        async move {
            http_client()
                .post(url)
                .form(&[("token", token.as_str()), ("client_id", client_id.as_str())])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(revoke(refresh2.clone()).await, 200);
    let (status, body) = token_request(
        h,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh2),
            ("client_id", &a.client_id),
        ],
    )
    .await;
    assert!((400..500).contains(&status), "{status} {body}");
    assert_eq!(body["error"], json!("invalid_grant"), "{body}");

    // Revoke the access token: the MCP endpoint refuses it.
    assert_eq!(revoke(access2.clone()).await, 200);
    let (status, www, _) = call_whoami(h, Some(&access2)).await;
    assert_invalid_token("revoked access token", status, www.as_deref());
}

/// The store makes authorization codes single use: a replay gets `invalid_grant`.
pub async fn code_replay_refused(h: &impl Host) {
    let a = authorize_as_alice(h).await;
    let (status, tok) = exchange_code(h, &a).await;
    assert_eq!(status, 200, "{tok}");
    let (status, body) = exchange_code(h, &a).await;
    assert!((400..500).contains(&status), "replay answered {status}");
    assert_eq!(body["error"], json!("invalid_grant"), "{body}");
}
