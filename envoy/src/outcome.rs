//! Carrying out the core's outcomes with Envoy host calls: local responses, header changes,
//! outbound calls to the IdP.

use std::time::Duration;

use mcpgate_filter::{Forward, HttpRequest, HttpResponse, Response};
use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType};

use crate::host_config::HostConfig;

/// Sends `req` through the Envoy cluster serving its URL's authority. Returns the call token.
pub fn dispatch(host: &HostConfig, req: &HttpRequest) -> Result<u32, String> {
    let (cluster, scheme, authority, path) = host
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
    hostcalls::dispatch_http_call(
        cluster,
        headers,
        body,
        Vec::new(),
        Duration::from_millis(host.idp_timeout_ms),
    )
    .map_err(|status| format!("dispatch to cluster {cluster} failed: {status:?}"))
}

/// Reads the answer to a dispatched call (in `on_http_call_response`). Status 0 when there
/// was no answer (failure, timeout) or the body exceeds `max_body`.
pub fn read_call_response(body_size: usize, max_body: usize) -> HttpResponse {
    let headers: Vec<(String, String)> = hostcalls::get_map_bytes(MapType::HttpCallResponseHeaders)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let status = headers
        .iter()
        .find(|(k, _)| k == ":status")
        .and_then(|(_, v)| v.parse::<u16>().ok())
        .unwrap_or(0);
    if body_size > max_body {
        log::warn!("mcpgate: IdP answer of {body_size} bytes exceeds the limit of {max_body}");
        return HttpResponse {
            status: 0,
            headers: Vec::new(),
            body: Vec::new(),
        };
    }
    let body = if body_size == 0 {
        Vec::new()
    } else {
        hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
            .ok()
            .flatten()
            .unwrap_or_default()
    };
    HttpResponse {
        status,
        headers: headers
            .into_iter()
            .filter(|(k, _)| !k.starts_with(':'))
            .collect(),
        body,
    }
}

/// Answers the client locally.
pub fn respond(r: &Response) {
    let headers: Vec<(&str, &str)> = r
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if let Err(e) = hostcalls::send_http_response(u32::from(r.status), headers, Some(&r.body)) {
        log::warn!("mcpgate: sending a local response failed: {e:?}");
    }
}

/// An OAuth-style JSON error answered by the host itself.
pub fn oauth_error(status: u16, error: &str, description: &str) -> Response {
    let body = serde_json::json!({"error": error, "error_description": description});
    Response {
        status,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("cache-control".into(), "no-store".into()),
        ],
        body: body.to_string().into_bytes(),
        reason: None,
    }
}

/// Applies a forward decision to the request headers: removals first, then the identity,
/// then the canonical path the core checked (when it differs from the received one).
pub fn apply_forward(f: &Forward) {
    for name in &f.remove_headers {
        let _ = hostcalls::remove_map_value(MapType::HttpRequestHeaders, name);
    }
    for (name, value) in &f.set_headers {
        let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(value));
    }
    if let Some(path) = &f.path {
        let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, ":path", Some(path));
    }
}
