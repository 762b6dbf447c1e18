//! Token parsing and verification: the generic verifier against a JWKS, and the proxy's own
//! fast path. Neither may panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcpgate_filter::jwt::{AlgorithmSet, AudienceRule, KeySet, Policy};
use std::sync::OnceLock;

#[path = "common.rs"]
mod common;

static FIXTURE: OnceLock<(KeySet, Policy, mcpgate_filter::Gate)> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let (keys, policy, gate) = FIXTURE.get_or_init(|| {
        let keys = KeySet::from_json(common::JWKS.as_bytes()).unwrap_or_default();
        let policy = Policy::new("iss".into(), AlgorithmSet::ASYMMETRIC, AudienceRule::Audience("aud".into()));
        (keys, policy, common::gate())
    });
    if let Ok(token) = std::str::from_utf8(data) {
        let _ = policy.verify(token, keys, 1_800_000_000, None);
        let _ = mcpgate_filter::access_token::verify(gate, token, 1_800_000_000);
    }
});
