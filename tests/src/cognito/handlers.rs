//! The user-pool endpoints: discovery, JWKS, hosted-UI authorize/login, token, revoke, userInfo.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::Digest as _;

use super::config::ClientConfig;
use super::state::{now_secs, uuid_v4, CodeGrant, SharedState};
use super::tokens::{issue_machine_token, issue_user_tokens, Session};
use crate::jwt::{b64url, decode_unverified};

const JSON_UTF8: &str = "application/json;charset=UTF-8";

pub(crate) fn json_response(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8))],
        body.to_string(),
    )
        .into_response()
}

/// Cognito's token/revoke error body: `{"error":"..."}`, HTTP 400.
pub(crate) fn oauth_error(error: &str) -> Response {
    json_response(StatusCode::BAD_REQUEST, json!({ "error": error }))
}

/// Parse `application/x-www-form-urlencoded` text; a repeated parameter is an error.
pub(crate) fn parse_form(text: &[u8]) -> Result<HashMap<String, String>, String> {
    let mut map = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(text) {
        if map.insert(k.to_string(), v.to_string()).is_some() {
            return Err(k.to_string());
        }
    }
    Ok(map)
}

fn non_empty<'a>(p: &'a HashMap<String, String>, k: &str) -> Option<&'a str> {
    p.get(k).map(String::as_str).filter(|v| !v.is_empty())
}

fn unknown_pool(state: &SharedState, pool: &str) -> Option<Response> {
    (state.lock().config.pool_id != pool).then(|| {
        json_response(
            StatusCode::BAD_REQUEST,
            json!({"message": format!("User pool {pool} does not exist.")}),
        )
    })
}

// ---------------------------------------------------------------------------------------------
// discovery + JWKS

pub(crate) async fn openid_configuration(
    State(state): State<SharedState>,
    Path(pool): Path<String>,
) -> Response {
    if let Some(r) = unknown_pool(&state, &pool) {
        return r;
    }
    let base = &state.base_url;
    let iss = &state.issuer;
    json_response(
        StatusCode::OK,
        json!({
            "authorization_endpoint": format!("{base}/oauth2/authorize"),
            "end_session_endpoint": format!("{base}/logout"),
            "id_token_signing_alg_values_supported": ["RS256"],
            "issuer": iss,
            "jwks_uri": format!("{iss}/.well-known/jwks.json"),
            "response_types_supported": ["code", "token"],
            "revocation_endpoint": format!("{base}/oauth2/revoke"),
            "scopes_supported": ["openid", "email", "phone", "profile"],
            "subject_types_supported": ["public"],
            "token_endpoint": format!("{base}/oauth2/token"),
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "userinfo_endpoint": format!("{base}/oauth2/userInfo"),
        }),
    )
}

pub(crate) async fn jwks(State(state): State<SharedState>, Path(pool): Path<String>) -> Response {
    if let Some(r) = unknown_pool(&state, &pool) {
        return r;
    }
    let body = state.lock().keys.jwks();
    json_response(StatusCode::OK, body)
}

// ---------------------------------------------------------------------------------------------
// hosted UI: authorize, login form, error page

/// A validated authorization request.
struct AuthzRequest {
    client_id: String,
    redirect_uri: String,
    scopes: Vec<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    nonce: Option<String>,
}

/// What to do when an authorization request is invalid.
enum AuthzError {
    /// The client or redirect URI cannot be trusted: show the error page.
    Page(&'static str),
    /// Redirect back to the client with `error=...`.
    Redirect {
        redirect_uri: String,
        error: &'static str,
        description: &'static str,
        state: Option<String>,
    },
}

impl AuthzError {
    fn into_response(self, state: &SharedState, client_id: &str) -> Response {
        match self {
            AuthzError::Page(error) => {
                let mut url = format!("{}/error?", state.base_url);
                url.push_str(
                    &url::form_urlencoded::Serializer::new(String::new())
                        .append_pair("error", error)
                        .append_pair("client_id", client_id)
                        .finish(),
                );
                redirect(&url)
            }
            AuthzError::Redirect {
                redirect_uri,
                error,
                description,
                state,
            } => {
                let mut ser = url::form_urlencoded::Serializer::new(String::new());
                ser.append_pair("error_description", description);
                if let Some(s) = &state {
                    ser.append_pair("state", s);
                }
                ser.append_pair("error", error);
                redirect(&append_query(&redirect_uri, &ser.finish()))
            }
        }
    }
}

fn append_query(uri: &str, query: &str) -> String {
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{query}")
}

fn redirect(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => (StatusCode::FOUND, [(header::LOCATION, v)]).into_response(),
        Err(_) => (StatusCode::BAD_REQUEST, "invalid redirect").into_response(),
    }
}

fn validate_authz(
    state: &SharedState,
    p: &HashMap<String, String>,
) -> Result<AuthzRequest, AuthzError> {
    let inner = state.lock();
    let client_id = non_empty(p, "client_id").unwrap_or_default().to_owned();
    let Some(client) = inner.config.client(&client_id) else {
        return Err(AuthzError::Page("invalid_request"));
    };
    let redirect_uri = non_empty(p, "redirect_uri").unwrap_or_default().to_owned();
    if !client.redirect_uris.contains(&redirect_uri) {
        return Err(AuthzError::Page("redirect_mismatch"));
    }
    let st = p.get("state").cloned();
    let fail = |error, description| AuthzError::Redirect {
        redirect_uri: redirect_uri.clone(),
        error,
        description,
        state: st.clone(),
    };
    match non_empty(p, "response_type") {
        None => return Err(fail("invalid_request", "response_type is required")),
        Some("code") => {}
        Some(_) => {
            return Err(fail(
                "unsupported_response_type",
                "unsupported response_type",
            ))
        }
    }
    if !client.allows_grant("authorization_code") {
        return Err(fail(
            "unauthorized_client",
            "client is not allowed the authorization code grant",
        ));
    }
    let scopes: Vec<String> = match non_empty(p, "scope") {
        Some(s) => s.split_whitespace().map(str::to_owned).collect(),
        None => client.allowed_scopes.clone(),
    };
    if scopes.is_empty() || !scopes.iter().all(|s| client.allows_scope(s)) {
        return Err(fail("invalid_scope", "invalid_scope"));
    }
    let code_challenge = non_empty(p, "code_challenge").map(str::to_owned);
    let code_challenge_method = non_empty(p, "code_challenge_method").map(str::to_owned);
    match (&code_challenge, code_challenge_method.as_deref()) {
        (None, None) => {}
        (Some(_), Some("S256")) => {}
        (Some(_), None) | (None, Some(_)) => {
            return Err(fail(
                "invalid_request",
                "code_challenge and code_challenge_method are required together",
            ))
        }
        (Some(_), Some(_)) => {
            return Err(fail("invalid_request", "unsupported code_challenge_method"))
        }
    }
    Ok(AuthzRequest {
        client_id,
        redirect_uri,
        scopes,
        state: st,
        code_challenge,
        code_challenge_method,
        nonce: non_empty(p, "nonce").map(str::to_owned),
    })
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn login_page(req: &AuthzRequest, message: Option<&str>) -> Response {
    let mut hidden = String::new();
    let mut field = |name: &str, value: &str| {
        hidden.push_str(&format!(
            "    <input type=\"hidden\" name=\"{}\" value=\"{}\">\n",
            name,
            html_escape(value)
        ));
    };
    field("client_id", &req.client_id);
    field("redirect_uri", &req.redirect_uri);
    field("response_type", "code");
    field("scope", &req.scopes.join(" "));
    if let Some(v) = &req.state {
        field("state", v);
    }
    if let Some(v) = &req.code_challenge {
        field("code_challenge", v);
    }
    if let Some(v) = &req.code_challenge_method {
        field("code_challenge_method", v);
    }
    if let Some(v) = &req.nonce {
        field("nonce", v);
    }
    let msg = message
        .map(|m| {
            format!(
                "  <p class=\"error\" id=\"loginErrorMessage\">{}</p>\n",
                html_escape(m)
            )
        })
        .unwrap_or_default();
    let page = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Signin</title><link rel=\"icon\" href=\"data:,\"></head>\n<body>\n\
         <h1>Sign in with your username and password</h1>\n{msg}\
         <form name=\"cognitoSignInForm\" method=\"post\" action=\"/login\">\n{hidden}\
         \x20   <label>Username <input type=\"text\" name=\"username\" autocomplete=\"username\"></label>\n\
         \x20   <label>Password <input type=\"password\" name=\"password\" autocomplete=\"current-password\"></label>\n\
         \x20   <input type=\"submit\" name=\"signInSubmitButton\" value=\"Sign in\">\n\
         </form>\n</body></html>\n"
    );
    let mut resp = Html(page).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

pub(crate) async fn authorize(
    State(state): State<SharedState>,
    RawQuery(query): RawQuery,
) -> Response {
    let p = match parse_form(query.unwrap_or_default().as_bytes()) {
        Ok(p) => p,
        Err(_) => return AuthzError::Page("invalid_request").into_response(&state, ""),
    };
    let client_id = p.get("client_id").cloned().unwrap_or_default();
    match validate_authz(&state, &p) {
        Ok(req) => login_page(&req, None),
        Err(e) => e.into_response(&state, &client_id),
    }
}

pub(crate) async fn login(State(state): State<SharedState>, body: Bytes) -> Response {
    let p = match parse_form(&body) {
        Ok(p) => p,
        Err(_) => return AuthzError::Page("invalid_request").into_response(&state, ""),
    };
    let client_id = p.get("client_id").cloned().unwrap_or_default();
    let req = match validate_authz(&state, &p) {
        Ok(req) => req,
        Err(e) => return e.into_response(&state, &client_id),
    };
    let username = p.get("username").map(String::as_str).unwrap_or_default();
    let password = p.get("password").map(String::as_str).unwrap_or_default();
    let code = {
        let mut inner = state.lock();
        let ok = inner
            .config
            .user(username)
            .is_some_and(|u| u.password == password);
        if !ok {
            drop(inner);
            return login_page(&req, Some("Incorrect username or password."));
        }
        let code = uuid_v4();
        let expires_at = now_secs() + inner.config.code_lifetime_secs;
        inner.codes.insert(
            code.clone(),
            CodeGrant {
                client_id: req.client_id.clone(),
                redirect_uri: req.redirect_uri.clone(),
                username: username.to_owned(),
                scopes: req.scopes.clone(),
                code_challenge: req.code_challenge.clone(),
                nonce: req.nonce.clone(),
                expires_at,
                auth_time: now_secs(),
            },
        );
        code
    };
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    ser.append_pair("code", &code);
    if let Some(s) = &req.state {
        ser.append_pair("state", s);
    }
    redirect(&append_query(&req.redirect_uri, &ser.finish()))
}

pub(crate) async fn error_page(RawQuery(query): RawQuery) -> Response {
    let p = parse_form(query.unwrap_or_default().as_bytes()).unwrap_or_default();
    let error = p.get("error").map(String::as_str).unwrap_or("unknown");
    (
        StatusCode::BAD_REQUEST,
        Html(format!(
            "<!DOCTYPE html>\n<html><body><h1>An error was encountered with the requested page.</h1>\
             <p id=\"errorCode\">{}</p></body></html>\n",
            html_escape(error)
        )),
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------------
// token endpoint

/// `client_secret_basic` or `client_secret_post`; returns the authenticated client.
fn authenticate_client(
    clients: &[ClientConfig],
    headers: &HeaderMap,
    p: &HashMap<String, String>,
) -> Result<ClientConfig, &'static str> {
    let basic = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(v) => {
            let v = v.to_str().map_err(|_| "invalid_client")?;
            let Some(b64) = v
                .strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
            else {
                return Err("invalid_client");
            };
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|_| "invalid_client")?;
            let raw = String::from_utf8(raw).map_err(|_| "invalid_client")?;
            let (id, secret) = raw.split_once(':').ok_or("invalid_client")?;
            Some((id.to_owned(), secret.to_owned()))
        }
    };
    let post_id = non_empty(p, "client_id");
    let (id, secret) = match &basic {
        Some((id, secret)) => {
            if post_id.is_some_and(|pid| pid != id) {
                return Err("invalid_client");
            }
            (id.as_str(), Some(secret.as_str()))
        }
        None => (
            post_id.ok_or("invalid_client")?,
            non_empty(p, "client_secret"),
        ),
    };
    let client = clients
        .iter()
        .find(|c| c.client_id == id)
        .ok_or("invalid_client")?;
    match (&client.client_secret, secret) {
        (Some(expected), Some(given)) if expected == given => Ok(client.clone()),
        (None, None) => Ok(client.clone()),
        _ => Err("invalid_client"),
    }
}

fn pkce_s256(verifier: &str) -> String {
    b64url(&sha2::Sha256::digest(verifier.as_bytes()))
}

pub(crate) async fn token(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form_ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form_ct {
        return oauth_error("invalid_request");
    }
    let Ok(p) = parse_form(&body) else {
        return oauth_error("invalid_request");
    };
    let Some(grant_type) = non_empty(&p, "grant_type") else {
        return oauth_error("invalid_request");
    };
    state.count(&format!("token:{grant_type}"));
    if !matches!(
        grant_type,
        "authorization_code" | "refresh_token" | "client_credentials"
    ) {
        return oauth_error("unsupported_grant_type");
    }
    let issuer = state.issuer.clone();
    let mut inner = state.lock();
    let client = match authenticate_client(&inner.config.clients, &headers, &p) {
        Ok(c) => c,
        Err(e) => return oauth_error(e),
    };
    if !client.allows_grant(grant_type) {
        return oauth_error("unauthorized_client");
    }
    let resp = match grant_type {
        "authorization_code" => {
            let (Some(code), Some(redirect_uri)) =
                (non_empty(&p, "code"), non_empty(&p, "redirect_uri"))
            else {
                return oauth_error("invalid_request");
            };
            // Single use: the code is consumed by its first presentation.
            let Some(grant) = inner.codes.remove(code) else {
                return oauth_error("invalid_grant");
            };
            if grant.expires_at < now_secs()
                || grant.client_id != client.client_id
                || grant.redirect_uri != redirect_uri
            {
                return oauth_error("invalid_grant");
            }
            if let Some(challenge) = &grant.code_challenge {
                match non_empty(&p, "code_verifier") {
                    Some(v) if pkce_s256(v) == *challenge => {}
                    _ => return oauth_error("invalid_grant"),
                }
            }
            let Some(user) = inner.config.user(&grant.username).cloned() else {
                return oauth_error("invalid_grant");
            };
            let origin_jti = uuid_v4();
            let event_id = uuid_v4();
            let session = Session {
                user: &user,
                client_id: &client.client_id,
                scopes: &grant.scopes,
                auth_time: grant.auth_time,
                origin_jti: &origin_jti,
                event_id: &event_id,
                nonce: grant.nonce.as_deref(),
            };
            let with_refresh = client.allows_grant("refresh_token");
            issue_user_tokens(&mut inner, &issuer, &session, with_refresh)
        }
        "refresh_token" => {
            let Some(rt) = non_empty(&p, "refresh_token") else {
                return oauth_error("invalid_request");
            };
            let Some(grant) = inner.refresh.get(rt).cloned() else {
                return oauth_error("invalid_grant");
            };
            if grant.client_id != client.client_id {
                return oauth_error("invalid_grant");
            }
            let Some(user) = inner.config.user(&grant.username).cloned() else {
                return oauth_error("invalid_grant");
            };
            let session = Session {
                user: &user,
                client_id: &client.client_id,
                scopes: &grant.scopes,
                auth_time: grant.auth_time,
                origin_jti: &grant.origin_jti,
                event_id: &grant.event_id,
                nonce: None,
            };
            // Cognito does not rotate refresh tokens: no new refresh_token in the response.
            issue_user_tokens(&mut inner, &issuer, &session, false)
        }
        _ => {
            // client_credentials: confidential clients only, resource-server scopes only.
            if client.client_secret.is_none() {
                return oauth_error("invalid_client");
            }
            let custom = inner.config.custom_scopes();
            let is_custom = |s: &String| custom.contains(s) || s.contains('/');
            let scopes: Vec<String> = match non_empty(&p, "scope") {
                Some(s) => s.split_whitespace().map(str::to_owned).collect(),
                None => client
                    .allowed_scopes
                    .iter()
                    .filter(|s| is_custom(s))
                    .cloned()
                    .collect(),
            };
            if scopes.is_empty()
                || !scopes
                    .iter()
                    .all(|s| is_custom(s) && client.allows_scope(s))
            {
                return oauth_error("invalid_scope");
            }
            issue_machine_token(&inner, &issuer, &client.client_id, &scopes)
        }
    };
    drop(inner);
    let mut r = json_response(
        StatusCode::OK,
        serde_json::to_value(&resp).unwrap_or_default(),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

// ---------------------------------------------------------------------------------------------
// revoke

pub(crate) async fn revoke(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(p) = parse_form(&body) else {
        return oauth_error("invalid_request");
    };
    let mut inner = state.lock();
    let client = match authenticate_client(&inner.config.clients, &headers, &p) {
        Ok(c) => c,
        Err(e) => return oauth_error(e),
    };
    let Some(token) = non_empty(&p, "token") else {
        return oauth_error("invalid_request");
    };
    if token.split('.').count() == 3 {
        // An access or ID token: Cognito revokes refresh tokens only.
        return oauth_error("unsupported_token_type");
    }
    match inner.refresh.get(token) {
        // Unknown (or already revoked) tokens: 200 as RFC 7009 asks.
        None => {}
        Some(g) if g.client_id != client.client_id => return oauth_error("unauthorized_client"),
        Some(_) => {
            if let Some(g) = inner.refresh.remove(token) {
                inner.revoked_origins.insert(g.origin_jti);
            }
        }
    }
    (StatusCode::OK, [(header::CONTENT_LENGTH, "0")]).into_response()
}

// ---------------------------------------------------------------------------------------------
// userInfo

fn invalid_token(description: &str) -> Response {
    let mut r = json_response(
        StatusCode::UNAUTHORIZED,
        json!({"error": "invalid_token", "error_description": description}),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "Bearer error=\"invalid_token\", error_description=\"{description}\""
    )) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

pub(crate) async fn userinfo(State(state): State<SharedState>, headers: HeaderMap) -> Response {
    const GONE: &str =
        "Access token is expired, disabled, or deleted, or the user has globally signed out.";
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
    else {
        return invalid_token("Access token is missing");
    };
    let Ok(decoded) = decode_unverified(token) else {
        return invalid_token("Invalid access token");
    };
    let inner = state.lock();
    let verified = decoded
        .kid()
        .and_then(|kid| inner.keys.published_by_kid(kid))
        .is_some_and(|k| k.verify_signature(token));
    if !verified || decoded.header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return invalid_token("Invalid access token");
    }
    let c = &decoded.claims;
    let exp = c.get("exp").and_then(Value::as_u64).unwrap_or(0);
    if exp <= now_secs() {
        return invalid_token(GONE);
    }
    if decoded.str_claim("token_use") != Some("access")
        || decoded.str_claim("iss") != Some(state.issuer.as_str())
    {
        return invalid_token("Invalid access token");
    }
    if decoded
        .str_claim("origin_jti")
        .is_some_and(|o| inner.revoked_origins.contains(o))
    {
        return invalid_token(GONE);
    }
    let has_openid = decoded
        .str_claim("scope")
        .is_some_and(|s| s.split(' ').any(|x| x == "openid"));
    if !has_openid {
        return invalid_token("Access token does not contain openid scope");
    }
    let Some(user) = decoded
        .str_claim("username")
        .and_then(|u| inner.config.user(u))
    else {
        return invalid_token(GONE);
    };
    // Cognito's userInfo answers attribute values as strings, email_verified included.
    json_response(
        StatusCode::OK,
        json!({
            "sub": user.sub,
            "email_verified": user.email_verified.to_string(),
            "email": user.email,
            "username": user.username,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_matches_rfc7636_example() {
        assert_eq!(
            pkce_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn repeated_form_parameters_are_rejected() {
        assert_eq!(parse_form(b"a=1&a=2").unwrap_err(), "a");
        assert_eq!(parse_form(b"a=1&b=x%20y").unwrap()["b"], "x y");
    }

    fn clients() -> Vec<ClientConfig> {
        crate::cognito::CognitoConfig::default().clients
    }

    #[test]
    fn client_authentication_basic_and_post() {
        let mut h = HeaderMap::new();
        let basic =
            base64::engine::general_purpose::STANDARD.encode("m2m-client:m2m-client-secret");
        h.insert(
            header::AUTHORIZATION,
            format!("Basic {basic}").parse().unwrap(),
        );
        let none = HashMap::new();
        assert_eq!(
            authenticate_client(&clients(), &h, &none)
                .unwrap()
                .client_id,
            "m2m-client"
        );
        let post: HashMap<String, String> = [
            ("client_id".to_string(), "m2m-client".to_string()),
            ("client_secret".to_string(), "wrong".to_string()),
        ]
        .into();
        assert_eq!(
            authenticate_client(&clients(), &HeaderMap::new(), &post).unwrap_err(),
            "invalid_client"
        );
        // basic and a different client_id in the body
        let other: HashMap<String, String> =
            [("client_id".to_string(), "other-client".to_string())].into();
        assert!(authenticate_client(&clients(), &h, &other).is_err());
        assert!(authenticate_client(&clients(), &HeaderMap::new(), &none).is_err());
    }
}
