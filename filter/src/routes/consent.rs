//! Consent: one static upstream client serves many dynamic clients, so the user approves
//! each client before the proxy goes to the IdP (MCP's confused-deputy rule).
//!
//! The page is framed by nothing and runs no script; CSRF is a double-submit token (cookie +
//! form field); approval sets a sealed binding cookie that the callback checks, so an
//! authorization finishes only in the browser that approved it.

use alloc::format;
use alloc::string::String;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::authorize::{append_query, error_redirect};
use super::records::{
    Approvals, Binding, Transaction, APPROVALS_SECONDS, MAX_APPROVALS, TRANSACTION_SECONDS,
};
use super::{cookie, form_body};
use crate::config::ConsentMode;
use crate::encoding::b64url_encode;
use crate::form;
use crate::gate::Gate;
use crate::http::{Env, Outcome, Request, Response};
use crate::respond::{self, error_page, escape, html, redirect};
use crate::seal::{self, Kind};
use crate::{pkce, redirect_uri};

fn digest(client_id: &str) -> String {
    let d = Sha256::digest(client_id.as_bytes());
    b64url_encode(d.get(..12).unwrap_or(&[]))
}

fn approvals(gate: &Gate, cookie: Option<&str>, now: u64) -> Approvals {
    cookie
        .and_then(|c| seal::unseal::<Approvals>(&gate.ring, Kind::Approvals, c, now).ok())
        .unwrap_or_default()
}

/// Whether the browser already approved this client (`consent: remember`).
pub(super) fn remembered(gate: &Gate, cookie: Option<&str>, client_id: &str, now: u64) -> bool {
    let d = digest(client_id);
    approvals(gate, cookie, now).0.contains(&d)
}

fn set_cookie(gate: &Gate, r: &mut Response, name: &str, value: &str, max_age: u64) {
    respond::set_cookie(
        r,
        format!(
            "{name}={value}; Max-Age={max_age}; {}",
            gate.cookies.attributes
        ),
    );
}

/// The consent page for a pending transaction.
pub(super) fn page(gate: &Gate, txn: &Transaction, env: &mut Env) -> Response {
    let exp = env.now + TRANSACTION_SECONDS;
    let Some(sealed) = seal::seal(&gate.ring, Kind::Transaction, txn, exp, env.random) else {
        return error_page(500, "server_error", "could not start the authorization");
    };
    let csrf = form::random_token(env.random, 16);
    let name = txn
        .client_name
        .as_deref()
        .unwrap_or("An unnamed MCP client");
    let host = redirect_uri::display_host(&txn.redirect_uri);
    let loopback = redirect_uri::parse(&txn.redirect_uri).is_ok_and(|u| u.is_loopback());
    let warning = if loopback {
        "<p class=\"warn\">This client runs on your own computer (a localhost address). Approve only if you just started it.</p>"
    } else {
        ""
    };
    let cimd = if txn.client_id.starts_with("https://") {
        format!(
            "<p>Client identity published at <code>{}</code>.</p>",
            escape(&txn.client_id)
        )
    } else {
        String::new()
    };
    let scopes: String = txn
        .scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(|s| format!("<li><code>{}</code></li>", escape(s)))
        .collect();
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Authorize {name}</title>\
         <style>body{{font-family:sans-serif;max-width:36em;margin:3em auto}}.warn{{color:#a40}}</style></head><body>\
         <h1>Authorize {name}?</h1>\
         <p><strong>{name}</strong> wants to access <code>{resource}</code> on your behalf.</p>\
         <p>After you sign in you will be sent to <strong>{host}</strong>.</p>{warning}{cimd}\
         <p>Requested scopes:</p><ul>{scopes}</ul>\
         <form method=\"post\" action=\"{action}\">\
         <input type=\"hidden\" name=\"txn\" value=\"{sealed}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <button type=\"submit\" name=\"action\" value=\"approve\">Approve</button> \
         <button type=\"submit\" name=\"action\" value=\"deny\">Deny</button>\
         </form></body></html>",
        name = escape(name),
        resource = escape(&txn.resource),
        host = escape(host),
        action = escape(&gate.paths.consent),
    );
    let mut r = html(200, body);
    set_cookie(gate, &mut r, &gate.cookies.csrf, &csrf, TRANSACTION_SECONDS);
    r
}

/// `POST /consent`: the user's answer.
pub(super) fn handle(gate: &Gate, req: &Request, env: &mut Env) -> Outcome {
    let params = match form_body(req) {
        Ok(p) => p,
        Err(_) => {
            return Outcome::Respond(error_page(400, "invalid_request", "malformed consent form"))
        }
    };
    let csrf_ok = match (cookie(req, &gate.cookies.csrf), params.get("csrf")) {
        (Some(c), Some(f)) => c.len() == f.len() && bool::from(c.as_bytes().ct_eq(f.as_bytes())),
        _ => false,
    };
    if !csrf_ok {
        return Outcome::Respond(error_page(
            403,
            "access_denied",
            "consent form failed its CSRF check; start again",
        ));
    }
    let txn = match params
        .get("txn")
        .map(|t| seal::unseal::<Transaction>(&gate.ring, Kind::Transaction, t, env.now))
    {
        Some(Ok(t)) => t,
        Some(Err(seal::SealError::Expired)) => {
            return Outcome::Respond(error_page(
                400,
                "invalid_request",
                "the authorization expired; start again",
            ))
        }
        _ => return Outcome::Respond(error_page(400, "invalid_request", "invalid consent form")),
    };
    let mut r = match params.get("action") {
        Some("approve") => {
            let existing = cookie(req, &gate.cookies.approvals);
            approve(gate, txn, existing, env)
        }
        Some("deny") => error_redirect(
            gate,
            &txn.redirect_uri,
            "access_denied",
            "the user denied the request",
            txn.state.as_deref(),
        ),
        _ => {
            return Outcome::Respond(error_page(
                400,
                "invalid_request",
                "action must be approve or deny",
            ))
        }
    };
    set_cookie(gate, &mut r, &gate.cookies.csrf, "", 0);
    Outcome::Respond(r)
}

/// Approval: bind the browser to the transaction and send it to the IdP.
pub(super) fn approve(
    gate: &Gate,
    txn: Transaction,
    approvals_cookie: Option<&str>,
    env: &mut Env,
) -> Response {
    let exp = env.now + TRANSACTION_SECONDS;
    let binding = Binding {
        txn: txn.txn.clone(),
        client_id: txn.client_id.clone(),
    };
    let (Some(state), Some(bound)) = (
        seal::seal(&gate.ring, Kind::State, &txn, exp, env.random),
        seal::seal(&gate.ring, Kind::ConsentBinding, &binding, exp, env.random),
    ) else {
        return error_page(500, "server_error", "could not start the authorization");
    };
    let c = &gate.cfg;
    let query = form::build(&[
        ("response_type", "code"),
        ("client_id", &c.client_id),
        ("redirect_uri", &c.callback_url()),
        ("scope", &txn.scope),
        ("state", &state),
        (
            "code_challenge",
            &pkce::challenge_for(&txn.upstream_verifier),
        ),
        ("code_challenge_method", "S256"),
    ]);
    let mut r = redirect(&append_query(&c.upstream.authorization_endpoint, &query));
    set_cookie(
        gate,
        &mut r,
        &gate.cookies.binding,
        &bound,
        TRANSACTION_SECONDS,
    );
    if c.consent == ConsentMode::Remember {
        let mut list = approvals(gate, approvals_cookie, env.now);
        let d = digest(&txn.client_id);
        list.0.retain(|a| *a != d);
        list.0.push(d);
        while list.0.len() > MAX_APPROVALS {
            list.0.remove(0);
        }
        if let Some(v) = seal::seal(
            &gate.ring,
            Kind::Approvals,
            &list,
            env.now + APPROVALS_SECONDS,
            env.random,
        ) {
            set_cookie(gate, &mut r, &gate.cookies.approvals, &v, APPROVALS_SECONDS);
        }
    }
    r
}
