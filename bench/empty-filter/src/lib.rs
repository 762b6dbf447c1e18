//! The floor of any proxy-wasm filter, for bench-envoy's row 1e: the same SDK as mcpgate
//! (proxy-wasm 0.2.5, wasm32-wasip1, V8), an HTTP context per request, and a request-headers
//! callback that returns `Continue` without a single host call. Whatever Envoy spends on it
//! beyond no filter at all is the cost of the proxy-wasm ABI itself (context creation, the
//! callbacks into the VM), which no filter can go below.

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

struct Empty;

impl Context for Empty {}

impl HttpContext for Empty {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        Action::Continue
    }
}

proxy_wasm::main! {{
    proxy_wasm::set_http_context(|_, _| -> Box<dyn HttpContext> { Box::new(Empty) });
}}
