//! Checks outside the table: controls before and after, spoofing, the retired key, still
//! serving.

use super::*;

/// Base requests that must be accepted before the table runs (not counted as cases).
pub fn controls_before(ctx: &HostileContext<'_>) -> Vec<Case> {
    vec![
        Case::new(
            Category::Tokens,
            "control: a hand-built m2m token with unchanged claims is accepted",
            whoami_req(&ctx.m2m_with(&[]), &[]),
            Expect::Upstream(vec![("x-mcpgate-client-id", Some("m2m-client".into()))]),
        ),
        Case::new(
            Category::Pkce,
            "control: the base authorization request shows the consent page",
            Req::get(&ctx.authorize_target(&ctx.client_id, &[])),
            Expect::Status(200),
        ),
        Case::new(
            Category::Sealed,
            "control: a client_id the test sealed again with the proxy's key is accepted",
            Req::get(&ctx.authorize_target(
                &ctx.resealed(SealKind::ClientId, &ctx.client_id, Reseal::Fresh),
                &[],
            )),
            Expect::Status(200),
        ),
    ]
}

/// Base requests with the context's values after the table ran: still accepted, so no
/// refusal consumed them (not counted as cases). Uses them up.
pub fn controls_after(ctx: &HostileContext<'_>) -> Vec<Case> {
    let a = &ctx.approved_a;
    let f = &ctx.consent_a;
    vec![
        Case::new(
            Category::Sealed,
            "control: the code is still redeemable",
            ctx.code_form(&[]),
            Expect::Status(200),
        ),
        Case::new(
            Category::Sealed,
            "control: and then single-use",
            ctx.code_form(&[]),
            oauth(400, "invalid_grant"),
        ),
        Case::new(
            Category::Sealed,
            "control: the refresh token still refreshes",
            ctx.refresh_form(&ctx.refresh_token, &ctx.client_id),
            Expect::Status(200),
        ),
        Case::new(
            Category::Consent,
            "control: the consent form is still accepted",
            ctx.consent_req(&f.txn, &f.csrf, &[(&f.csrf_cookie.0, &f.csrf_cookie.1)]),
            Expect::Status(302),
        ),
        Case::new(
            Category::Consent,
            "control: state and binding still reach the IdP code exchange (fake code refused)",
            ctx.callback_req(&a.state, &[(&a.binding_cookie.0, &a.binding_cookie.1)]),
            redirect("server_error"),
        ),
    ]
}

/// Spoofed identity headers from the client never reach the MCP server: with alice's token
/// her identity arrives; with the m2m token, headers it has no value for arrive not at all.
pub async fn spoofing_checks(
    base_url: &str,
    ctx: &HostileContext<'_>,
) -> Vec<(Category, Result<(), Failure>)> {
    let alice = Case::new(
        Category::Requests,
        "spoofed x-mcpgate-* headers with alice's token",
        whoami_req(&ctx.access_token, &SPOOFS),
        Expect::Upstream(vec![
            ("x-mcpgate-sub", Some(ctx.alice_sub.clone())),
            ("x-mcpgate-username", Some("alice".into())),
            ("x-mcpgate-groups", Some("admins".into())),
            ("x-mcpgate-client-id", Some(ctx.client_id.clone())),
            ("x-mcpgate-email", Some("alice@example.com".into())),
        ]),
    );
    let m2m = Case::new(
        Category::Requests,
        "spoofed x-mcpgate-* headers with an m2m token (no username, groups, email)",
        whoami_req(&ctx.m2m_token, &SPOOFS),
        Expect::Upstream(vec![
            ("x-mcpgate-sub", Some("m2m-client".into())),
            ("x-mcpgate-client-id", Some("m2m-client".into())),
            ("x-mcpgate-username", None),
            ("x-mcpgate-groups", None),
            ("x-mcpgate-email", None),
        ]),
    );
    let mut out = Vec::new();
    for c in [alice, m2m] {
        out.push((c.category, run_case(base_url, &c).await));
    }
    out
}

/// A token of a key the IdP retired is refused once the proxy has seen the new key set.
/// Rotates the emulator's keys (retiring the active one): run last.
pub async fn retired_key_check(base_url: &str, ctx: &HostileContext<'_>) -> Result<(), Failure> {
    let fail = |why: String| Failure {
        category: Category::Tokens,
        name: "signed by a retired key".into(),
        request: "whoami with an m2m token of the key the IdP retired".into(),
        expected: invalid_token("unknown signing key").to_string(),
        actual: String::new(),
        why,
    };
    let old = ctx
        .idp
        .mint(&MintRequest::template(
            TokenTemplate::Machine,
            "",
            "m2m-client",
        ))
        .map_err(|e| fail(format!("mint: {e}")))?;
    ctx.idp.rotate_keys(true);
    let new =
        crate::scenarios::client_credentials(ctx.idp, "m2m-client", "m2m-client-secret").await;
    let authority = authority(base_url);
    // A token of the new key makes the proxy fetch the new set (an unknown kid).
    let probe = whoami_req(&new, &[]);
    wait_until(
        Duration::from_secs(20),
        "the new key's token to be accepted",
        || {
            let (a, p) = (authority.clone(), probe.clone());
            async move { send(&a, &p).await.ok().filter(|r| r.status == 200) }
        },
    )
    .await
    .map_err(|e| fail(format!("{e}")))?;
    let case = Case::new(
        Category::Tokens,
        "signed by a retired key",
        whoami_req(&old, &[]),
        invalid_token("unknown signing key"),
    );
    run_case(base_url, &case).await
}

/// After everything, the proxy still serves: alice's token reaches whoami as alice, and the
/// OAuth endpoints still answer.
pub async fn still_serving(base_url: &str, ctx: &HostileContext<'_>) -> Result<(), Failure> {
    let c = Case::new(
        Category::Requests,
        "a valid request after the suite",
        whoami_req(&ctx.access_token, &[]),
        Expect::Upstream(vec![("x-mcpgate-sub", Some(ctx.alice_sub.clone()))]),
    );
    run_case(base_url, &c).await?;
    let c = Case::new(
        Category::Requests,
        "metadata after the suite",
        Req::new("POST", "/.well-known/oauth-authorization-server"),
        oauth(405, "invalid_request"),
    );
    run_case(base_url, &c).await
}
