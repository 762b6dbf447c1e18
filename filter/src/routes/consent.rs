//! Consent: one static upstream client serves many dynamic clients, so the user approves
//! each client before the proxy goes to the IdP (MCP's confused-deputy rule).
//!
//! The page says who asks (the client's name), what it gets (the resource, the scopes) and where
//! the browser goes afterwards (the redirect URI's host, with a warning for this computer or an
//! app). It is framed by nothing and runs no script (its CSP: `respond::page`); CSRF is a
//! double-submit token (cookie + form field); approval sets a sealed binding cookie that the
//! callback checks, so an authorization finishes only in the browser that approved it.

use alloc::format;
use alloc::string::String;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::authorize::{append_query, error_redirect};
use super::{cookie, form_body};
use crate::config::ConsentMode;
use crate::encoding::b64url_encode;
use crate::form;
use crate::gate::Gate;
use crate::http::{Env, Outcome, Request, Response};
use crate::records::{
    Approvals, Binding, Transaction, APPROVALS_SECONDS, MAX_APPROVALS, TRANSACTION_SECONDS,
};
use crate::respond::{self, error_page, escape, form_page, redirect, Next};
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

/// Where the browser goes after the IdP, as the consent page shows it.
enum Destination<'a> {
    /// An `http(s)` redirect URI: its host (and port), and whether it is this computer.
    Web { host: &'a str, loopback: bool },
    /// Any other scheme: an app on the user's device (RFC 8252 §7.1).
    App { scheme: &'a str },
}

fn destination(uri: &str) -> Destination<'_> {
    match uri.split_once(':') {
        Some((scheme, _))
            if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") =>
        {
            Destination::App { scheme }
        }
        _ => Destination::Web {
            host: redirect_uri::display_host(uri),
            loopback: redirect_uri::parse(uri).is_ok_and(|u| u.is_loopback()),
        },
    }
}

/// What a well-known scope lets the client learn or do, in the user's words.
fn scope_meaning(scope: &str) -> Option<&'static str> {
    Some(match scope {
        "openid" => "confirm who you are",
        "email" => "your email address",
        "profile" => "your name and profile details",
        "phone" => "your phone number",
        "address" => "your postal address",
        "offline_access" => "stay connected when you are away",
        "aws.cognito.signin.user.admin" => "read and change your user profile",
        _ => return None,
    })
}

/// The content of the consent page: who asks, what it gets, where the user goes next.
pub(super) fn page_html(gate: &Gate, txn: &Transaction, sealed: &str, csrf: &str) -> String {
    let name = escape(
        txn.client_name
            .as_deref()
            .unwrap_or("An unnamed MCP client"),
    );
    let identity = if txn.client_id.starts_with("https://") {
        format!(
            "<p class=\"note\">Its identity is published at <code>{}</code>.</p>",
            escape(&txn.client_id)
        )
    } else if txn.client_name.is_some() {
        String::from(
            "<p class=\"note\">The application chose this name itself when it registered; \
             it has not been verified.</p>",
        )
    } else {
        String::from("<p class=\"note\">The application gave no name when it registered.</p>")
    };
    let scopes: String = txn
        .scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(|s| match scope_meaning(s) {
            Some(m) => format!("<li><code>{}</code>: {m}</li>", escape(s)),
            None => format!("<li><code>{}</code></li>", escape(s)),
        })
        .collect();
    let next = match destination(&txn.redirect_uri) {
        Destination::Web { host, loopback } => {
            let warning = if loopback {
                "<p class=\"warn\">This client runs on your own computer (a localhost \
                 address). Approve only if you just started it.</p>"
            } else {
                ""
            };
            format!(
                "<p>You sign in with your identity provider, then you are sent to \
                 <strong>{}</strong>.</p>{warning}",
                escape(host)
            )
        }
        Destination::App { scheme } => format!(
            "<p>You sign in with your identity provider, then you are sent to the app that \
             opens <code>{}:</code> addresses on this device.</p>\
             <p class=\"warn\">This client is an app on your device, not a website, and any \
             app can claim such an address. Approve only if you just started it.</p>",
            escape(scheme)
        ),
    };
    let main = format!(
        "<h1>Allow {name} to use your account?</h1>\
         <p>Check who is asking and what it gets, then approve or deny.</p>\
         <h2>Who is asking</h2><p><strong>{name}</strong></p>{identity}\
         <h2>What it gets</h2>\
         <p>Access to <code>{resource}</code> as you, with these permissions:</p>\
         <ul>{scopes}</ul>\
         <h2>Where you go next</h2>{next}\
         <form method=\"post\" action=\"{action}\">\
         <input type=\"hidden\" name=\"txn\" value=\"{sealed}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <div class=\"actions\">\
         <button class=\"button primary\" type=\"submit\" name=\"action\" value=\"approve\">Approve</button>\
         <button class=\"button secondary\" type=\"submit\" name=\"action\" value=\"deny\">Deny</button>\
         </div></form>\
         <p class=\"note\">Not expecting this? Choose Deny: nothing is shared.</p>",
        resource = escape(&txn.resource),
        action = escape(&gate.paths.consent),
        sealed = escape(sealed),
        csrf = escape(csrf),
    );
    respond::document(&format!("Allow {name}?"), &main)
}

/// The consent page for a pending transaction.
pub(super) fn page(gate: &Gate, txn: &Transaction, env: &mut Env) -> Response {
    let exp = env.now + TRANSACTION_SECONDS;
    let Some(sealed) = seal::seal(&gate.ring, Kind::Transaction, txn, exp, env.random) else {
        return error_page(500, "server_error", "could not start the authorization");
    };
    let csrf = form::random_token(env.random, 16);
    let mut r = form_page(200, page_html(gate, txn, &sealed, &csrf));
    set_cookie(gate, &mut r, &gate.cookies.csrf, &csrf, TRANSACTION_SECONDS);
    r
}

/// A consent form whose CSRF token does not match the browser's cookie: it was already used,
/// or a newer consent page replaced the cookie (another tab, Back to an old page). Nothing is
/// approved; when the form still carries a valid transaction the page links to the same
/// authorization request again, which shows a fresh consent page (the client still waits for
/// this `state`). A forged cross-site post gains nothing: the link only leads to a consent page.
fn stale_form(gate: &Gate, txn: Option<&Transaction>) -> Response {
    let again = txn.map(|t| {
        let mut pairs = alloc::vec![
            ("response_type", "code"),
            ("client_id", t.client_id.as_str()),
            ("redirect_uri", t.redirect_uri.as_str()),
            ("code_challenge", t.code_challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("scope", t.scope.as_str()),
            ("resource", t.resource.as_str()),
        ];
        if let Some(s) = &t.state {
            pairs.push(("state", s));
        }
        append_query(&gate.paths.authorize, &form::build(&pairs))
    });
    let advice = if again.is_some() {
        "It was already used, or a newer authorization was started in this browser since \
         (another tab, or the Back button). Nothing was approved. Show the request again to \
         decide once more."
    } else {
        "It was already used, or a newer authorization was started in this browser since \
         (another tab, or the Back button). Nothing was approved. Go back to the application \
         that sent you here and connect again."
    };
    respond::error_page_with(
        403,
        "access_denied",
        "this consent form is out of date (it failed its CSRF check)",
        Next {
            advice,
            link: again
                .as_deref()
                .map(|href| (href, "Show the request again")),
        },
    )
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
        let txn = params.get("txn").and_then(|t| {
            seal::unseal::<Transaction>(&gate.ring, Kind::Transaction, t, env.now).ok()
        });
        return Outcome::Respond(stale_form(gate, txn.as_ref()));
    }
    let txn = match params
        .get("txn")
        .map(|t| seal::unseal::<Transaction>(&gate.ring, Kind::Transaction, t, env.now))
    {
        Some(Ok(t)) => t,
        Some(Err(seal::SealError::Expired)) => {
            let advice = format!(
                "A consent page is valid for {} minutes. Go back to the application that sent \
                 you here and connect again.",
                TRANSACTION_SECONDS / 60
            );
            return Outcome::Respond(respond::error_page_with(
                400,
                "invalid_request",
                "the authorization expired; start again",
                Next {
                    advice: &advice,
                    link: None,
                },
            ));
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
