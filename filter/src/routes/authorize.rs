//! `GET|POST /authorize`: checks the client (registered or a Client ID Metadata Document),
//! the redirect URI, PKCE and the resource, then shows consent or goes to the IdP.
//!
//! Until the client and redirect URI are known good, errors are a 400 page, never a
//! redirect. Afterwards they go back to the client with `error`, `state` and `iss` only once
//! the user approved the client (`consent: off`, or remembered): anyone can register a client
//! (or publish a metadata document) with an attacker's redirect URI, and an automatic error
//! redirect would make the proxy an open redirector (RFC 9700 §4.11.2). Before that, the error
//! is shown on the proxy's page with a link back the user may follow.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::{consent, cookie, form_body, PausedAt};
use crate::config::ConsentMode;
use crate::form::{self, Params};
use crate::gate::Gate;
use crate::http::{Env, Outcome, Reply, Request, Response};
use crate::records::{ClientRecord, Transaction};
use crate::respond::{error_page, redirect};
use crate::seal::{self, Kind};
use crate::{pkce, redirect_uri};

/// Longest `state` accepted from a client.
const MAX_STATE: usize = 1024;

/// The authorization request's parameters.
#[derive(Clone, Debug, Default)]
pub struct AuthParams {
    response_type: Option<String>,
    client_id: String,
    redirect_uri: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    state: Option<String>,
    scope: Option<String>,
    resource: Option<String>,
}

impl AuthParams {
    fn from(p: &Params) -> Option<Self> {
        let s = |k: &str| p.get(k).map(String::from);
        Some(Self {
            response_type: s("response_type"),
            client_id: s("client_id")?,
            redirect_uri: s("redirect_uri"),
            code_challenge: s("code_challenge"),
            code_challenge_method: s("code_challenge_method"),
            state: s("state"),
            scope: s("scope"),
            resource: s("resource"),
        })
    }
}

/// A client as `/authorize` sees it.
pub(super) struct Client {
    pub name: Option<String>,
    pub redirect_uris: Vec<String>,
}

/// Paused on fetching a Client ID Metadata Document.
#[derive(Debug)]
pub struct Paused {
    params: AuthParams,
    approvals: Option<String>,
}

pub(super) fn handle(gate: &Gate, req: &Request, env: &mut Env) -> Outcome {
    let params = if req.method == "POST" {
        form_body(req)
    } else {
        Params::parse(req.query()).map_err(super::form_error)
    };
    let params = match params {
        Ok(p) => p,
        Err(r) => return page(400, "invalid_request", &error_text(&r)),
    };
    let Some(ap) = AuthParams::from(&params) else {
        return page(400, "invalid_request", "client_id is required");
    };
    let approvals = cookie(req, &gate.cookies.approvals).map(String::from);
    if super::cimd::is_document_url(gate, &ap.client_id) {
        if let Err(e) = super::cimd::check_url(gate, &ap.client_id) {
            return page(400, "invalid_client", e);
        }
        return Outcome::Fetch {
            request: super::cimd::fetch(&ap.client_id, super::cimd::MAX_CIMD_BYTES),
            paused: PausedAt::Authorize(Paused {
                params: ap,
                approvals,
            })
            .into(),
        };
    }
    match seal::unseal::<ClientRecord>(&gate.ring, Kind::ClientId, &ap.client_id, env.now) {
        Ok(rec) => {
            let client = Client {
                name: rec.name,
                redirect_uris: rec.redirect_uris,
            };
            with_client(gate, ap, client, approvals.as_deref(), env)
        }
        Err(_) => page(400, "invalid_client", "unknown client_id"),
    }
}

pub(super) fn resume(gate: &Gate, paused: Paused, reply: Reply, env: &mut Env) -> Outcome {
    let Reply::Http(resp) = reply else {
        return page(500, "server_error", "unexpected host reply");
    };
    match super::cimd::client(gate, &paused.params.client_id, &resp) {
        Ok(client) => with_client(
            gate,
            paused.params,
            client,
            paused.approvals.as_deref(),
            env,
        ),
        Err(e) => page(400, "invalid_client", e),
    }
}

fn page(status: u16, error: &'static str, description: &str) -> Outcome {
    Outcome::Respond(error_page(status, error, description))
}

fn error_text(r: &Response) -> String {
    serde_json::from_slice::<serde_json::Value>(&r.body)
        .ok()
        .and_then(|v| v.get("error_description")?.as_str().map(String::from))
        .unwrap_or_else(|| "malformed request".to_string())
}

/// The client's redirect URI with an error (RFC 6749 §4.1.2.1, RFC 9207 `iss`).
fn error_location(
    gate: &Gate,
    redirect_uri: &str,
    error: &'static str,
    description: &str,
    state: Option<&str>,
) -> String {
    let mut pairs = alloc::vec![("error", error), ("error_description", description)];
    if let Some(s) = state {
        pairs.push(("state", s));
    }
    pairs.push(("iss", gate.cfg.issuer_url.as_str()));
    append_query(redirect_uri, &form::build(&pairs))
}

/// An error sent back to the client's redirect URI (RFC 6749 §4.1.2.1, RFC 9207 `iss`).
pub(super) fn error_redirect(
    gate: &Gate,
    redirect_uri: &str,
    error: &'static str,
    description: &str,
    state: Option<&str>,
) -> Response {
    let mut r = redirect(&error_location(
        gate,
        redirect_uri,
        error,
        description,
        state,
    ));
    r.reason = Some(error);
    r
}

/// The error on the proxy's own page, with a link to the client's redirect URI carrying what
/// [`error_redirect`] would have sent: for clients the user has not approved yet.
fn error_link(
    gate: &Gate,
    redirect_uri: &str,
    error: &'static str,
    description: &str,
    state: Option<&str>,
) -> Response {
    let location = error_location(gate, redirect_uri, error, description, state);
    let label = alloc::format!("Return to {}", redirect_uri::display_host(redirect_uri));
    crate::respond::error_page_with(
        400,
        error,
        description,
        crate::respond::Next {
            advice: "The application that sent you here has not been approved, so you are not \
                     sent back to it automatically. Return to it only if you started this \
                     sign-in yourself.",
            link: Some((&location, &label)),
        },
    )
}

pub(super) fn append_query(uri: &str, query: &str) -> String {
    let sep = if uri.contains('?') { '&' } else { '?' };
    alloc::format!("{uri}{sep}{query}")
}

fn scope_ok(s: &str) -> bool {
    s.len() <= 1024
        && s.bytes()
            .all(|b| b == b' ' || ((0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\'))
}

/// The scopes asked of the IdP: the client's request plus the required scopes.
fn upstream_scope(gate: &Gate, requested: Option<&str>) -> String {
    gate.with_required_scopes(requested.unwrap_or("").split(' '))
}

fn with_client(
    gate: &Gate,
    ap: AuthParams,
    client: Client,
    approvals: Option<&str>,
    env: &mut Env,
) -> Outcome {
    let redirect_uri = match &ap.redirect_uri {
        Some(requested) => {
            if !client
                .redirect_uris
                .iter()
                .any(|r| redirect_uri::matches(r, requested))
            {
                return page(
                    400,
                    "invalid_request",
                    "redirect_uri is not registered for this client",
                );
            }
            requested.clone()
        }
        None => match client.redirect_uris.as_slice() {
            [only] => only.clone(),
            _ => return page(400, "invalid_request", "redirect_uri is required"),
        },
    };
    let state = ap.state.as_deref();
    if state.is_some_and(|s| s.len() > MAX_STATE) {
        return page(400, "invalid_request", "state too long");
    }
    // Whether the user has approved this client already: only then may errors redirect.
    let approved = match gate.cfg.consent {
        ConsentMode::Off => true,
        ConsentMode::Remember => consent::remembered(gate, approvals, &ap.client_id, env.now),
        ConsentMode::Always => false,
    };
    let fail = |error, description: &str| {
        let answer = if approved { error_redirect } else { error_link };
        Outcome::Respond(answer(gate, &redirect_uri, error, description, state))
    };
    if ap.response_type.as_deref() != Some("code") {
        return fail("unsupported_response_type", "response_type must be code");
    }
    let Some(challenge) = ap.code_challenge.as_deref() else {
        return fail("invalid_request", "code_challenge is required (PKCE)");
    };
    if ap.code_challenge_method.as_deref() != Some("S256") {
        return fail("invalid_request", "code_challenge_method must be S256");
    }
    if !pkce::valid_challenge(challenge) {
        return fail(
            "invalid_request",
            "code_challenge is not a valid S256 challenge",
        );
    }
    let resource = gate.cfg.resource_url();
    if let Some(r) = ap.resource.as_deref() {
        if r != resource && r.strip_suffix('/') != Some(resource.as_str()) {
            return fail(
                "invalid_target",
                "resource is not this server's MCP endpoint",
            );
        }
    }
    if let Some(s) = ap.scope.as_deref() {
        if !scope_ok(s) {
            return fail("invalid_scope", "scope contains invalid characters");
        }
    }
    let txn = Transaction {
        txn: form::random_token(env.random, 16),
        client_id: ap.client_id,
        client_name: client.name,
        redirect_uri,
        code_challenge: challenge.to_string(),
        scope: upstream_scope(gate, ap.scope.as_deref()),
        state: ap.state,
        resource,
        upstream_verifier: form::random_token(env.random, 32),
    };
    // The approvals cookie is rewritten on approval: hand it the clients approved so far.
    let resp = if approved {
        consent::approve(gate, txn, approvals, env)
    } else {
        consent::page(gate, &txn, env)
    };
    Outcome::Respond(resp)
}
