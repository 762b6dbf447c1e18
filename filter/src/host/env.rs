//! One request's environment as every host builds it: the time, the operating system's
//! randomness, the usable IdP key set, and the verified-token cache — emptied whenever the key
//! set changes, so a retired key cannot keep vouching for tokens verified under it.

use crate::gate::Gate;
use crate::http::Env;
use crate::jwt::{KeySet, NativeRsa};
use crate::random::OsRandom;
use crate::token_cache::TokenCache;

/// The entropy source failed; the request must be refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RandomFailed;

/// A VM's or isolate's verified-token cache, tied to the key-set generation it was filled
/// under.
pub struct VerifiedTokens {
    cache: TokenCache,
    generation: u64,
    size: usize,
}

impl VerifiedTokens {
    pub fn new(size: usize) -> Self {
        Self {
            cache: TokenCache::new(size),
            generation: 0,
            size,
        }
    }

    /// The cache for key-set `generation`, emptied first if it was filled under another.
    pub fn for_generation(&mut self, generation: u64) -> &mut TokenCache {
        if self.generation != generation {
            self.cache = TokenCache::new(self.size);
            self.generation = generation;
        }
        &mut self.cache
    }

    pub fn len(&self) -> usize {
        self.cache.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }
}

/// What a host hands [`with_env`] for one call into the core.
pub struct HostState<'a> {
    pub now: u64,
    /// The usable IdP key set (see [`crate::host::jwks::KeySetCopy::current`]) and its
    /// generation.
    pub keys: Option<&'a KeySet>,
    pub generation: u64,
    pub store: bool,
    pub native_rsa: Option<&'a dyn NativeRsa>,
    pub verified: &'a mut VerifiedTokens,
}

/// Runs `f` (a `Gate::handle` or `Gate::resume`) with a fresh [`Env`]. Refuses the result
/// when the random source failed during the call.
pub fn with_env<R>(
    gate: &Gate,
    state: HostState<'_>,
    f: impl FnOnce(&Gate, &mut Env) -> R,
) -> Result<R, RandomFailed> {
    let mut random = OsRandom::default();
    let mut env = Env {
        now: state.now,
        random: &mut random,
        upstream_keys: state.keys,
        store: state.store,
        native_rsa: state.native_rsa,
        cache: Some(state.verified.for_generation(state.generation)),
    };
    let r = f(gate, &mut env);
    if random.failed() {
        return Err(RandomFailed);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_set_empties_the_cache() {
        let mut v = VerifiedTokens::new(4);
        let id = crate::jwt::Identity {
            sub: "alice".into(),
            username: None,
            groups: alloc::vec::Vec::new(),
            scope: alloc::string::String::new(),
            email: None,
            client_id: None,
            exp: u64::MAX,
            jti: None,
            sid: None,
            extra: alloc::vec::Vec::new(),
        };
        v.for_generation(1).insert("tok", id.into(), false);
        assert_eq!(v.len(), 1);
        assert_eq!(v.for_generation(1).len(), 1);
        assert!(v.for_generation(2).is_empty());
    }
}
