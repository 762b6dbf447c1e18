//! Counters and gauges visible in Envoy's `/stats` (`mcpgate.*`). Envoy aggregates metrics of
//! the same name across VMs (workers), so each VM defines its own ids for the same names, and
//! gauges move by deltas: each shows the sum over the process's VMs. Forwarded requests are
//! counted in the VM and handed over on its tick ([`Metrics::allowed`]).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use crate::hostcalls::{Host, MetricKind};

pub struct Metrics {
    host: Rc<dyn Host>,
    /// The [`Counter`]s' ids, by their order in `Counter::ALL`.
    counters: [Cell<Option<u32>>; Counter::ALL.len()],
    /// The ids of the gauges and of the counters defined on first use (refusal reasons).
    ids: RefCell<BTreeMap<String, u32>>,
    /// The sizes this VM last added to the cache gauges.
    token_cache_entries: Cell<usize>,
    http_cache_entries: Cell<usize>,
    /// 1 while this VM refuses the OAuth POST routes.
    oauth_body_unsupported: Cell<usize>,
    /// Requests forwarded since the last [`Metrics::flush`].
    allowed: Cell<i64>,
}

/// The counters defined when the VM starts; their ids are kept in slots, so counting a
/// request looks nothing up.
#[derive(Clone, Copy)]
pub enum Counter {
    RequestsAllowed,
    JwksFetchOk,
    JwksFetchFailed,
    IdpCallsOk,
    IdpCallsFailed,
    /// Calls to the fleet store (DynamoDB) answered, and those that failed (no answer, an
    /// error, no credentials yet).
    StoreCallsOk,
    StoreCallsFailed,
    /// Revocations this process learnt from the fleet store's feed.
    RevocationsReplicated,
}

impl Counter {
    const ALL: [Counter; 8] = [
        Self::RequestsAllowed,
        Self::JwksFetchOk,
        Self::JwksFetchFailed,
        Self::IdpCallsOk,
        Self::IdpCallsFailed,
        Self::StoreCallsOk,
        Self::StoreCallsFailed,
        Self::RevocationsReplicated,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::RequestsAllowed => "mcpgate.requests_allowed",
            Self::JwksFetchOk => "mcpgate.jwks_fetch_ok",
            Self::JwksFetchFailed => "mcpgate.jwks_fetch_failed",
            Self::IdpCallsOk => "mcpgate.idp_calls_ok",
            Self::IdpCallsFailed => "mcpgate.idp_calls_failed",
            Self::StoreCallsOk => "mcpgate.store_calls_ok",
            Self::StoreCallsFailed => "mcpgate.store_calls_failed",
            Self::RevocationsReplicated => "mcpgate.revocations_replicated",
        }
    }
}

pub const TOKEN_CACHE_ENTRIES: &str = "mcpgate.token_cache_entries";
/// Gauge: cached IdP answers (Client ID Metadata Documents; bounded per VM).
pub const HTTP_CACHE_ENTRIES: &str = "mcpgate.http_cache_entries";
/// Gauge: VMs refusing the OAuth POST routes because Envoy cannot hand them request bodies
/// (see [`crate::body_mode`]); 0 when every VM serves them.
pub const OAUTH_BODY_UNSUPPORTED: &str = "mcpgate.oauth_body_unsupported";

impl Metrics {
    /// Defines the fixed counters up front so they show (as 0) before anything happened.
    pub fn new(host: Rc<dyn Host>) -> Self {
        let m = Self {
            host,
            counters: Default::default(),
            ids: RefCell::default(),
            token_cache_entries: Cell::default(),
            http_cache_entries: Cell::default(),
            oauth_body_unsupported: Cell::default(),
            allowed: Cell::default(),
        };
        for c in Counter::ALL {
            m.counter_id(c);
        }
        for name in [
            TOKEN_CACHE_ENTRIES,
            HTTP_CACHE_ENTRIES,
            OAUTH_BODY_UNSUPPORTED,
        ] {
            m.gauge_id(name);
        }
        m
    }

    /// `c`'s id, defined now if defining it failed before.
    fn counter_id(&self, c: Counter) -> Option<u32> {
        let slot = self.counters.get(c as usize)?;
        if slot.get().is_none() {
            slot.set(self.host.define_metric(MetricKind::Counter, c.name()));
        }
        slot.get()
    }

    fn gauge_id(&self, name: &str) -> Option<u32> {
        self.define(MetricKind::Gauge, name)
    }

    fn define(&self, kind: MetricKind, name: &str) -> Option<u32> {
        if let Some(id) = self.ids.borrow().get(name) {
            return Some(*id);
        }
        let id = self.host.define_metric(kind, name)?;
        self.ids.borrow_mut().insert(name.to_string(), id);
        Some(id)
    }

    pub fn inc(&self, c: Counter) {
        if let Some(id) = self.counter_id(c) {
            self.host.increment_metric(id, 1);
        }
    }

    /// Counts a forwarded request. The busiest counter is added up here and handed to Envoy
    /// by [`Metrics::flush`] on the VM's tick (every 100 ms): a host call on every request
    /// costs ≈ 1k instructions, and Envoy's stats sinks flush every few seconds anyway.
    pub fn allowed(&self) {
        self.allowed.set(self.allowed.get().saturating_add(1));
    }

    /// Hands the requests counted since the last flush to Envoy.
    pub fn flush(&self) {
        let n = self.allowed.take();
        if n > 0 {
            match self.counter_id(Counter::RequestsAllowed) {
                Some(id) if self.host.increment_metric(id, n) => {}
                // Kept for the next tick.
                _ => self.allowed.set(n),
            }
        }
    }

    /// Moves this VM's share of the cache gauges to the caches' current sizes (a host call only
    /// when a size changed).
    pub fn cache_sizes(&self, token_cache: usize, http_cache: usize) {
        self.set_share(TOKEN_CACHE_ENTRIES, &self.token_cache_entries, token_cache);
        self.set_share(HTTP_CACHE_ENTRIES, &self.http_cache_entries, http_cache);
    }

    /// Moves this VM's share of `mcpgate.oauth_body_unsupported` to 1 (refusing) or 0.
    pub fn oauth_body_unsupported(&self, refusing: bool) {
        self.set_share(
            OAUTH_BODY_UNSUPPORTED,
            &self.oauth_body_unsupported,
            usize::from(refusing),
        );
    }

    fn set_share(&self, name: &str, last: &Cell<usize>, now: usize) {
        let before = last.get();
        if before == now {
            return;
        }
        let delta = i64::try_from(now)
            .unwrap_or(i64::MAX)
            .saturating_sub(i64::try_from(before).unwrap_or(i64::MAX));
        if let Some(id) = self.gauge_id(name) {
            if self.host.increment_metric(id, delta) {
                last.set(now);
            }
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
        let name = format!("mcpgate.requests_denied.{safe}");
        if let Some(id) = self.define(MetricKind::Counter, &name) {
            self.host.increment_metric(id, 1);
        }
    }
}

impl Drop for Metrics {
    /// A VM's configuration is replaced (or the VM ends): its shares of the gauges go.
    fn drop(&mut self) {
        self.cache_sizes(0, 0);
        self.oauth_body_unsupported(false);
    }
}
