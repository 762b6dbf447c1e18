//! The routes driven through `Gate` like a host would, with a fixed clock, a seeded RNG and an
//! in-test IdP: the harness ([`World`]) is here, the tests are in one module per theme.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use serde_json::{json, Value};

use crate::config::parse_json;
use crate::form::{self, Params};
use crate::gate::Gate;
use crate::http::{
    Env, Forward, HttpRequest, HttpResponse, Outcome, Reply, Request, Response, StoreOp,
};
use crate::jwt::tests::vectors::{self, NOW};
use crate::jwt::KeySet;
use crate::pkce;
use crate::store::{self, MemoryStore};
use crate::testutil::SeqRandom;

mod authorization;
mod callback;
mod client_credentials;
mod clients;
mod consent;
mod cors;
mod flow;
mod guard;
mod limits;
mod origin_headers;
mod paths;
mod registration;
mod revoke;
mod sealed;
mod security;
mod token;
mod tools;

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
        self.send_full(None, None, "192.0.2.7", method, path, headers, body)
    }

    /// Sends a request like a host would and drives it to its end: outbound calls answered
    /// by `idp` (the world's scripted IdP when `None`), store operations by `store` (the
    /// world's store when `None`), the client at `address`, the browser's cookies kept.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn send_full(
        &mut self,
        idp: Option<security::IdpFn>,
        mut store: Option<&mut dyn FnMut(&StoreOp) -> Reply>,
        address: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Final {
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
            client_address: Some(address),
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
                Outcome::Fetch { request, paused } => {
                    let resp = match idp {
                        Some(idp) => idp(&request),
                        None => idp_answer(&self.idp, &request, &self.gate),
                    };
                    self.fetches.push(request);
                    (paused, Reply::Http(resp))
                }
                Outcome::Store { op, paused } => match store.as_mut() {
                    Some(answer) => (paused, answer(&op)),
                    None => {
                        let s = self.store.as_mut().expect("store op without store");
                        (paused, store::perform(s, &op, self.now))
                    }
                },
                Outcome::NeedKeys { paused } => {
                    self.need_keys += 1;
                    (paused, Reply::Keys)
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
