//! Cognito-shaped token claim sets and issuance.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::config::UserConfig;
use super::state::{now_secs, opaque_refresh_token, uuid_v4, Inner, RefreshGrant};

/// The token endpoint's success body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    pub access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub expires_in: u64,
    pub token_type: String,
}

/// Which standard claim set a minted token starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenTemplate {
    /// A user access token (needs `username` and `client_id`).
    Access,
    /// A user ID token (needs `username` and `client_id`).
    Id,
    /// A `client_credentials` access token (needs `client_id`).
    Machine,
}

/// Session facts shared by tokens issued from one sign-in.
pub(crate) struct Session<'a> {
    pub user: &'a UserConfig,
    pub client_id: &'a str,
    pub scopes: &'a [String],
    pub auth_time: u64,
    pub origin_jti: &'a str,
    pub event_id: &'a str,
    pub nonce: Option<&'a str>,
}

fn groups_claim(obj: &mut Map<String, Value>, user: &UserConfig) {
    // Cognito omits `cognito:groups` when the user belongs to no group.
    if !user.groups.is_empty() {
        obj.insert("cognito:groups".into(), json!(user.groups));
    }
}

pub(crate) fn access_claims(issuer: &str, s: &Session<'_>, iat: u64, lifetime: u64) -> Value {
    let mut o = Map::new();
    o.insert("sub".into(), json!(s.user.sub));
    groups_claim(&mut o, s.user);
    o.insert("iss".into(), json!(issuer));
    o.insert("version".into(), json!(2));
    o.insert("client_id".into(), json!(s.client_id));
    o.insert("origin_jti".into(), json!(s.origin_jti));
    o.insert("event_id".into(), json!(s.event_id));
    o.insert("token_use".into(), json!("access"));
    o.insert("scope".into(), json!(s.scopes.join(" ")));
    o.insert("auth_time".into(), json!(s.auth_time));
    o.insert("exp".into(), json!(iat + lifetime));
    o.insert("iat".into(), json!(iat));
    o.insert("jti".into(), json!(uuid_v4()));
    o.insert("username".into(), json!(s.user.username));
    Value::Object(o)
}

pub(crate) fn id_claims(issuer: &str, s: &Session<'_>, iat: u64, lifetime: u64) -> Value {
    let mut o = Map::new();
    o.insert("sub".into(), json!(s.user.sub));
    groups_claim(&mut o, s.user);
    o.insert("email_verified".into(), json!(s.user.email_verified));
    o.insert("iss".into(), json!(issuer));
    o.insert("cognito:username".into(), json!(s.user.username));
    if let Some(nonce) = s.nonce {
        o.insert("nonce".into(), json!(nonce));
    }
    o.insert("origin_jti".into(), json!(s.origin_jti));
    o.insert("aud".into(), json!(s.client_id));
    o.insert("event_id".into(), json!(s.event_id));
    o.insert("token_use".into(), json!("id"));
    o.insert("auth_time".into(), json!(s.auth_time));
    o.insert("exp".into(), json!(iat + lifetime));
    o.insert("iat".into(), json!(iat));
    o.insert("jti".into(), json!(uuid_v4()));
    o.insert("email".into(), json!(s.user.email));
    Value::Object(o)
}

pub(crate) fn machine_claims(
    issuer: &str,
    client_id: &str,
    scopes: &[String],
    iat: u64,
    lifetime: u64,
) -> Value {
    json!({
        "sub": client_id,
        "token_use": "access",
        "scope": scopes.join(" "),
        "auth_time": iat,
        "iss": issuer,
        "exp": iat + lifetime,
        "iat": iat,
        "version": 2,
        "jti": uuid_v4(),
        "client_id": client_id,
    })
}

/// Issue access (+ ID when `openid` was granted) tokens for a user session, and a new refresh
/// token when `with_refresh`.
pub(crate) fn issue_user_tokens(
    inner: &mut Inner,
    issuer: &str,
    s: &Session<'_>,
    with_refresh: bool,
) -> TokenResponse {
    let iat = now_secs();
    let lifetime = inner.config.token_lifetime_secs;
    let key = inner.keys.active();
    let access_token = key.sign(&access_claims(issuer, s, iat, lifetime));
    let id_token = s
        .scopes
        .iter()
        .any(|x| x == "openid")
        .then(|| key.sign(&id_claims(issuer, s, iat, lifetime)));
    let refresh_token = with_refresh.then(|| {
        let rt = opaque_refresh_token();
        inner.refresh.insert(
            rt.clone(),
            RefreshGrant {
                client_id: s.client_id.to_owned(),
                username: s.user.username.clone(),
                scopes: s.scopes.to_vec(),
                origin_jti: s.origin_jti.to_owned(),
                event_id: s.event_id.to_owned(),
                auth_time: s.auth_time,
            },
        );
        rt
    });
    TokenResponse {
        id_token,
        access_token,
        refresh_token,
        expires_in: lifetime,
        token_type: "Bearer".into(),
    }
}

pub(crate) fn issue_machine_token(
    inner: &Inner,
    issuer: &str,
    client_id: &str,
    scopes: &[String],
) -> TokenResponse {
    let iat = now_secs();
    let lifetime = inner.config.token_lifetime_secs;
    let access_token = inner
        .keys
        .active()
        .sign(&machine_claims(issuer, client_id, scopes, iat, lifetime));
    TokenResponse {
        id_token: None,
        access_token,
        refresh_token: None,
        expires_in: lifetime,
        token_type: "Bearer".into(),
    }
}
