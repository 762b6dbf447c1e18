//! RFC 7523 §2.2 client assertions (`private_key_jwt`): a JWT the client signs with a key it
//! publishes (a Client ID Metadata Document's `jwks` or `jwks_uri`), presented at `/token`
//! as `client_assertion` with `client_assertion_type` = [`ASSERTION_TYPE`].
//!
//! Checked like every token here (size, strict base64url, bounded JSON, algorithm allow-list,
//! key by `kid`, signature, and only then the claims), with the assertion's own rules:
//! `iss` = `sub` = the client id; `aud` names this server (its issuer or its token endpoint);
//! `exp` required and at most [`MAX_LIFETIME`] ahead; `jti` required (single use is the
//! caller's, through the store); `typ`, when present, `JWT` or `client-authentication+jwt`.

use alloc::string::String;
use serde::Deserialize;

use crate::encoding::{b64url_decode, json_depth_within};
use crate::jwt::claims::Claims;
use crate::jwt::compact::{Compact, MAX_JSON_DEPTH};
use crate::jwt::{Algorithm, KeySet, NativeRsa, TokenError};

/// `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Longest assertion accepted.
pub const MAX_ASSERTION_BYTES: usize = 8 * 1024;
/// Latest `exp` accepted, in seconds from now (the SDKs use 300; clocks drift).
pub const MAX_LIFETIME: u64 = 600;
/// Longest `jti` accepted.
pub const MAX_JTI: usize = 256;
/// Algorithms a client may sign with.
pub const ALGORITHMS: &[Algorithm] = &[Algorithm::Rs256, Algorithm::Es256, Algorithm::EdDsa];

/// Why an assertion was refused. Descriptions never contain the assertion or key material.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AssertionError {
    /// Not a well-formed JWT (or its header/claims are not what a JWT has).
    Malformed,
    /// `iss` and `sub` missing or different from each other.
    Subject,
    /// `iss`/`sub` is not the client presenting it.
    WrongClient,
    /// Signed with an algorithm outside [`ALGORITHMS`] or the client's declared one.
    Algorithm,
    /// A `typ` other than `JWT` / `client-authentication+jwt`.
    Type,
    /// No key of the client's set fits (`kid` unknown, or several and no `kid`).
    Key,
    Signature,
    /// `aud` does not name this server.
    Audience,
    Expired,
    /// `exp` further ahead than [`MAX_LIFETIME`], `nbf` / `iat` in the future.
    Lifetime,
    /// No `jti`, or one longer than [`MAX_JTI`].
    Jti,
}

impl AssertionError {
    pub fn description(&self) -> &'static str {
        match self {
            Self::Malformed => "client_assertion is not a well-formed JWT",
            Self::Subject => "client_assertion must have iss and sub, both the client id",
            Self::WrongClient => "client_assertion was issued by another client",
            Self::Algorithm => "client_assertion signing algorithm not allowed",
            Self::Type => "client_assertion typ must be JWT or client-authentication+jwt",
            Self::Key => "no key of the client's key set fits the client_assertion",
            Self::Signature => "client_assertion signature verification failed",
            Self::Audience => "client_assertion aud must be this server's issuer or token endpoint",
            Self::Expired => "client_assertion expired",
            Self::Lifetime => "client_assertion lives too long or is not valid yet",
            Self::Jti => "client_assertion needs a jti of at most 256 characters",
        }
    }
}

/// What a verified assertion leaves to the caller: its single-use id and expiry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub jti: String,
    pub exp: u64,
}

#[derive(Deserialize)]
struct Header {
    typ: Option<String>,
}

#[derive(Deserialize)]
struct Who {
    iss: Option<String>,
    sub: Option<String>,
}

fn decode_json(segment: &str) -> Result<alloc::vec::Vec<u8>, AssertionError> {
    let json = b64url_decode(segment).ok_or(AssertionError::Malformed)?;
    if !json_depth_within(&json, MAX_JSON_DEPTH) {
        return Err(AssertionError::Malformed);
    }
    Ok(json)
}

/// The client id an assertion claims to come from (`iss`, which must equal `sub`), read
/// before any signature check: it only says which client's keys to check it with.
pub fn claimed_client(assertion: &str) -> Result<String, AssertionError> {
    if assertion.len() > MAX_ASSERTION_BYTES {
        return Err(AssertionError::Malformed);
    }
    let mut parts = assertion.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AssertionError::Malformed);
    };
    let who: Who =
        serde_json::from_slice(&decode_json(payload)?).map_err(|_| AssertionError::Malformed)?;
    match (who.iss, who.sub) {
        (Some(iss), Some(sub)) if iss == sub && !iss.is_empty() => Ok(iss),
        _ => Err(AssertionError::Subject),
    }
}

fn typ_ok(typ: Option<&str>) -> bool {
    match typ {
        None => true,
        Some(t) => {
            let t = t.strip_prefix("application/").unwrap_or(t);
            t.eq_ignore_ascii_case("JWT") || t.eq_ignore_ascii_case("client-authentication+jwt")
        }
    }
}

/// The rules of one check: who the client is, what this server is called, the clock.
pub struct Expect<'a> {
    pub client_id: &'a str,
    /// Accepted `aud` values (the issuer and the token endpoint URL).
    pub audiences: &'a [&'a str],
    /// The algorithm the client declared (`token_endpoint_auth_signing_alg`), if any.
    pub algorithm: Option<&'a str>,
    pub now: u64,
    pub leeway: u64,
}

/// Verifies `assertion` with the client's `keys`.
pub fn verify(
    assertion: &str,
    keys: &KeySet,
    expect: &Expect,
    native: Option<&dyn NativeRsa>,
) -> Result<Verified, AssertionError> {
    let compact = Compact::parse(assertion, MAX_ASSERTION_BYTES).map_err(|e| match e {
        TokenError::AlgNone | TokenError::UnknownAlgorithm => AssertionError::Algorithm,
        _ => AssertionError::Malformed,
    })?;
    let declared = expect.algorithm.map(Algorithm::from_name);
    if !ALGORITHMS.contains(&compact.alg) || declared.is_some_and(|d| d != Some(compact.alg)) {
        return Err(AssertionError::Algorithm);
    }
    let header_b64 = assertion.split('.').next().unwrap_or("");
    let header: Header =
        serde_json::from_slice(&decode_json(header_b64)?).map_err(|_| AssertionError::Malformed)?;
    if !typ_ok(header.typ.as_deref()) {
        return Err(AssertionError::Type);
    }
    let key = keys
        .select(compact.alg, compact.kid.as_deref())
        .map_err(|_| AssertionError::Key)?;
    key.verify(
        compact.alg,
        compact.signing_input.as_bytes(),
        &compact.signature,
        native,
    )
    .map_err(|_| AssertionError::Signature)?;
    let payload = compact.payload().map_err(|_| AssertionError::Malformed)?;
    let claims = Claims::from_json(&payload).map_err(|_| AssertionError::Malformed)?;
    match (claims.iss.as_deref(), claims.sub.as_deref()) {
        (Some(iss), Some(sub)) if iss == sub => {
            if iss != expect.client_id {
                return Err(AssertionError::WrongClient);
            }
        }
        _ => return Err(AssertionError::Subject),
    }
    let mut aud_ok = false;
    for a in expect.audiences {
        aud_ok |= claims
            .audience_contains(a)
            .map_err(|_| AssertionError::Audience)?;
    }
    if !aud_ok {
        return Err(AssertionError::Audience);
    }
    let exp = claims
        .check_time(expect.now, expect.leeway)
        .map_err(|e| match e {
            TokenError::Expired => AssertionError::Expired,
            TokenError::NotYetValid => AssertionError::Lifetime,
            _ => AssertionError::Malformed,
        })?;
    if exp > expect.now.saturating_add(MAX_LIFETIME + expect.leeway) {
        return Err(AssertionError::Lifetime);
    }
    if let Some(iat) = claims.iat.as_ref().and_then(serde_json::Value::as_u64) {
        if iat > expect.now.saturating_add(expect.leeway) {
            return Err(AssertionError::Lifetime);
        }
    }
    match claims.jti {
        Some(jti) if !jti.is_empty() && jti.len() <= MAX_JTI => Ok(Verified { jti, exp }),
        _ => Err(AssertionError::Jti),
    }
}
