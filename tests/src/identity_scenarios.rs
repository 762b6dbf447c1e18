//! What the origin learns besides the identity headers (issue 16), end to end on both hosts
//! and both origins: the IdP's token of the user (`forward_upstream_token`), which the
//! origin's `upstream_userinfo` tool uses at the Cognito emulator's `userInfo` as the user,
//! renewed by the proxy when it expired between two tool calls; and the identity assertion
//! (`identity_assertion`), which the origin's `verify_assertion` tool verifies against the
//! proxy's JWKS (the Python origin with the README's PyJWT snippet, the demo with RustCrypto)
//! and refuses once tampered with; identity headers turned off (`null`) do not reach it. A
//! client's own copies of these headers never reach the origin. [`identity_scenario_tests!`](crate::identity_scenario_tests) makes one test per
//! scenario for a host.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::envoy_setup::GateOptions;
use crate::harness::{http_client, wait_until};
use crate::origin::OriginSettings;
use crate::scenarios::{jsonrpc_answer, now, sign_in, Host, HostOptions};
use crate::worker_setup::WorkerOptions;

/// Alice's `sub` in the emulator's fixture.
pub const ALICE_SUB: &str = "11111111-1111-4111-8111-111111111111";

/// Sets the emulator's access and ID token lifetime (the stack's Cognito pool).
pub trait IdpTokenLifetime {
    fn idp_token_lifetime(self, seconds: u64) -> Self;
}

impl IdpTokenLifetime for GateOptions {
    fn idp_token_lifetime(mut self, seconds: u64) -> Self {
        self.cognito.token_lifetime_secs = seconds;
        self
    }
}

impl IdpTokenLifetime for WorkerOptions {
    fn idp_token_lifetime(mut self, seconds: u64) -> Self {
        self.cognito.token_lifetime_secs = seconds;
        self
    }
}

/// The IdP's access token forwarded.
pub fn upstream_options<O: HostOptions>() -> O {
    O::default().config("forward_upstream_token", json!("access"))
}

/// The identity assertion on.
pub fn assertion_options<O: HostOptions>() -> O {
    O::default().config("identity_assertion", json!(true))
}

/// The IdP's access token forwarded, the emulator's tokens living 8 seconds.
pub fn short_lived_options<O: HostOptions + IdpTokenLifetime>() -> O {
    upstream_options::<O>().idp_token_lifetime(8)
}

/// Both on, the IdP's token in `Authorization` and the assertion in a header of its own.
pub fn renamed_options<O: HostOptions>() -> O {
    O::default()
        .config("forward_upstream_token", json!("access"))
        .config("upstream_token_header", json!("authorization"))
        .config("identity_assertion", json!(true))
        .config("identity_assertion_header", json!("x-id-assertion"))
}

/// Only the subject and the user name passed (`identity_headers`: the others `null`).
pub fn trimmed_options<O: HostOptions>() -> O {
    O::default().config(
        "identity_headers",
        json!({"groups": null, "scope": null, "client_id": null, "email": null}),
    )
}

/// One `#[tokio::test]` per identity scenario for the host type `$host`, in front of the
/// origin `$origin` (the demo server when omitted); after each, the origin must have seen
/// nothing but identified MCP requests.
#[macro_export]
macro_rules! identity_scenario_tests {
    ($host:ty) => {
        $crate::identity_scenario_tests!($host, $crate::origin::OriginKind::Demo);
    };
    ($host:ty, $origin:expr) => {
        $crate::shared_scenario_tests!(@each $host, $origin;
            the_forwarded_idp_token_works_at_userinfo:
                identity_scenarios::upstream_token_works_at_userinfo,
                $crate::identity_scenarios::upstream_options();
            the_idp_token_expiring_between_two_calls_is_renewed:
                identity_scenarios::upstream_token_renewed_between_calls,
                $crate::identity_scenarios::short_lived_options();
            the_identity_assertion_verifies_and_a_tampered_one_does_not:
                identity_scenarios::assertion_verifies, $crate::identity_scenarios::assertion_options();
            nothing_is_forwarded_by_default_and_client_copies_are_stripped:
                identity_scenarios::nothing_by_default, Default::default();
            renamed_headers_and_the_idp_token_as_authorization:
                identity_scenarios::renamed_headers, $crate::identity_scenarios::renamed_options();
            identity_headers_turned_off_do_not_reach_the_origin:
                identity_scenarios::trimmed_headers, $crate::identity_scenarios::trimmed_options();
        );
    };
}

/// Calls tool `name` with `args` on the MCP endpoint with `token` and extra request headers:
/// the HTTP status and the tool's structured result.
pub async fn call_tool(
    h: &impl Host,
    token: &str,
    name: &str,
    args: Value,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut req = http_client()
        .post(h.mcp_url())
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                      "params": {"name": name, "arguments": args}}));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    for (k, _) in resp.headers() {
        assert!(
            !k.as_str().contains("upstream-token") && !k.as_str().contains("assertion"),
            "the proxy's answer carries {k}"
        );
    }
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = jsonrpc_answer(&ct, &resp.text().await.unwrap_or_default());
    let mut result = body["result"]["structuredContent"].clone();
    if result.is_null() {
        // Unstructured: the JSON text of the first content block.
        result = body["result"]["content"][0]["text"]
            .as_str()
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or(Value::Null);
    }
    // The Python SDK wraps a dict it cannot describe as `{"result": …}`.
    if let Some(inner) = result
        .get("result")
        .filter(|_| result.as_object().is_some_and(|o| o.len() == 1))
    {
        result = inner.clone();
    }
    assert!(!result.is_null(), "{name}: {body}");
    (status, result)
}

/// The forwarded IdP token works at `userInfo` as alice; a client's own copy of the header
/// is not what the origin gets; the client holds the IdP's token only sealed.
pub async fn upstream_token_works_at_userinfo(h: &impl Host) {
    let (_, tokens) = sign_in(h, "alice", "alice-password").await;
    let claims = crate::jwt::decode_unverified(&tokens.access)
        .unwrap()
        .claims;
    assert!(claims["upt"].is_string(), "{claims:?}");
    assert!(
        claims.get("token_use").is_none() && !tokens.body.to_string().contains("origin_jti"),
        "the IdP's token is not readable in the client's answer: {claims:?}"
    );
    let forged = [("x-mcpgate-upstream-token", "forged.by.client")];
    let (status, out) = call_tool(h, &tokens.access, "upstream_userinfo", json!({}), &forged).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["token_present"], json!(true), "{out}");
    assert_eq!(out["status"], json!(200), "userInfo accepts it: {out}");
    assert_eq!(out["userinfo"]["username"], "alice", "{out}");
    assert_eq!(out["userinfo"]["sub"], ALICE_SUB, "{out}");
    assert_eq!(out["token"]["token_use"], "access", "{out}");
    assert_eq!(out["token"]["client_id"], "mcpgate-web", "{out}");
}

/// The emulator's tokens live 8 s: the IdP token the first call used has expired when the
/// second call comes, and the proxy renews it (a refresh at the emulator) before forwarding.
pub async fn upstream_token_renewed_between_calls(h: &impl Host) {
    let (_, tokens) = sign_in(h, "alice", "alice-password").await;
    let t0 = Instant::now();
    let (status, first) = call_tool(h, &tokens.access, "upstream_userinfo", json!({}), &[]).await;
    let first_call = t0.elapsed();
    assert_eq!(
        (status, first["status"].clone()),
        (200, json!(200)),
        "{first}"
    );
    let exp = first["token"]["exp"].as_u64().unwrap();
    let jti = first["token"]["jti"].clone();
    wait_until(
        Duration::from_secs(30),
        "the IdP token to expire",
        || async { (now() > exp).then_some(()) },
    )
    .await
    .unwrap();
    let refreshes = h.idp().stats().count("token:refresh_token");
    let t1 = Instant::now();
    let (status, second) = call_tool(h, &tokens.access, "upstream_userinfo", json!({}), &[]).await;
    let renewing_call = t1.elapsed();
    assert_eq!(status, 200, "{second}");
    assert_eq!(
        second["status"],
        json!(200),
        "the renewed token works: {second}"
    );
    assert_ne!(second["token"]["jti"], jti, "another IdP token: {second}");
    assert!(second["token"]["exp"].as_u64().unwrap() > now(), "{second}");
    assert_eq!(
        h.idp().stats().count("token:refresh_token"),
        refreshes + 1,
        "one refresh at the IdP"
    );
    // The next call reuses the renewed token.
    let (_, third) = call_tool(h, &tokens.access, "upstream_userinfo", json!({}), &[]).await;
    assert_eq!(third["token"]["jti"], second["token"]["jti"], "{third}");
    assert_eq!(h.idp().stats().count("token:refresh_token"), refreshes + 1);
    println!(
        "tool call with the IdP token at hand: {first_call:?}; with its renewal first: {renewing_call:?}"
    );
}

/// The proxy's JWKS is served (its access tokens are HS256) and advertised; the origin
/// verifies the assertion with it; a tampered assertion does not verify; a client's own
/// assertion never reaches the origin.
pub async fn assertion_verifies(h: &impl Host) {
    let base = h.base_url();
    let jwks: Value = http_client()
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["alg"], "ES256", "{jwks}");
    let asm: Value = http_client()
        .get(format!("{base}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        asm["jwks_uri"],
        json!(format!("{base}/.well-known/jwks.json"))
    );

    let (_, tokens) = sign_in(h, "alice", "alice-password").await;
    let forged = [("x-mcpgate-assertion", "forged.by.client")];
    let (status, out) = call_tool(h, &tokens.access, "verify_assertion", json!({}), &forged).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["valid"], json!(true), "{out}");
    let c = &out["claims"];
    assert_eq!(c["iss"], json!(base), "{out}");
    assert_eq!(c["aud"], json!(h.mcp_url()), "{out}");
    assert_eq!(c["sub"], ALICE_SUB, "{out}");
    assert_eq!(c["username"], "alice", "{out}");
    assert_eq!(c["groups"], json!(["admins"]), "{out}");
    assert!(c["scope"].as_str().unwrap().contains("openid"), "{out}");
    assert!(
        c["client_id"].as_str().is_some_and(|s| !s.is_empty()),
        "{out}"
    );
    let (iat, exp) = (c["iat"].as_u64().unwrap(), c["exp"].as_u64().unwrap());
    assert!(exp > now() && exp - iat <= 60, "{out}");

    let (_, out) = call_tool(
        h,
        &tokens.access,
        "verify_assertion",
        json!({"tamper": true}),
        &[],
    )
    .await;
    assert_eq!(out["present"], json!(true), "{out}");
    assert_eq!(out["valid"], json!(false), "a tampered assertion: {out}");
}

/// Off by default: the origin gets neither, even when the client sends them itself.
pub async fn nothing_by_default(h: &impl Host) {
    let (_, tokens) = sign_in(h, "alice", "alice-password").await;
    let forged = [
        ("x-mcpgate-upstream-token", "forged.by.client"),
        ("x-mcpgate-assertion", "forged.by.client"),
    ];
    let (_, out) = call_tool(h, &tokens.access, "upstream_userinfo", json!({}), &forged).await;
    assert_eq!(out["token_present"], json!(false), "{out}");
    let (_, out) = call_tool(h, &tokens.access, "verify_assertion", json!({}), &forged).await;
    assert_eq!(out["present"], json!(false), "{out}");
    let claims = crate::jwt::decode_unverified(&tokens.access)
        .unwrap()
        .claims;
    assert!(claims.get("upt").is_none(), "{claims:?}");
}

/// The IdP's token as `Authorization: Bearer …` (for origins that verify Cognito tokens
/// themselves) and the assertion under another name: both reach the origin, the client's own
/// `x-id-assertion` does not.
pub async fn renamed_headers(h: &impl Host) {
    let mut settings = OriginSettings::for_proxy(h.base_url(), &h.idp().userinfo_endpoint());
    settings.upstream_token_header = "authorization".into();
    settings.assertion_header = "x-id-assertion".into();
    h.origin().configure(&settings).await.unwrap();
    let (_, tokens) = sign_in(h, "alice", "alice-password").await;
    let forged = [("x-id-assertion", "forged.by.client")];
    let (_, out) = call_tool(h, &tokens.access, "upstream_userinfo", json!({}), &forged).await;
    assert_eq!(out["status"], json!(200), "{out}");
    assert_eq!(out["userinfo"]["username"], "alice", "{out}");
    let (_, out) = call_tool(h, &tokens.access, "verify_assertion", json!({}), &forged).await;
    assert_eq!(out["valid"], json!(true), "{out}");
}

/// Identity headers turned off reach the origin neither from the proxy nor from the client:
/// alice (group `admins`) arrives with her subject and name only, a forged groups header is
/// removed.
pub async fn trimmed_headers(h: &impl Host) {
    let (_, tokens) = sign_in(h, "alice", "alice-password").await;
    let forged = [("x-mcpgate-groups", "admins,ops")];
    let (status, out) = call_tool(h, &tokens.access, "whoami", json!({}), &forged).await;
    assert_eq!(status, 200, "{out}");
    let seen = out["headers"].as_object().cloned().unwrap_or_default();
    let mut names: Vec<&str> = seen.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["x-mcpgate-sub", "x-mcpgate-username"],
        "the origin saw {out}"
    );
    assert_eq!(seen["x-mcpgate-sub"], json!(ALICE_SUB), "{out}");
    assert_eq!(seen["x-mcpgate-username"], json!("alice"), "{out}");
}
