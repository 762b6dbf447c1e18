//! The entry point hosts call: [`Gate::handle`] routes a request, [`Gate::resume`] continues
//! it after a host call.

use crate::config::{Config, ConfigError};
use crate::http::{Env, HttpRequest, Outcome, Reply, Request};

/// Where a paused request resumes. Opaque to hosts: they hold it while the host call runs.
#[derive(Debug)]
pub struct Continuation(pub(crate) crate::routes::Step);

/// The configured proxy. Immutable after construction; share it across requests.
pub struct Gate {
    pub(crate) cfg: Config,
}

impl Gate {
    pub fn new(cfg: Config) -> Result<Self, ConfigError> {
        Ok(Self { cfg })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Whether the route needs the request body (buffered by the host, at most
    /// `config().max_body_bytes`). Only the OAuth endpoints do; the MCP route never does.
    pub fn needs_body(&self, method: &str, path: &str) -> bool {
        crate::routes::needs_body(self, method, path)
    }

    pub fn handle(&self, req: &Request, env: &mut Env) -> Outcome {
        crate::routes::handle(self, req, env)
    }

    pub fn resume(&self, k: Continuation, reply: Reply, env: &mut Env) -> Outcome {
        crate::routes::resume(self, k.0, reply, env)
    }

    /// The request that fetches the IdP's JWKS, for hosts that keep it fresh.
    pub fn jwks_request(&self) -> HttpRequest {
        HttpRequest {
            method: "GET",
            url: self.cfg.upstream.jwks_uri.clone(),
            headers: alloc::vec![("accept".into(), "application/json".into())],
            body: alloc::vec::Vec::new(),
            max_response_bytes: crate::jwt::jwks::MAX_JWKS_BYTES,
        }
    }
}
