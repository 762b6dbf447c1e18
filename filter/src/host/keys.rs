//! The host keys every host reads next to the core's (how long IdP calls may take, how fresh
//! the IdP's key set is kept), with their defaults and bounds in one place. Each host adds
//! its own keys (Envoy: `clusters`, `store`; the Worker: `origin_url`, `store_shards`).

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use serde_json::Value;

use crate::config::ConfigError;

/// The host keys every host understands.
pub const COMMON_HOST_KEYS: &[&str] = &[
    "idp_timeout_ms",
    "jwks_refresh_seconds",
    "jwks_max_stale_seconds",
    "jwks_min_refetch_seconds",
];

/// How the IdP's key set is kept fresh (seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JwksTimes {
    /// Refresh when the set is older than this.
    pub refresh: u64,
    /// While refreshes fail, keep using the last good set this long; then none.
    pub max_stale: u64,
    /// A token naming an unknown `kid` triggers a refetch at most once per this period.
    pub min_refetch: u64,
}

impl Default for JwksTimes {
    fn default() -> Self {
        Self {
            refresh: 600,
            max_stale: 86_400,
            min_refetch: 30,
        }
    }
}

/// The host keys every host shares, validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommonHostKeys {
    /// Timeout of each call to the IdP (token endpoint, JWKS, CIMD documents).
    pub idp_timeout_ms: u64,
    pub jwks: JwksTimes,
}

fn err(key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.to_string(),
        problem: problem.into(),
    }
}

/// An integer host key from `min` to `max`. Values from environment variables arrive as
/// strings and are accepted as such.
pub fn uint(
    host: &BTreeMap<String, Value>,
    key: &str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    match host.get(key) {
        None => Ok(default),
        Some(v) => v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| err(key, format!("must be an integer from {min} to {max}"))),
    }
}

impl CommonHostKeys {
    /// Reads the keys of [`COMMON_HOST_KEYS`] from a host-key map (see
    /// [`crate::config::Parsed::host`]). Errors name the key as written in the map.
    pub fn parse(host: &BTreeMap<String, Value>) -> Result<Self, ConfigError> {
        let d = JwksTimes::default();
        let refresh = uint(host, "jwks_refresh_seconds", d.refresh, 1, 86_400)?;
        let max_stale = uint(host, "jwks_max_stale_seconds", d.max_stale, 1, 30 * 86_400)?;
        if max_stale < refresh {
            return Err(err(
                "jwks_max_stale_seconds",
                "must not be smaller than jwks_refresh_seconds",
            ));
        }
        Ok(Self {
            idp_timeout_ms: uint(host, "idp_timeout_ms", 5000, 100, 60_000)?,
            jwks: JwksTimes {
                refresh,
                max_stale,
                min_refetch: uint(host, "jwks_min_refetch_seconds", d.min_refetch, 0, 3600)?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> BTreeMap<String, Value> {
        v.as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    #[test]
    fn defaults_bounds_and_strings() {
        let k = CommonHostKeys::parse(&BTreeMap::new()).unwrap();
        assert_eq!(k.idp_timeout_ms, 5000);
        assert_eq!(k.jwks, JwksTimes::default());
        let k = CommonHostKeys::parse(&map(json!({"idp_timeout_ms": "250",
            "jwks_min_refetch_seconds": 0})))
        .unwrap();
        assert_eq!(k.idp_timeout_ms, 250);
        assert_eq!(k.jwks.min_refetch, 0);
        for (bad, key) in [
            (json!({"idp_timeout_ms": 99}), "idp_timeout_ms"),
            (json!({"idp_timeout_ms": "soon"}), "idp_timeout_ms"),
            (json!({"jwks_refresh_seconds": 0}), "jwks_refresh_seconds"),
            (
                json!({"jwks_min_refetch_seconds": 3601}),
                "jwks_min_refetch_seconds",
            ),
            (
                json!({"jwks_refresh_seconds": 600, "jwks_max_stale_seconds": 60}),
                "jwks_max_stale_seconds",
            ),
        ] {
            assert_eq!(CommonHostKeys::parse(&map(bad)).unwrap_err().key, key);
        }
    }
}
