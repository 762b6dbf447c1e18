//! Consent CSRF and cookies.

use super::super::*;

pub(crate) fn consent_cases(ctx: &HostileContext<'_>) -> Vec<Case> {
    use Category::Consent as C;
    let mut v = Vec::new();
    let (a, b) = (&ctx.consent_a, &ctx.consent_b);
    let csrf_name = a.csrf_cookie.0.as_str();
    // `__Host-mcpgate-csrf` over https, `mcpgate-csrf` over http: the same value under a
    // name the proxy did not set.
    let other_csrf_name = format!("x-{csrf_name}");
    let csrf_failed = "CSRF check";
    let forbidden =
        |name: &str, req: Req| Case::new(C, name, req, page_d(403, "access_denied", csrf_failed));
    v.push(forbidden(
        "consent without the CSRF cookie",
        ctx.consent_req(&a.txn, &a.csrf, &[]),
    ));
    v.push(forbidden(
        "consent without the csrf field",
        Req::form("/consent", &[("txn", &a.txn), ("action", "approve")])
            .cookie(&[(csrf_name, &a.csrf_cookie.1)]),
    ));
    v.push(forbidden(
        "consent with a forged csrf field",
        ctx.consent_req(&a.txn, "forged", &[(csrf_name, &a.csrf_cookie.1)]),
    ));
    v.push(forbidden(
        "consent with the csrf field of another transaction",
        ctx.consent_req(&a.txn, &b.csrf, &[(csrf_name, &a.csrf_cookie.1)]),
    ));
    v.push(forbidden(
        "consent with a tampered CSRF cookie",
        ctx.consent_req(
            &a.txn,
            &a.csrf,
            &[(csrf_name, &flip_at(&a.csrf_cookie.1, -1))],
        ),
    ));
    v.push(forbidden(
        "consent with a longer CSRF cookie",
        ctx.consent_req(
            &a.txn,
            &a.csrf,
            &[(csrf_name, &format!("{}x", a.csrf_cookie.1))],
        ),
    ));
    v.push(forbidden(
        "consent with a forged CSRF cookie before the real one (cookie tossing)",
        ctx.consent_req(
            &a.txn,
            &a.csrf,
            &[(csrf_name, "forged"), (csrf_name, &a.csrf_cookie.1)],
        ),
    ));
    v.push(forbidden(
        "consent with the CSRF value under another cookie name",
        ctx.consent_req(&a.txn, &a.csrf, &[(&other_csrf_name, &a.csrf_cookie.1)]),
    ));
    v.push(forbidden(
        "consent with empty csrf field and cookie",
        ctx.consent_req(&a.txn, "", &[(csrf_name, "")]),
    ));
    v.push(Case::new(
        C,
        "consent with action APPROVE (case)",
        Req::form(
            "/consent",
            &[("txn", &a.txn), ("csrf", &a.csrf), ("action", "APPROVE")],
        )
        .cookie(&[(csrf_name, &a.csrf_cookie.1)]),
        page_d(400, "invalid_request", "action must be approve or deny"),
    ));
    v.push(Case::new(
        C,
        "consent without txn",
        Req::form("/consent", &[("csrf", &a.csrf), ("action", "approve")])
            .cookie(&[(csrf_name, &a.csrf_cookie.1)]),
        page_d(400, "invalid_request", "invalid consent form"),
    ));
    v.push(Case::new(
        C,
        "consent posted as JSON",
        Req::json(
            "/consent",
            &json!({"txn": a.txn, "csrf": a.csrf, "action": "approve"}),
        )
        .cookie(&[(csrf_name, &a.csrf_cookie.1)]),
        page_d(400, "invalid_request", "malformed consent form"),
    ));
    v.push(Case::new(
        C,
        "consent with txn given twice",
        Req::form(
            "/consent",
            &[
                ("txn", &a.txn),
                ("txn", &b.txn),
                ("csrf", &a.csrf),
                ("action", "approve"),
            ],
        )
        .cookie(&[(csrf_name, &a.csrf_cookie.1)]),
        page_d(400, "invalid_request", "malformed consent form"),
    ));

    // The callback's browser binding.
    let (x, y) = (&ctx.approved_a, &ctx.approved_b);
    let binding_name = x.binding_cookie.0.as_str();
    let other_binding_name = format!("x-{binding_name}");
    let other_browser = "another browser";
    for (name, cookies) in [
        ("without the binding cookie", vec![]),
        (
            "with the binding cookie of another transaction",
            vec![(binding_name, y.binding_cookie.1.as_str())],
        ),
        (
            "with the binding under another cookie name",
            vec![(other_binding_name.as_str(), x.binding_cookie.1.as_str())],
        ),
        (
            "with a forged binding cookie before the real one",
            vec![
                (binding_name, "forged"),
                (binding_name, x.binding_cookie.1.as_str()),
            ],
        ),
        (
            "with the CSRF cookie as the binding",
            vec![(binding_name, ctx.consent_a.csrf_cookie.1.as_str())],
        ),
    ] {
        v.push(Case::new(
            C,
            format!("callback {name}"),
            ctx.callback_req(&x.state, &cookies),
            page_d(403, "access_denied", other_browser),
        ));
    }
    v.push(Case::new(
        C,
        "callback with an IdP error and a forged state",
        Req::get("/auth/callback?error=access_denied&state=forged"),
        page_d(400, "invalid_request", "invalid or missing state"),
    ));
    v.push(Case::new(
        C,
        "callback without state",
        Req::get("/auth/callback?code=idp-code")
            .cookie(&[(binding_name, x.binding_cookie.1.as_str())]),
        page_d(400, "invalid_request", "invalid or missing state"),
    ));
    v.push(Case::new(
        C,
        "callback with state given twice",
        Req::get(&format!(
            "/auth/callback?{}",
            form_encode(&[("code", "c"), ("state", &x.state), ("state", &y.state)])
        ))
        .cookie(&[(binding_name, x.binding_cookie.1.as_str())]),
        page(400, "invalid_request"),
    ));
    v
}
