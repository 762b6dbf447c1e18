//! Unsealing arbitrary strings as every kind: only authentic values may open.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcpgate_filter::config::{Secret, SigningAlgorithm};
use mcpgate_filter::keys::KeyRing;
use mcpgate_filter::seal::{self, Kind};
use std::sync::OnceLock;

static RING: OnceLock<Option<KeyRing>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Some(ring) = RING
        .get_or_init(|| KeyRing::new(&[Secret::new("a-signing-key-of-at-least-32-characters!".into())], SigningAlgorithm::Hs256))
    else {
        return;
    };
    if let Ok(s) = std::str::from_utf8(data) {
        for kind in [Kind::ClientId, Kind::Transaction, Kind::State, Kind::Code, Kind::RefreshToken, Kind::ConsentBinding, Kind::Approvals] {
            assert!(seal::unseal::<serde_json::Value>(ring, kind, s, 0).is_err(), "forged value opened");
        }
    }
});
