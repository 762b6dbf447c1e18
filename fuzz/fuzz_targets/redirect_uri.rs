//! Redirect-URI validation: whatever passes must be https, or http to a loopback host, with no
//! userinfo, fragment or backslash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcpgate_filter::redirect_uri;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(u) = redirect_uri::parse(s) {
            assert!(u.https || u.is_loopback(), "{s}");
            assert!(!s.contains('#') && !s.contains('\\'), "{s}");
            let authority = s.split("://").nth(1).unwrap_or("").split(['/', '?']).next().unwrap_or("");
            assert!(!authority.contains('@'), "{s}");
        }
        let _ = redirect_uri::matches("http://127.0.0.1:1/cb", s);
        let _ = redirect_uri::pattern_matches("https://*.example.com/*", s);
    }
});
