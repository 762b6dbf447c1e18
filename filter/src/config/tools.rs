//! Per-tool authorization: `tool_rules` (per MCP method and tool name: scopes, groups,
//! claims), `tool_rules_default` (what a request no rule matches gets), `filter_tools_list`
//! (hide the tools a caller may not call) and `max_mcp_body_bytes` (the MCP POST bodies the
//! proxy reads to decide). What the rules mean at run time is `crate::routes::tools`.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::Value;

use super::reader::Reader;
use super::ConfigError;
use crate::glob::Pattern;

/// Most rules in `tool_rules`.
pub const MAX_RULES: usize = 256;
/// Longest `method` or `name` pattern.
pub const MAX_PATTERN_BYTES: usize = 256;

/// The MCP methods whose request names a target, and where the name is (`params.name`,
/// `params.uri`, `params.taskId`): the name `Mcp-Name` mirrors and `name` patterns match.
pub const NAMED_METHODS: &[(&str, &str)] = &[
    ("tools/call", "name"),
    ("prompts/get", "name"),
    ("resources/read", "uri"),
    ("resources/subscribe", "uri"),
    ("resources/unsubscribe", "uri"),
    ("tasks/get", "taskId"),
    ("tasks/update", "taskId"),
    ("tasks/cancel", "taskId"),
];

/// What a request that no rule matches gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolDefault {
    Allow,
    /// Refused, except the session's plumbing (`initialize`, `ping`, notifications and the
    /// list methods: see `crate::routes::tools::EXEMPT`).
    Deny,
}

/// One rule: which requests it matches, and what the caller must have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolRule {
    /// A pattern over the JSON-RPC method (`*` any run of characters, `?` one); default
    /// `tools/call`.
    pub method: Pattern,
    /// A pattern over the tool, prompt or resource name; `None` matches any request of the
    /// method, named or not.
    pub name: Option<Pattern>,
    /// Every one of these scopes.
    pub scopes: Vec<String>,
    /// Membership of at least one of these groups (when not empty).
    pub groups: Vec<String>,
    /// Each claim's text must equal one of its values.
    pub claims: Vec<(String, Vec<String>)>,
}

impl ToolRule {
    /// Whether the rule asks anything of the caller beyond a valid token.
    pub fn requires_anything(&self) -> bool {
        !self.scopes.is_empty() || !self.groups.is_empty() || !self.claims.is_empty()
    }
}

fn pattern(key: &str, v: &Value) -> Result<Pattern, ConfigError> {
    match v {
        Value::String(s)
            if !s.is_empty()
                && s.len() <= MAX_PATTERN_BYTES
                && !s.chars().any(|c| c.is_control()) =>
        {
            Ok(Pattern::new(s.clone()))
        }
        _ => Err(ConfigError::new(
            key,
            format!(
                "must be a non-empty pattern of at most {MAX_PATTERN_BYTES} bytes \
                 (* matches any run of characters, ? one)"
            ),
        )),
    }
}

fn names(key: &str, v: &Value, what: &str) -> Result<Vec<String>, ConfigError> {
    let err = || ConfigError::new(key, format!("must be a list of {what}"));
    let Value::Array(items) = v else {
        return Err(err());
    };
    items
        .iter()
        .map(|i| match i {
            Value::String(s) if !s.is_empty() && !s.chars().any(|c| c.is_control()) => {
                Ok(s.clone())
            }
            _ => Err(err()),
        })
        .collect()
}

fn scopes(key: &str, v: &Value) -> Result<Vec<String>, ConfigError> {
    let list = names(key, v, "scopes")?;
    if list.iter().any(|s| {
        !s.bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\')
    }) {
        return Err(ConfigError::new(
            key,
            "scopes must be printable ASCII without spaces or quotes",
        ));
    }
    Ok(list)
}

fn claims(key: &str, v: &Value) -> Result<Vec<(String, Vec<String>)>, ConfigError> {
    let Value::Object(m) = v else {
        return Err(ConfigError::new(
            key,
            "must be an object of claim name → value or list of values",
        ));
    };
    let mut out = Vec::new();
    for (claim, want) in m {
        let key = format!("{key}.{claim}");
        if claim.is_empty() {
            return Err(ConfigError::new(&key, "claim names must not be empty"));
        }
        let values = match want {
            Value::String(s) => alloc::vec![s.clone()],
            Value::Array(a) if !a.is_empty() => names(&key, want, "claim values")?,
            _ => {
                return Err(ConfigError::new(
                    &key,
                    "must be a string or a non-empty list of strings",
                ))
            }
        };
        out.push((claim.clone(), values));
    }
    Ok(out)
}

fn rule(i: usize, v: &Value) -> Result<ToolRule, ConfigError> {
    let key = format!("tool_rules[{i}]");
    let Value::Object(m) = v else {
        return Err(ConfigError::new(
            &key,
            "must be an object with method, name, scopes, groups or claims",
        ));
    };
    for k in m.keys() {
        if !["method", "name", "scopes", "groups", "claims"].contains(&k.as_str()) {
            return Err(ConfigError::new(&format!("{key}.{k}"), "unknown key"));
        }
    }
    let method = match m.get("method") {
        None => Pattern::new("tools/call".to_string()),
        Some(v) => pattern(&format!("{key}.method"), v)?,
    };
    let name = m
        .get("name")
        .map(|v| pattern(&format!("{key}.name"), v))
        .transpose()?;
    if name.is_some()
        && !method.as_str().contains(['*', '?'])
        && !NAMED_METHODS.iter().any(|(n, _)| method == *n)
    {
        return Err(ConfigError::new(
            &format!("{key}.name"),
            format!(
                "{} requests name no tool, prompt or resource",
                method.as_str()
            ),
        ));
    }
    let list = |k: &str, what: &str| {
        m.get(k)
            .map(|v| names(&format!("{key}.{k}"), v, what))
            .transpose()
            .map(Option::unwrap_or_default)
    };
    Ok(ToolRule {
        method,
        name,
        scopes: m
            .get("scopes")
            .map(|v| scopes(&format!("{key}.scopes"), v))
            .transpose()?
            .unwrap_or_default(),
        groups: list("groups", "group names")?,
        claims: m
            .get("claims")
            .map(|v| claims(&format!("{key}.claims"), v))
            .transpose()?
            .unwrap_or_default(),
    })
}

/// `tool_rules`: a list of rules, checked in order (the first that matches decides).
pub(super) fn tool_rules(r: &Reader) -> Result<Vec<ToolRule>, ConfigError> {
    let items = r.array("tool_rules")?.unwrap_or_default();
    if items.len() > MAX_RULES {
        return Err(ConfigError::new(
            "tool_rules",
            format!("at most {MAX_RULES} rules"),
        ));
    }
    items.iter().enumerate().map(|(i, v)| rule(i, v)).collect()
}

/// `tool_rules_default`: `allow` (default) or `deny`.
pub(super) fn tool_default(r: &Reader) -> Result<ToolDefault, ConfigError> {
    match r.opt_str("tool_rules_default")?.as_deref() {
        None | Some("allow") => Ok(ToolDefault::Allow),
        Some("deny") => Ok(ToolDefault::Deny),
        Some(_) => Err(ConfigError::new(
            "tool_rules_default",
            "must be allow or deny",
        )),
    }
}
