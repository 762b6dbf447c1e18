//! No open redirector (RFC 9700 §4.11.2): anyone can register a client (or publish a Client ID
//! Metadata Document) whose redirect URI is an attacker's page; `/authorize` errors for such a
//! client redirected there at once, from the proxy's own origin. Until the user has approved
//! the client, errors are the proxy's page with a link back (keeping RFC 9207 `iss` and
//! `state`); redirects only for approved clients (`consent: off`, or remembered).

use alloc::string::{String, ToString};
use serde_json::json;

use super::super::{query_of, World, BASE};
use super::IdpFn;
use crate::http::{HttpRequest, HttpResponse, Response};

const ATTACKER: &str = "https://attacker.example/x";

fn register(w: &mut World, redirect: &str) -> String {
    let body = json!({"redirect_uris": [redirect]}).to_string();
    let r = w
        .send(
            "POST",
            "/register",
            &[("content-type", "application/json")],
            &body,
        )
        .response();
    assert_eq!(r.status, 201);
    super::super::body_json(&r)["client_id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The `href` of the page's link, HTML-unescaped.
fn link(r: &Response) -> String {
    let html = String::from_utf8(r.body.clone()).unwrap();
    let anchor = html.find("<a ").expect("a link back");
    let start = anchor + html[anchor..].find("href=\"").expect("a link back") + 6;
    let end = start + html[start..].find('"').unwrap();
    html[start..end]
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A page (never a redirect) showing `error`, linking back with error, state and iss.
fn assert_link_page(r: &Response, error: &str, redirect: &str, state: &str) {
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.header("location").is_none(), "redirected");
    assert!(r.header("set-cookie").is_none());
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    let html = String::from_utf8_lossy(&r.body);
    assert!(
        html.contains(&alloc::format!("<code>{error}</code>")),
        "{html}"
    );
    let href = link(r);
    assert!(href.starts_with(redirect), "{href}");
    let q = query_of(&href);
    assert_eq!(q.get("error"), Some(error));
    assert_eq!(q.get("state"), Some(state));
    assert_eq!(q.get("iss"), Some(BASE));
    assert!(q.get("code").is_none());
}

#[test]
fn errors_for_an_unapproved_registered_client_stay_on_the_proxy() {
    let mut w = World::new(json!({}));
    let client = register(&mut w, ATTACKER);
    let q = |changes: &[(&str, &str)]| {
        let mut c = alloc::vec![("redirect_uri", ATTACKER)];
        c.extend_from_slice(changes);
        World::authorize_query(&client, &c)
    };
    for (changes, error) in [
        (
            alloc::vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (alloc::vec![("code_challenge", "")], "invalid_request"),
        (
            alloc::vec![("code_challenge_method", "plain")],
            "invalid_request",
        ),
        (
            alloc::vec![("resource", "https://evil.example/mcp")],
            "invalid_target",
        ),
        (alloc::vec![("scope", "a\"b")], "invalid_scope"),
    ] {
        let r = w.get(&q(&changes)).response();
        assert_link_page(&r, error, ATTACKER, "client-state");
    }
    // A state crafted to break out of the link or the headers stays inside the query.
    let evil = "x\"><script>alert(1)</script>\r\nLocation: https://evil.example/";
    let r = w
        .get(&q(&[("response_type", "token"), ("state", evil)]))
        .response();
    assert_link_page(&r, "unsupported_response_type", ATTACKER, evil);
    assert!(!String::from_utf8_lossy(&r.body).contains("<script>"));
}

#[test]
fn errors_for_an_unapproved_metadata_document_client_stay_on_the_proxy() {
    let url = "https://client.example/meta.json";
    let doc = json!({"client_id": url, "redirect_uris": [ATTACKER]}).to_string();
    let idp = move |_: &HttpRequest| HttpResponse {
        status: 200,
        headers: alloc::vec![],
        body: doc.clone().into_bytes(),
    };
    let idp: IdpFn = &idp;
    let mut w = World::new(json!({}));
    let target = World::authorize_query(
        url,
        &[("redirect_uri", ATTACKER), ("response_type", "token")],
    );
    let r = w
        .send_with(idp, "192.0.2.7", "GET", &target, &[], "")
        .response();
    assert_link_page(&r, "unsupported_response_type", ATTACKER, "client-state");
}

#[test]
fn approved_clients_still_get_error_redirects() {
    // consent: off — every client counts as approved.
    let mut w = World::new(json!({"consent": "off"}));
    let client = w.register();
    let r = w
        .get(&World::authorize_query(
            &client,
            &[("response_type", "token")],
        ))
        .response();
    assert_eq!(r.status, 302);
    let q = query_of(r.header("location").unwrap());
    assert_eq!(q.get("error"), Some("unsupported_response_type"));
    assert_eq!(q.get("iss"), Some(BASE));

    // consent: remember — once approved in this browser; others still get the page.
    let mut w = World::new(json!({"consent": "remember"}));
    let (client, _) = w.through_consent();
    let bad = World::authorize_query(&client, &[("response_type", "token")]);
    assert_eq!(w.get(&bad).response().status, 302);
    let other = w.register();
    let r = w
        .get(&World::authorize_query(
            &other,
            &[("response_type", "token")],
        ))
        .response();
    assert_link_page(
        &r,
        "unsupported_response_type",
        super::super::CLIENT_REDIRECT,
        "client-state",
    );
    // Another browser (no approvals cookie) gets the page for the approved client too.
    w.cookies.clear();
    assert_eq!(w.get(&bad).response().status, 400);
}
