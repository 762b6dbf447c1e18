//! Client ID Metadata Documents are never fetched from the proxy's own host nor from the
//! hosts in `cimd_denied_hosts` (the Worker adds its origin's): a CIMD `client_id` on the
//! Worker's own zone was a blind, unauthenticated GET straight to the origin, past the guard.

use alloc::string::{String, ToString};
use serde_json::json;

use super::super::World;
use crate::config::parse_json;
use crate::http::{HttpRequest, HttpResponse};

fn refused(w: &mut World, url: &str) -> String {
    let fetches = w.fetches.len();
    let r = w.get(&World::authorize_query(url, &[])).response();
    assert_eq!(r.status, 400, "{url}");
    assert!(r.header("location").is_none());
    assert_eq!(r.reason, Some("invalid_client"), "{url}");
    assert_eq!(w.fetches.len(), fetches, "{url} was fetched");
    String::from_utf8(r.body).unwrap()
}

#[test]
fn metadata_documents_on_the_proxys_or_the_origins_host_are_not_fetched() {
    let mut w = World::new(json!({
        "issuer_url": "https://issuer.example.com",
        "cimd_denied_hosts": ["origin.internal", "[fd00::1]", "10.0.0.7"],
    }));
    for url in [
        "https://mcp.example.com/meta.json",
        "https://MCP.Example.COM/meta.json",
        "https://mcp.example.com:8443/mcp",
        "https://issuer.example.com/client.json",
    ] {
        assert!(refused(&mut w, url).contains("own host"), "{url}");
    }
    for url in [
        "https://origin.internal/meta.json",
        "https://ORIGIN.internal:444/x",
        "https://[fd00::1]/meta.json",
        "https://10.0.0.7/meta.json",
    ] {
        // The origin's host (`cimd_denied_hosts`), or a private address (refused first).
        assert!(refused(&mut w, url).contains("not fetched from"), "{url}");
    }
    // Other hosts are fetched.
    let not_found = |_: &HttpRequest| HttpResponse {
        status: 404,
        ..HttpResponse::default()
    };
    let target = World::authorize_query("https://client.example/meta.json", &[]);
    let _ = w.send_with(&not_found, "192.0.2.7", "GET", &target, &[], "");
    assert_eq!(
        w.fetches.last().map(|f| f.url.as_str()),
        Some("https://client.example/meta.json")
    );
}

#[test]
fn cimd_denied_hosts_must_be_host_names() {
    for bad in [
        "https://origin.internal",
        "origin.internal:443",
        "a/b",
        "a b",
    ] {
        let c = super::super::config(json!({"cimd_denied_hosts": [bad]}));
        let e = parse_json(c.to_string().as_bytes(), &[], &|_| None).unwrap_err();
        assert_eq!(e.key, "cimd_denied_hosts[0]", "{bad}");
    }
    let c = super::super::config(json!({"cimd_denied_hosts": ["Origin.Internal"]}));
    let cfg = parse_json(c.to_string().as_bytes(), &[], &|_| None)
        .unwrap()
        .config;
    assert_eq!(cfg.cimd_denied_hosts, ["origin.internal"]);
}
