//! mcpgate's core: a `no_std`, sans-IO OAuth 2.1 proxy and bearer-token guard for MCP servers.
//!
//! The core performs no I/O and reads no clock or entropy of its own: hosts (the Envoy
//! proxy-wasm filter, the Cloudflare Worker) hand it requests, the time and random bytes, and
//! carry out what it answers.
#![no_std]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

extern crate alloc;

pub mod access_token;
pub mod assertion;
pub mod client_auth;
pub mod config;
pub mod encoding;
pub mod form;
pub mod gate;
pub mod glob;
pub mod host;
pub mod http;
pub mod http_cache;
pub mod idp;
pub mod jwt;
pub mod keys;
pub mod mcp_request;
pub mod path;
pub mod pkce;
#[cfg(feature = "os-random")]
pub mod random;
pub mod records;
pub mod redirect_scheme;
pub mod redirect_uri;
pub mod respond;
mod routes;
pub mod seal;
pub mod store;
#[cfg(test)]
mod testutil;
pub mod token_cache;
pub mod tools_list;
pub mod upstream_token;

pub use config::Config;
pub use gate::{Gate, Paused};
pub use http::{
    Env, Forward, HttpRequest, HttpResponse, Outcome, Random, Reply, Request, Response, StoreOp,
};
