//! Request routing: one module per route.

use crate::gate::Gate;
use crate::http::{Env, Outcome, Reply, Request, Response};

/// A paused request's state, held by the host during a host call.
#[derive(Debug)]
pub enum Step {}

pub(crate) fn needs_body(_gate: &Gate, method: &str, _path: &str) -> bool {
    method == "POST"
}

pub(crate) fn handle(_gate: &Gate, _req: &Request, _env: &mut Env) -> Outcome {
    Outcome::Respond(Response {
        status: 501,
        headers: alloc::vec::Vec::new(),
        body: alloc::vec::Vec::new(),
        reason: Some("not_implemented"),
    })
}

pub(crate) fn resume(_gate: &Gate, step: Step, _reply: Reply, _env: &mut Env) -> Outcome {
    match step {}
}
