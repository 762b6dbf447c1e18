//! Real MCP clients end to end, host-generic: each scenario replays what one client sends
//! (`tests/fixtures/clients/*.json`, researched from public sources) through a running proxy —
//! its discovery requests, its exact registration body or its Client ID Metadata Document
//! (served at a URL of the same shape by [`CimdServer`]), its authorization request, consent,
//! sign-in at the emulator, the callback, its token request (with an RFC 7523 assertion for
//! ChatGPT), a tool call and a refresh. The MCP Inspector's browser needs (CORS preflights, a
//! readable 401) and a machine client's `client_credentials` grant have scenarios of their
//! own. [`client_scenario_tests!`](crate::client_scenario_tests) instantiates them per host.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::cimd_server::CimdServer;
use crate::cognito::{hosted_ui_login, pkce_pair, PkcePair};
use crate::harness::{http_client, unique_name};
use crate::journey::{form_value, location, query, whoami, Jar};
use crate::jwt::RsaJwtKey;
use crate::scenarios::{call_whoami, resource_metadata, Host, HostOptions};

/// The placeholder MCP server of the fixtures.
const FIXTURE_MCP: &str = "https://mcp.example.com/mcp";
const FIXTURE_BASE: &str = "https://mcp.example.com";
/// RFC 7523 assertion type.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A client's fixture file, parsed.
pub fn fixture(name: &str) -> Value {
    let text = match name {
        "claude-code" => include_str!("../fixtures/clients/claude-code.json"),
        "claude-ai" => include_str!("../fixtures/clients/claude-ai.json"),
        "cursor" => include_str!("../fixtures/clients/cursor.json"),
        "vscode" => include_str!("../fixtures/clients/vscode.json"),
        "chatgpt" => include_str!("../fixtures/clients/chatgpt.json"),
        "mcp-inspector" => include_str!("../fixtures/clients/mcp-inspector.json"),
        "goose" => include_str!("../fixtures/clients/goose.json"),
        "sdk-typescript" => include_str!("../fixtures/clients/sdk-typescript.json"),
        "sdk-python" => include_str!("../fixtures/clients/sdk-python.json"),
        "sdk-rmcp" => include_str!("../fixtures/clients/sdk-rmcp.json"),
        other => panic!("no fixture {other}"),
    };
    serde_json::from_str(text).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// Options for the client scenarios: documents from the local [`CimdServer`] (loopback, so
/// `cimd_allow_private`), fetched through whatever the host needs for any host.
pub fn client_options<O: HostOptions>() -> O {
    O::default()
        .config("cimd_allow_private", json!(true))
        .fetch_any_host()
}

/// [`client_options`] with `m2m-client` as a machine client (`client_credentials`).
pub fn machine_options<O: HostOptions>() -> O {
    client_options::<O>()
        .config("accepted_client_ids", json!(["m2m-client"]))
        .config("accepted_client_scopes", json!([]))
}

/// Replaces every occurrence of the `from` strings in the string values of `v`.
fn localize(v: &Value, map: &[(String, String)]) -> Value {
    match v {
        Value::String(s) => {
            let mut s = s.clone();
            for (from, to) in map {
                s = s.replace(from.as_str(), to);
            }
            Value::String(s)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| localize(x, map)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), localize(x, map)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// One client talking to one proxy: its fixture, localized to the proxy (and to the document
/// server when it has a metadata document), and the browser's cookies.
pub struct ClientRun<'h, H: Host> {
    pub h: &'h H,
    pub name: &'static str,
    pub fixture: Value,
    pub http: reqwest::Client,
    pub jar: Jar,
    /// Where the fixture's real URLs now point.
    pub map: Vec<(String, String)>,
    pub docs: Option<CimdServer>,
}

/// What came back to the client's redirect URI.
pub struct Redirect {
    pub location: String,
    pub query: BTreeMap<String, String>,
    pub pkce: PkcePair,
}

fn url_path(url: &str) -> String {
    url::Url::parse(url)
        .map(|u| u.path().to_owned())
        .unwrap_or_default()
}

impl<'h, H: Host> ClientRun<'h, H> {
    /// The client `name` in front of `h`; with a document server when its fixture has a
    /// metadata document (and its `jwks_uri`, then signed by `key`).
    pub async fn new(h: &'h H, name: &'static str) -> Self {
        let fixture = fixture(name);
        let mut map = vec![
            (FIXTURE_MCP.to_owned(), h.mcp_url()),
            (FIXTURE_BASE.to_owned(), h.base_url().to_owned()),
        ];
        let mut docs = None;
        if let Some(doc) = fixture.get("cimd").filter(|d| d.is_object()) {
            let server = CimdServer::start().await.unwrap();
            let variants = fixture.get("cimd_variants").and_then(Value::as_array);
            for doc in std::iter::once(doc).chain(variants.into_iter().flatten()) {
                for key in ["client_id", "jwks_uri"] {
                    if let Some(url) = doc.get(key).and_then(Value::as_str) {
                        let local = (url.to_owned(), server.url(&url_path(url)));
                        if !map.contains(&local) {
                            map.push(local);
                        }
                    }
                }
            }
            docs = Some(server);
        }
        let fixture = localize(&fixture, &map);
        Self {
            h,
            name,
            fixture,
            http: http_client(),
            jar: Jar::default(),
            map,
            docs,
        }
    }

    /// The client's discovery: the unauthenticated MCP request and its 401, the protected
    /// resource metadata (path-aware, then root) and the authorization server metadata (RFC
    /// 8414, then OpenID), each with the client's `MCP-Protocol-Version`. Returns the RFC 8414
    /// document.
    pub async fn discover(&self, protocol_version: &str) -> Value {
        let h = self.h;
        let resp = self
            .http
            .post(h.mcp_url())
            .header("mcp-protocol-version", protocol_version)
            .header("accept", "application/json, text/event-stream")
            .json(
                &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": protocol_version, "capabilities": {},
                "clientInfo": {"name": self.name, "version": "1"}}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            401,
            "{}: unauthenticated initialize",
            self.name
        );
        let www = resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        let prm_url = resource_metadata(&www);
        assert!(www.contains("scope=\"openid\""), "{}: {www}", self.name);
        let base = h.base_url();
        for url in [
            prm_url.clone(),
            format!("{base}/.well-known/oauth-protected-resource"),
        ] {
            let prm: Value = self.get_json(&url, protocol_version).await;
            assert_eq!(prm["resource"], json!(h.mcp_url()), "{}: {url}", self.name);
            assert_eq!(
                prm["authorization_servers"][0],
                json!(base),
                "{}",
                self.name
            );
        }
        let oidc: Value = self
            .get_json(
                &format!("{base}/.well-known/openid-configuration"),
                protocol_version,
            )
            .await;
        let asm: Value = self
            .get_json(
                &format!("{base}/.well-known/oauth-authorization-server"),
                protocol_version,
            )
            .await;
        assert_eq!(oidc["token_endpoint"], asm["token_endpoint"]);
        assert_eq!(asm["issuer"], json!(base));
        assert_eq!(asm["code_challenge_methods_supported"], json!(["S256"]));
        assert!(asm["response_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("code")));
        assert_eq!(asm["authorization_response_iss_parameter_supported"], true);
        asm
    }

    async fn get_json(&self, url: &str, protocol_version: &str) -> Value {
        let resp = self
            .http
            .get(url)
            .header("mcp-protocol-version", protocol_version)
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{}: GET {url}", self.name);
        resp.json().await.unwrap()
    }

    /// Posts a registration body (RFC 7591) and checks what the proxy answers: 201, the
    /// redirect URIs as sent, a public client (`none`, no secret) whatever was asked.
    pub async fn register(&self, body: &Value) -> String {
        let resp = self
            .http
            .post(format!("{}/register", self.h.base_url()))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let answer: Value = resp.json().await.unwrap();
        assert_eq!(status, 201, "{}: register {body}: {answer}", self.name);
        assert_eq!(
            answer["redirect_uris"], body["redirect_uris"],
            "{}",
            self.name
        );
        assert_eq!(
            answer["token_endpoint_auth_method"], "none",
            "{}",
            self.name
        );
        assert!(answer.get("client_secret").is_none(), "{}", self.name);
        let granted = answer["grant_types"].as_array().unwrap();
        assert!(granted.contains(&json!("authorization_code")), "{answer}");
        if let Some(app) = body.get("application_type") {
            assert_eq!(&answer["application_type"], app, "{}", self.name);
        }
        answer["client_id"].as_str().unwrap().to_owned()
    }

    /// Every registration body of the fixture (and its variants) is accepted.
    pub async fn register_every_shape(&self) {
        if let Some(body) = self.fixture.get("registration").filter(|b| b.is_object()) {
            self.register(body).await;
        }
        for variant in self
            .fixture
            .get("registration_variants")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let mut body = variant.clone();
            body.as_object_mut().unwrap().remove("$comment");
            self.register(&body).await;
        }
    }

    /// Serves the fixture's metadata document (its `jwks_uri` with `key`'s public key) and
    /// returns its URL, the client id.
    pub fn publish_document(&self, key: Option<&RsaJwtKey>) -> String {
        self.publish(self.fixture["cimd"].clone(), key)
    }

    /// Serves `doc` (and its `jwks_uri` with `key`'s public key); returns its URL.
    pub fn publish(&self, mut doc: Value, key: Option<&RsaJwtKey>) -> String {
        let docs = self
            .docs
            .as_ref()
            .expect("a client with a metadata document");
        if let Some(o) = doc.as_object_mut() {
            o.remove("$comment");
        }
        let url = doc["client_id"].as_str().unwrap().to_owned();
        docs.put(&url_path(&url), doc.clone());
        if let (Some(jwks_uri), Some(key)) = (doc.get("jwks_uri").and_then(Value::as_str), key) {
            docs.put(&url_path(jwks_uri), json!({"keys": [key.jwk()]}));
        }
        url
    }

    /// The fixture's authorization request for `client_id` (its parameters, a fresh PKCE
    /// pair, `overrides` applied), through consent and the emulator's sign-in as `user`, to the
    /// proxy's redirect back to the client. Checks `state` comes back exactly and `iss` is the
    /// proxy (RFC 9207).
    pub async fn authorize(&mut self, client_id: &str, overrides: &[(&str, &str)]) -> Redirect {
        let base = self.h.base_url().to_owned();
        let pkce = pkce_pair();
        let mut params: BTreeMap<String, String> = self.fixture["authorize"]["params"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        params.insert("client_id".into(), client_id.to_owned());
        params.insert("code_challenge".into(), pkce.challenge.clone());
        if params.get("state").is_some_and(|s| s.starts_with('<')) {
            params.insert("state".into(), unique_name("state"));
        }
        for (k, v) in overrides {
            params.insert((*k).to_owned(), (*v).to_owned());
        }
        let redirect_uri = params["redirect_uri"].clone();
        let state = params["state"].clone();
        let resp = self
            .http
            .get(format!("{base}/authorize"))
            .query(&params)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        self.jar.take(&resp);
        let page = resp.text().await.unwrap();
        assert_eq!(status, 200, "{}: authorize: {page}", self.name);
        let shown = match url::Url::parse(&redirect_uri) {
            Ok(u) if u.scheme().starts_with("http") => u.host_str().unwrap_or("").to_owned(),
            _ => "app on your device".to_owned(),
        };
        assert!(
            page.contains(&shown),
            "{}: consent page shows {shown}",
            self.name
        );
        let resp = self
            .http
            .post(format!("{base}/consent"))
            .header("cookie", self.jar.header())
            .form(&[
                ("txn", form_value(&page, "txn").unwrap()),
                ("csrf", form_value(&page, "csrf").unwrap()),
                ("action", "approve".into()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 302, "{}: consent", self.name);
        self.jar.take(&resp);
        let idp_url = location(&resp).unwrap();
        assert!(idp_url.starts_with(&self.h.idp().authorization_endpoint()));
        let callback = hosted_ui_login(&self.http, &idp_url, "alice", "alice-password")
            .await
            .unwrap();
        let resp = self
            .http
            .get(callback.as_str())
            .header("cookie", self.jar.header())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 302, "{}: callback", self.name);
        let loc = location(&resp).unwrap();
        assert!(
            loc.starts_with(&format!("{redirect_uri}?")),
            "{}: back to {redirect_uri}: {loc}",
            self.name
        );
        let q: BTreeMap<String, String> = url::Url::parse(&loc)
            .map(|u| u.query_pairs().into_owned().collect())
            .unwrap_or_else(|_| query(&loc).unwrap());
        assert_eq!(q.get("state"), Some(&state), "{}: state exactly", self.name);
        assert_eq!(q.get("iss"), Some(&base), "{}: RFC 9207 iss", self.name);
        assert!(q.contains_key("code"), "{}: {loc}", self.name);
        Redirect {
            location: loc,
            query: q,
            pkce,
        }
    }

    /// The fixture's token request of `grant` (`authorization_code` / `refresh_token`),
    /// placeholders filled: `<code>`, `<verifier>`, `<refresh token>`, the client id, a fresh
    /// assertion signed by `key`. Returns the status and the answer.
    pub async fn token(
        &self,
        grant: &str,
        client_id: &str,
        values: &[(&str, &str)],
        key: Option<&RsaJwtKey>,
    ) -> (u16, Value) {
        let mut form: Vec<(String, String)> = Vec::new();
        for (k, v) in self.fixture["token"][grant].as_object().unwrap() {
            let v = v.as_str().unwrap();
            let filled = match (k.as_str(), v.starts_with('<')) {
                ("client_id", _) => client_id.to_owned(),
                ("client_assertion", _) => {
                    let key = key.expect("a signing key for the assertion");
                    self.assertion(client_id, key)
                }
                (name, true) => values
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| (*v).to_owned())
                    .unwrap_or_else(|| panic!("{}: no value for {name}", self.name)),
                (_, false) => v.to_owned(),
            };
            form.push((k.clone(), filled));
        }
        let resp = self
            .http
            .post(format!("{}/token", self.h.base_url()))
            .header("accept", "application/json")
            .form(&form)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// An RFC 7523 client assertion of `client_id`, signed with `key` (RS256, `aud` = the
    /// proxy's issuer, 300 s, a fresh `jti`).
    pub fn assertion(&self, client_id: &str, key: &RsaJwtKey) -> String {
        let now = crate::scenarios::now();
        key.sign_compact(
            &json!({"alg": "RS256", "kid": key.kid(), "typ": "JWT"}),
            &json!({"iss": client_id, "sub": client_id, "aud": self.h.base_url(),
                    "iat": now, "exp": now + 300, "jti": unique_name("jti")}),
        )
    }

    /// From the redirect to a tool call and a refresh: the token request, `whoami` (the
    /// identity arrives, the token does not), the refresh (rotated) and a call with the new
    /// access token.
    pub async fn finish(&self, client_id: &str, redirect: &Redirect, key: Option<&RsaJwtKey>) {
        let code = redirect.query["code"].as_str();
        let verifier = redirect.pkce.verifier.as_str();
        let (status, body) = self
            .token(
                "authorization_code",
                client_id,
                &[("code", code), ("code_verifier", verifier)],
                key,
            )
            .await;
        assert_eq!(status, 200, "{}: token: {body}", self.name);
        assert_eq!(body["token_type"], "Bearer", "{}", self.name);
        let access = body["access_token"].as_str().unwrap().to_owned();
        let refresh = body["refresh_token"].as_str().unwrap().to_owned();
        let out = whoami(&self.h.mcp_url(), &access).await.unwrap();
        assert_eq!(out["authorization_present"], json!(false), "{out}");
        assert_eq!(
            out["headers"]["x-mcpgate-username"],
            json!("alice"),
            "{out}"
        );
        assert_eq!(
            out["headers"]["x-mcpgate-client-id"],
            json!(client_id),
            "{out}"
        );
        let (status, body) = self
            .token(
                "refresh_token",
                client_id,
                &[("refresh_token", &refresh)],
                key,
            )
            .await;
        assert_eq!(status, 200, "{}: refresh: {body}", self.name);
        assert_ne!(body["refresh_token"].as_str().unwrap(), refresh, "rotated");
        let (status, _, answer) = call_whoami(self.h, body["access_token"].as_str()).await;
        assert_eq!(status, 200, "{}: after refresh: {answer}", self.name);
    }
}

/// Redeems the code of `r` as a public client (no authentication): the response.
async fn redeem_public(
    h: &impl Host,
    client: &str,
    r: &Redirect,
    redirect: &str,
) -> reqwest::Response {
    http_client()
        .post(format!("{}/token", h.base_url()))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &r.query["code"]),
            ("code_verifier", &r.pkce.verifier),
            ("redirect_uri", redirect),
            ("client_id", client),
            ("resource", &h.mcp_url()),
        ])
        .send()
        .await
        .unwrap()
}

/// Whether the metadata makes a client that needs `none` with CIMD (Claude, Claude Code)
/// choose its document over registration.
fn cimd_with_none(asm: &Value) -> bool {
    asm["client_id_metadata_document_supported"] == json!(true)
        && asm["token_endpoint_auth_methods_supported"]
            .as_array()
            .is_some_and(|m| m.contains(&json!("none")))
}

/// Claude Code: its metadata document (port-less loopback URIs, a port in the request); its
/// registration body is accepted too.
pub async fn claude_code(h: &impl Host) {
    let mut c = ClientRun::new(h, "claude-code").await;
    let asm = c.discover("2025-11-25").await;
    assert!(
        cimd_with_none(&asm),
        "Claude Code would not choose CIMD: {asm}"
    );
    c.register_every_shape().await;
    let client_id = c.publish_document(None);
    let r = c.authorize(&client_id, &[]).await;
    c.finish(&client_id, &r, None).await;
    let docs = c.docs.as_ref().unwrap();
    assert!(
        docs.hits(&url_path(&client_id)) >= 1,
        "the document was fetched"
    );
}

/// Claude (claude.ai, the desktop app): its document (an https redirect); its registration
/// asking for `client_secret_post` answered with `none`; and the desktop app's Code tab,
/// registering the private-use `claude://` redirect.
pub async fn claude_ai(h: &impl Host) {
    let mut c = ClientRun::new(h, "claude-ai").await;
    let asm = c.discover("2025-11-25").await;
    assert!(cimd_with_none(&asm), "Claude would not choose CIMD: {asm}");
    c.register_every_shape().await;
    let client_id = c.publish_document(None);
    let r = c.authorize(&client_id, &[]).await;
    assert!(r
        .location
        .starts_with("https://claude.ai/api/mcp/auth_callback?"));
    c.finish(&client_id, &r, None).await;

    let app = c.fixture["desktop_code_tab"]["redirect_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut body = fixture("claude-code")["registration"].clone();
    body["redirect_uris"] = json!([app]);
    let desktop = c.register(&body).await;
    let r = c.authorize(&desktop, &[("redirect_uri", &app)]).await;
    assert!(r
        .location
        .starts_with("claude://claude.ai/mcp-auth-callback/sdk?"));
    let resp = redeem_public(h, &desktop, &r, &app).await;
    assert_eq!(resp.status(), 200, "claude:// code redeemed");
}

/// Cursor: registration only, three redirect URIs of three kinds in one body; the desktop's
/// loopback callback, and the private-use `cursor://` one.
pub async fn cursor(h: &impl Host) {
    let mut c = ClientRun::new(h, "cursor").await;
    c.discover("2025-11-25").await;
    c.register_every_shape().await;
    let body = c.fixture["registration"].clone();
    let client_id = c.register(&body).await;
    let r = c.authorize(&client_id, &[]).await;
    c.finish(&client_id, &r, None).await;

    let app = "cursor://anysphere.cursor-mcp/oauth/callback";
    let r = c.authorize(&client_id, &[("redirect_uri", app)]).await;
    assert!(r.location.starts_with(&format!("{app}?")));
    let resp = redeem_public(h, &client_id, &r, app).await;
    assert_eq!(resp.status(), 200, "cursor:// code redeemed");
}

/// VS Code: its document (native, loopback without a path, a vscode.dev relay), a standard
/// base64 `state`; its registration body with a device-code grant is accepted too.
pub async fn vscode(h: &impl Host) {
    let mut c = ClientRun::new(h, "vscode").await;
    let asm = c.discover("2025-11-25").await;
    assert_eq!(asm["client_id_metadata_document_supported"], true);
    c.register_every_shape().await;
    let client_id = c.publish_document(None);
    let state = c.fixture["authorize"]["params"]["state"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(state.contains('+') && state.contains('/') && state.ends_with('='));
    let r = c.authorize(&client_id, &[]).await;
    c.finish(&client_id, &r, None).await;
}

/// ChatGPT: its document with `private_key_jwt` (keys at `jwks_uri`), `id_token_hint` on the
/// authorization request, assertions at the token endpoint (fresh ones for the refresh).
pub async fn chatgpt(h: &impl Host) {
    let key = RsaJwtKey::from_pkcs8_pem(
        "chatgpt-test-key",
        crate::cognito::config::DEFAULT_KEYS_PEM[2],
    )
    .unwrap();
    let mut c = ClientRun::new(h, "chatgpt").await;
    let asm = c.discover("2025-11-25").await;
    assert_eq!(asm["client_id_metadata_document_supported"], true);
    assert!(
        asm["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("private_key_jwt")),
        "ChatGPT uses private_key_jwt only when it is listed: {asm}"
    );
    assert!(asm["token_endpoint_auth_signing_alg_values_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("RS256")));
    assert_eq!(
        c.fixture["token"]["authorization_code"]["client_assertion_type"],
        json!(JWT_BEARER)
    );
    c.register_every_shape().await;
    let client_id = c.publish_document(Some(&key));
    let r = c
        .authorize(
            &client_id,
            &[("id_token_hint", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln")],
        )
        .await;
    // An assertion signed by another key is refused (the code stays unused).
    let impostor = RsaJwtKey::from_pkcs8_pem(
        "chatgpt-test-key",
        crate::cognito::config::DEFAULT_KEYS_PEM[1],
    )
    .unwrap();
    let (status, body) = c
        .token(
            "authorization_code",
            &client_id,
            &[
                ("code", &r.query["code"]),
                ("code_verifier", &r.pkce.verifier),
            ],
            Some(&impostor),
        )
        .await;
    assert_eq!(
        (status, body["error"].clone()),
        (401, json!("invalid_client")),
        "{body}"
    );
    c.finish(&client_id, &r, Some(&key)).await;

    // The stable document also lists none: a token request without an assertion works. The
    // per-connection variant lists only private_key_jwt: without one, no token.
    let r = c.authorize(&client_id, &[]).await;
    let stable_redirect = "https://chatgpt.com/connector_platform_oauth_redirect";
    let resp = redeem_public(h, &client_id, &r, stable_redirect).await;
    assert_eq!(resp.status(), 200, "none, as the document also lists it");
    let variant = c.fixture["cimd_variants"][0].clone();
    let variant_redirect = variant["redirect_uris"][0].as_str().unwrap().to_owned();
    let variant_id = c.publish(variant, Some(&key));
    let r = c
        .authorize(&variant_id, &[("redirect_uri", &variant_redirect)])
        .await;
    let resp = redeem_public(h, &variant_id, &r, &variant_redirect).await;
    assert_eq!(
        resp.status(),
        401,
        "private_key_jwt only: no assertion, no token"
    );
    let docs = c.docs.as_ref().unwrap();
    let jwks = url_path(c.fixture["cimd"]["jwks_uri"].as_str().unwrap());
    assert!(docs.hits(&jwks) >= 1, "the key set was fetched");
}

/// Goose: its document (port-less loopback URIs, IPv6 too), discovery with rmcp's
/// `MCP-Protocol-Version: 2024-11-05`, a refresh with `scope`.
pub async fn goose(h: &impl Host) {
    let mut c = ClientRun::new(h, "goose").await;
    let asm = c.discover("2024-11-05").await;
    assert_eq!(asm["client_id_metadata_document_supported"], true);
    c.register_every_shape().await;
    let client_id = c.publish_document(None);
    let r = c.authorize(&client_id, &[]).await;
    c.finish(&client_id, &r, None).await;
}

/// The MCP Inspector (v1, proxy mode): registration of its two loopback callbacks, the code
/// flow; the v2 registration (empty scope, native) is accepted too.
pub async fn mcp_inspector(h: &impl Host) {
    let mut c = ClientRun::new(h, "mcp-inspector").await;
    c.discover("2025-11-25").await;
    c.register_every_shape().await;
    let body = c.fixture["registration"].clone();
    let client_id = c.register(&body).await;
    let r = c.authorize(&client_id, &[]).await;
    c.finish(&client_id, &r, None).await;
}

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The MCP Inspector in direct mode, in a browser at `http://localhost:6274`: every
/// preflight it sends is answered without a token; the 401, the OAuth answers and the MCP
/// server's answers carry `Access-Control-Allow-Origin` and expose what the Inspector reads
/// (`WWW-Authenticate`, `Mcp-Session-Id`, `Mcp-Protocol-Version`).
pub async fn mcp_inspector_in_the_browser(h: &impl Host) {
    let c = ClientRun::new(h, "mcp-inspector").await;
    let browser = &c.fixture["browser"];
    let origin = browser["origin"].as_str().unwrap();
    let base = h.base_url();
    let http = http_client();
    for (endpoint, headers) in browser["preflight_by_endpoint"].as_object().unwrap() {
        let (method, path) = endpoint.split_once(' ').unwrap();
        let path = path.split([',', '[', ' ']).next().unwrap().trim();
        let requested: Vec<&str> = headers
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let mut req = http
            .request(reqwest::Method::OPTIONS, format!("{base}{path}"))
            .header("origin", origin)
            .header("access-control-request-method", method);
        if !requested.is_empty() {
            req = req.header("access-control-request-headers", requested.join(","));
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 204, "preflight {endpoint}");
        let allow_origin = header(&resp, "access-control-allow-origin").unwrap();
        assert!(allow_origin == "*" || allow_origin == origin, "{endpoint}");
        assert!(header(&resp, "access-control-allow-credentials").is_none());
        let methods = header(&resp, "access-control-allow-methods").unwrap();
        assert!(methods.contains(method), "{endpoint}: {methods}");
        let allowed = header(&resp, "access-control-allow-headers")
            .unwrap_or_default()
            .to_ascii_lowercase();
        for h in &requested {
            assert!(allowed.contains(h), "{endpoint}: {h} not in {allowed}");
        }
    }

    // The 401 is readable: the Inspector's SDK reads resource_metadata and scope from it.
    let resp = http
        .post(h.mcp_url())
        .header("origin", origin)
        .header("content-type", "application/json")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let expose = header(&resp, "access-control-expose-headers")
        .unwrap()
        .to_ascii_lowercase();
    for name in browser["needs_exposed"].as_array().unwrap() {
        let name = name.as_str().unwrap().to_ascii_lowercase();
        assert!(
            expose.contains(&name),
            "{name} exposed on the 401: {expose}"
        );
    }
    assert!(header(&resp, "access-control-allow-origin").is_some());
    assert!(header(&resp, "www-authenticate")
        .unwrap()
        .contains("resource_metadata"));

    // Registration and the token endpoint answer the page too.
    let resp = http
        .post(format!("{base}/register"))
        .header("origin", origin)
        .json(&c.fixture["registration"])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert!(header(&resp, "access-control-allow-origin").is_some());
    let resp = http
        .post(format!("{base}/token"))
        .header("origin", origin)
        .form(&[("grant_type", "authorization_code"), ("client_id", "x")])
        .send()
        .await
        .unwrap();
    assert!(
        header(&resp, "access-control-allow-origin").is_some(),
        "token errors too"
    );

    // The MCP server's own answers: initialize through the proxy, read the session id.
    let mut run = ClientRun::new(h, "mcp-inspector").await;
    let client_id = run.register(&run.fixture["registration"].clone()).await;
    let r = run.authorize(&client_id, &[]).await;
    let (status, body) = run
        .token(
            "authorization_code",
            &client_id,
            &[
                ("code", &r.query["code"]),
                ("code_verifier", &r.pkce.verifier),
            ],
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let resp = http
        .post(h.mcp_url())
        .header("origin", origin)
        .header("accept", "application/json, text/event-stream")
        .bearer_auth(body["access_token"].as_str().unwrap())
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "inspector", "version": "1"}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(header(&resp, "access-control-allow-origin").is_some());
    let expose = header(&resp, "access-control-expose-headers")
        .unwrap()
        .to_ascii_lowercase();
    for name in ["www-authenticate", "mcp-session-id", "mcp-protocol-version"] {
        assert!(
            expose.contains(name),
            "{name} exposed on the origin's answer: {expose}"
        );
    }
}

/// Machine clients (the MCP client-credentials extension, as the SDKs send it): the
/// TypeScript and Python SDKs' `client_secret_basic` with `scope` and `resource`, rmcp's
/// `client_secret_post`; the proxy's token works on the MCP endpoint as that client; a wrong
/// secret is `invalid_client`. Needs [`machine_options`].
pub async fn machine_client_credentials(h: &impl Host) {
    let asm: Value = http_client()
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            h.base_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(asm["grant_types_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("client_credentials")));
    let map = vec![(FIXTURE_MCP.to_owned(), h.mcp_url())];
    let token_url = format!("{}/token", h.base_url());
    for (sdk, basic) in [
        ("sdk-typescript", true),
        ("sdk-python", true),
        ("sdk-rmcp", false),
    ] {
        let shape = localize(&fixture(sdk)["client_credentials"]["client_secret"], &map);
        let body = &shape["token_request"]["body"];
        let mut form: Vec<(String, String)> = body
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        for (k, v) in form.iter_mut() {
            match k.as_str() {
                "client_id" => *v = "m2m-client".into(),
                "client_secret" => *v = "m2m-client-secret".into(),
                _ => {}
            }
        }
        let mut req = http_client().post(&token_url).form(&form);
        if basic {
            req = req.basic_auth("m2m-client", Some("m2m-client-secret"));
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let answer: Value = resp.json().await.unwrap();
        assert_eq!(status, 200, "{sdk}: {answer}");
        assert!(answer.get("refresh_token").is_none(), "{sdk}: {answer}");
        let access = answer["access_token"].as_str().unwrap();
        let claims = crate::jwt::decode_unverified(access).unwrap();
        assert_eq!(claims.str_claim("aud"), Some(h.mcp_url().as_str()), "{sdk}");
        let out = whoami(&h.mcp_url(), access).await.unwrap();
        assert_eq!(
            out["headers"]["x-mcpgate-client-id"],
            json!("m2m-client"),
            "{out}"
        );
        assert_eq!(out["authorization_present"], json!(false), "{out}");
    }
    let resp = http_client()
        .post(&token_url)
        .basic_auth("m2m-client", Some("wrong-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["error"], "invalid_client");
    let resp = http_client()
        .post(&token_url)
        .basic_auth("other-client", Some("other-client-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(
        answer["error"], "unauthorized_client",
        "not in accepted_client_ids"
    );
}

/// One `#[tokio::test]` per client scenario for the host type `$host`, each on a stack of its
/// own; afterwards the MCP server must have seen only identified MCP requests.
#[macro_export]
macro_rules! client_scenario_tests {
    ($host:ty) => {
        $crate::client_scenario_tests!(@each $host;
            claude_code_connects: claude_code, $crate::client_scenarios::client_options();
            claude_ai_connects: claude_ai, $crate::client_scenarios::client_options();
            cursor_connects: cursor, $crate::client_scenarios::client_options();
            vscode_connects: vscode, $crate::client_scenarios::client_options();
            chatgpt_connects_with_private_key_jwt: chatgpt, $crate::client_scenarios::client_options();
            goose_connects: goose, $crate::client_scenarios::client_options();
            mcp_inspector_connects: mcp_inspector, $crate::client_scenarios::client_options();
            mcp_inspector_in_the_browser_reads_every_answer: mcp_inspector_in_the_browser,
                $crate::client_scenarios::client_options();
            machine_clients_use_client_credentials: machine_client_credentials,
                $crate::client_scenarios::machine_options();
        );
    };
    (@each $host:ty; $($test:ident: $scenario:ident, $options:expr;)*) => {
        $(
            #[tokio::test]
            async fn $test() {
                let options: <$host as $crate::scenarios::Host>::Options = $options;
                let stack = <$host as $crate::scenarios::Host>::start(options)
                    .await
                    .unwrap();
                $crate::client_scenarios::$scenario(&stack).await;
                $crate::scenarios::assert_origin_saw_only_mcp(&stack).await;
            }
        )*
    };
}
