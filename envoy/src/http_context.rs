//! One request: build the core's [`Request`], buffer the body when the route needs it, and
//! drive the core's outcomes until a final one (answer or forward).
//!
//! Response callbacks are not implemented: the MCP server's responses (SSE included) stream
//! through unbuffered.

use std::rc::Rc;

use mcpgate_filter::{Continuation, HttpResponse, Outcome, Reply, Request};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, MapType};

use crate::jwks::Trigger;
use crate::metrics::{IDP_CALLS_FAILED, IDP_CALLS_OK, REQUESTS_ALLOWED};
use crate::outcome;
use crate::store;
use crate::vm::{now_secs, Vm};

/// What a paused request waits for.
enum Waiting {
    /// An IdP call; resume with its answer.
    Fetch {
        token: u32,
        max_body: usize,
        /// Set for cacheable fetches: where to keep the answer.
        cache_url: Option<String>,
        resume: Continuation,
    },
    /// A JWKS fetch this context started; resume with [`Reply::Keys`].
    Keys { token: u32, resume: Continuation },
}

pub struct HttpCtx {
    vm: Option<Rc<Vm>>,
    /// Method, path and headers of a request whose body is being buffered.
    pending: Option<Vec<(String, String)>>,
    waiting: Option<Waiting>,
    /// Whether Envoy was told to pause (a later forward must resume it).
    paused: bool,
    /// An OAuth request with a body: answered by the filter only, never by the upstream.
    local_only: bool,
}

impl HttpCtx {
    pub fn new(vm: Option<Rc<Vm>>) -> Self {
        Self {
            vm,
            pending: None,
            waiting: None,
            paused: false,
            local_only: false,
        }
    }

    fn request_headers() -> Vec<(String, String)> {
        hostcalls::get_map_bytes(MapType::HttpRequestHeaders)
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| {
                (
                    k.to_ascii_lowercase(),
                    String::from_utf8_lossy(&v).into_owned(),
                )
            })
            .collect()
    }

    /// The downstream peer's IP address (Envoy's `source.address`, port removed).
    fn client_address() -> Option<String> {
        let raw = hostcalls::get_property(vec!["source", "address"]).ok()??;
        let addr = String::from_utf8(raw).ok()?;
        let host = match addr.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => addr.as_str(),
        };
        Some(
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
        )
    }

    fn header<'h>(headers: &'h [(String, String)], name: &str) -> &'h str {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Hands the request to the core and drives the outcome.
    fn handle(&mut self, vm: &Rc<Vm>, headers: &[(String, String)], body: &[u8]) -> Action {
        let pairs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let path = Self::header(headers, ":path");
        let address = if vm.gate.wants_client_address(path) {
            Self::client_address()
        } else {
            None
        };
        let req = Request {
            method: Self::header(headers, ":method"),
            path: Self::header(headers, ":path"),
            headers: &pairs,
            body,
            client_address: address.as_deref(),
        };
        match vm.with_env(|gate, env| gate.handle(&req, env)) {
            Ok(o) => self.drive(vm, o),
            Err(_) => self.fail(),
        }
    }

    fn fail(&mut self) -> Action {
        self.local_only = false;
        outcome::respond(&outcome::oauth_error(
            500,
            "server_error",
            "internal error in the authorization filter",
        ));
        Action::Pause
    }

    fn resume(&mut self, vm: &Rc<Vm>, k: Continuation, reply: Reply) -> Action {
        match vm.with_env(|gate, env| gate.resume(k, reply, env)) {
            Ok(o) => self.drive(vm, o),
            Err(_) => self.fail(),
        }
    }

    /// Carries out outcomes until one is final or a host call is in flight.
    fn drive(&mut self, vm: &Rc<Vm>, mut next: Outcome) -> Action {
        loop {
            let (k, reply) = match next {
                Outcome::Respond(r) => {
                    match r.reason {
                        Some(reason) => {
                            vm.metrics.denied(reason);
                            log::debug!("mcpgate: {} ({reason})", r.status);
                        }
                        None => log::debug!("mcpgate: answered {}", r.status),
                    }
                    // The reply passes through this filter's response callback: let it.
                    self.local_only = false;
                    outcome::respond(&r);
                    return Action::Pause;
                }
                Outcome::Forward(f) => {
                    vm.metrics.inc(REQUESTS_ALLOWED);
                    outcome::apply_forward(&f);
                    if self.paused {
                        self.paused = false;
                        let _ = hostcalls::resume_http_request();
                    }
                    return Action::Continue;
                }
                Outcome::Store { op, resume } => (resume, store::perform(&op, now_secs())),
                Outcome::Fetch { request, resume }
                    if request.cacheable
                        && vm
                            .http_cache
                            .borrow()
                            .get(&request.url, now_secs())
                            .is_some() =>
                {
                    let cached = vm
                        .http_cache
                        .borrow()
                        .get(&request.url, now_secs())
                        .cloned();
                    (resume, Reply::Http(cached.unwrap_or_default()))
                }
                Outcome::Fetch { request, resume } => match outcome::dispatch(&vm.host, &request) {
                    Ok(token) => {
                        self.waiting = Some(Waiting::Fetch {
                            token,
                            max_body: request.max_response_bytes,
                            cache_url: request.cacheable.then(|| request.url.clone()),
                            resume,
                        });
                        self.paused = true;
                        return Action::Pause;
                    }
                    Err(e) => {
                        log::warn!("mcpgate: IdP call not sent: {e}");
                        vm.metrics.inc(IDP_CALLS_FAILED);
                        (resume, Reply::Http(HttpResponse::default()))
                    }
                },
                Outcome::NeedKeys { resume } => {
                    // Another VM may have fetched a newer set already.
                    if vm.jwks.borrow_mut().sync() {
                        (resume, Reply::Keys)
                    } else if let Some(token) = vm.start_jwks_fetch(Trigger::UnknownKid) {
                        self.waiting = Some(Waiting::Keys { token, resume });
                        self.paused = true;
                        return Action::Pause;
                    } else {
                        (resume, Reply::Keys)
                    }
                }
            };
            next = match vm.with_env(|gate, env| gate.resume(k, reply, env)) {
                Ok(o) => o,
                Err(_) => return self.fail(),
            };
        }
    }
}

impl Context for HttpCtx {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        let Some(vm) = self.vm.clone() else {
            return;
        };
        match self.waiting.take() {
            Some(Waiting::Fetch {
                token,
                max_body,
                cache_url,
                resume,
            }) if token == token_id => {
                let resp = outcome::read_call_response(body_size, max_body);
                if let Some(url) = cache_url {
                    vm.http_cache.borrow_mut().store(&url, &resp, now_secs());
                }
                if resp.status == 0 || resp.status >= 500 {
                    vm.metrics.inc(IDP_CALLS_FAILED);
                    log::warn!("mcpgate: IdP call failed (status {})", resp.status);
                } else {
                    vm.metrics.inc(IDP_CALLS_OK);
                }
                self.resume(&vm, resume, Reply::Http(resp));
            }
            Some(Waiting::Keys { token, resume }) if token == token_id => {
                let resp = outcome::read_call_response(
                    body_size,
                    mcpgate_filter::jwt::jwks::MAX_JWKS_BYTES,
                );
                vm.jwks
                    .borrow_mut()
                    .complete(&resp, now_secs(), &vm.metrics);
                self.resume(&vm, resume, Reply::Keys);
            }
            other => self.waiting = other,
        }
    }
}

impl HttpContext for HttpCtx {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let Some(vm) = self.vm.clone() else {
            return self.fail();
        };
        let headers = Self::request_headers();
        let method = Self::header(&headers, ":method");
        let path = Self::header(&headers, ":path");
        if !end_of_stream && vm.gate.needs_body(method, path) {
            // Pausing here would stop the body callbacks too (proxy-wasm turns a header pause
            // into "stop all"), so the headers continue and the body is held below. The route
            // only ever answers locally: strip credentials the upstream must not see, and hold
            // back whatever the upstream might answer to the bodiless request.
            for name in ["cookie", "authorization"] {
                let _ = hostcalls::remove_map_value(MapType::HttpRequestHeaders, name);
            }
            self.pending = Some(headers);
            self.local_only = true;
            return Action::Continue;
        }
        self.handle(&vm, &headers, &[])
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(vm) = self.vm.clone() else {
            return Action::Continue;
        };
        if self.pending.is_none() {
            return Action::Continue;
        }
        if body_size > vm.gate.config().max_body_bytes {
            self.pending = None;
            self.local_only = false;
            vm.metrics.denied("body_too_large");
            outcome::respond(&outcome::oauth_error(
                413,
                "invalid_request",
                "request body too large",
            ));
            return Action::Pause;
        }
        if !end_of_stream {
            return Action::Pause;
        }
        let Some(headers) = self.pending.take() else {
            return Action::Continue;
        };
        let body = hostcalls::get_buffer(BufferType::HttpRequestBody, 0, body_size)
            .ok()
            .flatten()
            .unwrap_or_default();
        self.paused = false;
        match self.handle(&vm, &headers, &body) {
            // The body was held; an IdP call (or the answer) is under way.
            Action::Continue => Action::Continue,
            _ => {
                self.paused = true;
                Action::Pause
            }
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        // Only OAuth requests with a body are held (their answer is the filter's own reply).
        // Every other response, SSE included, streams through untouched.
        if self.local_only {
            Action::Pause
        } else {
            Action::Continue
        }
    }
}
