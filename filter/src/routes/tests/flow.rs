//! The whole OAuth flow through the gate: metadata, registration, authorization, consent,
//! callback, token, the MCP endpoint, refresh and revocation.

use super::*;

#[test]
fn whole_flow_metadata_register_authorize_consent_callback_token_mcp_refresh_revoke() {
    let mut w = World::new(json!({}));

    // Unauthenticated: 401 with the resource metadata URL and the scope.
    let r = w.send("POST", "/mcp", &[], "{}").response();
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\", scope=\"openid\"")
    );

    // Discovery.
    let prm = body_json(
        &w.get("/.well-known/oauth-protected-resource/mcp")
            .response(),
    );
    assert_eq!(prm["resource"], "https://mcp.example.com/mcp");
    assert_eq!(prm["authorization_servers"], json!([BASE]));
    assert_eq!(prm["bearer_methods_supported"], json!(["header"]));
    let asm = body_json(&w.get("/.well-known/oauth-authorization-server").response());
    assert_eq!(asm["issuer"], BASE);
    assert_eq!(asm["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        asm["registration_endpoint"],
        "https://mcp.example.com/register"
    );
    assert_eq!(asm["authorization_response_iss_parameter_supported"], true);
    assert_eq!(asm["client_id_metadata_document_supported"], true);
    assert!(asm.get("jwks_uri").is_none(), "HS256: no public JWKS");
    assert_eq!(
        body_json(&w.get("/.well-known/openid-configuration").response()),
        asm
    );

    // Register, authorize, consent.
    let (client_id, idp) = w.through_consent();
    assert_eq!(idp.status, 302);
    let idp_url = location(&idp);
    assert!(
        idp_url.starts_with("https://auth.example.com/oauth2/authorize?"),
        "{idp_url}"
    );
    let q = query_of(idp_url);
    assert_eq!(q.get("client_id"), Some(vectors::APP_CLIENT));
    assert_eq!(
        q.get("redirect_uri"),
        Some("https://mcp.example.com/auth/callback")
    );
    assert_eq!(q.get("code_challenge_method"), Some("S256"));
    assert_eq!(q.get("scope"), Some("openid"));
    assert!(
        w.cookies.iter().any(|(n, _)| n == "__Host-mcpgate-binding"),
        "binding cookie set"
    );

    // Callback: the code exchange is a Fetch answered by the IdP, then a redirect with our code.
    let state = q.get("state").unwrap().to_string();
    let cb = w
        .get(&format!(
            "/auth/callback?code=idp-code&state={}",
            form::encode(&state)
        ))
        .response();
    assert_eq!(cb.status, 302);
    assert_eq!(w.fetches.len(), 1);
    let cbq = query_of(location(&cb));
    assert_eq!(cbq.get("iss"), Some(BASE));
    assert_eq!(cbq.get("state"), Some("client-state"));
    assert!(
        !w.cookies.iter().any(|(n, _)| n == "__Host-mcpgate-binding"),
        "binding cookie cleared"
    );
    let code = cbq.get("code").unwrap().to_string();

    // Token.
    let r = w.redeem(&client_id, &code);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let tokens = body_json(&r);
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3600);
    // The IdP granted "openid email"; the client asked for "openid" only.
    assert_eq!(tokens["scope"], "openid");
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    assert!(
        !refresh.contains("upstream-refresh"),
        "upstream token sealed"
    );

    // The access token is a JWT bound to the resource, with kid.
    let parts: Vec<&str> = access.split('.').collect();
    let header: Value =
        serde_json::from_slice(&crate::encoding::b64url_decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header["alg"], "HS256");
    assert!(header["kid"].is_string());
    let claims: Value =
        serde_json::from_slice(&crate::encoding::b64url_decode(parts[1]).unwrap()).unwrap();
    assert_eq!(claims["aud"], "https://mcp.example.com/mcp");
    assert_eq!(claims["iss"], BASE);
    assert_eq!(claims["client_id"], client_id.as_str());
    assert_eq!(claims["username"], "alice");
    assert_eq!(claims["groups"], json!(["admins"]));
    assert_eq!(claims["email"], "alice@example.com");

    // MCP request: forwarded with identity headers, token and spoofed headers removed.
    let f = w.mcp(&access).forward();
    assert!(f.remove_headers.iter().any(|h| h == "authorization"));
    assert!(f.remove_headers.iter().any(|h| h == "x-mcpgate-sub"));
    let set: alloc::collections::BTreeMap<_, _> = f.headers_to_set().cloned().collect();
    assert_eq!(set["x-mcpgate-sub"], "6a1f1d2e-1111-2222-3333-444455556666");
    assert_eq!(set["x-mcpgate-username"], "alice");
    assert_eq!(set["x-mcpgate-groups"], "admins");
    assert_eq!(set["x-mcpgate-scope"], "openid");
    assert_eq!(set["x-mcpgate-client-id"], client_id.as_str());
    assert_eq!(set["x-mcpgate-email"], "alice@example.com");

    // Refresh: the upstream refresh token is used, a new refresh token is issued.
    w.now += 600;
    let r = w
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("client_id", &client_id),
            ],
        )
        .response();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(w.fetches.len(), 2);
    let t2 = body_json(&r);
    let refresh2 = t2["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(refresh2, refresh, "refresh tokens rotate");
    assert!(matches!(
        w.mcp(t2["access_token"].as_str().unwrap()),
        Final::Forward(_)
    ));

    // Revoke the new refresh token: the family is gone.
    let r = w
        .post_form(
            "/revoke",
            &[("token", &refresh2), ("client_id", &client_id)],
        )
        .response();
    assert_eq!(r.status, 200);
    let r = w
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh2),
                ("client_id", &client_id),
            ],
        )
        .response();
    assert_oauth_error(&r, 400, "invalid_grant");
}
