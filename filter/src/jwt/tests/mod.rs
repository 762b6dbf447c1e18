//! End-to-end verification tests: published vectors, Cognito-shaped tokens, and one negative
//! test per rule, each asserting the exact rejection.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use serde_json::json;

pub(crate) mod vectors;

use super::*;
use vectors::*;

fn keys() -> KeySet {
    KeySet::from_json(test_jwks().as_bytes()).unwrap()
}

fn cognito_access_policy() -> Policy {
    let mut p = Policy::new(
        POOL_ISSUER.to_string(),
        AlgorithmSet::COGNITO,
        AudienceRule::CognitoAccess {
            client_ids: vec![APP_CLIENT.to_string()],
        },
    );
    p.required_scopes = vec!["openid".to_string()];
    p
}

fn cognito_id_policy() -> Policy {
    Policy::new(
        POOL_ISSUER.to_string(),
        AlgorithmSet::COGNITO,
        AudienceRule::CognitoId {
            client_id: APP_CLIENT.to_string(),
        },
    )
}

fn oidc_policy() -> Policy {
    Policy::new(
        POOL_ISSUER.to_string(),
        AlgorithmSet::ASYMMETRIC,
        AudienceRule::Audience("https://mcp.example.com/mcp".to_string()),
    )
}

fn verify_access(token: &str) -> Result<Identity, TokenError> {
    cognito_access_policy().verify(token, &keys(), NOW, None)
}

fn with(mut claims: serde_json::Value, key: &str, value: serde_json::Value) -> serde_json::Value {
    claims[key] = value;
    claims
}

fn without(mut claims: serde_json::Value, key: &str) -> serde_json::Value {
    claims.as_object_mut().unwrap().remove(key);
    claims
}

// ---- published vectors ----

#[test]
fn rfc7515_a2_rs256_example_verifies_with_its_published_key() {
    let doc = format!(r#"{{"keys":[{{"kty":"RSA","n":"{RFC7515_A2_N}","e":"AQAB"}}]}}"#);
    let keys = KeySet::from_json(doc.as_bytes()).unwrap();
    let compact = compact::Compact::parse(RFC7515_A2_TOKEN, 16384).unwrap();
    assert_eq!(compact.alg, Algorithm::Rs256);
    let key = keys.select(compact.alg, None).unwrap();
    key.verify(
        compact.alg,
        compact.signing_input.as_bytes(),
        &compact.signature,
        None,
    )
    .unwrap();
    let claims = claims::Claims::from_json(&compact.payload().unwrap()).unwrap();
    assert_eq!(claims.iss.as_deref(), Some("joe"));
    // The example expired in 2011: the full policy says so, after the signature passed.
    let policy = Policy::new(
        "joe".to_string(),
        AlgorithmSet::COGNITO,
        AudienceRule::Audience("x".to_string()),
    );
    assert_eq!(
        policy.verify(RFC7515_A2_TOKEN, &keys, NOW, None),
        Err(TokenError::Expired)
    );
}

#[test]
fn rfc7515_a2_signature_bit_flip_fails() {
    let doc = format!(r#"{{"keys":[{{"kty":"RSA","n":"{RFC7515_A2_N}","e":"AQAB"}}]}}"#);
    let keys = KeySet::from_json(doc.as_bytes()).unwrap();
    let mut bytes = String::from(RFC7515_A2_TOKEN).into_bytes();
    let i = bytes.len() - 10;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    let token = String::from_utf8(bytes).unwrap();
    let compact = compact::Compact::parse(&token, 16384).unwrap();
    let key = keys.select(compact.alg, None).unwrap();
    assert_eq!(
        key.verify(
            compact.alg,
            compact.signing_input.as_bytes(),
            &compact.signature,
            None
        ),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn rfc8037_a4_ed25519_example_verifies() {
    let keys = keys();
    let compact = compact::Compact::parse(RFC8037_A4_TOKEN, 16384).unwrap();
    assert_eq!(compact.alg, Algorithm::EdDsa);
    let key = keys.select(compact.alg, None).unwrap();
    key.verify(
        compact.alg,
        compact.signing_input.as_bytes(),
        &compact.signature,
        None,
    )
    .unwrap();
    assert_eq!(compact.payload().unwrap(), b"Example of Ed25519 signing");
}

#[test]
fn test_signing_keys_match_published_public_keys() {
    // Guards the helpers: what they sign must verify under the RFC public keys.
    let claims = cognito_access_claims().to_string();
    for header in [
        r#"{"alg":"RS256","kid":"rsa1"}"#,
        r#"{"alg":"ES256","kid":"ec1"}"#,
        r#"{"alg":"EdDSA","kid":"ed1"}"#,
    ] {
        let token = sign(header, &claims);
        let mut policy = cognito_access_policy();
        policy.algorithms = AlgorithmSet::ASYMMETRIC;
        assert!(
            policy.verify(&token, &keys(), NOW, None).is_ok(),
            "{header}"
        );
    }
}

// ---- Cognito rules ----

#[test]
fn cognito_access_token_yields_identity() {
    let id = verify_access(&rs256(&cognito_access_claims())).unwrap();
    assert_eq!(id.sub, "6a1f1d2e-1111-2222-3333-444455556666");
    assert_eq!(id.username.as_deref(), Some("alice"));
    assert_eq!(id.groups, ["admins"]);
    assert_eq!(id.scope, "openid email");
    assert_eq!(id.client_id.as_deref(), Some(APP_CLIENT));
    assert_eq!(id.email, None);
    assert_eq!(id.exp, NOW + 3600);
}

#[test]
fn cognito_id_token_yields_identity_with_email() {
    let token = rs256(&cognito_id_claims());
    let id = cognito_id_policy()
        .verify(&token, &keys(), NOW, None)
        .unwrap();
    assert_eq!(id.username.as_deref(), Some("alice"));
    assert_eq!(id.email.as_deref(), Some("alice@example.com"));
}

#[test]
fn id_token_is_not_an_access_token() {
    let token = rs256(&cognito_id_claims());
    assert_eq!(verify_access(&token), Err(TokenError::WrongTokenUse));
}

#[test]
fn access_token_is_not_an_id_token() {
    let token = rs256(&cognito_access_claims());
    assert_eq!(
        cognito_id_policy().verify(&token, &keys(), NOW, None),
        Err(TokenError::WrongTokenUse)
    );
}

#[test]
fn access_token_without_token_use_is_refused() {
    let token = rs256(&without(cognito_access_claims(), "token_use"));
    assert_eq!(
        verify_access(&token),
        Err(TokenError::MissingClaim("token_use"))
    );
}

#[test]
fn access_token_of_another_app_client_is_refused() {
    let token = rs256(&with(
        cognito_access_claims(),
        "client_id",
        json!("other-client"),
    ));
    assert_eq!(verify_access(&token), Err(TokenError::WrongAudience));
}

#[test]
fn access_token_without_client_id_is_refused() {
    let token = rs256(&without(cognito_access_claims(), "client_id"));
    assert_eq!(
        verify_access(&token),
        Err(TokenError::MissingClaim("client_id"))
    );
}

#[test]
fn additional_accepted_clients_pass() {
    let mut policy = cognito_access_policy();
    policy.audience = AudienceRule::CognitoAccess {
        client_ids: vec![APP_CLIENT.to_string(), "m2m".to_string()],
    };
    policy.required_scopes.clear();
    let claims = with(cognito_access_claims(), "client_id", json!("m2m"));
    assert!(policy.verify(&rs256(&claims), &keys(), NOW, None).is_ok());
}

#[test]
fn id_token_for_another_client_is_refused() {
    let token = rs256(&with(cognito_id_claims(), "aud", json!("other")));
    assert_eq!(
        cognito_id_policy().verify(&token, &keys(), NOW, None),
        Err(TokenError::WrongAudience)
    );
}

#[test]
fn id_token_without_aud_is_refused() {
    let token = rs256(&without(cognito_id_claims(), "aud"));
    assert_eq!(
        cognito_id_policy().verify(&token, &keys(), NOW, None),
        Err(TokenError::MissingClaim("aud"))
    );
}

#[test]
fn wrong_issuer_is_refused() {
    let other = "https://cognito-idp.eu-central-1.amazonaws.com/eu-central-1_OTHER";
    let token = rs256(&with(cognito_access_claims(), "iss", json!(other)));
    assert_eq!(verify_access(&token), Err(TokenError::WrongIssuer));
}

#[test]
fn issuer_must_match_exactly() {
    let token = rs256(&with(
        cognito_access_claims(),
        "iss",
        json!(format!("{POOL_ISSUER}/")),
    ));
    assert_eq!(verify_access(&token), Err(TokenError::WrongIssuer));
}

#[test]
fn missing_issuer_is_refused() {
    let token = rs256(&without(cognito_access_claims(), "iss"));
    assert_eq!(verify_access(&token), Err(TokenError::MissingClaim("iss")));
}

#[test]
fn missing_sub_is_refused() {
    let token = rs256(&without(cognito_access_claims(), "sub"));
    assert_eq!(verify_access(&token), Err(TokenError::MissingClaim("sub")));
}

// ---- scopes ----

#[test]
fn missing_required_scope_is_insufficient_scope() {
    let token = rs256(&with(cognito_access_claims(), "scope", json!("email")));
    let err = verify_access(&token).unwrap_err();
    assert_eq!(err, TokenError::InsufficientScope);
    assert_eq!(err.bearer_error(), BearerError::InsufficientScope);
    assert_eq!(err.bearer_error().status(), 403);
}

#[test]
fn all_required_scopes_must_be_present() {
    let mut policy = cognito_access_policy();
    policy.required_scopes = vec!["openid".to_string(), "profile".to_string()];
    let token = rs256(&cognito_access_claims());
    assert_eq!(
        policy.verify(&token, &keys(), NOW, None),
        Err(TokenError::InsufficientScope)
    );
}

#[test]
fn scp_array_satisfies_required_scopes() {
    let claims = with(
        without(cognito_access_claims(), "scope"),
        "scp",
        json!(["openid"]),
    );
    assert!(verify_access(&rs256(&claims)).is_ok());
}

#[test]
fn scope_prefix_is_not_the_scope() {
    let token = rs256(&with(cognito_access_claims(), "scope", json!("openidx")));
    assert_eq!(verify_access(&token), Err(TokenError::InsufficientScope));
}

// ---- time ----

#[test]
fn expired_token_is_refused() {
    let token = rs256(&with(cognito_access_claims(), "exp", json!(NOW - 31)));
    let err = verify_access(&token).unwrap_err();
    assert_eq!(err, TokenError::Expired);
    assert_eq!(err.bearer_error().code(), "invalid_token");
}

#[test]
fn expiry_within_leeway_is_accepted() {
    let token = rs256(&with(cognito_access_claims(), "exp", json!(NOW - 29)));
    assert!(verify_access(&token).is_ok());
}

#[test]
fn not_yet_valid_token_is_refused() {
    let token = rs256(&with(cognito_access_claims(), "nbf", json!(NOW + 31)));
    assert_eq!(verify_access(&token), Err(TokenError::NotYetValid));
}

#[test]
fn exp_as_string_is_refused() {
    let token = rs256(&with(cognito_access_claims(), "exp", json!("1900000000")));
    assert_eq!(verify_access(&token), Err(TokenError::InvalidClaim("exp")));
}

#[test]
fn missing_exp_is_refused() {
    let token = rs256(&without(cognito_access_claims(), "exp"));
    assert_eq!(verify_access(&token), Err(TokenError::MissingClaim("exp")));
}

// ---- algorithms and headers ----

#[test]
fn alg_none_is_refused() {
    let token = format!(
        "{}.{}.",
        crate::encoding::b64url_encode(br#"{"alg":"none"}"#),
        crate::encoding::b64url_encode(cognito_access_claims().to_string().as_bytes())
    );
    assert_eq!(verify_access(&token), Err(TokenError::AlgNone));
    let token = token.replace(
        &crate::encoding::b64url_encode(br#"{"alg":"none"}"#),
        &crate::encoding::b64url_encode(br#"{"alg":"NoNe"}"#),
    );
    assert_eq!(verify_access(&token), Err(TokenError::AlgNone));
}

#[test]
fn hs256_signed_with_the_rsa_public_key_is_refused() {
    // The classic algorithm-confusion attack: HMAC keyed with the published RSA key.
    let claims = cognito_access_claims().to_string();
    let input = format!(
        "{}.{}",
        crate::encoding::b64url_encode(br#"{"alg":"HS256","kid":"rsa1"}"#),
        crate::encoding::b64url_encode(claims.as_bytes())
    );
    let sig = signature::hs256(RFC7515_A2_N.as_bytes(), input.as_bytes());
    let token = format!("{input}.{}", crate::encoding::b64url_encode(&sig));
    assert_eq!(verify_access(&token), Err(TokenError::AlgorithmNotAllowed));
    // Even with HS256 allowed, a published RSA key is never an HMAC key.
    let mut policy = cognito_access_policy();
    policy.algorithms = AlgorithmSet::of(&[Algorithm::Hs256, Algorithm::Rs256]);
    assert_eq!(
        policy.verify(&token, &keys(), NOW, None),
        Err(TokenError::KeyMismatch)
    );
}

#[test]
fn algorithm_outside_allow_list_is_refused() {
    let token = sign(
        r#"{"alg":"ES256","kid":"ec1"}"#,
        &cognito_access_claims().to_string(),
    );
    assert_eq!(verify_access(&token), Err(TokenError::AlgorithmNotAllowed));
}

#[test]
fn alg_and_key_type_mismatch_is_refused() {
    // ES256 token naming the RSA key.
    let token = sign(
        r#"{"alg":"ES256","kid":"rsa1"}"#,
        &cognito_access_claims().to_string(),
    );
    assert_eq!(
        oidc_policy().verify(&token, &keys(), NOW, None),
        Err(TokenError::KeyMismatch)
    );
}

#[test]
fn unknown_algorithm_is_refused() {
    let token = sign(r#"{"alg":"RS256","kid":"rsa1"}"#, "{}").replacen(
        &crate::encoding::b64url_encode(br#"{"alg":"RS256","kid":"rsa1"}"#),
        &crate::encoding::b64url_encode(br#"{"alg":"HS1024","kid":"rsa1"}"#),
        1,
    );
    assert_eq!(verify_access(&token), Err(TokenError::UnknownAlgorithm));
}

#[test]
fn crit_header_is_refused() {
    let token = sign(
        r#"{"alg":"RS256","kid":"rsa1","crit":["exp"],"exp":1}"#,
        &cognito_access_claims().to_string(),
    );
    assert_eq!(verify_access(&token), Err(TokenError::UnsupportedCrit));
}

#[test]
fn unknown_kid_is_refused() {
    let token = sign(
        r#"{"alg":"RS256","kid":"../../etc/passwd"}"#,
        &cognito_access_claims().to_string(),
    );
    assert_eq!(verify_access(&token), Err(TokenError::UnknownKid));
}

#[test]
fn token_without_kid_uses_the_single_matching_key() {
    let token = sign(r#"{"alg":"RS256"}"#, &cognito_access_claims().to_string());
    assert!(verify_access(&token).is_ok());
}

#[test]
fn token_without_kid_is_refused_when_several_keys_match() {
    let doc = format!(
        r#"{{"keys":[{{"kty":"RSA","kid":"a","n":"{RFC7515_A2_N}","e":"AQAB"}},{{"kty":"RSA","kid":"b","n":"{RFC7515_A2_N}","e":"AQAB"}}]}}"#
    );
    let keys = KeySet::from_json(doc.as_bytes()).unwrap();
    let token = sign(r#"{"alg":"RS256"}"#, &cognito_access_claims().to_string());
    assert_eq!(
        cognito_access_policy().verify(&token, &keys, NOW, None),
        Err(TokenError::AmbiguousKey)
    );
}

#[test]
fn tampered_payload_fails_signature() {
    let token = rs256(&cognito_access_claims());
    let mut parts: alloc::vec::Vec<&str> = token.split('.').collect();
    let forged = crate::encoding::b64url_encode(
        with(cognito_access_claims(), "username", json!("mallory"))
            .to_string()
            .as_bytes(),
    );
    parts[1] = &forged;
    assert_eq!(
        verify_access(&parts.join(".")),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn signature_of_wrong_length_fails() {
    let token = sign(
        r#"{"alg":"ES256","kid":"ec1"}"#,
        &cognito_access_claims().to_string(),
    );
    let (input, _) = token.rsplit_once('.').unwrap();
    let token = format!("{input}.{}", crate::encoding::b64url_encode(&[1u8; 63]));
    assert_eq!(
        oidc_policy().verify(&token, &keys(), NOW, None),
        Err(TokenError::BadSignature)
    );
}

// ---- limits and shape ----

#[test]
fn oversized_token_is_refused_before_decoding() {
    let token = "a".repeat(16 * 1024 + 1);
    assert_eq!(verify_access(&token), Err(TokenError::TooLong));
}

#[test]
fn wrong_segment_count_is_refused() {
    assert_eq!(verify_access("a.b"), Err(TokenError::NotCompact));
    assert_eq!(verify_access("a.b.c.d"), Err(TokenError::NotCompact));
    assert_eq!(verify_access(""), Err(TokenError::NotCompact));
}

#[test]
fn padded_base64_is_refused() {
    let token = rs256(&cognito_access_claims());
    let (h, rest) = token.split_once('.').unwrap();
    assert_eq!(
        verify_access(&format!("{h}=.{rest}")),
        Err(TokenError::BadBase64)
    );
}

#[test]
fn header_that_is_not_json_is_refused() {
    let token = format!(
        "{}.e30.AA",
        crate::encoding::b64url_encode(b"\xff\xfe not json")
    );
    assert_eq!(verify_access(&token), Err(TokenError::BadJson));
}

#[test]
fn deeply_nested_header_is_refused() {
    let header = format!(
        r#"{{"alg":"RS256","x":{}1{}}}"#,
        "[".repeat(50),
        "]".repeat(50)
    );
    let token = format!(
        "{}.e30.AA",
        crate::encoding::b64url_encode(header.as_bytes())
    );
    assert_eq!(verify_access(&token), Err(TokenError::TooDeep));
}

#[test]
fn deeply_nested_claims_are_refused_after_signature() {
    let claims = with(
        cognito_access_claims(),
        "x",
        serde_json::from_str(&format!("{}1{}", "[".repeat(20), "]".repeat(20))).unwrap(),
    );
    assert_eq!(verify_access(&rs256(&claims)), Err(TokenError::TooDeep));
}

#[test]
fn duplicate_claim_is_refused() {
    let claims = cognito_access_claims().to_string();
    let dup = claims.replacen("{", r#"{"username":"mallory","#, 1);
    let token = sign(r#"{"alg":"RS256","kid":"rsa1"}"#, &dup);
    assert_eq!(verify_access(&token), Err(TokenError::BadJson));
}

#[test]
fn payload_that_is_not_an_object_is_refused() {
    let token = sign(r#"{"alg":"RS256","kid":"rsa1"}"#, "[1,2]");
    assert_eq!(verify_access(&token), Err(TokenError::BadJson));
}

// ---- generic OIDC and HS256 ----

#[test]
fn oidc_audience_must_contain_configured_value() {
    let claims = with(
        cognito_id_claims(),
        "aud",
        json!(["a", "https://mcp.example.com/mcp"]),
    );
    let token = sign(r#"{"alg":"EdDSA","kid":"ed1"}"#, &claims.to_string());
    assert!(oidc_policy().verify(&token, &keys(), NOW, None).is_ok());
    let claims = with(
        cognito_id_claims(),
        "aud",
        json!("https://mcp.example.com/other"),
    );
    let token = sign(r#"{"alg":"EdDSA","kid":"ed1"}"#, &claims.to_string());
    assert_eq!(
        oidc_policy().verify(&token, &keys(), NOW, None),
        Err(TokenError::WrongAudience)
    );
}

#[test]
fn hs256_with_a_local_secret_verifies_and_wrong_secret_fails() {
    let local = KeySet::from_keys(vec![Jwk {
        kid: Some("k1".to_string()),
        alg: Some(Algorithm::Hs256),
        material: KeyMaterial::Hmac(HmacKey::new(HMAC_SECRET.to_vec())),
    }]);
    let mut policy = oidc_policy();
    policy.algorithms = AlgorithmSet::of(&[Algorithm::Hs256]);
    let claims = with(
        cognito_id_claims(),
        "aud",
        json!("https://mcp.example.com/mcp"),
    );
    let token = sign(r#"{"alg":"HS256","kid":"k1"}"#, &claims.to_string());
    assert!(policy.verify(&token, &local, NOW, None).is_ok());
    let other = KeySet::from_keys(vec![Jwk {
        kid: Some("k1".to_string()),
        alg: Some(Algorithm::Hs256),
        material: KeyMaterial::Hmac(HmacKey::new(b"another-secret".to_vec())),
    }]);
    assert_eq!(
        policy.verify(&token, &other, NOW, None),
        Err(TokenError::BadSignature)
    );
    assert!(!format!("{:?}", other).contains("another-secret"));
}

// ---- native RSA hook ----

struct FakeNative(bool);
impl NativeRsa for FakeNative {
    fn verify_pkcs1v15(&self, hash: &'static str, spki: &[u8], _: &[u8], _: &[u8]) -> Option<bool> {
        assert_eq!(hash, "sha256");
        assert_eq!(spki.first(), Some(&0x30));
        Some(self.0)
    }
}

#[test]
fn native_rsa_verdict_is_used_when_offered() {
    let token = rs256(&cognito_access_claims());
    let policy = cognito_access_policy();
    assert!(policy
        .verify(&token, &keys(), NOW, Some(&FakeNative(true)))
        .is_ok());
    assert_eq!(
        policy.verify(&token, &keys(), NOW, Some(&FakeNative(false))),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn every_error_has_a_safe_description() {
    for err in [
        TokenError::TooLong,
        TokenError::BadSignature,
        TokenError::MissingClaim("exp"),
        TokenError::InsufficientScope,
    ] {
        assert!(!err.description().is_empty());
        assert!(!err.reason().is_empty());
    }
    assert_eq!(
        TokenError::MissingClaim("exp").to_string(),
        "required claim missing: exp"
    );
}
