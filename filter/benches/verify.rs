//! Native µs per token verification for each algorithm (issue: foundation). Run with
//! `cargo bench -p mcpgate-filter --bench verify`.

use criterion::{criterion_group, criterion_main, Criterion};
use mcpgate_filter::jwt::{
    Algorithm, AlgorithmSet, AudienceRule, HmacKey, Jwk, KeyMaterial, KeySet, Policy,
};
use std::hint::black_box;

#[path = "../src/jwt/tests/vectors.rs"]
mod vectors;
use vectors::*;

fn policy(algs: AlgorithmSet) -> Policy {
    Policy::new(
        POOL_ISSUER.to_string(),
        algs,
        AudienceRule::CognitoAccess {
            client_ids: vec![APP_CLIENT.to_string()],
        },
    )
}

fn bench_verify(c: &mut Criterion) {
    let claims = cognito_access_claims().to_string();
    let mut keys = KeySet::from_json(test_jwks().as_bytes())
        .unwrap()
        .keys()
        .to_vec();
    keys.push(Jwk {
        kid: Some("hs1".into()),
        alg: Some(Algorithm::Hs256),
        material: KeyMaterial::Hmac(HmacKey::new(HMAC_SECRET.to_vec())),
    });
    let keys = KeySet::from_keys(keys);
    let mut group = c.benchmark_group("verify");
    for (name, header, algs) in [
        (
            "RS256",
            r#"{"alg":"RS256","kid":"rsa1"}"#,
            AlgorithmSet::COGNITO,
        ),
        (
            "ES256",
            r#"{"alg":"ES256","kid":"ec1"}"#,
            AlgorithmSet::ASYMMETRIC,
        ),
        (
            "EdDSA",
            r#"{"alg":"EdDSA","kid":"ed1"}"#,
            AlgorithmSet::ASYMMETRIC,
        ),
        (
            "HS256",
            r#"{"alg":"HS256","kid":"hs1"}"#,
            AlgorithmSet::of(&[Algorithm::Hs256]),
        ),
    ] {
        let token = sign(header, &claims);
        let p = policy(algs);
        assert!(p.verify(&token, &keys, NOW, None).is_ok(), "{name}");
        group.bench_function(name, |b| {
            b.iter(|| p.verify(black_box(&token), &keys, NOW, None).is_ok())
        });
    }
    group.finish();
}

criterion_group!(benches, bench_verify);
criterion_main!(benches);
