//! The Cognito emulator against Cognito's documented behaviour, over real HTTP.

use std::time::{Duration, Instant};

use mcpgate_e2e::cognito::{
    hosted_ui_login, pkce_pair, CognitoConfig, CognitoEmulator, EmulatorHandle, EndpointGroup,
    FaultMode, MintRequest, TokenTemplate,
};
use mcpgate_e2e::harness::http_client;
use mcpgate_e2e::jwt::{decode_unverified, RsaJwtKey};
use serde_json::{json, Value};

const WEB: &str = "mcpgate-web";
const WEB_SECRET: &str = "mcpgate-web-secret";
const REDIRECT: &str = "http://127.0.0.1/auth/callback";
const ALICE_SUB: &str = "11111111-1111-4111-8111-111111111111";

async fn start() -> EmulatorHandle {
    CognitoEmulator::start(CognitoConfig::default())
        .await
        .unwrap()
}

fn authorize_url(idp: &EmulatorHandle, extra: &[(&str, &str)]) -> String {
    let mut u = url::Url::parse(&idp.authorization_endpoint()).unwrap();
    u.query_pairs_mut()
        .append_pair("client_id", WEB)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("response_type", "code");
    for (k, v) in extra {
        u.query_pairs_mut().append_pair(k, v);
    }
    u.to_string()
}

fn query_param(u: &url::Url, name: &str) -> Option<String> {
    u.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

async fn token_request(
    idp: &EmulatorHandle,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let mut req = http_client().post(idp.token_endpoint()).form(form);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

/// Sign alice in with PKCE and return (code, verifier).
async fn alice_code(idp: &EmulatorHandle, scope: &str) -> (String, String) {
    let pkce = pkce_pair();
    let url = authorize_url(
        idp,
        &[
            ("scope", scope),
            ("state", "st-123"),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let loc = hosted_ui_login(&http_client(), &url, "alice", "alice-password")
        .await
        .unwrap();
    assert!(loc.as_str().starts_with(REDIRECT), "{loc}");
    assert_eq!(query_param(&loc, "state").as_deref(), Some("st-123"));
    (query_param(&loc, "code").unwrap(), pkce.verifier)
}

async fn exchange(idp: &EmulatorHandle, code: &str, verifier: &str) -> (u16, Value) {
    token_request(
        idp,
        Some((WEB, WEB_SECRET)),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ],
    )
    .await
}

fn names(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

#[tokio::test]
async fn discovery_and_jwks_documents() {
    let idp = start().await;
    let http = http_client();
    let d: Value = http
        .get(idp.discovery_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let base = idp.base_url();
    assert_eq!(d["issuer"], idp.issuer());
    assert_eq!(idp.issuer(), format!("{base}/us-east-1_McpGate01"));
    assert_eq!(
        d["authorization_endpoint"],
        format!("{base}/oauth2/authorize")
    );
    assert_eq!(d["token_endpoint"], format!("{base}/oauth2/token"));
    assert_eq!(d["revocation_endpoint"], format!("{base}/oauth2/revoke"));
    assert_eq!(d["userinfo_endpoint"], format!("{base}/oauth2/userInfo"));
    assert_eq!(d["jwks_uri"], idp.jwks_uri());
    assert_eq!(d["id_token_signing_alg_values_supported"], json!(["RS256"]));
    assert_eq!(d["subject_types_supported"], json!(["public"]));

    let jwks: Value = http
        .get(idp.jwks_uri())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let k = keys[0].as_object().unwrap();
    let mut fields: Vec<&str> = k.keys().map(String::as_str).collect();
    fields.sort();
    assert_eq!(fields, vec!["alg", "e", "kid", "kty", "n", "use"]);
    assert_eq!(k["kty"], "RSA");
    assert_eq!(k["alg"], "RS256");
    assert_eq!(k["use"], "sig");
    assert_eq!(k["e"], "AQAB");
    assert_eq!(k["kid"], idp.keys().active_kid.as_str());

    // Another pool id is not served.
    let r = http
        .get(format!("{base}/us-east-1_Other/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn authorization_code_with_pkce_yields_cognito_shaped_tokens() {
    let idp = start().await;
    let (code, verifier) = alice_code(&idp, "openid email").await;
    let (status, body) = exchange(&idp, &code, &verifier).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let refresh = body["refresh_token"].as_str().unwrap();
    assert_eq!(
        refresh.split('.').count(),
        5,
        "opaque JWE-shaped refresh token"
    );

    let jwk_kid = idp.keys().active_kid;
    let at = decode_unverified(body["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(at.header["alg"], "RS256");
    assert_eq!(at.kid(), Some(jwk_kid.as_str()));
    assert_eq!(
        at.claim_names(),
        names(&[
            "sub",
            "cognito:groups",
            "iss",
            "version",
            "client_id",
            "origin_jti",
            "event_id",
            "token_use",
            "scope",
            "auth_time",
            "exp",
            "iat",
            "jti",
            "username"
        ])
    );
    assert!(
        !at.claims.contains_key("aud"),
        "Cognito access tokens carry no aud"
    );
    assert_eq!(at.claims["token_use"], "access");
    assert_eq!(at.claims["client_id"], WEB);
    assert_eq!(at.claims["sub"], ALICE_SUB);
    assert_eq!(at.claims["username"], "alice");
    assert_eq!(at.claims["cognito:groups"], json!(["admins"]));
    assert_eq!(at.claims["scope"], "openid email");
    assert_eq!(at.claims["version"], 2);
    assert_eq!(at.claims["iss"], idp.issuer());
    let iat = at.claims["iat"].as_u64().unwrap();
    assert_eq!(at.claims["exp"].as_u64().unwrap(), iat + 3600);

    let id = decode_unverified(body["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(
        id.claim_names(),
        names(&[
            "sub",
            "cognito:groups",
            "email_verified",
            "iss",
            "cognito:username",
            "origin_jti",
            "aud",
            "event_id",
            "token_use",
            "auth_time",
            "exp",
            "iat",
            "jti",
            "email"
        ])
    );
    assert_eq!(id.claims["aud"], WEB);
    assert_eq!(id.claims["token_use"], "id");
    assert_eq!(id.claims["cognito:username"], "alice");
    assert_eq!(id.claims["email"], "alice@example.com");
    assert_eq!(id.claims["email_verified"], true);
    assert_eq!(id.claims["origin_jti"], at.claims["origin_jti"]);
    assert_ne!(id.claims["jti"], at.claims["jti"]);

    // The signature verifies with the published JWK's key.
    let key = RsaJwtKey::from_pkcs8_pem(
        jwk_kid.clone(),
        mcpgate_e2e::cognito::config::DEFAULT_KEYS_PEM[0],
    )
    .unwrap();
    assert!(key.verify_signature(body["access_token"].as_str().unwrap()));
    assert_eq!(key.jwk(), idp.jwks()["keys"][0]);

    // The code is single-use.
    let (status, body) = exchange(&idp, &code, &verifier).await;
    assert_eq!((status, body), (400, json!({"error": "invalid_grant"})));
}

#[tokio::test]
async fn user_without_groups_has_no_groups_claim_and_no_openid_means_no_id_token() {
    let idp = start().await;
    let pkce = pkce_pair();
    let url = authorize_url(
        &idp,
        &[
            ("scope", "email"),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let loc = hosted_ui_login(&http_client(), &url, "bob", "bob-password")
        .await
        .unwrap();
    assert_eq!(query_param(&loc, "state"), None);
    let code = query_param(&loc, "code").unwrap();
    let (status, body) = exchange(&idp, &code, &pkce.verifier).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("id_token").is_none());
    let at = decode_unverified(body["access_token"].as_str().unwrap()).unwrap();
    assert!(!at.claims.contains_key("cognito:groups"));
    assert_eq!(at.claims["username"], "bob");
    assert_eq!(at.claims["scope"], "email");
}

#[tokio::test]
async fn pkce_and_redirect_uri_and_client_are_checked_at_the_token_endpoint() {
    let idp = start().await;
    // wrong verifier
    let (code, _verifier) = alice_code(&idp, "openid").await;
    let (s, b) = exchange(&idp, &code, "x".repeat(43).as_str()).await;
    assert_eq!((s, b), (400, json!({"error": "invalid_grant"})));
    // missing verifier
    let (code, _) = alice_code(&idp, "openid").await;
    let (s, b) = token_request(
        &idp,
        Some((WEB, WEB_SECRET)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!((s, b), (400, json!({"error": "invalid_grant"})));
    // redirect_uri mismatch
    let (code, verifier) = alice_code(&idp, "openid").await;
    let (s, b) = token_request(
        &idp,
        Some((WEB, WEB_SECRET)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://localhost/auth/callback"),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!((s, b), (400, json!({"error": "invalid_grant"})));
    // the code of another client
    let (code, verifier) = alice_code(&idp, "openid").await;
    let (s, b) = token_request(
        &idp,
        Some(("other-client", "other-client-secret")),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!((s, b), (400, json!({"error": "invalid_grant"})));
    // client_secret_post works as well as basic
    let (code, verifier) = alice_code(&idp, "openid").await;
    let (s, b) = token_request(
        &idp,
        None,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", WEB),
            ("client_secret", WEB_SECRET),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(s, 200, "{b}");
}

#[tokio::test]
async fn refresh_does_not_rotate_and_revoke_ends_the_session() {
    let idp = start().await;
    let (code, verifier) = alice_code(&idp, "openid email").await;
    let (_, first) = exchange(&idp, &code, &verifier).await;
    let rt = first["refresh_token"].as_str().unwrap().to_owned();
    let first_at = decode_unverified(first["access_token"].as_str().unwrap()).unwrap();

    let refresh = |rt: String| {
        let idp = &idp;
        async move {
            token_request(
                idp,
                Some((WEB, WEB_SECRET)),
                &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
            )
            .await
        }
    };
    let (s, second) = refresh(rt.clone()).await;
    assert_eq!(s, 200, "{second}");
    assert!(
        second.get("refresh_token").is_none(),
        "Cognito does not rotate"
    );
    assert!(second["id_token"].is_string());
    let at = decode_unverified(second["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(at.claims["origin_jti"], first_at.claims["origin_jti"]);
    assert_eq!(at.claims["auth_time"], first_at.claims["auth_time"]);
    assert_ne!(at.claims["jti"], first_at.claims["jti"]);
    assert_eq!(at.claims["scope"], "openid email");
    // The same refresh token keeps working.
    assert_eq!(refresh(rt.clone()).await.0, 200);

    // userInfo with the access token.
    let ui = http_client()
        .get(idp.userinfo_endpoint())
        .bearer_auth(second["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(ui.status(), 200);
    let ui: Value = ui.json().await.unwrap();
    assert_eq!(
        ui,
        json!({"sub": ALICE_SUB, "email_verified": "true", "email": "alice@example.com", "username": "alice"})
    );

    // Another client cannot use or revoke it.
    let (s, b) = token_request(
        &idp,
        Some(("other-client", "other-client-secret")),
        &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
    )
    .await;
    assert_eq!((s, b), (400, json!({"error": "invalid_grant"})));
    let r = http_client()
        .post(idp.revocation_endpoint())
        .basic_auth("other-client", Some("other-client-secret"))
        .form(&[("token", rt.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "unauthorized_client"})
    );

    // An access token is not revocable.
    let r = http_client()
        .post(idp.revocation_endpoint())
        .basic_auth(WEB, Some(WEB_SECRET))
        .form(&[("token", second["access_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "unsupported_token_type"})
    );

    // Revoke.
    let r = http_client()
        .post(idp.revocation_endpoint())
        .basic_auth(WEB, Some(WEB_SECRET))
        .form(&[("token", rt.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "");
    let (s, b) = refresh(rt.clone()).await;
    assert_eq!((s, b), (400, json!({"error": "invalid_grant"})));
    // Access tokens of the revoked session stop working at userInfo.
    let ui = http_client()
        .get(idp.userinfo_endpoint())
        .bearer_auth(second["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(ui.status(), 401);
    assert!(ui.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer error=\"invalid_token\""));
    assert_eq!(ui.json::<Value>().await.unwrap()["error"], "invalid_token");
}

#[tokio::test]
async fn client_credentials_issues_machine_tokens() {
    let idp = start().await;
    let (s, body) = token_request(
        &idp,
        Some(("m2m-client", "m2m-client-secret")),
        &[
            ("grant_type", "client_credentials"),
            ("scope", "https://api.example/read"),
        ],
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert!(body.get("id_token").is_none());
    assert!(body.get("refresh_token").is_none());
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let at = decode_unverified(body["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(
        at.claim_names(),
        names(&[
            "sub",
            "token_use",
            "scope",
            "auth_time",
            "iss",
            "exp",
            "iat",
            "version",
            "jti",
            "client_id"
        ])
    );
    assert_eq!(at.claims["sub"], "m2m-client");
    assert_eq!(at.claims["client_id"], "m2m-client");
    assert_eq!(at.claims["token_use"], "access");
    assert_eq!(at.claims["scope"], "https://api.example/read");

    // No scope: all of the client's resource-server scopes.
    let (_, body) = token_request(
        &idp,
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "m2m-client"),
            ("client_secret", "m2m-client-secret"),
        ],
    )
    .await;
    let at = decode_unverified(body["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(
        at.claims["scope"],
        "https://api.example/read https://api.example/write"
    );

    // openid is not a client_credentials scope; nor is a scope the client lacks.
    for scope in ["openid", "https://api.example/admin"] {
        let (s, b) = token_request(
            &idp,
            Some(("m2m-client", "m2m-client-secret")),
            &[("grant_type", "client_credentials"), ("scope", scope)],
        )
        .await;
        assert_eq!((s, b), (400, json!({"error": "invalid_scope"})), "{scope}");
    }
    // The web client may not use client_credentials.
    let (s, b) = token_request(
        &idp,
        Some((WEB, WEB_SECRET)),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!((s, b), (400, json!({"error": "unauthorized_client"})));
}

#[tokio::test]
async fn token_endpoint_error_bodies() {
    let idp = start().await;
    type Case<'a> = (Option<(&'a str, &'a str)>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            Some(("m2m-client", "wrong")),
            vec![("grant_type", "client_credentials")],
            "invalid_client",
        ),
        (
            Some(("nobody", "x")),
            vec![("grant_type", "client_credentials")],
            "invalid_client",
        ),
        (
            None,
            vec![("grant_type", "client_credentials")],
            "invalid_client",
        ),
        (
            Some(("m2m-client", "m2m-client-secret")),
            vec![],
            "invalid_request",
        ),
        (
            Some(("m2m-client", "m2m-client-secret")),
            vec![("grant_type", "password")],
            "unsupported_grant_type",
        ),
        (
            Some((WEB, WEB_SECRET)),
            vec![
                ("grant_type", "authorization_code"),
                ("redirect_uri", REDIRECT),
            ],
            "invalid_request",
        ),
        (
            Some((WEB, WEB_SECRET)),
            vec![
                ("grant_type", "authorization_code"),
                ("code", "nope"),
                ("redirect_uri", REDIRECT),
            ],
            "invalid_grant",
        ),
        (
            Some((WEB, WEB_SECRET)),
            vec![("grant_type", "refresh_token"), ("refresh_token", "nope")],
            "invalid_grant",
        ),
        (
            Some(("m2m-client", "m2m-client-secret")),
            vec![("grant_type", "refresh_token"), ("refresh_token", "x")],
            "unauthorized_client",
        ),
    ];
    for (basic, form, error) in cases {
        let (s, b) = token_request(&idp, basic, &form).await;
        assert_eq!(
            (s, b),
            (400, json!({ "error": error })),
            "{basic:?} {form:?}"
        );
    }
    // Not form-encoded.
    let r = http_client()
        .post(idp.token_endpoint())
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "invalid_request"})
    );
}

#[tokio::test]
async fn authorize_validation_and_login_errors() {
    let idp = start().await;
    let http = http_client();
    // unknown client and unregistered redirect_uri: error page, not the client
    for (client, redirect, error) in [
        ("nobody", REDIRECT, "invalid_request"),
        (WEB, "http://evil.example/cb", "redirect_mismatch"),
    ] {
        let mut u = url::Url::parse(&idp.authorization_endpoint()).unwrap();
        u.query_pairs_mut()
            .append_pair("client_id", client)
            .append_pair("redirect_uri", redirect)
            .append_pair("response_type", "code");
        let r = http.get(u).send().await.unwrap();
        assert_eq!(r.status(), 302);
        let loc = r.headers()["location"].to_str().unwrap().to_owned();
        assert!(
            loc.starts_with(&format!("{}/error?error={error}", idp.base_url())),
            "{loc}"
        );
        let page = http.get(&loc).send().await.unwrap();
        assert_eq!(page.status(), 400);
        assert!(page.text().await.unwrap().contains(error));
    }
    // errors redirected to a valid redirect_uri, with state
    for (extra, error) in [
        (
            vec![("scope", "https://api.example/write")],
            "invalid_scope",
        ),
        (
            vec![
                ("code_challenge", "abc"),
                ("code_challenge_method", "plain"),
            ],
            "invalid_request",
        ),
    ] {
        let mut extra = extra;
        extra.push(("state", "s1"));
        let r = http.get(authorize_url(&idp, &extra)).send().await.unwrap();
        assert_eq!(r.status(), 302);
        let loc = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
        assert!(loc.as_str().starts_with(REDIRECT));
        assert_eq!(query_param(&loc, "error").as_deref(), Some(error));
        assert_eq!(query_param(&loc, "state").as_deref(), Some("s1"));
    }
    let mut u = url::Url::parse(&idp.authorization_endpoint()).unwrap();
    u.query_pairs_mut()
        .append_pair("client_id", WEB)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("response_type", "token");
    let r = http.get(u).send().await.unwrap();
    let loc = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(
        query_param(&loc, "error").as_deref(),
        Some("unsupported_response_type")
    );
    // the login page carries the request in hidden fields
    let page = http
        .get(authorize_url(&idp, &[("state", "a\"b")]))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"name="username""#) && page.contains(r#"name="password""#));
    assert!(page.contains(r#"<input type="hidden" name="state" value="a&quot;b">"#));
    // wrong password re-renders the form
    let err = hosted_ui_login(&http, &authorize_url(&idp, &[]), "alice", "nope")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("Incorrect username or password"),
        "{err}"
    );
    // redirect URIs can be added at run time (exact match)
    let cb = "http://127.0.0.1:45678/auth/callback";
    let mut u = url::Url::parse(&idp.authorization_endpoint()).unwrap();
    u.query_pairs_mut()
        .append_pair("client_id", WEB)
        .append_pair("redirect_uri", cb)
        .append_pair("response_type", "code");
    let r = http.get(u.clone()).send().await.unwrap();
    assert_eq!(r.status(), 302, "not registered yet");
    idp.add_redirect_uri(WEB, cb).unwrap();
    let loc = hosted_ui_login(&http, u.as_str(), "alice", "alice-password")
        .await
        .unwrap();
    assert!(loc.as_str().starts_with(&format!("{cb}?code=")), "{loc}");
}

#[tokio::test]
async fn key_rotation_is_visible_in_the_jwks() {
    let idp = start().await;
    let http = http_client();
    let jwks_kids = || async {
        let v: Value = http
            .get(idp.jwks_uri())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let all = idp.keys().all_kids;
    assert_eq!(jwks_kids().await, vec![all[0].clone()]);

    let info = idp.rotate_keys(false);
    assert_eq!(info.active_kid, all[1]);
    assert_eq!(jwks_kids().await, vec![all[1].clone(), all[0].clone()]);
    let t = idp.issue_tokens(WEB, "alice", None).unwrap();
    assert_eq!(
        decode_unverified(&t.access_token).unwrap().kid(),
        Some(all[1].as_str())
    );

    // Over HTTP, retiring the old keys.
    let r: Value = http
        .post(format!("{}/__control/rotate-keys", idp.base_url()))
        .json(&json!({"retire_old": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["active_kid"], all[2].as_str());
    assert_eq!(jwks_kids().await, vec![all[2].clone()]);
}

#[tokio::test]
async fn mint_makes_arbitrary_tokens() {
    let idp = start().await;
    let expired = idp
        .mint(&MintRequest::template(TokenTemplate::Access, "alice", WEB).claim("exp", json!(1000)))
        .unwrap();
    let d = decode_unverified(&expired).unwrap();
    assert_eq!(d.claims["exp"], 1000);
    assert_eq!(d.claims["token_use"], "access");
    assert_eq!(d.claims["client_id"], WEB);
    let ui = http_client()
        .get(idp.userinfo_endpoint())
        .bearer_auth(&expired)
        .send()
        .await
        .unwrap();
    assert_eq!(ui.status(), 401);

    let id = idp
        .mint(&MintRequest::template(
            TokenTemplate::Id,
            "bob",
            "other-client",
        ))
        .unwrap();
    let d = decode_unverified(&id).unwrap();
    assert_eq!(d.claims["aud"], "other-client");
    assert_eq!(d.claims["token_use"], "id");

    // Signed with key 3 (unpublished), with a lying header, over HTTP.
    let r: Value = http_client()
        .post(format!("{}/__control/mint", idp.base_url()))
        .json(&json!({"claims": {"sub": "x", "aud": ["a", "b"]}, "key": 3, "alg": "none", "kid": "nope"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let d = decode_unverified(r["token"].as_str().unwrap()).unwrap();
    assert_eq!(d.header["alg"], "none");
    assert_eq!(d.kid(), Some("nope"));
    assert_eq!(d.claim_names(), vec!["aud", "sub"]);
    let key3 =
        RsaJwtKey::from_pkcs8_pem("k3", mcpgate_e2e::cognito::config::DEFAULT_KEYS_PEM[2]).unwrap();
    assert!(key3.verify_signature(r["token"].as_str().unwrap()));

    // Removing a claim with null.
    let t = idp
        .mint(
            &MintRequest::template(TokenTemplate::Machine, "", "m2m-client")
                .claim("client_id", Value::Null),
        )
        .unwrap();
    assert!(!decode_unverified(&t)
        .unwrap()
        .claims
        .contains_key("client_id"));
}

#[tokio::test]
async fn fault_modes_and_request_counters() {
    let idp = start().await;
    let http = http_client();
    let get_jwks = || http.get(idp.jwks_uri()).send();

    assert_eq!(get_jwks().await.unwrap().status(), 200);
    assert_eq!(idp.stats().count("jwks"), 1);

    idp.set_mode(EndpointGroup::Jwks, FaultMode::Error5xx { status: 500 });
    let r = get_jwks().await.unwrap();
    assert_eq!(r.status(), 500);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "server_error"})
    );
    // Other groups are unaffected.
    assert_eq!(
        http.get(idp.discovery_url()).send().await.unwrap().status(),
        200
    );

    idp.set_mode(EndpointGroup::Jwks, FaultMode::Down);
    let e = get_jwks().await.unwrap_err();
    assert!(!e.is_timeout(), "{e:?}");
    idp.set_mode(EndpointGroup::Jwks, FaultMode::Reset);
    assert!(get_jwks().await.is_err());

    idp.set_mode(EndpointGroup::Jwks, FaultMode::Slow { delay_ms: 300 });
    let t0 = Instant::now();
    assert_eq!(get_jwks().await.unwrap().status(), 200);
    assert!(t0.elapsed() >= Duration::from_millis(300));

    // `all` applies where no group-specific mode is set; over HTTP.
    let set = |body: Value| {
        http.post(format!("{}/__control/mode", idp.base_url()))
            .json(&body)
            .send()
    };
    assert_eq!(
        set(json!({"group": "jwks", "mode": "normal"}))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        set(json!({"group": "all", "mode": "error5xx"}))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        http.get(idp.discovery_url()).send().await.unwrap().status(),
        503
    );
    assert_eq!(get_jwks().await.unwrap().status(), 200);
    let r = http
        .post(idp.token_endpoint())
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);

    let stats: Value = http
        .get(format!("{}/__control/stats", idp.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["requests"]["jwks"], 6);
    assert_eq!(stats["requests"]["discovery"], 2);
    assert_eq!(stats["requests"]["token"], 1);

    let r = http
        .post(format!("{}/__control/reset", idp.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        http.get(idp.discovery_url()).send().await.unwrap().status(),
        200
    );
    assert_eq!(idp.stats().count("discovery"), 1);
    assert_eq!(idp.stats().count("jwks"), 0);
}
