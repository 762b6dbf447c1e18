//! The security review's cases: spoofed identity headers and the proxy's cookies on every
//! route, metadata documents on the proxy's own host, values of another deployment.

use super::super::*;

pub(crate) const SPOOFS: [(&str, &str); 7] = [
    ("x-mcpgate-sub", "admin"),
    ("X-Mcpgate-Username", "mallory"),
    ("x-mcpgate-groups", "root"),
    ("x-mcpgate-scope", "admin"),
    ("X-MCPGATE-CLIENT-ID", "evil"),
    ("x-mcpgate-email", "evil@example.com"),
    ("x-mcpgate-sub", "second-spoof"),
];

/// The security review's findings (issue 14) that a single request can show: sealed values of
/// another deployment, the proxy's cookies and namespace headers reaching the origin, Client
/// ID Metadata Documents on the proxy's or the origin's own host. (Errors for unapproved
/// clients never redirecting are in [`pkce_cases`]; spoofs on the public path are checked on
/// the origin's log by [`assert_origin_saw_only_verified`].)
pub(crate) fn security_cases(ctx: &HostileContext<'_>) -> Vec<Case> {
    let mut v = Vec::new();
    let elsewhere = |kind, value: &str| ctx.resealed(kind, value, Reseal::OtherDeployment);
    v.push(Case::new(
        Category::Sealed,
        "client_id of another deployment sharing the secret",
        Req::get(&ctx.authorize_target(&elsewhere(SealKind::ClientId, &ctx.client_id), &[])),
        page_d(400, "invalid_client", "unknown client_id"),
    ));
    v.push(Case::new(
        Category::Sealed,
        "code of another deployment sharing the secret",
        ctx.code_form(&[("code", &elsewhere(SealKind::Code, &ctx.code))]),
        oauth_d(400, "invalid_grant", "invalid authorization code"),
    ));
    v.push(Case::new(
        Category::Sealed,
        "refresh token of another deployment sharing the secret",
        ctx.refresh_form(
            &elsewhere(SealKind::RefreshToken, &ctx.refresh_token),
            &ctx.client_id,
        ),
        oauth_d(400, "invalid_grant", "invalid refresh token"),
    ));
    let (binding_name, _) = &ctx.approved_a.binding_cookie;
    let cookies = format!(
        "{binding_name}=x; app=1; mcpgate-csrf=y; __Host-mcpgate-approvals=z; mcpgate-binding=w"
    );
    v.push(Case::new(
        Category::Requests,
        "the proxy's cookies with alice's token: only the application's reach the origin",
        whoami_req(&ctx.access_token, &[("cookie", &cookies)]),
        Expect::Upstream(vec![
            ("cookie", Some("app=1".into())),
            ("x-mcpgate-sub", Some(ctx.alice_sub.clone())),
        ]),
    ));
    v.push(Case::new(
        Category::Requests,
        "only the proxy's cookies with alice's token: no Cookie at the origin",
        whoami_req(
            &ctx.access_token,
            &[("cookie", "mcpgate-csrf=y; __Host-mcpgate-binding=w")],
        ),
        Expect::Upstream(vec![("cookie", None)]),
    ));
    v.push(Case::new(
        Category::Requests,
        "headers of the proxy's namespace that are not identity headers",
        whoami_req(
            &ctx.access_token,
            &[("x-mcpgate-tenant", "evil"), ("X-Mcpgate-Role", "admin")],
        ),
        Expect::Upstream(vec![("x-mcpgate-tenant", None), ("x-mcpgate-role", None)]),
    ));
    // The proxy's own host (in these stacks also the origin's: 127.0.0.1). Never fetched.
    let own = format!("https://{}/meta.json", authority(&ctx.base_url));
    v.push(Case::new(
        Category::Pkce,
        "client metadata document on the proxy's own host and port (the origin's host too)",
        Req::get(&ctx.authorize_target(&own, &[])),
        // Refused before any fetch: as loopback, or (where private hosts are allowed) as the
        // proxy's own host.
        Expect::OneOf(vec![
            page_d(400, "invalid_client", "own host"),
            page_d(400, "invalid_client", "private or loopback"),
        ]),
    ));
    v.push(Case::new(
        Category::Requests,
        "public path with spoofed identity headers and the proxy's cookies",
        Req::get("/healthz")
            .header("x-mcpgate-sub", "admin")
            .header("x_mcpgate_groups", "ops")
            .header("cookie", cookies.as_str()),
        Expect::Status(200),
    ));
    v
}
