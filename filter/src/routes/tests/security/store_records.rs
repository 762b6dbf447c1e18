//! The store: one record per refresh-token family (each rotation added a record that lived
//! 30 days, until a full store answered "already used" and "reuse detected" for everyone),
//! revoking a grant revokes its access tokens (RFC 7009 §2.1), and a store that cannot answer
//! fails open for rate limits and closed — with a 503 to retry, not a false "already used" —
//! for one-time use (the Worker turned every store error into a 429).

use alloc::format;
use alloc::string::{String, ToString};
use serde_json::{json, Value};

use super::super::{assert_oauth_error, body_json, Final, World, CLIENT_REDIRECT, VERIFIER};
use super::cognito_idp;
use crate::form;
use crate::http::{Reply, Response, StoreOp};
use crate::store::MemoryStore;

fn refresh(w: &mut World, client: &str, token: &str) -> Response {
    w.post_form(
        "/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", client),
        ],
    )
    .response()
}

fn mcp_status(w: &mut World, access: &str) -> u16 {
    match w.mcp(access) {
        Final::Respond(r) => r.status,
        Final::Forward(_) => 200,
    }
}

fn field(t: &Value, name: &str) -> String {
    t[name].as_str().unwrap().to_string()
}

#[test]
fn a_refresh_family_is_one_store_record_however_often_it_rotates() {
    let mut w = World::new(json!({}));
    let (client, t) = w.tokens();
    let mut rt = field(&t, "refresh_token");
    for _ in 0..50 {
        w.now += 60;
        let r = refresh(&mut w, &client, &rt);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        rt = field(&body_json(&r), "refresh_token");
    }
    // The family's record (the spent code's expired meanwhile): fifty rotations added none.
    assert_eq!(w.store.as_ref().unwrap().len(), 1);
}

#[test]
fn a_small_store_keeps_signing_users_in_and_refreshing() {
    let mut w = World::new(json!({}));
    w.store = Some(MemoryStore::new(4));
    // Ten logins (the IdP's test tokens live an hour), more families than the store holds.
    for i in 0..10 {
        let (client, t) = w.tokens();
        let r = refresh(&mut w, &client, &field(&t, "refresh_token"));
        assert_eq!(
            r.status,
            200,
            "login {i}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let r = refresh(&mut w, &client, &field(&body_json(&r), "refresh_token"));
        assert_eq!(
            r.status,
            200,
            "login {i}: {}",
            String::from_utf8_lossy(&r.body)
        );
        // Codes live 5 minutes in the store.
        w.now += 301;
    }
}

#[test]
fn revoking_a_refresh_token_revokes_the_familys_access_tokens() {
    let mut w = World::new(json!({}));
    let (client, t) = w.tokens();
    let first_access = field(&t, "access_token");
    let r = refresh(&mut w, &client, &field(&t, "refresh_token"));
    let t2 = body_json(&r);
    let second_access = field(&t2, "access_token");
    assert_eq!(mcp_status(&mut w, &first_access), 200);
    assert_eq!(mcp_status(&mut w, &second_access), 200);
    // Another grant of the same user and client is not touched.
    let (other_client, other) = w.tokens();
    let r = w
        .post_form(
            "/revoke",
            &[
                ("token", &field(&t2, "refresh_token")),
                ("client_id", &client),
            ],
        )
        .response();
    assert_eq!(r.status, 200);
    for access in [&first_access, &second_access] {
        let r = w.mcp(access).response();
        assert_eq!(r.status, 401);
        assert!(r
            .header("www-authenticate")
            .unwrap()
            .contains("token revoked"));
    }
    assert_eq!(mcp_status(&mut w, &field(&other, "access_token")), 200);
    let r = refresh(&mut w, &other_client, &field(&other, "refresh_token"));
    assert_eq!(r.status, 200);
}

#[test]
fn revoking_an_access_token_ends_its_grant() {
    let mut w = World::new(json!({}));
    let (client, t) = w.tokens();
    let access = field(&t, "access_token");
    // Another client's token is not revoked (RFC 7009 §2.1), and that is no error.
    let other = w.register();
    let r = w
        .post_form("/revoke", &[("token", &access), ("client_id", &other)])
        .response();
    assert_eq!(r.status, 200);
    assert_eq!(mcp_status(&mut w, &access), 200);
    let r = w
        .post_form("/revoke", &[("token", &access), ("client_id", &client)])
        .response();
    assert_eq!(r.status, 200);
    assert_eq!(mcp_status(&mut w, &access), 401);
    let r = refresh(&mut w, &client, &field(&t, "refresh_token"));
    assert_oauth_error(&r, 400, "invalid_grant");
}

/// Every store operation fails.
fn broken(_: &StoreOp) -> Reply {
    Reply::StoreFailed
}

fn via_broken_store(
    w: &mut World,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Final {
    let mut answer = broken;
    w.send_full(
        Some(&cognito_idp),
        Some(&mut answer),
        "192.0.2.7",
        method,
        path,
        headers,
        body,
    )
}

fn form_via_broken_store(w: &mut World, path: &str, pairs: &[(&str, &str)]) -> Response {
    via_broken_store(
        w,
        "POST",
        path,
        &[("content-type", "application/x-www-form-urlencoded")],
        &form::build(pairs),
    )
    .response()
}

fn assert_retry(r: &Response) {
    assert_oauth_error(r, 503, "temporarily_unavailable");
    assert_eq!(r.header("retry-after"), Some("5"));
}

#[test]
fn a_failing_store_limits_nobody_and_spends_nothing() {
    let mut w = World::new(json!({"rate_limit_per_address": 1, "rate_limit_per_client": 1}));
    // Rate limits fail open.
    let body = json!({"redirect_uris": [CLIENT_REDIRECT]}).to_string();
    for _ in 0..3 {
        let r = via_broken_store(
            &mut w,
            "POST",
            "/register",
            &[("content-type", "application/json")],
            &body,
        )
        .response();
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    }
    let mut w = World::new(json!({}));
    let (client, code) = w.login();
    let redeem = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("client_id", client.as_str()),
        ("redirect_uri", CLIENT_REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    // A code whose single use cannot be recorded is refused with a 503, not "already used"…
    assert_retry(&form_via_broken_store(&mut w, "/token", &redeem));
    // …and still redeems once the store answers again.
    let r = w.redeem(&client, &code);
    assert_eq!(r.status, 200);
    let t = body_json(&r);
    let rt = field(&t, "refresh_token");
    let refresh_form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt.as_str()),
        ("client_id", client.as_str()),
    ];
    assert_retry(&form_via_broken_store(&mut w, "/token", &refresh_form));
    assert_eq!(refresh(&mut w, &client, &rt).status, 200, "not spent");
    // The MCP path finds nothing revoked and keeps working.
    let auth = format!("Bearer {}", field(&t, "access_token"));
    let f = via_broken_store(&mut w, "POST", "/mcp", &[("authorization", &auth)], "{}");
    assert!(matches!(f, Final::Forward(_)));
    // A revocation that cannot be recorded says so.
    let access = field(&t, "access_token");
    let r = form_via_broken_store(&mut w, "/revoke", &[("token", &access)]);
    assert_retry(&r);
}
