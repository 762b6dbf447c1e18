//! Published test vectors (RFC 7515, RFC 7517, RFC 8037) and helpers that mint tokens with
//! their private keys, for tests and benchmarks only. Self-contained (no `crate::` paths) so
//! the benchmarks can include this same file.
#![allow(dead_code)]

extern crate alloc;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use base64ct::{Base64UrlUnpadded, Encoding};

fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    Base64UrlUnpadded::decode_vec(s).ok()
}

fn b64url_encode(b: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(b)
}

fn hs256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

/// RFC 7515 Appendix A.2 RSA key (also used as "the Cognito pool key" in tests).
pub const RFC7515_A2_N: &str = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";
const RFC7515_A2_D: &str = "Eq5xpGnNCivDflJsRQBXHx1hdR1k6Ulwe2JZD50LpXyWPEAeP88vLNO97IjlA7_GQ5sLKMgvfTeXZx9SE-7YwVol2NXOoAJe46sui395IW_GO-pWJ1O0BkTGoVEn2bKVRUCgu-GjBVaYLU6f3l9kJfFNS3E0QbVdxzubSu3Mkqzjkn439X0M_V51gfpRLI9JYanrC4D4qAdGcopV_0ZHHzQlBjudU2QvXt4ehNYTCBr6XCLQUShb1juUO1ZdiYoFaFQT5Tw8bGUl_x_jTj3ccPDVZFD9pIuhLhBOneufuBiB4cS98l2SR_RQyGWSeWjnczT0QU91p1DhOVRuOopznQ";
const RFC7515_A2_P: &str = "4BzEEOtIpmVdVEZNCqS7baC4crd0pqnRH_5IB3jw3bcxGn6QLvnEtfdUdiYrqBdss1l58BQ3KhooKeQTa9AB0Hw_Py5PJdTJNPY8cQn7ouZ2KKDcmnPGBY5t7yLc1QlQ5xHdwW1VhvKn-nXqhJTBgIPgtldC-KDV5z-y2XDwGUc";
const RFC7515_A2_Q: &str = "uQPEfgmVtjL0Uyyx88GZFF1fOunH3-7cepKmtH4pxhtCoHqpWmT8YAmZxaewHgHAjLYsp1ZSe7zFYHj7C6ul7TjeLQeZD_YwD66t62wDmpe_HlB-TnBA-njbglfIsRLtXlnDzQkv5dTltRJ11BKBBypeeF6689rjcJIDEz9RWdc";
/// The RFC 7515 A.2 example token ({"iss":"joe","exp":1300819380,...}).
pub const RFC7515_A2_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";

/// RFC 7515 Appendix A.3 P-256 key.
pub const RFC7515_A3_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
pub const RFC7515_A3_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
const RFC7515_A3_D: &str = "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI";

/// RFC 8037 Appendix A.1 Ed25519 key and the A.4 signed example.
pub const RFC8037_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
const RFC8037_D: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
pub const RFC8037_A4_TOKEN: &str = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

/// RFC 7517 Appendix A.1 example public keys (an EC key marked `use: enc`, an RSA key).
pub const RFC7517_A1: &str = r#"{"keys":[
 {"kty":"EC","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM","use":"enc","kid":"1"},
 {"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}
]}"#;

/// A JWKS with the RFC 7515 A.2 RSA key (kid `rsa1`), the A.3 EC key (`ec1`) and the
/// RFC 8037 Ed25519 key (`ed1`).
pub fn test_jwks() -> String {
    format!(
        r#"{{"keys":[{{"kty":"RSA","kid":"rsa1","alg":"RS256","use":"sig","n":"{RFC7515_A2_N}","e":"AQAB"}},
        {{"kty":"EC","crv":"P-256","kid":"ec1","x":"{RFC7515_A3_X}","y":"{RFC7515_A3_Y}"}},
        {{"kty":"OKP","crv":"Ed25519","kid":"ed1","x":"{RFC8037_X}"}}]}}"#
    )
}

fn uint(b64: &str) -> rsa::BoxedUint {
    rsa::BoxedUint::from_be_slice_vartime(&b64url_decode(b64).unwrap())
}

pub fn rsa_private_key() -> rsa::PrivateKey {
    rsa::PrivateKey::from_components(
        uint(RFC7515_A2_N),
        uint("AQAB"),
        uint(RFC7515_A2_D),
        vec![uint(RFC7515_A2_P), uint(RFC7515_A2_Q)],
    )
    .unwrap()
}

fn signing_input(header: &str, claims: &str) -> String {
    format!(
        "{}.{}",
        b64url_encode(header.as_bytes()),
        b64url_encode(claims.as_bytes())
    )
}

/// Signs `claims` with the given header using the key the header's `alg` needs.
pub fn sign(header: &str, claims: &str) -> String {
    let input = signing_input(header, claims);
    let h: serde_json::Value = serde_json::from_str(header).unwrap();
    let sig = match h["alg"].as_str().unwrap() {
        "RS256" => {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(input.as_bytes());
            rsa_private_key()
                .sign(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &digest)
                .unwrap()
        }
        "ES256" => {
            use p256::ecdsa::signature::Signer;
            let d = b64url_decode(RFC7515_A3_D).unwrap();
            let key = p256::ecdsa::SigningKey::from_slice(&d).unwrap();
            let sig: p256::ecdsa::Signature = key.sign(input.as_bytes());
            sig.to_bytes().to_vec()
        }
        "EdDSA" => {
            use ed25519_dalek::Signer;
            let d: [u8; 32] = b64url_decode(RFC8037_D).unwrap().try_into().unwrap();
            let key = ed25519_dalek::SigningKey::from_bytes(&d);
            key.sign(input.as_bytes()).to_bytes().to_vec()
        }
        "HS256" => hs256(HMAC_SECRET, input.as_bytes()),
        other => panic!("test helper cannot sign {other}"),
    };
    format!("{input}.{}", b64url_encode(&sig))
}

pub const HMAC_SECRET: &[u8] = b"an-hmac-secret-of-thirty-two-b!!";

pub const POOL_ISSUER: &str = "https://cognito-idp.eu-central-1.amazonaws.com/eu-central-1_TEST";
pub const APP_CLIENT: &str = "app-client-id";
pub const NOW: u64 = 1_800_000_000;

/// Claims shaped exactly like a Cognito user-pool access token.
pub fn cognito_access_claims() -> serde_json::Value {
    serde_json::json!({
        "sub": "6a1f1d2e-1111-2222-3333-444455556666",
        "cognito:groups": ["admins"],
        "iss": POOL_ISSUER,
        "version": 2,
        "client_id": APP_CLIENT,
        "origin_jti": "0c9d7a1e-aaaa-bbbb-cccc-ddddeeeeffff",
        "event_id": "e1e2e3e4-0000-1111-2222-333344445555",
        "token_use": "access",
        "scope": "openid email",
        "auth_time": NOW - 60,
        "exp": NOW + 3600,
        "iat": NOW - 60,
        "jti": "9f8e7d6c-0000-1111-2222-333344445555",
        "username": "alice"
    })
}

/// Claims shaped exactly like a Cognito user-pool ID token.
pub fn cognito_id_claims() -> serde_json::Value {
    serde_json::json!({
        "sub": "6a1f1d2e-1111-2222-3333-444455556666",
        "cognito:groups": ["admins"],
        "email_verified": true,
        "iss": POOL_ISSUER,
        "cognito:username": "alice",
        "origin_jti": "0c9d7a1e-aaaa-bbbb-cccc-ddddeeeeffff",
        "aud": APP_CLIENT,
        "event_id": "e1e2e3e4-0000-1111-2222-333344445555",
        "token_use": "id",
        "auth_time": NOW - 60,
        "exp": NOW + 3600,
        "iat": NOW - 60,
        "jti": "1a2b3c4d-0000-1111-2222-333344445555",
        "email": "alice@example.com"
    })
}

pub fn rs256(claims: &serde_json::Value) -> String {
    sign(r#"{"kid":"rsa1","alg":"RS256"}"#, &claims.to_string())
}
