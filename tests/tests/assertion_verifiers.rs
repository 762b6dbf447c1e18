//! The README's two checks of the identity assertion, run as they are against assertions the
//! core signs and the JWKS it publishes (served on a local port): TypeScript with `jose`
//! (`tests/js/mcpgate-assertion.ts`, bundled by esbuild, run by Node; installed by
//! `scripts/ensure-js-assertion.sh`) and Python with PyJWT (`tests/python/mcpgate_assertion.py`,
//! the `.venv` of `scripts/ensure-python-origin.sh`). Both accept ES256 and EdDSA assertions
//! and those of a retired key still published, and refuse a tampered one, one for another
//! audience, and the proxy's own ES256 access token (same keys' set, another `typ`). The
//! end-to-end identity scenarios run the Python check in the origin behind both hosts.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use mcpgate_e2e::harness::repo_root;
use mcpgate_filter::access_token::{self, Subject};
use mcpgate_filter::config::parse_json;
use mcpgate_filter::random::OsRandom;
use mcpgate_filter::token_cache::TokenCache;
use mcpgate_filter::{Env, Gate, Outcome, Request};
use serde_json::{json, Value};

const BASE: &str = "https://mcp.example.com";
const KEY: &str = "a-signing-key-of-at-least-32-characters!";
const NEW_KEY: &str = "a-brand-new-signing-key-of-32-characters";

fn gate(extra: Value) -> Gate {
    let mut cfg = json!({
        "user_pool_id": "eu-central-1_TEST",
        "client_id": "app-client",
        "client_secret": "app-secret",
        "base_url": BASE,
        "cognito_domain": "https://auth.example.com",
        "jwt_signing_key": KEY,
        "identity_assertion": true,
    });
    for (k, v) in extra.as_object().unwrap() {
        cfg[k] = v.clone();
    }
    Gate::new(
        parse_json(cfg.to_string().as_bytes(), &[], &|_| None)
            .unwrap()
            .config,
    )
    .unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// One of `gate`'s access tokens for alice, and the assertion the guard sends with it.
fn token_and_assertion(gate: &Gate) -> (String, String) {
    let mut random = OsRandom::default();
    let subject = Subject {
        client_id: "client-1".into(),
        sub: "alice-sub".into(),
        scope: "openid".into(),
        username: Some("alice".into()),
        groups: vec!["admins".into()],
        email: None,
        extra: vec![],
        sid: None,
    };
    let mut cache = TokenCache::new(8);
    let mut env = Env {
        now: now(),
        random: &mut random,
        upstream_keys: None,
        store: false,
        native_rsa: None,
        cache: Some(&mut cache),
    };
    let token = access_token::mint(gate, &subject, 600, &mut env).unwrap();
    let auth = format!("Bearer {token}");
    let headers = [("authorization", auth.as_str())];
    let req = Request {
        method: "POST",
        path: "/mcp",
        headers: &headers,
        body: b"",
        client_address: None,
    };
    let Outcome::Forward(f) = gate.handle(&req, &mut env) else {
        panic!("not forwarded")
    };
    let assertion = f
        .set_headers
        .iter()
        .find(|(k, _)| k == "x-mcpgate-assertion")
        .map(|(_, v)| v.clone())
        .unwrap();
    (token, assertion)
}

/// Serves `jwks` at `/.well-known/jwks.json` on a free port; its URL.
async fn serve(jwks: Value) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/.well-known/jwks.json",
        listener.local_addr().unwrap()
    );
    let app = axum::Router::new().route(
        "/.well-known/jwks.json",
        axum::routing::get(move || {
            let jwks = jwks.clone();
            async move { axum::Json(jwks) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// The TypeScript check bundled with its `jose` (once per test process).
fn ts_bundle() -> PathBuf {
    static BUNDLE: OnceLock<PathBuf> = OnceLock::new();
    BUNDLE
        .get_or_init(|| {
            let root = repo_root();
            let esbuild = root.join("edge-worker/node_modules/.bin/esbuild");
            assert!(
                esbuild.is_file() && root.join("tests/js/node_modules/jose").is_dir(),
                "run scripts/build-worker.sh (esbuild) and scripts/ensure-js-assertion.sh (jose)"
            );
            let out = root.join("target/js-assertion/verify-cli.mjs");
            let status = Command::new(esbuild)
                .arg(root.join("tests/js/verify-cli.ts"))
                .args([
                    "--bundle",
                    "--platform=node",
                    "--format=esm",
                    "--log-level=warning",
                ])
                .arg(format!("--outfile={}", out.display()))
                .status()
                .unwrap();
            assert!(status.success(), "esbuild failed");
            out
        })
        .clone()
}

/// Both checks' verdicts on `assertion` with this JWKS, issuer and audience.
async fn verdicts(jwks_url: &str, issuer: &str, audience: &str, assertion: &str) -> [Value; 2] {
    let run = |mut cmd: tokio::process::Command| async move {
        let out = cmd.output().await.unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        serde_json::from_str::<Value>(text.trim())
            .unwrap_or_else(|_| panic!("{text}\n{}", String::from_utf8_lossy(&out.stderr)))
    };
    let mut node = tokio::process::Command::new("node");
    node.arg(ts_bundle())
        .args([jwks_url, issuer, audience, assertion]);
    let script = "import json, sys\n\
                  from mcpgate_assertion import assertion_verifier\n\
                  import jwt\n\
                  try:\n    c = assertion_verifier(*sys.argv[1:4])(sys.argv[4])\n    print(json.dumps({'valid': True, 'claims': c}))\n\
                  except jwt.PyJWTError as e:\n    print(json.dumps({'valid': False, 'error': repr(e)}))\n";
    let mut python = tokio::process::Command::new(repo_root().join(".venv/bin/python"));
    python
        .env("PYTHONPATH", repo_root().join("tests/python"))
        .args(["-c", script, jwks_url, issuer, audience, assertion]);
    [run(node).await, run(python).await]
}

async fn assert_valid(jwks_url: &str, assertion: &str, what: &str) {
    for v in verdicts(jwks_url, BASE, &format!("{BASE}/mcp"), assertion).await {
        assert_eq!(v["valid"], json!(true), "{what}: {v}");
        assert_eq!(v["claims"]["sub"], "alice-sub", "{what}: {v}");
        assert_eq!(v["claims"]["groups"], json!(["admins"]), "{what}: {v}");
    }
}

async fn assert_refused(jwks_url: &str, audience: &str, assertion: &str, what: &str) {
    for v in verdicts(jwks_url, BASE, audience, assertion).await {
        assert_eq!(v["valid"], json!(false), "{what}: {v}");
    }
}

#[tokio::test]
async fn the_readme_checks_accept_the_proxys_assertions_and_nothing_else() {
    let aud = format!("{BASE}/mcp");
    // ES256 (the proxy's tokens HS256).
    let g = gate(json!({}));
    let url = serve(g.public_jwks().unwrap()).await;
    let (_, a) = token_and_assertion(&g);
    assert_valid(&url, &a, "ES256").await;
    let dot = a.find('.').unwrap() + 1;
    let mut tampered = a.clone();
    let c = if &a[dot..=dot] == "f" { "g" } else { "f" };
    tampered.replace_range(dot..=dot, c);
    assert_refused(&url, &aud, &tampered, "tampered").await;
    assert_refused(&url, "https://elsewhere.example", &a, "another audience").await;

    // EdDSA.
    let g = gate(json!({"signing_algorithm": "EdDSA"}));
    let url = serve(g.public_jwks().unwrap()).await;
    let (_, a) = token_and_assertion(&g);
    assert_valid(&url, &a, "EdDSA").await;

    // Rotation: an assertion of the retired key, the new set publishing both.
    let old = gate(json!({}));
    let (_, before) = token_and_assertion(&old);
    let rotated = gate(json!({"jwt_signing_key": NEW_KEY, "previous_jwt_signing_keys": [KEY]}));
    let url = serve(rotated.public_jwks().unwrap()).await;
    assert_valid(&url, &before, "a retired key's").await;

    // The proxy's ES256 access token: a key of the same set, but no assertion.
    let g = gate(json!({"signing_algorithm": "ES256"}));
    let url = serve(g.public_jwks().unwrap()).await;
    let (token, a) = token_and_assertion(&g);
    assert_valid(&url, &a, "ES256 with ES256 tokens").await;
    assert_refused(&url, &aud, &token, "an access token").await;
}
