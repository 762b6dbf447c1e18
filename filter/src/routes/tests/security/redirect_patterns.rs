//! `allowed_client_redirect_uris` patterns match in linear steps: a pattern with several `*`
//! and a 2 KiB URI once cost a backtracking matcher O(n^k) (25 s for a 200-byte host with the
//! pattern below; a 2 KiB one never finished).

use alloc::format;

use crate::redirect_uri::{glob, pattern_matches};

#[test]
fn patterns_match_in_linear_steps_in_the_worst_case() {
    // Many stars and a long URI that almost matches: a backtracking matcher tries every way
    // of splitting the URI between the stars.
    let pattern = "https://*a*a*a*a*.example.com/cb";
    let host = "a".repeat(2000);
    let uri = format!("https://{host}.example.org/cb");
    assert!(uri.len() > 2000);
    let bound = |uri: &str| (pattern.len() + 1) * (uri.len() + 1);
    let (matched, steps) = glob(pattern.as_bytes(), uri.as_bytes());
    assert!(!matched);
    assert!(steps <= bound(&uri), "{steps} steps > {}", bound(&uri));
    // The same shape that does match.
    let uri = format!("https://{host}.example.com/cb");
    let (matched, steps) = glob(pattern.as_bytes(), uri.as_bytes());
    assert!(matched);
    assert!(steps <= bound(&uri), "{steps} steps > {}", bound(&uri));
}

#[test]
fn pattern_semantics_are_unchanged() {
    // Stars never cross `/`, `?`, `@`, `#`, except a trailing one.
    assert!(!pattern_matches(
        "https://*.example.com/*",
        "https://a/b.example.com/x"
    ));
    assert!(pattern_matches(
        "https://x.example.com/*",
        "https://x.example.com/a/b?c#d"
    ));
    assert!(pattern_matches("*", "anything/at?all"));
    assert!(pattern_matches("", "") && !pattern_matches("", "x"));
    assert!(pattern_matches("a**b", "ab") && pattern_matches("a**b", "axxb"));
    assert!(!pattern_matches("a*b", "a/b"));
    assert!(pattern_matches(
        "http://localhost:*",
        "http://localhost:8080/callback"
    ));
    assert!(!pattern_matches(
        "https://*.example.com/*",
        "https://a@b.example.com/cb"
    ));
}
