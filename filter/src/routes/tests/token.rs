//! `/token`: code checks and expiry, kind swaps, client authentication, refresh rotation and
//! reuse, IdP outages, restarts and key rotation, asymmetric signing.

use super::*;

#[test]
fn token_code_checks() {
    let mut w = World::new(json!({}));
    let (client, code) = w.login();
    let base = |code: &str, client: &str, redirect: &str, verifier: &str| {
        vec![
            ("grant_type".to_string(), "authorization_code".to_string()),
            ("code".into(), code.into()),
            ("client_id".into(), client.into()),
            ("redirect_uri".into(), redirect.into()),
            ("code_verifier".into(), verifier.into()),
        ]
    };
    let send = |w: &mut World, pairs: Vec<(String, String)>| {
        let p: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        w.post_form("/token", &p).response()
    };
    let wrong_verifier = "x".repeat(43);
    assert_oauth_error(
        &send(
            &mut w,
            base(&code, &client, CLIENT_REDIRECT, &wrong_verifier),
        ),
        400,
        "invalid_grant",
    );
    assert_oauth_error(
        &send(
            &mut w,
            base(&code, &client, "http://127.0.0.1:1/other", VERIFIER),
        ),
        400,
        "invalid_grant",
    );
    let other = w.register();
    assert_oauth_error(
        &send(&mut w, base(&code, &other, CLIENT_REDIRECT, VERIFIER)),
        400,
        "invalid_grant",
    );
    let mut flipped = code.clone().into_bytes();
    let i = flipped.len() - 5;
    flipped[i] = if flipped[i] == b'A' { b'B' } else { b'A' };
    assert_oauth_error(
        &send(
            &mut w,
            base(
                &String::from_utf8(flipped).unwrap(),
                &client,
                CLIENT_REDIRECT,
                VERIFIER,
            ),
        ),
        400,
        "invalid_grant",
    );
    let mut no_verifier = base(&code, &client, CLIENT_REDIRECT, VERIFIER);
    no_verifier.pop();
    assert_oauth_error(&send(&mut w, no_verifier), 400, "invalid_request");
    // The right request works once; the replay is refused.
    assert_eq!(
        send(&mut w, base(&code, &client, CLIENT_REDIRECT, VERIFIER)).status,
        200
    );
    assert_oauth_error(
        &send(&mut w, base(&code, &client, CLIENT_REDIRECT, VERIFIER)),
        400,
        "invalid_grant",
    );
}

#[test]
fn token_code_expires_after_five_minutes() {
    let mut w = World::new(json!({}));
    let (client, code) = w.login();
    w.now += 301;
    let r = w.redeem(&client, &code);
    assert_oauth_error(&r, 400, "invalid_grant");
    assert!(String::from_utf8_lossy(&r.body).contains("expired"));
}

#[test]
fn token_kind_swaps_are_refused() {
    let mut w = World::new(json!({}));
    let (client, code) = w.login();
    let t = body_json(&w.redeem(&client, &code));
    let refresh = t["refresh_token"].as_str().unwrap();
    // A refresh token presented as a code, a code as a refresh token, a client id as either.
    let r = w.redeem(&client, refresh);
    assert_oauth_error(&r, 400, "invalid_grant");
    let r = w
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &code),
                ("client_id", &client),
            ],
        )
        .response();
    assert_oauth_error(&r, 400, "invalid_grant");
    let r = w
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &client),
                ("client_id", &client),
            ],
        )
        .response();
    assert_oauth_error(&r, 400, "invalid_grant");
    // A client id made from a code does not authorize.
    let r = w.get(&World::authorize_query(&code, &[])).response();
    assert_eq!(r.status, 400);
}

#[test]
fn token_client_authentication_and_grant_types() {
    let mut w = World::new(json!({}));
    let r = w
        .post_form(
            "/token",
            &[("grant_type", "authorization_code"), ("code", "x")],
        )
        .response();
    assert_oauth_error(&r, 401, "invalid_client");
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"mcpgate\"")
    );
    let r = w
        .post_form("/token", &[("grant_type", "password"), ("client_id", "c")])
        .response();
    assert_oauth_error(&r, 400, "unsupported_grant_type");
    let r = w.post_form("/token", &[("client_id", "c")]).response();
    assert_oauth_error(&r, 400, "invalid_request");
    let r = w
        .send(
            "POST",
            "/token",
            &[("content-type", "application/json")],
            "{}",
        )
        .response();
    assert_oauth_error(&r, 400, "invalid_request");
    let r = w
        .send(
            "POST",
            "/token",
            &[("content-type", "application/x-www-form-urlencoded")],
            "grant_type=a&grant_type=b&client_id=c",
        )
        .response();
    assert_oauth_error(&r, 400, "invalid_request");
    let r = w.get("/token").response();
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));
}

#[test]
fn refresh_scope_may_only_narrow_and_reuse_revokes_the_family() {
    let mut w = World::new(json!({}));
    let (client, t) = w.tokens();
    let rt = t["refresh_token"].as_str().unwrap().to_string();
    let r = w
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt),
                ("client_id", &client),
                ("scope", "openid admin"),
            ],
        )
        .response();
    assert_oauth_error(&r, 400, "invalid_scope");
    let r = w
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt),
                ("client_id", &client),
                ("scope", "openid"),
            ],
        )
        .response();
    assert_eq!(r.status, 200);
    let narrowed = body_json(&r);
    assert_eq!(narrowed["scope"], "openid");
    let rt2 = narrowed["refresh_token"].as_str().unwrap().to_string();
    // Reuse of the rotated-out token revokes the family, the new one included.
    let r = w
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt),
                ("client_id", &client),
            ],
        )
        .response();
    assert_oauth_error(&r, 400, "invalid_grant");
    let r = w
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt2),
                ("client_id", &client),
            ],
        )
        .response();
    assert_oauth_error(&r, 400, "invalid_grant");
}

#[test]
fn refresh_upstream_unavailable_is_503_with_retry_after() {
    let mut w = World::new(json!({}));
    let (client, t) = w.tokens();
    w.idp = Idp::Status(0, "");
    let r = w
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", t["refresh_token"].as_str().unwrap()),
                ("client_id", &client),
            ],
        )
        .response();
    assert_oauth_error(&r, 503, "temporarily_unavailable");
    assert_eq!(r.header("retry-after"), Some("5"));
}

#[test]
fn refresh_retried_after_an_idp_outage_is_not_reuse() {
    let mut w = World::new(json!({}));
    let (client, t) = w.tokens();
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", t["refresh_token"].as_str().unwrap()),
        ("client_id", client.as_str()),
    ];
    for down in [Idp::Status(0, ""), Idp::Status(503, "down")] {
        w.idp = down;
        let r = w.post_form("/token", &form).response();
        assert_oauth_error(&r, 503, "temporarily_unavailable");
    }
    // The IdP back: the same token refreshes (the 503s did not spend it) ...
    w.idp = Idp::Tokens;
    let r = w.post_form("/token", &form).response();
    assert_eq!(r.status, 200, "{:?}", body_json(&r));
    let rotated = body_json(&r)["refresh_token"].as_str().unwrap().to_string();
    // ... once: used again, it is reuse, and the whole family goes.
    let r = w.post_form("/token", &form).response();
    assert_oauth_error(&r, 400, "invalid_grant");
    assert!(body_json(&r)["error_description"]
        .as_str()
        .unwrap()
        .contains("reuse"));
    let r = w
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rotated),
                ("client_id", &client),
            ],
        )
        .response();
    assert_oauth_error(&r, 400, "invalid_grant");
}

#[test]
fn without_store_codes_still_expire_and_refresh_works() {
    let mut w = World::with_store(json!({}), false);
    let (client, t) = w.tokens();
    let r = w
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", t["refresh_token"].as_str().unwrap()),
                ("client_id", &client),
            ],
        )
        .response();
    assert_eq!(r.status, 200);
}

#[test]
fn restart_with_same_keys_keeps_tokens_and_rotation_keeps_old_ones() {
    let mut w = World::new(json!({}));
    let (client, t) = w.tokens();
    let access = t["access_token"].as_str().unwrap().to_string();
    // A new gate (restart, another worker) with the same key accepts the tokens.
    let mut w2 = World::new(json!({}));
    assert!(matches!(w2.mcp(&access), Final::Forward(_)));
    // Rotation: new current key, old one kept as previous.
    let mut w3 = World::new(
        json!({"jwt_signing_key": "a-brand-new-signing-key-of-32-characters", "previous_jwt_signing_keys": ["a-signing-key-of-at-least-32-characters!"]}),
    );
    assert!(matches!(w3.mcp(&access), Final::Forward(_)));
    let r = w3
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", t["refresh_token"].as_str().unwrap()),
                ("client_id", &client),
            ],
        )
        .response();
    assert_eq!(
        r.status, 200,
        "refresh token sealed with the previous key still works"
    );
    // Once retired, the old key's tokens are refused.
    let mut w4 = World::new(json!({"jwt_signing_key": "a-brand-new-signing-key-of-32-characters"}));
    assert_eq!(w4.mcp(&access).response().status, 401);
}

#[test]
fn es256_signing_publishes_a_jwks() {
    let mut w = World::new(json!({"signing_algorithm": "ES256"}));
    let jwks = body_json(&w.get("/.well-known/jwks.json").response());
    assert_eq!(jwks["keys"][0]["kty"], "EC");
    let asm = body_json(&w.get("/.well-known/oauth-authorization-server").response());
    assert_eq!(
        asm["jwks_uri"],
        "https://mcp.example.com/.well-known/jwks.json"
    );
    let (_, t) = w.tokens();
    let access = t["access_token"].as_str().unwrap();
    let keys = KeySet::from_json(jwks.to_string().as_bytes()).unwrap();
    assert_eq!(keys.len(), 1, "the published key verifies the token");
    assert!(matches!(w.mcp(access), Final::Forward(_)));
}
