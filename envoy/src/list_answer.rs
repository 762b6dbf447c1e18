//! The origin's answer to a `tools/list` the core asked to filter (`filter_tools_list`),
//! moved through the core's [`ListFilter`] in Envoy's response callbacks. The filtering rule
//! is the core's; this only moves bytes:
//!
//! * a JSON answer is buffered by Envoy (`Pause` from the body callbacks) until it is
//!   complete, then replaced by its filtered form (over the core's limit: by its error);
//! * an SSE answer is rewritten chunk by chunk: each callback's bytes are replaced by what
//!   the core's [`SseFilter`] lets out now, and the stream goes on (`Continue`) — nothing is
//!   held beyond the event being received, so long-lived streams keep flowing;
//! * a compressed answer is replaced by the core's error.
//!
//! `Content-Length` is removed at the headers (the body changes size; Envoy then streams
//! HTTP/1.1 chunked).

use mcpgate_filter::tools_list::{BodyKind, ListFilter, SseFilter, MAX_ANSWER_BYTES};
use proxy_wasm::types::Action;

use crate::hostcalls::Host;

/// Where the answer's body stands.
pub enum ListAnswer {
    Json(ListFilter),
    Sse(SseFilter),
    /// Everything is dropped; these bytes are sent at the end.
    Replace(Vec<u8>),
}

impl ListAnswer {
    /// At the response headers: what to do with the body (`None`: pass it untouched).
    pub fn start(host: &dyn Host, filter: ListFilter) -> Option<Self> {
        let headers = host.response_headers();
        let status = headers.get(":status").parse::<u16>().unwrap_or(0);
        let answer = match headers.with_pairs(|pairs| filter.body_kind(status, pairs)) {
            BodyKind::Untouched => return None,
            BodyKind::Json => Self::Json(filter),
            BodyKind::Sse => Self::Sse(filter.sse()),
            BodyKind::Replace => {
                host.remove_response_header("content-encoding");
                for (name, value) in filter.replaced_headers() {
                    host.set_response_header(name, value);
                }
                Self::Replace(filter.unreadable())
            }
        };
        host.remove_response_header("content-length");
        Some(answer)
    }

    /// A body callback: `size` bytes are buffered for it.
    pub fn on_body(&mut self, host: &dyn Host, size: usize, end_of_stream: bool) -> Action {
        match self {
            Self::Json(filter) => {
                if size > MAX_ANSWER_BYTES {
                    let replacement = filter.too_large();
                    *self = Self::Replace(replacement);
                    return self.on_body(host, size, end_of_stream);
                }
                if !end_of_stream {
                    // Envoy keeps buffering; the next callback sees everything so far.
                    return Action::Pause;
                }
                let body = host.response_body(size);
                host.set_response_body(size, &filter.json(&body));
                Action::Continue
            }
            Self::Sse(sse) => {
                let chunk = host.response_body(size);
                let mut out = Vec::with_capacity(chunk.len());
                sse.push(&chunk, &mut out);
                if end_of_stream {
                    sse.finish(&mut out);
                }
                if out != chunk {
                    host.set_response_body(size, &out);
                }
                Action::Continue
            }
            Self::Replace(bytes) => {
                let out = if end_of_stream {
                    std::mem::take(bytes)
                } else {
                    Vec::new()
                };
                host.set_response_body(size, &out);
                Action::Continue
            }
        }
    }

    /// Trailers end the answer: a buffered JSON answer is rewritten now. (An SSE event still
    /// unfinished is dropped: clients do not dispatch it either.)
    pub fn on_trailers(&mut self, host: &dyn Host) {
        let size = host.response_body(usize::MAX).len();
        match self {
            Self::Json(filter) => {
                let out = if size > MAX_ANSWER_BYTES {
                    filter.too_large()
                } else {
                    filter.json(&host.response_body(size))
                };
                host.set_response_body(size, &out);
            }
            Self::Replace(bytes) => host.set_response_body(size, &std::mem::take(bytes)),
            Self::Sse(_) => {}
        }
    }
}
