//! Counters visible in Envoy's `/stats` (`mcpgate.*`). Envoy aggregates counters of the same
//! name across VMs (workers), so each VM defines its own ids for the same names.

use std::cell::RefCell;
use std::collections::BTreeMap;

use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

#[derive(Debug, Default)]
pub struct Metrics {
    ids: RefCell<BTreeMap<String, u32>>,
}

pub const REQUESTS_ALLOWED: &str = "mcpgate.requests_allowed";
pub const JWKS_FETCH_OK: &str = "mcpgate.jwks_fetch_ok";
pub const JWKS_FETCH_FAILED: &str = "mcpgate.jwks_fetch_failed";
pub const IDP_CALLS_OK: &str = "mcpgate.idp_calls_ok";
pub const IDP_CALLS_FAILED: &str = "mcpgate.idp_calls_failed";

impl Metrics {
    /// Defines the fixed counters up front so they show (as 0) before anything happened.
    pub fn new() -> Self {
        let m = Self::default();
        for name in [
            REQUESTS_ALLOWED,
            JWKS_FETCH_OK,
            JWKS_FETCH_FAILED,
            IDP_CALLS_OK,
            IDP_CALLS_FAILED,
        ] {
            m.id(name);
        }
        m
    }

    fn id(&self, name: &str) -> Option<u32> {
        if let Some(id) = self.ids.borrow().get(name) {
            return Some(*id);
        }
        let id = hostcalls::define_metric(MetricType::Counter, name).ok()?;
        self.ids.borrow_mut().insert(name.to_string(), id);
        Some(id)
    }

    pub fn inc(&self, name: &str) {
        if let Some(id) = self.id(name) {
            let _ = hostcalls::increment_metric(id, 1);
        }
    }

    /// `mcpgate.requests_denied.<reason>`, defined on first use.
    pub fn denied(&self, reason: &str) {
        let safe: String = reason
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.inc(&format!("mcpgate.requests_denied.{safe}"));
    }
}
