//! Client ID Metadata Documents: a `client_id` that is an https URL names a JSON document the
//! client publishes there (draft-ietf-oauth-client-id-metadata-document). Which URLs the proxy
//! fetches (the `cimd` setting, public hosts only unless `cimd_allow_private`), and what a
//! document must say: its own URL as `client_id`, valid redirect URIs for its
//! `application_type`, and how the client authenticates at `/token` — `none`, or
//! `private_key_jwt` with keys in `jwks` or at `jwks_uri` (RFC 7523 assertions, see
//! `token_client`).

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde::Deserialize;

use super::authorize::Client;
use super::register;
use crate::config::Cimd;
use crate::gate::Gate;
use crate::http::{HttpRequest, HttpResponse};
use crate::jwt::KeySet;
use crate::redirect_scheme::ApplicationType;
use crate::redirect_uri;

/// Largest Client ID Metadata Document accepted.
pub const MAX_CIMD_BYTES: usize = 5 * 1024;
/// JSON nesting allowed in a document (an inline `jwks` with `x5c` chains is 5 deep).
const MAX_DEPTH: usize = 6;

/// Whether `client_id` names a metadata document (rather than a registered client).
pub(super) fn is_document_url(gate: &Gate, client_id: &str) -> bool {
    client_id.starts_with("https://")
        || (gate.cfg.cimd_allow_private && client_id.starts_with("http://"))
}

/// An IPv4 address written as four decimal octets, strictly (no `0x`, no leading zeros).
fn ipv4(host: &str) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let mut parts = host.split('.');
    for slot in &mut out {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 3 || (p.len() > 1 && p.starts_with('0')) {
            return None;
        }
        *slot = p.parse().ok()?;
    }
    parts.next().is_none().then_some(out)
}

fn ipv4_private(a: [u8; 4]) -> bool {
    matches!(
        a,
        [0 | 10 | 127, ..]
            | [169, 254, ..]
            | [172, 16..=31, ..]
            | [192, 168, ..]
            | [192, 0, 0, _]
            | [100, 64..=127, ..]
            | [198, 18 | 19, ..]
            | [224..=255, ..]
    )
}

/// The 16 bytes of an IPv6 literal (`::` shorthand and an embedded IPv4 tail allowed).
fn ipv6(inside: &str) -> Option<[u8; 16]> {
    let groups = |s: &str| -> Option<Vec<u16>> {
        if s.is_empty() {
            return Some(Vec::new());
        }
        s.split(':')
            .map(|g| {
                (g.len() <= 4 && !g.is_empty())
                    .then(|| u16::from_str_radix(g, 16).ok())
                    .flatten()
            })
            .collect()
    };
    let (inside, tail) = match inside.rsplit_once(':') {
        Some((head, last)) if last.contains('.') => (head, Some(ipv4(last)?)),
        _ => (inside, None),
    };
    let tail_groups = tail.map_or(0, |_| 2);
    let words: Vec<u16> = match inside.split_once("::") {
        Some((a, b)) => {
            let (a, b) = (groups(a)?, groups(b)?);
            let fill = 8usize.checked_sub(a.len() + b.len() + tail_groups)?;
            let mut w = a;
            w.extend(core::iter::repeat_n(0, fill));
            w.extend(b);
            w
        }
        None => groups(inside)?,
    };
    if words.len() + tail_groups != 8 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, w) in words.iter().enumerate() {
        let [hi, lo] = w.to_be_bytes();
        *out.get_mut(2 * i)? = hi;
        *out.get_mut(2 * i + 1)? = lo;
    }
    if let Some(v4) = tail {
        out.get_mut(12..16)?.copy_from_slice(&v4);
    }
    Some(out)
}

fn ipv6_private(a: [u8; 16]) -> bool {
    let [b0, b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, t0, t1, t2, t3] = a;
    let head_zero = [b0, b1, b2, b3, b4, b5, b6, b7, b8, b9] == [0; 10];
    let unspecified_or_loopback = head_zero && [b10, b11, t0, t1, t2] == [0; 5] && t3 <= 1;
    let mapped_v4 = head_zero && [b10, b11] == [0xff, 0xff];
    unspecified_or_loopback
        || (b0 & 0xfe) == 0xfc
        || (b0 == 0xfe && (b1 & 0xc0) == 0x80)
        || b0 == 0xff
        || (mapped_v4 && ipv4_private([t0, t1, t2, t3]))
}

/// Whether a host (lower case, `[…]` for IPv6) is loopback, private, link-local or otherwise
/// not a public Internet host, or an IP address in a form other than dotted decimal (which
/// resolvers read in surprising ways: `2130706433`, `0x7f.1`, `127.1`).
pub(super) fn private_host(host: &str) -> bool {
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    if let Some(inside) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return ipv6(inside).is_none_or(ipv6_private);
    }
    let last = host.rsplit('.').next().unwrap_or("");
    if last.bytes().next().is_some_and(|b| b.is_ascii_digit()) {
        return ipv4(host).is_none_or(ipv4_private);
    }
    false
}

/// Whether the host of `url` is loopback (the only place plain http is allowed, and only
/// with `cimd_allow_private`).
fn loopback(parsed: &redirect_uri::RedirectUri) -> bool {
    parsed.is_loopback()
}

/// Checks a URL the proxy would fetch for a client (its document or its `jwks_uri`) against
/// the `cimd` setting: an https URL with a path, on an allowed public host, not the proxy's
/// own.
pub(super) fn check_url(gate: &Gate, url: &str) -> Result<(), &'static str> {
    let c = &gate.cfg;
    if !c.cimd.enabled() {
        return Err("this server does not accept client metadata documents (client_id URLs)");
    }
    let parsed = redirect_uri::parse(url).map_err(|_| "client_id URL is not a valid https URL")?;
    let plain_ok = c.cimd_allow_private && loopback(&parsed);
    if (!parsed.https && !plain_ok) || parsed.rest.is_empty() || parsed.rest == "/" {
        return Err("client_id URL must be https with a path");
    }
    let host = parsed.host.to_ascii_lowercase();
    if let Cimd::Hosts(hosts) = &c.cimd {
        if !hosts.contains(&host) {
            return Err("client metadata documents are not accepted from this host");
        }
    }
    if !c.cimd_allow_private && private_host(&host) {
        return Err("client metadata documents are not fetched from private or loopback hosts");
    }
    let own = [&c.base_url, &c.issuer_url]
        .iter()
        .any(|u| redirect_uri::parse(u).is_ok_and(|p| p.host.eq_ignore_ascii_case(&host)));
    if own {
        return Err("client metadata documents are not fetched from this server's own host");
    }
    // The origin's host (the Worker adds it) and other internal hosts: a fetch there would be
    // a blind request past the guard.
    if c.cimd_denied_hosts.contains(&host) {
        return Err("client metadata documents are not fetched from this host");
    }
    Ok(())
}

/// The fetch of a document or key set at `url`: GET, JSON, cacheable per `Cache-Control`.
pub(super) fn fetch(url: &str, max: usize) -> HttpRequest {
    HttpRequest {
        method: "GET",
        url: url.to_string(),
        headers: alloc::vec![("accept".into(), "application/json".into())],
        body: Vec::new(),
        max_response_bytes: max,
        cacheable: true,
    }
}

#[derive(Deserialize)]
struct Raw {
    client_id: String,
    redirect_uris: Vec<String>,
    client_name: Option<String>,
    token_endpoint_auth_method: Option<String>,
    /// Not in RFC 7591: ChatGPT lists the methods it can use besides the preferred one.
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
    token_endpoint_auth_signing_alg: Option<String>,
    jwks: Option<serde_json::Value>,
    jwks_uri: Option<String>,
    application_type: Option<String>,
}

/// Where a client's public keys are.
#[derive(Debug)]
pub(super) enum Keys {
    None,
    Inline(KeySet),
    Uri(String),
}

/// A validated document.
#[derive(Debug)]
pub(super) struct Document {
    pub name: Option<String>,
    pub redirect_uris: Vec<String>,
    /// The client may come without any authentication (`none`).
    pub allows_none: bool,
    /// The client may authenticate with a signed assertion (`private_key_jwt`, with keys).
    pub allows_jwt: bool,
    pub signing_alg: Option<String>,
    pub keys: Keys,
}

/// Validates the fetched document of `url`.
pub(super) fn document(
    gate: &Gate,
    url: &str,
    resp: &HttpResponse,
) -> Result<Document, &'static str> {
    if resp.status != 200 {
        return Err("client metadata document could not be fetched");
    }
    if resp.body.len() > MAX_CIMD_BYTES {
        return Err("client metadata document larger than 5 KiB");
    }
    if !crate::encoding::json_depth_within(&resp.body, MAX_DEPTH) {
        return Err("client metadata document nested too deeply");
    }
    let doc: Raw =
        serde_json::from_slice(&resp.body).map_err(|_| "client metadata document is not valid")?;
    if doc.client_id != url {
        return Err("client metadata document client_id does not match its URL");
    }
    let app = ApplicationType::parse(doc.application_type.as_deref())
        .map_err(|_| "client metadata document application_type must be native or web")?;
    register::check_redirect_uris(gate, &doc.redirect_uris, app)
        .map_err(|_| "client metadata document has an invalid redirect_uri")?;
    if let Some(name) = &doc.client_name {
        register::check_name(name)?;
    }
    let preferred = doc.token_endpoint_auth_method.as_deref().unwrap_or("none");
    let listed = |m: &str| {
        preferred == m
            || doc
                .token_endpoint_auth_methods_supported
                .as_ref()
                .is_some_and(|l| l.iter().any(|x| x == m))
    };
    let keys = match (&doc.jwks, &doc.jwks_uri) {
        (Some(_), Some(_)) => {
            return Err("client metadata document has both jwks and jwks_uri (RFC 7591 §2)")
        }
        (Some(set), None) => Keys::Inline(
            serde_json::to_vec(set)
                .ok()
                .and_then(|b| KeySet::from_json(&b).ok())
                .filter(|k| !k.is_empty())
                .ok_or("client metadata document jwks has no usable key")?,
        ),
        (None, Some(uri)) => {
            check_url(gate, uri).map_err(|_| "client metadata document jwks_uri is not allowed")?;
            Keys::Uri(uri.clone())
        }
        (None, None) => Keys::None,
    };
    let allows_jwt = listed("private_key_jwt") && !matches!(keys, Keys::None);
    if preferred == "private_key_jwt" && !allows_jwt {
        return Err("client metadata document asks for private_key_jwt without jwks or jwks_uri");
    }
    let allows_none = listed("none");
    if !allows_none && !allows_jwt {
        return Err(
            "client metadata document asks for a client authentication method other than none \
             or private_key_jwt",
        );
    }
    Ok(Document {
        name: doc.client_name,
        redirect_uris: doc.redirect_uris,
        allows_none,
        allows_jwt,
        signing_alg: doc.token_endpoint_auth_signing_alg,
        keys,
    })
}

/// The client of a document, as `/authorize` sees it.
pub(super) fn client(gate: &Gate, url: &str, resp: &HttpResponse) -> Result<Client, &'static str> {
    document(gate, url, resp).map(|d| Client {
        name: d.name,
        redirect_uris: d.redirect_uris,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_hosts() {
        for h in [
            "localhost",
            "a.localhost",
            "127.0.0.1",
            "127.1",
            "2130706433",
            "0x7f000001",
            "0177.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "[::1]",
            "[::]",
            "[fd00::1]",
            "[fe80::1]",
            "[::ffff:127.0.0.1]",
            "[::ffff:10.0.0.1]",
            "[ff02::1]",
            "[zz::1]",
        ] {
            assert!(private_host(h), "{h}");
        }
        for h in [
            "claude.ai",
            "chatgpt.com",
            "8.8.8.8",
            "172.32.0.1",
            "[2606:4700::1111]",
            "[::ffff:8.8.8.8]",
            "1password.com",
        ] {
            assert!(!private_host(h), "{h}");
        }
    }

    #[test]
    fn ipv6_parsing() {
        assert_eq!(ipv6("::1").map(|a| a[15]), Some(1));
        assert!(ipv6("1:2:3:4:5:6:7:8").is_some());
        assert!(ipv6("1:2:3:4:5:6:7:8:9").is_none());
        assert!(ipv6("1::2::3").is_none());
        assert!(ipv6("::ffff:1.2.3.4").is_some());
    }
}
