//! The scope a grant carries is what the IdP granted, intersected with what the client asked:
//! with `provider: oidc` (ID token only, no `scope` anywhere) the client's own request used to
//! become the grant (`scope=mcp:admin` gave `x-mcpgate-scope: mcp:admin`), and with Cognito
//! the access token's scopes were granted whether asked or not. A refresh never keeps more
//! than the IdP granted on that refresh.

use alloc::string::{String, ToString};
use serde_json::{json, Value};

use super::super::{body_json, World};
use super::{token_response, IdpFn};
use crate::http::{HttpRequest, HttpResponse};
use crate::jwt::tests::vectors;

/// Tokens, granted scope and `x-mcpgate-scope` for a login asking `requested`, then for a
/// refresh, each answered by `idp`.
fn grant(w: &mut World, idp: IdpFn, requested: &str) -> (Value, String) {
    let client = w.register();
    let code = w
        .login_with(idp, &client, &[("scope", requested)])
        .unwrap_or_else(|r| panic!("{} {}", r.status, String::from_utf8_lossy(&r.body)));
    let r = w.redeem_with(idp, &client, &code);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    (body_json(&r), client)
}

fn header_scope(w: &mut World, access: &str) -> String {
    w.mcp(access)
        .forward()
        .headers_to_set()
        .find(|(k, _)| k == "x-mcpgate-scope")
        .map(|(_, v)| v.clone())
        .unwrap()
}

fn oidc() -> World {
    World::new(json!({
        "provider": "oidc",
        "upstream": {
            "issuer": vectors::POOL_ISSUER,
            "authorization_endpoint": "https://auth.example.com/oauth2/authorize",
            "token_endpoint": "https://auth.example.com/oauth2/token",
            "jwks_uri": "https://auth.example.com/jwks.json",
        },
    }))
}

/// An OIDC IdP: an ID token, an access token that is `access` (opaque when a string), and
/// these extra token-response members.
fn oidc_idp(access: Value, extra: Value) -> impl Fn(&HttpRequest) -> HttpResponse {
    move |_| {
        let mut r = token_response(
            &json!({}),
            Some(&vectors::cognito_id_claims()),
            extra.clone(),
        );
        let mut body: Value = serde_json::from_slice(&r.body).unwrap();
        body["access_token"] = match &access {
            Value::String(s) => json!(s),
            claims => json!(vectors::rs256(claims)),
        };
        r.body = body.to_string().into_bytes();
        r
    }
}

#[test]
fn oidc_grants_only_required_scopes_when_the_idp_does_not_say() {
    let mut w = oidc();
    let idp = oidc_idp(json!("opaque-access-token"), json!({}));
    let (t, _) = grant(&mut w, &idp, "openid mcp:admin");
    assert_eq!(t["scope"], "openid", "not the client's wish");
    let access = t["access_token"].as_str().unwrap().to_string();
    assert_eq!(header_scope(&mut w, &access), "openid");
}

#[test]
fn oidc_grants_the_token_responses_scope_within_the_request() {
    let mut w = oidc();
    let idp = oidc_idp(
        json!("opaque-access-token"),
        json!({"scope": "openid mcp:read profile"}),
    );
    let (t, _) = grant(&mut w, &idp, "openid mcp:read mcp:admin");
    assert_eq!(t["scope"], "openid mcp:read");
}

#[test]
fn oidc_reads_the_scope_of_a_jwt_access_token() {
    let mut w = oidc();
    let idp = oidc_idp(
        json!({"sub": "x", "scope": "openid mcp:read", "exp": vectors::NOW + 3600}),
        json!({}),
    );
    let (t, _) = grant(&mut w, &idp, "openid mcp:read mcp:admin");
    assert_eq!(t["scope"], "openid mcp:read");
    let idp = oidc_idp(
        json!({"sub": "x", "scp": ["openid", "mcp:admin"]}),
        json!({}),
    );
    let (t, _) = grant(&mut w, &idp, "openid mcp:read mcp:admin");
    assert_eq!(t["scope"], "openid mcp:admin");
}

#[test]
fn cognito_grants_the_access_tokens_scope_within_the_request() {
    let mut w = World::new(json!({}));
    let idp = |_: &HttpRequest| {
        let mut access = vectors::cognito_access_claims();
        access["scope"] = json!("openid email mcp:read");
        token_response(&access, Some(&vectors::cognito_id_claims()), json!({}))
    };
    let (t, _) = grant(&mut w, &idp, "openid mcp:admin mcp:read");
    assert_eq!(
        t["scope"], "openid mcp:read",
        "neither asked-only nor granted-only"
    );
    let access = t["access_token"].as_str().unwrap().to_string();
    assert_eq!(header_scope(&mut w, &access), "openid mcp:read");
    // The token response's `scope` comes first when the IdP gives one.
    let idp = |_: &HttpRequest| {
        token_response(
            &vectors::cognito_access_claims(),
            Some(&vectors::cognito_id_claims()),
            json!({"scope": "openid"}),
        )
    };
    let (t, _) = grant(&mut w, &idp, "openid email");
    assert_eq!(t["scope"], "openid");
}

#[test]
fn a_refresh_never_keeps_more_than_the_idp_granted_on_it() {
    for provider in ["cognito", "oidc"] {
        let mut w = if provider == "oidc" {
            oidc()
        } else {
            World::new(json!({}))
        };
        let wide = |_: &HttpRequest| {
            token_response(
                &vectors::cognito_access_claims(),
                Some(&vectors::cognito_id_claims()),
                json!({"scope": "openid email"}),
            )
        };
        let narrowed = |_: &HttpRequest| {
            let mut access = vectors::cognito_access_claims();
            access["scope"] = json!("openid");
            token_response(
                &access,
                Some(&vectors::cognito_id_claims()),
                json!({"scope": "openid", "refresh_token": null}),
            )
        };
        let (t, client) = grant(&mut w, &wide, "openid email");
        assert_eq!(t["scope"], "openid email", "{provider}");
        // The IdP narrows the grant (the user lost a permission): so does the proxy.
        let r = w.refresh_with(&narrowed, &client, t["refresh_token"].as_str().unwrap());
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let t = body_json(&r);
        assert_eq!(t["scope"], "openid", "{provider}");
        let access = t["access_token"].as_str().unwrap().to_string();
        assert_eq!(header_scope(&mut w, &access), "openid", "{provider}");
        // A later refresh never widens it again.
        let r = w.refresh_with(&wide, &client, t["refresh_token"].as_str().unwrap());
        assert_eq!(body_json(&r)["scope"], "openid", "{provider}");
    }
}
