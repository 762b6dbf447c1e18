//! Outbound calls the core asks for (IdP token endpoint, JWKS, CIMD documents): `fetch` with a
//! timeout (an `AbortController` raced against a timer), a cap on the response body, and for
//! `cacheable` requests the Cache API honouring the response's `Cache-Control: max-age`.

use std::time::Duration;

use futures::future::{select, Either};
use futures::StreamExt as _;
use mcpgate_filter::{HttpRequest, HttpResponse};
use worker::{
    AbortController, ByteStream, Cache, Delay, Fetch, Headers, Method, Request, RequestInit,
    RequestRedirect, Response,
};

/// Reads `stream` to its end; `Ok(None)` as soon as it exceeds `cap` bytes.
pub async fn read_capped(stream: ByteStream, cap: usize) -> worker::Result<Option<Vec<u8>>> {
    let mut stream = stream;
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if out.len().saturating_add(chunk.len()) > cap {
            return Ok(None);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Some(out))
}

fn build(req: &HttpRequest) -> worker::Result<Request> {
    let headers = Headers::new();
    for (k, v) in &req.headers {
        headers.append(k, v)?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::from(req.method.to_string()))
        .with_headers(headers)
        .with_redirect(RequestRedirect::Manual);
    if !req.body.is_empty() {
        let body = js_sys::Uint8Array::from(req.body.as_slice());
        init.with_body(Some(body.into()));
    }
    Request::new_with_init(&req.url, &init)
}

async fn into_reply(mut resp: Response, cap: usize) -> worker::Result<HttpResponse> {
    let status = resp.status_code();
    let headers: Vec<(String, String)> = resp.headers().entries().collect();
    let body = match resp.stream() {
        Ok(stream) => match read_capped(stream, cap).await? {
            Some(b) => b,
            None => {
                worker::console_warn!("mcpgate: answer exceeds the limit of {cap} bytes");
                return Ok(HttpResponse::default());
            }
        },
        // No body at all.
        Err(_) => Vec::new(),
    };
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// Performs `req` within `timeout_ms`. Status 0 when there was no usable answer (connection
/// failure, timeout, body over `max_response_bytes`).
pub async fn send(req: &HttpRequest, timeout_ms: u64) -> HttpResponse {
    if req.cacheable {
        if let Some(hit) = cache_get(req).await {
            return hit;
        }
    }
    let controller = AbortController::default();
    let signal = controller.signal();
    let call = async {
        let request = build(req)?;
        let resp = Fetch::Request(request).send_with_signal(&signal).await?;
        into_reply(resp, req.max_response_bytes).await
    };
    let timer = Delay::from(Duration::from_millis(timeout_ms));
    futures::pin_mut!(call);
    let reply = match select(call, timer).await {
        Either::Left((Ok(r), _)) => r,
        Either::Left((Err(e), _)) => {
            worker::console_warn!("mcpgate: call to {} failed: {e}", host_of(&req.url));
            HttpResponse::default()
        }
        Either::Right(((), _)) => {
            controller.abort();
            worker::console_warn!(
                "mcpgate: call to {} timed out after {timeout_ms} ms",
                host_of(&req.url)
            );
            HttpResponse::default()
        }
    };
    if req.cacheable && reply.status == 200 {
        cache_put(req, &reply).await;
    }
    reply
}

/// The URL's authority, for logs (never the query, which may carry codes).
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?', '#']).next().unwrap_or("")
}

async fn cache_get(req: &HttpRequest) -> Option<HttpResponse> {
    if req.method != "GET" {
        return None;
    }
    let resp = Cache::default().get(req.url.as_str(), false).await.ok()??;
    into_reply(resp, req.max_response_bytes)
        .await
        .ok()
        .filter(|r| r.status == 200)
}

async fn cache_put(req: &HttpRequest, reply: &HttpResponse) {
    if req.method != "GET" {
        return;
    }
    // The core's rule: `max-age` honoured, capped at a day; never with no-store etc.
    let Some(age) = mcpgate_filter::http_cache::max_age(reply) else {
        return;
    };
    let headers = Headers::new();
    for (k, v) in &reply.headers {
        if !k.eq_ignore_ascii_case("cache-control") && !k.eq_ignore_ascii_case("set-cookie") {
            let _ = headers.append(k, v);
        }
    }
    let _ = headers.set("cache-control", &format!("max-age={age}"));
    let Ok(resp) = Response::from_bytes(reply.body.clone()) else {
        return;
    };
    if let Err(e) = Cache::default()
        .put(req.url.as_str(), resp.with_headers(headers))
        .await
    {
        worker::console_warn!("mcpgate: caching {} failed: {e}", host_of(&req.url));
    }
}
