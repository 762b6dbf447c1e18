//! Dynamic Client Registration (RFC 7591). Clients are public (`none`); the registration is
//! sealed into the returned `client_id`, so nothing is stored.
//!
//! Requested values the server does not grant are replaced, as RFC 7591 §3.2.1 allows, and the
//! response says what was registered: a requested `client_secret_post` (claude.ai, ChatGPT) or
//! an omitted method (the Python SDK) is answered with `none`; grant types beyond
//! `authorization_code` and `refresh_token` (VS Code's device code) are dropped. Redirect URIs
//! may be https, loopback or private-use (RFC 8252), as `application_type` allows
//! ([`crate::redirect_scheme`]).

use alloc::string::String;
use alloc::vec::Vec;
use serde::Deserialize;
use serde_json::json;

use crate::gate::Gate;
use crate::http::{Env, Request, Response};
use crate::records::{ClientRecord, NEVER};
use crate::redirect_scheme::{self, ApplicationType};
use crate::redirect_uri::MAX_REDIRECT_URIS;
use crate::respond::oauth_error;
use crate::seal::{self, Kind};

/// Longest `client_name` accepted (characters).
pub const MAX_CLIENT_NAME: usize = 200;
/// Total bytes of all redirect URIs of one client.
pub const MAX_REDIRECT_URIS_TOTAL: usize = 4096;

#[derive(Deserialize)]
struct Metadata {
    redirect_uris: Option<Vec<String>>,
    client_name: Option<String>,
    grant_types: Option<Vec<String>>,
    response_types: Option<Vec<String>>,
    token_endpoint_auth_method: Option<String>,
    scope: Option<String>,
    application_type: Option<String>,
}

fn invalid(description: &str) -> Response {
    oauth_error(400, "invalid_client_metadata", description)
}

/// Checks a client-supplied display string: bounded, no control characters.
pub(super) fn check_name(name: &str) -> Result<(), &'static str> {
    if name.chars().count() > MAX_CLIENT_NAME {
        Err("client_name too long")
    } else if name.chars().any(char::is_control) {
        Err("client_name contains control characters")
    } else {
        Ok(())
    }
}

/// Validates a client's redirect URIs as a set, for its `application_type` (absent: any kind).
pub(super) fn check_redirect_uris(
    gate: &Gate,
    uris: &[String],
    app: Option<ApplicationType>,
) -> Result<(), Response> {
    if uris.is_empty() {
        return Err(oauth_error(
            400,
            "invalid_redirect_uri",
            "redirect_uris must not be empty",
        ));
    }
    if uris.len() > MAX_REDIRECT_URIS {
        return Err(oauth_error(
            400,
            "invalid_redirect_uri",
            "at most 10 redirect_uris",
        ));
    }
    if uris.iter().map(String::len).sum::<usize>() > MAX_REDIRECT_URIS_TOTAL {
        return Err(oauth_error(
            400,
            "invalid_redirect_uri",
            "redirect_uris too long in total",
        ));
    }
    for uri in uris {
        redirect_scheme::check(uri, gate.cfg.allowed_client_redirect_uris.as_deref(), app)
            .map_err(|e| oauth_error(400, e.code(), e.description()))?;
    }
    Ok(())
}

/// The grant types registered: the requested ones this server serves to registered clients
/// (`authorization_code`, `refresh_token`), others dropped; `authorization_code` must be
/// among them (machine clients are the IdP's own app clients, never registered here).
fn granted_grant_types(requested: Option<Vec<String>>) -> Result<Vec<String>, Response> {
    let Some(requested) = requested else {
        return Ok(alloc::vec![
            "authorization_code".into(),
            "refresh_token".into()
        ]);
    };
    if !requested.iter().any(|g| g == "authorization_code") {
        return Err(invalid(
            "grant_types must include authorization_code: only interactive clients register \
             here (client_credentials clients are app clients of the identity provider)",
        ));
    }
    let mut granted: Vec<String> = Vec::new();
    for g in requested {
        if (g == "authorization_code" || g == "refresh_token") && !granted.contains(&g) {
            granted.push(g);
        }
    }
    Ok(granted)
}

pub(super) fn handle(gate: &Gate, req: &Request, env: &mut Env) -> Response {
    let ct = req.header("content-type").ok().flatten().unwrap_or("");
    if !ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .eq_ignore_ascii_case("application/json")
    {
        return invalid("content type must be application/json");
    }
    if !crate::encoding::json_depth_within(req.body, 4) {
        return invalid("client metadata nested too deeply");
    }
    let meta: Metadata = match serde_json::from_slice(req.body) {
        Ok(m) => m,
        Err(_) => return invalid("client metadata is not a valid JSON object"),
    };
    let app = match ApplicationType::parse(meta.application_type.as_deref()) {
        Ok(a) => a,
        Err(e) => return invalid(e.description()),
    };
    let Some(uris) = meta.redirect_uris else {
        return oauth_error(400, "invalid_redirect_uri", "redirect_uris is required");
    };
    if let Err(r) = check_redirect_uris(gate, &uris, app) {
        return r;
    }
    if let Some(name) = &meta.client_name {
        if let Err(e) = check_name(name) {
            return invalid(e);
        }
    }
    let grant_types = match granted_grant_types(meta.grant_types) {
        Ok(g) => g,
        Err(r) => return r,
    };
    if let Some(rt) = &meta.response_types {
        if rt.iter().any(|t| t != "code") {
            return invalid("response_types may contain only code");
        }
    }
    // Public clients only: a requested secret-based method is answered with "none", which
    // RFC 7591 §3.2.1 lets the server do.
    let _ = meta.token_endpoint_auth_method;
    if let Some(scope) = &meta.scope {
        if scope.len() > 1024 {
            return invalid("scope too long");
        }
    }
    let record = ClientRecord {
        redirect_uris: uris,
        name: meta.client_name,
        issued_at: env.now,
    };
    let Some(client_id) = seal::seal(&gate.ring, Kind::ClientId, &record, NEVER, env.random) else {
        return oauth_error(500, "server_error", "could not issue a client id");
    };
    let mut body = json!({
        "client_id": client_id,
        "client_id_issued_at": record.issued_at,
        "redirect_uris": record.redirect_uris,
        "grant_types": grant_types,
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    });
    if let Some(name) = record.name {
        crate::respond::insert(&mut body, "client_name", json!(name));
    }
    if let Some(app) = app {
        crate::respond::insert(&mut body, "application_type", json!(app.name()));
    }
    let mut r = crate::respond::json(201, &body);
    r.reason = None;
    r
}
