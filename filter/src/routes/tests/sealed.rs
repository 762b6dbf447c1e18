//! Every sealed kind tampered with, expired or swapped at the endpoints; tokens for another
//! resource.

use super::*;

fn flip(s: &str) -> String {
    let mut b = s.as_bytes().to_vec();
    let i = b.len() - 6;
    b[i] = if b[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(b).unwrap()
}

#[test]
fn tampered_or_expired_sealed_values_are_refused_everywhere() {
    let mut w = World::new(json!({"consent": "remember"}));
    // client_id
    let client = w.register();
    assert_eq!(
        w.get(&World::authorize_query(&flip(&client), &[]))
            .response()
            .status,
        400
    );
    assert_eq!(
        w.get(&World::authorize_query(&client[..client.len() - 3], &[]))
            .response()
            .status,
        400,
        "truncated"
    );
    // transaction (consent form)
    let page = w.get(&World::authorize_query(&client, &[])).response();
    let html = String::from_utf8(page.body).unwrap();
    let (txn, csrf) = (hidden(&html, "txn"), hidden(&html, "csrf"));
    let r = w
        .post_form(
            "/consent",
            &[("txn", &flip(&txn)), ("csrf", &csrf), ("action", "approve")],
        )
        .response();
    assert_eq!(r.status, 400);
    w.now += 15 * 60;
    let r = w
        .post_form(
            "/consent",
            &[("txn", &txn), ("csrf", &csrf), ("action", "approve")],
        )
        .response();
    assert_eq!(r.status, 400, "expired transaction");
    assert!(String::from_utf8_lossy(&r.body).contains("expired"));
    w.now -= 15 * 60;
    // state and binding cookie
    let (_, idp) = w.through_consent();
    let state = query_of(location(&idp)).get("state").unwrap().to_string();
    let r = w
        .get(&format!(
            "/auth/callback?code=c&state={}",
            form::encode(&flip(&state))
        ))
        .response();
    assert_eq!(r.status, 400);
    let saved = w.cookies.clone();
    for (n, v) in w.cookies.iter_mut() {
        if n.contains("binding") {
            *v = flip(v);
        }
    }
    assert_eq!(
        w.get(&format!(
            "/auth/callback?code=c&state={}",
            form::encode(&state)
        ))
        .response()
        .status,
        403
    );
    w.cookies = saved;
    // A state swapped into the binding cookie (kind swap) does not open.
    for (n, v) in w.cookies.iter_mut() {
        if n.contains("binding") {
            *v = state.clone();
        }
    }
    assert_eq!(
        w.get(&format!(
            "/auth/callback?code=c&state={}",
            form::encode(&state)
        ))
        .response()
        .status,
        403
    );
    // approvals cookie: tampered means "not remembered" (consent page again)
    let mut w = World::new(json!({"consent": "remember"}));
    let (client, _) = w.through_consent();
    for (n, v) in w.cookies.iter_mut() {
        if n.contains("approvals") {
            *v = flip(v);
        }
    }
    assert_eq!(
        w.get(&World::authorize_query(&client, &[]))
            .response()
            .status,
        200
    );
    // refresh token
    let mut w = World::new(json!({}));
    let (client, t) = w.tokens();
    let rt = t["refresh_token"].as_str().unwrap();
    let r = w
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &flip(rt)),
                ("client_id", &client),
            ],
        )
        .response();
    assert_oauth_error(&r, 400, "invalid_grant");
    w.now += 30 * 86_400 + 1;
    let r = w
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt),
                ("client_id", &client),
            ],
        )
        .response();
    assert_oauth_error(&r, 400, "invalid_grant");
    assert!(String::from_utf8_lossy(&r.body).contains("expired"));
    // state expires after 10 minutes
    let mut w = World::new(json!({}));
    let (_, idp) = w.through_consent();
    let state = query_of(location(&idp)).get("state").unwrap().to_string();
    w.now += 10 * 60;
    let r = w
        .get(&format!(
            "/auth/callback?code=c&state={}",
            form::encode(&state)
        ))
        .response();
    assert_eq!(r.status, 400);
}

#[test]
fn a_token_for_another_resource_is_refused() {
    // Same keys, different resource URL: the audience check stops it.
    let mut a = World::new(json!({}));
    let (_, t) = a.tokens();
    let mut b = World::new(json!({"mcp_path": "/other"}));
    let r = b
        .send(
            "POST",
            "/other",
            &[(
                "authorization",
                &format!("Bearer {}", t["access_token"].as_str().unwrap()),
            )],
            "",
        )
        .response();
    assert_eq!(r.status, 401);
    assert_eq!(r.reason, Some("audience"));
}
