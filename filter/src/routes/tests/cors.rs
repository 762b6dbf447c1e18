//! CORS on the guarded paths: preflights answered without a token (or passed to the origin),
//! browser-readable 401s, the headers the origin's responses get, and the Origin rule.

use alloc::format;
use alloc::string::ToString;
use serde_json::json;

use super::{body_json, Final, World};
use crate::routes::cors::EXPOSE_HEADERS;

const INSPECTOR: &str = "http://localhost:6274";

fn preflight(w: &mut World, path: &str, origin: &str) -> Final {
    w.send(
        "OPTIONS",
        path,
        &[
            ("origin", origin),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "authorization,content-type,mcp-protocol-version,mcp-session-id",
            ),
        ],
        "",
    )
}

#[test]
fn preflights_are_answered_without_a_token() {
    let mut w = World::new(json!({}));
    for path in ["/mcp", "/mcp/sub", "/other"] {
        let r = preflight(&mut w, path, INSPECTOR).response();
        assert_eq!(r.status, 204, "{path}");
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
        assert_eq!(
            r.header("access-control-allow-methods"),
            Some("GET, POST, DELETE")
        );
        let allowed = r.header("access-control-allow-headers").unwrap();
        for h in [
            "authorization",
            "content-type",
            "mcp-session-id",
            "mcp-protocol-version",
            "last-event-id",
            "mcp-method",
            "mcp-name",
        ] {
            assert!(allowed.contains(h), "{h} in {allowed}");
        }
        assert!(r.header("access-control-allow-credentials").is_none());
        assert!(r.header("access-control-max-age").is_some());
    }
    // OPTIONS that is not a preflight (no Origin, or no requested method) is guarded.
    let r = w.send("OPTIONS", "/mcp", &[], "").response();
    assert_eq!(r.status, 401);
    let r = w
        .send("OPTIONS", "/mcp", &[("origin", INSPECTOR)], "")
        .response();
    assert_eq!(r.status, 401);
}

#[test]
fn the_401_is_readable_by_a_browser() {
    let mut w = World::new(json!({}));
    let r = w
        .send("POST", "/mcp", &[("origin", INSPECTOR)], "{}")
        .response();
    assert_eq!(r.status, 401);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let exposed = r.header("access-control-expose-headers").unwrap();
    assert_eq!(exposed, EXPOSE_HEADERS);
    for h in ["WWW-Authenticate", "Mcp-Session-Id", "Mcp-Protocol-Version"] {
        assert!(exposed.contains(h), "{h}");
    }
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .contains("resource_metadata"));
    assert_eq!(
        r.headers
            .iter()
            .filter(|(k, _)| k == "access-control-allow-origin")
            .count(),
        1
    );
}

#[test]
fn forwarded_responses_get_the_headers() {
    let mut w = World::new(json!({}));
    let (_, t) = w.tokens();
    let auth = format!("Bearer {}", t["access_token"].as_str().unwrap());
    let f = w
        .send(
            "POST",
            "/mcp",
            &[("origin", INSPECTOR), ("authorization", &auth)],
            "{}",
        )
        .forward();
    let get = |k: &str| {
        f.response_headers
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("access-control-allow-origin"), Some("*"));
    assert_eq!(get("access-control-expose-headers"), Some(EXPOSE_HEADERS));
    // Without an Origin the origin's response is left alone.
    let f = w
        .send("POST", "/mcp", &[("authorization", &auth)], "{}")
        .forward();
    assert!(f.response_headers.is_empty());
}

#[test]
fn an_origin_list_reflects_allowed_origins_and_refuses_others() {
    let mut w = World::new(json!({"cors_origins": [INSPECTOR, "https://app.example.com"]}));
    let r = preflight(&mut w, "/mcp", INSPECTOR).response();
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), Some(INSPECTOR));
    assert!(r.header("vary").unwrap().contains("Origin"));
    let r = w
        .send("GET", "/mcp", &[("origin", "https://app.example.com")], "")
        .response();
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(r.header("vary"), Some("Origin"));
    // The proxy's own origin is always allowed.
    let r = w
        .send("GET", "/mcp", &[("origin", "https://mcp.example.com")], "")
        .response();
    assert_eq!(r.status, 401);
    // Anything else: 403, preflight or not, token or not (DNS rebinding).
    let (_, t) = w.tokens();
    let auth = format!("Bearer {}", t["access_token"].as_str().unwrap());
    for r in [
        preflight(&mut w, "/mcp", "https://evil.example").response(),
        w.send(
            "POST",
            "/mcp",
            &[("origin", "https://evil.example"), ("authorization", &auth)],
            "{}",
        )
        .response(),
        w.send("GET", "/mcp", &[("origin", "null")], "").response(),
        w.send(
            "GET",
            "/mcp",
            &[("origin", INSPECTOR), ("origin", INSPECTOR)],
            "",
        )
        .response(),
    ] {
        assert_eq!(r.status, 403);
        assert!(r.header("access-control-allow-origin").is_none());
        let body = body_json(&r);
        assert_eq!(body["jsonrpc"], "2.0");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Origin"));
    }
    // OAuth endpoints and metadata stay open to every origin.
    let r = w
        .send(
            "GET",
            "/.well-known/oauth-protected-resource/mcp",
            &[("origin", "https://evil.example")],
            "",
        )
        .response();
    assert_eq!(r.status, 200);
}

#[test]
fn cors_origin_mode_passes_preflights_to_the_origin() {
    let mut w = World::new(json!({"cors": "origin"}));
    let f = preflight(&mut w, "/mcp", INSPECTOR).forward();
    assert!(f.response_headers.is_empty());
    assert!(
        f.headers_to_set().next().is_none(),
        "no identity on an unauthenticated preflight"
    );
    // Its own 401 is still readable; the origin's responses are left to the origin.
    let r = w
        .send("POST", "/mcp", &[("origin", INSPECTOR)], "{}")
        .response();
    assert_eq!(r.status, 401);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let (_, t) = w.tokens();
    let auth = format!("Bearer {}", t["access_token"].as_str().unwrap());
    let f = w
        .send(
            "POST",
            "/mcp",
            &[("origin", INSPECTOR), ("authorization", &auth)],
            "{}",
        )
        .forward();
    assert!(f.response_headers.is_empty());
}

#[test]
fn bad_cors_settings_are_named() {
    let parse = |v: serde_json::Value| {
        crate::config::parse_json(super::config(v).to_string().as_bytes(), &[], &|_| None)
            .map(|p| p.config)
    };
    assert_eq!(parse(json!({"cors": "both"})).unwrap_err().key, "cors");
    assert_eq!(
        parse(json!({"cors_origins": ["*", "https://a.example"]}))
            .unwrap_err()
            .key,
        "cors_origins"
    );
    assert_eq!(
        parse(json!({"cors_origins": ["https://a.example/path"]}))
            .unwrap_err()
            .key,
        "cors_origins[0]"
    );
    assert!(parse(json!({"cors_origins": ["https://a.example/"]})).is_ok());
}

#[test]
fn cors_preflight_and_exposed_challenge() {
    let mut w = World::new(json!({}));
    for path in [
        "/token",
        "/register",
        "/revoke",
        "/.well-known/oauth-authorization-server",
    ] {
        let r = w.send("OPTIONS", path, &[], "").response();
        assert_eq!(r.status, 204, "{path}");
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    }
    let r = w.get("/mcp").response();
    assert_eq!(
        r.header("access-control-expose-headers"),
        Some("WWW-Authenticate")
    );
}
