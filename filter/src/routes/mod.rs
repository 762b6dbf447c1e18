//! Request routing: one module per route. [`handle`] picks the route; [`resume`] continues a
//! request paused on a host call.

mod authorize;
mod callback;
mod cimd;
mod client_credentials;
mod consent;
mod cors;
mod guard;
mod metadata;
mod origin_headers;
mod rate_limit;
mod register;
mod revoke;
mod token;
mod token_client;
pub(crate) mod tools;

#[cfg(test)]
mod tests;

use alloc::borrow::Cow;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::config::Protect;
use crate::form::{FormError, Params};
use crate::gate::{Gate, Paused};
use crate::http::{Env, Forward, Outcome, Reply, Request, Response};
use crate::respond;

/// A paused request: the route it paused in and that route's state (its `Paused`), held by
/// the host, opaque, as a [`Paused`] during a host call.
#[derive(Debug)]
pub enum PausedAt {
    Authorize(authorize::Paused),
    Callback(callback::Paused),
    Token(token::Paused),
    Revoke(revoke::Paused),
    Guard(guard::Paused),
    RateLimit(rate_limit::Paused),
    TokenClient(token_client::Paused),
    ClientCredentials(client_credentials::Paused),
    /// A guarded request waiting for the IdP to renew its token for the origin.
    OriginHeaders(origin_headers::Paused),
}

impl From<PausedAt> for Paused {
    fn from(at: PausedAt) -> Self {
        Paused(at)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    /// Needs a valid token: the MCP path, and every other path unless it is public.
    Guarded,
    /// Reaches the origin without a token: `public_paths`, or everything outside the MCP
    /// path with `protect: mcp_path`.
    Open,
    ProtectedResource,
    AuthorizationServer,
    Jwks,
    Register,
    Authorize,
    Consent,
    Callback,
    Token,
    Revoke,
}

impl Route {
    fn methods(self) -> &'static str {
        match self {
            Self::ProtectedResource | Self::AuthorizationServer | Self::Jwks | Self::Callback => {
                "GET"
            }
            Self::Authorize => "GET, POST",
            Self::Register | Self::Consent | Self::Token | Self::Revoke => "POST",
            Self::Guarded | Self::Open => "",
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

/// The route of a canonical path: the proxy's own routes match exactly; then the MCP path
/// (ignoring case, by whole segments); then the public paths; everything else is guarded
/// unless `protect` is `mcp_path`.
fn route(gate: &Gate, path: &str) -> Route {
    let p = &gate.paths;
    if p.prm.iter().any(|x| x == path) {
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
    } else if crate::path::matches_prefix(path, &p.mcp, true) {
        Route::Guarded
    } else if gate.cfg.protect == Protect::McpPath || public(gate, path) {
        Route::Open
    } else {
        Route::Guarded
    }
}

/// Whether a canonical path is listed in `public_paths` (case and segments exact).
fn public(gate: &Gate, path: &str) -> bool {
    gate.cfg.public_paths.iter().any(|p| {
        if p.ends_with('/') {
            crate::path::matches_prefix(path, p, false)
        } else {
            path == p
        }
    })
}

/// The canonical path of a raw request path (query included) and its route; `None` when the
/// path is refused.
fn route_of_raw<'p>(gate: &Gate, raw_path: &'p str) -> Option<(Cow<'p, str>, Route)> {
    let path = raw_path.split_once('?').map_or(raw_path, |(p, _)| p);
    let canonical = crate::path::canonicalize(path).ok()?;
    let r = route(gate, &canonical);
    Some((canonical, r))
}

pub(crate) fn body_limit(gate: &Gate, method: &str, raw_path: &str) -> Option<usize> {
    if method != "POST" {
        return None;
    }
    let (canonical, r) = route_of_raw(gate, raw_path)?;
    match r {
        Route::Register | Route::Authorize | Route::Consent | Route::Token | Route::Revoke => {
            Some(gate.cfg.max_body_bytes)
        }
        Route::Guarded if tools::applies(gate, method, &canonical) => {
            Some(gate.cfg.max_mcp_body_bytes)
        }
        _ => None,
    }
}

pub(crate) fn rate_limited(gate: &Gate, path: &str) -> bool {
    gate.cfg.rate_limit_per_address > 0
        && matches!(
            route_of_raw(gate, path).map(|(_, r)| r),
            Some(Route::Register | Route::Authorize | Route::Token)
        )
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
    let path = match crate::path::canonicalize(req.path_only()) {
        Ok(p) => p,
        Err(e) => {
            let mut r = respond::oauth_error(400, "invalid_request", e.description());
            r.reason = Some("ambiguous_path");
            return respond_with(r);
        }
    };
    // The origin gets exactly the path that was checked.
    let rewrite = match &path {
        Cow::Owned(p) => Some(match req.path.split_once('?') {
            Some((_, q)) => alloc::format!("{p}?{q}"),
            None => p.clone(),
        }),
        Cow::Borrowed(_) => None,
    };
    let r = route(gate, &path);
    match r {
        Route::Guarded => return cors::guarded(gate, req, &path, rewrite, env),
        Route::Open => return Outcome::Forward(forward_base(gate, req, rewrite)),
        _ => {}
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
        Route::Guarded | Route::Open => Outcome::Respond(respond::oauth_error(
            500,
            "server_error",
            "unexpected route",
        )),
    };
    if r.public() {
        with_cors(out)
    } else {
        out
    }
}

pub(crate) fn resume(gate: &Gate, at: PausedAt, reply: Reply, env: &mut Env) -> Outcome {
    match at {
        PausedAt::Authorize(paused) => authorize::resume(gate, paused, reply, env),
        PausedAt::Callback(paused) => callback::resume(gate, paused, reply, env),
        PausedAt::Token(paused) => with_cors(token::resume(gate, paused, reply, env)),
        PausedAt::Revoke(paused) => with_cors(revoke::resume(gate, paused, reply, env)),
        PausedAt::Guard(paused) => {
            let cors = paused.response_headers().to_vec();
            cors::resumed(gate, &cors, guard::resume(gate, paused, reply, env))
        }
        PausedAt::RateLimit(paused) => rate_limit::resume(gate, paused, reply, env),
        PausedAt::TokenClient(paused) => with_cors(token_client::resume(gate, paused, reply, env)),
        PausedAt::ClientCredentials(paused) => {
            with_cors(client_credentials::resume(gate, paused, reply, env))
        }
        PausedAt::OriginHeaders(paused) => {
            let cors = paused.response_headers().to_vec();
            cors::resumed(
                gate,
                &cors,
                origin_headers::resume(gate, paused, reply, env),
            )
        }
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

/// What every forwarded request loses, on every route (guarded or public): the identity
/// headers the client sent ([`spoofable`]) and the proxy's own cookies ([`proxy_cookies`]).
/// The guard adds `authorization` and the verified identity.
pub(crate) fn forward_base(gate: &Gate, req: &Request, path: Option<String>) -> Forward {
    let mut remove_headers = spoofable(gate, req.headers);
    let mut set_headers = Vec::new();
    if let Some(rest) = proxy_cookies(req.headers) {
        remove_headers.push(Cow::Borrowed("cookie"));
        if !rest.is_empty() {
            set_headers.push(("cookie".to_string(), rest));
        }
    }
    Forward {
        remove_headers: Cow::Owned(remove_headers),
        identity_headers: None,
        set_headers,
        path,
        response_headers: Vec::new(),
        list_filter: None,
    }
}

/// Lower-case `name` with `_` read as `-` equals the lower-case `header`.
fn same_header(header: &str, name: &str) -> bool {
    header.len() == name.len()
        && header.bytes().zip(name.bytes()).all(|(a, b)| {
            let b = if b == b'_' {
                b'-'
            } else {
                b.to_ascii_lowercase()
            };
            a == b
        })
}

/// The identity headers the client sent: the configured ones and anything in the proxy's
/// `x-mcpgate-` namespace (so renaming the identity headers leaves no default name open).
/// They are removed before anything is forwarded, so only headers actually present cost the
/// host a call. `x_mcpgate_sub` counts too: some backends read `_` as `-`.
pub(crate) fn spoofable(gate: &Gate, headers: &[(&str, &str)]) -> Vec<Cow<'static, str>> {
    const NAMESPACE: &str = "x-mcpgate-";
    let mut out: Vec<Cow<'static, str>> = Vec::new();
    for (name, _) in headers {
        let in_namespace = name
            .get(..NAMESPACE.len())
            .is_some_and(|p| same_header(NAMESPACE, p));
        if !in_namespace && !gate.strip_headers.iter().any(|h| same_header(h, name)) {
            continue;
        }
        if !out.iter().any(|o| o.eq_ignore_ascii_case(name)) {
            out.push(Cow::Owned(name.to_ascii_lowercase()));
        }
    }
    out
}

/// The request's cookies without the proxy's own (`mcpgate-*`, `__Host-mcpgate-*`: consent,
/// binding, approvals — `Path=/`, so browsers send them to the origin's paths too): `None`
/// when there were none of the proxy's, else the `cookie` header to forward instead (empty:
/// none left). Pairs are separated by `;`; a platform that joined several `Cookie` fields
/// with `, ` (the Fetch API's rule for repeated headers) is handled too.
fn proxy_cookies(headers: &[(&str, &str)]) -> Option<String> {
    fn ours(pair: &str) -> bool {
        let name = pair.split_once('=').map_or(pair, |(n, _)| n).trim();
        name.starts_with("mcpgate-") || name.starts_with("__Host-mcpgate-")
    }
    let mut found = false;
    let mut rest: Vec<String> = Vec::new();
    for (_, value) in headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("cookie"))
    {
        for pair in value.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            if !pair.split(',').any(ours) {
                rest.push(pair.to_string());
                continue;
            }
            found = true;
            let kept: Vec<&str> = pair
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty() && !ours(p))
                .collect();
            if !kept.is_empty() {
                rest.push(kept.join(", "));
            }
        }
    }
    found.then(|| rest.join("; "))
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
