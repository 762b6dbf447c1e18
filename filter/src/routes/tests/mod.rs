//! The whole OAuth flow driven through `Gate` with a fixed clock, a seeded RNG and an
//! in-test IdP, plus one test per rejection.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use serde_json::{json, Value};

use crate::config::parse_json;
use crate::form::{self, Params};
use crate::gate::Gate;
use crate::http::{Env, Forward, HttpRequest, HttpResponse, Outcome, Reply, Request, Response};
use crate::jwt::tests::vectors::{self, NOW};
use crate::jwt::KeySet;
use crate::pkce;
use crate::store::{self, MemoryStore};
use crate::testutil::SeqRandom;

mod client_credentials;
mod clients;
mod cors;
mod origin_headers;
mod paths;
mod security;

const BASE: &str = "https://mcp.example.com";
const CLIENT_REDIRECT: &str = "http://127.0.0.1:33418/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn config(extra: Value) -> Value {
    let mut c = json!({
        "user_pool_id": "eu-central-1_TEST",
        "client_id": vectors::APP_CLIENT,
        "client_secret": "app-secret",
        "base_url": BASE,
        "cognito_domain": "https://auth.example.com",
        "jwt_signing_key": "a-signing-key-of-at-least-32-characters!",
    });
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

/// The in-test IdP's behaviour for the next token-endpoint call.
#[derive(Clone)]
enum Idp {
    Tokens,
    Status(u16, &'static str),
    /// Answers these URLs (status, body); every other URL as `Tokens` does.
    Urls(Vec<(String, u16, String)>),
}

/// Drives a gate like a host would.
struct World {
    gate: Gate,
    keys: Option<KeySet>,
    rng: SeqRandom,
    store: Option<MemoryStore>,
    now: u64,
    idp: Idp,
    fetches: Vec<HttpRequest>,
    need_keys: usize,
    /// Cookies the "browser" holds.
    cookies: Vec<(String, String)>,
    cache: crate::token_cache::TokenCache,
}

enum Final {
    Respond(Response),
    Forward(Forward),
}

impl Final {
    fn response(self) -> Response {
        match self {
            Final::Respond(r) => r,
            Final::Forward(f) => panic!("expected a response, got forward {f:?}"),
        }
    }
    fn forward(self) -> Forward {
        match self {
            Final::Forward(f) => f,
            Final::Respond(r) => panic!(
                "expected forward, got {} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            ),
        }
    }
}

impl World {
    fn new(extra: Value) -> Self {
        Self::with_store(extra, true)
    }

    fn with_store(extra: Value, store: bool) -> Self {
        let cfg = parse_json(config(extra).to_string().as_bytes(), &[], &|_| None)
            .unwrap()
            .config;
        Self {
            gate: Gate::new(cfg).unwrap(),
            keys: Some(KeySet::from_json(vectors::test_jwks().as_bytes()).unwrap()),
            rng: SeqRandom(42),
            store: store.then(|| MemoryStore::new(1000)),
            now: NOW,
            idp: Idp::Tokens,
            fetches: Vec::new(),
            need_keys: 0,
            cookies: Vec::new(),
            cache: crate::token_cache::TokenCache::new(64),
        }
    }

    fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Final {
        let cookie_header: String = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut hs: Vec<(&str, &str)> = headers.to_vec();
        if !cookie_header.is_empty() {
            hs.push(("cookie", &cookie_header));
        }
        let req = Request {
            method,
            path,
            headers: &hs,
            body: body.as_bytes(),
            client_address: Some("192.0.2.7"),
        };
        let mut env = Env {
            now: self.now,
            random: &mut self.rng,
            upstream_keys: self.keys.as_ref(),
            store: self.store.is_some(),
            native_rsa: None,
            cache: Some(&mut self.cache),
        };
        let mut out = self.gate.handle(&req, &mut env);
        let result = loop {
            let (k, reply) = match out {
                Outcome::Respond(r) => break Final::Respond(r),
                Outcome::Forward(f) => break Final::Forward(f),
                Outcome::Fetch { request, resume } => {
                    let resp = idp_answer(&self.idp, &request, &self.gate);
                    self.fetches.push(request);
                    (resume, Reply::Http(resp))
                }
                Outcome::Store { op, resume } => {
                    let s = self.store.as_mut().expect("store op without store");
                    (resume, store::perform(s, &op, self.now))
                }
                Outcome::NeedKeys { resume } => {
                    self.need_keys += 1;
                    (resume, Reply::Keys)
                }
            };
            let mut env = Env {
                now: self.now,
                random: &mut self.rng,
                upstream_keys: self.keys.as_ref(),
                store: self.store.is_some(),
                native_rsa: None,
                cache: Some(&mut self.cache),
            };
            out = self.gate.resume(k, reply, &mut env);
        };
        if let Final::Respond(r) = &result {
            for (k, v) in &r.headers {
                if k == "set-cookie" {
                    let (pair, attrs) = v.split_once(';').unwrap();
                    let (name, value) = pair.split_once('=').unwrap();
                    self.cookies.retain(|(n, _)| n != name);
                    if !attrs.contains("Max-Age=0") {
                        self.cookies.push((name.to_string(), value.to_string()));
                    }
                }
            }
        }
        result
    }

    fn get(&mut self, path: &str) -> Final {
        self.send("GET", path, &[], "")
    }

    fn post_form(&mut self, path: &str, pairs: &[(&str, &str)]) -> Final {
        let body = form::build(pairs);
        self.send(
            "POST",
            path,
            &[("content-type", "application/x-www-form-urlencoded")],
            &body,
        )
    }

    fn register(&mut self) -> String {
        let body =
            json!({"redirect_uris": [CLIENT_REDIRECT], "client_name": "Test <Client>"}).to_string();
        let r = self
            .send(
                "POST",
                "/register",
                &[("content-type", "application/json")],
                &body,
            )
            .response();
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        body_json(&r)["client_id"].as_str().unwrap().to_string()
    }

    fn authorize_query(client_id: &str, extra: &[(&str, &str)]) -> String {
        let mut pairs = vec![
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", CLIENT_REDIRECT),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("state", "client-state"),
            ("resource", "https://mcp.example.com/mcp"),
        ];
        for (k, v) in extra {
            pairs.retain(|(pk, _)| pk != k);
            if !v.is_empty() {
                pairs.push((k, v));
            }
        }
        format!("/authorize?{}", form::build(&pairs))
    }

    /// Register → authorize → consent; returns (client_id, IdP redirect).
    fn through_consent(&mut self) -> (String, Response) {
        let client_id = self.register();
        let page = self.get(&Self::authorize_query(&client_id, &[])).response();
        assert_eq!(page.status, 200);
        let html = String::from_utf8(page.body.clone()).unwrap();
        let r = self
            .post_form(
                "/consent",
                &[
                    ("txn", &hidden(&html, "txn")),
                    ("csrf", &hidden(&html, "csrf")),
                    ("action", "approve"),
                ],
            )
            .response();
        (client_id, r)
    }

    /// The whole browser part; returns (client_id, proxy code).
    fn login(&mut self) -> (String, String) {
        let (client_id, idp) = self.through_consent();
        let state = query_of(location(&idp)).get("state").unwrap().to_string();
        let cb = self
            .get(&format!(
                "/auth/callback?{}",
                form::build(&[("code", "idp-code"), ("state", &state)])
            ))
            .response();
        assert_eq!(cb.status, 302, "{}", String::from_utf8_lossy(&cb.body));
        let q = query_of(location(&cb));
        assert_eq!(q.get("state"), Some("client-state"));
        (client_id, q.get("code").unwrap().to_string())
    }

    /// The IdP sends the browser back to the callback with code `c` and the state it was given.
    fn callback(&mut self, idp_redirect: &Response) -> Response {
        let state = query_of(location(idp_redirect))
            .get("state")
            .unwrap()
            .to_string();
        self.get(&format!(
            "/auth/callback?code=c&state={}",
            form::encode(&state)
        ))
        .response()
    }

    fn redeem(&mut self, client_id: &str, code: &str) -> Response {
        self.post_form(
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("client_id", client_id),
                ("redirect_uri", CLIENT_REDIRECT),
                ("code_verifier", VERIFIER),
            ],
        )
        .response()
    }

    fn tokens(&mut self) -> (String, Value) {
        let (client_id, code) = self.login();
        let r = self.redeem(&client_id, &code);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        (client_id, body_json(&r))
    }

    fn mcp(&mut self, token: &str) -> Final {
        let auth = format!("Bearer {token}");
        self.send(
            "POST",
            "/mcp",
            &[("authorization", &auth), ("x-mcpgate-sub", "spoofed")],
            "{}",
        )
    }
}

fn idp_answer(idp: &Idp, req: &HttpRequest, gate: &Gate) -> HttpResponse {
    match idp {
        Idp::Urls(urls) => match urls.iter().find(|(u, _, _)| *u == req.url) {
            Some((_, status, body)) => HttpResponse {
                status: *status,
                headers: vec![],
                body: body.as_bytes().to_vec(),
            },
            None => idp_answer(&Idp::Tokens, req, gate),
        },
        Idp::Status(status, body) => HttpResponse {
            status: *status,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        },
        Idp::Tokens if req.url.ends_with("/oauth2/revoke") => HttpResponse {
            status: 200,
            headers: vec![],
            body: vec![],
        },
        Idp::Tokens => {
            assert_eq!(req.url, gate.config().upstream.token_endpoint);
            let body = String::from_utf8(req.body.clone()).unwrap();
            let form = Params::parse(&body).unwrap();
            let auth = req
                .headers
                .iter()
                .find(|(k, _)| k == "authorization")
                .map(|(_, v)| v.as_str());
            assert_eq!(
                auth,
                Some("Basic YXBwLWNsaWVudC1pZDphcHAtc2VjcmV0"),
                "client_secret_basic"
            );
            match form.get("grant_type") {
                Some("authorization_code") => {
                    assert_eq!(
                        form.get("redirect_uri"),
                        Some("https://mcp.example.com/auth/callback")
                    );
                    assert!(pkce::valid_verifier(form.get("code_verifier").unwrap()));
                }
                Some("refresh_token") => {
                    assert_eq!(form.get("refresh_token"), Some("upstream-refresh"))
                }
                other => panic!("unexpected grant {other:?}"),
            }
            let access = vectors::rs256(&vectors::cognito_access_claims());
            let id = vectors::rs256(&vectors::cognito_id_claims());
            let mut body = json!({"access_token": access, "id_token": id, "expires_in": 3600, "token_type": "Bearer"});
            if form.get("grant_type") == Some("authorization_code") {
                body["refresh_token"] = json!("upstream-refresh");
            }
            HttpResponse {
                status: 200,
                headers: vec![],
                body: body.to_string().into_bytes(),
            }
        }
    }
}

fn body_json(r: &Response) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

fn location(r: &Response) -> &str {
    r.header("location").expect("location header")
}

fn query_of(url: &str) -> Params {
    Params::parse(url.split_once('?').map_or("", |(_, q)| q)).unwrap()
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap() + marker.len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end].to_string()
}

fn assert_oauth_error(r: &Response, status: u16, error: &str) {
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        body_json(r)["error"],
        error,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
}

fn assert_redirect_error(r: &Response, error: &str) {
    assert_eq!(r.status, 302);
    let loc = location(r);
    assert!(loc.starts_with(CLIENT_REDIRECT), "{loc}");
    let q = query_of(loc);
    assert_eq!(q.get("error"), Some(error), "{loc}");
    assert_eq!(q.get("iss"), Some(BASE), "RFC 9207 iss on every redirect");
}

// ---- the whole flow ----

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
    let set: alloc::collections::BTreeMap<_, _> = f.set_headers.iter().cloned().collect();
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

// ---- MCP endpoint ----

#[test]
fn mcp_rejects_garbage_and_expired_tokens_with_invalid_token() {
    let mut w = World::new(json!({}));
    let r = w.mcp("not-a-jwt").response();
    assert_eq!(r.status, 401);
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .contains("error=\"invalid_token\""));
    let (_, t) = w.tokens();
    w.now += 3600 + 31;
    let r = w.mcp(t["access_token"].as_str().unwrap()).response();
    assert_eq!(r.status, 401);
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .contains("error_description=\"token expired\""));
    assert_eq!(r.reason, Some("expired"));
}

#[test]
fn mcp_rejects_cognito_tokens_unless_accepted() {
    let mut w = World::new(json!({}));
    let cognito = vectors::rs256(&vectors::cognito_access_claims());
    assert_eq!(w.mcp(&cognito).response().status, 401);
    let mut w = World::new(
        json!({"accepted_client_ids": [vectors::APP_CLIENT], "accepted_client_scopes": ["email"]}),
    );
    let f = w.mcp(&cognito).forward();
    assert!(f
        .set_headers
        .contains(&("x-mcpgate-username".into(), "alice".into())));
    let id_token = vectors::rs256(&vectors::cognito_id_claims());
    let r = w.mcp(&id_token).response();
    assert_eq!(r.status, 401, "ID tokens are not access tokens");
}

#[test]
fn mcp_direct_token_with_unknown_kid_asks_host_for_keys_once() {
    let mut w = World::new(json!({"accepted_client_ids": [vectors::APP_CLIENT]}));
    let t = vectors::sign(
        r#"{"alg":"RS256","kid":"rotated"}"#,
        &vectors::cognito_access_claims().to_string(),
    );
    let r = w.mcp(&t).response();
    assert_eq!(r.status, 401);
    assert_eq!(w.need_keys, 1);
    w.keys = None;
    let r = w
        .mcp(&vectors::rs256(&vectors::cognito_access_claims()))
        .response();
    assert_eq!(r.status, 503, "fails closed without keys");
    assert_eq!(r.header("retry-after"), Some("5"));
}

#[test]
fn mcp_insufficient_scope_is_403() {
    let mut w = World::new(
        json!({"accepted_client_ids": [vectors::APP_CLIENT], "accepted_client_scopes": ["admin"]}),
    );
    let r = w
        .mcp(&vectors::rs256(&vectors::cognito_access_claims()))
        .response();
    assert_eq!(r.status, 403);
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .contains("error=\"insufficient_scope\""));
}

#[test]
fn mcp_group_rules_restrict_paths() {
    let mut w =
        World::new(json!({"group_rules": [{"path_prefix": "/mcp/admin", "groups": ["ops"]}]}));
    let (_, t) = w.tokens();
    let access = format!("Bearer {}", t["access_token"].as_str().unwrap());
    let r = w
        .send("GET", "/mcp/admin/x", &[("authorization", &access)], "")
        .response();
    assert_eq!(r.status, 403);
    assert_eq!(r.reason, Some("group"));
    assert!(matches!(
        w.send("GET", "/mcp", &[("authorization", &access)], ""),
        Final::Forward(_)
    ));
}

#[test]
fn mcp_revoked_access_token_is_refused() {
    let mut w = World::new(json!({}));
    let (client_id, t) = w.tokens();
    let access = t["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        w.post_form("/revoke", &[("token", &access), ("client_id", &client_id)])
            .response()
            .status,
        200
    );
    let r = w.mcp(&access).response();
    assert_eq!(r.status, 401);
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .contains("token revoked"));
}

#[test]
fn mcp_refuses_tokens_in_query_and_duplicate_authorization() {
    let mut w = World::new(json!({}));
    let r = w.send("GET", "/mcp?access_token=abc", &[], "").response();
    assert_oauth_error(&r, 400, "invalid_request");
    let r = w
        .send(
            "GET",
            "/mcp",
            &[("authorization", "Bearer a"), ("authorization", "Bearer b")],
            "",
        )
        .response();
    assert_oauth_error(&r, 400, "invalid_request");
    let r = w
        .send("GET", "/mcp", &[("authorization", "Basic abc")], "")
        .response();
    assert_eq!(r.status, 401);
}

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

// ---- registration ----

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

// ---- authorize ----

#[test]
fn authorize_errors_that_cannot_redirect_are_pages() {
    let mut w = World::new(json!({}));
    let r = w
        .get(&World::authorize_query("forged-client", &[]))
        .response();
    assert_eq!(r.status, 400);
    assert!(r.header("location").is_none());
    assert_eq!(r.reason, Some("invalid_client"));
    let client = w.register();
    let r = w
        .get(&World::authorize_query(
            &client,
            &[("redirect_uri", "https://evil.example/cb")],
        ))
        .response();
    assert_eq!(r.status, 400);
    assert!(r.header("location").is_none());
    let r = w.get("/authorize?client_id=a&client_id=b").response();
    assert_eq!(r.status, 400);
}

#[test]
fn authorize_errors_redirect_with_state_and_iss() {
    // Redirects only for approved clients (see security::open_redirect).
    let mut w = World::new(json!({"consent": "off"}));
    let client = w.register();
    for (extra, error) in [
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (vec![("code_challenge", "")], "invalid_request"),
        (vec![("code_challenge_method", "")], "invalid_request"),
        (vec![("code_challenge", "too-short")], "invalid_request"),
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (
            vec![("resource", "https://other.example/mcp")],
            "invalid_target",
        ),
    ] {
        let r = w.get(&World::authorize_query(&client, &extra)).response();
        assert_redirect_error(&r, error);
        assert_eq!(query_of(location(&r)).get("state"), Some("client-state"));
    }
}

#[test]
fn authorize_loopback_port_may_differ() {
    let mut w = World::new(json!({}));
    let client = w.register();
    let r = w
        .get(&World::authorize_query(
            &client,
            &[("redirect_uri", "http://127.0.0.1:5555/callback")],
        ))
        .response();
    assert_eq!(r.status, 200, "consent page");
}

#[test]
fn consent_page_escapes_client_strings_and_cannot_be_framed() {
    let mut w = World::new(json!({}));
    let client = w.register();
    let r = w.get(&World::authorize_query(&client, &[])).response();
    let html = String::from_utf8(r.body.clone()).unwrap();
    assert!(html.contains("Test &lt;Client&gt;"));
    assert!(!html.contains("Test <Client>"));
    assert!(html.contains("127.0.0.1:33418"), "redirect host shown");
    assert!(html.contains("localhost address"), "loopback warning");
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert!(r
        .header("content-security-policy")
        .unwrap()
        .contains("frame-ancestors 'none'"));
    let csrf_cookie = r
        .headers
        .iter()
        .find(|(k, v)| k == "set-cookie" && v.starts_with("__Host-mcpgate-csrf="))
        .unwrap();
    assert!(
        csrf_cookie.1.contains("HttpOnly")
            && csrf_cookie.1.contains("Secure")
            && csrf_cookie.1.contains("SameSite=Lax")
    );
}

#[test]
fn consent_requires_matching_csrf() {
    let mut w = World::new(json!({}));
    let client = w.register();
    let page = w.get(&World::authorize_query(&client, &[])).response();
    let html = String::from_utf8(page.body).unwrap();
    let txn = hidden(&html, "txn");
    let r = w
        .post_form(
            "/consent",
            &[("txn", &txn), ("csrf", "forged"), ("action", "approve")],
        )
        .response();
    assert_eq!(r.status, 403);
    w.cookies.clear();
    let r = w
        .post_form(
            "/consent",
            &[
                ("txn", &txn),
                ("csrf", &hidden(&html, "csrf")),
                ("action", "approve"),
            ],
        )
        .response();
    assert_eq!(r.status, 403, "missing cookie");
}

#[test]
fn consent_deny_redirects_access_denied() {
    let mut w = World::new(json!({}));
    let client = w.register();
    let html =
        String::from_utf8(w.get(&World::authorize_query(&client, &[])).response().body).unwrap();
    let r = w
        .post_form(
            "/consent",
            &[
                ("txn", &hidden(&html, "txn")),
                ("csrf", &hidden(&html, "csrf")),
                ("action", "deny"),
            ],
        )
        .response();
    assert_redirect_error(&r, "access_denied");
}

#[test]
fn consent_off_and_remember() {
    let mut w = World::new(json!({"consent": "off"}));
    let client = w.register();
    let r = w.get(&World::authorize_query(&client, &[])).response();
    assert_eq!(r.status, 302, "straight to the IdP");
    assert!(location(&r).starts_with("https://auth.example.com/"));

    let mut w = World::new(json!({"consent": "remember"}));
    let (client, _) = w.through_consent();
    assert!(w
        .cookies
        .iter()
        .any(|(n, _)| n == "__Host-mcpgate-approvals"));
    let r = w.get(&World::authorize_query(&client, &[])).response();
    assert_eq!(r.status, 302, "remembered: no second consent page");
    let other = w.register();
    assert_eq!(
        w.get(&World::authorize_query(&other, &[]))
            .response()
            .status,
        200,
        "other clients still asked"
    );
}

// ---- callback ----

#[test]
fn callback_requires_the_binding_cookie_of_this_transaction() {
    let mut w = World::new(json!({}));
    let (_, idp) = w.through_consent();
    let state = query_of(location(&idp)).get("state").unwrap().to_string();
    let url = format!("/auth/callback?code=c&state={}", form::encode(&state));
    let saved = w.cookies.clone();
    w.cookies.retain(|(n, _)| !n.contains("binding"));
    assert_eq!(w.get(&url).response().status, 403, "another browser");
    // A binding cookie from another transaction does not fit.
    let (_, _) = w.through_consent();
    assert_eq!(
        w.get(&url).response().status,
        403,
        "binding of another transaction"
    );
    w.cookies = saved;
    w.cookies.push(("junk".into(), "x".into()));
    assert_eq!(w.get(&url).response().status, 302);
    assert_eq!(
        w.get("/auth/callback?code=c&state=forged")
            .response()
            .status,
        400
    );
}

#[test]
fn callback_maps_idp_errors_without_their_text() {
    let mut w = World::new(json!({}));
    let (_, idp) = w.through_consent();
    let state = query_of(location(&idp)).get("state").unwrap().to_string();
    let r = w
        .get(&format!(
            "/auth/callback?error=weird_error&error_description=%3Cscript%3E&state={}",
            form::encode(&state)
        ))
        .response();
    assert_redirect_error(&r, "server_error");
    assert!(!location(&r).contains("%3Cscript"));
    assert!(!location(&r).contains("weird_error"));
}

#[test]
fn callback_idp_unavailable_and_rejecting() {
    for (idp, error) in [
        (Idp::Status(0, ""), "temporarily_unavailable"),
        (Idp::Status(503, "down"), "temporarily_unavailable"),
        (
            Idp::Status(400, r#"{"error":"invalid_grant"}"#),
            "server_error",
        ),
    ] {
        let mut w = World::new(json!({}));
        w.idp = idp;
        let (_, redirect) = w.through_consent();
        let r = w.callback(&redirect);
        assert_redirect_error(&r, error);
    }
}

#[test]
fn callback_without_keys_asks_host_then_fails_softly() {
    let mut w = World::new(json!({}));
    w.keys = None;
    let (_, redirect) = w.through_consent();
    let r = w.callback(&redirect);
    assert_eq!(w.need_keys, 1);
    assert_redirect_error(&r, "temporarily_unavailable");
}

// ---- token ----

#[test]
fn token_code_checks() {
    let mut w = World::new(json!({}));
    let (client, code) = w.login();
    let base = |code: &str, client: &str, redirect: &str, verifier: &str| {
        vec![
            ("grant_type".to_string(), "authorization_code".to_string()),
            ("code".into(), code.into()),
            ("client_id".into(), client.into()),
            ("redirect_uri".into(), redirect.into()),
            ("code_verifier".into(), verifier.into()),
        ]
    };
    let send = |w: &mut World, pairs: Vec<(String, String)>| {
        let p: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        w.post_form("/token", &p).response()
    };
    let wrong_verifier = "x".repeat(43);
    assert_oauth_error(
        &send(
            &mut w,
            base(&code, &client, CLIENT_REDIRECT, &wrong_verifier),
        ),
        400,
        "invalid_grant",
    );
    assert_oauth_error(
        &send(
            &mut w,
            base(&code, &client, "http://127.0.0.1:1/other", VERIFIER),
        ),
        400,
        "invalid_grant",
    );
    let other = w.register();
    assert_oauth_error(
        &send(&mut w, base(&code, &other, CLIENT_REDIRECT, VERIFIER)),
        400,
        "invalid_grant",
    );
    let mut flipped = code.clone().into_bytes();
    let i = flipped.len() - 5;
    flipped[i] = if flipped[i] == b'A' { b'B' } else { b'A' };
    assert_oauth_error(
        &send(
            &mut w,
            base(
                &String::from_utf8(flipped).unwrap(),
                &client,
                CLIENT_REDIRECT,
                VERIFIER,
            ),
        ),
        400,
        "invalid_grant",
    );
    let mut no_verifier = base(&code, &client, CLIENT_REDIRECT, VERIFIER);
    no_verifier.pop();
    assert_oauth_error(&send(&mut w, no_verifier), 400, "invalid_request");
    // The right request works once; the replay is refused.
    assert_eq!(
        send(&mut w, base(&code, &client, CLIENT_REDIRECT, VERIFIER)).status,
        200
    );
    assert_oauth_error(
        &send(&mut w, base(&code, &client, CLIENT_REDIRECT, VERIFIER)),
        400,
        "invalid_grant",
    );
}

#[test]
fn token_code_expires_after_five_minutes() {
    let mut w = World::new(json!({}));
    let (client, code) = w.login();
    w.now += 301;
    let r = w.redeem(&client, &code);
    assert_oauth_error(&r, 400, "invalid_grant");
    assert!(String::from_utf8_lossy(&r.body).contains("expired"));
}

#[test]
fn token_kind_swaps_are_refused() {
    let mut w = World::new(json!({}));
    let (client, code) = w.login();
    let t = body_json(&w.redeem(&client, &code));
    let refresh = t["refresh_token"].as_str().unwrap();
    // A refresh token presented as a code, a code as a refresh token, a client id as either.
    let r = w.redeem(&client, refresh);
    assert_oauth_error(&r, 400, "invalid_grant");
    let r = w
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &code),
                ("client_id", &client),
            ],
        )
        .response();
    assert_oauth_error(&r, 400, "invalid_grant");
    let r = w
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &client),
                ("client_id", &client),
            ],
        )
        .response();
    assert_oauth_error(&r, 400, "invalid_grant");
    // A client id made from a code does not authorize.
    let r = w.get(&World::authorize_query(&code, &[])).response();
    assert_eq!(r.status, 400);
}

#[test]
fn token_client_authentication_and_grant_types() {
    let mut w = World::new(json!({}));
    let r = w
        .post_form(
            "/token",
            &[("grant_type", "authorization_code"), ("code", "x")],
        )
        .response();
    assert_oauth_error(&r, 401, "invalid_client");
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"mcpgate\"")
    );
    let r = w
        .post_form("/token", &[("grant_type", "password"), ("client_id", "c")])
        .response();
    assert_oauth_error(&r, 400, "unsupported_grant_type");
    let r = w.post_form("/token", &[("client_id", "c")]).response();
    assert_oauth_error(&r, 400, "invalid_request");
    let r = w
        .send(
            "POST",
            "/token",
            &[("content-type", "application/json")],
            "{}",
        )
        .response();
    assert_oauth_error(&r, 400, "invalid_request");
    let r = w
        .send(
            "POST",
            "/token",
            &[("content-type", "application/x-www-form-urlencoded")],
            "grant_type=a&grant_type=b&client_id=c",
        )
        .response();
    assert_oauth_error(&r, 400, "invalid_request");
    let r = w.get("/token").response();
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));
}

#[test]
fn refresh_scope_may_only_narrow_and_reuse_revokes_the_family() {
    let mut w = World::new(json!({}));
    let (client, t) = w.tokens();
    let rt = t["refresh_token"].as_str().unwrap().to_string();
    let r = w
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt),
                ("client_id", &client),
                ("scope", "openid admin"),
            ],
        )
        .response();
    assert_oauth_error(&r, 400, "invalid_scope");
    let r = w
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt),
                ("client_id", &client),
                ("scope", "openid"),
            ],
        )
        .response();
    assert_eq!(r.status, 200);
    let narrowed = body_json(&r);
    assert_eq!(narrowed["scope"], "openid");
    let rt2 = narrowed["refresh_token"].as_str().unwrap().to_string();
    // Reuse of the rotated-out token revokes the family, the new one included.
    let r = w
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt),
                ("client_id", &client),
            ],
        )
        .response();
    assert_oauth_error(&r, 400, "invalid_grant");
    let r = w
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt2),
                ("client_id", &client),
            ],
        )
        .response();
    assert_oauth_error(&r, 400, "invalid_grant");
}

#[test]
fn refresh_upstream_unavailable_is_503_with_retry_after() {
    let mut w = World::new(json!({}));
    let (client, t) = w.tokens();
    w.idp = Idp::Status(0, "");
    let r = w
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", t["refresh_token"].as_str().unwrap()),
                ("client_id", &client),
            ],
        )
        .response();
    assert_oauth_error(&r, 503, "temporarily_unavailable");
    assert_eq!(r.header("retry-after"), Some("5"));
}

#[test]
fn refresh_retried_after_an_idp_outage_is_not_reuse() {
    let mut w = World::new(json!({}));
    let (client, t) = w.tokens();
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", t["refresh_token"].as_str().unwrap()),
        ("client_id", client.as_str()),
    ];
    for down in [Idp::Status(0, ""), Idp::Status(503, "down")] {
        w.idp = down;
        let r = w.post_form("/token", &form).response();
        assert_oauth_error(&r, 503, "temporarily_unavailable");
    }
    // The IdP back: the same token refreshes (the 503s did not spend it) ...
    w.idp = Idp::Tokens;
    let r = w.post_form("/token", &form).response();
    assert_eq!(r.status, 200, "{:?}", body_json(&r));
    let rotated = body_json(&r)["refresh_token"].as_str().unwrap().to_string();
    // ... once: used again, it is reuse, and the whole family goes.
    let r = w.post_form("/token", &form).response();
    assert_oauth_error(&r, 400, "invalid_grant");
    assert!(body_json(&r)["error_description"]
        .as_str()
        .unwrap()
        .contains("reuse"));
    let r = w
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rotated),
                ("client_id", &client),
            ],
        )
        .response();
    assert_oauth_error(&r, 400, "invalid_grant");
}

#[test]
fn without_store_codes_still_expire_and_refresh_works() {
    let mut w = World::with_store(json!({}), false);
    let (client, t) = w.tokens();
    let r = w
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", t["refresh_token"].as_str().unwrap()),
                ("client_id", &client),
            ],
        )
        .response();
    assert_eq!(r.status, 200);
}

#[test]
fn restart_with_same_keys_keeps_tokens_and_rotation_keeps_old_ones() {
    let mut w = World::new(json!({}));
    let (client, t) = w.tokens();
    let access = t["access_token"].as_str().unwrap().to_string();
    // A new gate (restart, another worker) with the same key accepts the tokens.
    let mut w2 = World::new(json!({}));
    assert!(matches!(w2.mcp(&access), Final::Forward(_)));
    // Rotation: new current key, old one kept as previous.
    let mut w3 = World::new(
        json!({"jwt_signing_key": "a-brand-new-signing-key-of-32-characters", "previous_jwt_signing_keys": ["a-signing-key-of-at-least-32-characters!"]}),
    );
    assert!(matches!(w3.mcp(&access), Final::Forward(_)));
    let r = w3
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", t["refresh_token"].as_str().unwrap()),
                ("client_id", &client),
            ],
        )
        .response();
    assert_eq!(
        r.status, 200,
        "refresh token sealed with the previous key still works"
    );
    // Once retired, the old key's tokens are refused.
    let mut w4 = World::new(json!({"jwt_signing_key": "a-brand-new-signing-key-of-32-characters"}));
    assert_eq!(w4.mcp(&access).response().status, 401);
}

#[test]
fn es256_signing_publishes_a_jwks() {
    let mut w = World::new(json!({"signing_algorithm": "ES256"}));
    let jwks = body_json(&w.get("/.well-known/jwks.json").response());
    assert_eq!(jwks["keys"][0]["kty"], "EC");
    let asm = body_json(&w.get("/.well-known/oauth-authorization-server").response());
    assert_eq!(
        asm["jwks_uri"],
        "https://mcp.example.com/.well-known/jwks.json"
    );
    let (_, t) = w.tokens();
    let access = t["access_token"].as_str().unwrap();
    let keys = KeySet::from_json(jwks.to_string().as_bytes()).unwrap();
    assert_eq!(keys.len(), 1, "the published key verifies the token");
    assert!(matches!(w.mcp(access), Final::Forward(_)));
}

// ---- revoke, CORS ----

#[test]
fn revoke_is_200_for_unknown_tokens_and_400_without_token() {
    let mut w = World::new(json!({}));
    assert_eq!(
        w.post_form("/revoke", &[("token", "unknown")])
            .response()
            .status,
        200
    );
    assert_oauth_error(
        &w.post_form("/revoke", &[("client_id", "x")]).response(),
        400,
        "invalid_request",
    );
}

#[test]
fn revoke_reaches_the_idp_when_it_has_an_endpoint() {
    let mut w = World::new(json!({}));
    let (client, t) = w.tokens();
    let before = w.fetches.len();
    w.idp = Idp::Status(200, "");
    let r = w
        .post_form(
            "/revoke",
            &[
                ("token", t["refresh_token"].as_str().unwrap()),
                ("client_id", &client),
            ],
        )
        .response();
    assert_eq!(r.status, 200);
    assert_eq!(w.fetches.len(), before + 1);
    assert_eq!(
        w.fetches.last().unwrap().url,
        "https://auth.example.com/oauth2/revoke"
    );
    assert!(
        String::from_utf8_lossy(&w.fetches.last().unwrap().body).contains("token=upstream-refresh")
    );
}

#[test]
fn revoke_with_the_idp_down_is_503_unless_the_store_revoked_it() {
    for store in [false, true] {
        for down in [
            Idp::Status(0, ""),
            Idp::Status(503, "down"),
            Idp::Status(429, ""),
        ] {
            let mut w = World::with_store(json!({}), store);
            let (client, t) = w.tokens();
            let refresh = t["refresh_token"].as_str().unwrap().to_string();
            w.idp = down;
            let revoke = [("token", refresh.as_str()), ("client_id", client.as_str())];
            let r = w.post_form("/revoke", &revoke).response();
            let refresh_form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh.as_str()),
                ("client_id", client.as_str()),
            ];
            if store {
                // Revoked by the proxy itself: true whatever the IdP says.
                assert_eq!(r.status, 200, "store: {:?}", body_json(&r));
                w.idp = Idp::Tokens;
                let r = w.post_form("/token", &refresh_form).response();
                assert_oauth_error(&r, 400, "invalid_grant");
            } else {
                // Nothing was revoked: RFC 7009 §2.2.1, the client retries later.
                assert_oauth_error(&r, 503, "temporarily_unavailable");
                assert_eq!(r.header("retry-after"), Some("5"));
                // The IdP back, the same request revokes.
                w.idp = Idp::Status(200, "");
                assert_eq!(w.post_form("/revoke", &revoke).response().status, 200);
            }
        }
    }
}

#[test]
fn cors_preflight_and_exposed_challenge() {
    let mut w = World::new(json!({}));
    for path in [
        "/token",
        "/register",
        "/revoke",
        "/.well-known/oauth-authorization-server",
    ] {
        let r = w.send("OPTIONS", path, &[], "").response();
        assert_eq!(r.status, 204, "{path}");
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    }
    let r = w.get("/mcp").response();
    assert_eq!(
        r.header("access-control-expose-headers"),
        Some("WWW-Authenticate")
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

// ---- tampering with every sealed kind, at the endpoints ----

fn flip(s: &str) -> String {
    let mut b = s.as_bytes().to_vec();
    let i = b.len() - 6;
    b[i] = if b[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(b).unwrap()
}

#[test]
fn tampered_or_expired_sealed_values_are_refused_everywhere() {
    let mut w = World::new(json!({"consent": "remember"}));
    // client_id
    let client = w.register();
    assert_eq!(
        w.get(&World::authorize_query(&flip(&client), &[]))
            .response()
            .status,
        400
    );
    assert_eq!(
        w.get(&World::authorize_query(&client[..client.len() - 3], &[]))
            .response()
            .status,
        400,
        "truncated"
    );
    // transaction (consent form)
    let page = w.get(&World::authorize_query(&client, &[])).response();
    let html = String::from_utf8(page.body).unwrap();
    let (txn, csrf) = (hidden(&html, "txn"), hidden(&html, "csrf"));
    let r = w
        .post_form(
            "/consent",
            &[("txn", &flip(&txn)), ("csrf", &csrf), ("action", "approve")],
        )
        .response();
    assert_eq!(r.status, 400);
    w.now += 15 * 60;
    let r = w
        .post_form(
            "/consent",
            &[("txn", &txn), ("csrf", &csrf), ("action", "approve")],
        )
        .response();
    assert_eq!(r.status, 400, "expired transaction");
    assert!(String::from_utf8_lossy(&r.body).contains("expired"));
    w.now -= 15 * 60;
    // state and binding cookie
    let (_, idp) = w.through_consent();
    let state = query_of(location(&idp)).get("state").unwrap().to_string();
    let r = w
        .get(&format!(
            "/auth/callback?code=c&state={}",
            form::encode(&flip(&state))
        ))
        .response();
    assert_eq!(r.status, 400);
    let saved = w.cookies.clone();
    for (n, v) in w.cookies.iter_mut() {
        if n.contains("binding") {
            *v = flip(v);
        }
    }
    assert_eq!(
        w.get(&format!(
            "/auth/callback?code=c&state={}",
            form::encode(&state)
        ))
        .response()
        .status,
        403
    );
    w.cookies = saved;
    // A state swapped into the binding cookie (kind swap) does not open.
    for (n, v) in w.cookies.iter_mut() {
        if n.contains("binding") {
            *v = state.clone();
        }
    }
    assert_eq!(
        w.get(&format!(
            "/auth/callback?code=c&state={}",
            form::encode(&state)
        ))
        .response()
        .status,
        403
    );
    // approvals cookie: tampered means "not remembered" (consent page again)
    let mut w = World::new(json!({"consent": "remember"}));
    let (client, _) = w.through_consent();
    for (n, v) in w.cookies.iter_mut() {
        if n.contains("approvals") {
            *v = flip(v);
        }
    }
    assert_eq!(
        w.get(&World::authorize_query(&client, &[]))
            .response()
            .status,
        200
    );
    // refresh token
    let mut w = World::new(json!({}));
    let (client, t) = w.tokens();
    let rt = t["refresh_token"].as_str().unwrap();
    let r = w
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &flip(rt)),
                ("client_id", &client),
            ],
        )
        .response();
    assert_oauth_error(&r, 400, "invalid_grant");
    w.now += 30 * 86_400 + 1;
    let r = w
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt),
                ("client_id", &client),
            ],
        )
        .response();
    assert_oauth_error(&r, 400, "invalid_grant");
    assert!(String::from_utf8_lossy(&r.body).contains("expired"));
    // state expires after 10 minutes
    let mut w = World::new(json!({}));
    let (_, idp) = w.through_consent();
    let state = query_of(location(&idp)).get("state").unwrap().to_string();
    w.now += 10 * 60;
    let r = w
        .get(&format!(
            "/auth/callback?code=c&state={}",
            form::encode(&state)
        ))
        .response();
    assert_eq!(r.status, 400);
}

#[test]
fn a_token_for_another_resource_is_refused() {
    // Same keys, different resource URL: the audience check stops it.
    let mut a = World::new(json!({}));
    let (_, t) = a.tokens();
    let mut b = World::new(json!({"mcp_path": "/other"}));
    let r = b
        .send(
            "POST",
            "/other",
            &[(
                "authorization",
                &format!("Bearer {}", t["access_token"].as_str().unwrap()),
            )],
            "",
        )
        .response();
    assert_eq!(r.status, 401);
    assert_eq!(r.reason, Some("audience"));
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

mod consent;
