//! Real clients' shapes through the core: registrations as Claude, ChatGPT, Cursor, VS Code
//! and the SDKs send them (RFC 7591 §3.2.1 replacements, `application_type`, private-use
//! redirect URIs), the authorization parameters they add, and Client ID Metadata Documents
//! with `none` and with `private_key_jwt` (RFC 7523 assertions at `/token`).

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use serde_json::{json, Value};

use super::{
    assert_oauth_error, body_json, hidden, location, query_of, Idp, World, BASE, CLIENT_REDIRECT,
    VERIFIER,
};
use crate::client_auth::ASSERTION_TYPE;
use crate::http::Response;
use crate::jwt::tests::vectors::{self, NOW};

fn register(w: &mut World, body: Value) -> Response {
    w.send(
        "POST",
        "/register",
        &[("content-type", "application/json")],
        &body.to_string(),
    )
    .response()
}

/// Authorize (with `extra` parameters) → consent → IdP → callback; the callback's redirect.
fn authorize_to_redirect(w: &mut World, client_id: &str, extra: &[(&str, &str)]) -> Response {
    let page = w.get(&World::authorize_query(client_id, extra)).response();
    assert_eq!(page.status, 200, "{}", String::from_utf8_lossy(&page.body));
    let html = String::from_utf8(page.body.clone()).unwrap();
    let idp = w
        .post_form(
            "/consent",
            &[
                ("txn", &hidden(&html, "txn")),
                ("csrf", &hidden(&html, "csrf")),
                ("action", "approve"),
            ],
        )
        .response();
    assert_eq!(idp.status, 302);
    w.callback(&idp)
}

fn code_of(r: &Response) -> String {
    query_of(location(r)).get("code").unwrap().to_string()
}

fn redeem(
    w: &mut World,
    client: &str,
    code: &str,
    redirect: &str,
    extra: &[(&str, &str)],
) -> Response {
    let mut pairs = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("client_id", client),
        ("redirect_uri", redirect),
        ("code_verifier", VERIFIER),
    ];
    pairs.extend_from_slice(extra);
    w.post_form("/token", &pairs).response()
}

// ---- registration ----

#[test]
fn registration_answers_what_it_granted() {
    let mut w = World::new(json!({}));
    // claude.ai asks for client_secret_post; the Python SDK names no method: both get none.
    for body in [
        json!({"redirect_uris": ["https://claude.ai/api/mcp/auth_callback"],
               "token_endpoint_auth_method": "client_secret_post",
               "grant_types": ["authorization_code", "refresh_token"],
               "response_types": ["code"], "client_name": "Claude", "scope": "openid"}),
        json!({"redirect_uris": ["http://localhost:33418/callback"], "client_name": "py"}),
    ] {
        let r = register(&mut w, body);
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        let v = body_json(&r);
        assert_eq!(v["token_endpoint_auth_method"], "none", "{v}");
        assert!(v.get("client_secret").is_none(), "{v}");
    }
    // VS Code: a device-code grant besides the code flow, native, https and loopback URIs.
    let r = register(
        &mut w,
        json!({"client_name": "Visual Studio Code", "client_uri": "https://code.visualstudio.com",
               "grant_types": ["authorization_code", "refresh_token",
                               "urn:ietf:params:oauth:grant-type:device_code"],
               "response_types": ["code"],
               "redirect_uris": ["https://insiders.vscode.dev/redirect", "https://vscode.dev/redirect",
                                 "http://127.0.0.1/", "http://127.0.0.1:33418/"],
               "scope": "openid", "token_endpoint_auth_method": "none", "application_type": "native"}),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let v = body_json(&r);
    assert_eq!(
        v["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(v["application_type"], "native");
    // Cursor: private-use, https and loopback in one registration.
    let r = register(
        &mut w,
        json!({"client_name": "Cursor", "redirect_uris": [
            "cursor://anysphere.cursor-mcp/oauth/callback",
            "https://www.cursor.com/agents/mcp/oauth/callback",
            "http://localhost:8787/callback"],
            "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
            "token_endpoint_auth_method": "none", "scope": "openid"}),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert!(body_json(&r).get("application_type").is_none());
}

#[test]
fn registration_refuses_what_it_cannot_grant() {
    let mut w = World::new(json!({}));
    for (body, error) in [
        (
            json!({"redirect_uris": ["http://127.0.0.1:1/cb"], "application_type": "web"}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["cursor://x/cb"], "application_type": "web"}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "application_type": "browser"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb"],
                   "grant_types": ["refresh_token", "client_credentials"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["cursor://x/cb", "file:///etc/passwd"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["ms-msdt:/id"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["data:text/html,x"]}),
            "invalid_redirect_uri",
        ),
    ] {
        let r = register(&mut w, body.clone());
        assert_oauth_error(&r, 400, error);
        assert!(
            !body_json(&r)["error_description"]
                .as_str()
                .unwrap()
                .is_empty(),
            "{body}"
        );
    }
    // web with https only is fine.
    let r = register(
        &mut w,
        json!({"redirect_uris": ["https://claude.ai/api/mcp/auth_callback"], "application_type": "web"}),
    );
    assert_eq!(r.status, 201);
    assert_eq!(body_json(&r)["application_type"], "web");
}

#[test]
fn a_private_use_redirect_gets_the_code_and_only_there() {
    let mut w = World::new(json!({}));
    let app = "cursor://anysphere.cursor-mcp/oauth/callback";
    let r = register(
        &mut w,
        json!({"redirect_uris": [app, "http://localhost:8787/callback"], "client_name": "Cursor"}),
    );
    let client = body_json(&r)["client_id"].as_str().unwrap().to_string();
    // The consent page says the browser goes to an app.
    let page = w
        .get(&World::authorize_query(&client, &[("redirect_uri", app)]))
        .response();
    let html = String::from_utf8(page.body).unwrap();
    assert!(html.contains("app on your device"), "{html}");
    assert!(html.contains("cursor"), "{html}");
    let cb = authorize_to_redirect(&mut w, &client, &[("redirect_uri", app)]);
    assert_eq!(cb.status, 302);
    let loc = location(&cb).to_string();
    assert!(loc.starts_with(&format!("{app}?")), "{loc}");
    let q = query_of(&loc);
    assert_eq!(q.get("iss"), Some(BASE));
    let r = redeem(&mut w, &client, &code_of(&cb), app, &[]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // Exact match only: another path, case or scheme is not registered.
    for other in [
        "cursor://anysphere.cursor-mcp/oauth/callback/",
        "Cursor://anysphere.cursor-mcp/oauth/callback",
        "cursor://anysphere.cursor-mcp/evil",
    ] {
        let r = w
            .get(&World::authorize_query(&client, &[("redirect_uri", other)]))
            .response();
        assert_eq!(r.status, 400, "{other}");
        assert!(r.header("location").is_none());
    }
}

#[test]
fn authorize_tolerates_prompt_id_token_hint_and_base64_state() {
    let mut w = World::new(json!({}));
    let client = w.register();
    let state = "q+9/ZbJw3mT0aXr+LkPz/w==";
    let cb = authorize_to_redirect(
        &mut w,
        &client,
        &[
            ("state", state),
            ("prompt", "consent"),
            ("id_token_hint", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln"),
            ("scope", "openid offline_access"),
        ],
    );
    assert_eq!(cb.status, 302, "{}", String::from_utf8_lossy(&cb.body));
    assert_eq!(query_of(location(&cb)).get("state"), Some(state));
}

// ---- Client ID Metadata Documents ----

const DOC_URL: &str = "https://client.example/oauth/client.json";
const JWKS_URL: &str = "https://client.example/oauth/jwks.json";

fn public_jwks() -> String {
    vectors::test_jwks()
}

/// A ChatGPT-shaped document: `private_key_jwt`, RS256, keys at `jwks_uri`; `also_none`
/// lists `none` among the supported methods.
fn jwt_document(also_none: bool) -> Value {
    let mut doc = json!({
        "client_id": DOC_URL,
        "client_name": "JWT client",
        "redirect_uris": [CLIENT_REDIRECT],
        "token_endpoint_auth_method": "private_key_jwt",
        "token_endpoint_auth_signing_alg": "RS256",
        "jwks_uri": JWKS_URL,
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
    });
    if also_none {
        doc["token_endpoint_auth_methods_supported"] = json!(["none", "private_key_jwt"]);
    }
    doc
}

fn serve(w: &mut World, doc: &Value) {
    w.idp = Idp::Urls(vec![
        (DOC_URL.to_string(), 200, doc.to_string()),
        (JWKS_URL.to_string(), 200, public_jwks()),
    ]);
}

fn assertion_claims() -> Value {
    json!({"iss": DOC_URL, "sub": DOC_URL, "aud": BASE, "exp": NOW + 300, "iat": NOW,
           "jti": "assertion-1"})
}

fn assertion(header: &str, claims: &Value) -> String {
    vectors::sign(header, &claims.to_string())
}

fn rs256(claims: &Value) -> String {
    assertion(r#"{"alg":"RS256","kid":"rsa1","typ":"JWT"}"#, claims)
}

fn with_assertion(a: &str) -> [(&'static str, &str); 2] {
    [
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", a),
    ]
}

#[test]
fn a_metadata_document_client_with_none_and_a_port_less_loopback_uri() {
    let mut w = World::new(json!({}));
    let doc = json!({"client_id": DOC_URL, "client_name": "Claude Code",
                     "redirect_uris": ["http://localhost/callback", "http://127.0.0.1/callback"],
                     "token_endpoint_auth_method": "none"});
    serve(&mut w, &doc);
    let redirect = "http://localhost:33418/callback";
    let cb = authorize_to_redirect(&mut w, DOC_URL, &[("redirect_uri", redirect)]);
    let before = w.fetches.iter().filter(|f| f.url == DOC_URL).count();
    let r = redeem(&mut w, DOC_URL, &code_of(&cb), redirect, &[]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        w.fetches.iter().filter(|f| f.url == DOC_URL).count(),
        before + 1,
        "the token endpoint reads the document for the client's authentication method"
    );
    let refresh = body_json(&r)["refresh_token"].as_str().unwrap().to_string();
    let r = w
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("client_id", DOC_URL),
                ("resource", "https://mcp.example.com/mcp"),
            ],
        )
        .response();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

#[test]
fn private_key_jwt_clients_authenticate_with_single_use_assertions() {
    let mut w = World::new(json!({}));
    serve(&mut w, &jwt_document(false));
    let cb = authorize_to_redirect(&mut w, DOC_URL, &[]);
    let code = code_of(&cb);
    // Without an assertion: refused, the document does not allow none.
    let r = redeem(&mut w, DOC_URL, &code, CLIENT_REDIRECT, &[]);
    assert_oauth_error(&r, 401, "invalid_client");
    // With one: the key set at jwks_uri verifies it.
    let a = rs256(&assertion_claims());
    let r = redeem(&mut w, DOC_URL, &code, CLIENT_REDIRECT, &with_assertion(&a));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(w.fetches.iter().any(|f| f.url == JWKS_URL && f.cacheable));
    let refresh = body_json(&r)["refresh_token"].as_str().unwrap().to_string();
    // The same assertion again: already used.
    let refresh_with = |w: &mut World, a: &str| {
        let mut pairs = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
        ];
        pairs.extend_from_slice(&with_assertion(a));
        w.post_form("/token", &pairs).response()
    };
    let r = refresh_with(&mut w, &a);
    assert_oauth_error(&r, 401, "invalid_client");
    assert!(String::from_utf8_lossy(&r.body).contains("already used"));
    // A fresh one (no client_id in the body: RFC 7523 §3) refreshes.
    let mut claims = assertion_claims();
    claims["jti"] = json!("assertion-2");
    claims["aud"] = json!(format!("{BASE}/token"));
    let r = refresh_with(&mut w, &rs256(&claims));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

#[test]
fn none_is_used_when_the_document_also_lists_it() {
    let mut w = World::new(json!({}));
    serve(&mut w, &jwt_document(true));
    let cb = authorize_to_redirect(&mut w, DOC_URL, &[]);
    let r = redeem(&mut w, DOC_URL, &code_of(&cb), CLIENT_REDIRECT, &[]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // An assertion that is sent is still checked.
    let cb = authorize_to_redirect(&mut w, DOC_URL, &[]);
    let mut claims = assertion_claims();
    claims["aud"] = json!("https://elsewhere.example");
    let r = redeem(
        &mut w,
        DOC_URL,
        &code_of(&cb),
        CLIENT_REDIRECT,
        &with_assertion(&rs256(&claims)),
    );
    assert_oauth_error(&r, 401, "invalid_client");
}

#[test]
fn every_bad_assertion_is_refused() {
    let mut w = World::new(json!({}));
    serve(&mut w, &jwt_document(false));
    let good = assertion_claims();
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = good.clone();
        f(&mut c);
        c
    };
    let cases: Vec<(&str, String)> = vec![
        (
            "wrong audience",
            rs256(&with(&|c| c["aud"] = json!("https://other.example"))),
        ),
        ("expired", rs256(&with(&|c| c["exp"] = json!(NOW - 100)))),
        (
            "lives too long",
            rs256(&with(&|c| c["exp"] = json!(NOW + 7200))),
        ),
        (
            "not yet valid",
            rs256(&with(&|c| c["nbf"] = json!(NOW + 600))),
        ),
        (
            "issued in the future",
            rs256(&with(&|c| c["iat"] = json!(NOW + 600))),
        ),
        (
            "no jti",
            rs256(&with(&|c| {
                c.as_object_mut().unwrap().remove("jti");
            })),
        ),
        (
            "sub differs",
            rs256(&with(&|c| c["sub"] = json!("https://other.example/c.json"))),
        ),
        (
            "another client",
            rs256(&with(&|c| {
                c["iss"] = json!("https://other.example/c.json");
                c["sub"] = json!("https://other.example/c.json");
            })),
        ),
        ("hmac", assertion(r#"{"alg":"HS256"}"#, &good)),
        (
            "unknown kid",
            assertion(r#"{"alg":"RS256","kid":"nope"}"#, &good),
        ),
        (
            "wrong typ",
            assertion(r#"{"alg":"RS256","kid":"rsa1","typ":"at+jwt"}"#, &good),
        ),
        (
            "declared alg differs",
            assertion(r#"{"alg":"ES256","kid":"ec1"}"#, &good),
        ),
        ("tampered", {
            let a = rs256(&good);
            let (head, sig) = a.rsplit_once('.').unwrap();
            let flipped = if sig.starts_with('A') { "B" } else { "A" };
            format!("{head}.{flipped}{}", &sig[1..])
        }),
        ("garbage", "not.a.jwt".to_string()),
    ];
    for (what, a) in cases {
        let cb = authorize_to_redirect(&mut w, DOC_URL, &[]);
        let r = redeem(
            &mut w,
            DOC_URL,
            &code_of(&cb),
            CLIENT_REDIRECT,
            &with_assertion(&a),
        );
        assert_oauth_error(&r, 401, "invalid_client");
        assert!(
            !String::from_utf8_lossy(&r.body).contains(&a),
            "{what}: the assertion is not echoed"
        );
    }
    // An assertion type without an assertion, or another type.
    let r = w
        .post_form(
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", "x"),
                ("client_assertion_type", ASSERTION_TYPE),
            ],
        )
        .response();
    assert_oauth_error(&r, 400, "invalid_request");
    // A registered (DCR) client cannot authenticate with an assertion.
    let client = w.register();
    let mut claims = good.clone();
    claims["iss"] = json!(client);
    claims["sub"] = json!(client);
    let r = redeem(
        &mut w,
        &client,
        "x",
        CLIENT_REDIRECT,
        &with_assertion(&rs256(&claims)),
    );
    assert_oauth_error(&r, 401, "invalid_client");
}

#[test]
fn es256_and_eddsa_assertions_with_inline_keys() {
    for (alg, kid) in [("ES256", "ec1"), ("EdDSA", "ed1")] {
        let mut w = World::new(json!({}));
        let mut doc = jwt_document(false);
        let o = doc.as_object_mut().unwrap();
        o.remove("jwks_uri");
        o.insert("token_endpoint_auth_signing_alg".into(), json!(alg));
        o.insert(
            "jwks".into(),
            serde_json::from_str::<Value>(&public_jwks()).unwrap(),
        );
        serve(&mut w, &doc);
        let cb = authorize_to_redirect(&mut w, DOC_URL, &[]);
        let header =
            format!(r#"{{"alg":"{alg}","kid":"{kid}","typ":"client-authentication+jwt"}}"#);
        let a = assertion(&header, &assertion_claims());
        let r = redeem(
            &mut w,
            DOC_URL,
            &code_of(&cb),
            CLIENT_REDIRECT,
            &with_assertion(&a),
        );
        assert_eq!(r.status, 200, "{alg}: {}", String::from_utf8_lossy(&r.body));
        assert!(
            !w.fetches.iter().any(|f| f.url == JWKS_URL),
            "{alg}: inline keys"
        );
    }
}

#[test]
fn documents_that_cannot_authenticate_are_refused() {
    let mut w = World::new(json!({}));
    for doc in [
        json!({"client_id": DOC_URL, "redirect_uris": [CLIENT_REDIRECT],
               "token_endpoint_auth_method": "private_key_jwt"}),
        json!({"client_id": DOC_URL, "redirect_uris": [CLIENT_REDIRECT],
               "token_endpoint_auth_method": "client_secret_basic"}),
        json!({"client_id": DOC_URL, "redirect_uris": [CLIENT_REDIRECT],
               "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": JWKS_URL,
               "jwks": {"keys": []}}),
        json!({"client_id": DOC_URL, "redirect_uris": [CLIENT_REDIRECT],
               "token_endpoint_auth_method": "private_key_jwt",
               "jwks_uri": "https://10.0.0.1/jwks.json"}),
        json!({"client_id": DOC_URL, "redirect_uris": ["http://localhost/cb"],
               "application_type": "web"}),
    ] {
        serve(&mut w, &doc);
        let r = w.get(&World::authorize_query(DOC_URL, &[])).response();
        assert_eq!(r.status, 400, "{doc}");
    }
}

#[test]
fn the_cimd_setting_and_private_hosts() {
    let metadata =
        |w: &mut World| body_json(&w.get("/.well-known/oauth-authorization-server").response());
    let mut w = World::new(json!({}));
    let m = metadata(&mut w);
    assert_eq!(m["client_id_metadata_document_supported"], true);
    assert_eq!(
        m["token_endpoint_auth_methods_supported"],
        json!(["none", "private_key_jwt"])
    );
    assert_eq!(
        m["token_endpoint_auth_signing_alg_values_supported"],
        json!(["RS256", "ES256", "EdDSA"])
    );
    for url in [
        "https://127.0.0.1/c.json",
        "https://localhost/c.json",
        "https://[::1]/c.json",
        "https://169.254.169.254/latest/meta-data",
        "https://2130706433/c.json",
        "https://mcp.example.com/c.json",
        "http://client.example/c.json",
    ] {
        let fetches = w.fetches.len();
        let r = w.get(&World::authorize_query(url, &[])).response();
        assert_eq!(r.status, 400, "{url}");
        assert_eq!(w.fetches.len(), fetches, "{url}: never fetched");
    }

    let mut w = World::new(json!({"cimd": "off"}));
    let m = metadata(&mut w);
    assert_eq!(m["client_id_metadata_document_supported"], false);
    assert_eq!(m["token_endpoint_auth_methods_supported"], json!(["none"]));
    assert!(m
        .get("token_endpoint_auth_signing_alg_values_supported")
        .is_none());
    serve(&mut w, &jwt_document(true));
    assert_eq!(
        w.get(&World::authorize_query(DOC_URL, &[]))
            .response()
            .status,
        400
    );

    let mut w = World::new(json!({"cimd": ["other.example"]}));
    serve(&mut w, &jwt_document(true));
    assert_eq!(
        w.get(&World::authorize_query(DOC_URL, &[]))
            .response()
            .status,
        400
    );
    let mut w = World::new(json!({"cimd": ["CLIENT.example"]}));
    serve(&mut w, &jwt_document(true));
    assert_eq!(
        w.get(&World::authorize_query(DOC_URL, &[]))
            .response()
            .status,
        200
    );

    // Development: loopback documents, over http too.
    let mut w = World::new(json!({"cimd_allow_private": true}));
    let url = "http://localhost:8123/oauth/client.json";
    let doc = json!({"client_id": url, "redirect_uris": [CLIENT_REDIRECT]});
    w.idp = Idp::Urls(vec![(url.to_string(), 200, doc.to_string())]);
    assert_eq!(
        w.get(&World::authorize_query(url, &[])).response().status,
        200
    );
    let url = "http://client.example/oauth/client.json";
    assert_eq!(
        w.get(&World::authorize_query(url, &[])).response().status,
        400,
        "plain http only to loopback"
    );
}

#[test]
fn bad_cimd_settings_are_named() {
    let parse = |v: Value| {
        crate::config::parse_json(super::config(v).to_string().as_bytes(), &[], &|_| None)
            .map(|p| p.config)
    };
    assert_eq!(parse(json!({"cimd": []})).unwrap_err().key, "cimd");
    assert_eq!(
        parse(json!({"cimd": ["https://claude.ai"]}))
            .unwrap_err()
            .key,
        "cimd[0]"
    );
    assert_eq!(parse(json!({"cimd": 1})).unwrap_err().key, "cimd");
    assert_eq!(
        parse(json!({"cimd_allow_private": "yes"})).unwrap_err().key,
        "cimd_allow_private"
    );
}

#[test]
fn client_id_metadata_documents() {
    let mut w = World::new(json!({}));
    let url = "https://client.example/meta.json";
    let doc =
        json!({"client_id": url, "client_name": "CIMD client", "redirect_uris": [CLIENT_REDIRECT]})
            .to_string();
    w.idp = Idp::Status(200, Box::leak(doc.into_boxed_str()));
    let r = w.get(&World::authorize_query(url, &[])).response();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let fetch = w.fetches.last().unwrap();
    assert_eq!(fetch.url, url);
    assert!(fetch.cacheable);
    assert_eq!(fetch.max_response_bytes, 5 * 1024);
    assert!(String::from_utf8_lossy(&r.body).contains("client.example/meta.json"));
    // Mismatched client_id, bad redirect URIs, errors: a 400 page.
    for body in [
        json!({"client_id": "https://other.example/meta.json", "redirect_uris": [CLIENT_REDIRECT]}).to_string(),
        json!({"client_id": url, "redirect_uris": ["http://evil.example/cb"]}).to_string(),
        json!({"client_id": url, "redirect_uris": [CLIENT_REDIRECT], "token_endpoint_auth_method": "private_key_jwt"}).to_string(),
        "not json".to_string(),
    ] {
        w.idp = Idp::Status(200, Box::leak(body.into_boxed_str()));
        assert_eq!(w.get(&World::authorize_query(url, &[])).response().status, 400);
    }
    w.idp = Idp::Status(404, "");
    assert_eq!(
        w.get(&World::authorize_query(url, &[])).response().status,
        400
    );
    assert_eq!(
        w.get(&World::authorize_query("https://client.example/", &[]))
            .response()
            .status,
        400,
        "no path"
    );
}
