//! Configuration parsing: any document is either accepted or refused with a named key.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match mcpgate_filter::config::parse_json(data, &["clusters"], &|_| None) {
        Ok(p) => {
            let _ = mcpgate_filter::Gate::new(p.config);
        }
        Err(e) => assert!(!e.key.is_empty()),
    }
});
