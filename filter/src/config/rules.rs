//! What reaches the origin and where a token is needed: identity and claim headers,
//! group rules, `protect` and `public_paths` (paths must already be canonical: see
//! [`crate::path`]).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use serde_json::Value;

use super::forwarding::Forwarding;
use super::reader::{header_name_for_identity, Reader};
use super::{ConfigError, GroupRule, IdentityHeaders, Protect};

pub(super) fn identity_headers(r: &Reader) -> Result<IdentityHeaders, ConfigError> {
    let mut h = IdentityHeaders::default();
    let Some(v) = r.map.get("identity_headers") else {
        return Ok(h);
    };
    let Value::Object(m) = v else {
        return Err(ConfigError::new("identity_headers", "must be an object"));
    };
    for (k, v) in m {
        let key = format!("identity_headers.{k}");
        let name = match v {
            Value::Null => None,
            Value::String(n) => Some(header_name_for_identity(&key, n)?),
            _ => {
                return Err(ConfigError::new(
                    &key,
                    "must be a header name, or null to not pass it",
                ))
            }
        };
        match k.as_str() {
            "sub" => h.sub = name,
            "username" => h.username = name,
            "groups" => h.groups = name,
            "scope" => h.scope = name,
            "client_id" => h.client_id = name,
            "email" => h.email = name,
            _ => return Err(ConfigError::new(&key, "unknown key")),
        }
    }
    Ok(h)
}

/// Every header the proxy sets on requests to the origin, each with the key that names it:
/// the identity headers (those not turned off), the claim headers, the IdP's token and the
/// identity assertion (whether or not those two are on).
pub(crate) fn origin_headers<'a>(
    identity: &'a IdentityHeaders,
    claims: &'a [(String, String)],
    forwarding: &'a Forwarding,
) -> impl Iterator<Item = (String, &'a str)> + 'a {
    [
        ("identity_headers.sub", &identity.sub),
        ("identity_headers.username", &identity.username),
        ("identity_headers.groups", &identity.groups),
        ("identity_headers.scope", &identity.scope),
        ("identity_headers.client_id", &identity.client_id),
        ("identity_headers.email", &identity.email),
    ]
    .into_iter()
    .filter_map(|(k, n)| Some((String::from(k), n.as_deref()?)))
    .chain(
        claims
            .iter()
            .map(|(claim, n)| (format!("claim_headers.{claim}"), n.as_str())),
    )
    .chain(
        [
            ("upstream_token_header", &forwarding.upstream_token_header),
            ("identity_assertion_header", &forwarding.assertion_header),
        ]
        .map(|(k, n)| (String::from(k), n.as_str())),
    )
}

/// Every header the proxy sets for the origin comes from one source: each of
/// [`origin_headers`] has a name of its own (else one would silently overwrite another, and
/// the order of the writes would decide).
pub(super) fn one_source_per_header(
    identity: &IdentityHeaders,
    claims: &[(String, String)],
    forwarding: &Forwarding,
) -> Result<(), ConfigError> {
    let mut seen: Vec<(String, &str)> = Vec::new();
    for (key, name) in origin_headers(identity, claims, forwarding) {
        if let Some((first, _)) = seen.iter().find(|(_, n)| *n == name) {
            return Err(ConfigError::new(
                &key,
                format!("must differ from {first}: each header sent to the origin has one source"),
            ));
        }
        seen.push((key, name));
    }
    Ok(())
}

/// `claim_headers`: claim name → header name.
pub(super) fn claim_headers(r: &Reader) -> Result<Vec<(String, String)>, ConfigError> {
    Ok(match r.map.get("claim_headers") {
        None => Vec::new(),
        Some(Value::Object(m)) => {
            let mut out = Vec::new();
            for (claim, header) in m {
                let key = format!("claim_headers.{claim}");
                let header = header
                    .as_str()
                    .ok_or_else(|| ConfigError::new(&key, "must be a header name"))?;
                out.push((claim.clone(), header_name_for_identity(&key, header)?));
            }
            out
        }
        Some(_) => {
            return Err(ConfigError::new(
                "claim_headers",
                "must be an object of claim → header name",
            ))
        }
    })
}

/// `protect`: which paths need a token.
pub(super) fn protect(r: &Reader) -> Result<Protect, ConfigError> {
    match r.opt_str("protect")?.as_deref() {
        None | Some("all") => Ok(Protect::All),
        Some("mcp_path") => Ok(Protect::McpPath),
        Some(_) => Err(ConfigError::new("protect", "must be all or mcp_path")),
    }
}

pub(super) fn group_rules(r: &Reader) -> Result<Vec<GroupRule>, ConfigError> {
    let mut rules = Vec::new();
    for (i, v) in r
        .array("group_rules")?
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let key = format!("group_rules[{i}]");
        let Value::Object(m) = v else {
            return Err(ConfigError::new(
                &key,
                "must be an object with path_prefix and groups",
            ));
        };
        for k in m.keys() {
            if k != "path_prefix" && k != "groups" {
                return Err(ConfigError::new(&format!("{key}.{k}"), "unknown key"));
            }
        }
        let path_prefix = match m.get("path_prefix") {
            Some(Value::String(p)) if crate::path::is_canonical(p) => p.clone(),
            _ => {
                return Err(ConfigError::new(
                    &format!("{key}.path_prefix"),
                    "must be a path starting with / without escapes, ;, // or dot segments",
                ))
            }
        };
        let groups: Vec<String> = match m.get("groups") {
            Some(Value::Array(a)) if !a.is_empty() => a
                .iter()
                .map(|g| g.as_str().map(String::from))
                .collect::<Option<_>>()
                .ok_or_else(|| {
                    ConfigError::new(&format!("{key}.groups"), "must be a list of group names")
                })?,
            _ => {
                return Err(ConfigError::new(
                    &format!("{key}.groups"),
                    "must be a non-empty list of group names",
                ))
            }
        };
        rules.push(GroupRule {
            path_prefix,
            groups,
        });
    }
    Ok(rules)
}

/// `public_paths`: exact paths or `/prefix/*` subtrees, canonical, never the MCP path.
pub(super) fn public_paths(r: &Reader, mcp_path: &str) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::new();
    for (i, p) in r
        .str_list("public_paths")?
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let key = format!("public_paths[{i}]");
        let entry = match p.strip_suffix("/*") {
            Some(base) => format!("{base}/"),
            None => p,
        };
        if !crate::path::is_canonical(&entry) || entry.contains('*') {
            return Err(ConfigError::new(
                &key,
                "must be a path like /healthz or /static/* (no escapes, ;, // or dot segments)",
            ));
        }
        // Never open the MCP path, whatever the case (an origin may ignore it).
        let opens_mcp = crate::path::matches_prefix(&entry, mcp_path, true)
            || (entry.ends_with('/') && crate::path::matches_prefix(mcp_path, &entry, true));
        if opens_mcp {
            return Err(ConfigError::new(&key, "must not open the MCP path"));
        }
        out.push(entry);
    }
    Ok(out)
}
