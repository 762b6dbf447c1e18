//! The Envoy host's configuration keys, read next to the core's keys from the plugin JSON:
//! the keys every host has (`idp_timeout_ms`, `jwks_*`: the core's
//! [`mcpgate_filter::host::keys`]) and the Envoy-only ones below.
//!
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `clusters` | (required) | URL authority (`host` or `host:port`) → Envoy cluster name, for every IdP URL |
//! | `store` | `"shared_data"` | one-time-use / revocation / rate-limit store: `"shared_data"` (per Envoy process), `"dynamodb"` (shared by a fleet, see [`crate::dynamodb`]) or `"none"` |
//! | `dynamodb` | — | with `store: "dynamodb"`: `table`, `region`, optional `endpoint`, `sts_endpoint`, `timeout_ms`, `revocation_poll_ms`, `files_cluster` ([`DynamoConfig`]) |
//! | `native_rsa` | `true` | verify RS256 with Envoy's `verify_signature` (native BoringSSL); `false` forces the pure-Rust path (benchmarks) |
//! | `cimd_cluster` | — | a dynamic forward proxy cluster (`envoy.clusters.dynamic_forward_proxy`) for Client ID Metadata Documents and their `jwks_uri` on hosts without a cluster in `clusters`; without it (and without a cluster for every `cimd` host) metadata documents are off |
//! | `allow_on_headers_stop_iteration` | `false` | the operator declares that the Wasm filter's `PluginConfig` sets `allow_on_headers_stop_iteration: true` (Envoy ≥ 1.35); without it the OAuth POST routes are refused (see [`crate::body_mode`]) |

use std::collections::BTreeMap;

use mcpgate_filter::config::{Config, ConfigError};
use mcpgate_filter::host::keys::{CommonHostKeys, COMMON_HOST_KEYS};
use serde_json::Value;

use crate::dynamodb::DynamoConfig;

/// The Envoy-only keys, read next to [`COMMON_HOST_KEYS`].
pub const ENVOY_KEYS: &[&str] = &[
    "clusters",
    "store",
    "native_rsa",
    "allow_on_headers_stop_iteration",
    "cimd_cluster",
    "dynamodb",
];

/// Every host key this host reads from the plugin configuration.
pub fn host_keys() -> Vec<&'static str> {
    COMMON_HOST_KEYS.iter().chain(ENVOY_KEYS).copied().collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    SharedData,
    DynamoDb,
    None,
}

#[derive(Clone, Debug)]
pub struct HostConfig {
    /// URL authority → cluster name.
    pub clusters: BTreeMap<String, String>,
    /// IdP timeout and key-set freshness (the core's host kit).
    pub common: CommonHostKeys,
    pub store: StoreKind,
    pub native_rsa: bool,
    /// The operator's word that Envoy stops this filter at the request headers and still hands
    /// it the body (`PluginConfig.allow_on_headers_stop_iteration`).
    pub allow_on_headers_stop_iteration: bool,
    /// The cluster for URLs whose authority has none in `clusters` (metadata documents).
    pub cimd_cluster: Option<String>,
    /// The fleet store's settings (`store: "dynamodb"`).
    pub dynamodb: Option<DynamoConfig>,
}

/// A boolean key; from environment variables it arrives as the text `true` or `false`.
fn boolean(host: &BTreeMap<String, Value>, key: &str, default: bool) -> Result<bool, ConfigError> {
    match host.get(key) {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s.trim() == "true" => Ok(true),
        Some(Value::String(s)) if s.trim() == "false" => Ok(false),
        Some(_) => Err(err(key, "must be true or false")),
    }
}

fn err(key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.to_string(),
        problem: problem.into(),
    }
}

/// `scheme://authority/...` → (scheme, authority, path-and-query). `None` for anything else.
pub fn split_url(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (rest.get(..i)?, rest.get(i..)?),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return None;
    }
    Some((scheme, authority, path))
}

impl HostConfig {
    /// Reads and validates the host keys; every IdP URL of `config` must have a cluster.
    pub fn parse(host: &BTreeMap<String, Value>, config: &Config) -> Result<Self, ConfigError> {
        let mut clusters = BTreeMap::new();
        // From environment variables (`MCPGATE_CLUSTERS`) the object arrives as JSON text.
        let from_text = match host.get("clusters") {
            Some(Value::String(text)) => Some(
                serde_json::from_str::<Value>(text)
                    .map_err(|_| err("clusters", "must be a JSON object"))?,
            ),
            _ => None,
        };
        match from_text.as_ref().or(host.get("clusters")) {
            None => {}
            Some(Value::Object(m)) => {
                for (authority, cluster) in m {
                    let key = format!("clusters.{authority}");
                    let valid_authority = !authority.is_empty()
                        && authority
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b));
                    if !valid_authority {
                        return Err(err(&key, "must be a URL authority like host or host:port"));
                    }
                    match cluster {
                        Value::String(c) if !c.is_empty() => {
                            clusters.insert(authority.to_ascii_lowercase(), c.clone());
                        }
                        _ => return Err(err(&key, "must be a non-empty Envoy cluster name")),
                    }
                }
            }
            Some(_) => {
                return Err(err(
                    "clusters",
                    "must be an object of URL authority → Envoy cluster name",
                ))
            }
        }
        let up = &config.upstream;
        let mut needed: Vec<(&str, &str)> = vec![
            ("upstream.token_endpoint", up.token_endpoint.as_str()),
            ("upstream.jwks_uri", up.jwks_uri.as_str()),
        ];
        if let Some(u) = &up.revocation_endpoint {
            needed.push(("upstream.revocation_endpoint", u.as_str()));
        }
        if let Some(u) = &up.userinfo_endpoint {
            needed.push(("upstream.userinfo_endpoint", u.as_str()));
        }
        for (name, url) in needed {
            let Some((_, authority, _)) = split_url(url) else {
                return Err(err(name, "must be an http(s) URL"));
            };
            if !clusters.contains_key(&authority.to_ascii_lowercase()) {
                return Err(err(
                    "clusters",
                    format!("no Envoy cluster for {authority} (needed by {name})"),
                ));
            }
        }
        let store = match host.get("store") {
            None => StoreKind::SharedData,
            Some(Value::String(s)) if s == "shared_data" => StoreKind::SharedData,
            Some(Value::String(s)) if s == "dynamodb" => StoreKind::DynamoDb,
            Some(Value::String(s)) if s == "none" => StoreKind::None,
            Some(_) => {
                return Err(err(
                    "store",
                    "must be \"shared_data\", \"dynamodb\" or \"none\"",
                ))
            }
        };
        let dynamodb = match store {
            StoreKind::DynamoDb => Some(DynamoConfig::parse(host.get("dynamodb"))?),
            _ if host.contains_key("dynamodb") => {
                return Err(err("dynamodb", "is only read with store \"dynamodb\""))
            }
            _ => None,
        };
        Ok(Self {
            clusters,
            common: CommonHostKeys::parse(host)?,
            store,
            native_rsa: boolean(host, "native_rsa", true)?,
            allow_on_headers_stop_iteration: boolean(
                host,
                "allow_on_headers_stop_iteration",
                false,
            )?,
            cimd_cluster: match host.get("cimd_cluster") {
                None => None,
                Some(Value::String(c)) if !c.is_empty() => Some(c.clone()),
                Some(_) => return Err(err("cimd_cluster", "must be an Envoy cluster name")),
            },
            dynamodb,
        })
    }

    /// The cluster serving `url`, with the URL's scheme, authority and path: the one named
    /// for its authority in `clusters`, else `cimd_cluster` (which resolves the authority).
    pub fn route<'u>(&self, url: &'u str) -> Option<(&str, &'u str, &'u str, &'u str)> {
        let (scheme, authority, path) = split_url(url)?;
        let cluster = self
            .clusters
            .get(&authority.to_ascii_lowercase())
            .or(self.cimd_cluster.as_ref())?;
        Some((cluster.as_str(), scheme, authority, path))
    }
}
