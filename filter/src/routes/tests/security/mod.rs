//! Regression tests of the security review (issue 14): one module per finding, each test
//! failing on the code before its fix. The helpers here drive a [`World`] with an IdP the
//! test scripts (scopes, groups, refresh answers) and a client address of its choice.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use serde_json::{json, Value};

use super::{location, query_of, Final, World};
use crate::form;
use crate::http::{HttpRequest, HttpResponse};
use crate::jwt::tests::vectors;

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
        self.send_full(Some(idp), None, address, method, path, headers, body)
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
