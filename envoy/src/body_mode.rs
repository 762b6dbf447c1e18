//! Whether this Envoy lets the filter hold an OAuth POST at its headers and still hand it the
//! body — and, where it does not, the refusal of those routes.
//!
//! proxy-wasm 0.2 turns a `Pause` from `on_http_request_headers` into "stop everything": the
//! body callbacks never come. Envoy ≥ 1.35 makes it a real StopIteration when the Wasm filter's
//! `PluginConfig.allow_on_headers_stop_iteration` is true. A filter cannot read its
//! `PluginConfig`, so it learns the setting three ways:
//!
//! * the operator declares it next to the flag (host key `allow_on_headers_stop_iteration`,
//!   default `false`): undeclared, the OAuth POST routes are refused from the start;
//! * Envoy's version (`xds.node.user_agent_build_version`): a declaration on Envoy < 1.35
//!   cannot be true, so the routes are refused from the start as well;
//! * a watchdog checks the declaration on live requests: a request held at its headers for
//!   which Envoy has received body bytes (`request.total_size` grew) that never reached the
//!   filter proves the flag is off. Once a body has reached the filter the flag is proven on
//!   for the VM, and later requests are not watched (no property read per request). That request and every other one held the same way are
//!   answered with the refusal, and the VM refuses the routes from then on.
//!
//! Every refusal is logged (once per VM), counted (`mcpgate.requests_denied.oauth_body_unsupported`)
//! and shown by the gauge `mcpgate.oauth_body_unsupported` (the number of VMs refusing).

use std::collections::BTreeMap;

use mcpgate_filter::respond;
use mcpgate_filter::{Gate, Response};

use crate::hostcalls::Host;

/// The first Envoy release with `PluginConfig.allow_on_headers_stop_iteration`.
pub const FIRST_VERSION: (u64, u64) = (1, 35);

/// How long Envoy may hold received body bytes back from a paused request before the
/// watchdog concludes that it never will (a filter ahead of this one may hold data briefly).
pub const GRACE_MS: u64 = 500;

/// The metrics label of a refusal.
pub const REASON: &str = "oauth_body_unsupported";

/// Why the OAuth POST routes are refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    /// The configuration does not declare `allow_on_headers_stop_iteration`.
    NotDeclared,
    /// Declared, but this Envoy predates the flag.
    EnvoyTooOld { major: u64, minor: u64 },
    /// Declared, but Envoy held a request's body back from the filter: the flag is not set.
    NotDelivered,
}

/// What the filter does with an OAuth POST whose body is still to come.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Hold it at the headers and answer it from the body (watched until proven).
    Pause,
    /// Answer it at the headers with the refusal.
    Refuse(Why),
}

/// The mode at configure time, from the declaration and Envoy's version (`None`: unknown).
pub fn initial(declared: bool, envoy: Option<(u64, u64)>) -> Mode {
    if !declared {
        return Mode::Refuse(Why::NotDeclared);
    }
    match envoy {
        Some((major, minor)) if (major, minor) < FIRST_VERSION => {
            Mode::Refuse(Why::EnvoyTooOld { major, minor })
        }
        _ => Mode::Pause,
    }
}

/// Envoy's `major.minor` from the node's build version (`xds.node`; `node` in older Envoys),
/// when Envoy tells.
pub fn envoy_version(host: &dyn Host) -> Option<(u64, u64)> {
    let read = |root: &[&str], name: &str| -> Option<u64> {
        let mut path = root.to_vec();
        path.extend(["user_agent_build_version", "version", name]);
        let raw = host.property(&path)?;
        let bytes: [u8; 8] = raw.get(..8)?.try_into().ok()?;
        Some(u64::from_le_bytes(bytes))
    };
    [&["xds", "node"][..], &["node"][..]]
        .into_iter()
        .find_map(|root| Some((read(root, "major_number")?, read(root, "minor_number")?)))
        // An unset version reads as 0.0: unknown.
        .filter(|(major, _)| *major > 0)
}

/// The current request's `request.total_size` (received body bytes plus the headers' size).
pub fn request_total_size(host: &dyn Host) -> Option<u64> {
    let raw = host.property(&["request", "total_size"])?;
    let bytes: [u8; 8] = raw.get(..8)?.try_into().ok()?;
    u64::try_from(i64::from_le_bytes(bytes)).ok()
}

/// The log line for a refusal (the operator's side: what to set where).
pub fn log_line(why: Why) -> String {
    let routes = "the OAuth POST routes (/register, POST /authorize, /consent, /token, /revoke) \
                  and, with tool_rules, MCP POSTs";
    match why {
        Why::NotDeclared => format!(
            "mcpgate: {routes} are refused with 503: the configuration does not declare \
             allow_on_headers_stop_iteration. Set allow_on_headers_stop_iteration: true in the \
             Wasm filter's config (envoy.extensions.wasm.v3.PluginConfig, Envoy 1.35 or later) \
             and \"allow_on_headers_stop_iteration\": true in the mcpgate configuration"
        ),
        Why::EnvoyTooOld { major, minor } => format!(
            "mcpgate: {routes} are refused with 503: Envoy {major}.{minor} cannot hold a request \
             at its headers and still hand the body to a Wasm filter; \
             allow_on_headers_stop_iteration needs Envoy 1.35 or later"
        ),
        Why::NotDelivered => format!(
            "mcpgate: {routes} are refused with 503 from now on: Envoy held a request's body back \
             from the filter, so allow_on_headers_stop_iteration is not set in the Wasm filter's \
             config (envoy.extensions.wasm.v3.PluginConfig) although the mcpgate configuration \
             declares it. Set it there (Istio: the EnvoyFilter of envoy/istio/, not a WasmPlugin)"
        ),
    }
}

/// The answer to a refused held POST, in its route's protocol: a JSON-RPC error for an MCP
/// POST under `tool_rules`, else [`refusal`].
pub fn refusal_for(gate: &Gate, why: Why, method: &str, path: &str, accept: &str) -> Response {
    if !gate.reads_mcp_body(method, path) {
        return refusal(why, accept);
    }
    let message = format!(
        "Internal error: {}",
        description(why).replace("OAuth request bodies", "MCP request bodies")
    );
    let mut r = respond::json(
        503,
        &serde_json::json!({
            "jsonrpc": "2.0",
            "id": null,
            "error": {"code": -32603, "message": message},
        }),
    );
    r.reason = Some(REASON);
    r
}

fn description(why: Why) -> &'static str {
    match why {
        Why::NotDeclared => {
            "this proxy is not configured to read OAuth request bodies: its operator must set \
             allow_on_headers_stop_iteration in the Envoy Wasm filter and in mcpgate"
        }
        Why::EnvoyTooOld { .. } => {
            "this proxy's Envoy is too old to read OAuth request bodies: its operator must run \
             Envoy 1.35 or later with allow_on_headers_stop_iteration"
        }
        Why::NotDelivered => {
            "this proxy's Envoy does not hand OAuth request bodies to mcpgate: its operator must \
             set allow_on_headers_stop_iteration in the Envoy Wasm filter"
        }
    }
}

/// The answer to a refused OAuth POST: 503 `temporarily_unavailable`, as an OAuth error JSON, or
/// as an error page when a browser asks for HTML (the consent and authorization forms).
pub fn refusal(why: Why, accept: &str) -> Response {
    let description = description(why);
    let mut r = if accept.contains("text/html") {
        respond::error_page(503, "temporarily_unavailable", description)
    } else {
        respond::oauth_error(503, "temporarily_unavailable", description)
    };
    r.reason = Some(REASON);
    r
}

/// A request held at its headers, waiting for its body.
#[derive(Clone, Copy, Debug, Default)]
pub struct Held {
    /// `request.total_size` when it was held (`None`: the property is unavailable).
    pub baseline: Option<u64>,
    /// When the watchdog first saw received body bytes that had not reached the filter.
    pub undelivered_since_ms: Option<u64>,
}

/// The requests of one VM held at their headers, by context id.
#[derive(Debug, Default)]
pub struct Watch {
    held: BTreeMap<u32, Held>,
}

impl Watch {
    pub fn hold(&mut self, context_id: u32, baseline: Option<u64>) {
        self.held.insert(
            context_id,
            Held {
                baseline,
                undelivered_since_ms: None,
            },
        );
    }

    /// The request's body reached the filter, or the request ended.
    pub fn release(&mut self, context_id: u32) {
        self.held.remove(&context_id);
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    pub fn ids(&self) -> Vec<u32> {
        self.held.keys().copied().collect()
    }

    /// Takes the watchdog's reading of one held request's `request.total_size`; `true` once
    /// body bytes have stayed undelivered for [`GRACE_MS`].
    pub fn observe(&mut self, context_id: u32, total_size: Option<u64>, now_ms: u64) -> bool {
        let Some(held) = self.held.get_mut(&context_id) else {
            return false;
        };
        let grew = matches!((held.baseline, total_size), (Some(b), Some(n)) if n > b);
        if !grew {
            held.undelivered_since_ms = None;
            return false;
        }
        let since = *held.undelivered_since_ms.get_or_insert(now_ms);
        now_ms.saturating_sub(since) >= GRACE_MS
    }

    /// Every held request, released (they are answered with the refusal).
    pub fn drain(&mut self) -> Vec<u32> {
        let ids = self.ids();
        self.held.clear();
        ids
    }
}
