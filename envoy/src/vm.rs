//! What one VM (one Envoy worker or the main thread) shares between its root context and its
//! request contexts: the configured core, host settings, the key-set cache, metrics. Plus the
//! host's clock and randomness.

use std::cell::{Cell, RefCell};

use mcpgate_filter::token_cache::TokenCache;
use mcpgate_filter::{Env, Gate};

use crate::body_mode::{self, Mode, Watch, Why};
use crate::host_config::{HostConfig, StoreKind};
use crate::jwks::{self, Trigger};
use crate::metrics::Metrics;
use crate::native_rsa::EnvoyRsa;
use crate::outcome;

pub struct Vm {
    /// Cacheable IdP answers (Client ID Metadata Documents), per `Cache-Control`.
    pub http_cache: RefCell<mcpgate_filter::http_cache::HttpCache>,
    pub gate: Gate,
    pub host: HostConfig,
    pub jwks: RefCell<jwks::Cache>,
    pub metrics: Metrics,
    pub native_rsa: EnvoyRsa,
    /// Verified tokens of this VM (the core's bounded cache), emptied whenever the IdP's key
    /// set changes.
    pub token_cache: RefCell<TokenCache>,
    /// The key-set generation `token_cache` was filled under.
    pub token_cache_generation: Cell<u64>,
    /// Whether OAuth POSTs are held at their headers or refused ([`body_mode`]).
    pub body_mode: Cell<Mode>,
    /// The OAuth POSTs held at their headers, for the watchdog.
    pub held: RefCell<Watch>,
}

/// Milliseconds since the Unix epoch, from the host.
pub fn now_ms() -> u64 {
    proxy_wasm::hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

pub fn now_secs() -> u64 {
    now_ms() / 1000
}

/// The entropy source failed; the request must be refused.
#[derive(Debug)]
pub struct RandomFailed;

impl Vm {
    /// From now on this VM refuses the OAuth POST routes: says so in the log and the gauge.
    pub fn refuse_bodies(&self, why: Why) {
        if self.body_mode.get() == Mode::Refuse(why) {
            return;
        }
        self.body_mode.set(Mode::Refuse(why));
        log::error!("{}", body_mode::log_line(why));
        self.metrics.oauth_body_unsupported(true);
    }

    /// Runs `f` with a fresh [`Env`]: now, randomness, this VM's key set, the store flag and
    /// the native RSA verifier.
    pub fn with_env<R>(&self, f: impl FnOnce(&Gate, &mut Env) -> R) -> Result<R, RandomFailed> {
        let now = now_secs();
        let (keys, generation) = {
            let jwks = self.jwks.borrow();
            (jwks.current(now, &self.host), jwks.generation())
        };
        let mut cache = self.token_cache.borrow_mut();
        if self.token_cache_generation.get() != generation {
            // A retired key must not keep vouching for tokens verified under it.
            *cache = TokenCache::new(self.gate.config().token_cache_size);
            self.token_cache_generation.set(generation);
        }
        let mut random = mcpgate_filter::random::OsRandom::default();
        let mut env = Env {
            now,
            random: &mut random,
            upstream_keys: keys.as_deref(),
            store: self.host.store == StoreKind::SharedData,
            native_rsa: self
                .host
                .native_rsa
                .then_some(&self.native_rsa as &dyn mcpgate_filter::jwt::NativeRsa),
            cache: Some(&mut cache),
        };
        let r = f(&self.gate, &mut env);
        if let Ok(http_cache) = self.http_cache.try_borrow() {
            self.metrics.cache_sizes(cache.len(), http_cache.len());
        }
        if random.failed() {
            log::error!("mcpgate: the host's random source failed");
            return Err(RandomFailed);
        }
        Ok(r)
    }

    /// Starts a JWKS fetch when one is due for `trigger` and this VM wins the shared lease.
    /// Returns the call token to wait for.
    pub fn start_jwks_fetch(&self, trigger: Trigger) -> Option<u32> {
        let now_ms = now_ms();
        let cache = self.jwks.borrow();
        if !cache.wants_refresh(trigger, now_ms / 1000, &self.host) {
            return None;
        }
        let previous = cache.try_lease(trigger, now_ms, &self.host)?;
        match outcome::dispatch(&self.host, &self.gate.jwks_request()) {
            Ok(token) => Some(token),
            Err(e) => {
                log::warn!("mcpgate: cannot fetch the JWKS now: {e}");
                cache.release(false, Some(previous));
                None
            }
        }
    }
}
