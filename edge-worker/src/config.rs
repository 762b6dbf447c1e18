//! Configuration from the Worker's vars and secrets: the core's keys (`MCPGATE_*`, and the
//! reference's `FASTMCP_SERVER_AUTH_AWS_COGNITO_*` names) through
//! [`mcpgate_filter::config::from_vars`], plus the Worker-only keys below.
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `MCPGATE_ORIGIN_URL` | (required) | the MCP server authenticated requests are forwarded to (`https://origin.example`, no path) |
//! | `MCPGATE_IDP_TIMEOUT_MS` | 5000 | timeout of each call to the IdP (token exchange, JWKS, CIMD) |
//! | `MCPGATE_JWKS_REFRESH_SECONDS` | 600 | refresh the IdP's JWKS when older than this |
//! | `MCPGATE_JWKS_MAX_STALE_SECONDS` | 86400 | keep serving the last good JWKS this long while refreshes fail |
//! | `MCPGATE_JWKS_MIN_REFETCH_SECONDS` | 30 | at most one refetch per this period for tokens naming an unknown `kid` |
//! | `MCPGATE_STORE_SHARDS` | 1 | Durable Object instances the store is spread over (by key hash) |
//!
//! The one-time-use store is on when the Durable Object binding [`STORE_BINDING`] exists.
//! The origin's host is added to the core's `cimd_denied_hosts`.

use std::collections::BTreeMap;

use mcpgate_filter::config::{env_name, from_vars, ConfigError};
use mcpgate_filter::host::keys::{uint, CommonHostKeys, COMMON_HOST_KEYS};
use mcpgate_filter::Gate;
use serde_json::Value;

/// The Worker's own keys, read like the core's (`origin_url` ← `MCPGATE_ORIGIN_URL`), next to
/// the host keys every host has ([`COMMON_HOST_KEYS`]).
pub const WORKER_KEYS: &[&str] = &["origin_url", "store_shards"];

/// Name of the Durable Object namespace binding of the store (`wrangler.toml`).
pub const STORE_BINDING: &str = "MCPGATE_STORE";

#[derive(Clone, Debug)]
pub struct HostConfig {
    /// `scheme://authority` of the MCP server, without a trailing slash.
    pub origin_url: String,
    /// IdP timeout and key-set freshness (the core's host kit).
    pub common: CommonHostKeys,
    pub store_shards: u32,
}

fn err(key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        key: env_name(key),
        problem: problem.into(),
    }
}

impl HostConfig {
    pub fn parse(host: &BTreeMap<String, Value>) -> Result<Self, ConfigError> {
        let origin = match host.get("origin_url") {
            Some(Value::String(s)) => s.trim().trim_end_matches('/').to_string(),
            Some(_) => return Err(err("origin_url", "must be a URL")),
            None => return Err(err("origin_url", "is required")),
        };
        let valid = origin.split_once("://").is_some_and(|(scheme, rest)| {
            (scheme == "https" || scheme == "http")
                && !rest.is_empty()
                && !rest.contains(['/', '?', '#', ' '])
        });
        if !valid {
            return Err(err(
                "origin_url",
                "must be an http(s) URL without path, like https://mcp.internal.example",
            ));
        }
        // Errors name the variable (`MCPGATE_JWKS_REFRESH_SECONDS`), never the value.
        let named = |e: ConfigError| err(&e.key, e.problem);
        let common = CommonHostKeys::parse(host).map_err(named)?;
        let store_shards = u32::try_from(uint(host, "store_shards", 1, 1, 256).map_err(named)?)
            .map_err(|_| err("store_shards", "must be an integer from 1 to 256"))?;
        Ok(Self {
            origin_url: origin,
            common,
            store_shards,
        })
    }
}

/// Builds the core and the host settings from `lookup` (the Worker's vars and secrets).
/// Errors name the variable, never its value.
pub fn load(lookup: &dyn Fn(&str) -> Option<String>) -> Result<(Gate, HostConfig), ConfigError> {
    let keys: Vec<&str> = COMMON_HOST_KEYS
        .iter()
        .chain(WORKER_KEYS)
        .copied()
        .collect();
    let mut parsed = from_vars(lookup, &keys)?;
    let host = HostConfig::parse(&parsed.host)?;
    // The core never fetches a Client ID Metadata Document from the origin's host: that
    // would be a request straight to the origin, past the guard.
    if let Some(origin_host) = mcpgate_filter::redirect_uri::url_host(&host.origin_url) {
        parsed.config.cimd_denied_hosts.push(origin_host);
    }
    let gate = Gate::new(parsed.config).map_err(|e| ConfigError {
        key: env_name(&e.key),
        problem: e.problem,
    })?;
    Ok((gate, host))
}
