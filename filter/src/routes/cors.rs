//! CORS on the guarded paths (the MCP endpoint and everything else that needs a token), for
//! browser-based clients such as the MCP Inspector in direct mode.
//!
//! * A request whose `Origin` is not allowed (`cors_origins`) gets 403 with a JSON-RPC error,
//!   preflight or not (the MCP transport's Origin rule against DNS rebinding). The proxy's own
//!   origin is always allowed; with `cors_origins: ["*"]` (the default) every origin is.
//! * Preflights (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) never carry
//!   credentials, so they are answered here without a token (`cors: proxy`, the default), or
//!   passed to the origin without one (`cors: origin`, for origins that do CORS themselves).
//! * Every answer to an allowed origin carries `Access-Control-Allow-Origin` (`*`, or the
//!   origin itself with `Vary: Origin` when a list is configured; never credentials) and
//!   exposes `WWW-Authenticate`, `Mcp-Session-Id` and `Mcp-Protocol-Version`: the proxy's own
//!   401/403, and the origin's responses through [`Forward::response_headers`] (left alone
//!   with `cors: origin`).

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::{guard, spoofable};
use crate::config::{CorsMode, CorsOrigins};
use crate::gate::Gate;
use crate::http::{Env, Forward, Outcome, Request, Response};
use crate::respond;

/// Request headers a browser client may send to the MCP endpoint.
pub const ALLOW_HEADERS: &str = "authorization, content-type, accept, mcp-session-id, \
                                 mcp-protocol-version, last-event-id, mcp-method, mcp-name";
/// Methods of the streamable HTTP transport.
pub const ALLOW_METHODS: &str = "GET, POST, DELETE";
/// Response headers a browser client must be able to read.
pub const EXPOSE_HEADERS: &str = "WWW-Authenticate, Mcp-Session-Id, Mcp-Protocol-Version";
/// How long browsers may keep a preflight answer (Chromium caps it at 2 hours).
const MAX_AGE: &str = "7200";

/// What the request's `Origin` allows.
enum Verdict {
    /// No `Origin`: not a CORS request.
    NoOrigin,
    /// The `Access-Control-Allow-Origin` value for it.
    Allowed(String),
    Refused,
}

fn origin_of(url: &str) -> &str {
    let after = url.split_once("://").map_or(0, |(s, _)| s.len() + 3);
    match url.get(after..).and_then(|r| r.find('/')) {
        Some(i) => url.get(..after + i).unwrap_or(url),
        None => url,
    }
}

fn verdict(gate: &Gate, req: &Request) -> Verdict {
    let origin = match req.header("origin") {
        Ok(Some(o)) => o.trim(),
        Ok(None) => return Verdict::NoOrigin,
        Err(_) => return Verdict::Refused,
    };
    match &gate.cfg.cors_origins {
        CorsOrigins::Any => Verdict::Allowed("*".to_string()),
        CorsOrigins::List(list) => {
            let own = origin_of(&gate.cfg.base_url);
            if list.iter().any(|o| o == origin) || origin.eq_ignore_ascii_case(own) {
                Verdict::Allowed(origin.to_string())
            } else {
                Verdict::Refused
            }
        }
    }
}

fn h(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

/// The headers every answer to an allowed origin carries.
fn response_headers(allow_origin: &str) -> Vec<(String, String)> {
    let mut out = alloc::vec![
        h("access-control-allow-origin", allow_origin),
        h("access-control-expose-headers", EXPOSE_HEADERS),
    ];
    if allow_origin != "*" {
        out.push(h("vary", "Origin"));
    }
    out
}

fn forbidden() -> Outcome {
    let mut r = respond::json(
        403,
        &serde_json::json!({
            "jsonrpc": "2.0",
            "id": null,
            "error": {"code": -32000, "message": "Forbidden: this Origin is not allowed"},
        }),
    );
    r.reason = Some("origin");
    Outcome::Respond(r)
}

fn preflight(allow_origin: &str) -> Outcome {
    Outcome::Respond(Response {
        status: 204,
        headers: alloc::vec![
            h("access-control-allow-origin", allow_origin),
            h("access-control-allow-methods", ALLOW_METHODS),
            h("access-control-allow-headers", ALLOW_HEADERS),
            h("access-control-max-age", MAX_AGE),
            h(
                "vary",
                "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
            ),
        ],
        body: Vec::new(),
        reason: None,
    })
}

/// Puts the CORS headers on an answer of the proxy's, replacing any it had; hands them to
/// a forward for the origin's response unless the origin does CORS itself.
fn finish(gate: &Gate, out: Outcome, headers: &[(String, String)]) -> Outcome {
    if headers.is_empty() {
        return out;
    }
    match out {
        Outcome::Respond(mut r) => {
            r.headers.retain(|(k, _)| {
                !k.starts_with("access-control-") && !k.eq_ignore_ascii_case("vary")
            });
            r.headers.extend(headers.iter().cloned());
            Outcome::Respond(r)
        }
        Outcome::Forward(mut f) => {
            if gate.cfg.cors == CorsMode::Origin {
                f.response_headers.clear();
            }
            Outcome::Forward(f)
        }
        other => other,
    }
}

/// A request to a guarded path: the Origin rule, preflights, then the guard.
pub(super) fn guarded(
    gate: &Gate,
    req: &Request,
    path: &str,
    rewrite: Option<String>,
    env: &mut Env,
) -> Outcome {
    let headers = match verdict(gate, req) {
        Verdict::NoOrigin => Vec::new(),
        Verdict::Refused => return forbidden(),
        Verdict::Allowed(allow) => {
            let is_preflight = req.method == "OPTIONS"
                && req
                    .header("access-control-request-method")
                    .ok()
                    .flatten()
                    .is_some();
            if is_preflight {
                return match gate.cfg.cors {
                    CorsMode::Proxy => preflight(&allow),
                    CorsMode::Origin => Outcome::Forward(Forward {
                        remove_headers: spoofable(gate, req.headers),
                        set_headers: Vec::new(),
                        path: rewrite,
                        response_headers: Vec::new(),
                        list_filter: None,
                    }),
                };
            }
            response_headers(&allow)
        }
    };
    let out = guard::handle(gate, req, path, rewrite, headers.clone(), env);
    finish(gate, out, &headers)
}

/// A guarded request that paused on a host call and resumed: the same headers again.
pub(super) fn resumed(gate: &Gate, headers: &[(String, String)], out: Outcome) -> Outcome {
    finish(gate, out, headers)
}
