//! `/revoke`: well-formed requests, the IdP's endpoint, outages with and without a store.

use super::*;

#[test]
fn revoke_is_200_for_unknown_tokens_and_400_without_token() {
    let mut w = World::new(json!({}));
    assert_eq!(
        w.post_form("/revoke", &[("token", "unknown")])
            .response()
            .status,
        200
    );
    assert_oauth_error(
        &w.post_form("/revoke", &[("client_id", "x")]).response(),
        400,
        "invalid_request",
    );
}

#[test]
fn revoke_reaches_the_idp_when_it_has_an_endpoint() {
    let mut w = World::new(json!({}));
    let (client, t) = w.tokens();
    let before = w.fetches.len();
    w.idp = Idp::Status(200, "");
    let r = w
        .post_form(
            "/revoke",
            &[
                ("token", t["refresh_token"].as_str().unwrap()),
                ("client_id", &client),
            ],
        )
        .response();
    assert_eq!(r.status, 200);
    assert_eq!(w.fetches.len(), before + 1);
    assert_eq!(
        w.fetches.last().unwrap().url,
        "https://auth.example.com/oauth2/revoke"
    );
    assert!(
        String::from_utf8_lossy(&w.fetches.last().unwrap().body).contains("token=upstream-refresh")
    );
}

#[test]
fn revoke_with_the_idp_down_is_503_unless_the_store_revoked_it() {
    for store in [false, true] {
        for down in [
            Idp::Status(0, ""),
            Idp::Status(503, "down"),
            Idp::Status(429, ""),
        ] {
            let mut w = World::with_store(json!({}), store);
            let (client, t) = w.tokens();
            let refresh = t["refresh_token"].as_str().unwrap().to_string();
            w.idp = down;
            let revoke = [("token", refresh.as_str()), ("client_id", client.as_str())];
            let r = w.post_form("/revoke", &revoke).response();
            let refresh_form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh.as_str()),
                ("client_id", client.as_str()),
            ];
            if store {
                // Revoked by the proxy itself: true whatever the IdP says.
                assert_eq!(r.status, 200, "store: {:?}", body_json(&r));
                w.idp = Idp::Tokens;
                let r = w.post_form("/token", &refresh_form).response();
                assert_oauth_error(&r, 400, "invalid_grant");
            } else {
                // Nothing was revoked: RFC 7009 §2.2.1, the client retries later.
                assert_oauth_error(&r, 503, "temporarily_unavailable");
                assert_eq!(r.header("retry-after"), Some("5"));
                // The IdP back, the same request revokes.
                w.idp = Idp::Status(200, "");
                assert_eq!(w.post_form("/revoke", &revoke).response().status, 200);
            }
        }
    }
}
