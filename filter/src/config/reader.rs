//! Reading and checking configuration values: the typed accessors every section uses, and
//! the checks of URLs, header names and secrets. Errors name the key.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::{Map, Value};

use super::{ConfigError, EnvLookup, Secret};

pub(super) fn missing(key: &str) -> ConfigError {
    ConfigError::new(key, "is required")
}

pub(super) fn trim_slash(mut s: String) -> String {
    while s.ends_with('/') {
        s.pop();
    }
    s
}

pub(super) fn check_url(key: &str, s: &str) -> Result<String, ConfigError> {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .ok_or_else(|| ConfigError::new(key, "must be an http(s) URL"))?;
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() || s.contains(['?', '#', ' ', '\\']) || host.contains('@') {
        return Err(ConfigError::new(
            key,
            "must be an http(s) URL without query, fragment or userinfo",
        ));
    }
    Ok(s.to_string())
}

pub(super) fn header_name(key: &str, name: &str) -> Result<String, ConfigError> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !name.eq_ignore_ascii_case("authorization")
        && !name.starts_with(':');
    if ok {
        Ok(name.to_ascii_lowercase())
    } else {
        Err(ConfigError::new(
            key,
            "must be a valid HTTP header name other than authorization",
        ))
    }
}

/// Headers a request needs as the client sent them (or the platform sets): never a name the
/// proxy sets for the origin.
const RESERVED_FOR_THE_REQUEST: &[&str] = &[
    "host",
    "cookie",
    "content-type",
    "content-length",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "upgrade",
    "accept",
    "origin",
    "mcp-session-id",
    "mcp-protocol-version",
    "mcp-method",
    "mcp-name",
    "last-event-id",
];

/// A header the proxy sets on requests to the origin (an identity or claim header): a valid
/// name other than `authorization`, and never one the request itself needs.
pub(super) fn header_name_for_identity(key: &str, name: &str) -> Result<String, ConfigError> {
    not_the_requests(key, header_name(key, name)?)
}

/// A header the proxy sets on requests to the origin with a credential of its own (the IdP's
/// token, the identity assertion): like [`header_name_for_identity`], but `authorization` is
/// allowed (the value is then sent as `Bearer …`).
pub(super) fn header_name_for_origin(key: &str, name: &str) -> Result<String, ConfigError> {
    if name.eq_ignore_ascii_case("authorization") {
        return Ok("authorization".to_string());
    }
    header_name_for_identity(key, name)
}

fn not_the_requests(key: &str, name: String) -> Result<String, ConfigError> {
    if RESERVED_FOR_THE_REQUEST.contains(&name.as_str()) || name.starts_with("x-forwarded-") {
        return Err(ConfigError::new(
            key,
            "must not be a header the request itself needs (host, cookie, content-*, mcp-*, …)",
        ));
    }
    Ok(name)
}

pub(super) fn secret_value(v: &Value, key: &str, env: EnvLookup) -> Result<Secret, ConfigError> {
    match v {
        Value::String(s) if !s.is_empty() => Ok(Secret::new(s.clone())),
        Value::Object(m) if m.len() == 1 => match m.get("env") {
            Some(Value::String(name)) => env(name)
                .filter(|s| !s.is_empty())
                .map(Secret::new)
                .ok_or_else(|| {
                    ConfigError::new(key, format!("environment variable {name} is not set"))
                }),
            _ => Err(ConfigError::new(
                key,
                "must be a string or {\"env\": \"VARIABLE\"}",
            )),
        },
        _ => Err(ConfigError::new(
            key,
            "must be a non-empty string or {\"env\": \"VARIABLE\"}",
        )),
    }
}

pub(super) struct Reader<'a> {
    pub map: &'a Map<String, Value>,
    pub env: EnvLookup<'a>,
}

impl Reader<'_> {
    pub fn opt_str(&self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
            Some(_) => Err(ConfigError::new(key, "must be a non-empty string")),
        }
    }

    pub fn req_str(&self, key: &str) -> Result<String, ConfigError> {
        self.opt_str(key)?.ok_or_else(|| missing(key))
    }

    pub fn opt_secret(&self, key: &str) -> Result<Option<Secret>, ConfigError> {
        self.map
            .get(key)
            .map(|v| secret_value(v, key, self.env))
            .transpose()
    }

    pub fn url(&self, key: &str) -> Result<Option<String>, ConfigError> {
        self.opt_str(key)?.map(|s| check_url(key, &s)).transpose()
    }

    pub fn path(&self, key: &str, default: &str) -> Result<String, ConfigError> {
        let p = self.opt_str(key)?.unwrap_or_else(|| default.into());
        let ok = p.starts_with('/')
            && p.len() > 1
            && !p.ends_with('/')
            && !p.contains("//")
            && !p.split('/').any(|seg| seg == "." || seg == "..")
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b));
        if ok {
            Ok(p)
        } else {
            Err(ConfigError::new(
                key,
                "must be a path like /mcp (no trailing slash, no dot segments)",
            ))
        }
    }

    pub fn array(&self, key: &str) -> Result<Option<Vec<Value>>, ConfigError> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a.clone())),
            Some(_) => Err(ConfigError::new(key, "must be a list")),
        }
    }

    pub fn str_list(&self, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
        let Some(items) = self.array(key)? else {
            return Ok(None);
        };
        items
            .iter()
            .map(|v| match v {
                Value::String(s) if !s.is_empty() => Ok(s.clone()),
                _ => Err(ConfigError::new(key, "must be a list of non-empty strings")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// Scopes: a JSON list, or one string separated by spaces or commas (as the reference).
    pub fn scopes(&self, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
        let list = match self.map.get(key) {
            None => return Ok(None),
            Some(Value::String(s)) => s
                .split([' ', ','])
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            Some(_) => self.str_list(key)?.unwrap_or_default(),
        };
        for s in &list {
            if !s
                .bytes()
                .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\')
            {
                return Err(ConfigError::new(
                    key,
                    "scopes must be printable ASCII without quotes",
                ));
            }
        }
        Ok(Some(list))
    }

    pub fn uint(&self, key: &str, default: u64, min: u64, max: u64) -> Result<u64, ConfigError> {
        match self.map.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_u64()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| {
                    ConfigError::new(key, format!("must be an integer from {min} to {max}"))
                }),
        }
    }
}
