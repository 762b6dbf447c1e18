//! `/authorize` and `/consent`: errors as pages or redirects, loopback ports, the consent
//! page and its CSRF check, consent modes.

use super::*;

#[test]
fn authorize_errors_that_cannot_redirect_are_pages() {
    let mut w = World::new(json!({}));
    let r = w
        .get(&World::authorize_query("forged-client", &[]))
        .response();
    assert_eq!(r.status, 400);
    assert!(r.header("location").is_none());
    assert_eq!(r.reason, Some("invalid_client"));
    let client = w.register();
    let r = w
        .get(&World::authorize_query(
            &client,
            &[("redirect_uri", "https://evil.example/cb")],
        ))
        .response();
    assert_eq!(r.status, 400);
    assert!(r.header("location").is_none());
    let r = w.get("/authorize?client_id=a&client_id=b").response();
    assert_eq!(r.status, 400);
}

#[test]
fn authorize_errors_redirect_with_state_and_iss() {
    // Redirects only for approved clients (see security::open_redirect).
    let mut w = World::new(json!({"consent": "off"}));
    let client = w.register();
    for (extra, error) in [
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (vec![("code_challenge", "")], "invalid_request"),
        (vec![("code_challenge_method", "")], "invalid_request"),
        (vec![("code_challenge", "too-short")], "invalid_request"),
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (
            vec![("resource", "https://other.example/mcp")],
            "invalid_target",
        ),
    ] {
        let r = w.get(&World::authorize_query(&client, &extra)).response();
        assert_redirect_error(&r, error);
        assert_eq!(query_of(location(&r)).get("state"), Some("client-state"));
    }
}

#[test]
fn authorize_loopback_port_may_differ() {
    let mut w = World::new(json!({}));
    let client = w.register();
    let r = w
        .get(&World::authorize_query(
            &client,
            &[("redirect_uri", "http://127.0.0.1:5555/callback")],
        ))
        .response();
    assert_eq!(r.status, 200, "consent page");
}

#[test]
fn consent_page_escapes_client_strings_and_cannot_be_framed() {
    let mut w = World::new(json!({}));
    let client = w.register();
    let r = w.get(&World::authorize_query(&client, &[])).response();
    let html = String::from_utf8(r.body.clone()).unwrap();
    assert!(html.contains("Test &lt;Client&gt;"));
    assert!(!html.contains("Test <Client>"));
    assert!(html.contains("127.0.0.1:33418"), "redirect host shown");
    assert!(html.contains("localhost address"), "loopback warning");
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert!(r
        .header("content-security-policy")
        .unwrap()
        .contains("frame-ancestors 'none'"));
    let csrf_cookie = r
        .headers
        .iter()
        .find(|(k, v)| k == "set-cookie" && v.starts_with("__Host-mcpgate-csrf="))
        .unwrap();
    assert!(
        csrf_cookie.1.contains("HttpOnly")
            && csrf_cookie.1.contains("Secure")
            && csrf_cookie.1.contains("SameSite=Lax")
    );
}

#[test]
fn consent_requires_matching_csrf() {
    let mut w = World::new(json!({}));
    let client = w.register();
    let page = w.get(&World::authorize_query(&client, &[])).response();
    let html = String::from_utf8(page.body).unwrap();
    let txn = hidden(&html, "txn");
    let r = w
        .post_form(
            "/consent",
            &[("txn", &txn), ("csrf", "forged"), ("action", "approve")],
        )
        .response();
    assert_eq!(r.status, 403);
    w.cookies.clear();
    let r = w
        .post_form(
            "/consent",
            &[
                ("txn", &txn),
                ("csrf", &hidden(&html, "csrf")),
                ("action", "approve"),
            ],
        )
        .response();
    assert_eq!(r.status, 403, "missing cookie");
}

#[test]
fn consent_deny_redirects_access_denied() {
    let mut w = World::new(json!({}));
    let client = w.register();
    let html =
        String::from_utf8(w.get(&World::authorize_query(&client, &[])).response().body).unwrap();
    let r = w
        .post_form(
            "/consent",
            &[
                ("txn", &hidden(&html, "txn")),
                ("csrf", &hidden(&html, "csrf")),
                ("action", "deny"),
            ],
        )
        .response();
    assert_redirect_error(&r, "access_denied");
}

#[test]
fn consent_off_and_remember() {
    let mut w = World::new(json!({"consent": "off"}));
    let client = w.register();
    let r = w.get(&World::authorize_query(&client, &[])).response();
    assert_eq!(r.status, 302, "straight to the IdP");
    assert!(location(&r).starts_with("https://auth.example.com/"));

    let mut w = World::new(json!({"consent": "remember"}));
    let (client, _) = w.through_consent();
    assert!(w
        .cookies
        .iter()
        .any(|(n, _)| n == "__Host-mcpgate-approvals"));
    let r = w.get(&World::authorize_query(&client, &[])).response();
    assert_eq!(r.status, 302, "remembered: no second consent page");
    let other = w.register();
    assert_eq!(
        w.get(&World::authorize_query(&other, &[]))
            .response()
            .status,
        200,
        "other clients still asked"
    );
}
