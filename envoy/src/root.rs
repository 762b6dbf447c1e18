//! The root context of a VM: reads and validates the plugin configuration, creates request
//! contexts, keeps the IdP's key set fresh from `on_tick`, and runs the watchdog of OAuth POSTs
//! held at their headers ([`crate::body_mode`]) from there too.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use mcpgate_filter::config::{from_vars, parse_json};
use mcpgate_filter::token_cache::TokenCache;
use mcpgate_filter::Gate;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, MapType};

use crate::body_mode::{self, Mode, Why};
use crate::host_config::{HostConfig, StoreKind, HOST_KEYS};
use crate::http_context::HttpCtx;
use crate::jwks::{self, Trigger};
use crate::metrics::Metrics;
use crate::native_rsa::EnvoyRsa;
use crate::outcome;
use crate::store;
use crate::vm::{now_ms, now_secs, Vm};

/// Tick period once this VM holds a key set.
const TICK: Duration = Duration::from_secs(1);
/// Tick period until then, so the first fetch happens right after start.
const FAST_TICK: Duration = Duration::from_millis(100);

#[derive(Default)]
pub struct Root {
    /// This root context's id (the watchdog acts on request contexts, then returns here).
    context_id: u32,
    vm: Option<Rc<Vm>>,
    /// The JWKS fetch this root context has in flight.
    jwks_call: Option<u32>,
    /// Whether the fast startup tick is still on.
    fast_tick: bool,
}

impl Root {
    pub fn new(context_id: u32) -> Self {
        Self {
            context_id,
            ..Self::default()
        }
    }

    fn configure(&mut self) -> Result<(), String> {
        let json = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            .map_err(|e| format!("cannot read the plugin configuration: {e:?}"))?
            .unwrap_or_default();
        let env = |name: &str| std::env::var(name).ok();
        // An empty configuration means: every key from the VM's environment (`MCPGATE_*`).
        let parsed = if json.iter().all(u8::is_ascii_whitespace) {
            from_vars(&env, HOST_KEYS)
        } else {
            parse_json(&json, HOST_KEYS, &env)
        }
        .map_err(|e| e.to_string())?;
        let host = HostConfig::parse(&parsed.host, &parsed.config).map_err(|e| e.to_string())?;
        let mut config = parsed.config;
        crate::cimd::reachable(&host, &mut config);
        let gate = Gate::new(config).map_err(|e| e.to_string())?;
        if host.store == StoreKind::SharedData {
            store::init();
            store::init_buckets();
        }
        jwks::init_lease();
        let token_cache = TokenCache::new(gate.config().token_cache_size);
        let declared = host.allow_on_headers_stop_iteration;
        let vm = Rc::new(Vm {
            http_cache: std::cell::RefCell::new(mcpgate_filter::http_cache::HttpCache::new(64)),
            token_cache: token_cache.into(),
            gate,
            host,
            jwks: Default::default(),
            metrics: Metrics::new(),
            native_rsa: EnvoyRsa::default(),
            token_cache_generation: Cell::new(0),
            body_mode: Cell::new(Mode::Pause),
            held: Default::default(),
        });
        let envoy = body_mode::envoy_version();
        match body_mode::initial(declared, envoy) {
            Mode::Refuse(why) => vm.refuse_bodies(why),
            Mode::Pause => {
                let version = envoy.map_or_else(
                    || "version unknown".to_string(),
                    |(major, minor)| format!("{major}.{minor}"),
                );
                log::info!(
                    "mcpgate: OAuth POSTs are held at their headers and answered from their \
                     bodies (Envoy {version}, allow_on_headers_stop_iteration declared; checked \
                     on live requests)"
                );
            }
        }
        self.vm = Some(vm);
        Ok(())
    }

    /// Checks the OAuth POSTs held at their headers: once Envoy has held a body back from one
    /// of them past the grace period, allow_on_headers_stop_iteration is not in effect — every
    /// held request is answered with the refusal and the VM refuses the routes from then on.
    fn watchdog(&self) {
        let Some(vm) = &self.vm else {
            return;
        };
        if vm.held.borrow().is_empty() {
            return;
        }
        let now = now_ms();
        let ids = vm.held.borrow().ids();
        let mut refuted = false;
        for id in ids {
            if hostcalls::set_effective_context(id).is_err() {
                vm.held.borrow_mut().release(id);
                continue;
            }
            let size = body_mode::request_total_size();
            if vm.held.borrow_mut().observe(id, size, now) {
                refuted = true;
                break;
            }
        }
        if refuted {
            vm.refuse_bodies(Why::NotDelivered);
            let held = vm.held.borrow_mut().drain();
            for id in held {
                if hostcalls::set_effective_context(id).is_ok() {
                    let accept = hostcalls::get_map_value(MapType::HttpRequestHeaders, "accept")
                        .ok()
                        .flatten()
                        .unwrap_or_default();
                    vm.metrics.denied(body_mode::REASON);
                    outcome::respond(&body_mode::refusal(Why::NotDelivered, &accept));
                }
            }
        }
        let _ = hostcalls::set_effective_context(self.context_id);
    }

    /// Loads a newer shared key set, and fetches one when due and this VM wins the lease.
    fn refresh_keys(&mut self) {
        let Some(vm) = &self.vm else {
            return;
        };
        vm.jwks.borrow_mut().sync();
        if self.jwks_call.is_none() {
            self.jwks_call = vm.start_jwks_fetch(Trigger::Tick);
        }
        if self.fast_tick && vm.jwks.borrow().current(now_secs(), &vm.host).is_some() {
            self.fast_tick = false;
            let _ = hostcalls::set_tick_period(TICK);
        }
    }
}

impl Context for Root {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        if self.jwks_call != Some(token_id) {
            return;
        }
        self.jwks_call = None;
        if let Some(vm) = &self.vm {
            let resp =
                outcome::read_call_response(body_size, mcpgate_filter::jwt::jwks::MAX_JWKS_BYTES);
            vm.jwks
                .borrow_mut()
                .complete(&resp, now_secs(), &vm.metrics);
        }
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        if let Err(e) = self.configure() {
            log::error!("mcpgate: refusing the plugin configuration: {e}");
            return false;
        }
        // No fetch from here: Envoy also configures throw-away VMs (config validation), whose
        // calls never complete. The first ticks come quickly and fetch.
        self.fast_tick = true;
        if hostcalls::set_tick_period(FAST_TICK).is_err() {
            log::warn!("mcpgate: cannot set the tick period; the JWKS is fetched on demand only");
        }
        true
    }

    fn on_tick(&mut self) {
        self.refresh_keys();
        // Last: it switches the effective context to request contexts and back.
        self.watchdog();
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(HttpCtx::new(context_id, self.vm.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
