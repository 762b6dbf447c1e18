//! Per-tool authorization through the whole core: rules on scopes (the 403 a client steps up
//! from), groups and claims, the default, the plumbing a deny default lets through, the
//! refusals of bodies that cannot be authorized, `Mcp-Method` / `Mcp-Name` against the body,
//! the `tools/list` filter handed to hosts, and what hosts are told to buffer.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::{json, Value};

use super::{body_json, Final, World, BASE};
use crate::http::{Env, Outcome, Reply, Request};
use crate::jwt::tests::vectors::{self, NOW};
use crate::jwt::KeySet;

/// `echo` needs the `profile` scope, `count` the `admins` group, `whoami` alice's email,
/// `secret_*` the `ops` group; anything else follows `default`.
fn rules(default: &str) -> Value {
    json!({
        "tool_rules": [
            {"name": "echo", "scopes": ["profile"]},
            {"name": "count", "groups": ["admins"]},
            {"name": "whoami", "claims": {"email": "alice@example.com"}},
            {"name": "secret_*", "groups": ["ops"]},
            {"method": "resources/read", "name": "file:///private/*", "scopes": ["files"]},
        ],
        "tool_rules_default": default,
    })
}

/// A signed-in user's bearer header (alice: `admins`, scope `openid email`).
fn bearer(w: &mut World) -> String {
    let (_, t) = w.tokens();
    format!("Bearer {}", t["access_token"].as_str().unwrap())
}

fn call(w: &mut World, auth: &str, method: &str, params: Value, headers: &[(&str, &str)]) -> Final {
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}).to_string();
    post(w, auth, &body, headers)
}

fn post(w: &mut World, auth: &str, body: &str, headers: &[(&str, &str)]) -> Final {
    let mut hs: Vec<(&str, &str)> = alloc::vec![
        ("authorization", auth),
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
    ];
    hs.extend_from_slice(headers);
    w.send("POST", "/mcp", &hs, body)
}

fn tool(w: &mut World, auth: &str, name: &str) -> Final {
    call(
        w,
        auth,
        "tools/call",
        json!({"name": name, "arguments": {}}),
        &[],
    )
}

#[test]
fn a_missing_scope_is_403_naming_every_scope_needed_with_a_jsonrpc_error() {
    let mut w = World::new(rules("allow"));
    let auth = bearer(&mut w);
    let r = tool(&mut w, &auth, "echo").response();
    assert_eq!(r.status, 403);
    assert_eq!(r.reason, Some("tool_scope"));
    let www = r.header("www-authenticate").unwrap();
    assert!(www.starts_with("Bearer "), "{www}");
    assert!(www.contains("error=\"insufficient_scope\""), "{www}");
    assert!(
        www.contains("scope=\"openid profile\""),
        "required_scopes and the rule's: {www}"
    );
    assert!(
        www.contains(&format!(
            "resource_metadata=\"{BASE}/.well-known/oauth-protected-resource/mcp\""
        )),
        "{www}"
    );
    let body = body_json(&r);
    assert_eq!(body["jsonrpc"], "2.0");
    assert_eq!(body["id"], 7, "the request's id");
    assert_eq!(body["error"]["code"], -32000);
    assert_eq!(body["error"]["data"]["error"], "insufficient_scope");
    assert_eq!(body["error"]["data"]["scope"], "openid profile");
    assert_eq!(body["error"]["data"]["name"], "echo");
    assert!(r.header("access-control-expose-headers").is_some());
    // A tool no rule names passes (default allow), with the identity.
    let f = tool(&mut w, &auth, "other").forward();
    assert!(f.headers_to_set().any(|(k, _)| k == "x-mcpgate-sub"));
    assert!(f.list_filter.is_none());
}

#[test]
fn the_scope_granted_after_stepping_up_passes() {
    // The IdP grants what was asked: a token carrying `profile` passes the echo rule.
    let mut claims = vectors::cognito_access_claims();
    claims["scope"] = json!("openid email profile");
    let mut w = World::new({
        let mut c = rules("allow");
        c["accepted_client_ids"] = json!([vectors::APP_CLIENT]);
        c
    });
    let stepped = format!("Bearer {}", vectors::rs256(&claims));
    assert!(matches!(tool(&mut w, &stepped, "echo"), Final::Forward(_)));
    let plain = format!(
        "Bearer {}",
        vectors::rs256(&vectors::cognito_access_claims())
    );
    assert_eq!(tool(&mut w, &plain, "echo").response().status, 403);
}

#[test]
fn groups_and_claims_decide_and_the_first_matching_rule_wins() {
    let mut w = World::new(rules("allow"));
    let alice = bearer(&mut w);
    assert!(
        matches!(tool(&mut w, &alice, "count"), Final::Forward(_)),
        "alice is in admins"
    );
    // The email claim is carried in the proxy's token for the rule, and matches.
    assert!(matches!(tool(&mut w, &alice, "whoami"), Final::Forward(_)));
    let r = tool(&mut w, &alice, "secret_keys").response();
    assert_eq!((r.status, r.reason), (403, Some("tool_group")));
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .contains("scope=\"openid\""));

    let mut c = rules("allow");
    c["tool_rules"][2]["claims"]["email"] = json!(["bob@example.com", "carol@example.com"]);
    c["tool_rules"][1]["groups"] = json!(["ops"]);
    // An earlier rule that lets everyone call `count` wins over the group rule.
    c["tool_rules"]
        .as_array_mut()
        .unwrap()
        .insert(0, json!({"name": "count"}));
    let mut w = World::new(c);
    let alice = bearer(&mut w);
    assert!(matches!(tool(&mut w, &alice, "count"), Final::Forward(_)));
    let r = tool(&mut w, &alice, "whoami").response();
    assert_eq!((r.status, r.reason), (403, Some("tool_claim")));
}

#[test]
fn resource_rules_match_the_uri_and_other_methods_pass() {
    let mut w = World::new(rules("allow"));
    let auth = bearer(&mut w);
    let read =
        |w: &mut World, uri: &str| call(w, &auth, "resources/read", json!({"uri": uri}), &[]);
    assert_eq!(read(&mut w, "file:///private/keys").response().status, 403);
    assert!(matches!(
        read(&mut w, "file:///public/readme"),
        Final::Forward(_)
    ));
    // Names are matched exactly, case included (MCP names are case-sensitive).
    assert!(matches!(tool(&mut w, &auth, "Echo"), Final::Forward(_)));
}

#[test]
fn a_deny_default_refuses_unnamed_tools_but_not_the_session_plumbing() {
    let mut w = World::new(rules("deny"));
    let auth = bearer(&mut w);
    let r = tool(&mut w, &auth, "delete_everything").response();
    assert_eq!((r.status, r.reason), (403, Some("tool_default")));
    assert_eq!(body_json(&r)["id"], 7);
    let r = call(&mut w, &auth, "completion/complete", json!({}), &[]).response();
    assert_eq!(r.status, 403);
    for (method, params) in [
        (
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
        ),
        ("ping", json!({})),
        ("tools/list", json!({})),
        ("prompts/list", json!({})),
        ("resources/list", json!({})),
        ("resources/templates/list", json!({})),
        ("notifications/initialized", json!({})),
        ("notifications/cancelled", json!({"requestId": 1})),
    ] {
        assert!(
            matches!(call(&mut w, &auth, method, params, &[]), Final::Forward(_)),
            "{method}"
        );
    }
    // The client's answer to a server request has no method: nothing to authorize.
    let f = post(
        &mut w,
        &auth,
        r#"{"jsonrpc":"2.0","id":"s1","result":{}}"#,
        &[],
    );
    assert!(matches!(f, Final::Forward(_)));
    // Allowed by their rules.
    assert!(matches!(tool(&mut w, &auth, "count"), Final::Forward(_)));
}

#[test]
fn bodies_that_cannot_be_authorized_are_refused_in_json_rpc() {
    let mut w = World::new(
        json!({"tool_rules": [{"name": "echo", "scopes": ["profile"]}], "max_mcp_body_bytes": 2048}),
    );
    let auth = bearer(&mut w);
    let cases: [(&str, u16, i64, &str); 6] = [
        (
            r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}]"#,
            400,
            -32600,
            "mcp_batch",
        ),
        ("", 400, -32700, "mcp_invalid"),
        ("not json", 400, -32700, "mcp_invalid"),
        (
            r#"{"id":1,"method":"tools/call","params":{"name":"whoami","name":"echo"}}"#,
            400,
            -32600,
            "mcp_invalid",
        ),
        (
            r#"{"id":1,"method":"tools/call","method":"ping","params":{"name":"echo"}}"#,
            400,
            -32600,
            "mcp_invalid",
        ),
        (
            r#"{"id":1,"method":"tools/call","params":{"name":"echo"}}{"id":2}"#,
            400,
            -32700,
            "mcp_invalid",
        ),
    ];
    for (body, status, code, reason) in cases {
        let r = post(&mut w, &auth, body, &[]).response();
        assert_eq!((r.status, r.reason), (status, Some(reason)), "{body}");
        let v = body_json(&r);
        assert_eq!(v["jsonrpc"], "2.0");
        assert_eq!(v["error"]["code"], code, "{body}");
    }
    let big = format!(
        r#"{{"id":1,"method":"tools/call","params":{{"name":"x","arguments":{{"t":"{}"}}}}}}"#,
        "a".repeat(2100)
    );
    let r = post(&mut w, &auth, &big, &[]).response();
    assert_eq!((r.status, r.reason), (413, Some("mcp_body_too_large")));
    assert_eq!(body_json(&r)["error"]["code"], -32600);
    let r = call(
        &mut w,
        &auth,
        "ping",
        json!({}),
        &[("content-encoding", "gzip")],
    )
    .response();
    assert_eq!(r.status, 415);
    // Without a valid token the answer is still the 401 (the token is checked first).
    let r = post(&mut w, "Bearer nope", "[]", &[]).response();
    assert_eq!(r.status, 401);
}

#[test]
fn mcp_method_and_mcp_name_must_agree_with_the_body() {
    let mut w = World::new(rules("allow"));
    let auth = bearer(&mut w);
    let whoami = json!({"name": "whoami", "arguments": {}});
    // Headers that name an allowed tool while the body calls a refused one.
    for headers in [
        &[("mcp-method", "tools/call"), ("mcp-name", "other")][..],
        &[("mcp-method", "tools/list")][..],
        &[("mcp-name", "=?base64?b3RoZXI=?=")][..],
        &[("mcp-name", "whoami"), ("mcp-name", "whoami")][..],
    ] {
        let r = call(
            &mut w,
            &auth,
            "tools/call",
            json!({"name": "echo"}),
            headers,
        )
        .response();
        assert_eq!(
            (r.status, r.reason),
            (400, Some("mcp_header_mismatch")),
            "{headers:?}"
        );
        let v = body_json(&r);
        assert_eq!(v["error"]["code"], -32020);
        assert_eq!(v["id"], 7);
    }
    // Headers that agree (plain or base64) pass.
    for name in ["whoami", "=?base64?d2hvYW1p?="] {
        let headers = [("mcp-method", "tools/call"), ("mcp-name", name)];
        assert!(matches!(
            call(&mut w, &auth, "tools/call", whoami.clone(), &headers),
            Final::Forward(_)
        ));
    }
}

#[test]
fn without_rules_mcp_bodies_are_not_read() {
    let mut w = World::new(json!({}));
    let auth = bearer(&mut w);
    assert_eq!(w.gate.body_limit("POST", "/mcp"), None);
    assert!(matches!(
        post(&mut w, &auth, "[not even json", &[]),
        Final::Forward(_)
    ));
    let f = call(&mut w, &auth, "tools/list", json!({}), &[]).forward();
    assert!(f.list_filter.is_none());
}

#[test]
fn hosts_buffer_mcp_posts_only_when_rules_apply() {
    let w = World::new(rules("allow"));
    let g = &w.gate;
    for path in ["/mcp", "/mcp?x=1", "/MCP", "/mc%70", "/mcp/sub"] {
        assert_eq!(g.body_limit("POST", path), Some(1024 * 1024), "{path}");
    }
    for (method, path) in [
        ("GET", "/mcp"),
        ("DELETE", "/mcp"),
        ("POST", "/other"),
        ("POST", "/mcpx"),
    ] {
        assert_eq!(g.body_limit(method, path), None, "{method} {path}");
    }
    assert_eq!(
        g.body_limit("POST", "/token"),
        Some(65536),
        "OAuth POSTs as before"
    );
    let r = g.body_too_large("POST", "/mcp");
    assert_eq!(r.status, 413);
    assert_eq!(body_json(&r)["error"]["code"], -32600);
    assert_eq!(
        body_json(&g.body_too_large("POST", "/token"))["error"],
        "invalid_request"
    );
}

#[test]
fn a_forwarded_tools_list_carries_the_callers_filter() {
    let mut c = rules("deny");
    c["filter_tools_list"] = json!(true);
    let mut w = World::new(c);
    let auth = bearer(&mut w);
    let f = call(
        &mut w,
        &auth,
        "tools/list",
        json!({}),
        &[("accept-encoding", "gzip")],
    )
    .forward();
    let filter = f.list_filter.expect("a filter");
    assert!(
        f.remove_headers.iter().any(|h| h == "accept-encoding"),
        "answers must be readable"
    );
    // alice: admins, no profile scope, alice's email.
    assert!(filter.allows("count"));
    assert!(filter.allows("whoami"));
    assert!(!filter.allows("echo"), "needs profile");
    assert!(!filter.allows("secret_x"), "needs ops");
    assert!(!filter.allows("unnamed"), "the deny default");
    let answer = json!({"jsonrpc": "2.0", "id": 7, "result": {"tools": [
        {"name": "echo"}, {"name": "count"}, {"name": "whoami"}, {"name": "unnamed"}
    ]}});
    let out: Value = serde_json::from_slice(&filter.json(answer.to_string().as_bytes())).unwrap();
    let names: Vec<&str> = out["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["count", "whoami"]);
    // A notification has no answer to filter.
    let body = r#"{"jsonrpc":"2.0","method":"tools/list"}"#;
    assert!(post(&mut w, &auth, body, &[])
        .forward()
        .list_filter
        .is_none());
}

#[test]
fn refusals_carry_the_cors_headers_of_the_guard() {
    let mut c = rules("allow");
    c["cors_origins"] = json!(["http://localhost:6274"]);
    let mut w = World::new(c);
    let auth = bearer(&mut w);
    let r = call(
        &mut w,
        &auth,
        "tools/call",
        json!({"name": "echo"}),
        &[("origin", "http://localhost:6274")],
    )
    .response();
    assert_eq!(r.status, 403);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://localhost:6274")
    );
    assert_eq!(r.header("vary"), Some("Origin"));
    let r = call(
        &mut w,
        &auth,
        "tools/call",
        json!({"name": "echo"}),
        &[("mcp-method", "ping"), ("origin", "http://localhost:6274")],
    )
    .response();
    assert_eq!(r.status, 400);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://localhost:6274")
    );
}

#[test]
fn protected_resource_metadata_lists_the_scopes_to_step_up_to() {
    let mut w = World::new(rules("allow"));
    let r = w
        .get("/.well-known/oauth-protected-resource/mcp")
        .response();
    assert_eq!(
        body_json(&r)["scopes_supported"],
        json!(["openid", "profile", "files"])
    );
}

#[test]
fn the_message_survives_a_pause_for_the_idps_keys() {
    let mut c = rules("allow");
    c["accepted_client_ids"] = json!([vectors::APP_CLIENT]);
    let w = World::new(c);
    let token = format!(
        "Bearer {}",
        vectors::rs256(&vectors::cognito_access_claims())
    );
    let body =
        json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "echo"}})
            .to_string();
    let headers = [("authorization", token.as_str())];
    let req = Request {
        method: "POST",
        path: "/mcp",
        headers: &headers,
        body: body.as_bytes(),
        client_address: None,
    };
    let mut rng = crate::testutil::SeqRandom(1);
    let mut env = Env {
        now: NOW,
        random: &mut rng,
        upstream_keys: None,
        store: false,
        native_rsa: None,
        cache: None,
    };
    let Outcome::NeedKeys { paused } = w.gate.handle(&req, &mut env) else {
        panic!("expected a pause for the keys");
    };
    let keys = KeySet::from_json(vectors::test_jwks().as_bytes()).unwrap();
    let mut env = Env {
        now: NOW,
        random: &mut rng,
        upstream_keys: Some(&keys),
        store: false,
        native_rsa: None,
        cache: None,
    };
    let Outcome::Respond(r) = w.gate.resume(paused, Reply::Keys, &mut env) else {
        panic!("expected the refusal");
    };
    assert_eq!((r.status, r.reason), (403, Some("tool_scope")));
    assert_eq!(body_json(&r)["id"], 9);
    let _ = "x".to_string();
}
