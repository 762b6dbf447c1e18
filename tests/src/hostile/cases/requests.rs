//! Request shape: sizes, content types, duplicates, confusing paths, methods.

use super::super::*;
use super::TapTarget as _;

pub(crate) fn request_cases(ctx: &HostileContext<'_>) -> Vec<Case> {
    use Category::Requests as Q;
    let mut v = Vec::new();
    let too_large = "request body too large";
    let worker = ctx.platform == Platform::Worker;

    // Oversized bodies.
    let big = vec![b' '; 64 * 1024 + 1];
    for (path, ct) in [
        ("/register", "application/json"),
        ("/token", "application/x-www-form-urlencoded"),
        ("/authorize", "application/x-www-form-urlencoded"),
        ("/consent", "application/x-www-form-urlencoded"),
        ("/revoke", "application/x-www-form-urlencoded"),
    ] {
        v.push(Case::new(
            Q,
            format!("{path} with a 64 KiB + 1 body"),
            Req::new("POST", path)
                .header("content-type", ct)
                .body(big.clone()),
            oauth_d(413, "invalid_request", too_large),
        ));
    }
    // Streamed, so only a capped read can refuse it. In `wrangler dev` a body much larger than
    // the cap is still being streamed through its proxy when the 413 comes, which the proxy
    // reports as a 503 of its own: the Worker gets 128 KiB, already twice the cap.
    let streamed = if worker { 128 * 1024 } else { 1024 * 1024 };
    v.push(Case::new(
        Q,
        format!("/token with a {} KiB chunked body", streamed / 1024),
        Req::new("POST", "/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(vec![b'a'; streamed])
            .chunked(),
        oauth_d(413, "invalid_request", too_large),
    ));

    // Oversized headers: the core's limits (32 KiB, 100 headers) on every route, below
    // Envoy's own (60 KiB, 100 headers), which answer first beyond them.
    let headers_too_large = oauth_d(431, "invalid_request", "request headers too large");
    // Beyond Envoy's limit: Envoy's bare 431, the core's on Workers.
    let host_limit = if worker {
        headers_too_large.clone()
    } else {
        Expect::Status(431)
    };
    v.push(Case::new(
        Q,
        "one 40 KiB header on /mcp",
        mcp_req(None).header("x-big", "a".repeat(40 * 1024)),
        headers_too_large.clone(),
    ));
    v.push(Case::new(
        Q,
        "a 40 KiB cookie on /consent",
        ctx.consent_req(&ctx.consent_a.txn, &ctx.consent_a.csrf, &[])
            .header("cookie", format!("x={}", "c".repeat(40 * 1024))),
        headers_too_large.clone(),
    ));
    v.push(Case::new(
        Q,
        "one 40 KiB header on a forwarded path",
        Req::get("/health").header("x-big", "a".repeat(40 * 1024)),
        headers_too_large.clone(),
    ));
    v.push(Case::new(
        Q,
        "one 100 KiB header",
        mcp_req(None).header("x-big", "a".repeat(100 * 1024)),
        host_limit.clone(),
    ));
    let mut many = mcp_req(None);
    for i in 0..150 {
        many = many.header(&format!("x-h{i}"), "v");
    }
    v.push(Case::new(Q, "150 headers", many, host_limit.clone()));
    v.push(Case::new(
        Q,
        "a 100 KiB cookie on /consent",
        ctx.consent_req(&ctx.consent_a.txn, &ctx.consent_a.csrf, &[])
            .header("cookie", format!("x={}", "c".repeat(100 * 1024))),
        host_limit,
    ));

    // Wrong content types and bodies.
    let form_ct = "content type must be application/x-www-form-urlencoded";
    v.push(Case::new(
        Q,
        "/token as JSON",
        Req::json(
            "/token",
            &json!({"grant_type": "authorization_code", "client_id": ctx.client_id}),
        ),
        oauth_d(400, "invalid_request", form_ct),
    ));
    v.push(Case::new(
        Q,
        "/token as text/plain",
        Req::new("POST", "/token")
            .header("content-type", "text/plain")
            .body("grant_type=authorization_code"),
        oauth_d(400, "invalid_request", form_ct),
    ));
    v.push(Case::new(
        Q,
        "/token as multipart",
        Req::new("POST", "/token")
            .header("content-type", "multipart/form-data; boundary=x")
            .body("--x\r\ncontent-disposition: form-data; name=\"grant_type\"\r\n\r\nauthorization_code\r\n--x--\r\n"),
        oauth_d(400, "invalid_request", form_ct),
    ));
    v.push(Case::new(
        Q,
        "/token without content type",
        Req::new("POST", "/token").body("grant_type=authorization_code"),
        oauth_d(400, "invalid_request", form_ct),
    ));
    v.push(Case::new(
        Q,
        "/token with two content types",
        ctx.code_form(&[])
            .header("content-type", "application/json"),
        // Joined by Envoy into one value, which is not the form type.
        Expect::OneOf(vec![
            oauth_d(400, "invalid_request", "duplicate content-type header"),
            oauth_d(400, "invalid_request", form_ct),
        ]),
    ));
    v.push(Case::new(
        Q,
        "/token body not UTF-8",
        Req::new("POST", "/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(b"grant_type=\xff\xfe".to_vec()),
        oauth_d(400, "invalid_request", "body is not UTF-8"),
    ));
    v.push(Case::new(
        Q,
        "/token with a broken percent-encoding",
        Req::new("POST", "/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=%zz&client_id=%"),
        oauth_d(400, "invalid_request", "malformed form encoding"),
    ));
    v.push(Case::new(
        Q,
        "/revoke as JSON",
        Req::json("/revoke", &json!({"token": ctx.refresh_token})),
        oauth_d(400, "invalid_request", form_ct),
    ));
    v.push(Case::new(
        Q,
        "/revoke without token",
        Req::form("/revoke", &[("client_id", &ctx.client_id)]),
        oauth_d(400, "invalid_request", "token is required"),
    ));
    let metadata = "invalid_client_metadata";
    let reg_body = json!({"redirect_uris": [REDIRECT_URI]}).to_string();
    for (name, ct, body) in [
        (
            "as a form",
            "application/x-www-form-urlencoded",
            "redirect_uris=http%3A%2F%2F127.0.0.1%2Fcb".to_owned(),
        ),
        ("as text/plain", "text/plain", reg_body.clone()),
        (
            "as application/jsonp",
            "application/jsonp",
            reg_body.clone(),
        ),
        ("with a JSON array", "application/json", "[]".to_owned()),
        (
            "with broken JSON",
            "application/json",
            "{\"redirect_uris\":[".to_owned(),
        ),
        (
            "nested 100 deep",
            "application/json",
            format!("{{\"x\":{}1{}}}", "[".repeat(100), "]".repeat(100)),
        ),
        (
            "with duplicate redirect_uris keys",
            "application/json",
            format!(
                r#"{{"redirect_uris":["{REDIRECT_URI}"],"redirect_uris":["javascript:alert(1)"]}}"#
            ),
        ),
    ] {
        v.push(Case::new(
            Q,
            format!("/register {name}"),
            Req::new("POST", "/register")
                .header("content-type", ct)
                .body(body),
            oauth(400, metadata),
        ));
    }
    v.push(Case::new(
        Q,
        "/register with a non-UTF-8 body",
        Req::new("POST", "/register")
            .header("content-type", "application/json")
            .body(b"{\"redirect_uris\":[\"http://127.0.0.1/\xff\"]}".to_vec()),
        oauth(400, metadata),
    ));
    v.push(Case::new(
        Q,
        "/register with grant_types client_credentials",
        Req::json(
            "/register",
            &json!({"redirect_uris": [REDIRECT_URI], "grant_types": ["client_credentials"]}),
        ),
        oauth(400, metadata),
    ));
    v.push(Case::new(
        Q,
        "/register with a 201-character client_name",
        Req::json(
            "/register",
            &json!({"redirect_uris": [REDIRECT_URI], "client_name": "n".repeat(201)}),
        ),
        oauth_d(400, metadata, "client_name too long"),
    ));
    v.push(Case::new(
        Q,
        "/register with control characters in client_name",
        Req::json(
            "/register",
            &json!({"redirect_uris": [REDIRECT_URI], "client_name": "evil\u{1b}[31m\r\nname"}),
        ),
        oauth_d(400, metadata, "control characters"),
    ));

    // Duplicate parameters.
    let dup = "given more than once";
    for name in [
        "grant_type",
        "code",
        "client_id",
        "code_verifier",
        "redirect_uri",
    ] {
        let mut r = ctx.code_form(&[]);
        let extra = format!("&{name}=x");
        r.body.extend_from_slice(extra.as_bytes());
        v.push(Case::new(
            Q,
            format!("/token with {name} twice"),
            r,
            oauth_d(400, "invalid_request", dup),
        ));
    }
    for name in [
        "client_id",
        "redirect_uri",
        "code_challenge",
        "state",
        "resource",
    ] {
        let target = format!("{}&{name}=x", ctx.authorize_target(&ctx.client_id, &[]));
        v.push(Case::new(
            Q,
            format!("/authorize with {name} twice"),
            Req::get(&target),
            page_d(400, "invalid_request", dup),
        ));
    }
    v.push(Case::new(
        Q,
        "/revoke with token twice",
        Req::form("/revoke", &[("token", "a"), ("token", "b")]),
        oauth_d(400, "invalid_request", dup),
    ));

    // Path confusion. On Workers the platform resolves dot segments first: the request is
    // then the resolved path's, routed and forwarded as such (what the resolved request gets).
    let ambiguous = oauth_d(400, "invalid_request", "ambiguous request path");
    let as_alice = Expect::Upstream(vec![("x-mcpgate-sub", Some(ctx.alice_sub.clone()))]);
    for (path, resolved) in [
        ("/mcp/../register", oauth(400, "invalid_redirect_uri")),
        ("//mcp", ambiguous.clone()),
        ("/%2fmcp", ambiguous.clone()),
        ("/mcp%2F..", ambiguous.clone()),
        ("/mcp/%2e%2e/register", oauth(400, "invalid_redirect_uri")),
        ("/./mcp", as_alice.clone()),
        ("/x/../mcp", as_alice.clone()),
        ("/mcp%00", ambiguous.clone()),
        ("/%2E%2E/mcp", as_alice.clone()),
        // "/", which is no route of the proxy's: forwarded, and the demo server has no page.
        ("/register/..", Expect::Status(404)),
        ("/mcp/..%5cregister", ambiguous.clone()),
    ] {
        v.push(Case::new(
            Q,
            format!("path {path}"),
            mcp_req(Some(format!("Bearer {}", ctx.access_token).as_bytes())).tap_target(path),
            if worker { resolved } else { ambiguous.clone() },
        ));
    }
    v.push(Case::new(
        Q,
        "path /mcp\\..\\register (raw backslash)",
        mcp_req(None).tap_target("/mcp\\..\\register"),
        // Envoy's HTTP/1 parser or the core: either way a 400.
        Expect::OneOf(vec![ambiguous, Expect::Status(400)]),
    ));
    v.push(Case::new(
        Q,
        "path /MCP without a token is guarded",
        mcp_req(None).tap_target("/MCP"),
        no_token(),
    ));
    v.push(Case::new(
        Q,
        "path /Mcp/sub with a forged token is guarded",
        mcp_req(Some(b"Bearer x.y.z")).tap_target("/Mcp/sub"),
        invalid_token_any(),
    ));
    v.push(
        Case::new(
            Q,
            "absolute-form target to the MCP path",
            mcp_req(None).tap_target(&format!("{}/mcp", ctx.base_url)),
            Expect::OneOf(vec![no_token(), Expect::Status(400)]),
        )
        .skip_if(
            worker,
            "workerd's HTTP server answers absolute-form targets with its own 500 (an \
             invalid-URL exception) before the Worker runs; on Cloudflare the edge parses them",
        ),
    );

    // Methods.
    for (method, path, allow) in [
        ("GET", "/register", "POST"),
        ("PUT", "/token", "POST"),
        ("GET", "/token", "POST"),
        ("DELETE", "/authorize", "GET, POST"),
        ("OPTIONS", "/authorize", "GET, POST"),
        ("GET", "/consent", "POST"),
        ("PATCH", "/revoke", "POST"),
        ("POST", "/auth/callback", "GET"),
        ("POST", "/.well-known/oauth-authorization-server", "GET"),
        ("DELETE", "/.well-known/oauth-protected-resource/mcp", "GET"),
    ] {
        v.push(
            Case::new(
                Q,
                format!("{method} {path}"),
                Req::new(method, path),
                oauth_d(405, "invalid_request", "method not allowed"),
            )
            .with_header("allow", allow),
        );
    }
    v
}
