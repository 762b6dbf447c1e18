//! Sealed values are bound to their deployment (issuer and resource): two gateways sharing an
//! app client — so the same client secret, from which the default sealing key derives — once
//! accepted each other's client ids, codes and refresh tokens. And a refresh token's resource
//! is checked at `/token`.

use alloc::string::{String, ToString};
use alloc::vec;
use serde_json::{json, Value};

use super::super::{assert_oauth_error, body_json, config, World};
use super::cognito_idp;
use crate::config::parse_json;
use crate::gate::Gate;
use crate::records::Grant;
use crate::seal::{self, Kind};

/// A world whose gate has no `jwt_signing_key` (keys derived from the shared client secret),
/// with `extra` laid over the test configuration.
fn gateway(extra: Value) -> World {
    let mut w = World::new(json!({}));
    let mut c = config(extra);
    c.as_object_mut().unwrap().remove("jwt_signing_key");
    let cfg = parse_json(c.to_string().as_bytes(), &[], &|_| None)
        .unwrap()
        .config;
    w.gate = Gate::new(cfg).unwrap();
    w
}

#[test]
fn two_gateways_sharing_an_app_client_refuse_each_others_sealed_values() {
    for other in [
        json!({"base_url": "https://other.example.com"}),
        json!({"mcp_path": "/other-mcp"}),
        json!({"issuer_url": "https://issuer.example.com"}),
    ] {
        let mut a = gateway(json!({}));
        let mut b = gateway(other.clone());
        let (client, code) = a.login();
        // A's client id is unknown at B.
        let r = b.get(&World::authorize_query(&client, &[])).response();
        assert_eq!(r.status, 400, "{other}: client id crossed over");
        assert_eq!(r.reason, Some("invalid_client"));
        // A's code does not redeem at B (the redirect URI and PKCE verifier are right).
        let r = b.redeem(&client, &code);
        assert_oauth_error(&r, 400, "invalid_grant");
        // A's refresh token does not refresh at B.
        let t = body_json(&a.redeem(&client, &code));
        let refresh = t["refresh_token"].as_str().unwrap();
        let r = b
            .post_form(
                "/token",
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh),
                    ("client_id", &client),
                ],
            )
            .response();
        assert_oauth_error(&r, 400, "invalid_grant");
        // B's consent and binding cookies mean nothing at A either: A asks again.
        let client_b = b.register();
        let r = a.get(&World::authorize_query(&client_b, &[])).response();
        assert_eq!(r.status, 400, "{other}: B's client id at A");
        // And each still works at home.
        let code_b = b
            .login_with(&cognito_idp, &client_b, &[("resource", "")])
            .unwrap();
        assert_eq!(b.redeem(&client_b, &code_b).status, 200);
    }
}

#[test]
fn a_refresh_token_for_another_resource_is_refused() {
    let mut w = World::new(json!({}));
    let (client, _) = w.tokens();
    let grant = Grant {
        client_id: client.clone(),
        scope: "openid".into(),
        resource: "https://mcp.example.com/other".into(),
        sub: "6a1f1d2e-1111-2222-3333-444455556666".into(),
        username: None,
        groups: vec![],
        email: None,
        extra: vec![],
        upstream_refresh: Some("upstream-refresh".into()),
        upstream_expires_in: 3600,
        family: "fam".into(),
        jti: "jti".into(),
        generation: 0,
        upstream: None,
    };
    let sealed = seal::seal(
        &w.gate.ring,
        Kind::RefreshToken,
        &grant,
        w.now + 600,
        &mut w.rng,
    )
    .unwrap();
    let fetches = w.fetches.len();
    let r = w
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &sealed),
                ("client_id", &client),
            ],
        )
        .response();
    assert_oauth_error(&r, 400, "invalid_grant");
    assert!(String::from_utf8_lossy(&r.body).contains("another resource"));
    assert_eq!(w.fetches.len(), fetches, "the IdP was not asked");
    // The same grant for this resource refreshes.
    let mut ok = grant;
    ok.resource = "https://mcp.example.com/mcp".to_string();
    let sealed = seal::seal(
        &w.gate.ring,
        Kind::RefreshToken,
        &ok,
        w.now + 600,
        &mut w.rng,
    )
    .unwrap();
    let r = w
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &sealed),
                ("client_id", &client),
            ],
        )
        .response();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}
