//! The proxy-wasm glue of one request: Envoy's callbacks handed to the request logic in
//! [`crate::drive`], which does everything through the VM's host calls.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use crate::drive::Exchange;
use crate::hostcalls::Host;
use crate::vm::Vm;

pub struct HttpCtx(Exchange);

impl HttpCtx {
    pub fn new(context_id: u32, host: Rc<dyn Host>, vm: Option<Rc<Vm>>) -> Self {
        Self(Exchange::new(context_id, host, vm))
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
        self.0.on_call_response(token_id, body_size);
    }
}

impl HttpContext for HttpCtx {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.0.on_request_headers(end_of_stream)
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.0.on_request_body(body_size, end_of_stream)
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        self.0.on_request_trailers()
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        self.0.on_response_headers()
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.0.on_response_body(body_size, end_of_stream)
    }

    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> Action {
        self.0.on_response_trailers()
    }
}
