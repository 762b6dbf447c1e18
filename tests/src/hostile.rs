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

// ------------------------------------------------------------------------------------------
// Raw HTTP/1.1
// ------------------------------------------------------------------------------------------

/// One HTTP/1.1 request, sent byte for byte as given (plus `Host`, `Content-Length` unless
/// `chunked` or given, and `Connection: close`).
#[derive(Clone, Debug, Default)]
pub struct Req {
    pub method: String,
    /// Request target, sent unchanged (no dot-segment removal, no re-encoding).
    pub target: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    /// Send the body with `Transfer-Encoding: chunked` (64 KiB chunks).
    pub chunked: bool,
}

impl Req {
    pub fn new(method: &str, target: &str) -> Self {
        Self {
            method: method.to_owned(),
            target: target.to_owned(),
            ..Self::default()
        }
    }
    pub fn get(target: &str) -> Self {
        Self::new("GET", target)
    }
    /// A form POST (`application/x-www-form-urlencoded`).
    pub fn form(target: &str, pairs: &[(&str, &str)]) -> Self {
        Self::new("POST", target)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_encode(pairs))
    }
    /// A JSON POST.
    pub fn json(target: &str, body: &Value) -> Self {
        Self::new("POST", target)
            .header("content-type", "application/json")
            .body(body.to_string())
    }
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers
            .push((name.to_owned(), value.as_ref().to_vec()));
        self
    }
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", format!("Bearer {token}"))
    }
    pub fn cookie(self, cookies: &[(&str, &str)]) -> Self {
        let v: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
        self.header("cookie", v.join("; "))
    }
    pub fn chunked(mut self) -> Self {
        self.chunked = true;
        self
    }

    fn has(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(name))
    }

    /// The bytes on the wire.
    pub fn to_bytes(&self, authority: &str) -> Vec<u8> {
        let mut out = format!("{} {} HTTP/1.1\r\n", self.method, self.target).into_bytes();
        if !self.has("host") {
            out.extend_from_slice(format!("host: {authority}\r\n").as_bytes());
        }
        for (k, v) in &self.headers {
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v);
            out.extend_from_slice(b"\r\n");
        }
        if self.chunked {
            out.extend_from_slice(b"transfer-encoding: chunked\r\n");
        } else if !self.has("content-length") && (!self.body.is_empty() || self.method == "POST") {
            out.extend_from_slice(format!("content-length: {}\r\n", self.body.len()).as_bytes());
        }
        out.extend_from_slice(b"connection: close\r\n\r\n");
        if self.chunked {
            for chunk in self.body.chunks(64 * 1024) {
                out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                out.extend_from_slice(chunk);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
        } else {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

impl fmt::Display for Req {
    /// The request as readable text: long values and bodies shortened, bytes that are not
    /// printable ASCII escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} {}",
            self.method,
            shorten(self.target.as_bytes(), 300)
        )?;
        for (k, v) in &self.headers {
            writeln!(f, "{k}: {}", shorten(v, 300))?;
        }
        if self.chunked {
            writeln!(f, "transfer-encoding: chunked")?;
        }
        if !self.body.is_empty() {
            write!(f, "\n{}", shorten(&self.body, 400))?;
        }
        Ok(())
    }
}

fn shorten(bytes: &[u8], max: usize) -> String {
    let mut s = String::new();
    for &b in bytes.iter().take(max) {
        if (0x20..0x7f).contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    if bytes.len() > max {
        s.push_str(&format!("… ({} bytes)", bytes.len()));
    }
    s
}

/// `application/x-www-form-urlencoded`.
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// A response as read off the wire.
#[derive(Clone, Debug, Default)]
pub struct Answer {
    pub status: u16,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
    /// The body as JSON; for an SSE answer (the Python origin's), its JSON-RPC answer.
    pub fn json(&self) -> Option<Value> {
        let ct = self.header("content-type").unwrap_or("");
        if ct.starts_with("text/event-stream") {
            Some(crate::scenarios::jsonrpc_answer(ct, &self.text())).filter(|v| !v.is_null())
        } else {
            serde_json::from_slice(&self.body).ok()
        }
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.status)?;
        for (k, v) in &self.headers {
            writeln!(f, "{k}: {}", shorten(v.as_bytes(), 300))?;
        }
        if !self.body.is_empty() {
            write!(f, "\n{}", shorten(&self.body, 400))?;
        }
        Ok(())
    }
}

/// Sends `req` to `authority` (`127.0.0.1:port`) over a new connection and reads the whole
/// answer (the request asks for `Connection: close`). Writing and reading run together, so a
/// server that answers before reading everything (431, 413) is read all the same.
pub async fn send(authority: &str, req: &Req) -> anyhow::Result<Answer> {
    let bytes = req.to_bytes(authority);
    let io = async {
        let stream = tokio::net::TcpStream::connect(authority).await?;
        let (rd, mut wr) = stream.into_split();
        let write = async move {
            // The server may close early (it answered already): the read side decides.
            let _ = wr.write_all(&bytes).await;
            let _ = wr.flush().await;
            wr
        };
        let read = read_answer(rd);
        let (_wr, buf) = tokio::join!(write, read);
        anyhow::Ok(buf?)
    };
    let buf = tokio::time::timeout(CASE_TIMEOUT, io)
        .await
        .map_err(|_| anyhow::anyhow!("no complete answer within {CASE_TIMEOUT:?} (hang)"))??;
    parse_answer(&buf)
}

/// Reads one HTTP/1.1 answer: until it is complete ([`complete`]) or the connection ends.
/// Envoy waits for the client to close first (its delayed close), so this stops as soon as
/// the answer is whole; a reset after the answer arrived still leaves the answer.
pub async fn read_answer(mut rd: tokio::net::tcp::OwnedReadHalf) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match rd.read(&mut chunk).await {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if complete(&buf) {
                    break;
                }
            }
            Err(e) if buf.is_empty() => return Err(e),
            Err(_) => break,
        }
    }
    Ok(buf)
}

/// Whether `buf` holds a whole response (head, and a body of known length or a last chunk).
pub fn complete(buf: &[u8]) -> bool {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let body = &buf[end + 4..];
    let value = |name: &str| {
        head.split("\r\n")
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim() == name)
            .map(|(_, v)| v.trim().to_owned())
    };
    if value("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        return body.ends_with(b"0\r\n\r\n");
    }
    match value("content-length").and_then(|v| v.parse::<usize>().ok()) {
        Some(n) => body.len() >= n,
        None => {
            let status = head.split(' ').nth(1).unwrap_or("");
            status == "204" || status == "304"
        }
    }
}

pub fn parse_answer(buf: &[u8]) -> anyhow::Result<Answer> {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .with_context(|| format!("no complete response head in {:?}", shorten(buf, 200)))?;
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let raw = &buf[end + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(raw)
    } else if let Some(n) = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        raw[..n.min(raw.len())].to_vec()
    } else {
        raw.to_vec()
    };
    Ok(Answer {
        status,
        headers,
        body,
    })
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&raw[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or(0);
        raw = &raw[eol + 2..];
        if size == 0 || raw.len() < size {
            out.extend_from_slice(&raw[..size.min(raw.len())]);
            break;
        }
        out.extend_from_slice(&raw[..size]);
        raw = raw.get(size + 2..).unwrap_or(&[]);
    }
    out
}

// ------------------------------------------------------------------------------------------
// Expectations
// ------------------------------------------------------------------------------------------

/// The refusal a case must get.
#[derive(Clone, Debug)]
pub enum Expect {
    /// An OAuth error body (RFC 6749 §5.2): status, `error`, and a substring of
    /// `error_description` when given.
    OAuth {
        status: u16,
        error: &'static str,
        desc: Option<&'static str>,
    },
    /// A Bearer challenge (RFC 6750 §3): status, the `error` attribute of `WWW-Authenticate`
    /// (`None`: the no-token challenge, which must carry no `error`), a substring of
    /// `error_description`; `resource_metadata` always present.
    Bearer {
        status: u16,
        error: Option<&'static str>,
        desc: Option<&'static str>,
    },
    /// The HTML error page for errors that must not redirect: status, the error code shown,
    /// a substring of the text, and no `Location`.
    Page {
        status: u16,
        error: &'static str,
        desc: Option<&'static str>,
    },
    /// 302 back to the client's redirect URI with `error`, the client's `state` and RFC 9207
    /// `iss` = the proxy's base URL.
    Redirect { error: &'static str },
    /// The proxy's HTML error page (400, no `Location`, no cookie set) showing `error`, with
    /// a link back to the client's redirect URI carrying `error`, exactly this `state`
    /// (encoded in the query, never breaking out of the link) and RFC 9207 `iss`: errors for
    /// a client the user has not approved never redirect by themselves (no open redirector).
    LinkBack { error: &'static str, state: String },
    /// A bare status answered by the host itself (Envoy's own limits), never a 5xx.
    Status(u16),
    /// Forwarded to the demo MCP server's `whoami` (200): each header as the server saw it
    /// (`None`: it must not arrive), and no `Authorization`.
    Upstream(Vec<(&'static str, Option<String>)>),
    /// Any one of these (answers that legitimately differ between hosts).
    OneOf(Vec<Expect>),
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OAuth {
                status,
                error,
                desc,
            } => write!(f, "{status} OAuth error {error}{}", opt_desc(desc)),
            Self::Bearer {
                status,
                error: Some(e),
                desc,
            } => write!(f, "{status} Bearer error=\"{e}\"{}", opt_desc(desc)),
            Self::Bearer { status, .. } => write!(f, "{status} Bearer challenge without error"),
            Self::Page {
                status,
                error,
                desc,
            } => write!(
                f,
                "{status} error page {error}{} (no Location)",
                opt_desc(desc)
            ),
            Self::Redirect { error } => {
                write!(f, "302 to {REDIRECT_URI} with error={error}, state, iss")
            }
            Self::LinkBack { error, state } => write!(
                f,
                "400 error page {error} linking to {REDIRECT_URI} with error={error}, state={state:?}, iss (no Location, no Set-Cookie)"
            ),
            Self::Status(s) => write!(f, "{s} from the host"),
            Self::Upstream(h) => write!(f, "200 from whoami with {h:?}, no Authorization"),
            Self::OneOf(v) => {
                let parts: Vec<String> = v.iter().map(ToString::to_string).collect();
                write!(f, "one of [{}]", parts.join(" | "))
            }
        }
    }
}

fn opt_desc(desc: &Option<&'static str>) -> String {
    desc.map(|d| format!(" ({d:?})")).unwrap_or_default()
}

fn oauth(status: u16, error: &'static str) -> Expect {
    Expect::OAuth {
        status,
        error,
        desc: None,
    }
}
fn oauth_d(status: u16, error: &'static str, desc: &'static str) -> Expect {
    Expect::OAuth {
        status,
        error,
        desc: Some(desc),
    }
}
/// 401 `invalid_token` with this description.
fn invalid_token(desc: &'static str) -> Expect {
    Expect::Bearer {
        status: 401,
        error: Some("invalid_token"),
        desc: Some(desc),
    }
}
fn invalid_token_any() -> Expect {
    Expect::Bearer {
        status: 401,
        error: Some("invalid_token"),
        desc: None,
    }
}
fn no_token() -> Expect {
    Expect::Bearer {
        status: 401,
        error: None,
        desc: None,
    }
}
fn page(status: u16, error: &'static str) -> Expect {
    Expect::Page {
        status,
        error,
        desc: None,
    }
}
fn page_d(status: u16, error: &'static str, desc: &'static str) -> Expect {
    Expect::Page {
        status,
        error,
        desc: Some(desc),
    }
}
fn redirect(error: &'static str) -> Expect {
    Expect::Redirect { error }
}
/// [`Expect::LinkBack`] with the standard `client-state`.
fn link_back(error: &'static str) -> Expect {
    Expect::LinkBack {
        error,
        state: "client-state".to_owned(),
    }
}

/// The first `href` of an HTML page, with HTML escapes undone.
fn first_href(html: &str) -> Option<String> {
    // The page's first link (`<a href>`), not the head's icon link.
    let anchor = html.find("<a ")?;
    let start = anchor + html.get(anchor..)?.find("href=\"")? + 6;
    let end = start + html.get(start..)?.find('"')?;
    Some(
        html.get(start..end)?
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

/// Why `answer` does not meet `expect` (`None`: it does).
pub fn mismatch(expect: &Expect, answer: &Answer, base_url: &str) -> Option<String> {
    let body = answer.json();
    let field = |k: &str| {
        body.as_ref()
            .and_then(|b| b.get(k))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let status = |want: u16| (answer.status != want).then(|| format!("status {}", answer.status));
    match expect {
        Expect::OAuth {
            status: want,
            error,
            desc,
        } => status(*want)
            .or_else(|| {
                (field("error").as_deref() != Some(error))
                    .then(|| format!("error {:?}", field("error")))
            })
            .or_else(|| {
                let d = field("error_description").unwrap_or_default();
                desc.filter(|x| !d.contains(x))
                    .map(|_| format!("error_description {d:?}"))
            }),
        Expect::Bearer {
            status: want,
            error,
            desc,
        } => status(*want).or_else(|| {
            let Some(www) = answer.header("www-authenticate") else {
                return Some("no WWW-Authenticate".into());
            };
            if !www.starts_with("Bearer ") || !www.contains("resource_metadata=\"") {
                return Some(format!("WWW-Authenticate {www:?}"));
            }
            match error {
                Some(e) if !www.contains(&format!("error=\"{e}\"")) => {
                    Some(format!("WWW-Authenticate {www:?}"))
                }
                None if www.contains("error=") => Some(format!("WWW-Authenticate {www:?}")),
                _ => desc
                    .filter(|d| !www.contains(&format!("error_description=\"{d}")))
                    .map(|_| format!("WWW-Authenticate {www:?}")),
            }
        }),
        Expect::Page {
            status: want,
            error,
            desc,
        } => status(*want)
            .or_else(|| {
                answer
                    .header("location")
                    .map(|l| format!("redirects to {l}"))
            })
            .or_else(|| {
                let ct = answer.header("content-type").unwrap_or("");
                (!ct.starts_with("text/html")).then(|| format!("content-type {ct:?}"))
            })
            .or_else(|| {
                let text = answer.text();
                let shown = text.contains(&format!("<code>{error}</code>"));
                let described = desc.is_none_or(|d| text.contains(d));
                (!(shown && described)).then(|| "page does not show the expected error".into())
            }),
        Expect::Redirect { error } => status(302).or_else(|| {
            let Some(loc) = answer.header("location") else {
                return Some("no Location".into());
            };
            if !loc.starts_with(REDIRECT_URI) {
                return Some(format!("Location {loc}"));
            }
            let q = query(loc).unwrap_or_default();
            let ok = q.get("error").map(String::as_str) == Some(error)
                && q.get("state").map(String::as_str) == Some("client-state")
                && q.get("iss").map(String::as_str) == Some(base_url)
                && !q.contains_key("code");
            (!ok).then(|| format!("Location {loc}"))
        }),
        Expect::LinkBack { error, state } => status(400)
            .or_else(|| {
                answer
                    .header("location")
                    .map(|l| format!("redirects to {l}"))
            })
            .or_else(|| {
                answer
                    .header("set-cookie")
                    .map(|c| format!("sets a cookie: {c}"))
            })
            .or_else(|| {
                let ct = answer.header("content-type").unwrap_or("");
                (!ct.starts_with("text/html")).then(|| format!("content-type {ct:?}"))
            })
            .or_else(|| {
                let text = answer.text();
                if !text.contains(&format!("<code>{error}</code>")) {
                    return Some("page does not show the expected error".into());
                }
                let Some(href) = first_href(&text) else {
                    return Some("no link back".into());
                };
                let q = query(&href).unwrap_or_default();
                let ok = href.starts_with(REDIRECT_URI)
                    && q.get("error").map(String::as_str) == Some(error)
                    && q.get("state") == Some(state)
                    && q.get("iss").map(String::as_str) == Some(base_url)
                    && !q.contains_key("code");
                (!ok).then(|| format!("link {href:?}"))
            }),
        Expect::Status(want) => status(*want),
        Expect::Upstream(want) => status(200).or_else(|| {
            let Some(out) = body
                .as_ref()
                .map(|b| &b["result"]["structuredContent"])
                .filter(|o| o.is_object())
            else {
                return Some("no whoami result".into());
            };
            if out["authorization_present"] != json!(false) {
                return Some("Authorization reached the MCP server".into());
            }
            want.iter().find_map(|(name, value)| {
                let got = out["headers"].get(*name).and_then(Value::as_str);
                (got != value.as_deref()).then(|| format!("{name} arrived as {got:?}"))
            })
        }),
        Expect::OneOf(all) => {
            let why: Vec<String> = all
                .iter()
                .filter_map(|e| mismatch(e, answer, base_url))
                .collect();
            (why.len() == all.len()).then(|| why.join("; "))
        }
    }
}

// ------------------------------------------------------------------------------------------
// Cases
// ------------------------------------------------------------------------------------------

/// The categories of the hardening issue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Category {
    /// Tokens on the MCP endpoint.
    Tokens,
    /// Redirect URIs at `/register` and `/authorize`.
    RedirectUris,
    /// PKCE (and the other redirect-time checks) at `/authorize` and `/token`.
    Pkce,
    /// Sealed values: tampering, truncation, replay, kind swaps.
    Sealed,
    /// Consent CSRF and cookies.
    Consent,
    /// Request shape: sizes, content types, duplicates, paths, methods, spoofed headers.
    Requests,
    /// Spellings of guarded, restricted and public paths (canonicalisation, deny by default).
    Paths,
}

impl Category {
    pub fn name(self) -> &'static str {
        match self {
            Self::Tokens => "tokens on the MCP endpoint",
            Self::RedirectUris => "redirect URIs",
            Self::Pkce => "PKCE and authorization requests",
            Self::Sealed => "sealed values",
            Self::Consent => "consent and cookies",
            Self::Requests => "requests",
            Self::Paths => "path spellings",
        }
    }
}

/// What the platform in front of the core does to a request before the core sees it, where
/// that changes the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Platform {
    /// Envoy: the raw `:path` reaches the filter; Envoy's own limits (60 KiB of headers, 100
    /// headers) answer 431 before it; repeated headers arrive joined.
    Envoy,
    /// Cloudflare Workers (workerd): the URL is parsed (WHATWG) before the Worker runs, so
    /// dot segments (`/x/../mcp`, `%2e%2e`) arrive resolved and the Worker routes and forwards
    /// the resolved path; the core's own header limits apply.
    Worker,
}

/// One hostile request and the answer it must get.
#[derive(Clone, Debug)]
pub struct Case {
    pub category: Category,
    pub name: String,
    pub request: Req,
    pub expect: Expect,
    /// Response headers that must be present with exactly this value.
    pub headers: Vec<(&'static str, String)>,
    /// A filter bug the core owner has to fix: the case is expected to fail until then, and
    /// the run reports it apart (and as a failure once it unexpectedly passes).
    pub known_bug: Option<&'static str>,
    /// Why this case cannot reach the core on this platform (not run, listed in the report).
    pub skip: Option<&'static str>,
}

impl Case {
    fn new(category: Category, name: impl Into<String>, request: Req, expect: Expect) -> Self {
        Self {
            category,
            name: name.into(),
            request,
            expect,
            headers: Vec::new(),
            known_bug: None,
            skip: None,
        }
    }
    fn skip_if(mut self, skip: bool, why: &'static str) -> Self {
        if skip {
            self.skip = Some(why);
        }
        self
    }
    fn with_header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }
    #[allow(dead_code)]
    fn known_bug(mut self, why: &'static str) -> Self {
        self.known_bug = Some(why);
        self
    }
}

/// A case that did not get its refusal.
#[derive(Clone, Debug)]
pub struct Failure {
    pub category: Category,
    pub name: String,
    pub request: String,
    pub expected: String,
    pub actual: String,
    pub why: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "[{}] {}: {}", self.category.name(), self.name, self.why)?;
        writeln!(f, "  expected: {}", self.expected)?;
        writeln!(
            f,
            "  request:\n    {}",
            self.request.replace('\n', "\n    ")
        )?;
        write!(f, "  actual:\n    {}", self.actual.replace('\n', "\n    "))
    }
}

/// The outcome of [`run_all`].
#[derive(Debug, Default)]
pub struct Report {
    /// Cases run per category (checks outside the table included).
    pub per_category: BTreeMap<Category, usize>,
    /// Cases that did not get their refusal (the suite fails on these).
    pub failures: Vec<Failure>,
    /// Cases marked [`Case::known_bug`] that still fail as known.
    pub known_bugs: Vec<Failure>,
    /// Cases not run on this platform, with the reason.
    pub skipped: Vec<(String, &'static str)>,
}

impl Report {
    pub fn total(&self) -> usize {
        self.per_category.values().sum()
    }

    /// Fails the test unless at least 120 cases ran and every one got its refusal.
    pub fn assert_all_refused(&self) {
        assert!(self.total() >= 120, "only {} cases", self.total());
        assert!(
            self.failures.is_empty(),
            "{} of {} hostile cases did not get their refusal:\n{self}",
            self.failures.len(),
            self.total()
        );
    }
    fn count(&mut self, c: Category) {
        *self.per_category.entry(c).or_default() += 1;
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} hostile cases", self.total())?;
        for (c, n) in &self.per_category {
            writeln!(f, "  {:<34} {n}", c.name())?;
        }
        for (name, why) in &self.skipped {
            writeln!(f, "not run: {name}: {why}")?;
        }
        for k in &self.known_bugs {
            writeln!(f, "KNOWN FILTER BUG {k}")?;
        }
        for x in &self.failures {
            writeln!(f, "FAILED {x}")?;
        }
        Ok(())
    }
}

/// Fails the test when a line of the host's `log` has every part of one of `traps` (how the
/// host reports a trap or panic of the wasm module).
pub fn assert_no_traps(log: &str, traps: &[&[&str]]) {
    let hits: Vec<&str> = log
        .lines()
        .filter(|l| {
            traps
                .iter()
                .any(|parts| parts.iter().all(|p| l.contains(p)))
        })
        .collect();
    assert!(
        hits.is_empty(),
        "the wasm module trapped:\n{}",
        hits.join("\n")
    );
}

/// Runs one case; `Err` with a description when it did not get its refusal.
pub async fn run_case(base_url: &str, case: &Case) -> Result<(), Failure> {
    let authority = authority(base_url);
    let fail = |actual: String, why: String| Failure {
        category: case.category,
        name: case.name.clone(),
        request: case.request.to_string(),
        expected: case.expect.to_string(),
        actual,
        why,
    };
    let mut answer = send(&authority, &case.request).await;
    if answer.as_ref().is_ok_and(dev_proxy_dropped) {
        answer = send(&authority, &case.request).await;
    }
    let answer = match answer {
        Ok(a) => a,
        Err(e) => return Err(fail(String::new(), format!("no answer: {e:#}"))),
    };
    if answer.status >= 500 {
        return Err(fail(answer.to_string(), "server error".into()));
    }
    if let Some(why) = mismatch(&case.expect, &answer, base_url) {
        return Err(fail(answer.to_string(), why));
    }
    for (name, value) in &case.headers {
        if answer.header(name) != Some(value.as_str()) {
            return Err(fail(
                answer.to_string(),
                format!("header {name}: {:?}, not {value:?}", answer.header(name)),
            ));
        }
    }
    Ok(())
}

/// `wrangler dev`'s own proxy lost its pooled connection to the Worker: after the Worker
/// answered a streamed (chunked) body before reading all of it (an oversized body's 413), the
/// next request on that connection fails in the proxy, which answers this 503 itself (and
/// retries only GET and HEAD). Cloudflare's edge has no such hop; the case is sent once more.
fn dev_proxy_dropped(answer: &Answer) -> bool {
    answer.status == 503
        && answer
            .text()
            .starts_with("Your worker restarted mid-request.")
}

/// `127.0.0.1:port` of `http://127.0.0.1:port`.
pub fn authority(base_url: &str) -> String {
    base_url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned()
}

/// Runs every case of [`cases`] in order, then the checks that need more than one request
/// ([`spoofing_checks`], [`retired_key_check`], [`still_serving`]). Sequential: some cases
/// depend on state left by earlier ones (the spent code and refresh token).
///
/// The retired-key check rotates the emulator's keys (retiring the old one): run this once per
/// emulator, after everything else that uses its tokens.
pub async fn run_all(base_url: &str, ctx: &HostileContext<'_>) -> Report {
    let mut report = Report::default();
    // The unmodified base requests are accepted: each refusal below is due to its one change.
    for case in controls_before(ctx) {
        if let Err(f) = run_case(base_url, &case).await {
            report.failures.push(f);
        }
    }
    for case in cases(ctx) {
        if let Some(why) = case.skip {
            report.skipped.push((case.name.clone(), why));
            continue;
        }
        report.count(case.category);
        match (run_case(base_url, &case).await, case.known_bug) {
            (Ok(()), None) => {}
            (Ok(()), Some(bug)) => report.failures.push(Failure {
                category: case.category,
                name: case.name.clone(),
                request: case.request.to_string(),
                expected: case.expect.to_string(),
                actual: "the expected refusal".into(),
                why: format!("marked as a known filter bug ({bug}) but passes: remove the mark"),
            }),
            (Err(f), None) => report.failures.push(f),
            (Err(mut f), Some(bug)) => {
                f.why = format!("{bug}: {}", f.why);
                report.known_bugs.push(f);
            }
        }
    }
    // The values the table tampered with still work (nothing was consumed by a refusal).
    for case in controls_after(ctx) {
        if let Err(f) = run_case(base_url, &case).await {
            report.failures.push(f);
        }
    }
    for (category, result) in spoofing_checks(base_url, ctx).await {
        report.count(category);
        if let Err(f) = result {
            report.failures.push(f);
        }
    }
    report.count(Category::Tokens);
    if let Err(f) = retired_key_check(base_url, ctx).await {
        report.failures.push(f);
    }
    if let Err(f) = still_serving(base_url, ctx).await {
        report.failures.push(f);
    }
    report
}

// ------------------------------------------------------------------------------------------
// The context: values obtained through the real flow
// ------------------------------------------------------------------------------------------

/// A consent page shown and not answered yet.
#[derive(Clone, Debug)]
pub struct ConsentForm {
    pub txn: String,
    pub csrf: String,
    /// The CSRF cookie set with the page: (name, value).
    pub csrf_cookie: (String, String),
}

/// A consent approved; the browser was sent to the IdP and has not come back.
#[derive(Clone, Debug)]
pub struct Approved {
    /// The sealed `state` sent to the IdP.
    pub state: String,
    /// The browser-binding cookie: (name, value).
    pub binding_cookie: (String, String),
}

/// The proxy's own sealing, done by the test with the proxy's key (the harness's
/// `JWT_SIGNING_KEY`, through `mcpgate-filter`): a value the proxy sealed is opened and sealed
/// again with an expiry in the past, or under a key the proxy no longer holds (one rotated out
/// of `previous_jwt_signing_keys`). Values that only expire with time can so be tested expired
/// without moving the proxy's clock.
pub struct ProxySealer {
    current: KeyRing,
    retired: KeyRing,
    /// The proxy's own key, bound to another deployment (another gateway sharing the secret).
    elsewhere: KeyRing,
}

impl fmt::Debug for ProxySealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProxySealer")
    }
}

impl ProxySealer {
    /// The sealer of the proxy at `base_url` (its issuer; its resource is `base_url/mcp`):
    /// sealed values are bound to the deployment.
    pub fn new(signing_key: &str, base_url: &str) -> anyhow::Result<Self> {
        let ring = |secret: &str, base: &str| {
            KeyRing::new(&[Secret::new(secret.to_owned())], SigningAlgorithm::Hs256)
                .map(|r| r.bound_to(base, &format!("{base}/mcp")))
                .context("cannot derive the proxy's keys")
        };
        Ok(Self {
            current: ring(signing_key, base_url)?,
            retired: ring(
                "e2e-retired-signing-key-0123456789abcdef0123456789",
                base_url,
            )?,
            elsewhere: ring(signing_key, "https://other-gateway.example")?,
        })
    }

    /// `sealed` (a value the proxy sealed as `kind`), sealed again with the same content.
    pub fn reseal(&self, kind: SealKind, sealed: &str, how: Reseal) -> anyhow::Result<String> {
        let content: Value = seal::unseal(&self.current, kind, sealed, 0)
            .map_err(|e| anyhow::anyhow!("cannot open the proxy's {kind:?}: {e:?}"))?;
        let now = crate::scenarios::now();
        let (ring, exp) = match how {
            Reseal::Fresh => (&self.current, now + 600),
            Reseal::Expired => (&self.current, now - 60),
            Reseal::RetiredKey => (&self.retired, now + 600),
            Reseal::OtherDeployment => (&self.elsewhere, now + 600),
        };
        seal::seal(ring, kind, &content, exp, &mut OsRandom::default())
            .with_context(|| format!("cannot seal a {kind:?}"))
    }
}

/// How [`ProxySealer::reseal`] seals again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reseal {
    /// With the proxy's current key, valid for ten minutes (the control: accepted).
    Fresh,
    /// With the proxy's current key, expired a minute ago.
    Expired,
    /// Valid for ten minutes, under a key the proxy no longer holds.
    RetiredKey,
    /// Valid for ten minutes, with the proxy's current key, but for another deployment (a
    /// gateway at another base URL sharing the same secret).
    OtherDeployment,
}

/// The IdP's signing key (the emulator's active key), to hand-build validly signed tokens.
#[derive(Clone)]
pub struct IdpSigner {
    key: SigningKey<Sha256>,
    pub kid: String,
    /// The public key as the JWKS publishes it.
    pub jwk: Value,
    /// The public key as SPKI PEM (what algorithm-confusion attacks use as an HMAC secret).
    pub public_pem: String,
}

impl fmt::Debug for IdpSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdpSigner").field("kid", &self.kid).finish()
    }
}

impl IdpSigner {
    /// The emulator's key whose kid is `kid`.
    pub fn of(idp: &EmulatorHandle, kid: &str) -> anyhow::Result<Self> {
        for pem in idp.config().signing_keys_pem()? {
            let key = rsa::PrivateKey::from_pkcs8_pem(&pem)
                .map_err(|e| anyhow::anyhow!("emulator key: {e}"))?;
            let public = key.to_public_key();
            let n = URL_SAFE_NO_PAD.encode(public.n_bytes());
            // The emulator's kids: base64 of SHA-256 of the modulus (as base64url text).
            let key_kid = STANDARD.encode(Sha256::digest(n.as_bytes()));
            if key_kid != kid {
                continue;
            }
            let der = public
                .to_public_key_der()
                .map_err(|e| anyhow::anyhow!("public key: {e}"))?;
            let body = STANDARD.encode(der.as_bytes());
            let lines: Vec<&str> = body
                .as_bytes()
                .chunks(64)
                .map(|c| std::str::from_utf8(c).unwrap_or(""))
                .collect();
            let public_pem = format!(
                "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
                lines.join("\n")
            );
            return Ok(Self {
                key: SigningKey::<Sha256>::new(key),
                kid: kid.to_owned(),
                jwk: json!({"alg": "RS256", "e": URL_SAFE_NO_PAD.encode(public.e_bytes()),
                            "kid": kid, "kty": "RSA", "n": n, "use": "sig"}),
                public_pem,
            });
        }
        bail!("no emulator key with kid {kid}")
    }

    /// A compact JWS over these exact header and claims bytes, signed RS256.
    pub fn rs256(&self, header: &[u8], claims: &[u8]) -> String {
        let input = format!("{}.{}", b64(header), b64(claims));
        let sig: Signature = self.key.sign(input.as_bytes());
        format!("{input}.{}", b64(&sig.to_bytes()))
    }

    /// RS256 with the standard header `{"kid":…,"alg":"RS256"}`.
    pub fn rs256_claims(&self, claims: &str) -> String {
        let header = json!({"kid": self.kid, "alg": "RS256"}).to_string();
        self.rs256(header.as_bytes(), claims.as_bytes())
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// HMAC-SHA256 (RFC 2104).
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&ipad)
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(&opad)
        .chain_update(inner)
        .finalize()
        .to_vec()
}

/// A compact JWS with an HS256 signature made with `secret`.
pub fn hs256(header: &str, claims: &str, secret: &[u8]) -> String {
    let input = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
    let sig = hmac_sha256(secret, input.as_bytes());
    format!("{input}.{}", b64(&sig))
}

/// Everything the cases need, obtained through the real flow against one proxy.
pub struct HostileContext<'a> {
    pub base_url: String,
    pub platform: Platform,
    /// The emulator behind the proxy (mints IdP tokens; the retired-key check rotates its keys).
    pub idp: &'a EmulatorHandle,
    /// A registered client with [`REDIRECT_URI`], and another one.
    pub client_id: String,
    pub other_client_id: String,
    /// An authorization code of `client_id`, not redeemed, and its PKCE verifier.
    pub code: String,
    pub verifier: String,
    /// A code already redeemed (replay), and its verifier.
    pub spent_code: String,
    pub spent_verifier: String,
    /// alice's access token from the proxy, and a live refresh token of `client_id`.
    pub access_token: String,
    pub refresh_token: String,
    /// A refresh token already rotated out (its grant is not used elsewhere).
    pub spent_refresh_token: String,
    /// A `client_credentials` token of `m2m-client` (accepted on /mcp).
    pub m2m_token: String,
    /// Its claims, a base for hand-built tokens.
    pub m2m_claims: Map<String, Value>,
    pub signer: IdpSigner,
    /// Reseals the proxy's values (expired, or under a retired key).
    pub sealer: ProxySealer,
    /// Two consent pages of `client_id` (two transactions, two browsers).
    pub consent_a: ConsentForm,
    pub consent_b: ConsentForm,
    /// Two approved consents whose callbacks have not happened.
    pub approved_a: Approved,
    pub approved_b: Approved,
    /// alice's `sub` (what `whoami` must see).
    pub alice_sub: String,
}

impl<'a> HostileContext<'a> {
    /// Registers clients and signs alice in (several times) against `base_url`.
    pub async fn build(
        base_url: &str,
        idp: &'a EmulatorHandle,
        platform: Platform,
    ) -> anyhow::Result<Self> {
        let mut j = Journey::register(base_url).await?;
        let other = Journey::register(base_url).await?;

        // Code 1 redeemed (spent), its tokens kept; code 2 left unredeemed.
        let (spent_code, spent_verifier) = j.authorize("alice", "alice-password").await?;
        let tokens = j.redeem(&spent_code, &spent_verifier).await?;
        let (code, verifier) = j.authorize("alice", "alice-password").await?;
        // A grant of its own for refresh reuse (reuse revokes the family).
        let reuse = j.login("alice", "alice-password").await?;
        let spent_refresh_token = reuse.refresh.context("no refresh token")?;
        let (status, body) = j.refresh(&spent_refresh_token).await?;
        anyhow::ensure!(status == 200, "refresh answered {status}: {body}");

        let alice = idp
            .config()
            .user("alice")
            .map(|u| u.sub.clone())
            .context("no alice")?;

        let m2m_token =
            crate::scenarios::client_credentials(idp, "m2m-client", "m2m-client-secret").await;
        let decoded = crate::jwt::decode_unverified(&m2m_token)?;
        let kid = decoded.kid().context("m2m token without kid")?.to_owned();
        let signer = IdpSigner::of(idp, &kid)?;
        // The proxy has the IdP's keys (it fetched them at start); wait until it accepts.
        let authority = authority(base_url);
        let probe = whoami_req(&m2m_token, &[]);
        wait_until(
            Duration::from_secs(20),
            "the m2m token to be accepted",
            || {
                let (a, p) = (authority.clone(), probe.clone());
                async move { send(&a, &p).await.ok().filter(|r| r.status == 200) }
            },
        )
        .await?;

        let consent_a = consent_page(base_url, &j.client_id).await?;
        let consent_b = consent_page(base_url, &j.client_id).await?;
        let approved_a = approve(base_url, &consent_page(base_url, &j.client_id).await?).await?;
        let approved_b = approve(base_url, &consent_page(base_url, &j.client_id).await?).await?;

        Ok(Self {
            base_url: base_url.to_owned(),
            platform,
            idp,
            client_id: j.client_id.clone(),
            other_client_id: other.client_id.clone(),
            code,
            verifier,
            spent_code,
            spent_verifier,
            access_token: tokens.access.clone(),
            refresh_token: tokens.refresh.context("no refresh token")?,
            spent_refresh_token,
            m2m_token,
            m2m_claims: decoded.claims,
            signer,
            sealer: ProxySealer::new(crate::envoy_setup::JWT_SIGNING_KEY, base_url)?,
            consent_a,
            consent_b,
            approved_a,
            approved_b,
            alice_sub: alice,
        })
    }

    /// [`ProxySealer::reseal`] of `value`. A value the test cannot reseal would be refused
    /// anyway, hiding the mistake: this fails loudly instead.
    pub fn resealed(&self, kind: SealKind, value: &str, how: Reseal) -> String {
        match self.sealer.reseal(kind, value, how) {
            Ok(v) => v,
            Err(e) => panic!("{e:#}"),
        }
    }

    /// The m2m claims with `changes` applied (`null` removes), as JSON text.
    pub fn claims_with(&self, changes: &[(&str, Value)]) -> String {
        let mut c = self.m2m_claims.clone();
        for (k, v) in changes {
            if v.is_null() {
                c.remove(*k);
            } else {
                c.insert((*k).to_owned(), v.clone());
            }
        }
        Value::Object(c).to_string()
    }

    /// A validly signed m2m token with `changes` to its claims.
    pub fn m2m_with(&self, changes: &[(&str, Value)]) -> String {
        self.signer.rs256_claims(&self.claims_with(changes))
    }

    /// The query of an authorization request of `client_id`, with `changes` (an empty value
    /// removes the parameter).
    pub fn authorize_target(&self, client_id: &str, changes: &[(&str, &str)]) -> String {
        let challenge = crate::cognito::pkce_pair().challenge;
        let resource = format!("{}/mcp", self.base_url);
        let mut pairs: Vec<(&str, &str)> = vec![
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", REDIRECT_URI),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("state", "client-state"),
            ("resource", &resource),
        ];
        for (k, v) in changes {
            pairs.retain(|(pk, _)| pk != k);
            if !v.is_empty() {
                pairs.push((k, v));
            }
        }
        format!("/authorize?{}", form_encode(&pairs))
    }

    /// A token request redeeming `self.code` with `changes` (an empty value removes).
    pub fn code_form(&self, changes: &[(&str, &str)]) -> Req {
        let resource = format!("{}/mcp", self.base_url);
        let mut pairs: Vec<(&str, &str)> = vec![
            ("grant_type", "authorization_code"),
            ("code", &self.code),
            ("client_id", &self.client_id),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", &self.verifier),
            ("resource", &resource),
        ];
        for (k, v) in changes {
            pairs.retain(|(pk, _)| pk != k);
            if !v.is_empty() {
                pairs.push((k, v));
            }
        }
        Req::form("/token", &pairs)
    }

    /// A refresh request with `token` for `client_id`.
    pub fn refresh_form(&self, token: &str, client_id: &str) -> Req {
        Req::form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", token),
                ("client_id", client_id),
            ],
        )
    }

    /// `POST /consent` of form `f` with `txn`, `csrf` field and cookies given explicitly.
    pub fn consent_req(&self, txn: &str, csrf: &str, cookies: &[(&str, &str)]) -> Req {
        let r = Req::form(
            "/consent",
            &[("txn", txn), ("csrf", csrf), ("action", "approve")],
        );
        if cookies.is_empty() {
            r
        } else {
            r.cookie(cookies)
        }
    }

    /// The callback with `state` and these cookies.
    pub fn callback_req(&self, state: &str, cookies: &[(&str, &str)]) -> Req {
        let r = Req::get(&format!(
            "/auth/callback?{}",
            form_encode(&[("code", "idp-code"), ("state", state)])
        ));
        if cookies.is_empty() {
            r
        } else {
            r.cookie(cookies)
        }
    }
}

/// `GET /authorize` for `client_id` up to the consent page.
async fn consent_page(base: &str, client_id: &str) -> anyhow::Result<ConsentForm> {
    let pkce = pkce_pair();
    let resp = http_client()
        .get(format!("{base}/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", REDIRECT_URI),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
            ("state", "client-state"),
        ])
        .send()
        .await?;
    anyhow::ensure!(resp.status() == 200, "authorize answered {}", resp.status());
    let csrf_cookie = set_cookie(&resp, "csrf").context("no CSRF cookie")?;
    let html = resp.text().await?;
    Ok(ConsentForm {
        txn: form_value(&html, "txn")?,
        csrf: form_value(&html, "csrf")?,
        csrf_cookie,
    })
}

/// Approves a consent form; the browser is sent to the IdP (not followed).
async fn approve(base: &str, f: &ConsentForm) -> anyhow::Result<Approved> {
    let resp = http_client()
        .post(format!("{base}/consent"))
        .header("cookie", format!("{}={}", f.csrf_cookie.0, f.csrf_cookie.1))
        .form(&[
            ("txn", f.txn.as_str()),
            ("csrf", &f.csrf),
            ("action", "approve"),
        ])
        .send()
        .await?;
    anyhow::ensure!(resp.status() == 302, "consent answered {}", resp.status());
    let binding_cookie = set_cookie(&resp, "binding").context("no binding cookie")?;
    let state = query(&location(&resp)?)?
        .get("state")
        .cloned()
        .context("no state")?;
    Ok(Approved {
        state,
        binding_cookie,
    })
}

/// The (name, value) of the `Set-Cookie` whose name contains `part`.
fn set_cookie(resp: &reqwest::Response, part: &str) -> Option<(String, String)> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next()?.split_once('='))
        .find(|(k, v)| k.contains(part) && !v.is_empty())
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
}

/// `POST /mcp` `tools/call whoami` with `token` and extra headers.
pub fn whoami_req(token: &str, extra: &[(&str, &str)]) -> Req {
    let mut r = mcp_req(Some(format!("Bearer {token}").as_bytes()));
    for (k, v) in extra {
        r = r.header(k, v);
    }
    r
}

/// `POST /mcp` `tools/call whoami` with this `Authorization` value (none when `None`).
pub fn mcp_req(authorization: Option<&[u8]>) -> Req {
    let r = Req::json(
        "/mcp",
        &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": "whoami", "arguments": {}}}),
    )
    .header("accept", "application/json, text/event-stream");
    match authorization {
        Some(a) => r.header("authorization", a),
        None => r,
    }
}

// ------------------------------------------------------------------------------------------
// Tampering helpers
// ------------------------------------------------------------------------------------------

/// Flips one character at `pos` (from the end when negative) to another base64url character.
pub fn flip_at(s: &str, pos: isize) -> String {
    let mut b = s.as_bytes().to_vec();
    let i = if pos < 0 {
        b.len().saturating_sub(pos.unsigned_abs())
    } else {
        (pos as usize).min(b.len().saturating_sub(1))
    };
    if let Some(c) = b.get_mut(i) {
        *c = if *c == b'A' { b'B' } else { b'A' };
    }
    String::from_utf8(b).unwrap_or_default()
}

/// Flips one bit of the decoded payload (after the key-id prefix) and re-encodes it.
pub fn bit_flip(s: &str) -> String {
    let Some((kid, data)) = s.split_once('.') else {
        return flip_at(s, -3);
    };
    let Some(mut bytes) = URL_SAFE_NO_PAD.decode(data).ok() else {
        return flip_at(s, -3);
    };
    let mid = bytes.len() / 2;
    if let Some(b) = bytes.get_mut(mid) {
        *b ^= 0x01;
    }
    format!("{kid}.{}", b64(&bytes))
}

/// The variants of a sealed value every category tries: a bit flip in the ciphertext, a
/// changed key id, a flipped last character (tag), truncations, an extension, padding.
pub fn tamperings(s: &str) -> Vec<(&'static str, String)> {
    vec![
        ("bit flip", bit_flip(s)),
        ("key id changed", flip_at(s, 0)),
        ("tag flipped", flip_at(s, -1)),
        (
            "truncated by one",
            s[..s.len().saturating_sub(1)].to_owned(),
        ),
        ("truncated to half", s[..s.len() / 2].to_owned()),
        ("extended", format!("{s}AAAA")),
        ("padded", format!("{s}==")),
    ]
}

// ------------------------------------------------------------------------------------------
// The table
// ------------------------------------------------------------------------------------------

/// Every hostile case, in the order they must run.
pub fn cases(ctx: &HostileContext<'_>) -> Vec<Case> {
    let mut all = Vec::new();
    all.extend(token_cases(ctx));
    all.extend(redirect_uri_cases(ctx));
    all.extend(pkce_cases(ctx));
    all.extend(sealed_cases(ctx));
    all.extend(consent_cases(ctx));
    all.extend(request_cases(ctx));
    all.extend(path_cases(ctx));
    all.extend(security_cases(ctx));
    all
}

fn token_cases(ctx: &HostileContext<'_>) -> Vec<Case> {
    use Category::Tokens as T;
    let mut v = Vec::new();
    let claims = ctx.claims_with(&[]);
    let kid = ctx.signer.kid.clone();
    let tok = |name: &str, token: &str, expect: Expect| {
        Case::new(T, name, whoami_req(token, &[]), expect)
    };
    let signed = |header: Value| {
        ctx.signer
            .rs256(header.to_string().as_bytes(), claims.as_bytes())
    };

    // alg: none, several spellings; with and without a signature.
    let unsigned = "unsigned tokens are not accepted";
    for alg in ["none", "None", "NONE", "nOnE"] {
        let h = b64(json!({"alg": alg, "kid": kid}).to_string().as_bytes());
        let t = format!("{h}.{}.", b64(claims.as_bytes()));
        v.push(tok(
            &format!("alg {alg:?}, empty signature"),
            &t,
            invalid_token(unsigned),
        ));
    }
    let real_sig = ctx.m2m_token.rsplit('.').next().unwrap_or("").to_owned();
    let h = b64(br#"{"alg":"none"}"#);
    v.push(tok(
        "alg none with the signature of a real token",
        &format!("{h}.{}.{real_sig}", b64(claims.as_bytes())),
        invalid_token(unsigned),
    ));
    v.push(tok(
        "alg missing from the header",
        &signed(json!({"kid": kid})),
        invalid_token("required claim missing"),
    ));
    v.push(tok(
        "alg empty",
        &signed(json!({"alg": "", "kid": kid})),
        invalid_token("unsupported signing algorithm"),
    ));
    v.push(tok(
        "alg as an array",
        &signed(json!({"alg": ["RS256"], "kid": kid})),
        invalid_token("token header or claims are not valid JSON"),
    ));

    // Algorithm confusion: HS256 with the IdP's public key as the secret.
    let hs_header = json!({"alg": "HS256", "kid": kid}).to_string();
    let jwk_text = ctx.signer.jwk.to_string();
    let n = ctx.signer.jwk["n"].as_str().unwrap_or("").to_owned();
    let n_bytes = URL_SAFE_NO_PAD.decode(&n).unwrap_or_default();
    for (what, secret) in [
        (
            "the public key PEM",
            ctx.signer.public_pem.as_bytes().to_vec(),
        ),
        ("the JWK JSON", jwk_text.as_bytes().to_vec()),
        ("the modulus n (base64url)", n.as_bytes().to_vec()),
        ("the modulus bytes", n_bytes),
    ] {
        v.push(tok(
            &format!("HS256 signed with {what}"),
            &hs256(&hs_header, &claims, &secret),
            invalid_token("signing algorithm not allowed"),
        ));
    }
    for alg in ["RS512", "PS256", "ES256", "EdDSA"] {
        v.push(tok(
            &format!("alg {alg} (not allowed for Cognito) over an RS256 signature"),
            &signed(json!({"alg": alg, "kid": kid})),
            invalid_token("signing algorithm not allowed"),
        ));
    }
    v.push(tok(
        "alg HS384 (unknown)",
        &signed(json!({"alg": "HS384", "kid": kid})),
        invalid_token("unsupported signing algorithm"),
    ));

    // kid games: path traversal, SQL-ish, odd types, unknown.
    let unknown_key = "unknown signing key";
    for (what, bad) in [
        ("path traversal", "../../../../../../etc/passwd"),
        ("absolute path", "/dev/null"),
        ("SQL-ish", "' OR '1'='1' --"),
        ("SQL-ish drop", "x'; DROP TABLE keys; --"),
        ("NUL byte", "kid\u{0}"),
        ("empty", ""),
        ("unknown", "not-a-kid-of-this-idp"),
    ] {
        v.push(tok(
            &format!("kid {what}"),
            &signed(json!({"alg": "RS256", "kid": bad})),
            invalid_token(unknown_key),
        ));
    }
    v.push(tok(
        "kid 4 KiB long",
        &signed(json!({"alg": "RS256", "kid": "k".repeat(4096)})),
        invalid_token(unknown_key),
    ));
    for (what, bad) in [("a number", json!(7)), ("an object", json!({"$ne": ""}))] {
        v.push(tok(
            &format!("kid as {what}"),
            &signed(json!({"alg": "RS256", "kid": bad})),
            invalid_token("token header or claims are not valid JSON"),
        ));
    }

    // crit headers (validly signed: crit alone must refuse).
    for crit in [json!(["exp"]), json!([]), json!(["b64"])] {
        let t = signed(json!({"alg": "RS256", "kid": kid, "crit": crit, "b64": false}));
        v.push(tok(
            &format!("crit {crit}"),
            &t,
            invalid_token("unsupported critical header"),
        ));
    }

    // Duplicate JSON keys (validly signed).
    let bad_json = "token header or claims are not valid JSON";
    let inner = claims.trim_start_matches('{');
    for (what, dup) in [
        ("sub", r#""sub":"admin","#),
        ("client_id", r#""client_id":"other-client","#),
        ("token_use", r#""token_use":"id","#),
        ("exp", r#""exp":99999999999,"#),
    ] {
        let raw = format!("{{{dup}{inner}");
        v.push(tok(
            &format!("duplicate claim {what}"),
            &ctx.signer.rs256_claims(&raw),
            invalid_token(bad_json),
        ));
    }
    let raw_header = format!(r#"{{"alg":"none","kid":"{kid}","alg":"RS256"}}"#);
    v.push(tok(
        "duplicate alg in the header",
        &ctx.signer.rs256(raw_header.as_bytes(), claims.as_bytes()),
        invalid_token(bad_json),
    ));

    // Deep nesting.
    let too_deep = "token JSON nested too deeply";
    let deep = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
    v.push(tok(
        "claims nested 64 deep",
        &ctx.signer
            .rs256_claims(&format!(r#"{{"x":{},{inner}"#, deep(64))),
        invalid_token(too_deep),
    ));
    v.push(tok(
        "claims nested 5000 deep",
        &ctx.signer
            .rs256_claims(&format!(r#"{{"x":{},{inner}"#, deep(5000))),
        invalid_token(too_deep),
    ));
    let deep_header = format!(r#"{{"alg":"RS256","kid":"{kid}","x":{}}}"#, deep(64));
    v.push(tok(
        "header nested 64 deep",
        &ctx.signer.rs256(deep_header.as_bytes(), claims.as_bytes()),
        invalid_token(too_deep),
    ));

    // Not UTF-8.
    let mut latin1_claims = claims.as_bytes().to_vec();
    latin1_claims.splice(1..1, b"\"n\xe4me\":\"\xff\xfe\",".iter().copied());
    let header_std = json!({"alg": "RS256", "kid": kid}).to_string();
    v.push(tok(
        "claims not UTF-8 (validly signed)",
        &ctx.signer.rs256(header_std.as_bytes(), &latin1_claims),
        invalid_token(bad_json),
    ));
    v.push(tok(
        "header not UTF-8",
        &format!(
            "{}.{}.{real_sig}",
            b64(b"{\"alg\":\"RS\xff256\"}"),
            b64(claims.as_bytes())
        ),
        invalid_token(bad_json),
    ));
    v.push(Case::new(
        T,
        "raw non-UTF-8 bytes in the Authorization header",
        mcp_req(Some(b"Bearer \xff\xfe\xfd.\xc3\x28.\x80")),
        invalid_token_any(),
    ));

    // Bad base64url and padding.
    let bad_b64 = "token is not valid base64url";
    let parts: Vec<&str> = ctx.m2m_token.split('.').collect();
    let (h0, p0, s0) = (parts[0], parts[1], parts.get(2).copied().unwrap_or(""));
    let std_sig = STANDARD.encode(URL_SAFE_NO_PAD.decode(s0).unwrap_or_default());
    let padded = |seg: &str| URL_SAFE.encode(URL_SAFE_NO_PAD.decode(seg).unwrap_or_default());
    for (what, t, expect) in [
        (
            "signature in standard base64 (+ /)",
            format!("{h0}.{p0}.{}", std_sig.replace('=', "")),
            invalid_token_any(),
        ),
        (
            "padded signature",
            format!("{h0}.{p0}.{}==", s0),
            invalid_token(bad_b64),
        ),
        (
            "padded header",
            format!("{}.{p0}.{s0}", padded(h0)),
            invalid_token_any(),
        ),
        (
            "space inside the payload",
            format!("{h0}.{} {}.{s0}", &p0[..10], &p0[10..]),
            invalid_token_any(),
        ),
        (
            "header segment '*'",
            format!("*.{p0}.{s0}"),
            invalid_token(bad_b64),
        ),
        (
            "empty payload",
            format!("{h0}..{s0}"),
            invalid_token(bad_b64),
        ),
        (
            "two segments",
            format!("{h0}.{p0}"),
            invalid_token("token is not a compact JWS"),
        ),
        (
            "four segments",
            format!("{h0}.{p0}.{s0}.{s0}"),
            invalid_token("token is not a compact JWS"),
        ),
        (
            "five segments (JWE shape)",
            format!("{h0}.{p0}.{s0}.{s0}.{s0}"),
            invalid_token("token is not a compact JWS"),
        ),
        ("just dots", "..".to_owned(), invalid_token_any()),
        (
            "not a JWT at all",
            "hello-world".to_owned(),
            invalid_token("token is not a compact JWS"),
        ),
    ] {
        v.push(tok(&format!("base64: {what}"), &t, expect));
    }
    v.push(tok(
        "payload swapped under a valid signature",
        &format!(
            "{h0}.{}.{s0}",
            b64(ctx.claims_with(&[("sub", json!("admin"))]).as_bytes())
        ),
        invalid_token("signature verification failed"),
    ));

    // exp, nbf, iat typing.
    let invalid_claim = "claim has an invalid value";
    for (what, exp) in [
        ("a string", json!("9999999999")),
        ("a float", json!(9_999_999_999.5)),
        ("negative", json!(-1)),
        ("huge (u64 max)", json!(u64::MAX)),
        ("after year 9999", json!(253_402_300_800u64)),
        ("1e30", json!(1e30)),
        ("true", json!(true)),
        ("an array", json!([9_999_999_999u64])),
    ] {
        v.push(tok(
            &format!("exp {what}"),
            &ctx.m2m_with(&[("exp", exp)]),
            invalid_token(invalid_claim),
        ));
    }
    v.push(tok(
        "exp 2^64 (overflows u64)",
        &ctx.signer
            .rs256_claims(&format!(r#"{{"exp":18446744073709551616,{inner}"#)),
        // Parsed as a float, or refused as a duplicate of the real exp: both are refusals.
        Expect::OneOf(vec![invalid_token(invalid_claim), invalid_token(bad_json)]),
    ));
    v.push(tok(
        "exp 0",
        &ctx.m2m_with(&[("exp", json!(0))]),
        invalid_token("token expired"),
    ));
    let now = crate::scenarios::now();
    v.push(tok(
        "expired an hour ago",
        &ctx.m2m_with(&[
            ("exp", json!(now - 3600)),
            ("iat", json!(now - 7200)),
            ("auth_time", json!(now - 7200)),
        ]),
        invalid_token("token expired"),
    ));
    v.push(tok(
        "nbf in a day",
        &ctx.m2m_with(&[("nbf", json!(now + 86_400))]),
        invalid_token("token not yet valid"),
    ));
    v.push(tok(
        "iat as a string",
        &ctx.m2m_with(&[("iat", json!("yesterday"))]),
        invalid_token(invalid_claim),
    ));

    // Missing and wrong claims.
    for claim in ["exp", "iss", "sub", "client_id", "token_use"] {
        v.push(tok(
            &format!("claim {claim} missing"),
            &ctx.m2m_with(&[(claim, Value::Null)]),
            invalid_token("required claim missing"),
        ));
    }
    v.push(tok(
        "sub empty",
        &ctx.m2m_with(&[("sub", json!(""))]),
        invalid_token(invalid_claim),
    ));
    v.push(tok(
        "sub a number",
        &ctx.m2m_with(&[("sub", json!(42))]),
        invalid_token(bad_json),
    ));
    let issuer = ctx.idp.issuer();
    for (what, iss) in [
        ("another pool", format!("{}x", issuer)),
        ("trailing slash", format!("{issuer}/")),
        ("the proxy itself", ctx.base_url.clone()),
    ] {
        v.push(tok(
            &format!("iss {what}"),
            &ctx.m2m_with(&[("iss", json!(iss))]),
            invalid_token("token issued by another issuer"),
        ));
    }
    v.push(tok(
        "token_use id on an access token",
        &ctx.m2m_with(&[("token_use", json!("id"))]),
        invalid_token("wrong kind of token"),
    ));
    v.push(tok(
        "token_use ACCESS (case)",
        &ctx.m2m_with(&[("token_use", json!("ACCESS"))]),
        invalid_token("wrong kind of token"),
    ));

    // Sizes.
    let mut long = ctx.m2m_claims.clone();
    long.insert("pad".into(), json!("p".repeat(17 * 1024)));
    v.push(tok(
        "17 KiB token (over max_token_bytes)",
        &ctx.signer.rs256_claims(&Value::Object(long).to_string()),
        invalid_token("token too long"),
    ));
    let mut huge = ctx.m2m_claims.clone();
    huge.insert("pad".into(), json!("p".repeat(64 * 1024)));
    v.push(tok(
        "64 KiB token",
        &ctx.signer.rs256_claims(&Value::Object(huge).to_string()),
        // Envoy's own header limit (60 KiB) answers first; a host without one reaches the core.
        Expect::OneOf(vec![Expect::Status(431), invalid_token("token too long")]),
    ));

    // Where the token travels.
    let query_token = "tokens are accepted only in the Authorization header";
    v.push(Case::new(
        T,
        "valid token in ?access_token=",
        Req::get(&format!("/mcp?access_token={}", ctx.access_token)),
        oauth_d(400, "invalid_request", query_token),
    ));
    v.push(Case::new(
        T,
        "valid token in ?x=1&access_token= with a valid header too",
        whoami_req(&ctx.access_token, &[])
            .tap_target(&format!("/mcp?x=1&access_token={}", ctx.access_token)),
        oauth_d(400, "invalid_request", query_token),
    ));
    v.push(Case::new(
        T,
        "valid token in ?access%5Ftoken= (encoded name)",
        Req::get(&format!("/mcp?access%5Ftoken={}", ctx.access_token)),
        no_token(),
    ));
    v.push(Case::new(
        T,
        "valid token in a form body (RFC 6750 §2.2)",
        Req::form("/mcp", &[("access_token", &ctx.access_token)]),
        no_token(),
    ));
    v.push(Case::new(
        T,
        "Basic with the valid token as credentials",
        mcp_req(Some(
            format!(
                "Basic {}",
                STANDARD.encode(format!("{}:", ctx.access_token))
            )
            .as_bytes(),
        )),
        no_token(),
    ));
    v.push(Case::new(
        T,
        "Basic <token>",
        mcp_req(Some(format!("Basic {}", ctx.access_token).as_bytes())),
        no_token(),
    ));
    v.push(Case::new(
        T,
        "scheme only (Bearer)",
        mcp_req(Some(b"Bearer")),
        no_token(),
    ));
    v.push(Case::new(
        T,
        "token without a scheme",
        mcp_req(Some(ctx.access_token.as_bytes())),
        no_token(),
    ));
    // Envoy's HTTP/1 codec joins repeated headers into one value ("a,b") before the filter
    // sees them (then the joined value is no token); a host passing both gets the core's 400.
    let two_auth = || {
        Expect::OneOf(vec![
            oauth_d(400, "invalid_request", "more than one authorization header"),
            invalid_token("token is not a compact JWS"),
        ])
    };
    v.push(Case::new(
        T,
        "two Authorization headers (invalid first, valid second)",
        mcp_req(Some(b"Bearer x.y.z")).bearer(&ctx.access_token),
        two_auth(),
    ));
    v.push(Case::new(
        T,
        "two Authorization headers (valid first, other case second)",
        whoami_req(&ctx.access_token, &[("AUTHORIZATION", "Bearer x.y.z")]),
        two_auth(),
    ));

    // Tokens that are real but not for this resource or client.
    let id_token = ctx
        .idp
        .mint(&MintRequest::template(
            TokenTemplate::Id,
            "alice",
            "m2m-client",
        ))
        .unwrap_or_default();
    v.push(tok(
        "an ID token",
        &id_token,
        invalid_token("wrong kind of token"),
    ));
    let web_id = ctx
        .idp
        .mint(&MintRequest::template(
            TokenTemplate::Id,
            "alice",
            "mcpgate-web",
        ))
        .unwrap_or_default();
    v.push(tok(
        "an ID token of the proxy's own app client",
        &web_id,
        invalid_token("wrong kind of token"),
    ));
    let other = ctx
        .idp
        .mint(&MintRequest::template(
            TokenTemplate::Machine,
            "",
            "other-client",
        ))
        .unwrap_or_default();
    v.push(tok(
        "another client's m2m token",
        &other,
        invalid_token("token issued for another audience"),
    ));
    let web_access = ctx
        .idp
        .mint(&MintRequest::template(
            TokenTemplate::Access,
            "alice",
            "mcpgate-web",
        ))
        .unwrap_or_default();
    v.push(tok(
        "alice's IdP access token of the proxy's app client (not accepted directly)",
        &web_access,
        invalid_token("token issued for another audience"),
    ));
    let key2 = ctx
        .idp
        .mint(&MintRequest::template(TokenTemplate::Machine, "", "m2m-client").key(2))
        .unwrap_or_default();
    v.push(tok(
        "signed by a key not in the JWKS",
        &key2,
        invalid_token(unknown_key),
    ));
    let key2_kid1 = ctx
        .idp
        .mint(
            &MintRequest::template(TokenTemplate::Machine, "", "m2m-client")
                .key(2)
                .kid(&kid),
        )
        .unwrap_or_default();
    v.push(tok(
        "signed by another key under the published kid",
        &key2_kid1,
        invalid_token("signature verification failed"),
    ));

    // The proxy's own access token, tampered.
    let own: Vec<&str> = ctx.access_token.split('.').collect();
    let (oh, op, os) = (own[0], own[1], own.get(2).copied().unwrap_or(""));
    let own_claims: Value = URL_SAFE_NO_PAD
        .decode(op)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    let mut admin = own_claims.clone();
    admin["sub"] = json!("admin");
    admin["groups"] = json!(["admins", "root"]);
    let bad_sig = "signature verification failed";
    v.push(tok(
        "own token with claims changed (sub admin), original signature",
        &format!("{oh}.{}.{os}", b64(admin.to_string().as_bytes())),
        invalid_token(bad_sig),
    ));
    let header_text =
        String::from_utf8(URL_SAFE_NO_PAD.decode(oh).unwrap_or_default()).unwrap_or_default();
    v.push(tok(
        "own token re-signed HS256 with a guessed key",
        &hs256(&header_text, &admin.to_string(), b"secret"),
        invalid_token(bad_sig),
    ));
    v.push(tok(
        "own token re-signed with the client_id as the key",
        &hs256(
            &header_text,
            &own_claims.to_string(),
            ctx.client_id.as_bytes(),
        ),
        invalid_token(bad_sig),
    ));
    v.push(tok(
        "own token with alg none",
        &format!(
            "{}.{op}.",
            b64(header_text.replace("HS256", "none").as_bytes())
        ),
        invalid_token(unsigned),
    ));
    v.push(tok(
        "own token without its signature",
        &format!("{oh}.{op}."),
        invalid_token(bad_sig),
    ));
    v.push(tok(
        "own token with a flipped signature bit",
        &flip_at(&ctx.access_token, -2),
        invalid_token(bad_sig),
    ));
    v.push(tok(
        "own token with a trailing dot",
        &format!("{}.", ctx.access_token),
        invalid_token("token is not a compact JWS"),
    ));
    v
}

trait TapTarget {
    fn tap_target(self, target: &str) -> Self;
}
impl TapTarget for Req {
    fn tap_target(mut self, target: &str) -> Self {
        self.target = target.to_owned();
        self
    }
}

fn redirect_uri_cases(ctx: &HostileContext<'_>) -> Vec<Case> {
    use Category::RedirectUris as R;
    let mut v = Vec::new();
    let reg = |name: &str, uri: &str, desc: &'static str| {
        Case::new(
            R,
            format!("register {name}: {uri}"),
            Req::json(
                "/register",
                &json!({"redirect_uris": [uri], "client_name": "hostile"}),
            ),
            oauth_d(400, "invalid_redirect_uri", desc),
        )
    };
    let scheme = "redirect_uri must be https, http to a loopback address, or a private-use scheme";
    let web_form = "https and http redirect URIs must have the form scheme://host/path";
    let upper = "redirect_uri scheme http/https must be written in lower case";
    let dangerous = "redirect_uri scheme is handled by the browser or the operating system";
    let insecure = "http redirect_uri allowed only for localhost";
    let userinfo = "redirect_uri must not contain userinfo";
    let fragment = "redirect_uri must not contain a fragment";
    let dots = "redirect_uri must not contain dot segments";
    let bad_char = "redirect_uri contains characters not allowed in a URI";
    let bad_host = "redirect_uri has an invalid host";
    let bad_port = "redirect_uri has an invalid port";
    for (name, uri, desc) in [
        // Open redirects and relative forms.
        ("scheme-relative", "//evil.example/cb", scheme),
        ("relative path", "/cb", scheme),
        ("https: without slashes", "https:evil.example/cb", web_form),
        ("https:/ one slash", "https:/evil.example/cb", web_form),
        ("upper-case scheme", "HTTPS://evil.example/cb", upper),
        (
            "backslash authority",
            "https://good.example\\@evil.example/cb",
            "backslashes",
        ),
        ("leading space", " https://good.example/cb", bad_char),
        // userinfo
        ("userinfo", "https://good.example@evil.example/cb", userinfo),
        (
            "user:password",
            "https://user:pass@good.example/cb",
            userinfo,
        ),
        (
            "loopback userinfo",
            "http://localhost@evil.example/cb",
            userinfo,
        ),
        (
            "loopback userinfo with port",
            "http://127.0.0.1:80@evil.example/cb",
            userinfo,
        ),
        (
            "encoded @ in host",
            "https://good.example%40evil.example/cb",
            bad_host,
        ),
        // Encoded slashes and dots
        ("dot-dot", "https://app.example/a/../cb", dots),
        ("dot", "https://app.example/./cb", dots),
        ("encoded dot-dot", "https://app.example/%2e%2e/cb", dots),
        (
            "mixed-case encoded dots",
            "https://app.example/%2E./cb",
            dots,
        ),
        ("encoded slash", "https://app.example/a%2Fb", dots),
        ("encoded backslash", "https://app.example/a%5cb", dots),
        (
            "loopback encoded traversal",
            "http://127.0.0.1/..%2f..%2fcb",
            dots,
        ),
        // IDN look-alikes and other non-ASCII
        ("Cyrillic a", "https://\u{430}pp.example/cb", bad_char),
        ("fullwidth host", "https://\u{ff45}xample.com/cb", bad_char),
        (
            "roman numeral l in localhost",
            "http://\u{217c}ocalhost/cb",
            bad_char,
        ),
        (
            "ideographic full stop",
            "http://localhost\u{3002}evil.example/cb",
            bad_char,
        ),
        // Fragments
        ("fragment", "https://app.example/cb#x", fragment),
        ("empty fragment", "https://app.example/cb#", fragment),
        ("loopback fragment", "http://localhost/cb#/evil", fragment),
        // localhost look-alikes and non-loopback http
        (
            "localhost subdomain",
            "http://localhost.evil.com/cb",
            insecure,
        ),
        ("nip.io", "http://127.0.0.1.nip.io/cb", insecure),
        (
            "localhost with trailing dot",
            "http://localhost./cb",
            bad_host,
        ),
        ("decimal IP", "http://2130706433/cb", insecure),
        ("hex IP", "http://0x7f000001/cb", insecure),
        ("short IP", "http://127.1/cb", insecure),
        ("0.0.0.0", "http://0.0.0.0/cb", insecure),
        ("IPv4-mapped IPv6", "http://[::ffff:127.0.0.1]/cb", bad_host),
        ("plain http", "http://evil.example/cb", insecure),
        ("private network http", "http://192.168.1.1/cb", insecure),
        // Port games
        ("port 0", "https://app.example:0/cb", bad_port),
        ("port 99999", "https://app.example:99999/cb", bad_port),
        ("port 80a", "https://app.example:80a/cb", bad_port),
        ("port 65536", "http://127.0.0.1:65536/cb", bad_port),
        ("empty port", "https://app.example:/cb", bad_port),
        ("negative port", "http://localhost:-1/cb", bad_port),
        ("port +80", "https://app.example:+80/cb", bad_port),
        // Schemes the browser or the operating system handles itself (private-use schemes of
        // apps are accepted: RFC 8252 §7.1, below).
        ("javascript", "javascript:alert(1)", dangerous),
        ("javascript with //", "javascript://%0aalert(1)", dangerous),
        ("mixed-case javascript", "JaVaScRiPt:alert(1)", dangerous),
        (
            "data",
            "data:text/html,<script>alert(1)</script>",
            dangerous,
        ),
        ("file", "file:///etc/passwd", dangerous),
        ("vbscript", "vbscript:msgbox(1)", dangerous),
        ("blob", "blob:https://evil.example/x", dangerous),
        ("about", "about:blank", dangerous),
        ("ftp", "ftp://x.example/cb", dangerous),
        ("ws", "ws://x.example/cb", dangerous),
        ("mailto", "mailto:a@evil.example", dangerous),
        ("Windows handler", "ms-msdt:/id%20PCWDiagnostic", dangerous),
        ("search-ms", "search-ms:query=x", dangerous),
        (
            "Android intent",
            "intent://x#Intent;scheme=https;end",
            dangerous,
        ),
        ("a drive letter", "c:/windows/cb", scheme),
        (
            "private-use with a fragment",
            "myapp://cb#x",
            "private-use redirect_uri",
        ),
        // Control characters
        (
            "CRLF",
            "https://app.example/cb\r\nSet-Cookie: x=1",
            bad_char,
        ),
        ("NUL", "https://app.example/cb\u{0}", bad_char),
    ] {
        v.push(reg(name, uri, desc));
    }
    v.push(Case::new(
        R,
        "register a private-use scheme (RFC 8252 §7.1): accepted, matched exactly",
        Req::json(
            "/register",
            &json!({"redirect_uris": ["myapp://callback"], "client_name": "hostile"}),
        ),
        Expect::Status(201),
    ));
    v.push(Case::new(
        R,
        "register application_type web with a loopback redirect URI",
        Req::json(
            "/register",
            &json!({"redirect_uris": [REDIRECT_URI], "application_type": "web"}),
        ),
        oauth_d(
            400,
            "invalid_redirect_uri",
            "application_type web allows only https",
        ),
    ));
    v.push(reg(
        "3 KiB long",
        &format!("https://app.example/{}", "a".repeat(3000)),
        "redirect_uri too long",
    ));
    let many: Vec<String> = (0..11).map(|i| format!("https://a.example/{i}")).collect();
    v.push(Case::new(
        R,
        "register 11 redirect URIs",
        Req::json("/register", &json!({ "redirect_uris": many })),
        oauth_d(400, "invalid_redirect_uri", "at most 10 redirect_uris"),
    ));
    v.push(Case::new(
        R,
        "register one good and one bad redirect URI",
        Req::json(
            "/register",
            &json!({"redirect_uris": [REDIRECT_URI, "javascript:alert(1)"]}),
        ),
        oauth_d(400, "invalid_redirect_uri", dangerous),
    ));
    v.push(Case::new(
        R,
        "register redirect_uris as a string",
        Req::json(
            "/register",
            &json!({"redirect_uris": "https://a.example/cb"}),
        ),
        oauth(400, "invalid_client_metadata"),
    ));

    // At /authorize: a redirect URI not registered is a 400 page, never a redirect.
    let not_registered = "redirect_uri is not registered for this client";
    for (name, uri) in [
        ("another host", "https://evil.example/cb".to_owned()),
        ("trailing slash", format!("{REDIRECT_URI}/")),
        (
            "extra query",
            format!("{REDIRECT_URI}?next=https://evil.example"),
        ),
        ("other path case", REDIRECT_URI.replace("/cb", "/CB")),
        (
            "localhost for 127.0.0.1",
            REDIRECT_URI.replace("127.0.0.1", "localhost"),
        ),
        ("dot segment", format!("{REDIRECT_URI}/../evil")),
        ("fragment", format!("{REDIRECT_URI}#x")),
        (
            "userinfo",
            "http://127.0.0.1:33333@evil.example/cb".to_owned(),
        ),
        ("javascript", "javascript:alert(1)".to_owned()),
        (
            "https for http",
            REDIRECT_URI.replace("http://", "https://"),
        ),
    ] {
        v.push(Case::new(
            R,
            format!("authorize with a redirect_uri not registered: {name}"),
            Req::get(&ctx.authorize_target(&ctx.client_id, &[("redirect_uri", &uri)])),
            page_d(400, "invalid_request", not_registered),
        ));
    }
    v
}

fn pkce_cases(ctx: &HostileContext<'_>) -> Vec<Case> {
    use Category::Pkce as P;
    let mut v = Vec::new();
    let auth = |name: &str, changes: &[(&str, &str)], expect: Expect| {
        Case::new(
            P,
            format!("authorize {name}"),
            Req::get(&ctx.authorize_target(&ctx.client_id, changes)),
            expect,
        )
    };
    let good = pkce_pair().challenge;
    let c42 = &good[..42];
    let c44 = format!("{good}A");
    let c128 = "A".repeat(128);
    let plus = format!("{}+/", &good[..41]);
    let padded = format!("{}=", &good[..42]);
    let spaced = format!("{} {}", &good[..21], &good[22..]);
    for (name, changes) in [
        ("without code_challenge", vec![("code_challenge", "")]),
        (
            "without code_challenge_method",
            vec![("code_challenge_method", "")],
        ),
        (
            "with method plain",
            vec![("code_challenge_method", "plain")],
        ),
        (
            "with method s256 (case)",
            vec![("code_challenge_method", "s256")],
        ),
        (
            "with method plain and a verifier as challenge",
            vec![
                ("code_challenge_method", "plain"),
                (
                    "code_challenge",
                    "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
                ),
            ],
        ),
        (
            "with a 42-character challenge",
            vec![("code_challenge", c42)],
        ),
        (
            "with a 44-character challenge",
            vec![("code_challenge", &c44)],
        ),
        (
            "with a 128-character challenge",
            vec![("code_challenge", &c128)],
        ),
        (
            "with + and / in the challenge",
            vec![("code_challenge", &plus)],
        ),
        ("with a padded challenge", vec![("code_challenge", &padded)]),
        (
            "with a space in the challenge",
            vec![("code_challenge", &spaced)],
        ),
    ] {
        v.push(auth(name, &changes, link_back("invalid_request")));
    }
    v.push(auth(
        "with response_type token",
        &[("response_type", "token")],
        link_back("unsupported_response_type"),
    ));
    v.push(auth(
        "without response_type",
        &[("response_type", "")],
        link_back("unsupported_response_type"),
    ));
    v.push(auth(
        "with another resource",
        &[("resource", "https://evil.example/mcp")],
        link_back("invalid_target"),
    ));
    let sub_resource = format!("{}/mcp/../admin", ctx.base_url);
    v.push(auth(
        "with a resource path trick",
        &[("resource", &sub_resource)],
        link_back("invalid_target"),
    ));
    v.push(auth(
        "with a quote in the scope",
        &[("scope", "openid \"admin")],
        link_back("invalid_scope"),
    ));
    let crlf = "x\r\nSet-Cookie: pwned=1\r\nLocation: https://evil.example/";
    v.push(auth(
        "with CRLF and headers in the state (reflected on an error)",
        &[("state", crlf), ("code_challenge_method", "plain")],
        Expect::LinkBack {
            error: "invalid_request",
            state: crlf.to_owned(),
        },
    ));
    // Client ID Metadata Document URLs that must not be fetched or must fail closed.
    for (name, url, desc) in [
        (
            "without a path",
            "https://evil.example/",
            "must be https with a path",
        ),
        (
            "with userinfo",
            "https://user@evil.example/meta.json",
            "not a valid https URL",
        ),
        (
            "with a fragment",
            "https://evil.example/meta.json#x",
            "not a valid https URL",
        ),
        (
            "with dot segments",
            "https://evil.example/a/../meta.json",
            "not a valid https URL",
        ),
        (
            "to the cloud metadata address (refused before any fetch)",
            "https://169.254.169.254/latest/meta-data/iam",
            "not fetched from private or loopback hosts",
        ),
        (
            "to the proxy itself (refused before any fetch)",
            "https://127.0.0.1/register",
            "not fetched from private or loopback hosts",
        ),
        (
            "to a decimal loopback address",
            "https://2130706433/meta.json",
            "not fetched from private or loopback hosts",
        ),
        (
            "to localhost",
            "https://localhost:8443/meta.json",
            "not fetched from private or loopback hosts",
        ),
        (
            "over plain http",
            "http://client.example/meta.json",
            "unknown client_id",
        ),
    ] {
        v.push(Case::new(
            P,
            format!("authorize with a metadata-document client_id {name}"),
            Req::get(&ctx.authorize_target(url, &[])),
            page_d(400, "invalid_client", desc),
        ));
    }
    let long_state = "s".repeat(2000);
    v.push(auth(
        "with a 2000-character state",
        &[("state", &long_state)],
        page_d(400, "invalid_request", "state too long"),
    ));

    // /token: PKCE on the code (the code stays unredeemed: these fail before the store).
    let tok = |name: &str, changes: &[(&str, &str)], expect: Expect| {
        Case::new(P, format!("token {name}"), ctx.code_form(changes), expect)
    };
    let mismatch = "code_verifier does not match the code_challenge";
    let wrong = pkce_pair().verifier;
    let v42 = &ctx.verifier[..42];
    let v129 = "a".repeat(129);
    let v_alpha = format!("{}+", &ctx.verifier[..42]);
    let v_space = format!("{} ", &ctx.verifier[..42]);
    let challenge_of_verifier = {
        let d = Sha256::digest(ctx.verifier.as_bytes());
        b64(&d)
    };
    v.push(tok(
        "without code_verifier",
        &[("code_verifier", "")],
        oauth_d(400, "invalid_request", "code_verifier is required"),
    ));
    for (name, verifier) in [
        ("with a wrong verifier", wrong.as_str()),
        ("with a 42-character verifier", v42),
        ("with a 129-character verifier", &v129),
        ("with + in the verifier", &v_alpha),
        ("with a space in the verifier", &v_space),
        ("with the challenge as verifier", &challenge_of_verifier),
        ("with the verifier of the spent code", &ctx.spent_verifier),
    ] {
        v.push(tok(
            name,
            &[("code_verifier", verifier)],
            oauth_d(400, "invalid_grant", mismatch),
        ));
    }
    v.push(Case::new(
        P,
        "token with an empty verifier",
        Req::form(
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &ctx.code),
                ("client_id", &ctx.client_id),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", ""),
            ],
        ),
        // An empty parameter counts as absent.
        oauth_d(400, "invalid_request", "code_verifier is required"),
    ));
    v.push(tok(
        "with another redirect_uri",
        &[("redirect_uri", "http://127.0.0.1:33333/other")],
        oauth_d(400, "invalid_grant", "redirect_uri does not match"),
    ));
    v.push(tok(
        "without redirect_uri",
        &[("redirect_uri", "")],
        oauth_d(400, "invalid_grant", "redirect_uri does not match"),
    ));
    v.push(tok(
        "with another resource",
        &[("resource", "https://evil.example/mcp")],
        oauth(400, "invalid_target"),
    ));
    v.push(tok(
        "for another client",
        &[("client_id", &ctx.other_client_id)],
        oauth_d(400, "invalid_grant", "issued to another client"),
    ));
    v.push(
        tok(
            "without client_id",
            &[("client_id", "")],
            oauth_d(401, "invalid_client", "client_id is required"),
        )
        .with_header("www-authenticate", "Basic realm=\"mcpgate\""),
    );
    let basic_other = format!(
        "Basic {}",
        STANDARD.encode(format!("{}:", ctx.other_client_id))
    );
    v.push(Case::new(
        P,
        "token with Basic naming another client than the form",
        ctx.code_form(&[]).header("authorization", &basic_other),
        oauth_d(401, "invalid_client", "client_id differs"),
    ));
    v.push(Case::new(
        P,
        "token with malformed Basic credentials",
        ctx.code_form(&[])
            .header("authorization", "Basic !!!notbase64"),
        oauth_d(401, "invalid_client", "malformed Basic credentials"),
    ));
    v.push(Case::new(
        P,
        "token with two Authorization headers",
        ctx.code_form(&[])
            .header("authorization", "Basic eDo=")
            .header("authorization", "Basic eTo="),
        // Joined by Envoy into one value, which is no Basic credential.
        Expect::OneOf(vec![
            oauth_d(400, "invalid_request", "duplicate authorization header"),
            oauth_d(401, "invalid_client", "malformed Basic credentials"),
        ]),
    ));
    // client_credentials is for the IdP's confidential app clients, never a registered one.
    v.push(tok(
        "with grant_type client_credentials from a registered public client",
        &[("grant_type", "client_credentials")],
        oauth_d(401, "invalid_client", "needs the client's id and secret"),
    ));
    for grant in [
        "password",
        "implicit",
        "urn:ietf:params:oauth:grant-type:device_code",
    ] {
        v.push(tok(
            &format!("with grant_type {grant}"),
            &[("grant_type", grant)],
            oauth(400, "unsupported_grant_type"),
        ));
    }
    v.push(tok(
        "without grant_type",
        &[("grant_type", "")],
        oauth_d(400, "invalid_request", "grant_type is required"),
    ));
    v.push(Case::new(
        P,
        "refresh widening the scope",
        Req::form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &ctx.refresh_token),
                ("client_id", &ctx.client_id),
                ("scope", "openid email admin"),
            ],
        ),
        oauth(400, "invalid_scope"),
    ));
    v
}

fn sealed_cases(ctx: &HostileContext<'_>) -> Vec<Case> {
    use Category::Sealed as S;
    let mut v = Vec::new();
    let invalid_code = "invalid authorization code";
    let invalid_refresh = "invalid refresh token";
    let (binding_name, binding) = (
        ctx.approved_a.binding_cookie.0.as_str(),
        ctx.approved_a.binding_cookie.1.as_str(),
    );
    let (csrf_name, csrf_cookie) = (
        ctx.consent_a.csrf_cookie.0.as_str(),
        ctx.consent_a.csrf_cookie.1.as_str(),
    );

    for (how, t) in tamperings(&ctx.client_id) {
        v.push(Case::new(
            S,
            format!("client_id {how} at /authorize"),
            Req::get(&ctx.authorize_target(&t, &[])),
            page_d(400, "invalid_client", "unknown client_id"),
        ));
    }
    for (how, t) in tamperings(&ctx.code) {
        v.push(Case::new(
            S,
            format!("code {how}"),
            ctx.code_form(&[("code", &t)]),
            oauth_d(400, "invalid_grant", invalid_code),
        ));
    }
    for (how, t) in tamperings(&ctx.refresh_token) {
        v.push(Case::new(
            S,
            format!("refresh token {how}"),
            ctx.refresh_form(&t, &ctx.client_id),
            oauth_d(400, "invalid_grant", invalid_refresh),
        ));
    }
    for (how, t) in tamperings(&ctx.approved_a.state) {
        v.push(Case::new(
            S,
            format!("state {how}"),
            ctx.callback_req(&t, &[(binding_name, binding)]),
            page_d(400, "invalid_request", "invalid or missing state"),
        ));
    }
    for (how, t) in tamperings(&ctx.consent_a.txn) {
        v.push(Case::new(
            S,
            format!("consent txn {how}"),
            ctx.consent_req(&t, &ctx.consent_a.csrf, &[(csrf_name, csrf_cookie)]),
            page_d(400, "invalid_request", "invalid consent form"),
        ));
    }
    for (how, t) in tamperings(binding) {
        v.push(Case::new(
            S,
            format!("binding cookie {how}"),
            ctx.callback_req(&ctx.approved_a.state, &[(binding_name, &t)]),
            page_d(403, "access_denied", "another browser"),
        ));
    }
    // Expired, and sealed under a retired key: the same content sealed again by the test.
    let a = &ctx.approved_a;
    let f = &ctx.consent_a;
    for (how, label) in [
        (Reseal::Expired, "expired"),
        (Reseal::RetiredKey, "sealed with a retired key"),
    ] {
        let reseal = |kind, value: &str| ctx.resealed(kind, value, how);
        let (code_desc, refresh_desc, txn_desc, state_desc) = if how == Reseal::Expired {
            (
                "authorization code expired",
                "refresh token expired",
                "the authorization expired",
                "the authorization expired",
            )
        } else {
            (
                invalid_code,
                invalid_refresh,
                "invalid consent form",
                "invalid or missing state",
            )
        };
        let client_id = reseal(SealKind::ClientId, &ctx.client_id);
        v.push(Case::new(
            S,
            format!("client_id {label} at /authorize"),
            Req::get(&ctx.authorize_target(&client_id, &[])),
            page_d(400, "invalid_client", "unknown client_id"),
        ));
        v.push(Case::new(
            S,
            format!("code {label}"),
            ctx.code_form(&[("code", &reseal(SealKind::Code, &ctx.code))]),
            oauth_d(400, "invalid_grant", code_desc),
        ));
        v.push(Case::new(
            S,
            format!("refresh token {label}"),
            ctx.refresh_form(
                &reseal(SealKind::RefreshToken, &ctx.refresh_token),
                &ctx.client_id,
            ),
            oauth_d(400, "invalid_grant", refresh_desc),
        ));
        v.push(Case::new(
            S,
            format!("consent txn {label}"),
            ctx.consent_req(
                &reseal(SealKind::Transaction, &f.txn),
                &f.csrf,
                &[(csrf_name, csrf_cookie)],
            ),
            page_d(400, "invalid_request", txn_desc),
        ));
        v.push(Case::new(
            S,
            format!("state {label}"),
            ctx.callback_req(
                &reseal(SealKind::State, &a.state),
                &[(binding_name, binding)],
            ),
            page_d(400, "invalid_request", state_desc),
        ));
        v.push(Case::new(
            S,
            format!("binding cookie {label}"),
            ctx.callback_req(
                &a.state,
                &[(binding_name, &reseal(SealKind::ConsentBinding, binding))],
            ),
            page_d(403, "access_denied", "another browser"),
        ));
    }
    v.push(Case::new(
        S,
        "empty code",
        ctx.code_form(&[("code", "")]),
        oauth_d(400, "invalid_request", "code is required"),
    ));

    // Replay.
    v.push(Case::new(
        S,
        "replay of a redeemed code",
        ctx.code_form(&[
            ("code", &ctx.spent_code),
            ("code_verifier", &ctx.spent_verifier),
        ]),
        oauth(400, "invalid_grant"),
    ));
    v.push(Case::new(
        S,
        "reuse of a rotated-out refresh token",
        ctx.refresh_form(&ctx.spent_refresh_token, &ctx.client_id),
        oauth_d(400, "invalid_grant", "reuse"),
    ));
    v.push(Case::new(
        S,
        "refresh token of another client",
        ctx.refresh_form(&ctx.refresh_token, &ctx.other_client_id),
        oauth_d(400, "invalid_grant", "issued to another client"),
    ));

    // Kind swaps: each sealed value where another kind is expected.
    let a = &ctx.approved_a;
    let f = &ctx.consent_a;
    for (what, value) in [
        ("refresh token", &ctx.refresh_token),
        ("client_id", &ctx.client_id),
        ("state", &a.state),
        ("consent txn", &f.txn),
        ("binding cookie", &a.binding_cookie.1),
        ("access token", &ctx.access_token),
    ] {
        v.push(Case::new(
            S,
            format!("{what} presented as a code"),
            ctx.code_form(&[("code", value)]),
            oauth_d(400, "invalid_grant", invalid_code),
        ));
    }
    for (what, value) in [
        ("code", &ctx.code),
        ("client_id", &ctx.client_id),
        ("state", &a.state),
        ("access token", &ctx.access_token),
        ("m2m token", &ctx.m2m_token),
    ] {
        v.push(Case::new(
            S,
            format!("{what} presented as a refresh token"),
            ctx.refresh_form(value, &ctx.client_id),
            oauth_d(400, "invalid_grant", invalid_refresh),
        ));
    }
    for (what, value) in [
        ("code", &ctx.code),
        ("refresh token", &ctx.refresh_token),
        ("state", &a.state),
        ("consent txn", &f.txn),
        ("binding cookie", &a.binding_cookie.1),
    ] {
        v.push(Case::new(
            S,
            format!("{what} presented as a client_id"),
            Req::get(&ctx.authorize_target(value, &[])),
            page_d(400, "invalid_client", "unknown client_id"),
        ));
    }
    for (what, value) in [
        ("client_id", &ctx.client_id),
        ("consent txn", &f.txn),
        ("binding cookie", &a.binding_cookie.1),
        ("code", &ctx.code),
    ] {
        v.push(Case::new(
            S,
            format!("{what} presented as the state"),
            ctx.callback_req(value, &[(binding_name, binding)]),
            page_d(400, "invalid_request", "invalid or missing state"),
        ));
    }
    for (what, value) in [("state", &a.state), ("client_id", &ctx.client_id)] {
        v.push(Case::new(
            S,
            format!("{what} presented as the consent txn"),
            ctx.consent_req(value, &f.csrf, &[(csrf_name, csrf_cookie)]),
            page_d(400, "invalid_request", "invalid consent form"),
        ));
    }
    v.push(Case::new(
        S,
        "state presented as the binding cookie",
        ctx.callback_req(&a.state, &[(binding_name, &a.state)]),
        page_d(403, "access_denied", "another browser"),
    ));
    for (what, value) in [
        ("refresh token", &ctx.refresh_token),
        ("code", &ctx.code),
        ("client_id", &ctx.client_id),
    ] {
        v.push(Case::new(
            S,
            format!("{what} presented as a bearer token"),
            whoami_req(value, &[]),
            invalid_token_any(),
        ));
    }
    v
}

fn consent_cases(ctx: &HostileContext<'_>) -> Vec<Case> {
    use Category::Consent as C;
    let mut v = Vec::new();
    let (a, b) = (&ctx.consent_a, &ctx.consent_b);
    let csrf_name = a.csrf_cookie.0.as_str();
    // `__Host-mcpgate-csrf` over https, `mcpgate-csrf` over http: the same value under a
    // name the proxy did not set.
    let other_csrf_name = format!("x-{csrf_name}");
    let csrf_failed = "CSRF check";
    let forbidden =
        |name: &str, req: Req| Case::new(C, name, req, page_d(403, "access_denied", csrf_failed));
    v.push(forbidden(
        "consent without the CSRF cookie",
        ctx.consent_req(&a.txn, &a.csrf, &[]),
    ));
    v.push(forbidden(
        "consent without the csrf field",
        Req::form("/consent", &[("txn", &a.txn), ("action", "approve")])
            .cookie(&[(csrf_name, &a.csrf_cookie.1)]),
    ));
    v.push(forbidden(
        "consent with a forged csrf field",
        ctx.consent_req(&a.txn, "forged", &[(csrf_name, &a.csrf_cookie.1)]),
    ));
    v.push(forbidden(
        "consent with the csrf field of another transaction",
        ctx.consent_req(&a.txn, &b.csrf, &[(csrf_name, &a.csrf_cookie.1)]),
    ));
    v.push(forbidden(
        "consent with a tampered CSRF cookie",
        ctx.consent_req(
            &a.txn,
            &a.csrf,
            &[(csrf_name, &flip_at(&a.csrf_cookie.1, -1))],
        ),
    ));
    v.push(forbidden(
        "consent with a longer CSRF cookie",
        ctx.consent_req(
            &a.txn,
            &a.csrf,
            &[(csrf_name, &format!("{}x", a.csrf_cookie.1))],
        ),
    ));
    v.push(forbidden(
        "consent with a forged CSRF cookie before the real one (cookie tossing)",
        ctx.consent_req(
            &a.txn,
            &a.csrf,
            &[(csrf_name, "forged"), (csrf_name, &a.csrf_cookie.1)],
        ),
    ));
    v.push(forbidden(
        "consent with the CSRF value under another cookie name",
        ctx.consent_req(&a.txn, &a.csrf, &[(&other_csrf_name, &a.csrf_cookie.1)]),
    ));
    v.push(forbidden(
        "consent with empty csrf field and cookie",
        ctx.consent_req(&a.txn, "", &[(csrf_name, "")]),
    ));
    v.push(Case::new(
        C,
        "consent with action APPROVE (case)",
        Req::form(
            "/consent",
            &[("txn", &a.txn), ("csrf", &a.csrf), ("action", "APPROVE")],
        )
        .cookie(&[(csrf_name, &a.csrf_cookie.1)]),
        page_d(400, "invalid_request", "action must be approve or deny"),
    ));
    v.push(Case::new(
        C,
        "consent without txn",
        Req::form("/consent", &[("csrf", &a.csrf), ("action", "approve")])
            .cookie(&[(csrf_name, &a.csrf_cookie.1)]),
        page_d(400, "invalid_request", "invalid consent form"),
    ));
    v.push(Case::new(
        C,
        "consent posted as JSON",
        Req::json(
            "/consent",
            &json!({"txn": a.txn, "csrf": a.csrf, "action": "approve"}),
        )
        .cookie(&[(csrf_name, &a.csrf_cookie.1)]),
        page_d(400, "invalid_request", "malformed consent form"),
    ));
    v.push(Case::new(
        C,
        "consent with txn given twice",
        Req::form(
            "/consent",
            &[
                ("txn", &a.txn),
                ("txn", &b.txn),
                ("csrf", &a.csrf),
                ("action", "approve"),
            ],
        )
        .cookie(&[(csrf_name, &a.csrf_cookie.1)]),
        page_d(400, "invalid_request", "malformed consent form"),
    ));

    // The callback's browser binding.
    let (x, y) = (&ctx.approved_a, &ctx.approved_b);
    let binding_name = x.binding_cookie.0.as_str();
    let other_binding_name = format!("x-{binding_name}");
    let other_browser = "another browser";
    for (name, cookies) in [
        ("without the binding cookie", vec![]),
        (
            "with the binding cookie of another transaction",
            vec![(binding_name, y.binding_cookie.1.as_str())],
        ),
        (
            "with the binding under another cookie name",
            vec![(other_binding_name.as_str(), x.binding_cookie.1.as_str())],
        ),
        (
            "with a forged binding cookie before the real one",
            vec![
                (binding_name, "forged"),
                (binding_name, x.binding_cookie.1.as_str()),
            ],
        ),
        (
            "with the CSRF cookie as the binding",
            vec![(binding_name, ctx.consent_a.csrf_cookie.1.as_str())],
        ),
    ] {
        v.push(Case::new(
            C,
            format!("callback {name}"),
            ctx.callback_req(&x.state, &cookies),
            page_d(403, "access_denied", other_browser),
        ));
    }
    v.push(Case::new(
        C,
        "callback with an IdP error and a forged state",
        Req::get("/auth/callback?error=access_denied&state=forged"),
        page_d(400, "invalid_request", "invalid or missing state"),
    ));
    v.push(Case::new(
        C,
        "callback without state",
        Req::get("/auth/callback?code=idp-code")
            .cookie(&[(binding_name, x.binding_cookie.1.as_str())]),
        page_d(400, "invalid_request", "invalid or missing state"),
    ));
    v.push(Case::new(
        C,
        "callback with state given twice",
        Req::get(&format!(
            "/auth/callback?{}",
            form_encode(&[("code", "c"), ("state", &x.state), ("state", &y.state)])
        ))
        .cookie(&[(binding_name, x.binding_cookie.1.as_str())]),
        page(400, "invalid_request"),
    ));
    v
}

fn request_cases(ctx: &HostileContext<'_>) -> Vec<Case> {
    use Category::Requests as Q;
    let mut v = Vec::new();
    let too_large = "request body too large";
    let worker = ctx.platform == Platform::Worker;

    // Oversized bodies.
    let big = vec![b' '; 64 * 1024 + 1];
    for (path, ct) in [
        ("/register", "application/json"),
        ("/token", "application/x-www-form-urlencoded"),
        ("/authorize", "application/x-www-form-urlencoded"),
        ("/consent", "application/x-www-form-urlencoded"),
        ("/revoke", "application/x-www-form-urlencoded"),
    ] {
        v.push(Case::new(
            Q,
            format!("{path} with a 64 KiB + 1 body"),
            Req::new("POST", path)
                .header("content-type", ct)
                .body(big.clone()),
            oauth_d(413, "invalid_request", too_large),
        ));
    }
    // Streamed, so only a capped read can refuse it. In `wrangler dev` a body much larger than
    // the cap is still being streamed through its proxy when the 413 comes, which the proxy
    // reports as a 503 of its own: the Worker gets 128 KiB, already twice the cap.
    let streamed = if worker { 128 * 1024 } else { 1024 * 1024 };
    v.push(Case::new(
        Q,
        format!("/token with a {} KiB chunked body", streamed / 1024),
        Req::new("POST", "/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(vec![b'a'; streamed])
            .chunked(),
        oauth_d(413, "invalid_request", too_large),
    ));

    // Oversized headers: the core's limits (32 KiB, 100 headers) on every route, below
    // Envoy's own (60 KiB, 100 headers), which answer first beyond them.
    let headers_too_large = oauth_d(431, "invalid_request", "request headers too large");
    // Beyond Envoy's limit: Envoy's bare 431, the core's on Workers.
    let host_limit = if worker {
        headers_too_large.clone()
    } else {
        Expect::Status(431)
    };
    v.push(Case::new(
        Q,
        "one 40 KiB header on /mcp",
        mcp_req(None).header("x-big", "a".repeat(40 * 1024)),
        headers_too_large.clone(),
    ));
    v.push(Case::new(
        Q,
        "a 40 KiB cookie on /consent",
        ctx.consent_req(&ctx.consent_a.txn, &ctx.consent_a.csrf, &[])
            .header("cookie", format!("x={}", "c".repeat(40 * 1024))),
        headers_too_large.clone(),
    ));
    v.push(Case::new(
        Q,
        "one 40 KiB header on a forwarded path",
        Req::get("/health").header("x-big", "a".repeat(40 * 1024)),
        headers_too_large.clone(),
    ));
    v.push(Case::new(
        Q,
        "one 100 KiB header",
        mcp_req(None).header("x-big", "a".repeat(100 * 1024)),
        host_limit.clone(),
    ));
    let mut many = mcp_req(None);
    for i in 0..150 {
        many = many.header(&format!("x-h{i}"), "v");
    }
    v.push(Case::new(Q, "150 headers", many, host_limit.clone()));
    v.push(Case::new(
        Q,
        "a 100 KiB cookie on /consent",
        ctx.consent_req(&ctx.consent_a.txn, &ctx.consent_a.csrf, &[])
            .header("cookie", format!("x={}", "c".repeat(100 * 1024))),
        host_limit,
    ));

    // Wrong content types and bodies.
    let form_ct = "content type must be application/x-www-form-urlencoded";
    v.push(Case::new(
        Q,
        "/token as JSON",
        Req::json(
            "/token",
            &json!({"grant_type": "authorization_code", "client_id": ctx.client_id}),
        ),
        oauth_d(400, "invalid_request", form_ct),
    ));
    v.push(Case::new(
        Q,
        "/token as text/plain",
        Req::new("POST", "/token")
            .header("content-type", "text/plain")
            .body("grant_type=authorization_code"),
        oauth_d(400, "invalid_request", form_ct),
    ));
    v.push(Case::new(
        Q,
        "/token as multipart",
        Req::new("POST", "/token")
            .header("content-type", "multipart/form-data; boundary=x")
            .body("--x\r\ncontent-disposition: form-data; name=\"grant_type\"\r\n\r\nauthorization_code\r\n--x--\r\n"),
        oauth_d(400, "invalid_request", form_ct),
    ));
    v.push(Case::new(
        Q,
        "/token without content type",
        Req::new("POST", "/token").body("grant_type=authorization_code"),
        oauth_d(400, "invalid_request", form_ct),
    ));
    v.push(Case::new(
        Q,
        "/token with two content types",
        ctx.code_form(&[])
            .header("content-type", "application/json"),
        // Joined by Envoy into one value, which is not the form type.
        Expect::OneOf(vec![
            oauth_d(400, "invalid_request", "duplicate content-type header"),
            oauth_d(400, "invalid_request", form_ct),
        ]),
    ));
    v.push(Case::new(
        Q,
        "/token body not UTF-8",
        Req::new("POST", "/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(b"grant_type=\xff\xfe".to_vec()),
        oauth_d(400, "invalid_request", "body is not UTF-8"),
    ));
    v.push(Case::new(
        Q,
        "/token with a broken percent-encoding",
        Req::new("POST", "/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=%zz&client_id=%"),
        oauth_d(400, "invalid_request", "malformed form encoding"),
    ));
    v.push(Case::new(
        Q,
        "/revoke as JSON",
        Req::json("/revoke", &json!({"token": ctx.refresh_token})),
        oauth_d(400, "invalid_request", form_ct),
    ));
    v.push(Case::new(
        Q,
        "/revoke without token",
        Req::form("/revoke", &[("client_id", &ctx.client_id)]),
        oauth_d(400, "invalid_request", "token is required"),
    ));
    let metadata = "invalid_client_metadata";
    let reg_body = json!({"redirect_uris": [REDIRECT_URI]}).to_string();
    for (name, ct, body) in [
        (
            "as a form",
            "application/x-www-form-urlencoded",
            "redirect_uris=http%3A%2F%2F127.0.0.1%2Fcb".to_owned(),
        ),
        ("as text/plain", "text/plain", reg_body.clone()),
        (
            "as application/jsonp",
            "application/jsonp",
            reg_body.clone(),
        ),
        ("with a JSON array", "application/json", "[]".to_owned()),
        (
            "with broken JSON",
            "application/json",
            "{\"redirect_uris\":[".to_owned(),
        ),
        (
            "nested 100 deep",
            "application/json",
            format!("{{\"x\":{}1{}}}", "[".repeat(100), "]".repeat(100)),
        ),
        (
            "with duplicate redirect_uris keys",
            "application/json",
            format!(
                r#"{{"redirect_uris":["{REDIRECT_URI}"],"redirect_uris":["javascript:alert(1)"]}}"#
            ),
        ),
    ] {
        v.push(Case::new(
            Q,
            format!("/register {name}"),
            Req::new("POST", "/register")
                .header("content-type", ct)
                .body(body),
            oauth(400, metadata),
        ));
    }
    v.push(Case::new(
        Q,
        "/register with a non-UTF-8 body",
        Req::new("POST", "/register")
            .header("content-type", "application/json")
            .body(b"{\"redirect_uris\":[\"http://127.0.0.1/\xff\"]}".to_vec()),
        oauth(400, metadata),
    ));
    v.push(Case::new(
        Q,
        "/register with grant_types client_credentials",
        Req::json(
            "/register",
            &json!({"redirect_uris": [REDIRECT_URI], "grant_types": ["client_credentials"]}),
        ),
        oauth(400, metadata),
    ));
    v.push(Case::new(
        Q,
        "/register with a 201-character client_name",
        Req::json(
            "/register",
            &json!({"redirect_uris": [REDIRECT_URI], "client_name": "n".repeat(201)}),
        ),
        oauth_d(400, metadata, "client_name too long"),
    ));
    v.push(Case::new(
        Q,
        "/register with control characters in client_name",
        Req::json(
            "/register",
            &json!({"redirect_uris": [REDIRECT_URI], "client_name": "evil\u{1b}[31m\r\nname"}),
        ),
        oauth_d(400, metadata, "control characters"),
    ));

    // Duplicate parameters.
    let dup = "given more than once";
    for name in [
        "grant_type",
        "code",
        "client_id",
        "code_verifier",
        "redirect_uri",
    ] {
        let mut r = ctx.code_form(&[]);
        let extra = format!("&{name}=x");
        r.body.extend_from_slice(extra.as_bytes());
        v.push(Case::new(
            Q,
            format!("/token with {name} twice"),
            r,
            oauth_d(400, "invalid_request", dup),
        ));
    }
    for name in [
        "client_id",
        "redirect_uri",
        "code_challenge",
        "state",
        "resource",
    ] {
        let target = format!("{}&{name}=x", ctx.authorize_target(&ctx.client_id, &[]));
        v.push(Case::new(
            Q,
            format!("/authorize with {name} twice"),
            Req::get(&target),
            page_d(400, "invalid_request", dup),
        ));
    }
    v.push(Case::new(
        Q,
        "/revoke with token twice",
        Req::form("/revoke", &[("token", "a"), ("token", "b")]),
        oauth_d(400, "invalid_request", dup),
    ));

    // Path confusion. On Workers the platform resolves dot segments first: the request is
    // then the resolved path's, routed and forwarded as such (what the resolved request gets).
    let ambiguous = oauth_d(400, "invalid_request", "ambiguous request path");
    let as_alice = Expect::Upstream(vec![("x-mcpgate-sub", Some(ctx.alice_sub.clone()))]);
    for (path, resolved) in [
        ("/mcp/../register", oauth(400, "invalid_redirect_uri")),
        ("//mcp", ambiguous.clone()),
        ("/%2fmcp", ambiguous.clone()),
        ("/mcp%2F..", ambiguous.clone()),
        ("/mcp/%2e%2e/register", oauth(400, "invalid_redirect_uri")),
        ("/./mcp", as_alice.clone()),
        ("/x/../mcp", as_alice.clone()),
        ("/mcp%00", ambiguous.clone()),
        ("/%2E%2E/mcp", as_alice.clone()),
        // "/", which is no route of the proxy's: forwarded, and the demo server has no page.
        ("/register/..", Expect::Status(404)),
        ("/mcp/..%5cregister", ambiguous.clone()),
    ] {
        v.push(Case::new(
            Q,
            format!("path {path}"),
            mcp_req(Some(format!("Bearer {}", ctx.access_token).as_bytes())).tap_target(path),
            if worker { resolved } else { ambiguous.clone() },
        ));
    }
    v.push(Case::new(
        Q,
        "path /mcp\\..\\register (raw backslash)",
        mcp_req(None).tap_target("/mcp\\..\\register"),
        // Envoy's HTTP/1 parser or the core: either way a 400.
        Expect::OneOf(vec![ambiguous, Expect::Status(400)]),
    ));
    v.push(Case::new(
        Q,
        "path /MCP without a token is guarded",
        mcp_req(None).tap_target("/MCP"),
        no_token(),
    ));
    v.push(Case::new(
        Q,
        "path /Mcp/sub with a forged token is guarded",
        mcp_req(Some(b"Bearer x.y.z")).tap_target("/Mcp/sub"),
        invalid_token_any(),
    ));
    v.push(
        Case::new(
            Q,
            "absolute-form target to the MCP path",
            mcp_req(None).tap_target(&format!("{}/mcp", ctx.base_url)),
            Expect::OneOf(vec![no_token(), Expect::Status(400)]),
        )
        .skip_if(
            worker,
            "workerd's HTTP server answers absolute-form targets with its own 500 (an \
             invalid-URL exception) before the Worker runs; on Cloudflare the edge parses them",
        ),
    );

    // Methods.
    for (method, path, allow) in [
        ("GET", "/register", "POST"),
        ("PUT", "/token", "POST"),
        ("GET", "/token", "POST"),
        ("DELETE", "/authorize", "GET, POST"),
        ("OPTIONS", "/authorize", "GET, POST"),
        ("GET", "/consent", "POST"),
        ("PATCH", "/revoke", "POST"),
        ("POST", "/auth/callback", "GET"),
        ("POST", "/.well-known/oauth-authorization-server", "GET"),
        ("DELETE", "/.well-known/oauth-protected-resource/mcp", "GET"),
    ] {
        v.push(
            Case::new(
                Q,
                format!("{method} {path}"),
                Req::new(method, path),
                oauth_d(405, "invalid_request", "method not allowed"),
            )
            .with_header("allow", allow),
        );
    }
    v
}

/// Every spelling of a path that an origin may route as the MCP path, a group-rule prefix or
/// a public path: each is refused (400) or guarded (401 without a token, the verified
/// identity with one, 403 under a group rule), never forwarded unauthenticated. The stacks
/// run with `group_rules` `/mcp/ops` → group `ops` (alice is not in it) and `public_paths`
/// `/healthz` ([`hostile_path_config`]).
fn path_cases(ctx: &HostileContext<'_>) -> Vec<Case> {
    use Category::Paths as P;
    let worker = ctx.platform == Platform::Worker;
    let mut v = Vec::new();
    let ambiguous = oauth_d(400, "invalid_request", "ambiguous request path");
    let as_alice = Expect::Upstream(vec![("x-mcpgate-sub", Some(ctx.alice_sub.clone()))]);
    let group = Expect::Bearer {
        status: 403,
        error: Some("insufficient_scope"),
        desc: Some("group membership required"),
    };
    let bearer = format!("Bearer {}", ctx.access_token);
    let anonymous = |target: &str| mcp_req(None).tap_target(target);
    let alice = |target: &str| mcp_req(Some(bearer.as_bytes())).tap_target(target);

    // The MCP path with letters encoded (each one, upper and lower hex, all of them): the
    // same path to a decoding origin, so guarded, and forwarded as `/mcp`, which both
    // origins serve.
    for p in percent_spellings("/mcp") {
        v.push(Case::new(
            P,
            format!("{p} without a token"),
            anonymous(&p),
            no_token(),
        ));
        v.push(Case::new(
            P,
            format!("{p} with a token"),
            alice(&p),
            as_alice.clone(),
        ));
    }
    // Other cases: the MCP path to an origin that ignores case. Forwarded as spelled, which
    // a case-sensitive origin does not serve (its own 404, or Starlette's 307 to `/mcp`).
    let case_sensitive_origin = Expect::OneOf(vec![
        as_alice.clone(),
        Expect::Status(404),
        Expect::Status(307),
    ]);
    for p in ["/MCP", "/Mcp", "/mCP", "/MCP/", "/%6D%43%50", "/Mcp/x"] {
        v.push(Case::new(
            P,
            format!("{p} without a token"),
            anonymous(p),
            no_token(),
        ));
        v.push(Case::new(
            P,
            format!("{p} with a token"),
            alice(p),
            case_sensitive_origin.clone(),
        ));
    }
    // Spellings origins read differently from each other: refused on every host.
    for p in [
        "/mc%2570",
        "/%256Dcp",
        "/mcp%252F",
        "/mcp;x=1",
        "/mcp;",
        "/;x/mcp",
        "/mcp;jsessionid=1/x",
        "/mcp%3Bx",
        "/mcp%2F",
        "/%2Fmcp",
        "/%2fmcp",
        "/mcp%2fadmin",
        "/mcp%00",
        "/mcp%20",
        "/%20/mcp",
        "/mcp%09",
        "/mcp%0A",
        "/mcp%5C",
        "/mcp%5cadmin",
        "/%C0%AE%C0%AE/mcp",
        "/%C0%AF/mcp",
        "/mcp%C0%AF",
        "/%E0%80%AE%E0%80%AE/mcp",
        "/%C1%9C/mcp",
        "/mcp%C3",
        "/mcp.",
        "/mcp%2E",
        "/mc%70.",
        "/mcp%",
        "/mcp%G0",
    ] {
        v.push(Case::new(
            P,
            format!("{p} without a token"),
            anonymous(p),
            ambiguous.clone(),
        ));
        v.push(Case::new(
            P,
            format!("{p} with a token"),
            alice(p),
            ambiguous.clone(),
        ));
    }
    // Backslashes and dot segments: WHATWG URL parsing in workerd reads `\` as `/` and
    // resolves `.` segments before the Worker runs; what it routes is then guarded.
    for (p, resolved_anonymous, resolved_alice) in [
        ("/mcp\\admin", no_token(), case_sensitive_origin.clone()),
        ("/mcp/.", no_token(), case_sensitive_origin.clone()),
        ("/mcp/%2e", no_token(), case_sensitive_origin.clone()),
        ("/x/..\\mcp", no_token(), as_alice.clone()),
        ("/healthz/.", no_token(), case_sensitive_origin.clone()),
    ] {
        let envoy_expect = Expect::OneOf(vec![ambiguous.clone(), Expect::Status(400)]);
        v.push(Case::new(
            P,
            format!("{p} without a token"),
            anonymous(p),
            if worker {
                resolved_anonymous
            } else {
                envoy_expect.clone()
            },
        ));
        v.push(Case::new(
            P,
            format!("{p} with a token"),
            alice(p),
            if worker { resolved_alice } else { envoy_expect },
        ));
    }
    // The group rule `/mcp/ops`: every spelling is the restricted path (403), or refused.
    let mut restricted = percent_spellings("/mcp/ops");
    restricted.extend(
        [
            "/MCP/ops",
            "/mcp/OPS",
            "/Mcp/Ops/x",
            "/mcp/ops/",
            "/mcp/ops/x/y",
            "/m%63p/%6Fps",
        ]
        .map(String::from),
    );
    for p in &restricted {
        v.push(Case::new(
            P,
            format!("{p} as alice (not in ops)"),
            alice(p),
            group.clone(),
        ));
    }
    for p in [
        "/mcp/ops;x=1",
        "/mcp/ops.",
        "/mcp/ops%2F",
        "/mcp/o%2570s",
        "/mcp/ops%00",
    ] {
        v.push(Case::new(
            P,
            format!("{p} as alice"),
            alice(p),
            ambiguous.clone(),
        ));
    }
    for (p, resolved) in [
        ("/mcp/ops/.", group.clone()),
        ("/mcp/x/../ops", group.clone()),
    ] {
        v.push(Case::new(
            P,
            format!("{p} as alice"),
            alice(p),
            if worker { resolved } else { ambiguous.clone() },
        ));
    }
    // Whole segments: a longer name is another path (guarded, not restricted).
    v.push(Case::new(
        P,
        "/mcp/opsx as alice",
        alice("/mcp/opsx"),
        case_sensitive_origin.clone(),
    ));
    v.push(Case::new(
        P,
        "/mcp/opsx without a token",
        anonymous("/mcp/opsx"),
        no_token(),
    ));
    // The public path opens exactly itself; other spellings are guarded or refused.
    v.push(Case::new(
        P,
        "public /healthz",
        Req::get("/healthz"),
        Expect::Status(200),
    ));
    v.push(Case::new(
        P,
        "public /health%7A (the same path)",
        Req::get("/health%7A"),
        Expect::Status(200),
    ));
    for p in [
        "/HEALTHZ",
        "/Healthz",
        "/healthz/x",
        "/healthz/",
        "/healthzz",
        "/",
    ] {
        v.push(Case::new(
            P,
            format!("{p} without a token"),
            Req::get(p),
            no_token(),
        ));
    }
    for p in ["/healthz;x", "/healthz.", "/healthz%2F", "/healthz%00"] {
        v.push(Case::new(
            P,
            format!("{p} without a token"),
            Req::get(p),
            ambiguous.clone(),
        ));
    }
    // Deny by default: paths the origin may serve besides MCP need a token too.
    for p in [
        "/admin",
        "/favicon.ico",
        "/api/v1/x",
        "/.well-known/other",
        "/mcpx",
    ] {
        v.push(Case::new(
            P,
            format!("{p} without a token"),
            Req::get(p),
            no_token(),
        ));
    }
    v
}

/// `path` with each non-`/` character percent-encoded in turn (upper- and lower-case hex),
/// then with all of them encoded.
pub fn percent_spellings(path: &str) -> Vec<String> {
    let chars: Vec<char> = path.chars().collect();
    let mut out = Vec::new();
    for (i, c) in chars.iter().enumerate() {
        if *c == '/' {
            continue;
        }
        for enc in [format!("%{:02X}", *c as u32), format!("%{:02x}", *c as u32)] {
            let mut s: String = chars[..i].iter().collect();
            s.push_str(&enc);
            s.extend(&chars[i + 1..]);
            out.push(s);
        }
    }
    out.push(
        chars
            .iter()
            .map(|c| {
                if *c == '/' {
                    "/".to_owned()
                } else {
                    format!("%{:02X}", *c as u32)
                }
            })
            .collect(),
    );
    out.sort();
    out.dedup();
    out
}

/// After the suite: the origin received no request without a verified identity, except
/// those to the public path `/healthz` (which it must have received, canonical: the
/// `/health%7A` case arrives as `/healthz`).
pub async fn assert_origin_saw_only_verified(origin: &crate::origin::Origin) {
    let all = origin.requests().await.unwrap();
    let with_cookie: Vec<_> = all.iter().filter(|r| r.proxy_cookie).collect();
    assert!(
        with_cookie.is_empty(),
        "the {:?} origin received the proxy's own cookies: {with_cookie:?}",
        origin.kind()
    );
    let spoofed: Vec<_> = all
        .iter()
        .filter(|r| r.path == "/healthz" && r.identified)
        .collect();
    assert!(
        spoofed.is_empty(),
        "the {:?} origin received an identity header on the public path: {spoofed:?}",
        origin.kind()
    );
    let unauthenticated = origin.unauthenticated().await.unwrap();
    let (public, leaked): (Vec<_>, Vec<_>) = unauthenticated
        .into_iter()
        .partition(|r| r.path == "/healthz");
    assert!(
        leaked.is_empty(),
        "the {:?} origin received requests without a verified identity: {leaked:?}",
        origin.kind()
    );
    assert!(
        public.len() >= 2,
        "the public path's requests did not reach the origin: {public:?}"
    );
}

/// The path settings the hostile stacks run with (see [`path_cases`]).
pub fn hostile_path_config() -> Vec<(&'static str, Value)> {
    vec![
        (
            "group_rules",
            json!([{"path_prefix": "/mcp/ops", "groups": ["ops"]}]),
        ),
        ("public_paths", json!(["/healthz"])),
    ]
}

// ------------------------------------------------------------------------------------------
// Checks outside the table
// ------------------------------------------------------------------------------------------

/// Base requests that must be accepted before the table runs (not counted as cases).
pub fn controls_before(ctx: &HostileContext<'_>) -> Vec<Case> {
    vec![
        Case::new(
            Category::Tokens,
            "control: a hand-built m2m token with unchanged claims is accepted",
            whoami_req(&ctx.m2m_with(&[]), &[]),
            Expect::Upstream(vec![("x-mcpgate-client-id", Some("m2m-client".into()))]),
        ),
        Case::new(
            Category::Pkce,
            "control: the base authorization request shows the consent page",
            Req::get(&ctx.authorize_target(&ctx.client_id, &[])),
            Expect::Status(200),
        ),
        Case::new(
            Category::Sealed,
            "control: a client_id the test sealed again with the proxy's key is accepted",
            Req::get(&ctx.authorize_target(
                &ctx.resealed(SealKind::ClientId, &ctx.client_id, Reseal::Fresh),
                &[],
            )),
            Expect::Status(200),
        ),
    ]
}

/// Base requests with the context's values after the table ran: still accepted, so no
/// refusal consumed them (not counted as cases). Uses them up.
pub fn controls_after(ctx: &HostileContext<'_>) -> Vec<Case> {
    let a = &ctx.approved_a;
    let f = &ctx.consent_a;
    vec![
        Case::new(
            Category::Sealed,
            "control: the code is still redeemable",
            ctx.code_form(&[]),
            Expect::Status(200),
        ),
        Case::new(
            Category::Sealed,
            "control: and then single-use",
            ctx.code_form(&[]),
            oauth(400, "invalid_grant"),
        ),
        Case::new(
            Category::Sealed,
            "control: the refresh token still refreshes",
            ctx.refresh_form(&ctx.refresh_token, &ctx.client_id),
            Expect::Status(200),
        ),
        Case::new(
            Category::Consent,
            "control: the consent form is still accepted",
            ctx.consent_req(&f.txn, &f.csrf, &[(&f.csrf_cookie.0, &f.csrf_cookie.1)]),
            Expect::Status(302),
        ),
        Case::new(
            Category::Consent,
            "control: state and binding still reach the IdP code exchange (fake code refused)",
            ctx.callback_req(&a.state, &[(&a.binding_cookie.0, &a.binding_cookie.1)]),
            redirect("server_error"),
        ),
    ]
}

const SPOOFS: [(&str, &str); 7] = [
    ("x-mcpgate-sub", "admin"),
    ("X-Mcpgate-Username", "mallory"),
    ("x-mcpgate-groups", "root"),
    ("x-mcpgate-scope", "admin"),
    ("X-MCPGATE-CLIENT-ID", "evil"),
    ("x-mcpgate-email", "evil@example.com"),
    ("x-mcpgate-sub", "second-spoof"),
];

/// The security review's findings (issue 14) that a single request can show: sealed values of
/// another deployment, the proxy's cookies and namespace headers reaching the origin, Client
/// ID Metadata Documents on the proxy's or the origin's own host. (Errors for unapproved
/// clients never redirecting are in [`pkce_cases`]; spoofs on the public path are checked on
/// the origin's log by [`assert_origin_saw_only_verified`].)
fn security_cases(ctx: &HostileContext<'_>) -> Vec<Case> {
    let mut v = Vec::new();
    let elsewhere = |kind, value: &str| ctx.resealed(kind, value, Reseal::OtherDeployment);
    v.push(Case::new(
        Category::Sealed,
        "client_id of another deployment sharing the secret",
        Req::get(&ctx.authorize_target(&elsewhere(SealKind::ClientId, &ctx.client_id), &[])),
        page_d(400, "invalid_client", "unknown client_id"),
    ));
    v.push(Case::new(
        Category::Sealed,
        "code of another deployment sharing the secret",
        ctx.code_form(&[("code", &elsewhere(SealKind::Code, &ctx.code))]),
        oauth_d(400, "invalid_grant", "invalid authorization code"),
    ));
    v.push(Case::new(
        Category::Sealed,
        "refresh token of another deployment sharing the secret",
        ctx.refresh_form(
            &elsewhere(SealKind::RefreshToken, &ctx.refresh_token),
            &ctx.client_id,
        ),
        oauth_d(400, "invalid_grant", "invalid refresh token"),
    ));
    let (binding_name, _) = &ctx.approved_a.binding_cookie;
    let cookies = format!(
        "{binding_name}=x; app=1; mcpgate-csrf=y; __Host-mcpgate-approvals=z; mcpgate-binding=w"
    );
    v.push(Case::new(
        Category::Requests,
        "the proxy's cookies with alice's token: only the application's reach the origin",
        whoami_req(&ctx.access_token, &[("cookie", &cookies)]),
        Expect::Upstream(vec![
            ("cookie", Some("app=1".into())),
            ("x-mcpgate-sub", Some(ctx.alice_sub.clone())),
        ]),
    ));
    v.push(Case::new(
        Category::Requests,
        "only the proxy's cookies with alice's token: no Cookie at the origin",
        whoami_req(
            &ctx.access_token,
            &[("cookie", "mcpgate-csrf=y; __Host-mcpgate-binding=w")],
        ),
        Expect::Upstream(vec![("cookie", None)]),
    ));
    v.push(Case::new(
        Category::Requests,
        "headers of the proxy's namespace that are not identity headers",
        whoami_req(
            &ctx.access_token,
            &[("x-mcpgate-tenant", "evil"), ("X-Mcpgate-Role", "admin")],
        ),
        Expect::Upstream(vec![("x-mcpgate-tenant", None), ("x-mcpgate-role", None)]),
    ));
    // The proxy's own host (in these stacks also the origin's: 127.0.0.1). Never fetched.
    let own = format!("https://{}/meta.json", authority(&ctx.base_url));
    v.push(Case::new(
        Category::Pkce,
        "client metadata document on the proxy's own host and port (the origin's host too)",
        Req::get(&ctx.authorize_target(&own, &[])),
        // Refused before any fetch: as loopback, or (where private hosts are allowed) as the
        // proxy's own host.
        Expect::OneOf(vec![
            page_d(400, "invalid_client", "own host"),
            page_d(400, "invalid_client", "private or loopback"),
        ]),
    ));
    v.push(Case::new(
        Category::Requests,
        "public path with spoofed identity headers and the proxy's cookies",
        Req::get("/healthz")
            .header("x-mcpgate-sub", "admin")
            .header("x_mcpgate_groups", "ops")
            .header("cookie", cookies.as_str()),
        Expect::Status(200),
    ));
    v
}

/// Spoofed identity headers from the client never reach the MCP server: with alice's token
/// her identity arrives; with the m2m token, headers it has no value for arrive not at all.
pub async fn spoofing_checks(
    base_url: &str,
    ctx: &HostileContext<'_>,
) -> Vec<(Category, Result<(), Failure>)> {
    let alice = Case::new(
        Category::Requests,
        "spoofed x-mcpgate-* headers with alice's token",
        whoami_req(&ctx.access_token, &SPOOFS),
        Expect::Upstream(vec![
            ("x-mcpgate-sub", Some(ctx.alice_sub.clone())),
            ("x-mcpgate-username", Some("alice".into())),
            ("x-mcpgate-groups", Some("admins".into())),
            ("x-mcpgate-client-id", Some(ctx.client_id.clone())),
            ("x-mcpgate-email", Some("alice@example.com".into())),
        ]),
    );
    let m2m = Case::new(
        Category::Requests,
        "spoofed x-mcpgate-* headers with an m2m token (no username, groups, email)",
        whoami_req(&ctx.m2m_token, &SPOOFS),
        Expect::Upstream(vec![
            ("x-mcpgate-sub", Some("m2m-client".into())),
            ("x-mcpgate-client-id", Some("m2m-client".into())),
            ("x-mcpgate-username", None),
            ("x-mcpgate-groups", None),
            ("x-mcpgate-email", None),
        ]),
    );
    let mut out = Vec::new();
    for c in [alice, m2m] {
        out.push((c.category, run_case(base_url, &c).await));
    }
    out
}

/// A token of a key the IdP retired is refused once the proxy has seen the new key set.
/// Rotates the emulator's keys (retiring the active one): run last.
pub async fn retired_key_check(base_url: &str, ctx: &HostileContext<'_>) -> Result<(), Failure> {
    let fail = |why: String| Failure {
        category: Category::Tokens,
        name: "signed by a retired key".into(),
        request: "whoami with an m2m token of the key the IdP retired".into(),
        expected: invalid_token("unknown signing key").to_string(),
        actual: String::new(),
        why,
    };
    let old = ctx
        .idp
        .mint(&MintRequest::template(
            TokenTemplate::Machine,
            "",
            "m2m-client",
        ))
        .map_err(|e| fail(format!("mint: {e}")))?;
    ctx.idp.rotate_keys(true);
    let new =
        crate::scenarios::client_credentials(ctx.idp, "m2m-client", "m2m-client-secret").await;
    let authority = authority(base_url);
    // A token of the new key makes the proxy fetch the new set (an unknown kid).
    let probe = whoami_req(&new, &[]);
    wait_until(
        Duration::from_secs(20),
        "the new key's token to be accepted",
        || {
            let (a, p) = (authority.clone(), probe.clone());
            async move { send(&a, &p).await.ok().filter(|r| r.status == 200) }
        },
    )
    .await
    .map_err(|e| fail(format!("{e}")))?;
    let case = Case::new(
        Category::Tokens,
        "signed by a retired key",
        whoami_req(&old, &[]),
        invalid_token("unknown signing key"),
    );
    run_case(base_url, &case).await
}

/// After everything, the proxy still serves: alice's token reaches whoami as alice, and the
/// OAuth endpoints still answer.
pub async fn still_serving(base_url: &str, ctx: &HostileContext<'_>) -> Result<(), Failure> {
    let c = Case::new(
        Category::Requests,
        "a valid request after the suite",
        whoami_req(&ctx.access_token, &[]),
        Expect::Upstream(vec![("x-mcpgate-sub", Some(ctx.alice_sub.clone()))]),
    );
    run_case(base_url, &c).await?;
    let c = Case::new(
        Category::Requests,
        "metadata after the suite",
        Req::new("POST", "/.well-known/oauth-authorization-server"),
        oauth(405, "invalid_request"),
    );
    run_case(base_url, &c).await
}

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
