//! Sealed values: tampering, truncation, replay, kind swaps, expiry, retired keys.

use super::super::*;

pub(crate) fn sealed_cases(ctx: &HostileContext<'_>) -> Vec<Case> {
    use Category::Sealed as S;
    let mut v = Vec::new();
    let invalid_code = "invalid authorization code";
    let invalid_refresh = "invalid refresh token";
    let (binding_name, binding) = (
        ctx.approved_a.binding_cookie.0.as_str(),
        ctx.approved_a.binding_cookie.1.as_str(),
    );
    let (csrf_name, csrf_cookie) = (
        ctx.consent_a.csrf_cookie.0.as_str(),
        ctx.consent_a.csrf_cookie.1.as_str(),
    );

    for (how, t) in tamperings(&ctx.client_id) {
        v.push(Case::new(
            S,
            format!("client_id {how} at /authorize"),
            Req::get(&ctx.authorize_target(&t, &[])),
            page_d(400, "invalid_client", "unknown client_id"),
        ));
    }
    for (how, t) in tamperings(&ctx.code) {
        v.push(Case::new(
            S,
            format!("code {how}"),
            ctx.code_form(&[("code", &t)]),
            oauth_d(400, "invalid_grant", invalid_code),
        ));
    }
    for (how, t) in tamperings(&ctx.refresh_token) {
        v.push(Case::new(
            S,
            format!("refresh token {how}"),
            ctx.refresh_form(&t, &ctx.client_id),
            oauth_d(400, "invalid_grant", invalid_refresh),
        ));
    }
    for (how, t) in tamperings(&ctx.approved_a.state) {
        v.push(Case::new(
            S,
            format!("state {how}"),
            ctx.callback_req(&t, &[(binding_name, binding)]),
            page_d(400, "invalid_request", "invalid or missing state"),
        ));
    }
    for (how, t) in tamperings(&ctx.consent_a.txn) {
        v.push(Case::new(
            S,
            format!("consent txn {how}"),
            ctx.consent_req(&t, &ctx.consent_a.csrf, &[(csrf_name, csrf_cookie)]),
            page_d(400, "invalid_request", "invalid consent form"),
        ));
    }
    for (how, t) in tamperings(binding) {
        v.push(Case::new(
            S,
            format!("binding cookie {how}"),
            ctx.callback_req(&ctx.approved_a.state, &[(binding_name, &t)]),
            page_d(403, "access_denied", "another browser"),
        ));
    }
    // Expired, and sealed under a retired key: the same content sealed again by the test.
    let a = &ctx.approved_a;
    let f = &ctx.consent_a;
    for (how, label) in [
        (Reseal::Expired, "expired"),
        (Reseal::RetiredKey, "sealed with a retired key"),
    ] {
        let reseal = |kind, value: &str| ctx.resealed(kind, value, how);
        let (code_desc, refresh_desc, txn_desc, state_desc) = if how == Reseal::Expired {
            (
                "authorization code expired",
                "refresh token expired",
                "the authorization expired",
                "the authorization expired",
            )
        } else {
            (
                invalid_code,
                invalid_refresh,
                "invalid consent form",
                "invalid or missing state",
            )
        };
        let client_id = reseal(SealKind::ClientId, &ctx.client_id);
        v.push(Case::new(
            S,
            format!("client_id {label} at /authorize"),
            Req::get(&ctx.authorize_target(&client_id, &[])),
            page_d(400, "invalid_client", "unknown client_id"),
        ));
        v.push(Case::new(
            S,
            format!("code {label}"),
            ctx.code_form(&[("code", &reseal(SealKind::Code, &ctx.code))]),
            oauth_d(400, "invalid_grant", code_desc),
        ));
        v.push(Case::new(
            S,
            format!("refresh token {label}"),
            ctx.refresh_form(
                &reseal(SealKind::RefreshToken, &ctx.refresh_token),
                &ctx.client_id,
            ),
            oauth_d(400, "invalid_grant", refresh_desc),
        ));
        v.push(Case::new(
            S,
            format!("consent txn {label}"),
            ctx.consent_req(
                &reseal(SealKind::Transaction, &f.txn),
                &f.csrf,
                &[(csrf_name, csrf_cookie)],
            ),
            page_d(400, "invalid_request", txn_desc),
        ));
        v.push(Case::new(
            S,
            format!("state {label}"),
            ctx.callback_req(
                &reseal(SealKind::State, &a.state),
                &[(binding_name, binding)],
            ),
            page_d(400, "invalid_request", state_desc),
        ));
        v.push(Case::new(
            S,
            format!("binding cookie {label}"),
            ctx.callback_req(
                &a.state,
                &[(binding_name, &reseal(SealKind::ConsentBinding, binding))],
            ),
            page_d(403, "access_denied", "another browser"),
        ));
    }
    v.push(Case::new(
        S,
        "empty code",
        ctx.code_form(&[("code", "")]),
        oauth_d(400, "invalid_request", "code is required"),
    ));

    // Replay.
    v.push(Case::new(
        S,
        "replay of a redeemed code",
        ctx.code_form(&[
            ("code", &ctx.spent_code),
            ("code_verifier", &ctx.spent_verifier),
        ]),
        oauth(400, "invalid_grant"),
    ));
    v.push(Case::new(
        S,
        "reuse of a rotated-out refresh token",
        ctx.refresh_form(&ctx.spent_refresh_token, &ctx.client_id),
        oauth_d(400, "invalid_grant", "reuse"),
    ));
    v.push(Case::new(
        S,
        "refresh token of another client",
        ctx.refresh_form(&ctx.refresh_token, &ctx.other_client_id),
        oauth_d(400, "invalid_grant", "issued to another client"),
    ));

    // Kind swaps: each sealed value where another kind is expected.
    let a = &ctx.approved_a;
    let f = &ctx.consent_a;
    for (what, value) in [
        ("refresh token", &ctx.refresh_token),
        ("client_id", &ctx.client_id),
        ("state", &a.state),
        ("consent txn", &f.txn),
        ("binding cookie", &a.binding_cookie.1),
        ("access token", &ctx.access_token),
    ] {
        v.push(Case::new(
            S,
            format!("{what} presented as a code"),
            ctx.code_form(&[("code", value)]),
            oauth_d(400, "invalid_grant", invalid_code),
        ));
    }
    for (what, value) in [
        ("code", &ctx.code),
        ("client_id", &ctx.client_id),
        ("state", &a.state),
        ("access token", &ctx.access_token),
        ("m2m token", &ctx.m2m_token),
    ] {
        v.push(Case::new(
            S,
            format!("{what} presented as a refresh token"),
            ctx.refresh_form(value, &ctx.client_id),
            oauth_d(400, "invalid_grant", invalid_refresh),
        ));
    }
    for (what, value) in [
        ("code", &ctx.code),
        ("refresh token", &ctx.refresh_token),
        ("state", &a.state),
        ("consent txn", &f.txn),
        ("binding cookie", &a.binding_cookie.1),
    ] {
        v.push(Case::new(
            S,
            format!("{what} presented as a client_id"),
            Req::get(&ctx.authorize_target(value, &[])),
            page_d(400, "invalid_client", "unknown client_id"),
        ));
    }
    for (what, value) in [
        ("client_id", &ctx.client_id),
        ("consent txn", &f.txn),
        ("binding cookie", &a.binding_cookie.1),
        ("code", &ctx.code),
    ] {
        v.push(Case::new(
            S,
            format!("{what} presented as the state"),
            ctx.callback_req(value, &[(binding_name, binding)]),
            page_d(400, "invalid_request", "invalid or missing state"),
        ));
    }
    for (what, value) in [("state", &a.state), ("client_id", &ctx.client_id)] {
        v.push(Case::new(
            S,
            format!("{what} presented as the consent txn"),
            ctx.consent_req(value, &f.csrf, &[(csrf_name, csrf_cookie)]),
            page_d(400, "invalid_request", "invalid consent form"),
        ));
    }
    v.push(Case::new(
        S,
        "state presented as the binding cookie",
        ctx.callback_req(&a.state, &[(binding_name, &a.state)]),
        page_d(403, "access_denied", "another browser"),
    ));
    for (what, value) in [
        ("refresh token", &ctx.refresh_token),
        ("code", &ctx.code),
        ("client_id", &ctx.client_id),
    ] {
        v.push(Case::new(
            S,
            format!("{what} presented as a bearer token"),
            whoami_req(value, &[]),
            invalid_token_any(),
        ));
    }
    v
}
