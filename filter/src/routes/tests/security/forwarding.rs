//! What reaches the origin: on every forwarded request — guarded paths and public ones — the
//! client's identity headers (configured names and the whole `x-mcpgate-` namespace) are
//! removed, and the proxy's own cookies (`mcpgate-*`, `__Host-mcpgate-*`, set with `Path=/`)
//! are taken out of the `Cookie` header. The cookies reached the origin before.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use serde_json::json;

use super::super::World;
use crate::http::Forward;

const COOKIES: &str =
    "__Host-mcpgate-binding=b; app=1; mcpgate-csrf=c;session=s2 ; __Host-mcpgate-approvals=a";

/// The headers the origin receives when the request carried `headers` (removals, then sets).
fn at_origin(f: &Forward, headers: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = headers
        .iter()
        .filter(|(k, _)| !f.remove_headers.iter().any(|r| r.eq_ignore_ascii_case(k)))
        .map(|(k, v)| (k.to_ascii_lowercase(), String::from(*v)))
        .collect();
    for (k, v) in f.headers_to_set() {
        out.insert(k.clone(), v.clone());
    }
    out
}

fn forward(w: &mut World, path: &str, headers: &[(&str, &str)]) -> Forward {
    w.cookies.clear();
    w.send("GET", path, headers, "").forward()
}

#[test]
fn the_proxys_cookies_never_reach_the_origin() {
    let mut w = World::new(json!({"public_paths": ["/healthz"], "protect": "all"}));
    let (_, t) = w.tokens();
    let auth = format!("Bearer {}", t["access_token"].as_str().unwrap());
    for (path, with_token) in [("/mcp", true), ("/other", true), ("/healthz", false)] {
        let mut headers: Vec<(&str, &str)> = alloc::vec![("cookie", COOKIES)];
        if with_token {
            headers.push(("authorization", &auth));
        }
        let f = forward(&mut w, path, &headers);
        let origin = at_origin(&f, &headers);
        assert_eq!(
            origin.get("cookie").map(String::as_str),
            Some("app=1; session=s2"),
            "{path}"
        );
        // Only the proxy's cookies: no Cookie header at all.
        let headers = [
            ("cookie", "mcpgate-binding=b"),
            ("cookie", "__Host-mcpgate-csrf=c"),
        ];
        let f = forward(&mut w, "/healthz", &headers);
        assert!(!at_origin(&f, &headers).contains_key("cookie"));
    }
    // Cookie fields joined with `, ` by the platform.
    let headers = [("cookie", "app=1, mcpgate-csrf=c; b=2")];
    let f = forward(&mut w, "/healthz", &headers);
    assert_eq!(
        at_origin(&f, &headers).get("cookie").map(String::as_str),
        Some("app=1; b=2")
    );
    // No proxy cookie: the header is left alone (no host call at all).
    let f = forward(&mut w, "/healthz", &[("cookie", "app=1; mcpgatex=2")]);
    assert!(f.remove_headers.is_empty() && f.headers_to_set().next().is_none());
}

#[test]
fn identity_headers_are_stripped_on_every_route() {
    let mut w = World::new(json!({
        "public_paths": ["/healthz"],
        "identity_headers": {"sub": "x-user"},
    }));
    let (_, t) = w.tokens();
    let auth = format!("Bearer {}", t["access_token"].as_str().unwrap());
    let spoofs = [
        ("x-user", "admin"),
        ("x_user", "admin"),
        // The default name, no longer configured: still the proxy's namespace.
        ("x-mcpgate-sub", "admin"),
        ("X_MCPGATE_TENANT", "evil"),
        ("x-mcpgate-scope", "admin"),
    ];
    for (path, with_token) in [("/mcp", true), ("/healthz", false)] {
        let mut headers: Vec<(&str, &str)> = spoofs.to_vec();
        if with_token {
            headers.push(("authorization", &auth));
        }
        let f = forward(&mut w, path, &headers);
        let origin = at_origin(&f, &headers);
        for (name, _) in spoofs {
            let lower = name.to_ascii_lowercase();
            let got = origin.get(&lower).map(String::as_str);
            assert!(
                got != Some("admin") && got != Some("evil"),
                "{path}: {name}"
            );
        }
        if with_token {
            assert_eq!(
                origin.get("x-user").map(String::as_str),
                Some("6a1f1d2e-1111-2222-3333-444455556666")
            );
        } else {
            assert!(!origin.contains_key("x-user"), "{path}");
        }
    }
    // protect: mcp_path — the open paths too.
    let mut w = World::new(json!({"protect": "mcp_path"}));
    let headers = [
        ("x-mcpgate-sub", "admin"),
        ("cookie", "mcpgate-csrf=c; a=b"),
    ];
    let f = forward(&mut w, "/anything", &headers);
    let origin = at_origin(&f, &headers);
    assert!(!origin.contains_key("x-mcpgate-sub"));
    assert_eq!(origin.get("cookie").map(String::as_str), Some("a=b"));
}
