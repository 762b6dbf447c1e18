//! Request routing: one module per route. [`handle`] picks the route; [`resume`] continues a
//! request paused on a host call.

mod authorize;
mod callback;
mod consent;
mod mcp;
mod metadata;
mod rate_limit;
mod records;
mod register;
mod revoke;
mod token;
mod upstream;

#[cfg(test)]
mod tests;

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::form::{FormError, Params};
use crate::gate::{Continuation, Gate};
use crate::http::{Env, Forward, Outcome, Reply, Request, Response};
use crate::respond;

/// A paused request's state, held by the host during a host call.
#[derive(Debug)]
pub enum Step {
    Authorize(authorize::Resume),
    Callback(callback::Resume),
    Token(token::Resume),
    Revoke(revoke::Resume),
    Mcp(mcp::Resume),
    RateLimit(rate_limit::Resume),
}

impl From<Step> for Continuation {
    fn from(s: Step) -> Self {
        Continuation(s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    Mcp,
    ProtectedResource,
    AuthorizationServer,
    Jwks,
    Register,
    Authorize,
    Consent,
    Callback,
    Token,
    Revoke,
    Other,
}

impl Route {
    fn methods(self) -> &'static str {
        match self {
            Self::ProtectedResource | Self::AuthorizationServer | Self::Jwks | Self::Callback => {
                "GET"
            }
            Self::Authorize => "GET, POST",
            Self::Register | Self::Consent | Self::Token | Self::Revoke => "POST",
            Self::Mcp | Self::Other => "",
        }
    }

    /// Routes browsers may call cross-origin (CORS).
    fn public(self) -> bool {
        matches!(
            self,
            Self::ProtectedResource
                | Self::AuthorizationServer
                | Self::Jwks
                | Self::Register
                | Self::Token
                | Self::Revoke
        )
    }
}

fn route(gate: &Gate, path: &str) -> Route {
    let p = &gate.paths;
    let mcp = p.mcp.as_str();
    let is_mcp = path.len() >= mcp.len()
        && path
            .get(..mcp.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(mcp))
        && matches!(path.as_bytes().get(mcp.len()), None | Some(b'/'));
    if is_mcp {
        Route::Mcp
    } else if p.prm.iter().any(|x| x == path) {
        Route::ProtectedResource
    } else if p.as_metadata.iter().any(|x| x == path) {
        Route::AuthorizationServer
    } else if path == p.jwks && gate.public_jwks().is_some() {
        Route::Jwks
    } else if path == p.register {
        Route::Register
    } else if path == p.authorize {
        Route::Authorize
    } else if path == p.consent {
        Route::Consent
    } else if path == p.callback {
        Route::Callback
    } else if path == p.token {
        Route::Token
    } else if path == p.revoke {
        Route::Revoke
    } else {
        Route::Other
    }
}

pub(crate) fn needs_body(gate: &Gate, method: &str, path: &str) -> bool {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    method == "POST"
        && matches!(
            route(gate, path),
            Route::Register | Route::Authorize | Route::Consent | Route::Token | Route::Revoke
        )
}

pub(crate) fn rate_limited(gate: &Gate, path: &str) -> bool {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    gate.cfg.rate_limit_per_address > 0
        && matches!(
            route(gate, path),
            Route::Register | Route::Authorize | Route::Token
        )
}

/// Paths that different components could read differently are refused outright.
fn ambiguous_path(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    !path.starts_with('/')
        || path.contains("//")
        || path.contains('\\')
        || lower.contains("%2f")
        || lower.contains("%5c")
        || lower.contains("%2e")
        || lower.contains("%00")
        || path.split('/').any(|seg| seg == "." || seg == "..")
}

/// More headers, or more header bytes, than the configuration allows (pseudo-headers, which
/// the host limits itself, are not counted).
fn headers_too_large(gate: &Gate, req: &Request) -> bool {
    let mut count = 0;
    let mut bytes = 0;
    for (name, value) in req.headers.iter().filter(|(n, _)| !n.starts_with(':')) {
        count += 1;
        bytes += name.len() + value.len();
    }
    count > gate.cfg.max_headers || bytes > gate.cfg.max_header_bytes
}

pub(crate) fn handle(gate: &Gate, req: &Request, env: &mut Env) -> Outcome {
    if headers_too_large(gate, req) {
        return respond_with(respond::oauth_error(
            431,
            "invalid_request",
            "request headers too large",
        ));
    }
    let path = req.path_only();
    if ambiguous_path(path) {
        return respond_with(respond::oauth_error(
            400,
            "invalid_request",
            "ambiguous request path",
        ));
    }
    let r = route(gate, path);
    if r == Route::Mcp {
        return mcp::handle(gate, req, env);
    }
    if r == Route::Other {
        return Outcome::Forward(Forward {
            remove_headers: spoofable(gate, req.headers),
            set_headers: Vec::new(),
        });
    }
    if req.method == "OPTIONS" && r.public() {
        return respond_with(respond::preflight(r.methods()));
    }
    if !r.methods().split(", ").any(|m| m == req.method) {
        let mut resp = respond::oauth_error(405, "invalid_request", "method not allowed");
        resp.headers
            .push(("allow".to_string(), r.methods().to_string()));
        return respond_with(resp);
    }
    if req.body.len() > gate.cfg.max_body_bytes {
        return respond_with(respond::oauth_error(
            413,
            "invalid_request",
            "request body too large",
        ));
    }
    if let Some(out) = rate_limit::check(gate, r, req, env) {
        return out;
    }
    dispatch(gate, r, req, env)
}

/// Runs the route's handler (after the checks and rate limits of [`handle`]).
fn dispatch(gate: &Gate, r: Route, req: &Request, env: &mut Env) -> Outcome {
    let out = match r {
        Route::ProtectedResource => respond_with(metadata::protected_resource(gate)),
        Route::AuthorizationServer => respond_with(metadata::authorization_server(gate)),
        Route::Jwks => respond_with(metadata::jwks(gate)),
        Route::Register => respond_with(register::handle(gate, req, env)),
        Route::Authorize => authorize::handle(gate, req, env),
        Route::Consent => consent::handle(gate, req, env),
        Route::Callback => callback::handle(gate, req, env),
        Route::Token => token::handle(gate, req, env),
        Route::Revoke => revoke::handle(gate, req, env),
        Route::Mcp | Route::Other => Outcome::Forward(Forward {
            remove_headers: spoofable(gate, req.headers),
            set_headers: Vec::new(),
        }),
    };
    if r.public() {
        with_cors(out)
    } else {
        out
    }
}

pub(crate) fn resume(gate: &Gate, step: Step, reply: Reply, env: &mut Env) -> Outcome {
    match step {
        Step::Authorize(k) => authorize::resume(gate, k, reply, env),
        Step::Callback(k) => callback::resume(gate, k, reply, env),
        Step::Token(k) => with_cors(token::resume(gate, k, reply, env)),
        Step::Revoke(k) => with_cors(revoke::resume(gate, k, reply, env)),
        Step::Mcp(k) => mcp::resume(gate, k, reply, env),
        Step::RateLimit(k) => rate_limit::resume(gate, k, reply, env),
    }
}

fn with_cors(out: Outcome) -> Outcome {
    match out {
        Outcome::Respond(r) if r.header("access-control-allow-origin").is_none() => {
            Outcome::Respond(respond::with_cors(r))
        }
        other => other,
    }
}

pub(crate) fn respond_with(r: Response) -> Outcome {
    Outcome::Respond(r)
}

/// The identity headers the client sent: they are removed before anything is forwarded, so
/// only headers actually present cost the host a call.
pub(crate) fn spoofable(gate: &Gate, headers: &[(&str, &str)]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (name, _) in headers {
        // `x_mcpgate_sub` counts too: some backends read `_` as `-`.
        let spoofs = gate.strip_headers.iter().any(|h| {
            h.len() == name.len()
                && h.bytes().zip(name.bytes()).all(|(a, b)| {
                    let b = if b == b'_' {
                        b'-'
                    } else {
                        b.to_ascii_lowercase()
                    };
                    a == b
                })
        });
        let name = name.to_ascii_lowercase();
        if spoofs && !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// Parses a form body, insisting on the form content type.
fn form_body(req: &Request) -> Result<Params, Response> {
    let ct = req
        .header("content-type")
        .map_err(|_| respond::oauth_error(400, "invalid_request", "duplicate content-type header"))?
        .unwrap_or("");
    let essence = ct.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(respond::oauth_error(
            400,
            "invalid_request",
            "content type must be application/x-www-form-urlencoded",
        ));
    }
    let body = core::str::from_utf8(req.body)
        .map_err(|_| respond::oauth_error(400, "invalid_request", "body is not UTF-8"))?;
    Params::parse(body).map_err(form_error)
}

fn form_error(e: FormError) -> Response {
    match e {
        FormError::Duplicate(name) => respond::oauth_error(
            400,
            "invalid_request",
            &alloc::format!("parameter {name} given more than once"),
        ),
        FormError::BadEncoding => {
            respond::oauth_error(400, "invalid_request", "malformed form encoding")
        }
        FormError::TooMany => respond::oauth_error(400, "invalid_request", "too many parameters"),
    }
}

/// Reads one cookie from the `cookie` header(s).
fn cookie<'a>(req: &Request<'a>, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("cookie"))
        .flat_map(|(_, v)| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}
