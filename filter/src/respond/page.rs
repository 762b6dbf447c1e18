//! The proxy's HTML pages (the consent page, error pages): one document shell with an inline
//! stylesheet, and the headers that lock the pages down (no framing, no script, nothing loaded).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;

use crate::http::Response;

/// The stylesheet of every page. Allowed by its hash in the CSP, so an injected `<style>` or
/// `style=""` would not apply; [`STYLE_HASH`] must change with it (a unit test says so).
/// Colours meet WCAG AA contrast (body text 12.6:1, notes 7.6:1, button text 6.7:1).
const STYLE: &str = "\
*{box-sizing:border-box}\
body{margin:0;background:#f3f4f6;color:#1f2937;font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,\"Noto Sans\",sans-serif}\
main{max-width:34rem;margin:2.5rem auto;padding:1.75rem;background:#fff;border:1px solid #d1d5db;border-radius:12px}\
h1{font-size:1.5rem;line-height:1.25;margin:0 0 .75rem;overflow-wrap:anywhere}\
h2{font-size:.85rem;letter-spacing:.04em;text-transform:uppercase;color:#4b5563;margin:1.25rem 0 .25rem}\
p{margin:.25rem 0}\
ul{margin:.25rem 0;padding-left:1.25rem}\
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em;background:#f3f4f6;padding:0 .25em;border-radius:4px;overflow-wrap:anywhere}\
strong{overflow-wrap:anywhere}\
.note{color:#4b5563;font-size:.9rem}\
.warn{margin:.75rem 0;padding:.5rem .75rem;background:#fff7ed;border-left:4px solid #c2410c;color:#7c2d12}\
.actions{display:flex;flex-wrap:wrap;gap:.75rem;margin:1.5rem 0 .75rem}\
.button{font:inherit;font-weight:600;min-height:2.75rem;padding:.5rem 1.5rem;border:2px solid #1d4ed8;border-radius:8px;cursor:pointer;text-decoration:none;display:inline-flex;align-items:center;justify-content:center}\
.primary{background:#1d4ed8;color:#fff}\
.secondary{background:#fff;color:#1f2937;border-color:#6b7280}\
.button:focus-visible{outline:3px solid #111827;outline-offset:2px}\
a{color:#1d4ed8}\
@media (max-width:30rem){main{margin:0;border:0;border-radius:0;padding:1.25rem}h1{font-size:1.3rem}.actions .button{flex:1}}";

/// `sha256-` + base64 of SHA-256 over [`STYLE`].
const STYLE_HASH: &str = "'sha256-3qkpgVVvm59dtO4IRyMQ/cy+C6UxeJvJ4o9Doq289Hw='";

/// The policy of every page, before `form-action`:
/// * `default-src 'none'`: nothing is loaded and no script runs (no `script-src`);
/// * the stylesheet only by its hash; images only `data:` (the empty favicon below, so the
///   browser asks nobody for `/favicon.ico`);
/// * `frame-ancestors 'none'` (with `X-Frame-Options: DENY` for older browsers): no
///   clickjacking of the Approve button;
/// * `base-uri 'none'`: relative URLs cannot be re-rooted by an injected `<base>`.
fn base_policy() -> String {
    format!(
        "default-src 'none'; style-src {STYLE_HASH}; img-src data:; frame-ancestors 'none'; base-uri 'none'"
    )
}

/// What a page may submit forms to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forms {
    /// Pages without a form (error pages): `form-action 'none'`, so even injected markup could
    /// not post anything anywhere.
    None,
    /// The consent page: no `form-action` at all.
    ///
    /// Browsers check `form-action` against every URL the submission is redirected through
    /// (Chromium and WebKit do; CSP3 leaves it open), not only the form's `action`. Approving
    /// redirects to the IdP, which may send the browser on to a federated IdP, back to our
    /// callback and to the client's redirect URI, which may itself redirect again (claude.ai's
    /// https callback goes on to `claude://`); denying goes to the client's redirect URI and on.
    /// `form-action 'self'` therefore blocks every sign-in in Chromium, and no list of origins
    /// built from the transaction (ours, the IdP's, the redirect URI's) covers the redirects
    /// that happen past them. FastMCP dropped `form-action` from its consent page for the same
    /// reason. What `form-action` would add is a stop to markup injected into the page posting
    /// the form elsewhere; the page has no injection point (every client-supplied string is
    /// escaped), runs no script, cannot be framed, loads nothing, and its `action` is a fixed
    /// path under `base-uri 'none'`. The CSRF token it could leak is useless without the
    /// HttpOnly cookie it is paired with.
    Consent,
}

/// A page that may not be framed, runs no script and loads nothing.
pub fn html(status: u16, body: String) -> Response {
    page_response(status, body, Forms::None)
}

/// [`html`] for a page with a form (see [`Forms::Consent`]).
pub fn form_page(status: u16, body: String) -> Response {
    page_response(status, body, Forms::Consent)
}

fn page_response(status: u16, body: String, forms: Forms) -> Response {
    let csp = match forms {
        Forms::None => format!("{}; form-action 'none'", base_policy()),
        Forms::Consent => base_policy(),
    };
    let h = |k: &str, v: &str| (k.to_string(), v.to_string());
    Response {
        status,
        headers: vec![
            h("content-type", "text/html; charset=utf-8"),
            h("cache-control", "no-store"),
            h("x-frame-options", "DENY"),
            h("content-security-policy", &csp),
            h("referrer-policy", "no-referrer"),
            h("x-content-type-options", "nosniff"),
        ],
        body: body.into_bytes(),
        reason: None,
    }
}

/// A whole document: `title` (already escaped) and the content of `<main>`.
pub fn document(title: &str, main: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><link rel=\"icon\" href=\"data:,\"><style>{STYLE}</style></head>\
         <body><main>{main}</main></body></html>"
    )
}

/// A way forward offered on an error page: what to do, and optionally a link to do it.
#[derive(Clone, Copy, Debug)]
pub struct Next<'a> {
    pub advice: &'a str,
    /// `(href, label)`, both unescaped.
    pub link: Option<(&'a str, &'a str)>,
}

/// What an error page advises when the caller has nothing more specific.
fn default_advice(error: &str) -> &'static str {
    match error {
        "temporarily_unavailable" => {
            "Wait a moment, then go back to the application that sent you here and try again."
        }
        _ => {
            "Go back to the application that sent you here and connect again. If this keeps \
             happening, give the error code above to the application's developer or to the \
             administrator of this server."
        }
    }
}

/// A plain error page for errors that must not redirect (unknown client, bad redirect URI).
pub fn error_page(status: u16, error: &'static str, description: &str) -> Response {
    error_page_with(
        status,
        error,
        description,
        Next {
            advice: default_advice(error),
            link: None,
        },
    )
}

/// [`error_page`] with its own advice and link.
pub fn error_page_with(
    status: u16,
    error: &'static str,
    description: &str,
    next: Next<'_>,
) -> Response {
    let link = next
        .link
        .map(|(href, label)| {
            format!(
                "<p class=\"actions\"><a class=\"button primary\" href=\"{}\">{}</a></p>",
                escape(href),
                escape(label)
            )
        })
        .unwrap_or_default();
    let main = format!(
        "<h1>This sign-in cannot continue</h1>\
         <p><code>{}</code>: {}</p>\
         <h2>What you can do</h2><p>{}</p>{link}",
        escape(error),
        escape(description),
        escape(next.advice),
    );
    let mut r = html(status, document("Authorization error", &main));
    r.reason = Some(error);
    r
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn text(r: &Response) -> String {
        String::from_utf8(r.body.clone()).unwrap()
    }

    #[test]
    fn escaping() {
        assert_eq!(
            escape("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn style_hash_matches_the_stylesheet() {
        use base64ct::Encoding as _;
        let hash = base64ct::Base64::encode_string(&Sha256::digest(STYLE.as_bytes()));
        assert_eq!(STYLE_HASH, format!("'sha256-{hash}'"), "update STYLE_HASH");
    }

    #[test]
    fn pages_without_forms_may_post_nowhere_the_consent_page_is_not_restricted() {
        let plain = html(200, String::new());
        let csp = plain.header("content-security-policy").unwrap();
        for d in [
            "default-src 'none'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "img-src data:",
            "form-action 'none'",
        ] {
            assert!(csp.contains(d), "{d} in {csp}");
        }
        assert!(!csp.contains("unsafe-inline") && !csp.contains("script-src"));
        assert_eq!(plain.header("x-frame-options"), Some("DENY"));
        let consent = form_page(200, String::new());
        let csp = consent.header("content-security-policy").unwrap();
        assert!(!csp.contains("form-action"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"));
        assert_eq!(consent.header("x-frame-options"), Some("DENY"));
        assert_eq!(consent.header("cache-control"), Some("no-store"));
    }

    #[test]
    fn documents_are_accessible_shells() {
        let d = document("T", "<p>x</p>");
        assert!(d.starts_with("<!doctype html><html lang=\"en\">"));
        assert!(d.contains("name=\"viewport\" content=\"width=device-width, initial-scale=1\""));
        assert!(d.contains("<link rel=\"icon\" href=\"data:,\">"));
        assert!(d.contains("<main><p>x</p></main>"));
    }

    #[test]
    fn error_pages_show_the_error_and_a_way_forward() {
        let r = error_page(400, "invalid_client", "unknown <client>");
        let t = text(&r);
        assert_eq!(r.status, 400);
        assert_eq!(r.reason, Some("invalid_client"));
        assert!(
            t.contains("<code>invalid_client</code>: unknown &lt;client&gt;"),
            "{t}"
        );
        assert!(t.contains("Go back to the application"), "{t}");
        let r = error_page_with(
            403,
            "access_denied",
            "d",
            Next {
                advice: "a",
                link: Some(("/authorize?a=1&b=\"", "Again")),
            },
        );
        let t = text(&r);
        assert!(
            t.contains(
                "<a class=\"button primary\" href=\"/authorize?a=1&amp;b=&quot;\">Again</a>"
            ),
            "{t}"
        );
        assert!(r
            .header("content-security-policy")
            .unwrap()
            .contains("form-action 'none'"));
    }
}
