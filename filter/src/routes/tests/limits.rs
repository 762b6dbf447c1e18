//! Limits on every route: header sizes and counts (431), rate limits per address and per
//! client (429 with Retry-After).

use super::*;

#[test]
fn oversized_or_too_many_headers_are_431_on_every_route() {
    let mut w = World::new(json!({"max_header_bytes": 4096, "max_headers": 16}));
    let big = "a".repeat(4096);
    let many: Vec<(String, String)> = (0..17).map(|i| (format!("x-h{i}"), "v".into())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    for (method, path) in [
        ("POST", "/mcp"),
        ("POST", "/token"),
        ("GET", "/authorize"),
        ("GET", "/.well-known/oauth-authorization-server"),
        ("GET", "/anything-else"),
    ] {
        let r = w.send(method, path, &[("x-big", &big)], "").response();
        assert_oauth_error(&r, 431, "invalid_request");
        assert_eq!(
            body_json(&r)["error_description"],
            "request headers too large"
        );
        let r = w.send(method, path, &many, "").response();
        assert_oauth_error(&r, 431, "invalid_request");
    }
    // Just inside both limits; pseudo-headers are the host's to limit and do not count.
    let mut inside = many[..16].to_vec();
    inside.push((":path", &big));
    assert_eq!(w.send("POST", "/mcp", &inside, "").response().status, 401);
    let fits = "a".repeat(4096 - "x-big".len());
    let r = w.send("POST", "/mcp", &[("x-big", &fits)], "").response();
    assert_eq!(r.status, 401);
}

#[test]
fn rate_limits_per_address_and_per_client_answer_429_with_retry_after() {
    let mut w = World::new(json!({"rate_limit_per_address": 3, "rate_limit_per_client": 100}));
    let body = json!({"redirect_uris": [CLIENT_REDIRECT]}).to_string();
    for _ in 0..3 {
        let r = w
            .send(
                "POST",
                "/register",
                &[("content-type", "application/json")],
                &body,
            )
            .response();
        assert_eq!(r.status, 201);
    }
    let r = w
        .send(
            "POST",
            "/register",
            &[("content-type", "application/json")],
            &body,
        )
        .response();
    assert_oauth_error(&r, 429, "temporarily_unavailable");
    assert_eq!(r.header("retry-after"), Some("20"));
    assert_eq!(r.reason, Some("rate_limited"));
    // The bucket refills: one request per 20 s.
    w.now += 20;
    let r = w
        .send(
            "POST",
            "/register",
            &[("content-type", "application/json")],
            &body,
        )
        .response();
    assert_eq!(r.status, 201);

    let mut w = World::new(json!({"rate_limit_per_address": 1000, "rate_limit_per_client": 2}));
    let client = w.register();
    for _ in 0..2 {
        assert_eq!(
            w.get(&World::authorize_query(&client, &[]))
                .response()
                .status,
            200
        );
    }
    let r = w.get(&World::authorize_query(&client, &[])).response();
    assert_eq!(r.status, 429, "per client id");
    assert_eq!(r.header("retry-after"), Some("30"));
    let other = w.register();
    assert_eq!(
        w.get(&World::authorize_query(&other, &[]))
            .response()
            .status,
        200,
        "other clients unaffected"
    );
    // Without a store, nothing is limited by the core.
    let mut w = World::with_store(json!({"rate_limit_per_address": 1}), false);
    for _ in 0..3 {
        let r = w
            .send(
                "POST",
                "/register",
                &[("content-type", "application/json")],
                &body,
            )
            .response();
        assert_eq!(r.status, 201);
    }
}
