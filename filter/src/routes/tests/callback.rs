//! The IdP callback: the browser binding, IdP errors and outages, missing keys.

use super::*;

#[test]
fn callback_requires_the_binding_cookie_of_this_transaction() {
    let mut w = World::new(json!({}));
    let (_, idp) = w.through_consent();
    let state = query_of(location(&idp)).get("state").unwrap().to_string();
    let url = format!("/auth/callback?code=c&state={}", form::encode(&state));
    let saved = w.cookies.clone();
    w.cookies.retain(|(n, _)| !n.contains("binding"));
    assert_eq!(w.get(&url).response().status, 403, "another browser");
    // A binding cookie from another transaction does not fit.
    let (_, _) = w.through_consent();
    assert_eq!(
        w.get(&url).response().status,
        403,
        "binding of another transaction"
    );
    w.cookies = saved;
    w.cookies.push(("junk".into(), "x".into()));
    assert_eq!(w.get(&url).response().status, 302);
    assert_eq!(
        w.get("/auth/callback?code=c&state=forged")
            .response()
            .status,
        400
    );
}

#[test]
fn callback_maps_idp_errors_without_their_text() {
    let mut w = World::new(json!({}));
    let (_, idp) = w.through_consent();
    let state = query_of(location(&idp)).get("state").unwrap().to_string();
    let r = w
        .get(&format!(
            "/auth/callback?error=weird_error&error_description=%3Cscript%3E&state={}",
            form::encode(&state)
        ))
        .response();
    assert_redirect_error(&r, "server_error");
    assert!(!location(&r).contains("%3Cscript"));
    assert!(!location(&r).contains("weird_error"));
}

#[test]
fn callback_idp_unavailable_and_rejecting() {
    for (idp, error) in [
        (Idp::Status(0, ""), "temporarily_unavailable"),
        (Idp::Status(503, "down"), "temporarily_unavailable"),
        (
            Idp::Status(400, r#"{"error":"invalid_grant"}"#),
            "server_error",
        ),
    ] {
        let mut w = World::new(json!({}));
        w.idp = idp;
        let (_, redirect) = w.through_consent();
        let r = w.callback(&redirect);
        assert_redirect_error(&r, error);
    }
}

#[test]
fn callback_without_keys_asks_host_then_fails_softly() {
    let mut w = World::new(json!({}));
    w.keys = None;
    let (_, redirect) = w.through_consent();
    let r = w.callback(&redirect);
    assert_eq!(w.need_keys, 1);
    assert_redirect_error(&r, "temporarily_unavailable");
}
