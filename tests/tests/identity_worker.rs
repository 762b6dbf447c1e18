//! What the origin learns besides the identity headers (issue 16) through the Worker in real
//! workerd: the IdP's token of the user and the identity assertion, in front of the rmcp demo
//! server and the Python SDK's server (`mcpgate_e2e::identity_scenarios`; Envoy runs the same
//! list in `identity_envoy.rs`).

use mcpgate_e2e::worker_setup::WorkerStack;

mcpgate_e2e::identity_scenario_tests!(WorkerStack);

/// The same scenarios in front of an MCP server written with the official Python SDK.
mod python_origin {
    use super::WorkerStack;
    mcpgate_e2e::identity_scenario_tests!(WorkerStack, mcpgate_e2e::origin::OriginKind::Python);
}
