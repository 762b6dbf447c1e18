//! JWKS documents: unusable keys are skipped, bad documents refused, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(set) = mcpgate_filter::jwt::KeySet::from_json(data) {
        assert!(set.len() <= mcpgate_filter::jwt::jwks::MAX_KEYS);
        for key in set.keys() {
            let _ = set.select(mcpgate_filter::jwt::Algorithm::Rs256, key.kid.as_deref());
        }
    }
});
