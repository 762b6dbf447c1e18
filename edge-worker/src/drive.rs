//! Drives the core's outcomes for one request until a final one: host calls (IdP fetches, the
//! Durable Object store, JWKS refetches) are awaited and their results handed back through
//! `Gate::resume`.

use std::rc::Rc;

use mcpgate_filter::{Forward, Outcome, Reply, Response};
use worker::Headers;

use crate::idp;
use crate::isolate::Isolate;
use crate::jwks::{self, Trigger};
use crate::store_do::StoreClient;
use mcpgate_filter::host::env::RandomFailed;

/// How a request ends.
pub enum Final {
    Respond(Response),
    Forward(Forward),
}

/// Carries out `first` and whatever follows.
pub async fn drive(
    iso: &Rc<Isolate>,
    store: Option<&StoreClient>,
    first: Outcome,
) -> Result<Final, RandomFailed> {
    let mut next = first;
    loop {
        let (paused, reply) = match next {
            Outcome::Respond(r) => return Ok(Final::Respond(r)),
            Outcome::Forward(f) => return Ok(Final::Forward(f)),
            Outcome::Fetch { request, paused } => {
                let resp = idp::send(&request, iso.host.common.idp_timeout_ms).await;
                (paused, Reply::Http(resp))
            }
            Outcome::Store { op, paused } => {
                let reply = match store {
                    Some(s) => s.perform(&op).await,
                    // Not produced with `store: false`.
                    None => Reply::StoreFailed,
                };
                (paused, reply)
            }
            Outcome::NeedKeys { paused } => {
                jwks::refresh(iso.clone(), Trigger::UnknownKid).await;
                (paused, Reply::Keys)
            }
        };
        next = iso.with_env(store.is_some(), |gate, env| gate.resume(paused, reply, env))?;
    }
}

/// The core's local answer as a Worker response (`set-cookie` and other repeated headers
/// appended, not merged).
pub fn to_response(r: Response) -> worker::Result<worker::Response> {
    let headers = Headers::new();
    for (k, v) in &r.headers {
        headers.append(k, v)?;
    }
    let resp = if r.body.is_empty() {
        worker::Response::empty()?
    } else {
        worker::Response::from_bytes(r.body)?
    };
    Ok(resp.with_status(r.status).with_headers(headers))
}
