//! Test controls (`/__control/...`) and their Rust equivalents.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::handlers::json_response;
use super::state::{now_secs, uuid_v4, EndpointGroup, FaultMode, Inner, SharedState};
use super::tokens::{
    access_claims, id_claims, issue_user_tokens, machine_claims, Session, TokenResponse,
    TokenTemplate,
};

/// `POST /__control/mode` body: `{"group": "jwks", "mode": "slow", "delay_ms": 300}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetModeRequest {
    pub group: EndpointGroup,
    #[serde(flatten)]
    pub mode: FaultMode,
}

/// `POST /__control/rotate-keys` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RotateKeysRequest {
    /// Remove the previously published keys from the JWKS.
    #[serde(default)]
    pub retire_old: bool,
}

/// Key ring state, as answered by `GET /__control/keys` and `POST /__control/rotate-keys`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeysInfo {
    pub active_kid: String,
    /// Kids in the JWKS, active first.
    pub published_kids: Vec<String>,
    /// All loaded keys in rotation order (key 1, 2, 3).
    pub all_kids: Vec<String>,
}

/// `POST /__control/mint` body: a token with arbitrary claims.
///
/// With a `template`, the standard Cognito claim set for that token kind is built first
/// (for `username`, default `alice`, and `client_id`, default the first suitable client), then
/// `claims` is overlaid: a `null` value removes the claim. Without a template, the payload is
/// exactly `claims`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MintRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<TokenTemplate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Space-separated scopes for templates (default `openid email` for users, the client's
    /// resource-server scopes for machine tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default)]
    pub claims: Map<String, Value>,
    /// Override the header `kid` (the signature is still made with the chosen key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Sign with key N (1-based, rotation order), published or not. Default: the active key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<usize>,
    /// Override the header `alg` (the signature is still RS256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
}

impl MintRequest {
    /// Start from a template for `username` at `client_id` (`Machine`: `username` is ignored).
    pub fn template(template: TokenTemplate, username: &str, client_id: &str) -> Self {
        Self {
            template: Some(template),
            username: Some(username.to_owned()),
            client_id: Some(client_id.to_owned()),
            ..Self::default()
        }
    }
    /// Exactly these claims.
    pub fn raw(claims: Value) -> Self {
        Self {
            claims: claims.as_object().cloned().unwrap_or_default(),
            ..Self::default()
        }
    }
    /// Set (or with `Value::Null`, remove) one claim.
    pub fn claim(mut self, name: &str, value: Value) -> Self {
        self.claims.insert(name.to_owned(), value);
        self
    }
    pub fn scope(mut self, scope: &str) -> Self {
        self.scope = Some(scope.to_owned());
        self
    }
    /// Sign with key N (1-based).
    pub fn key(mut self, n: usize) -> Self {
        self.key = Some(n);
        self
    }
    pub fn kid(mut self, kid: &str) -> Self {
        self.kid = Some(kid.to_owned());
        self
    }
    pub fn alg(mut self, alg: &str) -> Self {
        self.alg = Some(alg.to_owned());
        self
    }
}

/// `POST /__control/redirect-uris` body: register one more callback URL for a client.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddRedirectUriRequest {
    pub client_id: String,
    pub redirect_uri: String,
}

/// `POST /__control/tokens` body: tokens as if `username` had signed in at `client_id`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IssueTokensRequest {
    pub client_id: String,
    pub username: String,
    /// Space-separated; default `openid email`.
    #[serde(default)]
    pub scope: Option<String>,
}

pub(crate) fn mint(inner: &Inner, issuer: &str, req: &MintRequest) -> Result<String, String> {
    let now = now_secs();
    let lifetime = inner.config.token_lifetime_secs;
    let mut claims = match req.template {
        None => Value::Object(Map::new()),
        Some(TokenTemplate::Machine) => {
            let client_id = req
                .client_id
                .clone()
                .or_else(|| {
                    inner
                        .config
                        .clients
                        .iter()
                        .find(|c| c.allows_grant("client_credentials"))
                        .map(|c| c.client_id.clone())
                })
                .ok_or("no client_id")?;
            let scopes: Vec<String> = match &req.scope {
                Some(s) => s.split_whitespace().map(str::to_owned).collect(),
                None => inner
                    .config
                    .client(&client_id)
                    .map(|c| {
                        c.allowed_scopes
                            .iter()
                            .filter(|s| s.contains('/'))
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default(),
            };
            machine_claims(issuer, &client_id, &scopes, now, lifetime)
        }
        Some(t) => {
            let username = req.username.as_deref().unwrap_or("alice");
            let user = inner
                .config
                .user(username)
                .ok_or_else(|| format!("unknown user {username}"))?;
            let client_id = req
                .client_id
                .clone()
                .or_else(|| {
                    inner
                        .config
                        .clients
                        .iter()
                        .find(|c| c.allows_grant("authorization_code"))
                        .map(|c| c.client_id.clone())
                })
                .ok_or("no client_id")?;
            let scopes: Vec<String> = req
                .scope
                .as_deref()
                .unwrap_or("openid email")
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            let (origin_jti, event_id) = (uuid_v4(), uuid_v4());
            let s = Session {
                user,
                client_id: &client_id,
                scopes: &scopes,
                auth_time: now,
                origin_jti: &origin_jti,
                event_id: &event_id,
                nonce: None,
            };
            if t == TokenTemplate::Access {
                access_claims(issuer, &s, now, lifetime)
            } else {
                id_claims(issuer, &s, now, lifetime)
            }
        }
    };
    if let Value::Object(obj) = &mut claims {
        for (k, v) in &req.claims {
            if v.is_null() {
                obj.remove(k);
            } else {
                obj.insert(k.clone(), v.clone());
            }
        }
    }
    let key = match req.key {
        None => inner.keys.active(),
        Some(n) => n
            .checked_sub(1)
            .and_then(|i| inner.keys.by_index(i))
            .ok_or_else(|| format!("no key {n}"))?,
    };
    let header = json!({
        "kid": req.kid.clone().unwrap_or_else(|| key.kid().to_owned()),
        "alg": req.alg.clone().unwrap_or_else(|| "RS256".to_owned()),
    });
    Ok(key.sign_compact(&header, &claims))
}

pub(crate) fn keys_info(inner: &Inner) -> KeysInfo {
    KeysInfo {
        active_kid: inner.keys.active().kid().to_owned(),
        published_kids: inner.keys.published_kids(),
        all_kids: inner.keys.all_kids(),
    }
}

pub(crate) fn issue_tokens(
    inner: &mut Inner,
    issuer: &str,
    req: &IssueTokensRequest,
) -> Result<TokenResponse, String> {
    let user = inner
        .config
        .user(&req.username)
        .cloned()
        .ok_or_else(|| format!("unknown user {}", req.username))?;
    let client = inner
        .config
        .client(&req.client_id)
        .cloned()
        .ok_or_else(|| format!("unknown client {}", req.client_id))?;
    let scopes: Vec<String> = req
        .scope
        .as_deref()
        .unwrap_or("openid email")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let (origin_jti, event_id) = (uuid_v4(), uuid_v4());
    let s = Session {
        user: &user,
        client_id: &client.client_id,
        scopes: &scopes,
        auth_time: now_secs(),
        origin_jti: &origin_jti,
        event_id: &event_id,
        nonce: None,
    };
    Ok(issue_user_tokens(
        inner,
        issuer,
        &s,
        client.allows_grant("refresh_token"),
    ))
}

pub(crate) fn add_redirect_uri(
    inner: &mut Inner,
    req: &AddRedirectUriRequest,
) -> Result<(), String> {
    let client = inner
        .config
        .clients
        .iter_mut()
        .find(|c| c.client_id == req.client_id)
        .ok_or_else(|| format!("unknown client {}", req.client_id))?;
    if !client.redirect_uris.contains(&req.redirect_uri) {
        client.redirect_uris.push(req.redirect_uri.clone());
    }
    Ok(())
}

fn bad(msg: String) -> Response {
    json_response(StatusCode::BAD_REQUEST, json!({ "message": msg }))
}

fn ok() -> Response {
    json_response(StatusCode::OK, json!({"ok": true}))
}

// HTTP handlers --------------------------------------------------------------------------------

pub(crate) async fn http_set_mode(
    State(state): State<SharedState>,
    Json(req): Json<SetModeRequest>,
) -> Response {
    state.lock().modes.insert(req.group, req.mode);
    ok()
}

pub(crate) async fn http_reset(State(state): State<SharedState>) -> Response {
    let mut inner = state.lock();
    inner.modes.clear();
    inner.stats = Default::default();
    ok()
}

pub(crate) async fn http_rotate(
    State(state): State<SharedState>,
    body: Option<Json<RotateKeysRequest>>,
) -> Response {
    let retire_old = body.map(|Json(b)| b.retire_old).unwrap_or(false);
    let mut inner = state.lock();
    inner.keys.rotate(retire_old);
    json_response(StatusCode::OK, json!(keys_info(&inner)))
}

pub(crate) async fn http_keys(State(state): State<SharedState>) -> Response {
    json_response(StatusCode::OK, json!(keys_info(&state.lock())))
}

pub(crate) async fn http_stats(State(state): State<SharedState>) -> Response {
    json_response(StatusCode::OK, json!(state.lock().stats))
}

pub(crate) async fn http_mint(
    State(state): State<SharedState>,
    Json(req): Json<MintRequest>,
) -> Response {
    match mint(&state.lock(), &state.issuer, &req) {
        Ok(token) => json_response(StatusCode::OK, json!({ "token": token })),
        Err(e) => bad(e),
    }
}

pub(crate) async fn http_add_redirect_uri(
    State(state): State<SharedState>,
    Json(req): Json<AddRedirectUriRequest>,
) -> Response {
    match add_redirect_uri(&mut state.lock(), &req) {
        Ok(()) => ok(),
        Err(e) => bad(e),
    }
}

pub(crate) async fn http_issue_tokens(
    State(state): State<SharedState>,
    Json(req): Json<IssueTokensRequest>,
) -> Response {
    match issue_tokens(&mut state.lock(), &state.issuer, &req) {
        Ok(t) => json_response(StatusCode::OK, json!(t)),
        Err(e) => bad(e),
    }
}
