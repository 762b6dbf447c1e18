//! End-to-end scenarios shared by every host of the core: each function drives one behaviour
//! through a running proxy (Envoy with the filter, or the Worker in workerd) described by a
//! [`Host`], with the Cognito emulator as the IdP and the demo MCP server upstream.
//! [`shared_scenario_tests!`](crate::shared_scenario_tests) makes one `#[tokio::test]` per
//! scenario for a host, started with the configuration the scenario needs, so every host
//! runs the same list, and checks after each one that the MCP server behind the proxy received
//! nothing but identified MCP requests ([`assert_origin_saw_only_mcp`]).

use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt as _;
use serde_json::{json, Value};

use crate::cognito::{EmulatorHandle, MintRequest, TokenTemplate};
use crate::envoy_setup::{GateOptions, GateStack};
use crate::harness::{http_client, wait_until};
use crate::journey::{mcp_client, whoami, Journey, Tokens, REDIRECT_URI};
use crate::origin::{Origin, OriginKind, OriginRequest};
use crate::worker_setup::{WorkerOptions, WorkerStack};

/// Deadline of each polled condition in a scenario.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A running proxy in front of an origin MCP server (the demo or the Python SDK's).
pub trait Host: Sized {
    /// How the stack is started; [`Default`] is the host's test configuration.
    type Options: HostOptions;
    /// Starts the emulator, the demo MCP server and the proxy; ready when it returns.
    fn start(opts: Self::Options) -> impl Future<Output = anyhow::Result<Self>>;
    /// `http://127.0.0.1:{port}` (the proxy's `base_url`).
    fn base_url(&self) -> &str;
    fn idp(&self) -> &EmulatorHandle;
    /// The MCP server behind the proxy.
    fn origin(&self) -> &Origin;
    fn mcp_url(&self) -> String {
        format!("{}/mcp", self.base_url())
    }
    /// A counter of the proxy's own (`mcpgate.jwks_fetch_ok`, …), where the host keeps them
    /// (Envoy's stats); `None` where it does not (the Worker).
    fn counter(&self, name: &str) -> impl Future<Output = Option<u64>>;
    /// Every request the MCP server behind the proxy received so far.
    fn origin_requests(&self) -> impl Future<Output = Vec<OriginRequest>> {
        async {
            self.origin()
                .requests()
                .await
                .unwrap_or_else(|e| panic!("reading the origin's request log: {e}"))
        }
    }
    /// Whether the proxy's listener also speaks HTTP/2 without TLS (prior knowledge): Envoy's
    /// does; `wrangler dev` serves HTTP/1.1 only (Cloudflare ends HTTP/2 at its edge).
    fn speaks_h2c(&self) -> bool {
        false
    }
}

/// A host's start options, set in the core's configuration keys.
pub trait HostOptions: Default {
    /// Sets the core's configuration key `key` (`jwks_refresh_seconds`, …) to `value`.
    fn config(self, key: &str, value: Value) -> Self;
    /// With or without the one-time-use / revocation store (the host's own kind).
    fn with_store(self, on: bool) -> Self;
    /// Which MCP server the stack puts behind the proxy.
    fn with_origin(self, kind: OriginKind) -> Self;
    /// Lets the proxy fetch from any host (Client ID Metadata Documents): Envoy through its
    /// dynamic forward proxy cluster (`cimd_cluster`); the Worker fetches anywhere anyway.
    fn fetch_any_host(self) -> Self;
}

impl HostOptions for GateOptions {
    /// The key as it is in the plugin configuration.
    fn config(self, key: &str, value: Value) -> Self {
        self.set(key, value)
    }
    fn with_store(self, on: bool) -> Self {
        self.set("store", json!(if on { "shared_data" } else { "none" }))
    }
    fn with_origin(self, kind: OriginKind) -> Self {
        self.origin(kind)
    }
    fn fetch_any_host(self) -> Self {
        self.set("cimd_cluster", json!(crate::envoy_setup::CIMD_CLUSTER))
    }
}

impl HostOptions for WorkerOptions {
    /// The key as its variable (`jwks_refresh_seconds` → `MCPGATE_JWKS_REFRESH_SECONDS`);
    /// strings as they are, anything else as JSON (which the Worker's lists accept too).
    fn config(self, key: &str, value: Value) -> Self {
        let name = format!("MCPGATE_{}", key.replace('.', "_").to_ascii_uppercase());
        let value = match value {
            Value::String(s) => s,
            other => other.to_string(),
        };
        self.var(&name, &value)
    }
    fn with_store(self, on: bool) -> Self {
        self.store(on)
    }
    fn with_origin(self, kind: OriginKind) -> Self {
        self.origin(kind)
    }
    fn fetch_any_host(self) -> Self {
        self
    }
}

impl Host for GateStack {
    type Options = GateOptions;
    async fn start(opts: GateOptions) -> anyhow::Result<Self> {
        GateStack::start(opts).await
    }
    fn base_url(&self) -> &str {
        &self.base_url
    }
    fn idp(&self) -> &EmulatorHandle {
        &self.idp
    }
    fn origin(&self) -> &Origin {
        &self.origin
    }
    async fn counter(&self, name: &str) -> Option<u64> {
        GateStack::counter(self, name).await.ok()
    }
    fn speaks_h2c(&self) -> bool {
        true
    }
}

impl Host for WorkerStack {
    type Options = WorkerOptions;
    async fn start(opts: WorkerOptions) -> anyhow::Result<Self> {
        WorkerStack::start(opts).await
    }
    fn base_url(&self) -> &str {
        &self.base_url
    }
    fn idp(&self) -> &EmulatorHandle {
        &self.idp
    }
    fn origin(&self) -> &Origin {
        &self.origin
    }
    async fn counter(&self, _name: &str) -> Option<u64> {
        None
    }
}

/// Accept machine-to-machine tokens of `m2m-client` on /mcp, no scope required.
pub fn m2m_options<O: HostOptions>() -> O {
    O::default()
        .config("accepted_client_ids", json!(["m2m-client"]))
        .config("accepted_client_scopes", json!([]))
}

/// [`m2m_options`] with the JWKS refreshed every `refresh` seconds and refetched on an
/// unknown `kid` at most every `min_refetch` seconds.
pub fn m2m_jwks_options<O: HostOptions>(refresh: u64, min_refetch: u64) -> O {
    m2m_options::<O>()
        .config("jwks_refresh_seconds", json!(refresh))
        .config("jwks_min_refetch_seconds", json!(min_refetch))
}

/// One `#[tokio::test]` per shared scenario for the host type `$host` (a [`Host`]), each on a
/// stack of its own started with the configuration the scenario needs and the origin
/// `$origin` (an [`OriginKind`]; the demo server when omitted). After every scenario the
/// origin must have received nothing but identified MCP requests. Use it in a host's
/// test file: `mcpgate_e2e::shared_scenario_tests!(GateStack);`, and once more in a module
/// for the Python origin.
#[macro_export]
macro_rules! shared_scenario_tests {
    ($host:ty) => {
        $crate::shared_scenario_tests!($host, $crate::origin::OriginKind::Demo);
    };
    ($host:ty, $origin:expr) => {
        $crate::shared_scenario_tests!(@each $host, $origin;
            metadata_and_unauthenticated_challenge:
                scenarios::metadata_and_challenge, Default::default();
            full_client_journey: scenarios::full_client_journey, Default::default();
            authorization_codes_are_single_use: scenarios::code_replay_refused, Default::default();
            machine_token_is_accepted_and_identity_forwarded:
                scenarios::machine_token_accepted, $crate::scenarios::m2m_options();
            unacceptable_tokens_are_rejected_as_invalid_token:
                scenarios::unacceptable_tokens_rejected,
                $crate::scenarios::m2m_jwks_options(600, 0);
            rotated_key_is_picked_up_on_unknown_kid:
                scenarios::rotated_key_picked_up, $crate::scenarios::m2m_jwks_options(600, 0);
            sse_streams_through_unbuffered:
                scenarios::sse_streams_unbuffered, $crate::scenarios::m2m_options();
            cached_keys_keep_working_while_the_jwks_fails:
                faults::cached_keys_survive_jwks_outage, $crate::faults::jwks_fault_options(1, 1);
            unknown_kid_during_a_jwks_fault_is_answered_within_the_timeout:
                faults::unknown_kid_during_jwks_fault_answers_in_time,
                $crate::faults::jwks_fault_options(600, 0);
            idp_faults_during_the_code_exchange_send_the_client_back_in_time:
                faults::code_exchange_faults_send_the_client_back_in_time,
                $crate::faults::idp_fault_options(true);
            idp_faults_during_a_refresh_answer_503_and_keep_the_token:
                faults::refresh_faults_answer_503_and_keep_the_token,
                $crate::faults::idp_fault_options(true);
            idp_faults_during_revocation_with_a_store_still_revoke:
                faults::revocation_faults_with_store, $crate::faults::idp_fault_options(true);
            idp_faults_during_revocation_without_a_store_answer_503:
                faults::revocation_faults_without_store, $crate::faults::idp_fault_options(false);
            tool_rules_step_up_after_insufficient_scope:
                tool_scenarios::step_up_after_insufficient_scope,
                $crate::tool_scenarios::tool_rule_options();
            tool_rules_group_rule_and_filtered_tools_list:
                tool_scenarios::group_rule_alice_but_not_bob,
                $crate::tool_scenarios::tool_rule_options();
            tool_rules_header_body_mismatch_is_refused:
                tool_scenarios::header_body_mismatch_refused,
                $crate::tool_scenarios::tool_rule_options();
        );
    };
    (@each $host:ty, $origin:expr;
     $($test:ident: $module:ident::$scenario:ident, $options:expr;)*) => {
        $(
            #[tokio::test]
            async fn $test() {
                use $crate::scenarios::HostOptions as _;
                let options: <$host as $crate::scenarios::Host>::Options = $options;
                let options = options.with_origin($origin);
                let stack = <$host as $crate::scenarios::Host>::start(options)
                    .await
                    .unwrap();
                $crate::$module::$scenario(&stack).await;
                $crate::scenarios::assert_origin_saw_only_mcp(&stack).await;
            }
        )*
    };
}

/// Whether `path` (with its query) is the MCP endpoint `/mcp` or below it.
pub fn is_mcp_path(path: &str) -> bool {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    path == "/mcp" || path.starts_with("/mcp/")
}

/// The MCP server behind the proxy received only requests the proxy let through: on the MCP
/// path, each with the identity of a verified token. Nothing of an OAuth route, nothing
/// unauthenticated.
pub async fn assert_origin_saw_only_mcp(h: &impl Host) {
    let stray: Vec<OriginRequest> = h
        .origin_requests()
        .await
        .into_iter()
        .filter(|r| !is_mcp_path(&r.path) || !r.identified)
        .collect();
    assert!(
        stray.is_empty(),
        "the MCP server received {} request(s) the proxy must not let through: {stray:?}",
        stray.len()
    );
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

/// The JSON-RPC answer in an MCP response body: the body itself (`application/json`), or
/// the last `data:` event carrying an `id` (`text/event-stream`, as the Python SDK answers).
pub fn jsonrpc_answer(content_type: &str, body: &str) -> Value {
    if !content_type.starts_with("text/event-stream") {
        return serde_json::from_str(body).unwrap_or(Value::Null);
    }
    body.lines()
        .rev()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .find(|v| v.get("id").is_some())
        .unwrap_or(Value::Null)
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
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = jsonrpc_answer(&ct, &resp.text().await.unwrap_or_default());
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
    let out = whoami(&h.mcp_url(), &token).await.unwrap();
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
                      "params": {"name": "count", "arguments": {"n": n, "interval_ms": 150},
                                 "_meta": {"progressToken": "sse"}}}))
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

/// `resource_metadata="…"` from a Bearer challenge.
pub fn resource_metadata(www: &str) -> String {
    let marker = "resource_metadata=\"";
    let start = www
        .find(marker)
        .unwrap_or_else(|| panic!("no resource_metadata in {www}"))
        + marker.len();
    let end = www[start..].find('"').unwrap() + start;
    www[start..end].to_owned()
}

/// Registers a client and signs in as `user` through the whole browser part, asserting on
/// every step the proxy answers (consent page, redirect to the IdP, callback, RFC 9207 `iss`).
pub async fn sign_in(h: &impl Host, user: &str, password: &str) -> (Journey, Tokens) {
    let base = h.base_url();
    let mut j = Journey::register(base).await.unwrap();
    let a = j.authorization(user, password).await.unwrap();
    assert!(
        a.consent_page.contains("e2e"),
        "the consent page names the client"
    );
    assert!(
        a.consent_page.contains("127.0.0.1"),
        "the consent page shows the redirect host"
    );
    assert!(
        a.idp_url.starts_with(&h.idp().authorization_endpoint()),
        "{}",
        a.idp_url
    );
    assert!(
        a.callback.starts_with(&format!("{base}/auth/callback")),
        "{}",
        a.callback
    );
    assert!(a.redirect.starts_with(REDIRECT_URI), "{}", a.redirect);
    assert_eq!(a.redirect_query["state"], "client-state");
    assert_eq!(
        a.redirect_query.get("iss").map(String::as_str),
        Some(base),
        "RFC 9207 iss"
    );
    let tokens = j.redeem(&a.code, &a.verifier).await.unwrap();
    assert_eq!(tokens.body["token_type"], "Bearer", "{}", tokens.body);
    (j, tokens)
}

/// The MCP client's whole journey: 401 with `resource_metadata` → discovery from that URL →
/// registration → consent → sign-in at the emulator → callback → token (with `resource`) →
/// `tools/list` and `whoami` with the rmcp client (the identity arrives, the token does not) →
/// refresh (rotated; the rotated-out token is refused) → revocation of a refresh token (at the
/// IdP too) and of an access token.
pub async fn full_client_journey(h: &impl Host) {
    let base = h.base_url();
    let http = http_client();

    // Unauthenticated: 401 pointing at the protected-resource metadata.
    let resp = http
        .post(h.mcp_url())
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let www = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    let prm_url = resource_metadata(&www);
    assert_eq!(
        prm_url,
        format!("{base}/.well-known/oauth-protected-resource/mcp")
    );

    // Discovery, following the documents like a client would.
    let prm: Value = http
        .get(&prm_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(prm["resource"], json!(h.mcp_url()));
    let issuer = prm["authorization_servers"][0].as_str().unwrap();
    let asm: Value = http
        .get(format!("{issuer}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(asm["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        asm["registration_endpoint"],
        json!(format!("{base}/register"))
    );

    // Registration, consent, sign-in at the emulator, callback, token.
    let (j, tokens) = sign_in(h, "alice", "alice-password").await;
    if let Some(ok) = h.counter("mcpgate.idp_calls_ok").await {
        assert!(
            ok >= 1,
            "the callback's code exchange at the IdP is counted"
        );
    }
    let refresh = tokens.refresh.clone().expect("a refresh token");

    // MCP with the real client: tools/list, then whoami carries the identity, not the token.
    let client = mcp_client(&h.mcp_url(), &tokens.access).await.unwrap();
    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    for tool in ["whoami", "echo", "count"] {
        assert!(names.contains(&tool), "{names:?}");
    }
    client.cancel().await.unwrap();
    let out = whoami(&h.mcp_url(), &tokens.access).await.unwrap();
    assert_eq!(out["authorization_present"], json!(false), "{out}");
    let headers = &out["headers"];
    assert_eq!(headers["x-mcpgate-username"], json!("alice"), "{out}");
    assert_eq!(
        headers["x-mcpgate-sub"],
        json!("11111111-1111-4111-8111-111111111111"),
        "{out}"
    );
    assert_eq!(headers["x-mcpgate-groups"], json!("admins"), "{out}");
    assert_eq!(
        headers["x-mcpgate-email"],
        json!("alice@example.com"),
        "{out}"
    );

    // Refresh: new tokens, the refresh token rotated; the new access token works.
    let (status, body) = j.refresh(&refresh).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let refresh2 = body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(refresh2, refresh, "refresh tokens rotate");
    let (status, _, body) = call_whoami(h, Some(body["access_token"].as_str().unwrap())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["result"]["structuredContent"]["headers"]["x-mcpgate-username"],
        json!("alice"),
        "{body}"
    );

    // The rotated-out refresh token is refused (reuse detection in the store).
    let (status, body) = j.refresh(&refresh).await.unwrap();
    assert_eq!(
        (status, body["error"].clone()),
        (400, json!("invalid_grant")),
        "{body}"
    );

    // Reuse revoked the whole grant, its newest tokens too.
    let (status, body) = j.refresh(&refresh2).await.unwrap();
    assert_eq!(
        (status, body["error"].clone()),
        (400, json!("invalid_grant")),
        "{body}"
    );

    // Revocation, on a grant of its own: a rotated refresh token no longer refreshes and is
    // revoked at the IdP too, and the grant's access tokens are refused on /mcp with it
    // (RFC 7009 §2.1); a revoked access token ends its own grant.
    let (j2, t2) = sign_in(h, "bob", "bob-password").await;
    let (status, body) = j2.refresh(t2.refresh.as_deref().unwrap()).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let access2 = body["access_token"].as_str().unwrap().to_owned();
    let refresh2 = body["refresh_token"].as_str().unwrap().to_owned();
    let (status, _, body) = call_whoami(h, Some(&access2)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(j2.revoke(&refresh2).await.unwrap(), 200);
    let (status, body) = j2.refresh(&refresh2).await.unwrap();
    assert_eq!(
        (status, body["error"].clone()),
        (400, json!("invalid_grant")),
        "{body}"
    );
    assert!(
        h.idp().stats().count("revoke") >= 1,
        "revoked at the IdP too"
    );
    let (status, www, _) = call_whoami(h, Some(&access2)).await;
    assert_invalid_token("access token of a revoked grant", status, www.as_deref());
    let (j3, t3) = sign_in(h, "bob", "bob-password").await;
    let (status, _, body) = call_whoami(h, Some(&t3.access)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(j3.revoke(&t3.access).await.unwrap(), 200);
    let (status, www, _) = call_whoami(h, Some(&t3.access)).await;
    assert_invalid_token("revoked access token", status, www.as_deref());
    let (status, body) = j3.refresh(t3.refresh.as_deref().unwrap()).await.unwrap();
    assert_eq!(
        (status, body["error"].clone()),
        (400, json!("invalid_grant")),
        "the revoked access token's grant: {body}"
    );
}

/// The store makes authorization codes single use: a replay gets `invalid_grant`.
pub async fn code_replay_refused(h: &impl Host) {
    let mut j = Journey::register(h.base_url()).await.unwrap();
    let (code, verifier) = j.authorize("alice", "alice-password").await.unwrap();
    let (status, tok) = j.exchange(&code, &verifier).await.unwrap();
    assert_eq!(status, 200, "{tok}");
    let (status, body) = j.exchange(&code, &verifier).await.unwrap();
    assert!((400..500).contains(&status), "replay answered {status}");
    assert_eq!(body["error"], json!("invalid_grant"), "{body}");
}

/// Registrations beyond the per-address limit get 429 `temporarily_unavailable` with
/// `Retry-After`, whichever of the host's workers answers. Needs a limit of 5 per address.
pub async fn rate_limit_answers_429_with_retry_after(h: &impl Host) {
    let http = http_client();
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..8 {
        let resp = http
            .post(format!("{}/register", h.base_url()))
            .json(&json!({"redirect_uris": ["http://127.0.0.1:1/cb"]}))
            .send()
            .await
            .unwrap();
        statuses.push(resp.status().as_u16());
        if resp.status() == 429 {
            retry_after = resp
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["error"], "temporarily_unavailable");
        }
    }
    // Five per minute per address: one token every 12 s.
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(retry_after.as_deref(), Some("12"));
}
