//! `/register`: metadata validated, redirect-URI patterns, public clients.

use super::*;

#[test]
fn register_rejects_bad_metadata() {
    let mut w = World::new(json!({}));
    let post = |w: &mut World, body: Value| {
        w.send(
            "POST",
            "/register",
            &[("content-type", "application/json")],
            &body.to_string(),
        )
        .response()
    };
    assert_oauth_error(
        &post(&mut w, json!({"redirect_uris": ["javascript:alert(1)"]})),
        400,
        "invalid_redirect_uri",
    );
    assert_oauth_error(
        &post(&mut w, json!({"redirect_uris": ["http://evil.example/cb"]})),
        400,
        "invalid_redirect_uri",
    );
    assert_oauth_error(
        &post(&mut w, json!({"redirect_uris": []})),
        400,
        "invalid_redirect_uri",
    );
    assert_oauth_error(&post(&mut w, json!({})), 400, "invalid_redirect_uri");
    let many: Vec<String> = (0..11).map(|i| format!("https://a.example/{i}")).collect();
    assert_oauth_error(
        &post(&mut w, json!({"redirect_uris": many})),
        400,
        "invalid_redirect_uri",
    );
    assert_oauth_error(
        &post(
            &mut w,
            json!({"redirect_uris": [CLIENT_REDIRECT], "client_name": "x".repeat(201)}),
        ),
        400,
        "invalid_client_metadata",
    );
    assert_oauth_error(
        &post(
            &mut w,
            json!({"redirect_uris": [CLIENT_REDIRECT], "grant_types": ["client_credentials"]}),
        ),
        400,
        "invalid_client_metadata",
    );
    assert_oauth_error(
        &post(&mut w, json!({"redirect_uris": "https://a.example/cb"})),
        400,
        "invalid_client_metadata",
    );
    let r = w
        .send("POST", "/register", &[("content-type", "text/plain")], "{}")
        .response();
    assert_oauth_error(&r, 400, "invalid_client_metadata");
    let big = "x".repeat(64 * 1024 + 1);
    let r = w
        .send(
            "POST",
            "/register",
            &[("content-type", "application/json")],
            &big,
        )
        .response();
    assert_oauth_error(&r, 413, "invalid_request");
}

#[test]
fn register_honours_allowed_redirect_patterns_and_forces_public_clients() {
    let mut w = World::new(json!({"allowed_client_redirect_uris": ["http://127.0.0.1:*"]}));
    let body = json!({"redirect_uris": ["https://elsewhere.example/cb"]}).to_string();
    let r = w
        .send(
            "POST",
            "/register",
            &[("content-type", "application/json")],
            &body,
        )
        .response();
    assert_oauth_error(&r, 400, "invalid_redirect_uri");
    let body = json!({"redirect_uris": [CLIENT_REDIRECT], "token_endpoint_auth_method": "client_secret_basic"}).to_string();
    let r = w
        .send(
            "POST",
            "/register",
            &[("content-type", "application/json")],
            &body,
        )
        .response();
    assert_eq!(r.status, 201);
    assert_eq!(body_json(&r)["token_endpoint_auth_method"], "none");
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
}
