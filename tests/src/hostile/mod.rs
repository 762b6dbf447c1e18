//! The hostile-input suite: more than a hundred requests an attacker (or a broken client) could
//! send to a running mcpgate — forged and malformed tokens, dangerous redirect URIs, PKCE
//! games, tampered and swapped sealed values, CSRF and cookie tricks, oversized and confusing
//! requests, spoofed identity headers — each with the SPECIFIC refusal it must get.
//!
//! Host-agnostic: [`HostileContext::build`] obtains what the cases need (a registered client,
//! codes, tokens, consent forms and cookies) through the real flow against a base URL, and
//! [`run_all`] sends every case with a raw HTTP/1.1 client (exact bytes, no redirects followed,
//! no normalisation of the path) and compares the answers. Envoy runs it in
//! `tests/tests/hostile_envoy.rs`, the Worker in `tests/tests/hostile_worker.rs`; where a
//! platform changes a request before the core sees it, the case says so ([`Platform`]).
//!
//! The proxy must run with `accepted_client_ids = ["m2m-client"]`, `accepted_client_scopes =
//! []`, a store (one-time codes, refresh reuse detection) and `jwks_min_refetch_seconds = 0`
//! (the retired-key check waits for a refetch), and the harness's `JWT_SIGNING_KEY`: sealed
//! values are tested expired and under a retired key by sealing them again in the test
//! ([`ProxySealer`]), as the proxy's clock cannot be moved. Expired IdP tokens are minted with
//! their `exp` in the past.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use anyhow::{bail, Context as _};
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use mcpgate_filter::config::{Secret, SigningAlgorithm};
use mcpgate_filter::keys::KeyRing;
use mcpgate_filter::random::OsRandom;
use mcpgate_filter::seal::{self, Kind as SealKind};
use rsa::pkcs1v15::{Signature, SigningKey};
use rsa::pkcs8::{DecodePrivateKey as _, EncodePublicKey as _};
use rsa::signature::{SignatureEncoding as _, Signer as _};
use rsa::traits::PublicKeyParts as _;
use serde_json::{json, Map, Value};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::cognito::{pkce_pair, EmulatorHandle, MintRequest, TokenTemplate};
use crate::harness::{http_client, wait_until};
use crate::journey::{form_value, location, query, Journey, REDIRECT_URI};

/// How long one case may take before it counts as a hang.
pub const CASE_TIMEOUT: Duration = Duration::from_secs(10);

mod cases;
mod checks;
mod context;
mod expect;
mod raw;
mod runner;
mod tamper;

pub use cases::*;
pub use checks::*;
pub use context::*;
pub use expect::*;
pub use raw::*;
pub use runner::*;
pub use tamper::*;

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> Answer {
        Answer {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn expectations_are_specific() {
        let base = "http://127.0.0.1:1";
        let a = answer(
            400,
            &[],
            r#"{"error":"invalid_grant","error_description":"invalid authorization code"}"#,
        );
        assert!(mismatch(&oauth(400, "invalid_grant"), &a, base).is_none());
        assert!(mismatch(&oauth(401, "invalid_grant"), &a, base).is_some());
        assert!(mismatch(&oauth(400, "invalid_request"), &a, base).is_some());
        assert!(mismatch(&oauth_d(400, "invalid_grant", "expired"), &a, base).is_some());

        let www = "Bearer resource_metadata=\"x\", scope=\"openid\", error=\"invalid_token\", error_description=\"token expired\"";
        let b = answer(401, &[("www-authenticate", www)], "{}");
        assert!(mismatch(&invalid_token("token expired"), &b, base).is_none());
        assert!(mismatch(&invalid_token("token too long"), &b, base).is_some());
        assert!(mismatch(&no_token(), &b, base).is_some(), "error present");
        let bare = answer(
            401,
            &[("www-authenticate", "Bearer resource_metadata=\"x\"")],
            "",
        );
        assert!(mismatch(&no_token(), &bare, base).is_none());
        assert!(mismatch(&invalid_token_any(), &bare, base).is_some());

        let html = "<p><code>invalid_client</code>: unknown client_id</p>";
        let p = answer(400, &[("content-type", "text/html; charset=utf-8")], html);
        assert!(mismatch(&page_d(400, "invalid_client", "unknown"), &p, base).is_none());
        assert!(mismatch(&page(400, "invalid_request"), &p, base).is_some());
        let mut redirected = p.clone();
        redirected
            .headers
            .push(("location".into(), "https://evil".into()));
        assert!(mismatch(&page(400, "invalid_client"), &redirected, base).is_some());

        let loc = format!("{REDIRECT_URI}?error=invalid_request&state=client-state&iss={base}");
        let r = answer(302, &[("location", &loc)], "");
        assert!(mismatch(&redirect("invalid_request"), &r, base).is_none());
        assert!(mismatch(&redirect("access_denied"), &r, base).is_some());
        let with_code = answer(302, &[("location", &format!("{loc}&code=x"))], "");
        assert!(mismatch(&redirect("invalid_request"), &with_code, base).is_some());

        let html_ct = [("content-type", "text/html; charset=utf-8")];
        let linked = |href: &str| {
            format!("<p><code>invalid_request</code>: x</p><p><a href=\"{href}\">back</a></p>")
        };
        let good = linked(&loc.replace('&', "&amp;"));
        let p = answer(400, &html_ct, &good);
        assert!(mismatch(&link_back("invalid_request"), &p, base).is_none());
        assert!(mismatch(&link_back("access_denied"), &p, base).is_some());
        let mut moved = p.clone();
        moved.headers.push(("location".into(), loc.clone()));
        assert!(mismatch(&link_back("invalid_request"), &moved, base).is_some());
        let other_iss = linked(&loc.replace(base, "https://evil.example"));
        let p = answer(400, &html_ct, &other_iss);
        assert!(mismatch(&link_back("invalid_request"), &p, base).is_some());
        let p = answer(400, &html_ct, "<p><code>invalid_request</code>: x</p>");
        assert!(mismatch(&link_back("invalid_request"), &p, base).is_some());

        let either = Expect::OneOf(vec![Expect::Status(431), oauth(400, "invalid_grant")]);
        assert!(mismatch(&either, &a, base).is_none());
        assert!(mismatch(&either, &b, base).is_some());

        let who = r#"{"result":{"structuredContent":{"authorization_present":false,"headers":{"x-mcpgate-sub":"alice"}}}}"#;
        let w = answer(200, &[], who);
        let want = |v: Option<&str>| Expect::Upstream(vec![("x-mcpgate-sub", v.map(String::from))]);
        assert!(mismatch(&want(Some("alice")), &w, base).is_none());
        assert!(mismatch(&want(Some("admin")), &w, base).is_some());
        assert!(mismatch(&want(None), &w, base).is_some());
    }

    #[test]
    fn answers_are_read_whole_and_dechunked() {
        let raw = b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 2\r\n\r\nok";
        assert!(complete(raw));
        assert!(!complete(&raw[..raw.len() - 1]));
        let a = parse_answer(raw).unwrap();
        assert_eq!((a.status, a.text().as_str()), (413, "ok"));
        let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert!(complete(chunked));
        assert_eq!(parse_answer(chunked).unwrap().text(), "abcde");
    }

    #[test]
    fn tamperings_change_every_value() {
        let v = "k1.QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo";
        for (how, t) in tamperings(v) {
            assert_ne!(t, v, "{how}");
        }
        assert!(Req::get("/mcp/../x")
            .to_bytes("h:1")
            .starts_with(b"GET /mcp/../x HTTP/1.1\r\n"));
    }

    #[test]
    #[should_panic(expected = "trapped")]
    fn a_trap_line_fails_the_suite() {
        let traps: &[&[&str]] = &[&["wasm log", "panicked"]];
        assert_no_traps("wasm log: ok\npanicked elsewhere", traps);
        assert_no_traps("[wasm log] mcpgate panicked at src/x.rs", traps);
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
