//! The guard of the MCP endpoint: tokens refused with their specific errors, IdP tokens
//! accepted only when configured, scopes, group rules, revocation.

use super::*;

#[test]
fn mcp_rejects_garbage_and_expired_tokens_with_invalid_token() {
    let mut w = World::new(json!({}));
    let r = w.mcp("not-a-jwt").response();
    assert_eq!(r.status, 401);
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .contains("error=\"invalid_token\""));
    let (_, t) = w.tokens();
    w.now += 3600 + 31;
    let r = w.mcp(t["access_token"].as_str().unwrap()).response();
    assert_eq!(r.status, 401);
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .contains("error_description=\"token expired\""));
    assert_eq!(r.reason, Some("expired"));
}

#[test]
fn mcp_rejects_cognito_tokens_unless_accepted() {
    let mut w = World::new(json!({}));
    let cognito = vectors::rs256(&vectors::cognito_access_claims());
    assert_eq!(w.mcp(&cognito).response().status, 401);
    let mut w = World::new(
        json!({"accepted_client_ids": [vectors::APP_CLIENT], "accepted_client_scopes": ["email"]}),
    );
    let f = w.mcp(&cognito).forward();
    assert!(f
        .headers_to_set()
        .any(|h| *h == ("x-mcpgate-username".into(), "alice".into())));
    let id_token = vectors::rs256(&vectors::cognito_id_claims());
    let r = w.mcp(&id_token).response();
    assert_eq!(r.status, 401, "ID tokens are not access tokens");
}

#[test]
fn identity_header_values_lose_their_control_characters() {
    let mut w = World::new(json!({"accepted_client_ids": [vectors::APP_CLIENT]}));
    let mut claims = vectors::cognito_access_claims();
    claims["username"] = json!("alice\r\nx-evil: 1\u{85}\tend");
    let f = w.mcp(&vectors::rs256(&claims)).forward();
    let username = f
        .headers_to_set()
        .find(|(k, _)| k == "x-mcpgate-username")
        .map(|(_, v)| v.clone());
    assert_eq!(username.as_deref(), Some("alice  x-evil: 1  end"));
}

#[test]
fn mcp_direct_token_with_unknown_kid_asks_host_for_keys_once() {
    let mut w = World::new(json!({"accepted_client_ids": [vectors::APP_CLIENT]}));
    let t = vectors::sign(
        r#"{"alg":"RS256","kid":"rotated"}"#,
        &vectors::cognito_access_claims().to_string(),
    );
    let r = w.mcp(&t).response();
    assert_eq!(r.status, 401);
    assert_eq!(w.need_keys, 1);
    w.keys = None;
    let r = w
        .mcp(&vectors::rs256(&vectors::cognito_access_claims()))
        .response();
    assert_eq!(r.status, 503, "fails closed without keys");
    assert_eq!(r.header("retry-after"), Some("5"));
}

#[test]
fn mcp_insufficient_scope_is_403() {
    let mut w = World::new(
        json!({"accepted_client_ids": [vectors::APP_CLIENT], "accepted_client_scopes": ["admin"]}),
    );
    let r = w
        .mcp(&vectors::rs256(&vectors::cognito_access_claims()))
        .response();
    assert_eq!(r.status, 403);
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .contains("error=\"insufficient_scope\""));
}

#[test]
fn mcp_group_rules_restrict_paths() {
    let mut w =
        World::new(json!({"group_rules": [{"path_prefix": "/mcp/admin", "groups": ["ops"]}]}));
    let (_, t) = w.tokens();
    let access = format!("Bearer {}", t["access_token"].as_str().unwrap());
    let r = w
        .send("GET", "/mcp/admin/x", &[("authorization", &access)], "")
        .response();
    assert_eq!(r.status, 403);
    assert_eq!(r.reason, Some("group"));
    assert!(matches!(
        w.send("GET", "/mcp", &[("authorization", &access)], ""),
        Final::Forward(_)
    ));
}

#[test]
fn mcp_revoked_access_token_is_refused() {
    let mut w = World::new(json!({}));
    let (client_id, t) = w.tokens();
    let access = t["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        w.post_form("/revoke", &[("token", &access), ("client_id", &client_id)])
            .response()
            .status,
        200
    );
    let r = w.mcp(&access).response();
    assert_eq!(r.status, 401);
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .contains("token revoked"));
}

#[test]
fn mcp_refuses_tokens_in_query_and_duplicate_authorization() {
    let mut w = World::new(json!({}));
    let r = w.send("GET", "/mcp?access_token=abc", &[], "").response();
    assert_oauth_error(&r, 400, "invalid_request");
    let r = w
        .send(
            "GET",
            "/mcp",
            &[("authorization", "Bearer a"), ("authorization", "Bearer b")],
            "",
        )
        .response();
    assert_oauth_error(&r, 400, "invalid_request");
    let r = w
        .send("GET", "/mcp", &[("authorization", "Basic abc")], "")
        .response();
    assert_eq!(r.status, 401);
}

#[test]
fn a_cached_token_forwards_the_identity_headers_built_once() {
    let mut w = World::new(json!({"claim_headers": {"custom:tenant": "x-tenant"}}));
    let (_, t) = w.tokens();
    let token = t["access_token"].as_str().unwrap().to_string();
    let first = w.mcp(&token).forward();
    let built = w
        .cache
        .attached(&token)
        .and_then(|a| a.identity_headers.clone())
        .expect("the identity headers are kept with the cached token");
    assert!(built.iter().any(|(k, _)| k == "x-mcpgate-sub"));
    // What the second request gets is the cached list: change it and see it come out.
    if let Some(a) = w.cache.attached(&token) {
        a.identity_headers = Some(vec![("x-mcpgate-sub".into(), "from-cache".into())].into());
    }
    let second = w.mcp(&token).forward();
    assert!(second
        .headers_to_set()
        .any(|h| *h == ("x-mcpgate-sub".into(), "from-cache".into())));
    assert!(first
        .headers_to_set()
        .any(|(k, v)| k == "x-mcpgate-sub" && v != "from-cache"));
    // Shared, not copied: the forward holds the cache's own list.
    let cached = w
        .cache
        .attached(&token)
        .and_then(|a| a.identity_headers.clone());
    assert!(cached.is_some_and(|c| second
        .identity_headers
        .as_ref()
        .is_some_and(|h| alloc::rc::Rc::ptr_eq(&c, h))));
    assert_eq!(first.remove_headers, second.remove_headers);
}

#[test]
fn identity_headers_turned_off_are_not_set_and_still_not_spoofable() {
    let mut w = World::new(json!({
        "identity_headers": {"username": null, "groups": null, "scope": null, "email": null}
    }));
    let (_, t) = w.tokens();
    let token = t["access_token"].as_str().unwrap().to_string();
    let auth = format!("Bearer {token}");
    let spoofed = [
        ("authorization", auth.as_str()),
        ("x-mcpgate-groups", "admins"),
    ];
    let f = w.send("GET", "/mcp", &spoofed, "").forward();
    let set: Vec<&str> = f.headers_to_set().map(|(k, _)| k.as_str()).collect();
    assert_eq!(set, ["x-mcpgate-sub", "x-mcpgate-client-id"]);
    assert_eq!(
        *f.remove_headers,
        ["x-mcpgate-groups", "authorization"],
        "the client's copy of a header the proxy does not set is still removed, and the token"
    );
}

#[test]
fn a_request_without_spoofed_headers_removes_only_the_token_from_a_constant_list() {
    let mut w = World::new(json!({}));
    let (_, t) = w.tokens();
    let auth = format!("Bearer {}", t["access_token"].as_str().unwrap());
    let f = w
        .send("GET", "/mcp", &[("authorization", auth.as_str())], "")
        .forward();
    assert_eq!(*f.remove_headers, ["authorization"]);
    assert!(
        matches!(f.remove_headers, alloc::borrow::Cow::Borrowed(_)),
        "nothing allocated for it"
    );
    let spoofed = [("x-mcpgate-sub", "admin"), ("authorization", auth.as_str())];
    let f = w.send("GET", "/mcp", &spoofed, "").forward();
    assert_eq!(*f.remove_headers, ["x-mcpgate-sub", "authorization"]);
}
