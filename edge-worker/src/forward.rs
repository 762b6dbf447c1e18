//! Forwarding an authenticated request to the origin MCP server: the same method, the path
//! the core checked (its canonical form) and the query on `MCPGATE_ORIGIN_URL`, the core's
//! header changes applied (client credentials and
//! spoofed identity headers removed, the verified identity added), the request body streamed
//! through (on the MCP route buffered only under `tool_rules`, which read it) and the origin's
//! response streamed back as it arrives — `text/event-stream` included. The answer to a
//! `tools/list` the core filters goes through its [`ListFilter`]: a JSON answer read whole
//! (bounded), an SSE answer transformed chunk by chunk as it streams.

use std::cell::RefCell;
use std::rc::Rc;

use futures::StreamExt as _;
use mcpgate_filter::tools_list::{BodyKind, ListFilter, MAX_ANSWER_BYTES};
use mcpgate_filter::Forward;
use wasm_bindgen::JsCast as _;

/// Request headers never passed to the origin (connection-level, or set by the runtime).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "host",
    "content-length",
];

pub enum Body<'a> {
    /// The incoming request's body stream, passed through as it arrives.
    Stream(&'a web_sys::Request),
    /// A body the Worker already read (OAuth routes, MCP POSTs under `tool_rules`).
    Bytes(&'a [u8]),
}

/// Sends the request to the origin and returns its response unbuffered.
pub async fn proxy(
    origin: &str,
    method: &str,
    path_and_query: &str,
    headers: &[(String, String)],
    body: Body<'_>,
    f: &Forward,
) -> worker::Result<worker::Response> {
    let out = web_sys::Headers::new()?;
    for (k, v) in headers {
        let k = k.as_str();
        if HOP_BY_HOP.contains(&k) || f.remove_headers.iter().any(|r| r.eq_ignore_ascii_case(k)) {
            continue;
        }
        out.append(k, v)?;
    }
    for (k, v) in f.headers_to_set() {
        out.set(k, v)?;
    }
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    init.set_headers(&out);
    init.set_redirect(web_sys::RequestRedirect::Manual);
    if method != "GET" && method != "HEAD" {
        match body {
            Body::Stream(req) => {
                if let Some(stream) = req.body() {
                    init.set_body(&stream);
                }
            }
            Body::Bytes(b) if !b.is_empty() => {
                init.set_body(&js_sys::Uint8Array::from(b));
            }
            Body::Bytes(_) => {}
        }
    }
    // The canonical path the core checked, when it differs from the received one.
    let path_and_query = f.path.as_deref().unwrap_or(path_and_query);
    let url = format!("{origin}{path_and_query}");
    let request = web_sys::Request::new_with_str_and_init(&url, &init)?;
    let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    let resp = wasm_bindgen_futures::JsFuture::from(global.fetch_with_request(&request)).await?;
    let resp: web_sys::Response = resp.dyn_into()?;
    if let Some(filter) = &f.list_filter {
        return filtered(worker::Response::from(resp), filter, f).await;
    }
    if f.response_headers.is_empty() {
        return Ok(worker::Response::from(resp));
    }
    // A fetched response's headers are immutable: the same body stream, status and headers
    // in a new response, with the core's additions (CORS for browser-based clients).
    let headers = web_sys::Headers::new_with_headers(&resp.headers())?;
    for (k, v) in &f.response_headers {
        headers.set(k, v)?;
    }
    let init = web_sys::ResponseInit::new();
    init.set_status(resp.status());
    init.set_status_text(&resp.status_text());
    init.set_headers(&headers);
    let out =
        web_sys::Response::new_with_opt_readable_stream_and_init(resp.body().as_ref(), &init)?;
    Ok(worker::Response::from(out))
}

/// Encodings the Workers runtime decodes itself when it fetches (the header stays).
const DECODED_BY_RUNTIME: &[&str] = &["gzip", "x-gzip", "deflate", "br"];

/// The origin's answer to a `tools/list` the core asked to filter.
async fn filtered(
    mut resp: worker::Response,
    filter: &ListFilter,
    f: &Forward,
) -> worker::Result<worker::Response> {
    let status = resp.status_code();
    let entries: Vec<(String, String)> = resp.headers().entries().collect();
    // The runtime hands over the decoded body of the encodings it knows.
    let pairs: Vec<(&str, &str)> = entries
        .iter()
        .filter(|(k, v)| {
            !(k.eq_ignore_ascii_case("content-encoding")
                && DECODED_BY_RUNTIME.contains(&v.trim().to_ascii_lowercase().as_str()))
        })
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let kind = filter.body_kind(status, &pairs);
    let headers = worker::Headers::new();
    for (k, v) in &entries {
        // A rewritten body has another length, and is sent as it was read (decoded).
        let length_or_encoding =
            k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("content-encoding");
        if kind != BodyKind::Untouched && length_or_encoding {
            continue;
        }
        headers.append(k, v)?;
    }
    for (k, v) in &f.response_headers {
        headers.set(k, v)?;
    }
    let out = match kind {
        BodyKind::Untouched => return Ok(resp.with_headers(headers)),
        BodyKind::Json => {
            let body = match resp.stream() {
                Ok(stream) => crate::idp::read_capped(stream, MAX_ANSWER_BYTES).await?,
                Err(_) => Some(Vec::new()),
            };
            let out = match body {
                Some(b) => filter.json(&b),
                None => filter.too_large(),
            };
            worker::Response::from_bytes(out)?
        }
        BodyKind::Sse => {
            let stream = resp.stream()?;
            let sse = Rc::new(RefCell::new(filter.sse()));
            let last = sse.clone();
            let chunks = stream.map(move |chunk| {
                let chunk = chunk?;
                let mut out = Vec::with_capacity(chunk.len());
                sse.borrow_mut().push(&chunk, &mut out);
                Ok::<Vec<u8>, worker::Error>(out)
            });
            let rest = futures::stream::once(async move {
                let mut out = Vec::new();
                last.borrow_mut().finish(&mut out);
                Ok::<Vec<u8>, worker::Error>(out)
            });
            let body = chunks
                .chain(rest)
                .filter(|c| futures::future::ready(!matches!(c, Ok(b) if b.is_empty())));
            worker::Response::from_stream(body)?
        }
        BodyKind::Replace => {
            for (k, v) in filter.replaced_headers() {
                headers.set(k, v)?;
            }
            worker::Response::from_bytes(filter.unreadable())?
        }
    };
    Ok(out.with_status(status).with_headers(headers))
}
