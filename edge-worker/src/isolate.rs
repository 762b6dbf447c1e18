//! What one Worker isolate keeps between requests: the configured core, the host settings, the
//! IdP's key set and the verified-token cache. Plus the clock and randomness handed to the core.

use std::cell::RefCell;
use std::rc::Rc;

use mcpgate_filter::config::ConfigError;
use mcpgate_filter::host::env::{with_env, HostState, RandomFailed, VerifiedTokens};
use mcpgate_filter::{Env, Gate};

use crate::config::{self, HostConfig};
use crate::jwks;

pub struct Isolate {
    pub gate: Gate,
    pub host: HostConfig,
    pub jwks: RefCell<jwks::Cache>,
    /// Verified tokens of this isolate, emptied whenever the IdP's key set changes.
    verified: RefCell<VerifiedTokens>,
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
            let verified = VerifiedTokens::new(gate.config().token_cache_size);
            Rc::new(Isolate {
                gate,
                host,
                jwks: RefCell::new(jwks::Cache::default()),
                verified: RefCell::new(verified),
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

impl Isolate {
    /// Runs `f` with a fresh [`Env`] (the core's host kit): now, randomness, the key set, the
    /// store flag and the token cache. Nothing is borrowed past the call, so it is safe
    /// between awaits.
    pub fn with_env<R>(
        &self,
        store: bool,
        f: impl FnOnce(&Gate, &mut Env) -> R,
    ) -> Result<R, RandomFailed> {
        let now = now_secs();
        let (keys, generation) = {
            let jwks = self.jwks.borrow();
            (
                jwks.copy.current(now, &self.host.common.jwks),
                jwks.copy.generation(),
            )
        };
        let mut verified = self.verified.borrow_mut();
        let state = HostState {
            now,
            keys: keys.as_deref(),
            generation,
            store,
            native_rsa: None,
            verified: &mut verified,
        };
        with_env(&self.gate, state, f).inspect_err(|_| {
            worker::console_error!("mcpgate: the runtime's random source failed");
        })
    }
}
