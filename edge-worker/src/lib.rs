//! mcpgate as a Cloudflare Worker: a workers-rs host (`wasm32-unknown-unknown`) for the
//! `mcpgate-filter` core, serving the OAuth routes at the edge and forwarding authenticated MCP
//! traffic to the origin server (`MCPGATE_ORIGIN_URL`).
//!
//! * [`config`] — vars and secrets → the core's configuration plus the Worker-only keys;
//! * [`isolate`] — per-isolate state (core, key set, token cache), clock and randomness;
//! * [`drive`] — the outcome loop: IdP calls, the store, JWKS refetches;
//! * [`idp`] — outbound `fetch` with timeout, size cap and the Cache API for cacheable calls;
//! * [`jwks`] — the IdP's key set: per-isolate copy + Cache API, refresh / refetch rules;
//! * [`forward`] — proxying to the origin, bodies and responses streamed (a `tools/list`
//!   answer through the core's filter);
//! * [`store_do`] — the `McpgateStore` Durable Object (one-time use, revocation).
//!
//! Nothing here may panic (a panic poisons the isolate): `unwrap`, `expect`, `panic!` and
//! indexing are denied.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod config;
pub mod drive;
pub mod forward;
pub mod idp;
pub mod isolate;
pub mod jwks;
pub mod store_do;

// The platform's request, response and environment stay qualified (`worker::Request`…),
// the core's too (`mcpgate_filter::Request`): two of each kind meet in this file.
use worker::{console_error, event, Context};

use mcpgate_filter::respond::oauth_error;

use crate::drive::{to_response, Final};
use crate::store_do::StoreClient;

#[event(fetch)]
pub async fn fetch(
    req: worker::Request,
    env: worker::Env,
    ctx: Context,
) -> worker::Result<worker::Response> {
    match handle(req, &env, &ctx).await {
        Ok(resp) => Ok(resp),
        Err(e) => {
            console_error!("mcpgate: request failed: {e}");
            to_response(oauth_error(
                502,
                "server_error",
                "the authorization proxy could not complete the request",
            ))
        }
    }
}

async fn handle(
    mut req: worker::Request,
    env: &worker::Env,
    ctx: &Context,
) -> worker::Result<worker::Response> {
    let lookup = |name: &str| env.var(name).ok().map(|v| v.to_string());
    let iso = match isolate::get(&lookup) {
        Ok(iso) => iso,
        Err(e) => {
            // The error names the variable and the problem, never the value.
            console_error!("mcpgate: refusing the configuration: {e}");
            return to_response(oauth_error(
                500,
                "server_error",
                "the authorization proxy is not configured correctly",
            ));
        }
    };
    let store = env
        .durable_object(config::STORE_BINDING)
        .ok()
        .map(|ns| StoreClient::new(ns, iso.host.store_shards));
    if jwks::periodic_due(&iso) {
        ctx.wait_until(jwks::refresh(iso.clone(), jwks::Trigger::Periodic));
    }

    let method = req.method().to_string();
    let url = req.url()?;
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let headers: Vec<(String, String)> = req
        .headers()
        .entries()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    // OAuth POSTs, and MCP POSTs under `tool_rules`: read whole (bounded) for the core, then
    // forwarded as these bytes when it lets them through.
    let body = if let Some(max) = iso.gate.body_limit(&method, &path) {
        let declared = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.trim().parse::<usize>().ok());
        let read = match declared {
            Some(n) if n > max => None,
            _ => match req.stream() {
                Ok(stream) => idp::read_capped(stream, max).await?,
                Err(_) => Some(Vec::new()),
            },
        };
        match read {
            Some(b) => Some(b),
            None => return to_response(iso.gate.body_too_large(&method, &path)),
        }
    } else {
        None
    };

    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    // Cloudflare sets CF-Connecting-IP to the client's address (clients cannot override it).
    let client_address = headers
        .iter()
        .find(|(k, _)| k == "cf-connecting-ip")
        .map(|(_, v)| v.clone());
    let core_req = mcpgate_filter::Request {
        method: &method,
        path: &path,
        headers: &pairs,
        body: body.as_deref().unwrap_or_default(),
        client_address: client_address.as_deref(),
    };
    let done = match iso.with_env(store.is_some(), |gate, env| gate.handle(&core_req, env)) {
        Ok(first) => drive::drive(&iso, store.as_ref(), first).await,
        Err(e) => Err(e),
    };
    match done {
        Ok(Final::Respond(r)) => {
            if r.status >= 500 {
                console_error!(
                    "mcpgate: answered {} ({})",
                    r.status,
                    r.reason.unwrap_or("-")
                );
            }
            to_response(r)
        }
        Ok(Final::Forward(f)) => {
            let body = match &body {
                Some(b) => forward::Body::Bytes(b),
                None => forward::Body::Stream(req.inner()),
            };
            forward::proxy(&iso.host.origin_url, &method, &path, &headers, body, &f).await
        }
        Err(_) => to_response(oauth_error(
            500,
            "server_error",
            "internal error in the authorization proxy",
        )),
    }
}
