//! Real MCP clients through mcpgate in real Envoy: each client's discovery, registration or
//! metadata document, authorization, token, tool call and refresh, as its fixture in
//! `tests/fixtures/clients/` says it sends them (`mcpgate_e2e::client_scenarios`; the Worker runs
//! the same list in `clients_worker.rs`). Metadata documents come from a local server through
//! Envoy's dynamic forward proxy cluster (`cimd_cluster`).

use mcpgate_e2e::envoy_setup::GateStack;

mcpgate_e2e::client_scenario_tests!(GateStack);
