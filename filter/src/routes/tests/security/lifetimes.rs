//! Lifetimes and sizes of sealed values: a pending authorization lives 10 minutes (the MCP
//! security best practices), and a user with 100 Cognito groups of realistic length still
//! gets a code, tokens and a working refresh (the 8 KiB cap on sealed values refused the
//! code before).

extern crate std;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::json;

use super::super::{body_json, hidden, World};
use super::{token_response, IdpFn};
use crate::http::{HttpRequest, HttpResponse};
use crate::jwt::tests::vectors;
use crate::seal::MAX_SEALED_BYTES;

#[test]
fn a_pending_authorization_lives_ten_minutes() {
    let mut w = World::new(json!({}));
    let client = w.register();
    let page = |w: &mut World| {
        let html = String::from_utf8(w.get(&World::authorize_query(&client, &[])).response().body)
            .unwrap();
        (hidden(&html, "txn"), hidden(&html, "csrf"))
    };
    let consent = |w: &mut World, (txn, csrf): &(String, String)| {
        w.post_form(
            "/consent",
            &[("txn", txn), ("csrf", csrf), ("action", "approve")],
        )
        .response()
    };
    let form = page(&mut w);
    w.now += 599;
    assert_eq!(consent(&mut w, &form).status, 302, "within 10 minutes");
    let form = page(&mut w);
    w.now += 600;
    let r = consent(&mut w, &form);
    assert_eq!(r.status, 400, "after 10 minutes");
    assert!(String::from_utf8_lossy(&r.body).contains("expired"));
    // The IdP's `state` too.
    let (_, idp) = w.through_consent();
    w.now += 600;
    let r = w.callback(&idp);
    assert_eq!(r.status, 400);
    assert!(String::from_utf8_lossy(&r.body).contains("expired"));
}

/// 100 group names of 40 to 60 characters, like directory-synchronised Cognito groups.
fn many_groups() -> Vec<String> {
    (0..100)
        .map(|i| {
            let name = format!("acme-{i:03}-platform-engineering-eu-central-1-");
            let pad = 40 + (i * 7) % 21;
            format!("{name:x<pad$}")
        })
        .collect()
}

#[test]
fn a_user_with_100_groups_signs_in_refreshes_and_reaches_the_origin() {
    let groups = many_groups();
    assert!(groups.iter().all(|g| (40..=60).contains(&g.len())));
    // A Cognito refresh token is a JWE of about 1,800 characters.
    let upstream_refresh: String = "eyJjdHkiOiJKV1QiLCJlbmMiOiJBMjU2R0NNIiwiYWxnIjoiUlNBLU9BRVAifQ"
        .chars()
        .cycle()
        .take(1800)
        .collect();
    let idp = |req: &HttpRequest| -> HttpResponse {
        let mut access = vectors::cognito_access_claims();
        access["cognito:groups"] = json!(many_groups());
        let mut id = vectors::cognito_id_claims();
        id["cognito:groups"] = json!(many_groups());
        let refresh = String::from_utf8_lossy(&req.body).contains("refresh_token=");
        let extra = if refresh {
            json!({"refresh_token": null})
        } else {
            json!({"refresh_token": upstream_refresh.clone()})
        };
        token_response(&access, Some(&id), extra)
    };
    let idp: IdpFn = &idp;
    let mut w = World::new(json!({}));
    let client = w.register();
    let code = w
        .login_with(idp, &client, &[("scope", "openid email")])
        .unwrap();
    let r = w.redeem_with(idp, &client, &code);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let t = body_json(&r);
    let access = t["access_token"].as_str().unwrap().to_string();
    let refresh = t["refresh_token"].as_str().unwrap().to_string();
    let f = w.mcp(&access).forward();
    let groups_header = f
        .headers_to_set()
        .find(|(k, _)| k == "x-mcpgate-groups")
        .map(|(_, v)| v.clone())
        .unwrap();
    assert_eq!(groups_header, groups.join(","));
    let r = w.refresh_with(idp, &client, &refresh);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let t2 = body_json(&r);
    let refresh2 = t2["refresh_token"].as_str().unwrap().to_string();
    let r = w.refresh_with(idp, &client, &refresh2);
    assert_eq!(r.status, 200, "refresh of a refreshed token");
    let sizes = format!(
        "groups JSON {} B, client_id {} B, code {} B, access token {} B, refresh token {} B, groups header {} B (cap {})",
        json!(groups).to_string().len(),
        client.len(),
        code.len(),
        access.len(),
        refresh.len(),
        groups_header.len(),
        MAX_SEALED_BYTES
    );
    std::println!("{sizes}");
    assert!(code.len() <= MAX_SEALED_BYTES, "{sizes}");
}
