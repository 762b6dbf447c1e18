//! The demo MCP server's identity tools (issue 16), as an origin written in Rust would do
//! them: `upstream_userinfo` calls the IdP's `userInfo` as the user with the IdP token the
//! proxy forwarded; `verify_assertion` verifies the proxy's identity assertion against the
//! proxy's published JWKS — with the RustCrypto `p256` and `ed25519-dalek` crates directly,
//! not with the proxy's own verifier, so the check is independent of the code that signs.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::{json, Value};

use crate::origin::OriginSettings;

fn b64url(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A header's value, without a `Bearer ` prefix (the proxy adds one in `authorization`).
pub fn credential(headers: &http::HeaderMap, name: &str) -> Option<String> {
    let v = headers.get(name)?.to_str().ok()?.trim();
    Some(v.strip_prefix("Bearer ").unwrap_or(v).to_owned())
}

/// The readable claims of a JWT (never verified here: only to tell tokens apart in tests).
fn claims_of(token: &str) -> Value {
    token
        .split('.')
        .nth(1)
        .and_then(b64url)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null)
}

/// `upstream_userinfo`: the IdP's `userInfo` answer for the forwarded token, and a few of the
/// token's claims (never the token).
pub async fn upstream_userinfo(settings: &OriginSettings, token: Option<String>) -> Value {
    let Some(token) = token else {
        return json!({"token_present": false});
    };
    let c = claims_of(&token);
    let summary = json!({
        "jti": c["jti"], "exp": c["exp"], "token_use": c["token_use"],
        "username": c["username"], "client_id": c["client_id"],
    });
    let resp = crate::harness::http_client()
        .get(&settings.userinfo_url)
        .bearer_auth(&token)
        .send()
        .await;
    match resp {
        Ok(r) => {
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            json!({"token_present": true, "status": status, "userinfo": body, "token": summary})
        }
        Err(e) => {
            json!({"token_present": true, "status": 0, "error": e.to_string(), "token": summary})
        }
    }
}

/// Verifies an assertion: signature by a key of the proxy's JWKS (by `kid`, ES256 or EdDSA),
/// `typ`, `iss`, `aud`, `exp` and `iat`. The claims, or why not.
pub async fn verify(settings: &OriginSettings, assertion: &str) -> Result<Value, String> {
    let mut parts = assertion.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not a compact JWS".into());
    };
    let header: Value = b64url(h)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("bad header")?;
    if header["typ"] != "mcpgate-identity+jwt" {
        return Err(format!("unexpected typ {}", header["typ"]));
    }
    let alg = header["alg"].as_str().ok_or("no alg")?;
    let kid = header["kid"].as_str().ok_or("no kid")?;
    let jwks: Value = crate::harness::http_client()
        .get(&settings.jwks_url)
        .send()
        .await
        .map_err(|e| format!("JWKS: {e}"))?
        .json()
        .await
        .map_err(|e| format!("JWKS: {e}"))?;
    let jwk = jwks["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == kid))
        .ok_or_else(|| format!("no key {kid} in the JWKS"))?;
    if jwk["alg"] != alg {
        return Err("the key is for another algorithm".into());
    }
    let input = format!("{h}.{p}");
    let sig = b64url(s).ok_or("bad signature encoding")?;
    let coordinate = |name: &str| jwk[name].as_str().and_then(b64url).ok_or("bad key");
    let valid = match alg {
        "ES256" => {
            use p256::ecdsa::signature::Verifier as _;
            let mut sec1 = vec![4u8];
            sec1.extend(coordinate("x")?);
            sec1.extend(coordinate("y")?);
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).map_err(|_| "bad key")?;
            let sig = p256::ecdsa::Signature::from_slice(&sig).map_err(|_| "bad signature")?;
            key.verify(input.as_bytes(), &sig).is_ok()
        }
        "EdDSA" => {
            let x: [u8; 32] = coordinate("x")?.try_into().map_err(|_| "bad key")?;
            let key = ed25519_dalek::VerifyingKey::from_bytes(&x).map_err(|_| "bad key")?;
            let sig = ed25519_dalek::Signature::from_slice(&sig).map_err(|_| "bad signature")?;
            key.verify_strict(input.as_bytes(), &sig).is_ok()
        }
        other => return Err(format!("algorithm {other} not accepted")),
    };
    if !valid {
        return Err("signature does not verify".into());
    }
    let claims: Value = b64url(p)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("bad payload")?;
    let t = now();
    if claims["iss"] != settings.issuer.as_str() {
        return Err("wrong issuer".into());
    }
    if claims["aud"] != settings.audience.as_str() {
        return Err("wrong audience".into());
    }
    let exp = claims["exp"].as_u64().ok_or("no exp")?;
    let iat = claims["iat"].as_u64().ok_or("no iat")?;
    if exp <= t || iat > t + 30 || exp > iat + 60 {
        return Err("expired or not yet valid".into());
    }
    if claims["sub"].as_str().is_none_or(str::is_empty) {
        return Err("no sub".into());
    }
    Ok(claims)
}

/// `verify_assertion`: the assertion the proxy sent (with one character of its signature
/// changed when `tamper`) verified.
pub async fn verify_assertion(
    settings: &OriginSettings,
    assertion: Option<String>,
    tamper: bool,
) -> Value {
    let Some(mut a) = assertion else {
        return json!({"present": false, "valid": false});
    };
    if tamper {
        // The payload's first character: a claim changed under the same signature.
        let dot = a.find('.').unwrap_or(0) + 1;
        let c = a.as_bytes().get(dot).copied().unwrap_or(b'e');
        let swapped = if c == b'f' { "g" } else { "f" };
        a.replace_range(dot..dot + 1, swapped);
    }
    match verify(settings, &a).await {
        Ok(claims) => json!({"present": true, "valid": true, "claims": claims}),
        Err(e) => json!({"present": true, "valid": false, "error": e}),
    }
}
