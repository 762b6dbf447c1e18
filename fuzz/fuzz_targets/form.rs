//! Form and query parsing: decode/encode round-trips, duplicates refused, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcpgate_filter::form::{self, Params};

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = Params::parse(s);
        if let Ok(decoded) = form::decode(s) {
            assert_eq!(form::decode(&form::encode(&decoded)).ok().as_deref(), Some(decoded.as_str()));
        }
    }
});
