//! Configuration from environment-style variables (Worker vars and secrets, the shell of
//! `run-local.sh`, Envoy's VM environment): `MCPGATE_<KEY>`, with the reference's
//! `FASTMCP_SERVER_AUTH_AWS_COGNITO_<KEY>` names as fallbacks where [`super::keys`] says so.

use alloc::string::{String, ToString};
use serde_json::{Map, Value};

use super::keys::{self, Kind, SCHEMA, UPSTREAM_KEYS};
use super::{parse_map, ConfigError, EnvLookup, Parsed};

/// The reference implementation's variable prefixes, accepted as fallbacks in this order
/// (FastMCP 2.13+ reads its `AWSCognitoDCRProvider` settings from the `…_DCR_` names first).
const FASTMCP_PREFIXES: &[&str] = &[
    "FASTMCP_SERVER_AUTH_AWS_COGNITO_DCR_",
    "FASTMCP_SERVER_AUTH_AWS_COGNITO_",
];

/// The environment variable that carries `key` (`upstream.issuer` → `MCPGATE_UPSTREAM_ISSUER`).
pub fn env_name(key: &str) -> String {
    let mut out = String::from("MCPGATE_");
    out.extend(key.chars().map(|c| {
        if c == '.' {
            '_'
        } else {
            c.to_ascii_uppercase()
        }
    }));
    out
}

/// Builds the configuration from environment-style variables (Worker vars and secrets,
/// shell environment): every key as `MCPGATE_<KEY>` (`MCPGATE_UPSTREAM_<KEY>` for the
/// `upstream` object), with the reference's `FASTMCP_SERVER_AUTH_AWS_COGNITO_*` names as
/// fallbacks. Lists may be comma/space separated or JSON; objects are JSON. Errors name the
/// variable. `host_keys` are read the same way and returned as strings.
pub fn from_vars(get: EnvLookup, host_keys: &[&str]) -> Result<Parsed, ConfigError> {
    let mut map = Map::new();
    let fallback = |key: &str| {
        FASTMCP_PREFIXES.iter().find_map(|prefix| {
            get(&alloc::format!("{prefix}{}", key.to_ascii_uppercase())).filter(|v| !v.is_empty())
        })
    };
    // The core's keys as the table says; host keys are read as text (hosts parse them).
    let core = SCHEMA
        .iter()
        .filter(|k| k.kind != Kind::Upstream)
        .map(|k| (k.name, k.kind, k.fastmcp));
    let host = host_keys
        .iter()
        .filter(|k| keys::find(k).is_none())
        .map(|k| (*k, Kind::Text, false));
    for (key, kind, fastmcp) in core.chain(host) {
        let raw = get(&env_name(key)).or_else(|| fastmcp.then(|| fallback(key)).flatten());
        let Some(raw) = raw.filter(|v| !v.is_empty()) else {
            continue;
        };
        let value = match kind {
            Kind::List if raw.trim_start().starts_with('[') => serde_json::from_str(&raw)
                .map_err(|_| ConfigError::new(&env_name(key), "is not a JSON list"))?,
            Kind::List => Value::Array(
                raw.split([',', ' '])
                    .filter(|s| !s.is_empty())
                    .map(|s| Value::String(s.into()))
                    .collect(),
            ),
            Kind::Json => serde_json::from_str(&raw)
                .map_err(|_| ConfigError::new(&env_name(key), "is not valid JSON"))?,
            Kind::Bool => match raw.trim() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => return Err(ConfigError::new(&env_name(key), "must be true or false")),
            },
            Kind::Int => Value::Number(
                raw.trim()
                    .parse::<u64>()
                    .map_err(|_| ConfigError::new(&env_name(key), "must be a whole number"))?
                    .into(),
            ),
            Kind::Text | Kind::Upstream => Value::String(raw),
        };
        map.insert(key.to_string(), value);
    }
    let mut upstream = Map::new();
    for key in UPSTREAM_KEYS {
        if let Some(v) = get(&env_name(&alloc::format!("upstream.{key}"))).filter(|v| !v.is_empty())
        {
            upstream.insert((*key).to_string(), Value::String(v));
        }
    }
    if !upstream.is_empty() {
        map.insert("upstream".into(), Value::Object(upstream));
    }
    parse_map(map, host_keys, get).map_err(|e| {
        let root = e.key.split(['.', '[']).next().unwrap_or("");
        let name = if e.key.starts_with("upstream.") || e.key == root {
            env_name(&e.key)
        } else {
            alloc::format!("{} ({})", env_name(root), e.key)
        };
        ConfigError {
            key: name,
            problem: e.problem,
        }
    })
}
