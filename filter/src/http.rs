//! The sans-IO boundary: what a host hands the core and what the core answers.
//!
//! A host calls [`crate::Gate::handle`] with a [`Request`] and an [`Env`], then carries out the
//! [`Outcome`]: answer locally, forward upstream, or perform a host call ([`Outcome::Fetch`],
//! [`Outcome::Store`], [`Outcome::NeedKeys`]) and give the result back through
//! [`crate::Gate::resume`], which answers with another outcome.

use alloc::borrow::Cow;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;

use crate::gate::Paused;
use crate::jwt::KeySet;

/// An incoming request. Header names must be lower-case (as Envoy and the Fetch API give them).
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub method: &'a str,
    /// Path and query, as received (`/authorize?client_id=...`).
    pub path: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    /// The body, for routes where [`crate::Gate::body_limit`] said so; empty otherwise.
    pub body: &'a [u8],
    /// The client's IP address as the host saw it (rate limits per address), if known.
    pub client_address: Option<&'a str>,
}

impl<'a> Request<'a> {
    /// The value of a header that must appear at most once.
    pub fn header(&self, name: &str) -> Result<Option<&'a str>, DuplicateHeader> {
        let mut found = None;
        for (k, v) in self.headers {
            if k.eq_ignore_ascii_case(name) {
                if found.is_some() {
                    return Err(DuplicateHeader);
                }
                found = Some(*v);
            }
        }
        Ok(found)
    }

    /// Path without the query string.
    pub fn path_only(&self) -> &'a str {
        self.path.split_once('?').map_or(self.path, |(p, _)| p)
    }

    pub fn query(&self) -> &'a str {
        self.path.split_once('?').map_or("", |(_, q)| q)
    }
}

/// A header that must appear once appeared more often.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DuplicateHeader;

/// A response the host sends to the client as is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// For metrics and logs only, never sent: why a request was refused (`"expired"`,
    /// `"missing_token"`, `"invalid_grant"`, …); `None` for successful answers.
    pub reason: Option<&'static str>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Let the request continue to the upstream MCP server, with these header changes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Forward {
    /// Headers to remove first (the client's `Authorization`, spoofed identity headers):
    /// borrowed from a constant when that is all there is to remove (a guarded request
    /// without spoofed headers allocates nothing for it, [`Forward::remove`]).
    pub remove_headers: Cow<'static, [Cow<'static, str>]>,
    /// The verified identity's headers, set afterwards: built once per verified token and
    /// shared with the token cache, so a cache hit copies none of them (`None` on paths that
    /// forward no identity: an empty `Rc` slice would be an allocation per request).
    pub identity_headers: Option<Rc<[(String, String)]>>,
    /// The other headers to set (the `cookie` header without the proxy's cookies, the IdP's
    /// token, the identity assertion). Every name set is different from the others (the
    /// configuration's rule), so the order of the writes does not matter.
    pub set_headers: Vec<(String, String)>,
    /// The path and query to send upstream instead of the received ones: the canonical path
    /// the core checked (see [`crate::path`]), set only when it differs from the request's.
    pub path: Option<String>,
    /// Headers to set on the origin's response before it goes back to the client (CORS for
    /// browser-based clients).
    pub response_headers: Vec<(String, String)>,
    /// The origin's answer is a `tools/list` answer to cut down to the tools the caller may
    /// call (`filter_tools_list`): hosts pass its body through this filter.
    pub list_filter: Option<crate::tools_list::ListFilter>,
}

impl Forward {
    /// Removes `name` too. The guard's usual case, the token alone, is a constant list.
    pub(crate) fn remove(&mut self, name: &'static str) {
        const AUTHORIZATION: &[Cow<'static, str>] = &[Cow::Borrowed("authorization")];
        if self.remove_headers.is_empty() && name == "authorization" {
            self.remove_headers = Cow::Borrowed(AUTHORIZATION);
        } else {
            self.remove_headers.to_mut().push(Cow::Borrowed(name));
        }
    }

    /// Every header to set on the request to the origin.
    pub fn headers_to_set(&self) -> impl Iterator<Item = &(String, String)> {
        self.identity_headers
            .iter()
            .flat_map(|h| h.iter())
            .chain(&self.set_headers)
    }
}

/// An outbound HTTP request the core needs (IdP token endpoint, JWKS, CIMD document).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Largest response body the core will look at; the host may stop reading beyond it.
    pub max_response_bytes: usize,
    /// The host may answer from an HTTP cache that honours the response's `Cache-Control`
    /// (Client ID Metadata Documents).
    pub cacheable: bool,
}

/// What came back from an [`HttpRequest`]. `status` 0 means the host could not get an
/// answer at all (connection failure, timeout).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// An operation on the optional store (see [`crate::store`] for the rules every store
/// applies). When the store cannot answer, the host resumes with [`Reply::StoreFailed`] and
/// the core decides what that means for the request: noted per operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreOp {
    /// Create `key` unless it exists, expiring after `ttl` seconds. Replies whether it was
    /// created (true: first use). Authorization codes. Failure: the code is refused with a
    /// 503 the client may retry (fails closed, nothing is spent).
    PutIfAbsent { key: String, ttl: u64 },
    /// A refresh-token family's record: when it holds generation `from` (or does not exist:
    /// never rotated, or lost), it now holds `from + 1`, expiring after `ttl`. Replies
    /// whether it advanced; false means a rotated-out refresh token came back (or the family
    /// is revoked). Failure: the refresh is refused with a 503 (fails closed).
    Advance { key: String, from: u64, ttl: u64 },
    /// Marks a refresh-token family revoked (its refresh tokens and its access tokens), for at
    /// least `ttl` seconds. Replies true once recorded. Failure: `/revoke` answers as if
    /// there were no store (the IdP's revocation, or a 503).
    Revoke { key: String, ttl: u64 },
    /// Replies whether a family is revoked. Read on every request of the proxy's own access
    /// tokens, so a store must answer it from one small record. Failure: not revoked (the
    /// MCP path keeps working when the store does not).
    IsRevoked { key: String },
    /// Takes one token from the rate-limit bucket `key`, which holds at most `capacity`
    /// tokens and refills evenly at `capacity` per `period` seconds (see
    /// [`crate::store::Bucket`]). Replies whether a token was available. Failure: allowed
    /// (a limiter fails open: it must not lock users out).
    Take {
        key: String,
        capacity: u32,
        period: u64,
    },
}

/// What the host brings back to [`crate::Gate::resume`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Http(HttpResponse),
    /// The answer to a [`StoreOp`]: `true` = created / advanced / recorded / revoked / taken.
    Store(bool),
    /// The store could not answer the [`StoreOp`] (error, timeout, no room).
    StoreFailed,
    /// The host refreshed (or decided not to refresh) the IdP's keys; the new set, if any,
    /// is in the [`Env`] passed to `resume`.
    Keys,
}

/// The core's answer for one step of a request.
#[derive(Debug)]
pub enum Outcome {
    Respond(Response),
    Forward(Forward),
    /// Perform the request, then `resume` with [`Reply::Http`].
    Fetch {
        request: HttpRequest,
        paused: Paused,
    },
    /// Perform the store operation, then `resume` with [`Reply::Store`] (or
    /// [`Reply::StoreFailed`]).
    Store {
        op: StoreOp,
        paused: Paused,
    },
    /// A token names a key the host's copy of the IdP's key set lacks (or there is none):
    /// refresh it if allowed (rate limited), then `resume` with [`Reply::Keys`].
    NeedKeys {
        paused: Paused,
    },
}

/// A source of cryptographically secure random bytes, provided by the host.
pub trait Random {
    fn fill(&mut self, buf: &mut [u8]);
}

/// Per-call facts from the host: the time, randomness and read-only cached state.
pub struct Env<'a> {
    /// Seconds since the Unix epoch.
    pub now: u64,
    pub random: &'a mut dyn Random,
    /// The IdP's current key set, if the host has one.
    pub upstream_keys: Option<&'a KeySet>,
    /// Whether a store is configured: when false, no [`Outcome::Store`] is ever produced.
    pub store: bool,
    /// A native RSA verifier (Envoy's `verify_signature`), if the host has one.
    pub native_rsa: Option<&'a dyn crate::jwt::NativeRsa>,
    /// The host's verified-token cache (one per VM / isolate), if it keeps one.
    pub cache: Option<&'a mut crate::token_cache::TokenCache>,
}
