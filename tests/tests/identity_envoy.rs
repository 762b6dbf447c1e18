//! What the origin learns besides the identity headers (issue 16) through real Envoy: the
//! IdP's token of the user and the identity assertion, in front of the rmcp demo server and
//! the Python SDK's server (`mcpgate_e2e::identity_scenarios`; the Worker runs the same list
//! in `identity_worker.rs`).

use mcpgate_e2e::envoy_setup::GateStack;

mcpgate_e2e::identity_scenario_tests!(GateStack);

/// The same scenarios in front of an MCP server written with the official Python SDK.
mod python_origin {
    use super::GateStack;
    mcpgate_e2e::identity_scenario_tests!(GateStack, mcpgate_e2e::origin::OriginKind::Python);
}
