//! What one VM (one Envoy worker or the main thread) shares between its root context and its
//! request contexts: the host, the configured core, the host settings, the key-set cache, the
//! verified-token cache, metrics; and the host calls every part of the filter makes in the
//! same way (answers, header changes, calls to the IdP).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use mcpgate_filter::host::env::{with_env, HostState, RandomFailed, VerifiedTokens};
use mcpgate_filter::host::jwks::Trigger;
use mcpgate_filter::http_cache::HttpCache;
use mcpgate_filter::{Env, Forward, Gate, HttpRequest, HttpResponse, Reply, Response, StoreOp};

use crate::body_mode::{self, Mode, Watch, Why};
use crate::config::{HostConfig, StoreKind};
use crate::dynamodb::credentials::Source;
use crate::dynamodb::requests::{self, Expect};
use crate::dynamodb::Client;
use crate::hostcalls::Host;
use crate::jwks;
use crate::metrics::{Counter, Metrics};
use crate::native_rsa::EnvoyRsa;

pub struct Vm {
    pub host: Rc<dyn Host>,
    pub gate: Gate,
    pub config: HostConfig,
    pub jwks: RefCell<jwks::Cache>,
    pub metrics: Metrics,
    native_rsa: EnvoyRsa,
    /// Verified tokens of this VM (the core's bounded cache), emptied whenever the IdP's key
    /// set changes.
    verified: RefCell<VerifiedTokens>,
    /// Cacheable IdP answers (Client ID Metadata Documents), per `Cache-Control`.
    pub http_cache: RefCell<HttpCache>,
    /// Whether OAuth POSTs are held at their headers or refused ([`body_mode`]).
    pub body_mode: Cell<Mode>,
    /// The POSTs held at their headers, for the watchdog.
    pub held: RefCell<Watch>,
    /// Whether Envoy has handed a request held at its headers its body: the flag is in effect
    /// (it is the same for every request of the VM), so later requests are not watched.
    pub bodies_delivered: Cell<bool>,
    /// The fleet store's client (`store: "dynamodb"`).
    pub dynamodb: Option<Client>,
}

/// Largest DynamoDB answer read (a feed page is at most 1 MB).
pub const MAX_STORE_ANSWER: usize = 1 << 20;

/// Where a store operation stands.
pub enum StoreStep {
    /// Answered at once (shared data, the revocation replica, or a failure to send).
    Done(Reply),
    /// Sent to the fleet store: wait for this call, read its answer as `expect` says.
    Sent { token: u32, expect: Expect },
}

impl Vm {
    pub fn new(host: Rc<dyn Host>, gate: Gate, config: HostConfig) -> Self {
        let verified = VerifiedTokens::new(gate.config().token_cache_size);
        let dynamodb = config.dynamodb.clone().map(|c| {
            let env = |name: &str| host.env_var(name);
            Client::new(c, Source::from_env(&env))
        });
        Self {
            metrics: Metrics::new(host.clone()),
            native_rsa: EnvoyRsa::new(host.clone()),
            host,
            gate,
            config,
            jwks: RefCell::default(),
            verified: RefCell::new(verified),
            http_cache: RefCell::new(HttpCache::new(64)),
            body_mode: Cell::new(Mode::Pause),
            held: RefCell::default(),
            bodies_delivered: Cell::new(false),
            dynamodb,
        }
    }

    /// A held request's body reached the filter: it needs no watching, and neither do later
    /// ones.
    pub fn body_delivered(&self, context_id: u32) {
        self.bodies_delivered.set(true);
        self.held.borrow_mut().release(context_id);
    }

    /// Carries out a store operation: on shared data at once; on DynamoDB by a call the
    /// request waits for — except the revocation check, which reads the local replica.
    pub fn store(&self, op: &StoreOp) -> StoreStep {
        let now = self.now_secs();
        let Some(client) = &self.dynamodb else {
            return StoreStep::Done(self.host.store(op, now));
        };
        let Some(call) = requests::for_op(&client.config.table, op, now, self.host.now_ms()) else {
            return StoreStep::Done(self.host.store(op, now));
        };
        match client.send(&*self.host, &self.config, &call) {
            Ok(token) => StoreStep::Sent {
                token,
                expect: call.expect,
            },
            Err(e) => {
                log::warn!("mcpgate: fleet store call not sent: {e}");
                self.metrics.inc(Counter::StoreCallsFailed);
                StoreStep::Done(Reply::StoreFailed)
            }
        }
    }

    /// Reads the fleet store's answer to `op`: the reply, a refund sent on (a refused
    /// request's count), and a revocation recorded here at once (the feed brings it to the
    /// other processes).
    pub fn store_answer(&self, op: &StoreOp, expect: &Expect, resp: &HttpResponse) -> Reply {
        let decision = requests::decide(expect, resp.status, &resp.body);
        if decision.reply == Reply::StoreFailed {
            self.metrics.inc(Counter::StoreCallsFailed);
            let kind = requests::error_type(&resp.body).unwrap_or_default();
            log::warn!(
                "mcpgate: fleet store call failed (status {}{}{kind})",
                resp.status,
                if kind.is_empty() { "" } else { ", " }
            );
        } else {
            self.metrics.inc(Counter::StoreCallsOk);
        }
        if let (Some(client), Some(follow_up)) = (&self.dynamodb, &decision.follow_up) {
            // Not waited for: a lost refund only leaves one count too many in the window.
            let _ = client.send(&*self.host, &self.config, follow_up);
        }
        if let (StoreOp::Revoke { key, ttl }, Reply::Store(true)) = (op, &decision.reply) {
            let now = self.now_secs();
            let id = crate::store::entry_id(key);
            let _ = self.host.store_revoked(&id, now.saturating_add(*ttl), now);
        }
        decision.reply
    }

    pub fn now_secs(&self) -> u64 {
        self.host.now_ms() / 1000
    }

    /// From now on this VM refuses the OAuth POST routes: says so in the log and the gauge.
    pub fn refuse_bodies(&self, why: Why) {
        if self.body_mode.get() == Mode::Refuse(why) {
            return;
        }
        self.body_mode.set(Mode::Refuse(why));
        log::error!("{}", body_mode::log_line(why));
        self.metrics.oauth_body_unsupported(true);
    }

    /// Runs `f` with a fresh [`Env`] (the core's host kit): now, randomness, this VM's key
    /// set, the store flag, the native RSA verifier and the token cache.
    pub fn with_env<R>(&self, f: impl FnOnce(&Gate, &mut Env) -> R) -> Result<R, RandomFailed> {
        let now = self.now_secs();
        let (keys, generation) = {
            let jwks = self.jwks.borrow();
            (
                jwks.copy.current(now, &self.config.common.jwks),
                jwks.copy.generation(),
            )
        };
        let mut verified = self.verified.borrow_mut();
        let state = HostState {
            now,
            keys: keys.as_deref(),
            generation,
            store: self.config.store != StoreKind::None,
            native_rsa: self
                .config
                .native_rsa
                .then_some(&self.native_rsa as &dyn mcpgate_filter::jwt::NativeRsa),
            verified: &mut verified,
        };
        let r = with_env(&self.gate, state, f);
        if let Ok(http_cache) = self.http_cache.try_borrow() {
            self.metrics.cache_sizes(verified.len(), http_cache.len());
        }
        r.inspect_err(|_| log::error!("mcpgate: the host's random source failed"))
    }

    /// Starts a JWKS fetch when one is due for `trigger` and this VM wins the shared lease.
    /// Returns the call token to wait for.
    pub fn start_jwks_fetch(&self, trigger: Trigger) -> Option<u32> {
        let cache = self.jwks.borrow();
        let c = &self.config;
        let previous = cache.try_lease(
            &*self.host,
            trigger,
            &c.common.jwks,
            c.common.idp_timeout_ms,
        )?;
        match self.dispatch(&self.gate.jwks_request()) {
            Ok(token) => Some(token),
            Err(e) => {
                log::warn!("mcpgate: cannot fetch the JWKS now: {e}");
                cache.release(&*self.host, false, Some(previous));
                None
            }
        }
    }

    /// Loads the JWKS answer for every VM (see [`jwks::Cache::complete`]).
    pub fn complete_jwks_fetch(&self, body_size: usize) {
        let resp = self.call_response(body_size, mcpgate_filter::jwt::jwks::MAX_JWKS_BYTES);
        self.jwks
            .borrow_mut()
            .complete(&*self.host, &resp, &self.metrics);
    }

    /// Sends `req` through the Envoy cluster serving its URL's authority. Returns the call
    /// token.
    pub fn dispatch(&self, req: &HttpRequest) -> Result<u32, String> {
        let (cluster, scheme, authority, path) = self
            .config
            .route(&req.url)
            .ok_or_else(|| "no Envoy cluster configured for this URL's authority".to_string())?;
        let mut headers: Vec<(&str, &str)> = vec![
            (":method", req.method),
            (":path", path),
            (":authority", authority),
            (":scheme", scheme),
        ];
        for (k, v) in &req.headers {
            headers.push((k.as_str(), v.as_str()));
        }
        let length = req.body.len().to_string();
        let has_length = req
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-length"));
        if !req.body.is_empty() && !has_length {
            headers.push(("content-length", length.as_str()));
        }
        let body = (!req.body.is_empty()).then_some(req.body.as_slice());
        let timeout = Duration::from_millis(self.config.common.idp_timeout_ms);
        self.host.dispatch(cluster, &headers, body, timeout)
    }

    /// Reads the answer to a dispatched call (in `on_http_call_response`). Status 0 when there
    /// was no answer (failure, timeout) or the body exceeds `max_body`.
    pub fn call_response(&self, body_size: usize, max_body: usize) -> HttpResponse {
        let headers = self.host.call_response_headers();
        let status = headers.get(":status").parse::<u16>().unwrap_or(0);
        if body_size > max_body {
            log::warn!("mcpgate: IdP answer of {body_size} bytes exceeds the limit of {max_body}");
            return HttpResponse::default();
        }
        let body = if body_size == 0 {
            Vec::new()
        } else {
            self.host.call_response_body(body_size)
        };
        HttpResponse {
            status,
            headers: headers
                .iter()
                .filter(|(k, _)| !k.starts_with(':'))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body,
        }
    }

    /// Answers the client locally.
    pub fn respond(&self, r: &Response) {
        respond(&*self.host, r);
    }

    /// Applies a forward decision to the request headers: removals first, then the identity,
    /// then the canonical path the core checked (when it differs from the received one), one
    /// host call each. Writing the changed map back in one call costs Envoy more: it removes
    /// and adds every header of the request (measured with `bench-envoy --instructions`:
    /// ≈ 38k instructions against ≈ 20k for the six calls of a cached token, bench/RESULTS.md).
    pub fn apply_forward(&self, f: &Forward) {
        for name in f.remove_headers.iter() {
            self.host.remove_request_header(name);
        }
        for (name, value) in f.headers_to_set() {
            self.host.set_request_header(name, value);
        }
        if let Some(path) = &f.path {
            self.host.set_request_header(":path", path);
        }
    }
}

/// Answers the current request locally.
pub fn respond(host: &dyn Host, r: &Response) {
    let headers: Vec<(&str, &str)> = r
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    host.send_response(r.status, &headers, &r.body);
}
