//! The root context of a VM: reads and validates the plugin configuration, creates request
//! contexts, keeps the IdP's key set fresh from `on_tick`, and runs the watchdog of OAuth POSTs
//! held at their headers ([`crate::body_mode`]) from there too, and, with the fleet store,
//! its credentials refresh and revocation poll ([`crate::dynamodb::Background`]).

use std::rc::Rc;
use std::time::Duration;

use mcpgate_filter::config::{from_vars, parse_json};
use mcpgate_filter::host::jwks::Trigger;
use mcpgate_filter::Gate;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

use crate::body_mode::{self, Mode, Why};
use crate::config::{host_keys, HostConfig, StoreKind};
use crate::dynamodb::{self, credentials, replica, Background};
use crate::hostcalls::{Envoy, Host};
use crate::http_context::HttpCtx;
use crate::jwks;
use crate::vm::{self, Vm};

/// Tick period once this VM holds a key set.
const TICK: Duration = Duration::from_secs(1);
/// Tick period until then, so the first fetch happens right after start.
const FAST_TICK: Duration = Duration::from_millis(100);
/// Tick period with the fleet store: its revocation poll is due every `revocation_poll_ms`
/// (1 s by default), and a tick this short keeps the delay past that small.
const STORE_TICK: Duration = Duration::from_millis(250);

pub struct Root {
    host: Rc<dyn Host>,
    /// This root context's id (the watchdog acts on request contexts, then returns here).
    context_id: u32,
    vm: Option<Rc<Vm>>,
    /// The JWKS fetch this root context has in flight.
    jwks_call: Option<u32>,
    /// Whether the fast startup tick is still on.
    fast_tick: bool,
    /// The fleet store's credentials refresh and revocation poll.
    background: Background,
}

impl Root {
    pub fn new(context_id: u32) -> Self {
        Self::with_host(context_id, Rc::new(Envoy))
    }

    /// A root context on another host (the unit tests' fake).
    pub fn with_host(context_id: u32, host: Rc<dyn Host>) -> Self {
        Self {
            host,
            context_id,
            vm: None,
            jwks_call: None,
            fast_tick: false,
            background: Background::default(),
        }
    }

    /// This VM's state, once configured.
    pub fn vm(&self) -> Option<&Rc<Vm>> {
        self.vm.as_ref()
    }

    fn configure(&mut self) -> Result<(), String> {
        let json = self.host.plugin_configuration()?;
        let env = |name: &str| self.host.env_var(name);
        let keys = host_keys();
        // An empty configuration means: every key from the VM's environment (`MCPGATE_*`).
        let parsed = if json.iter().all(u8::is_ascii_whitespace) {
            from_vars(&env, &keys)
        } else {
            parse_json(&json, &keys, &env)
        }
        .map_err(|e| e.to_string())?;
        let config = HostConfig::parse(&parsed.host, &parsed.config).map_err(|e| e.to_string())?;
        let mut core = parsed.config;
        crate::cimd::reachable(&config, &mut core);
        let gate = Gate::new(core).map_err(|e| e.to_string())?;
        if let Some(d) = &config.dynamodb {
            let source = credentials::Source::from_env(&env);
            d.check_routes(&config, &source)
                .map_err(|e| e.to_string())?;
            log::info!(
                "mcpgate: fleet store: DynamoDB table {} at {}; AWS credentials: {}",
                d.table,
                d.endpoint,
                source.describe()
            );
            credentials::init_lease(&*self.host);
            replica::init(&*self.host);
        }
        if config.store != StoreKind::None {
            // With DynamoDB the slots hold the replica of the fleet's revocations.
            self.host.init_store();
        }
        jwks::init_lease(&*self.host);
        let declared = config.allow_on_headers_stop_iteration;
        let vm = Rc::new(Vm::new(self.host.clone(), gate, config));
        let envoy = body_mode::envoy_version(&*self.host);
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
        let now = self.host.now_ms();
        let ids = vm.held.borrow().ids();
        let mut refuted = false;
        for id in ids {
            if !self.host.set_effective_context(id) {
                vm.held.borrow_mut().release(id);
                continue;
            }
            let size = body_mode::request_total_size(&*self.host);
            if vm.held.borrow_mut().observe(id, size, now) {
                refuted = true;
                break;
            }
        }
        if refuted {
            vm.refuse_bodies(Why::NotDelivered);
            let held = vm.held.borrow_mut().drain();
            for id in held {
                if self.host.set_effective_context(id) {
                    let h = |name: &str| self.host.request_header(name).unwrap_or_default();
                    let (method, path, accept) = (h(":method"), h(":path"), h("accept"));
                    let r = body_mode::refusal_for(
                        &vm.gate,
                        Why::NotDelivered,
                        &method,
                        &path,
                        &accept,
                    );
                    vm.metrics.denied(body_mode::REASON);
                    vm::respond(&*self.host, &r);
                }
            }
        }
        self.host.set_effective_context(self.context_id);
    }

    /// Loads a newer shared key set, and fetches one when due and this VM wins the lease.
    fn refresh_keys(&mut self) {
        let Some(vm) = &self.vm else {
            return;
        };
        vm.jwks.borrow_mut().sync(&*self.host);
        if self.jwks_call.is_none() {
            self.jwks_call = vm.start_jwks_fetch(Trigger::Periodic);
        }
        let loaded = vm
            .jwks
            .borrow()
            .copy
            .current(vm.now_secs(), &vm.config.common.jwks)
            .is_some();
        if self.fast_tick && loaded {
            self.fast_tick = false;
            self.host.set_tick_period(self.tick_period());
        }
    }

    fn tick_period(&self) -> Duration {
        match self.vm.as_ref().and_then(|vm| vm.dynamodb.as_ref()) {
            Some(_) => STORE_TICK,
            None => TICK,
        }
    }

    /// The fleet store's background work, when configured.
    fn fleet_store(&mut self) {
        let Some(vm) = &self.vm else {
            return;
        };
        if let Some(client) = &vm.dynamodb {
            self.background.tick(&dynamodb::Ctx {
                host: &*vm.host,
                routes: &vm.config,
                client,
                metrics: &vm.metrics,
            });
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
        if let Some(vm) = &self.vm {
            if let (Some(client), true) = (&vm.dynamodb, self.background.owns(token_id)) {
                let resp = vm.call_response(body_size, crate::vm::MAX_STORE_ANSWER);
                let cx = dynamodb::Ctx {
                    host: &*vm.host,
                    routes: &vm.config,
                    client,
                    metrics: &vm.metrics,
                };
                self.background
                    .on_response(&cx, token_id, resp.status, &resp.body);
                return;
            }
        }
        if self.jwks_call != Some(token_id) {
            return;
        }
        self.jwks_call = None;
        if let Some(vm) = &self.vm {
            vm.complete_jwks_fetch(body_size);
        }
    }

    /// The VM is going away: the requests counted since the last tick still reach `/stats`.
    fn on_done(&mut self) -> bool {
        if let Some(vm) = &self.vm {
            vm.metrics.flush();
        }
        true
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
        if !self.host.set_tick_period(FAST_TICK) {
            log::warn!("mcpgate: cannot set the tick period; the JWKS is fetched on demand only");
        }
        true
    }

    fn on_tick(&mut self) {
        if let Some(vm) = &self.vm {
            vm.metrics.flush();
        }
        self.refresh_keys();
        self.fleet_store();
        // Last: it switches the effective context to request contexts and back.
        self.watchdog();
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(HttpCtx::new(
            context_id,
            self.host.clone(),
            self.vm.clone(),
        )))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
