//! The per-client rate limit cannot lock a client out for everybody: its bucket was keyed on
//! the (public, unauthenticated) client id alone, so about `rate_limit_per_client` requests a
//! minute from anywhere kept a client — a shared Client ID Metadata Document client, or a
//! leaked registration — at 429 for all its users, refreshes included. It is now per client
//! and address.

use alloc::string::String;
use serde_json::json;

use super::super::{body_json, World};
use super::cognito_idp;

#[test]
fn draining_a_clients_bucket_from_one_address_leaves_other_addresses_alone() {
    let mut w = World::new(json!({"rate_limit_per_address": 1000, "rate_limit_per_client": 2}));
    let client = w.register();
    let authorize = World::authorize_query(&client, &[]);
    let status = |w: &mut World, address: &str| match w.send_with(
        &cognito_idp,
        address,
        "GET",
        &authorize,
        &[],
        "",
    ) {
        super::super::Final::Respond(r) => r.status,
        super::super::Final::Forward(_) => 0,
    };
    // The attacker, knowing only the public client id, empties its bucket…
    for _ in 0..2 {
        assert_eq!(status(&mut w, "203.0.113.66"), 200);
    }
    assert_eq!(
        status(&mut w, "203.0.113.66"),
        429,
        "the attacker is limited"
    );
    // …and the client's users elsewhere are not.
    assert_eq!(status(&mut w, "198.51.100.1"), 200, "a user elsewhere");
    assert_eq!(status(&mut w, "198.51.100.2"), 200, "another user");

    // The same for refreshes at /token.
    let (client, tokens) = w.tokens();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", "not-a-refresh-token"),
        ("client_id", client.as_str()),
    ];
    let body = crate::form::build(&form);
    for _ in 0..3 {
        let _ = w.send_with(
            &cognito_idp,
            "203.0.113.66",
            "POST",
            "/token",
            &[("content-type", "application/x-www-form-urlencoded")],
            &body,
        );
    }
    let good = crate::form::build(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh),
        ("client_id", client.as_str()),
    ]);
    let r = w
        .send_with(
            &cognito_idp,
            "198.51.100.1",
            "POST",
            "/token",
            &[("content-type", "application/x-www-form-urlencoded")],
            &good,
        )
        .response();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(body_json(&r)["access_token"].is_string());
}
