//! What one Worker isolate keeps between requests: the configured core, the host settings, the
//! IdP's key set and the verified-token cache. Plus the clock and randomness handed to the core.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use mcpgate_filter::config::ConfigError;
use mcpgate_filter::token_cache::TokenCache;
use mcpgate_filter::{Env, Gate};

use crate::config::{self, HostConfig};
use crate::jwks;

pub struct Isolate {
    pub gate: Gate,
    pub host: HostConfig,
    pub jwks: RefCell<jwks::Cache>,
    /// Verified tokens of this isolate, emptied whenever the IdP's key set changes.
    token_cache: RefCell<TokenCache>,
    token_cache_generation: Cell<u64>,
}

thread_local! {
    /// Built on the first request; a bad configuration is remembered too (it cannot change
    /// without a new deployment, which starts new isolates).
    static ISOLATE: RefCell<Option<Result<Rc<Isolate>, ConfigError>>> = const { RefCell::new(None) };
}

/// The isolate's state, built from `lookup` on first use.
pub fn get(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Rc<Isolate>, ConfigError> {
    ISOLATE.with(|cell| {
        let mut slot = cell.borrow_mut();
        if let Some(state) = slot.as_ref() {
            return state.clone();
        }
        let state = config::load(lookup).map(|(gate, host)| {
            let token_cache = TokenCache::new(gate.config().token_cache_size);
            Rc::new(Isolate {
                gate,
                host,
                jwks: RefCell::new(jwks::Cache::default()),
                token_cache: RefCell::new(token_cache),
                token_cache_generation: Cell::new(0),
            })
        });
        *slot = Some(state.clone());
        state
    })
}

/// Milliseconds since the Unix epoch (`Date.now()`; in Workers it advances on I/O only).
pub fn now_ms() -> u64 {
    worker::Date::now().as_millis()
}

pub fn now_secs() -> u64 {
    now_ms() / 1000
}

/// The entropy source failed; the request must be refused.
#[derive(Debug)]
pub struct RandomFailed;

impl Isolate {
    /// Runs `f` with a fresh [`Env`]: now, randomness, the key set, the store flag and the
    /// token cache. Nothing is borrowed past the call, so it is safe between awaits.
    pub fn with_env<R>(
        &self,
        store: bool,
        f: impl FnOnce(&Gate, &mut Env) -> R,
    ) -> Result<R, RandomFailed> {
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
            store,
            native_rsa: None,
            cache: Some(&mut cache),
        };
        let r = f(&self.gate, &mut env);
        if random.failed() {
            worker::console_error!("mcpgate: the runtime's random source failed");
            return Err(RandomFailed);
        }
        Ok(r)
    }
}
