//! One request through the filter: build the core's [`Request`], buffer the body when the route
//! needs it, and drive the core's outcomes until a final one (answer or forward), through the
//! VM's [`Host`](crate::hostcalls::Host) only — so it has unit tests without Envoy.
//!
//! An OAuth POST is held at its headers until its body is complete (Envoy's
//! `allow_on_headers_stop_iteration`, see [`crate::body_mode`]): no byte of it goes upstream,
//! and the filter answers it from the body. So is an MCP POST when `tool_rules` are in force
//! (the core says so through `Gate::body_limit`): decided from its body, it then goes upstream
//! with that body, or is answered. Where Envoy cannot hold requests, they are refused at the
//! headers instead.
//!
//! The MCP server's responses (SSE included) stream through unbuffered; only the response
//! headers the core asked for (CORS) are set on them, and the answer to a `tools/list` the
//! core asked to filter goes through [`crate::list_answer`].

use std::rc::Rc;

use mcpgate_filter::host::jwks::Trigger;
use mcpgate_filter::respond;
use mcpgate_filter::tools_list::ListFilter;
use mcpgate_filter::{HttpResponse, Outcome, Paused, Reply, Request, StoreOp};
use proxy_wasm::types::Action;

use crate::body_mode::{self, Mode, Why};
use crate::dynamodb::requests::Expect;
use crate::header_map::HeaderMap;
use crate::hostcalls::Host;
use crate::list_answer::ListAnswer;
use crate::metrics::Counter;
use crate::vm::{StoreStep, Vm, MAX_STORE_ANSWER};

/// What a paused request waits for.
enum Waiting {
    /// An IdP call; resume with its answer.
    Fetch {
        token: u32,
        max_body: usize,
        /// Set for cacheable fetches: where to keep the answer.
        cache_url: Option<String>,
        paused: Paused,
    },
    /// A JWKS fetch this request started; resume with [`Reply::Keys`].
    Keys { token: u32, paused: Paused },
    /// A call to the fleet store (DynamoDB); resume with its reply.
    Store {
        token: u32,
        op: StoreOp,
        expect: Expect,
        paused: Paused,
    },
}

/// The filter's state for one request.
pub struct Exchange {
    context_id: u32,
    host: Rc<dyn Host>,
    vm: Option<Rc<Vm>>,
    /// Method, path and headers of a request held at its headers while its body is buffered.
    pending: Option<HeaderMap>,
    /// The largest body of the held request (the core's limit for its route).
    max_body: usize,
    waiting: Option<Waiting>,
    /// Whether Envoy was told to stop iteration (a later forward must resume the stream).
    stream_stopped: bool,
    /// Headers the core wants on the origin's response (CORS), set when it comes back.
    response_headers: Vec<(String, String)>,
    /// The core's filter for the answer to a `tools/list`, until the answer's headers come.
    list_filter: Option<ListFilter>,
    /// The answer being filtered.
    answer: Option<ListAnswer>,
}

/// The downstream peer's IP address (Envoy's `source.address`, port removed).
fn client_address(vm: &Vm) -> Option<String> {
    let raw = vm.host.property(&["source", "address"])?;
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

impl Drop for Exchange {
    fn drop(&mut self) {
        if let Some(vm) = &self.vm {
            if let Ok(mut held) = vm.held.try_borrow_mut() {
                held.release(self.context_id);
            }
        }
    }
}

impl Exchange {
    /// `vm` is `None` when the VM has no valid configuration (every request fails closed).
    pub fn new(context_id: u32, host: Rc<dyn Host>, vm: Option<Rc<Vm>>) -> Self {
        Self {
            context_id,
            host,
            vm,
            pending: None,
            max_body: 0,
            waiting: None,
            stream_stopped: false,
            response_headers: Vec::new(),
            list_filter: None,
            answer: None,
        }
    }

    pub fn on_request_headers(&mut self, end_of_stream: bool) -> Action {
        let Some(vm) = self.vm.clone() else {
            return self.fail_unconfigured();
        };
        let headers = vm.host.request_headers();
        let method = headers.get(":method");
        let path = headers.get(":path");
        let limit = if end_of_stream {
            None
        } else {
            vm.gate.body_limit(method, path)
        };
        if let Some(limit) = limit {
            return match vm.body_mode.get() {
                Mode::Refuse(why) => Self::refuse(&vm, why, &headers, method, path),
                Mode::Pause => {
                    // Held here (a real StopIteration with allow_on_headers_stop_iteration):
                    // nothing goes upstream, the body callbacks still come. The watchdog checks
                    // that they do, until one request of this VM has had its body.
                    if !vm.bodies_delivered.get() {
                        let baseline = body_mode::request_total_size(&*vm.host);
                        vm.held.borrow_mut().hold(self.context_id, baseline);
                    }
                    self.max_body = limit;
                    self.pending = Some(headers);
                    Action::Pause
                }
            };
        }
        self.handle(&vm, &headers, &[])
    }

    pub fn on_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(vm) = self.vm.clone() else {
            return Action::Continue;
        };
        if self.pending.is_none() {
            return self.hold_while_paused();
        }
        // The body reaches the filter: Envoy does hold requests at their headers as declared.
        vm.body_delivered(self.context_id);
        if body_size > self.max_body {
            return self.too_large(&vm);
        }
        if !end_of_stream {
            return Action::Pause;
        }
        self.complete_body(&vm, body_size)
    }

    /// Trailers end the request (HTTP/2 may send them after the last DATA frame).
    pub fn on_request_trailers(&mut self) -> Action {
        let Some(vm) = self.vm.clone() else {
            return Action::Continue;
        };
        if self.pending.is_none() {
            return self.hold_while_paused();
        }
        vm.body_delivered(self.context_id);
        let buffered = vm.host.request_body(usize::MAX).len();
        self.complete_body(&vm, buffered)
    }

    /// The origin's answer streams through untouched, but for the headers the core asked
    /// for (CORS for browser-based clients), which replace the origin's own, and a
    /// `tools/list` answer the core filters.
    pub fn on_response_headers(&mut self) -> Action {
        if let Some(vm) = &self.vm {
            for (name, value) in std::mem::take(&mut self.response_headers) {
                vm.host.set_response_header(&name, &value);
            }
            if let Some(filter) = self.list_filter.take() {
                self.answer = ListAnswer::start(&*vm.host, filter);
            }
        }
        Action::Continue
    }

    /// A chunk of the origin's answer: passed on, unless it is a `tools/list` answer being
    /// filtered.
    pub fn on_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        match (&self.vm, &mut self.answer) {
            (Some(vm), Some(answer)) => answer.on_body(&*vm.host, body_size, end_of_stream),
            _ => Action::Continue,
        }
    }

    /// The answer's trailers: a filtered answer ends here.
    pub fn on_response_trailers(&mut self) -> Action {
        if let (Some(vm), Some(answer)) = (&self.vm, &mut self.answer) {
            answer.on_trailers(&*vm.host);
        }
        Action::Continue
    }

    /// The answer to a call this request made (to the IdP, for the JWKS, to the fleet store).
    pub fn on_call_response(&mut self, token_id: u32, body_size: usize) {
        let Some(vm) = self.vm.clone() else {
            return;
        };
        match self.waiting.take() {
            Some(Waiting::Fetch {
                token,
                max_body,
                cache_url,
                paused,
            }) if token == token_id => {
                let resp = vm.call_response(body_size, max_body);
                if let Some(url) = cache_url {
                    vm.http_cache.borrow_mut().store(&url, &resp, vm.now_secs());
                }
                if resp.status == 0 || resp.status >= 500 {
                    vm.metrics.inc(Counter::IdpCallsFailed);
                    log::warn!("mcpgate: IdP call failed (status {})", resp.status);
                } else {
                    vm.metrics.inc(Counter::IdpCallsOk);
                }
                self.resume(&vm, paused, Reply::Http(resp));
            }
            Some(Waiting::Keys { token, paused }) if token == token_id => {
                vm.complete_jwks_fetch(body_size);
                self.resume(&vm, paused, Reply::Keys);
            }
            Some(Waiting::Store {
                token,
                op,
                expect,
                paused,
            }) if token == token_id => {
                let resp = vm.call_response(body_size, MAX_STORE_ANSWER);
                let reply = vm.store_answer(&op, &expect, &resp);
                self.resume(&vm, paused, reply);
            }
            other => self.waiting = other,
        }
    }

    /// Hands the request to the core and drives the outcome.
    fn handle(&mut self, vm: &Rc<Vm>, headers: &HeaderMap, body: &[u8]) -> Action {
        match self.decide(vm, headers, body) {
            Ok(o) => self.drive(vm, o),
            Err(_) => Self::fail(vm),
        }
    }

    fn decide(
        &self,
        vm: &Rc<Vm>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Outcome, mcpgate_filter::host::env::RandomFailed> {
        let path = headers.get(":path");
        let address = if vm.gate.wants_client_address(path) {
            client_address(vm)
        } else {
            None
        };
        headers.with_pairs(|pairs| {
            let req = Request {
                method: headers.get(":method"),
                path,
                headers: pairs,
                body,
                client_address: address.as_deref(),
            };
            vm.with_env(|gate, env| gate.handle(&req, env))
        })
    }

    /// A request of a VM without a valid configuration (Envoy refuses one, so this should
    /// not happen): answered 500, never passed on.
    fn fail_unconfigured(&self) -> Action {
        crate::vm::respond(&*self.host, &Self::internal_error());
        Action::Pause
    }

    fn internal_error() -> mcpgate_filter::Response {
        respond::oauth_error(
            500,
            "server_error",
            "internal error in the authorization filter",
        )
    }

    fn fail(vm: &Vm) -> Action {
        vm.respond(&Self::internal_error());
        Action::Pause
    }

    fn resume(&mut self, vm: &Rc<Vm>, paused: Paused, reply: Reply) -> Action {
        match vm.with_env(|gate, env| gate.resume(paused, reply, env)) {
            Ok(o) => self.drive(vm, o),
            Err(_) => Self::fail(vm),
        }
    }

    /// Carries out outcomes until one is final or a host call is in flight.
    fn drive(&mut self, vm: &Rc<Vm>, mut next: Outcome) -> Action {
        loop {
            let (paused, reply) = match next {
                Outcome::Respond(r) => {
                    match r.reason {
                        Some(reason) => {
                            vm.metrics.denied(reason);
                            log::debug!("mcpgate: {} ({reason})", r.status);
                        }
                        None => log::debug!("mcpgate: answered {}", r.status),
                    }
                    vm.respond(&r);
                    return Action::Pause;
                }
                Outcome::Forward(f) => {
                    vm.metrics.allowed();
                    vm.apply_forward(&f);
                    self.response_headers = f.response_headers;
                    self.list_filter = f.list_filter;
                    if self.stream_stopped {
                        self.stream_stopped = false;
                        vm.host.resume_request();
                    }
                    return Action::Continue;
                }
                Outcome::Store { op, paused } => match vm.store(&op) {
                    StoreStep::Done(reply) => (paused, reply),
                    StoreStep::Sent { token, expect } => {
                        self.waiting = Some(Waiting::Store {
                            token,
                            op,
                            expect,
                            paused,
                        });
                        self.stream_stopped = true;
                        return Action::Pause;
                    }
                },
                Outcome::Fetch { request, paused } => {
                    let cached = request
                        .cacheable
                        .then(|| {
                            vm.http_cache
                                .borrow()
                                .get(&request.url, vm.now_secs())
                                .cloned()
                        })
                        .flatten();
                    match cached {
                        Some(hit) => (paused, Reply::Http(hit)),
                        None => match vm.dispatch(&request) {
                            Ok(token) => {
                                self.waiting = Some(Waiting::Fetch {
                                    token,
                                    max_body: request.max_response_bytes,
                                    cache_url: request.cacheable.then(|| request.url.clone()),
                                    paused,
                                });
                                self.stream_stopped = true;
                                return Action::Pause;
                            }
                            Err(e) => {
                                log::warn!("mcpgate: IdP call not sent: {e}");
                                vm.metrics.inc(Counter::IdpCallsFailed);
                                (paused, Reply::Http(HttpResponse::default()))
                            }
                        },
                    }
                }
                Outcome::NeedKeys { paused } => {
                    // Another VM may have fetched a newer set already.
                    if vm.jwks.borrow_mut().sync(&*vm.host) {
                        (paused, Reply::Keys)
                    } else if let Some(token) = vm.start_jwks_fetch(Trigger::UnknownKid) {
                        self.waiting = Some(Waiting::Keys { token, paused });
                        self.stream_stopped = true;
                        return Action::Pause;
                    } else {
                        (paused, Reply::Keys)
                    }
                }
            };
            next = match vm.with_env(|gate, env| gate.resume(paused, reply, env)) {
                Ok(o) => o,
                Err(_) => return Self::fail(vm),
            };
        }
    }

    /// Answers a POST that this Envoy cannot hand the body of ([`body_mode`]).
    fn refuse(vm: &Vm, why: Why, headers: &HeaderMap, method: &str, path: &str) -> Action {
        vm.metrics.denied(body_mode::REASON);
        let accept = headers.get("accept");
        vm.respond(&body_mode::refusal_for(&vm.gate, why, method, path, accept));
        Action::Pause
    }

    /// The body is complete (`body_size` bytes buffered): hands the held request to the core.
    fn complete_body(&mut self, vm: &Rc<Vm>, body_size: usize) -> Action {
        if body_size > self.max_body {
            return self.too_large(vm);
        }
        let Some(headers) = self.pending.take() else {
            return Action::Continue;
        };
        let body = vm.host.request_body(body_size);
        self.stream_stopped = false;
        match self.handle(vm, &headers, &body) {
            // Only a forward continues (the core answers the OAuth routes itself).
            Action::Continue => Action::Continue,
            _ => {
                self.stream_stopped = true;
                Action::Pause
            }
        }
    }

    /// A body or trailers callback of a request that is not held for its body. While the request
    /// is held at its headers for a host call (JWKS, IdP), they must not continue it: with
    /// `allow_on_headers_stop_iteration` Envoy delivers them during the pause, and a `Continue`
    /// would send the undecided request upstream. Envoy buffers them until the decision
    /// resumes the request (forward) or answers it.
    fn hold_while_paused(&self) -> Action {
        if self.stream_stopped {
            Action::Pause
        } else {
            Action::Continue
        }
    }

    fn too_large(&mut self, vm: &Vm) -> Action {
        let headers = self.pending.take().unwrap_or_default();
        vm.metrics.denied("body_too_large");
        vm.respond(
            &vm.gate
                .body_too_large(headers.get(":method"), headers.get(":path")),
        );
        Action::Pause
    }
}
