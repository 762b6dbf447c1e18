//! What the guard protects: every path needs a token unless it is one of the proxy's routes
//! or public; decisions are taken on the canonical path, which is what gets forwarded.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::json;

use super::{assert_oauth_error, body_json, config, Final, World};
use crate::config::parse_json;
use crate::gate::Gate;

/// `Bearer <a valid access token of the proxy>` for `w`.
fn bearer(w: &mut World) -> String {
    let (_, t) = w.tokens();
    format!("Bearer {}", t["access_token"].as_str().unwrap())
}

fn status(w: &mut World, path: &str, auth: Option<&str>) -> u16 {
    let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
    match w.send("GET", path, &headers, "") {
        Final::Respond(r) => r.status,
        Final::Forward(_) => 200,
    }
}

/// Every spelling of `path` with one or all characters percent-encoded, in both hex cases.
fn encodings(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let chars: Vec<char> = path.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if *c == '/' {
            continue;
        }
        for upper in [true, false] {
            let enc = if upper {
                format!("%{:02X}", *c as u32)
            } else {
                format!("%{:02x}", *c as u32)
            };
            let mut s: String = chars[..i].iter().collect();
            s.push_str(&enc);
            s.extend(&chars[i + 1..]);
            out.push(s);
        }
    }
    let all: String = chars
        .iter()
        .map(|c| {
            if *c == '/' {
                "/".to_string()
            } else {
                format!("%{:02X}", *c as u32)
            }
        })
        .collect();
    out.push(all);
    out
}

#[test]
fn every_path_needs_a_token_by_default() {
    let mut w = World::new(json!({}));
    for p in [
        "/",
        "/health",
        "/healthz",
        "/favicon.ico",
        "/api/x",
        "/.well-known/other",
    ] {
        let r = w.get(p).response();
        assert_eq!(r.status, 401, "{p}");
        let www = r.header("www-authenticate").unwrap();
        assert!(www.contains("resource_metadata="), "{p}: {www}");
        assert_eq!(r.reason, Some("missing_token"));
    }
    let auth = bearer(&mut w);
    let f = w
        .send(
            "GET",
            "/health",
            &[("authorization", &auth), ("x-mcpgate-sub", "admin")],
            "",
        )
        .forward();
    assert!(f.remove_headers.iter().any(|h| h == "authorization"));
    assert!(f.remove_headers.iter().any(|h| h == "x-mcpgate-sub"));
    assert!(f.headers_to_set().any(|(k, _)| k == "x-mcpgate-sub"));
    assert_eq!(f.path, None, "a canonical path is forwarded as received");
}

#[test]
fn every_spelling_of_the_mcp_path_is_guarded_and_forwarded_canonical() {
    let mut w = World::new(json!({}));
    let auth = bearer(&mut w);
    let mut spellings = encodings("/mcp");
    spellings.extend(["/MCP", "/Mcp", "/mCp/", "/MCP/x"].map(String::from));
    for p in &spellings {
        assert_eq!(status(&mut w, p, None), 401, "{p} without a token");
    }
    for p in encodings("/mcp") {
        let f = w
            .send(
                "POST",
                &format!("{p}?a=%2F"),
                &[("authorization", &auth)],
                "{}",
            )
            .forward();
        assert_eq!(f.path.as_deref(), Some("/mcp?a=%2F"), "{p}");
        assert!(f.headers_to_set().any(|(k, _)| k == "x-mcpgate-sub"));
    }
    for p in encodings("/mcp/tools") {
        let f = w.send("GET", &p, &[("authorization", &auth)], "").forward();
        assert_eq!(f.path.as_deref(), Some("/mcp/tools"), "{p}");
    }
    // Non-ASCII stays encoded, with canonical (upper-case) hex.
    let f = w
        .send("GET", "/caf%c3%a9", &[("authorization", &auth)], "")
        .forward();
    assert_eq!(f.path.as_deref(), Some("/caf%C3%A9"));
}

#[test]
fn ambiguous_spellings_are_refused_with_400() {
    let mut w = World::new(json!({}));
    let auth = bearer(&mut w);
    let cases: &[(&str, &str)] = &[
        ("/mcp;x=1", "path parameters (;)"),
        ("/mcp;jsessionid=1/x", "path parameters (;)"),
        (
            "/mc%2570",
            "only letters, digits and -._~ may be percent-encoded",
        ),
        (
            "/mcp%2Fx",
            "only letters, digits and -._~ may be percent-encoded",
        ),
        (
            "/%2fmcp",
            "only letters, digits and -._~ may be percent-encoded",
        ),
        (
            "/mcp%00",
            "only letters, digits and -._~ may be percent-encoded",
        ),
        (
            "/mcp%20",
            "only letters, digits and -._~ may be percent-encoded",
        ),
        (
            "/mcp%09",
            "only letters, digits and -._~ may be percent-encoded",
        ),
        (
            "/mcp%3b",
            "only letters, digits and -._~ may be percent-encoded",
        ),
        ("/%C0%AE%C0%AE/mcp", "not valid UTF-8"),
        ("/mcp%C0%AF", "not valid UTF-8"),
        ("/mcp\\x", "backslashes"),
        ("/mcp/.", "dot segment"),
        ("/mcp/..", "dot segment"),
        ("/mcp/../register", "dot segment"),
        ("/x/%2e%2e/mcp", "dot segment"),
        ("/mcp.", "dot segment"),
        ("//mcp", "empty segment"),
        ("/mcp%", "malformed percent-encoding"),
        ("/mcp x", "not allowed in a path"),
    ];
    for (p, why) in cases {
        for auth in [None, Some(auth.as_str())] {
            let headers: Vec<(&str, &str)> =
                auth.map(|a| ("authorization", a)).into_iter().collect();
            let r = w.send("POST", p, &headers, "{}").response();
            assert_oauth_error(&r, 400, "invalid_request");
            let desc = body_json(&r)["error_description"]
                .as_str()
                .unwrap()
                .to_string();
            assert!(desc.contains(why), "{p}: {desc}");
            assert_eq!(r.reason, Some("ambiguous_path"));
        }
    }
}

#[test]
fn public_paths_match_exactly_and_never_open_more() {
    let mut w = World::new(json!({"public_paths": ["/healthz", "/static/*"]}));
    let f = w
        .send("GET", "/healthz", &[("x-mcpgate-sub", "admin")], "")
        .forward();
    assert!(f.headers_to_set().next().is_none());
    assert_eq!(*f.remove_headers, ["x-mcpgate-sub"]);
    assert_eq!(f.path, None);
    // An encoded letter is the same path to the origin: open, forwarded canonical.
    let f = w.send("GET", "/health%7A", &[], "").forward();
    assert_eq!(f.path.as_deref(), Some("/healthz"));
    assert!(matches!(
        w.send("GET", "/static/a.css", &[], ""),
        Final::Forward(_)
    ));
    assert!(matches!(
        w.send("GET", "/static/", &[], ""),
        Final::Forward(_)
    ));
    for p in [
        "/HEALTHZ",
        "/healthz/x",
        "/healthz/",
        "/healthzz",
        "/static",
        "/Static/a.css",
        "/",
    ] {
        assert_eq!(status(&mut w, p, None), 401, "{p}");
    }
    for p in [
        "/healthz;x",
        "/healthz.",
        "/static/../mcp",
        "/static/%2e%2e/mcp",
    ] {
        assert_eq!(status(&mut w, p, None), 400, "{p}");
    }
}

#[test]
fn protect_mcp_path_leaves_other_paths_open_but_still_guards_every_spelling_of_it() {
    let mut w = World::new(json!({"protect": "mcp_path"}));
    assert!(matches!(
        w.send("GET", "/health", &[], ""),
        Final::Forward(_)
    ));
    assert!(matches!(w.send("GET", "/", &[], ""), Final::Forward(_)));
    for p in encodings("/mcp")
        .into_iter()
        .chain(["/MCP".to_string(), "/Mcp/x".to_string()])
    {
        assert_eq!(status(&mut w, &p, None), 401, "{p}");
    }
    assert_eq!(status(&mut w, "/mcp;x", None), 400);
}

#[test]
fn group_rules_match_whole_segments_of_the_canonical_path_ignoring_case() {
    let mut w =
        World::new(json!({"group_rules": [{"path_prefix": "/mcp/admin", "groups": ["ops"]}]}));
    let auth = bearer(&mut w);
    let mut refused = encodings("/mcp/admin");
    refused.extend(
        [
            "/MCP/admin",
            "/mcp/Admin",
            "/mcp/ADMIN/x",
            "/mcp/admin/",
            "/mcp/admin/x/y",
        ]
        .map(String::from),
    );
    for p in &refused {
        let r = w.send("GET", p, &[("authorization", &auth)], "").response();
        assert_eq!(r.status, 403, "{p}");
        assert_eq!(r.reason, Some("group"), "{p}");
    }
    for p in [
        "/mcp/admin;x=1",
        "/mcp/admin.",
        "/mcp/admin%2Fx",
        "/mcp/x/../admin",
    ] {
        assert_eq!(status(&mut w, p, Some(&auth)), 400, "{p}");
    }
    for p in ["/mcp", "/mcp/administrators", "/mcp/adminx", "/other/admin"] {
        assert_eq!(status(&mut w, p, Some(&auth)), 200, "{p}");
    }
}

#[test]
fn the_proxys_own_routes_are_found_on_the_canonical_path() {
    let w = World::new(json!({}));
    assert!(w.gate.body_limit("POST", "/regist%65r").is_some());
    assert!(w.gate.body_limit("POST", "/token?x=1").is_some());
    assert_eq!(w.gate.body_limit("GET", "/token"), None);
    assert_eq!(w.gate.body_limit("POST", "/register;x"), None);
    assert_eq!(w.gate.body_limit("POST", "/mcp"), None);
    let mut w = w;
    let r = w
        .send(
            "GET",
            "/.well-known/oauth-protected-resourc%65/mcp",
            &[],
            "",
        )
        .response();
    assert_eq!(r.status, 200);
    // Case is exact for the proxy's routes: `/TOKEN` is not /token, so it is guarded.
    assert_eq!(status(&mut w, "/TOKEN", None), 401);
}

#[test]
fn path_settings_are_validated() {
    let bad = [
        (json!({"public_paths": ["/mcp"]}), "public_paths[0]"),
        (json!({"public_paths": ["/MCP/x"]}), "public_paths[0]"),
        (json!({"public_paths": ["/*"]}), "public_paths[0]"),
        (
            json!({"public_paths": ["/ok", "/a%2Fb"]}),
            "public_paths[1]",
        ),
        (json!({"public_paths": ["/a;b"]}), "public_paths[0]"),
        (json!({"public_paths": ["/a/../mcp"]}), "public_paths[0]"),
        (json!({"public_paths": ["healthz"]}), "public_paths[0]"),
        (json!({"public_paths": ["/a*"]}), "public_paths[0]"),
        (json!({"protect": "nothing"}), "protect"),
        (
            json!({"group_rules": [{"path_prefix": "/mc%70", "groups": ["x"]}]}),
            "group_rules[0].path_prefix",
        ),
        (
            json!({"group_rules": [{"path_prefix": "/mcp;x", "groups": ["x"]}]}),
            "group_rules[0].path_prefix",
        ),
    ];
    for (extra, key) in bad {
        let err = parse_json(config(extra.clone()).to_string().as_bytes(), &[], &|_| None)
            .map(|_| ())
            .unwrap_err();
        assert_eq!(err.key, key, "{extra}");
    }
    let ok = parse_json(
        config(json!({"public_paths": ["/healthz", "/static/*", "/mcpx"], "protect": "all"}))
            .to_string()
            .as_bytes(),
        &[],
        &|_| None,
    )
    .unwrap();
    assert_eq!(ok.config.public_paths, ["/healthz", "/static/", "/mcpx"]);
    assert!(Gate::new(ok.config).is_ok());
}
