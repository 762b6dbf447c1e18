//! How clients reach the proxy: Client ID Metadata Documents (`cimd`,
//! `cimd_allow_private`) and CORS for browser-based clients on the guarded paths (`cors`,
//! `cors_origins`).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::Value;

use super::reader::Reader;
use super::ConfigError;

/// Which Client ID Metadata Documents (client ids that are URLs) the proxy accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cimd {
    /// None: only registered clients. Metadata says `client_id_metadata_document_supported:
    /// false`.
    Off,
    /// Documents from any public host.
    Any,
    /// Documents (and their `jwks_uri`) only from these hosts (lower case, no port).
    Hosts(Vec<String>),
}

impl Cimd {
    pub fn enabled(&self) -> bool {
        *self != Self::Off
    }
}

/// Who answers CORS on the guarded paths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CorsMode {
    /// The proxy answers preflights and adds the CORS headers to the origin's responses.
    Proxy,
    /// Preflights go to the origin without a token and its responses stay as they are; the
    /// proxy still makes its own 401/403 readable and refuses disallowed origins.
    Origin,
}

/// Browser origins allowed on the guarded paths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CorsOrigins {
    /// Any origin (`Access-Control-Allow-Origin: *`, never with credentials).
    Any,
    /// Exactly these (`scheme://host[:port]`, lower case); others get 403.
    List(Vec<String>),
}

fn hostname_ok(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !h.starts_with(['.', '-'])
        && !h.ends_with('.')
        && !h.contains("..")
}

/// `cimd`: `"on"` (default), `"off"`, or a list of host names.
pub(super) fn cimd(r: &Reader) -> Result<Cimd, ConfigError> {
    let key = "cimd";
    let items: Vec<String> = match r.map.get(key) {
        None => return Ok(Cimd::Any),
        Some(Value::String(s)) => alloc::vec![s.clone()],
        Some(Value::Array(_)) => r.str_list(key)?.unwrap_or_default(),
        Some(_) => {
            return Err(ConfigError::new(
                key,
                "must be \"on\", \"off\" or a list of host names",
            ))
        }
    };
    match items.as_slice() {
        [one] if one == "on" => return Ok(Cimd::Any),
        [one] if one == "off" => return Ok(Cimd::Off),
        [] => {
            return Err(ConfigError::new(
                key,
                "an empty host list allows nothing: write \"off\"",
            ))
        }
        _ => {}
    }
    let mut hosts = Vec::new();
    for (i, h) in items.iter().enumerate() {
        let h = h.to_ascii_lowercase();
        if !hostname_ok(&h) {
            return Err(ConfigError::new(
                &format!("{key}[{i}]"),
                "must be a host name like claude.ai (no scheme, port or path)",
            ));
        }
        hosts.push(h);
    }
    Ok(Cimd::Hosts(hosts))
}

/// `cimd_denied_hosts`: host names or IP addresses (`[…]` for IPv6), kept in lower case.
pub(super) fn cimd_denied_hosts(r: &Reader) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::new();
    for (i, h) in r
        .str_list("cimd_denied_hosts")?
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let ok = h
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.[]:".contains(&b))
            && (h.starts_with('[') || !h.contains(':'));
        if !ok {
            return Err(ConfigError::new(
                &format!("cimd_denied_hosts[{i}]"),
                "must be a host name or IP address without scheme or port",
            ));
        }
        out.push(h.to_ascii_lowercase());
    }
    Ok(out)
}

/// A boolean key: JSON `true`/`false`, or the text `true`/`false` (from a variable).
pub(super) fn boolean(r: &Reader, key: &str, default: bool) -> Result<bool, ConfigError> {
    match r.map.get(key) {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s.trim() == "true" => Ok(true),
        Some(Value::String(s)) if s.trim() == "false" => Ok(false),
        Some(_) => Err(ConfigError::new(key, "must be true or false")),
    }
}

/// `cors`: `"proxy"` (default) or `"origin"`.
pub(super) fn cors_mode(r: &Reader) -> Result<CorsMode, ConfigError> {
    match r.opt_str("cors")?.as_deref() {
        None | Some("proxy") => Ok(CorsMode::Proxy),
        Some("origin") => Ok(CorsMode::Origin),
        Some(_) => Err(ConfigError::new("cors", "must be proxy or origin")),
    }
}

/// An origin as browsers send it: `scheme://host[:port]`, lower case, nothing after.
fn origin_ok(o: &str) -> bool {
    let Some((scheme, rest)) = o.split_once("://") else {
        return false;
    };
    let scheme_ok = !scheme.is_empty()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b));
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (h, Some(p)),
        _ => (rest, None),
    };
    let host_ok = if let Some(v6) = host.strip_prefix('[') {
        v6.strip_suffix(']')
            .is_some_and(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_hexdigit() || b == b':'))
    } else {
        hostname_ok(host)
    };
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    scheme_ok && host_ok && port_ok && o == o.to_ascii_lowercase()
}

/// `cors_origins`: `["*"]` (default) or a list of origins.
pub(super) fn cors_origins(r: &Reader) -> Result<CorsOrigins, ConfigError> {
    let key = "cors_origins";
    let Some(items) = r.str_list(key)? else {
        return Ok(CorsOrigins::Any);
    };
    if items.iter().any(|o| o == "*") {
        return if items.len() == 1 {
            Ok(CorsOrigins::Any)
        } else {
            Err(ConfigError::new(
                key,
                "\"*\" cannot be combined with origins",
            ))
        };
    }
    let mut out = Vec::new();
    for (i, o) in items.iter().enumerate() {
        let o = o.trim_end_matches('/').to_string();
        if !origin_ok(&o) {
            return Err(ConfigError::new(
                &format!("{key}[{i}]"),
                "must be an origin like https://app.example.com or http://localhost:6274 \
                 (lower case, no path)",
            ));
        }
        out.push(o);
    }
    Ok(CorsOrigins::List(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_checked() {
        for ok in [
            "https://app.example.com",
            "http://localhost:6274",
            "http://[::1]:8080",
            "vscode-webview://abc",
        ] {
            assert!(origin_ok(ok), "{ok}");
        }
        for bad in [
            "app.example.com",
            "https://App.example.com",
            "https://app.example.com/path",
            "https://app.example.com:x",
            "https://",
            "null",
            "https://a b",
        ] {
            assert!(!origin_ok(bad), "{bad}");
        }
    }
}
