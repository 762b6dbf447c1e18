//! The state the proxy keeps in sealed values instead of a store, and how long each lives.

use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// A pending authorization lives 10 minutes (consent page to callback), as the MCP security
/// best practices advise.
pub const TRANSACTION_SECONDS: u64 = 10 * 60;
/// The proxy's authorization codes live 5 minutes.
pub const CODE_SECONDS: u64 = 5 * 60;
/// Remembered consent approvals live a year; at most this many clients are remembered.
pub const APPROVALS_SECONDS: u64 = 365 * 86_400;
pub const MAX_APPROVALS: usize = 20;
/// Registered clients do not expire (like the reference); sealed with this expiry.
pub const NEVER: u64 = u64::MAX;

/// A dynamically registered client, sealed into its `client_id`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClientRecord {
    #[serde(rename = "r")]
    pub redirect_uris: Vec<String>,
    #[serde(rename = "n", default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "i")]
    pub issued_at: u64,
}

/// An authorization in progress: sealed into the consent form, then into the IdP `state`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Transaction {
    /// Random id binding the browser (consent cookie) to this transaction.
    pub txn: String,
    pub client_id: String,
    pub client_name: Option<String>,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub scope: String,
    pub state: Option<String>,
    pub resource: String,
    /// The proxy's own PKCE verifier towards the IdP.
    pub upstream_verifier: String,
}

/// Binds the browser that approved consent to the transaction (cookie).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Binding {
    pub txn: String,
    pub client_id: String,
}

/// What a user granted a client: carried by codes and refresh tokens.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Grant {
    pub client_id: String,
    pub scope: String,
    pub resource: String,
    pub sub: String,
    pub username: Option<String>,
    pub groups: Vec<String>,
    pub email: Option<String>,
    /// Claims copied to headers (`claim_headers`), kept for the proxy's tokens.
    pub extra: Vec<(String, String)>,
    /// The IdP refresh token, never shown to the client in clear.
    pub upstream_refresh: Option<String>,
    /// Seconds the IdP's access token lives (bounds the proxy's access tokens).
    pub upstream_expires_in: u64,
    /// Refresh-token family: all rotations of one login share it (and the access tokens
    /// issued from them carry it as `sid`, so revoking the family revokes them too).
    pub family: String,
    /// This value's own id (single use).
    pub jti: String,
    /// The refresh token's place in its family: 0 for the one issued with the code, then one
    /// more per rotation. With a store, only the family's current generation refreshes.
    #[serde(default)]
    pub generation: u64,
    /// The IdP's token to forward to the origin (`forward_upstream_token`), from the callback
    /// or the last refresh to the next access token; never sealed into a refresh token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<crate::upstream_token::Carried>,
}

/// The proxy's authorization code.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Code {
    pub grant: Grant,
    pub redirect_uri: String,
    pub code_challenge: String,
}

/// Clients whose consent is remembered (`consent: remember`), as short digests.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Approvals(pub Vec<String>);
