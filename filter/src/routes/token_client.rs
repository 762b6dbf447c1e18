//! Who is asking at `/token`, for clients identified by a Client ID Metadata Document: the
//! document (fetched again, cacheable) says how the client authenticates. `none` needs
//! nothing; `private_key_jwt` needs an RFC 7523 assertion, verified against the document's
//! `jwks` or the key set at its `jwks_uri` ([`crate::client_auth`]) and used once (its `jti`
//! recorded in the store, when there is one). A client whose document lists both may send
//! either (ChatGPT: `token_endpoint_auth_methods_supported`).
//!
//! Once the client is authenticated, the grant is handled as for any client
//! ([`super::token::grant`]). Registered (DCR) clients never reach this module unless they
//! send an assertion, which they cannot have: they are public.

use alloc::format;
use alloc::string::{String, ToString};
use sha2::{Digest, Sha256};

use super::cimd::{self, Document, Keys};
use super::{token, PausedAt};
use crate::client_auth::{self, Expect, ASSERTION_TYPE};
use crate::encoding::b64url_encode;
use crate::form::Params;
use crate::gate::Gate;
use crate::http::{Env, HttpResponse, Outcome, Reply, Request, StoreOp};
use crate::jwt::jwks::MAX_JWKS_BYTES;
use crate::jwt::KeySet;
use crate::respond::{self, oauth_error};

/// The token request, kept while the client's document, keys and `jti` are looked up.
#[derive(Debug)]
pub struct Pending {
    /// The form body, parsed again once the client is known.
    body: String,
    client_id: String,
    assertion: Option<String>,
    signing_alg: Option<String>,
}

/// Paused on a host call.
#[derive(Debug)]
pub enum Paused {
    /// The client's metadata document (reply: HTTP).
    Document(Pending),
    /// The key set at the document's `jwks_uri` (reply: HTTP).
    Keys(Pending),
    /// The assertion's `jti` was recorded (reply: created?).
    Jti(Pending),
}

fn invalid_client(description: &str) -> Outcome {
    let mut r = oauth_error(401, "invalid_client", description);
    r.reason = Some("invalid_client");
    Outcome::Respond(r)
}

fn unavailable(what: &str) -> Outcome {
    Outcome::Respond(respond::unavailable(what))
}

/// Takes over a `/token` request whose client is a metadata document URL or which carries a
/// client assertion; `None` leaves it to the ordinary client handling.
pub(super) fn intercept(gate: &Gate, req: &Request, form: &Params) -> Option<Outcome> {
    let assertion = match (
        form.get("client_assertion_type"),
        form.get("client_assertion"),
    ) {
        (None, None) => None,
        (Some(ASSERTION_TYPE), Some(a)) => Some(a),
        (Some(_), Some(_)) => return Some(invalid_client(
            "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        )),
        _ => {
            return Some(Outcome::Respond(oauth_error(
                400,
                "invalid_request",
                "client_assertion and client_assertion_type go together",
            )))
        }
    };
    let client_id = match assertion {
        Some(a) => {
            if req.header("authorization").ok().flatten().is_some() {
                return Some(Outcome::Respond(oauth_error(
                    400,
                    "invalid_request",
                    "one client authentication method at a time (RFC 6749 §2.3)",
                )));
            }
            let claimed = match client_auth::claimed_client(a) {
                Ok(c) => c,
                Err(e) => return Some(invalid_client(e.description())),
            };
            if form.get("client_id").is_some_and(|c| c != claimed) {
                return Some(invalid_client(
                    "client_id differs from the client_assertion's issuer",
                ));
            }
            claimed
        }
        None => form.get("client_id")?.to_string(),
    };
    if !cimd::is_document_url(gate, &client_id) {
        return assertion.map(|_| {
            invalid_client(
                "client assertions are accepted only from clients identified by a metadata \
                 document URL",
            )
        });
    }
    if let Err(e) = cimd::check_url(gate, &client_id) {
        return Some(invalid_client(e));
    }
    let body = core::str::from_utf8(req.body).unwrap_or("").to_string();
    let pending = Pending {
        body,
        client_id: client_id.clone(),
        assertion: assertion.map(String::from),
        signing_alg: None,
    };
    Some(Outcome::Fetch {
        request: cimd::fetch(&client_id, cimd::MAX_CIMD_BYTES),
        paused: PausedAt::TokenClient(Paused::Document(pending)).into(),
    })
}

pub(super) fn resume(gate: &Gate, paused: Paused, reply: Reply, env: &mut Env) -> Outcome {
    match (paused, reply) {
        (Paused::Document(p), Reply::Http(resp)) => with_document(gate, p, &resp, env),
        (Paused::Keys(p), Reply::Http(resp)) => {
            if crate::idp::unavailable(resp.status) {
                return unavailable("the client's key set could not be fetched; try again");
            }
            match (resp.status, KeySet::from_json(&resp.body)) {
                (200, Ok(keys)) if !keys.is_empty() => with_keys(gate, p, &keys, env),
                _ => invalid_client("the client's jwks_uri has no usable key set"),
            }
        }
        (Paused::Jti(p), Reply::Store(first)) => {
            if first {
                authenticated(gate, &p, env)
            } else {
                invalid_client("client_assertion already used")
            }
        }
        _ => Outcome::Respond(oauth_error(500, "server_error", "unexpected host reply")),
    }
}

fn with_document(gate: &Gate, mut p: Pending, resp: &HttpResponse, env: &mut Env) -> Outcome {
    if crate::idp::unavailable(resp.status) {
        return unavailable("the client's metadata document could not be fetched; try again");
    }
    let doc: Document = match cimd::document(gate, &p.client_id, resp) {
        Ok(d) => d,
        Err(e) => return invalid_client(e),
    };
    if p.assertion.is_none() {
        return if doc.allows_none {
            authenticated(gate, &p, env)
        } else {
            invalid_client(
                "this client authenticates with private_key_jwt: client_assertion is required",
            )
        };
    }
    if !doc.allows_jwt {
        return invalid_client("this client's metadata document does not allow private_key_jwt");
    }
    p.signing_alg = doc.signing_alg;
    match doc.keys {
        Keys::Inline(keys) => with_keys(gate, p, &keys, env),
        Keys::Uri(uri) => Outcome::Fetch {
            request: cimd::fetch(&uri, MAX_JWKS_BYTES),
            paused: PausedAt::TokenClient(Paused::Keys(p)).into(),
        },
        Keys::None => invalid_client("this client's metadata document publishes no keys"),
    }
}

fn digest(s: &str) -> String {
    b64url_encode(Sha256::digest(s.as_bytes()).get(..16).unwrap_or(&[]))
}

fn with_keys(gate: &Gate, p: Pending, keys: &KeySet, env: &mut Env) -> Outcome {
    let Some(assertion) = p.assertion.as_deref() else {
        return invalid_client("client_assertion is required");
    };
    let token_endpoint = format!("{}/token", gate.cfg.base_url);
    let audiences = [gate.cfg.issuer_url.as_str(), token_endpoint.as_str()];
    let expect = Expect {
        client_id: &p.client_id,
        audiences: &audiences,
        algorithm: p.signing_alg.as_deref(),
        now: env.now,
        leeway: gate.cfg.leeway_seconds,
    };
    let verified = match client_auth::verify(assertion, keys, &expect, env.native_rsa) {
        Ok(v) => v,
        Err(e) => return invalid_client(e.description()),
    };
    if !env.store {
        return authenticated(gate, &p, env);
    }
    let ttl = verified
        .exp
        .saturating_add(gate.cfg.leeway_seconds)
        .saturating_sub(env.now)
        .max(1);
    Outcome::Store {
        op: StoreOp::PutIfAbsent {
            key: format!(
                "mcpgate:jti:{}:{}",
                digest(&p.client_id),
                digest(&verified.jti)
            ),
            ttl,
        },
        paused: PausedAt::TokenClient(Paused::Jti(p)).into(),
    }
}

/// The client is who it says: on to the grant.
fn authenticated(gate: &Gate, p: &Pending, env: &mut Env) -> Outcome {
    match Params::parse(&p.body) {
        Ok(form) => token::grant(gate, &form, &p.client_id, env),
        Err(e) => Outcome::Respond(super::form_error(e)),
    }
}
