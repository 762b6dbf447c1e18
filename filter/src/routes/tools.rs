//! Per-tool authorization of MCP requests (`tool_rules`, see [`crate::config::tools`]).
//!
//! When rules are in force, every POST to the MCP path (and below it: servers answer there
//! too) is read before it is forwarded: the host buffers the body ([`reads_body`]), the guard
//! authenticates the token, then [`inspect`] reads the JSON-RPC message
//! ([`crate::mcp_request`]: bounded, batches and ambiguous bodies refused, `Mcp-Method` /
//! `Mcp-Name` checked against the body) and [`authorize`] applies the rules:
//!
//! * the first rule whose `method` and `name` patterns match decides: the caller must have
//!   every scope it lists, be in one of its groups (if any), and carry each claim it lists
//!   with one of the given values (compared as text);
//! * no rule matches: `tool_rules_default` decides — except for the session's plumbing
//!   ([`EXEMPT`]: the handshake, `ping`, notifications, the list methods) and the client's
//!   responses to server requests, which a `deny` default lets through;
//! * a refusal is 403 `insufficient_scope` with the scopes the request needs (the ones of
//!   `required_scopes` and of the rule) and the resource metadata, so a client can authorize
//!   again for more (step-up), and a JSON-RPC error with the request's `id`.
//!
//! A forwarded `tools/list` gets a [`ListFilter`] when `filter_tools_list` is on.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::{json, Value};

use super::Route;
use crate::config::{ToolDefault, ToolRule};
use crate::gate::Gate;
use crate::http::{Request, Response};
use crate::jwt::Identity;
use crate::mcp_request::{self, McpError, McpMessage};
use crate::respond;
use crate::tools_list::ListFilter;

/// Methods a `deny` default does not refuse: without them no client could connect or list
/// what it may call. A rule naming them still applies.
pub const EXEMPT: &[&str] = &[
    "initialize",
    "server/discover",
    "ping",
    "notifications/*",
    "tools/list",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
    "logging/setLevel",
];

/// Whether the request is an MCP POST the rules apply to (`path` canonical).
pub(super) fn applies(gate: &Gate, method: &str, path: &str) -> bool {
    method == "POST"
        && gate.cfg.tool_rules_active()
        && crate::path::matches_prefix(path, &gate.paths.mcp, true)
}

/// Whether the host must buffer the request's body for the rules (`raw_path` as received).
pub(crate) fn reads_body(gate: &Gate, method: &str, raw_path: &str) -> bool {
    if method != "POST" || !gate.cfg.tool_rules_active() {
        return false;
    }
    super::route_of_raw(gate, raw_path)
        .is_some_and(|(c, r)| r == Route::Guarded && applies(gate, method, &c))
}

/// A JSON-RPC error answer.
pub(crate) fn jsonrpc_error(
    status: u16,
    id: &Value,
    code: i64,
    message: &str,
    reason: &'static str,
) -> Response {
    let mut r = respond::json(
        status,
        &json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}),
    );
    r.reason = Some(reason);
    r
}

/// The answer to an MCP POST whose body is over `max_mcp_body_bytes`.
pub(crate) fn too_large() -> Response {
    jsonrpc_error(
        413,
        &Value::Null,
        -32600,
        "Invalid Request: the request body is too large",
        "mcp_body_too_large",
    )
}

/// Reads what the MCP POST asks for; a request that cannot be authorized is answered.
pub(super) fn inspect(gate: &Gate, req: &Request) -> Result<McpMessage, Response> {
    if req.body.len() > gate.cfg.max_mcp_body_bytes {
        return Err(too_large());
    }
    let encoded = match req.header("content-encoding") {
        Ok(None) => false,
        Ok(Some(e)) => !e.trim().is_empty() && !e.trim().eq_ignore_ascii_case("identity"),
        Err(_) => true,
    };
    if encoded {
        return Err(jsonrpc_error(
            415,
            &Value::Null,
            -32600,
            "Invalid Request: compressed request bodies are not accepted",
            "mcp_encoded",
        ));
    }
    let refuse = |e: McpError, id: &Value| {
        let reason = match e {
            McpError::HeaderMismatch(_) => "mcp_header_mismatch",
            McpError::Batch => "mcp_batch",
            McpError::Parse | McpError::Invalid(_) => "mcp_invalid",
        };
        jsonrpc_error(400, id, e.code(), e.message(), reason)
    };
    let msg = mcp_request::parse(req.body).map_err(|e| refuse(e, &Value::Null))?;
    mcp_request::check_headers(req.headers, &msg).map_err(|e| refuse(e, &msg.id))?;
    Ok(msg)
}

/// Why a rule refused a caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    Scope,
    Group,
    Claim,
    Default,
}

impl Refusal {
    fn reason(self) -> &'static str {
        match self {
            Self::Scope => "tool_scope",
            Self::Group => "tool_group",
            Self::Claim => "tool_claim",
            Self::Default => "tool_default",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Self::Scope => "this request needs more scopes: authorize again asking for the scopes of this challenge",
            Self::Group => "this request is reserved to members of certain groups",
            Self::Claim => "this request is reserved to identities with certain claims",
            Self::Default => "this method or tool is not allowed through this gateway",
        }
    }
}

/// Whether `id` passes `rule`'s requirements; groups and claims first (authorizing again
/// cannot change them), then scopes.
fn check(rule: &ToolRule, id: &Identity) -> Result<(), Refusal> {
    if !rule.groups.is_empty() && !rule.groups.iter().any(|g| id.in_group(g)) {
        return Err(Refusal::Group);
    }
    for (claim, values) in &rule.claims {
        let text = id
            .extra
            .iter()
            .find(|(k, _)| k == claim)
            .map(|(_, v)| v.as_str());
        if !text.is_some_and(|t| values.iter().any(|v| v == t)) {
            return Err(Refusal::Claim);
        }
    }
    if !rule.scopes.iter().all(|s| id.has_scope(s)) {
        return Err(Refusal::Scope);
    }
    Ok(())
}

/// The first rule matching a request of `method` naming `name` (the name first: it tells
/// rules apart more often than the method does).
fn matching<'g>(gate: &'g Gate, method: &str, name: Option<&str>) -> Option<&'g ToolRule> {
    gate.cfg.tool_rules.iter().find(|r| {
        (match (&r.name, name) {
            (None, _) => true,
            (Some(p), Some(n)) => p.matches(n),
            (Some(_), None) => false,
        }) && r.method.matches(method)
    })
}

/// The rules' verdict on `msg` for the caller `id`: forward (with a [`ListFilter`] for a
/// `tools/list` when filtering is on), or the refusal.
pub(super) fn authorize(
    gate: &Gate,
    msg: &McpMessage,
    id: &Identity,
) -> Result<Option<ListFilter>, Response> {
    // The client answering a server request: nothing to authorize.
    let Some(method) = msg.method.as_deref() else {
        return Ok(None);
    };
    let rule = matching(gate, method, msg.name.as_deref());
    let verdict = match rule {
        Some(r) => check(r, id),
        None if gate.cfg.tool_rules_default == ToolDefault::Allow
            || EXEMPT.iter().any(|p| crate::glob::matches(p, method)) =>
        {
            Ok(())
        }
        None => Err(Refusal::Default),
    };
    if let Err(why) = verdict {
        return Err(refusal(gate, msg, rule, why));
    }
    let filter = (gate.cfg.filter_tools_list && method == "tools/list" && !msg.id.is_null())
        .then(|| list_filter(gate, msg, id));
    Ok(filter)
}

/// What the answer to a `tools/list` may show this caller.
fn list_filter(gate: &Gate, msg: &McpMessage, id: &Identity) -> ListFilter {
    ListFilter {
        id: msg.id.clone(),
        rules: gate
            .cfg
            .tool_rules
            .iter()
            .filter(|r| r.method.matches("tools/call"))
            .map(|r| (r.name.clone(), check(r, id).is_ok()))
            .collect(),
        default_allow: gate.cfg.tool_rules_default == ToolDefault::Allow,
    }
}

/// 403 `insufficient_scope` naming every scope the request needs, with a JSON-RPC error body.
fn refusal(gate: &Gate, msg: &McpMessage, rule: Option<&ToolRule>, why: Refusal) -> Response {
    let needed = rule.map(|r| r.scopes.as_slice()).unwrap_or_default();
    let scope = gate.with_required_scopes(needed.iter().map(String::as_str));
    let mut r = respond::bearer_challenge(
        403,
        Some("insufficient_scope"),
        Some(why.description()),
        &gate.paths.resource_metadata_url,
        &scope,
        why.reason(),
    );
    let mut data = json!({"error": "insufficient_scope", "scope": scope});
    if let Some(m) = &msg.method {
        respond::insert(&mut data, "method", json!(m));
    }
    if let Some(n) = &msg.name {
        respond::insert(&mut data, "name", json!(n));
    }
    let body = json!({
        "jsonrpc": "2.0",
        "id": msg.id,
        "error": {
            "code": -32000,
            "message": format!("Forbidden: {}", why.description()),
            "data": data,
        },
    });
    r.body = serde_json::to_vec(&body).unwrap_or_default();
    r
}

/// The claims the rules look at: they must travel in the proxy's tokens and be read from
/// verified tokens like `claim_headers`.
pub(crate) fn claims(rules: &[ToolRule]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (c, _) in rules.iter().flat_map(|r| r.claims.iter()) {
        if !out.contains(c) {
            out.push(c.to_string());
        }
    }
    out
}
