//! Regression tests of the security review (issue 14): one module per finding, each test
//! failing on the code before its fix. The helpers here drive a [`World`] with an IdP the
//! test scripts (scopes, groups, refresh answers) and a client address of its choice.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use serde_json::{json, Value};

use super::{location, query_of, Final, World};
use crate::form;
use crate::http::{Env, HttpRequest, HttpResponse, Outcome, Reply, Request, StoreOp};
use crate::jwt::tests::vectors;
use crate::store;

mod cimd_hosts;
mod consent_remember;
mod deployment_binding;
mod forwarding;
mod lifetimes;
mod open_redirect;
mod rate_limits;
mod redirect_patterns;
mod scopes;
mod store_records;

/// The IdP's answer to each outbound call (token endpoint, revocation, CIMD documents).
pub(super) type IdpFn<'a> = &'a dyn Fn(&HttpRequest) -> HttpResponse;

/// A 200 token response with these tokens and extra members.
pub(super) fn token_response(access: &Value, id: Option<&Value>, extra: Value) -> HttpResponse {
    let mut body = json!({
        "access_token": vectors::rs256(access),
        "expires_in": 3600,
        "token_type": "Bearer",
        "refresh_token": "upstream-refresh",
    });
    if let Some(id) = id {
        body["id_token"] = json!(vectors::rs256(id));
    }
    for (k, v) in extra.as_object().into_iter().flatten() {
        if v.is_null() {
            body.as_object_mut().unwrap().remove(k);
        } else {
            body[k] = v.clone();
        }
    }
    HttpResponse {
        status: 200,
        headers: vec![],
        body: body.to_string().into_bytes(),
    }
}

/// The standard Cognito answer: the access and ID tokens of the test vectors.
pub(super) fn cognito_idp(_: &HttpRequest) -> HttpResponse {
    token_response(
        &vectors::cognito_access_claims(),
        Some(&vectors::cognito_id_claims()),
        json!({}),
    )
}

impl World {
    /// [`World::send`] with `idp` answering outbound calls and the client at `address`.
    pub(super) fn send_with(
        &mut self,
        idp: IdpFn,
        address: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Final {
        self.send_via(idp, None, address, method, path, headers, body)
    }

    /// [`World::send_with`], the store's answers given by `store` instead of the world's
    /// store (when `Some`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn send_via(
        &mut self,
        idp: IdpFn,
        mut store: Option<&mut dyn FnMut(&StoreOp) -> Reply>,
        address: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Final {
        let cookie_header: String = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut hs: Vec<(&str, &str)> = headers.to_vec();
        if !cookie_header.is_empty() {
            hs.push(("cookie", &cookie_header));
        }
        let req = Request {
            method,
            path,
            headers: &hs,
            body: body.as_bytes(),
            client_address: Some(address),
        };
        let mut env = Env {
            now: self.now,
            random: &mut self.rng,
            upstream_keys: self.keys.as_ref(),
            store: self.store.is_some(),
            native_rsa: None,
            cache: Some(&mut self.cache),
        };
        let mut out = self.gate.handle(&req, &mut env);
        let result = loop {
            let (k, reply) = match out {
                Outcome::Respond(r) => break Final::Respond(r),
                Outcome::Forward(f) => break Final::Forward(f),
                Outcome::Fetch { request, resume } => {
                    let resp = idp(&request);
                    self.fetches.push(request);
                    (resume, Reply::Http(resp))
                }
                Outcome::Store { op, resume } => match store.as_mut() {
                    Some(answer) => (resume, answer(&op)),
                    None => {
                        let s = self.store.as_mut().expect("store op without store");
                        (resume, store::perform(s, &op, self.now))
                    }
                },
                Outcome::NeedKeys { resume } => {
                    self.need_keys += 1;
                    (resume, Reply::Keys)
                }
            };
            let mut env = Env {
                now: self.now,
                random: &mut self.rng,
                upstream_keys: self.keys.as_ref(),
                store: self.store.is_some(),
                native_rsa: None,
                cache: Some(&mut self.cache),
            };
            out = self.gate.resume(k, reply, &mut env);
        };
        if let Final::Respond(r) = &result {
            for (k, v) in &r.headers {
                if k == "set-cookie" {
                    let (pair, attrs) = v.split_once(';').unwrap();
                    let (name, value) = pair.split_once('=').unwrap();
                    self.cookies.retain(|(n, _)| n != name);
                    if !attrs.contains("Max-Age=0") {
                        self.cookies.push((name.to_string(), value.to_string()));
                    }
                }
            }
        }
        result
    }

    /// A form POST through [`World::send_with`].
    pub(super) fn post_with(&mut self, idp: IdpFn, path: &str, pairs: &[(&str, &str)]) -> Final {
        let body = form::build(pairs);
        self.send_with(
            idp,
            "192.0.2.7",
            "POST",
            path,
            &[("content-type", "application/x-www-form-urlencoded")],
            &body,
        )
    }

    /// Authorization with these changes to the standard request ([`World::authorize_query`]),
    /// consent when asked, and the IdP's return through `idp`; the proxy's code, or the
    /// answer that was not a redirect with one.
    pub(super) fn login_with(
        &mut self,
        idp: IdpFn,
        client_id: &str,
        changes: &[(&str, &str)],
    ) -> Result<String, crate::http::Response> {
        let page = self
            .get(&World::authorize_query(client_id, changes))
            .response();
        let idp_redirect = if page.status == 200 {
            let html = String::from_utf8(page.body.clone()).unwrap();
            self.post_form(
                "/consent",
                &[
                    ("txn", &super::hidden(&html, "txn")),
                    ("csrf", &super::hidden(&html, "csrf")),
                    ("action", "approve"),
                ],
            )
            .response()
        } else {
            page
        };
        if idp_redirect.status != 302 {
            return Err(idp_redirect);
        }
        let state = query_of(location(&idp_redirect))
            .get("state")
            .unwrap()
            .to_string();
        let cb = self
            .send_with(
                idp,
                "192.0.2.7",
                "GET",
                &format!(
                    "/auth/callback?{}",
                    form::build(&[("code", "idp-code"), ("state", &state)])
                ),
                &[],
                "",
            )
            .response();
        match query_of(location(&cb)).get("code") {
            Some(code) if cb.status == 302 => Ok(code.to_string()),
            _ => Err(cb),
        }
    }

    /// Redeems `code` (issued to `client_id`) through `idp`.
    pub(super) fn redeem_with(
        &mut self,
        idp: IdpFn,
        client_id: &str,
        code: &str,
    ) -> crate::http::Response {
        self.post_with(
            idp,
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("client_id", client_id),
                ("redirect_uri", super::CLIENT_REDIRECT),
                ("code_verifier", super::VERIFIER),
            ],
        )
        .response()
    }

    /// Refreshes with `refresh_token` through `idp`.
    pub(super) fn refresh_with(
        &mut self,
        idp: IdpFn,
        client_id: &str,
        refresh_token: &str,
    ) -> crate::http::Response {
        self.post_with(
            idp,
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
                ("client_id", client_id),
            ],
        )
        .response()
    }
}
