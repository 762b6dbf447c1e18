//! The proxy's own access tokens: minting, and the verification fast path every MCP request
//! takes.
//!
//! Only the proxy makes these tokens, so their header is one of a few exact byte strings
//! (one per key in the ring): a token whose header segment is not one of them is not ours,
//! and no JSON header parsing is needed for ours. The signature is checked before the claims
//! are parsed, and the claims are read without copying.

use alloc::borrow::Cow;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::encoding::{b64url_decode, b64url_encode};
use crate::gate::Gate;
use crate::http::Env;
use crate::jwt::{Identity, TokenError};
use crate::keys::Signer;

/// Who an access token speaks for, and what it grants.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subject {
    pub client_id: String,
    pub sub: String,
    /// Space-delimited.
    pub scope: String,
    pub username: Option<String>,
    pub groups: Vec<String>,
    pub email: Option<String>,
    /// Further claims (`claim_headers`), as text.
    pub extra: Vec<(String, String)>,
    /// The grant (refresh-token family) the token was issued from, as `sid`: revoking the
    /// grant revokes the token.
    pub sid: Option<String>,
}

/// Mints an access token for `subject`, audience-bound to the MCP resource.
pub fn mint(gate: &Gate, subject: &Subject, lifetime: u64, env: &mut Env) -> Option<String> {
    mint_with(gate, subject, lifetime, &[], env)
}

/// [`mint`] with further claims of the proxy's own (`upt`: the sealed IdP token for the
/// origin), set before the subject's extra claims (which never override them).
pub fn mint_with(
    gate: &Gate,
    subject: &Subject,
    lifetime: u64,
    claims_of_the_proxy: &[(&str, String)],
    env: &mut Env,
) -> Option<String> {
    let key = gate.ring.current()?;
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(gate.cfg.issuer_url));
    claims.insert("aud".into(), json!(gate.cfg.resource_url()));
    claims.insert("sub".into(), json!(subject.sub));
    claims.insert("client_id".into(), json!(subject.client_id));
    claims.insert("scope".into(), json!(subject.scope));
    claims.insert("iat".into(), json!(env.now));
    claims.insert("exp".into(), json!(env.now + lifetime));
    claims.insert(
        "jti".into(),
        json!(crate::form::random_token(env.random, 12)),
    );
    if let Some(sid) = &subject.sid {
        claims.insert("sid".into(), json!(sid));
    }
    if let Some(u) = &subject.username {
        claims.insert("username".into(), json!(u));
    }
    if !subject.groups.is_empty() {
        claims.insert("groups".into(), json!(subject.groups));
    }
    if let Some(e) = &subject.email {
        claims.insert("email".into(), json!(e));
    }
    for (k, v) in claims_of_the_proxy {
        claims.insert((*k).into(), json!(v));
    }
    for (k, v) in &subject.extra {
        claims.entry(k.clone()).or_insert_with(|| json!(v));
    }
    let payload = serde_json::to_vec(&Value::Object(claims)).ok()?;
    let input = format!("{}.{}", key.header_b64, b64url_encode(&payload));
    let signature: Vec<u8> = match &key.signer {
        Signer::Hs256(mac) => {
            use hmac::Mac;
            let mut mac = mac.clone();
            mac.update(input.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        Signer::Es256(k) => {
            use p256::ecdsa::signature::Signer as _;
            let sig: p256::ecdsa::Signature = k.sign(input.as_bytes());
            sig.to_bytes().to_vec()
        }
        Signer::EdDsa(k) => {
            use ed25519_dalek::Signer as _;
            k.sign(input.as_bytes()).to_bytes().to_vec()
        }
    };
    Some(format!("{input}.{}", b64url_encode(&signature)))
}

#[derive(Deserialize)]
struct Claims<'a> {
    #[serde(borrow)]
    iss: Cow<'a, str>,
    #[serde(borrow)]
    aud: Cow<'a, str>,
    #[serde(borrow)]
    sub: Cow<'a, str>,
    #[serde(borrow)]
    client_id: Cow<'a, str>,
    #[serde(borrow)]
    scope: Cow<'a, str>,
    exp: u64,
    #[serde(borrow)]
    jti: Option<Cow<'a, str>>,
    #[serde(borrow)]
    sid: Option<Cow<'a, str>>,
    #[serde(borrow)]
    username: Option<Cow<'a, str>>,
    #[serde(borrow)]
    groups: Option<Vec<Cow<'a, str>>>,
    #[serde(borrow)]
    email: Option<Cow<'a, str>>,
}

/// Verifies one of the proxy's own access tokens. `UnknownKid` means "not ours" (the caller
/// may try the IdP's keys).
pub fn verify(gate: &Gate, token: &str, now: u64) -> Result<Identity, TokenError> {
    let cfg = &gate.cfg;
    if token.len() > cfg.max_token_bytes {
        return Err(TokenError::TooLong);
    }
    let (header, rest) = token.split_once('.').ok_or(TokenError::NotCompact)?;
    let key = gate.ring.by_header(header).ok_or(TokenError::UnknownKid)?;
    let (payload_b64, sig_b64) = rest.split_once('.').ok_or(TokenError::NotCompact)?;
    if sig_b64.contains('.') {
        return Err(TokenError::NotCompact);
    }
    let signing_input = token
        .get(..header.len() + 1 + payload_b64.len())
        .ok_or(TokenError::NotCompact)?;
    let signature = b64url_decode(sig_b64).ok_or(TokenError::BadBase64)?;
    let valid = match &key.signer {
        Signer::Hs256(mac) => {
            use hmac::Mac;
            let mut mac = mac.clone();
            mac.update(signing_input.as_bytes());
            mac.verify_slice(&signature).is_ok()
        }
        Signer::Es256(_) | Signer::EdDsa(_) => gate
            .ring
            .verify_keys()
            .select(key.alg, Some(&key.kid))
            .and_then(|jwk| jwk.verify(key.alg, signing_input.as_bytes(), &signature, None))
            .is_ok(),
    };
    if !valid {
        return Err(TokenError::BadSignature);
    }
    let payload = b64url_decode(payload_b64).ok_or(TokenError::BadBase64)?;
    let claims: Claims = serde_json::from_slice(&payload).map_err(|_| TokenError::BadJson)?;
    if claims.exp.saturating_add(cfg.leeway_seconds) <= now {
        return Err(TokenError::Expired);
    }
    if claims.iss != cfg.issuer_url.as_str() {
        return Err(TokenError::WrongIssuer);
    }
    if *claims.aud != *gate.resource_url {
        return Err(TokenError::WrongAudience);
    }
    if !cfg
        .required_scopes
        .iter()
        .all(|needed| claims.scope.split(' ').any(|s| s == needed))
    {
        return Err(TokenError::InsufficientScope);
    }
    let mut extra = Vec::new();
    if !gate.carried_claims.is_empty() {
        let all: Map<String, Value> =
            serde_json::from_slice(&payload).map_err(|_| TokenError::BadJson)?;
        for claim in &gate.carried_claims {
            if let Some(text) = all.get(claim).and_then(crate::jwt::identity::claim_text) {
                extra.push((claim.clone(), text));
            }
        }
    }
    Ok(Identity {
        sub: claims.sub.into_owned(),
        username: claims.username.map(Cow::into_owned),
        groups: claims
            .groups
            .unwrap_or_default()
            .into_iter()
            .map(Cow::into_owned)
            .collect(),
        scope: claims.scope.into_owned(),
        email: claims.email.map(Cow::into_owned),
        client_id: Some(claims.client_id.into_owned()),
        exp: claims.exp,
        jti: claims.jti.map(Cow::into_owned),
        sid: claims.sid.map(Cow::into_owned),
        extra,
    })
}
