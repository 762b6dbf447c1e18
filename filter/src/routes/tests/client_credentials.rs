//! `grant_type=client_credentials`: the machine client's own credentials go on to the IdP,
//! whose token is verified and answered with an audience-bound proxy token.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use base64ct::{Base64, Encoding};
use serde_json::{json, Value};

use super::{assert_oauth_error, body_json, Idp, World};
use crate::form::Params;
use crate::jwt::tests::vectors::{self, NOW};

const TOKEN_ENDPOINT: &str = "https://auth.example.com/oauth2/token";
const M2M: &str = "m2m-client";

fn machine_token(client: &str, scope: &str) -> String {
    vectors::rs256(&json!({
        "sub": client,
        "token_use": "access",
        "scope": scope,
        "auth_time": NOW - 10,
        "iss": vectors::POOL_ISSUER,
        "exp": NOW + 3600,
        "iat": NOW - 10,
        "version": 2,
        "jti": "m2m-jti",
        "client_id": client,
    }))
}

fn world(extra: Value) -> World {
    let mut cfg = json!({"accepted_client_ids": [M2M]});
    for (k, v) in extra.as_object().unwrap() {
        cfg[k] = v.clone();
    }
    let mut w = World::new(cfg);
    answer(
        &mut w,
        200,
        json!({"access_token": machine_token(M2M, "https://api.example/read"),
                               "expires_in": 3600, "token_type": "Bearer"}),
    );
    w
}

fn answer(w: &mut World, status: u16, body: Value) {
    w.idp = Idp::Urls(vec![(TOKEN_ENDPOINT.to_string(), status, body.to_string())]);
}

fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        Base64::encode_string(format!("{id}:{secret}").as_bytes())
    )
}

fn post(w: &mut World, auth: Option<&str>, pairs: &[(&str, &str)]) -> crate::http::Response {
    let body = crate::form::build(pairs);
    let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
    if let Some(a) = auth {
        headers.push(("authorization", a));
    }
    w.send("POST", "/token", &headers, &body).response()
}

#[test]
fn a_machine_client_gets_an_audience_bound_proxy_token() {
    let mut w = world(json!({}));
    let auth = basic(M2M, "m2m-secret");
    let r = post(
        &mut w,
        Some(&auth),
        &[
            ("grant_type", "client_credentials"),
            ("scope", "openid https://api.example/read"),
            ("resource", "https://mcp.example.com/mcp"),
        ],
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let v = body_json(&r);
    assert!(v.get("refresh_token").is_none(), "{v}");
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["scope"], "openid https://api.example/read");
    // The IdP got the client's own credentials in Basic, and only the scopes it can grant.
    let call = w.fetches.last().unwrap();
    assert_eq!(call.url, TOKEN_ENDPOINT);
    assert!(call
        .headers
        .contains(&("authorization".to_string(), basic(M2M, "m2m-secret"))));
    let form = Params::parse(core::str::from_utf8(&call.body).unwrap()).unwrap();
    assert_eq!(form.get("grant_type"), Some("client_credentials"));
    assert_eq!(form.get("scope"), Some("https://api.example/read"));
    assert!(form.get("client_secret").is_none());
    // The proxy's token works on the MCP endpoint, as that client.
    let token = v["access_token"].as_str().unwrap();
    let claims: Value = serde_json::from_slice(
        &crate::encoding::b64url_decode(token.split('.').nth(1).unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(claims["aud"], "https://mcp.example.com/mcp");
    let f = w.mcp(token).forward();
    assert!(f
        .headers_to_set()
        .any(|h| *h == ("x-mcpgate-client-id".to_string(), M2M.to_string())));
    assert!(f
        .headers_to_set()
        .any(|h| *h == ("x-mcpgate-sub".to_string(), M2M.to_string())));
}

#[test]
fn client_secret_post_and_no_scope() {
    let mut w = world(json!({}));
    let r = post(
        &mut w,
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", M2M),
            ("client_secret", "m2m-secret"),
            ("scope", "openid"),
        ],
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let call = w.fetches.last().unwrap();
    let form = Params::parse(core::str::from_utf8(&call.body).unwrap()).unwrap();
    assert_eq!(form.get("scope"), None, "openid is not a machine scope");
    assert!(call
        .headers
        .contains(&("authorization".to_string(), basic(M2M, "m2m-secret"))));
}

#[test]
fn refusals() {
    // Not enabled without accepted_client_ids.
    let mut w = World::new(json!({}));
    let r = post(
        &mut w,
        Some(&basic(M2M, "s")),
        &[("grant_type", "client_credentials")],
    );
    assert_oauth_error(&r, 400, "unsupported_grant_type");

    let mut w = world(json!({}));
    let fetches = w.fetches.len();
    for (auth, pairs, status, error) in [
        (
            None,
            vec![("grant_type", "client_credentials"), ("client_id", M2M)],
            401,
            "invalid_client",
        ),
        (
            Some(basic("other-client", "s")),
            vec![("grant_type", "client_credentials")],
            400,
            "unauthorized_client",
        ),
        (
            Some(basic(M2M, "s")),
            vec![("grant_type", "client_credentials"), ("client_secret", "s")],
            400,
            "invalid_request",
        ),
        (
            Some(basic(M2M, "s")),
            vec![
                ("grant_type", "client_credentials"),
                ("resource", "https://elsewhere.example/mcp"),
            ],
            400,
            "invalid_target",
        ),
        (
            Some(basic(M2M, "s")),
            vec![("grant_type", "client_credentials"), ("scope", "a\"b")],
            400,
            "invalid_scope",
        ),
        (
            Some("Basic !!!".to_string()),
            vec![("grant_type", "client_credentials")],
            401,
            "invalid_client",
        ),
    ] {
        let r = post(&mut w, auth.as_deref(), &pairs);
        assert_oauth_error(&r, status, error);
    }
    assert_eq!(w.fetches.len(), fetches, "nothing reached the IdP");

    // The IdP's refusals, in OAuth terms; its outage as 503.
    for (status, body, ours, error) in [
        (
            400,
            json!({"error": "invalid_client"}),
            401,
            "invalid_client",
        ),
        (400, json!({"error": "invalid_scope"}), 400, "invalid_scope"),
        (
            400,
            json!({"error": "unauthorized_client"}),
            400,
            "unauthorized_client",
        ),
        (
            400,
            json!({"error": "weird", "error_description": "secret internals"}),
            400,
            "invalid_grant",
        ),
        (503, json!({}), 503, "temporarily_unavailable"),
    ] {
        answer(&mut w, status, body);
        let r = post(
            &mut w,
            Some(&basic(M2M, "s")),
            &[("grant_type", "client_credentials")],
        );
        assert_oauth_error(&r, ours, error);
        assert!(!String::from_utf8_lossy(&r.body).contains("internals"));
    }
    // A token of another app client, an ID token, or without the accepted scopes: refused.
    for token in [
        machine_token("other-client", "https://api.example/read"),
        vectors::rs256(&vectors::cognito_id_claims()),
    ] {
        answer(
            &mut w,
            200,
            json!({"access_token": token, "expires_in": 3600}),
        );
        let r = post(
            &mut w,
            Some(&basic(M2M, "s")),
            &[("grant_type", "client_credentials")],
        );
        assert_oauth_error(&r, 400, "invalid_grant");
    }
    let mut w = world(json!({"accepted_client_scopes": ["https://api.example/write"]}));
    let r = post(
        &mut w,
        Some(&basic(M2M, "s")),
        &[("grant_type", "client_credentials")],
    );
    assert_oauth_error(&r, 400, "invalid_scope");
}

#[test]
fn metadata_advertises_client_credentials_only_when_enabled() {
    let mut w = world(json!({}));
    let m = body_json(&w.get("/.well-known/oauth-authorization-server").response());
    assert_eq!(
        m["grant_types_supported"],
        json!(["authorization_code", "refresh_token", "client_credentials"])
    );
    assert_eq!(
        m["token_endpoint_auth_methods_supported"],
        json!([
            "none",
            "private_key_jwt",
            "client_secret_basic",
            "client_secret_post"
        ])
    );
    let mut w = World::new(json!({}));
    let m = body_json(&w.get("/.well-known/oauth-authorization-server").response());
    assert_eq!(
        m["grant_types_supported"],
        json!(["authorization_code", "refresh_token"])
    );
}
