//! The consent page and its answers: what the page says, its headers, and the way forward
//! from an out-of-date or expired form.

use alloc::string::{String, ToString};

use super::*;
use crate::records::{Transaction, TRANSACTION_SECONDS};
use crate::routes::consent::page_html;

fn text(r: &Response) -> String {
    String::from_utf8(r.body.clone()).unwrap()
}

fn unescape_attr(s: &str) -> String {
    s.replace("&amp;", "&").replace("&quot;", "\"")
}

/// The `href` of the first link styled as a button.
fn button_link(html: &str) -> String {
    let marker = "class=\"button primary\" href=\"";
    let start = html.find(marker).expect("a link") + marker.len();
    let end = start + html[start..].find('"').unwrap();
    unescape_attr(&html[start..end])
}

#[test]
fn consent_page_says_who_asks_what_it_gets_and_where_it_goes() {
    let mut w = World::new(json!({}));
    let client = w.register();
    let r = w
        .get(&World::authorize_query(&client, &[("scope", "email")]))
        .response();
    assert_eq!(r.status, 200);
    let html = text(&r);
    assert!(
        html.starts_with("<!doctype html><html lang=\"en\">"),
        "{html}"
    );
    assert!(html.contains("name=\"viewport\""));
    assert!(html.contains("<title>Allow Test &lt;Client&gt;?</title>"));
    assert!(html.contains("<h1>Allow Test &lt;Client&gt; to use your account?</h1>"));
    assert!(html.contains("has not been verified"), "self-declared name");
    assert!(
        html.contains("<code>https://mcp.example.com/mcp</code>"),
        "resource"
    );
    assert!(html.contains("<li><code>openid</code>: confirm who you are</li>"));
    assert!(html.contains("<li><code>email</code>: your email address</li>"));
    assert!(
        html.contains("<strong>127.0.0.1:33418</strong>"),
        "redirect host"
    );
    assert!(html.contains("class=\"warn\"") && html.contains("localhost address"));
    assert!(html.contains("value=\"approve\">Approve</button>"));
    assert!(html.contains("value=\"deny\">Deny</button>"));
    let csp = r.header("content-security-policy").unwrap();
    assert!(
        !csp.contains("form-action"),
        "blocks the redirects after the post: {csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"));
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
}

#[test]
fn consent_page_names_an_app_for_a_redirect_uri_that_is_not_a_web_address() {
    let w = World::new(json!({}));
    let txn = |redirect_uri: &str| Transaction {
        txn: "t".into(),
        client_id: "https://app.example/client.json".into(),
        client_name: Some("Desk <App>".into()),
        redirect_uri: redirect_uri.into(),
        code_challenge: CHALLENGE.into(),
        scope: "openid unknown:scope".into(),
        state: None,
        resource: "https://mcp.example.com/mcp".into(),
        upstream_verifier: "v".into(),
    };
    let html = page_html(
        &w.gate,
        &txn("com.example.desk:/oauth<x>"),
        "sealed",
        "csrf",
    );
    assert!(
        html.contains("opens <code>com.example.desk:</code> addresses"),
        "{html}"
    );
    assert!(html.contains("an app on your device, not a website"));
    assert!(!html.contains("localhost address"));
    assert!(html.contains("published at <code>https://app.example/client.json</code>"));
    assert!(html.contains("<li><code>unknown:scope</code></li>"));
    let mut web = txn("https://app.example/cb");
    let html = page_html(&w.gate, &web, "sealed", "csrf");
    assert!(html.contains("<strong>app.example</strong>"));
    assert!(
        !html.contains("class=\"warn\""),
        "no warning for a web address"
    );
    web.client_id = "registered".into();
    web.client_name = None;
    let html = page_html(&w.gate, &web, "sealed", "csrf");
    assert!(html.contains("<h1>Allow An unnamed MCP client to use your account?</h1>"));
    assert!(html.contains("gave no name"), "{html}");
}

#[test]
fn out_of_date_consent_form_links_to_the_same_request_again() {
    let mut w = World::new(json!({}));
    let client = w.register();
    let old = text(&w.get(&World::authorize_query(&client, &[])).response());
    // Another tab opens a consent page: the browser's CSRF cookie is now that page's.
    let _newer = w.get(&World::authorize_query(&client, &[])).response();
    let r = w
        .post_form(
            "/consent",
            &[
                ("txn", &hidden(&old, "txn")),
                ("csrf", &hidden(&old, "csrf")),
                ("action", "approve"),
            ],
        )
        .response();
    assert_eq!(r.status, 403);
    assert!(r.header("location").is_none(), "nothing approved");
    let page = text(&r);
    assert!(page.contains("<code>access_denied</code>") && page.contains("CSRF check"));
    assert!(page.contains("Nothing was approved"), "{page}");
    let again = button_link(&page);
    assert!(again.starts_with("/authorize?"), "{again}");
    let q = query_of(&again);
    assert_eq!(q.get("client_id"), Some(client.as_str()));
    assert_eq!(q.get("state"), Some("client-state"));
    assert_eq!(q.get("code_challenge"), Some(CHALLENGE));
    // The link shows a working consent page; the client's request completes.
    let fresh = w.get(&again).response();
    assert_eq!(fresh.status, 200);
    let fresh = text(&fresh);
    let idp = w
        .post_form(
            "/consent",
            &[
                ("txn", &hidden(&fresh, "txn")),
                ("csrf", &hidden(&fresh, "csrf")),
                ("action", "approve"),
            ],
        )
        .response();
    assert_eq!(idp.status, 302);
    let state = query_of(location(&idp)).get("state").unwrap().to_string();
    let cb = w
        .get(&format!(
            "/auth/callback?{}",
            form::build(&[("code", "idp-code"), ("state", &state)])
        ))
        .response();
    let q = query_of(location(&cb));
    assert_eq!(q.get("state"), Some("client-state"));
    assert!(q.get("code").is_some(), "{}", location(&cb));
}

#[test]
fn out_of_date_form_without_a_valid_transaction_sends_the_user_back_to_the_app() {
    let mut w = World::new(json!({}));
    let client = w.register();
    let _page = w.get(&World::authorize_query(&client, &[])).response();
    let r = w
        .post_form(
            "/consent",
            &[("txn", "forged"), ("csrf", "forged"), ("action", "approve")],
        )
        .response();
    assert_eq!(r.status, 403);
    let page = text(&r);
    assert!(
        !page.contains("<a "),
        "no link for a forged transaction: {page}"
    );
    assert!(page.contains("Go back to the application"));
    assert!(r
        .header("content-security-policy")
        .unwrap()
        .contains("form-action 'none'"));
}

#[test]
fn expired_consent_form_says_how_long_a_page_lasts() {
    let mut w = World::new(json!({}));
    let client = w.register();
    let page = text(&w.get(&World::authorize_query(&client, &[])).response());
    w.now += TRANSACTION_SECONDS + 1;
    let r = w
        .post_form(
            "/consent",
            &[
                ("txn", &hidden(&page, "txn")),
                ("csrf", &hidden(&page, "csrf")),
                ("action", "approve"),
            ],
        )
        .response();
    assert_eq!(r.status, 400);
    let page = text(&r);
    assert!(page.contains("the authorization expired"), "{page}");
    assert!(page.contains("valid for 10 minutes"), "{page}");
}
