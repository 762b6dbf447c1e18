//! Real MCP clients through mcpgate as a Cloudflare Worker in workerd: the client scenarios of
//! `mcpgate_e2e::client_scenarios` (the same list as `clients_envoy.rs`).

use mcpgate_e2e::worker_setup::WorkerStack;

mcpgate_e2e::client_scenario_tests!(WorkerStack);
