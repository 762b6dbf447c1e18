//! Response builders in each protocol's own format: OAuth error JSON (RFC 6749 §5.2),
//! `WWW-Authenticate` challenges (RFC 6750 §3), redirects, and hardened HTML pages
//! ([`page`]).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use crate::http::Response;

mod page;
pub use page::{document, error_page, error_page_with, escape, form_page, html, Next};

fn h(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

/// Adds a member to a JSON object built by this crate (a no-op on anything else).
pub fn insert(doc: &mut serde_json::Value, key: &str, value: serde_json::Value) {
    if let Some(o) = doc.as_object_mut() {
        o.insert(key.to_string(), value);
    }
}

pub fn json(status: u16, value: &serde_json::Value) -> Response {
    Response {
        status,
        headers: vec![
            h("content-type", "application/json"),
            h("cache-control", "no-store"),
            h("pragma", "no-cache"),
        ],
        body: serde_json::to_vec(value).unwrap_or_default(),
        reason: None,
    }
}

/// 503 `temporarily_unavailable` with `Retry-After: 5`: the same request may be repeated.
pub fn unavailable(description: &str) -> Response {
    let mut r = oauth_error(503, "temporarily_unavailable", description);
    r.headers.push(h("retry-after", "5"));
    r
}

/// An OAuth error response. `reason` is the metrics label.
pub fn oauth_error(status: u16, error: &'static str, description: &str) -> Response {
    let mut r = json(
        status,
        &serde_json::json!({ "error": error, "error_description": description }),
    );
    r.reason = Some(error);
    r
}

pub fn redirect(location: &str) -> Response {
    Response {
        status: 302,
        headers: vec![h("location", location), h("cache-control", "no-store")],
        body: Vec::new(),
        reason: None,
    }
}

/// Quotes a value for an auth-param (RFC 9110 §11.2): backslash-escapes `"` and `\`.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        if !c.is_control() {
            out.push(c);
        }
    }
    out.push('"');
    out
}

/// A Bearer challenge (RFC 6750 §3, RFC 9728 §5.1) with a JSON body in the same terms.
pub fn bearer_challenge(
    status: u16,
    error: Option<&'static str>,
    description: Option<&str>,
    resource_metadata: &str,
    scope: &str,
    reason: &'static str,
) -> Response {
    let mut params = vec![format!("resource_metadata={}", quoted(resource_metadata))];
    if !scope.is_empty() {
        params.push(format!("scope={}", quoted(scope)));
    }
    if let Some(e) = error {
        params.push(format!("error={}", quoted(e)));
    }
    if let Some(d) = description {
        params.push(format!("error_description={}", quoted(d)));
    }
    let challenge = format!("Bearer {}", params.join(", "));
    let body = match error {
        Some(e) => {
            serde_json::json!({ "error": e, "error_description": description.unwrap_or("") })
        }
        None => {
            serde_json::json!({ "error": "unauthorized", "error_description": "bearer token required" })
        }
    };
    let mut r = json(status, &body);
    r.headers.push(h("www-authenticate", &challenge));
    r.reason = Some(reason);
    with_cors(r)
}

/// Lets browser-based clients read the answer, including the challenge header.
pub fn with_cors(mut r: Response) -> Response {
    r.headers.push(h("access-control-allow-origin", "*"));
    r.headers
        .push(h("access-control-expose-headers", "WWW-Authenticate"));
    r
}

/// Answers a CORS preflight for the public OAuth endpoints.
pub fn preflight(methods: &str) -> Response {
    Response {
        status: 204,
        headers: vec![
            h("access-control-allow-origin", "*"),
            h("access-control-allow-methods", methods),
            h(
                "access-control-allow-headers",
                "authorization, content-type, mcp-protocol-version",
            ),
            h("access-control-max-age", "86400"),
        ],
        body: Vec::new(),
        reason: None,
    }
}

pub fn set_cookie(r: &mut Response, cookie: String) {
    r.headers.push(("set-cookie".to_string(), cookie));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quoted("a\"b\\c\r\n"), "\"a\\\"b\\\\c\"");
    }

    #[test]
    fn challenge_shape() {
        let r = bearer_challenge(
            401,
            Some("invalid_token"),
            Some("token expired"),
            "https://x/.well-known/oauth-protected-resource/mcp",
            "openid",
            "expired",
        );
        assert_eq!(
            r.header("www-authenticate"),
            Some("Bearer resource_metadata=\"https://x/.well-known/oauth-protected-resource/mcp\", scope=\"openid\", error=\"invalid_token\", error_description=\"token expired\"")
        );
        assert_eq!(
            r.header("access-control-expose-headers"),
            Some("WWW-Authenticate")
        );
    }
}
