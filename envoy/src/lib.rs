//! mcpgate as an Envoy HTTP filter: a proxy-wasm (0.2.5) host for the `mcpgate-filter` core,
//! built for `wasm32-wasip1` and run by Envoy's V8 runtime.
//!
//! * [`hostcalls`] — every call into Envoy behind one trait ([`hostcalls::Host`]), so the
//!   logic below has unit tests that run without Envoy; its header-map read is the crate's
//!   one `unsafe` block (the SDK copies every header; [`header_map`] reads them in place);
//! * [`root`] — configuration (core keys plus the Envoy keys of [`config`]), ticks, the
//!   watchdog of held OAuth POSTs;
//! * [`drive`] — one request: body buffering, the core's outcomes, resumption after host
//!   calls ([`http_context`] is its proxy-wasm glue);
//! * [`vm`] — what a VM's contexts share, and the host calls they make alike (answers,
//!   header changes, IdP calls);
//! * [`cimd`] — whether metadata documents can be fetched (`cimd_cluster`);
//! * [`body_mode`] — holding OAuth POSTs (and MCP POSTs under `tool_rules`) at their headers
//!   (`allow_on_headers_stop_iteration`), the check that Envoy really does, and the refusal
//!   where it does not;
//! * [`list_answer`] — the answer to a `tools/list` moved through the core's filter;
//! * [`jwks`] — the IdP's key set, fetched once per Envoy process and shared by all workers;
//! * [`store`] — the one-time-use / revocation store on shared data;
//! * [`dynamodb`] — the fleet store on Amazon DynamoDB (SigV4, credentials, the revocation
//!   replica);
//! * [`native_rsa`] — Envoy's native `verify_signature` foreign function;
//! * [`metrics`] — `mcpgate.*` counters and gauges.
//!
//! A panic traps the VM and fails every request of its worker, so this crate denies
//! `unwrap`, `expect`, `panic!` and indexing (and `unsafe` without its safety argument).
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::undocumented_unsafe_blocks
    )
)]

pub mod body_mode;
pub mod cimd;
pub mod config;
pub mod drive;
pub mod dynamodb;
pub mod header_map;
pub mod hostcalls;
pub mod http_context;
pub mod jwks;
pub mod list_answer;
pub mod metrics;
pub mod native_rsa;
pub mod root;
pub mod store;
pub mod vm;

#[cfg(test)]
mod tests;

use proxy_wasm::traits::RootContext;
use proxy_wasm::types::LogLevel;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|context_id| -> Box<dyn RootContext> {
        Box::new(root::Root::new(context_id))
    });
}}
