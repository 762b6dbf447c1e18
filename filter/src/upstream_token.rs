//! The IdP's token of the signed-in user for the origin (`forward_upstream_token`), carried
//! without a store: the callback seals it into the code's grant, `/token` seals it into the
//! proxy's access token (claim `upt`, XChaCha20-Poly1305 under the ring like every sealed
//! value, so the client holds it but cannot read it), and the guard opens it for the origin.
//!
//! Fresh by construction: `/token` caps the proxy's access token so that it ends (with the
//! leeway the guard allows) a margin before the IdP's token does, and the client's own
//! refresh brings a new one. Only when the IdP's tokens live too briefly for that (under
//! about two minutes: the proxy's tokens live at least 60 s) does the access token also carry
//! the IdP's refresh token, and the guard renews the IdP's token itself once it expires or is
//! within the margin (see `routes::origin_headers`).

use alloc::string::String;
use serde::{Deserialize, Serialize};

use crate::config::UpstreamToken;
use crate::gate::Gate;
use crate::http::Random;
use crate::idp::TokenSet;
use crate::seal::{self, Kind};

/// The JWT claim of the proxy's access token that carries the sealed [`Carried`].
pub const CLAIM: &str = "upt";
/// The guard renews the IdP's token when less than this (or a quarter of its life, when
/// shorter) is left.
pub const MAX_MARGIN: u64 = 30;
/// The proxy's access tokens live at least this long (`/token`'s lower bound).
const MIN_ACCESS_LIFETIME: u64 = 60;

/// The IdP's token of the user as the proxy carries it. `Debug` shows no token.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Carried {
    #[serde(rename = "t")]
    pub token: String,
    /// When it expires (seconds since the epoch).
    #[serde(rename = "e")]
    pub exp: u64,
    /// When the proxy obtained it.
    #[serde(rename = "g")]
    pub obtained: u64,
    /// The IdP's refresh token, only when the guard may have to renew the token itself.
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<String>,
}

impl core::fmt::Debug for Carried {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Carried")
            .field("token", &"<redacted>")
            .field("exp", &self.exp)
            .field("obtained", &self.obtained)
            .field("refresh", &self.refresh.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// How usable a carried token is now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    Fresh,
    /// Still valid, but within the renewal margin.
    Ending,
    Expired,
}

impl Carried {
    /// The renewal margin: [`MAX_MARGIN`], or a quarter of the token's life when shorter.
    pub fn margin(&self) -> u64 {
        MAX_MARGIN.min(self.exp.saturating_sub(self.obtained) / 4)
    }

    pub fn freshness(&self, now: u64) -> Freshness {
        if self.exp <= now {
            Freshness::Expired
        } else if self.exp - now <= self.margin() {
            Freshness::Ending
        } else {
            Freshness::Fresh
        }
    }
}

/// A claim of a JWT's payload, read without verification (`None` for opaque tokens).
fn unverified_claim(token: &str, name: &str) -> Option<serde_json::Value> {
    let mut parts = token.split('.');
    let payload = parts.nth(1)?;
    if parts.count() != 1 || payload.len() > 64 * 1024 {
        return None;
    }
    let bytes = crate::encoding::b64url_decode(payload)?;
    let mut claims: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes).ok()?;
    claims.remove(name)
}

/// The token to forward from what the IdP's token endpoint answered, as configured: its
/// `exp` (the JWT's, else `expires_in`), obtained `now`. `None` when forwarding is off or the
/// IdP sent no such token (an ID token needs the `openid` scope).
pub fn pick(gate: &Gate, tokens: &TokenSet, now: u64) -> Option<Carried> {
    let token = match gate.cfg.forwarding.upstream_token {
        UpstreamToken::None => return None,
        UpstreamToken::Access => tokens.access_token.clone(),
        UpstreamToken::Id => tokens.id_token.clone()?,
    };
    let exp = unverified_claim(&token, "exp")
        .and_then(|e| e.as_u64())
        .unwrap_or_else(|| now + tokens.expires_in.unwrap_or(3600));
    Some(Carried {
        token,
        exp,
        obtained: now,
        refresh: None,
    })
}

/// The IdP's renewed token after the guard's refresh: `None` when the answer lacks it or
/// names another user (`sub` of a JWT; opaque tokens are taken as they come from the IdP's
/// token endpoint over the proxy's authenticated back channel). A rotated refresh token
/// replaces the one carried.
pub fn renewed(
    gate: &Gate,
    tokens: &TokenSet,
    sub: &str,
    before: &Carried,
    now: u64,
) -> Option<Carried> {
    let mut c = pick(gate, tokens, now)?;
    if let Some(claimed) = unverified_claim(&c.token, "sub") {
        if claimed.as_str() != Some(sub) {
            return None;
        }
    }
    if c.exp <= now {
        return None;
    }
    c.refresh = tokens
        .refresh_token
        .clone()
        .or_else(|| before.refresh.clone());
    Some(c)
}

/// The lifetime of a proxy access token carrying `c`, and whether it must carry the IdP's
/// refresh token too: the token ends (leeway included) a margin before `c` does, unless that
/// leaves less than the proxy's minimum; then the guard must be able to renew `c`.
pub fn access_lifetime(gate: &Gate, lifetime: u64, c: &Carried, now: u64) -> (u64, bool) {
    let cap = c
        .exp
        .saturating_sub(now + gate.cfg.leeway_seconds + c.margin());
    if cap >= MIN_ACCESS_LIFETIME {
        (lifetime.min(cap), false)
    } else {
        (lifetime, true)
    }
}

/// The sealed claim value, valid as long as the access token is (its `exp` plus the leeway).
pub fn seal_claim(
    gate: &Gate,
    c: &Carried,
    access_exp: u64,
    random: &mut dyn Random,
) -> Option<String> {
    seal::seal(
        &gate.ring,
        Kind::UpstreamToken,
        c,
        access_exp.saturating_add(gate.cfg.leeway_seconds),
        random,
    )
}

/// The carried token of one of the proxy's access tokens, already verified by the guard.
/// `None` when it carries none (issued before forwarding was turned on, a machine client's).
pub fn from_access_token(gate: &Gate, token: &str, now: u64) -> Option<Carried> {
    let sealed = unverified_claim(token, CLAIM)?;
    seal::unseal(&gate.ring, Kind::UpstreamToken, sealed.as_str()?, now).ok()
}
