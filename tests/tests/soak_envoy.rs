//! Soak through real Envoy: 1000 complete OAuth flows one after the other (register → authorize
//! → consent → sign-in → callback → token → refresh → MCP call), no failure, no request slower
//! than 1 s, and an MCP server that received only the flows' MCP calls. Ignored (a few minutes):
//! `scripts/soak.sh` runs it; `MCPGATE_SOAK_FLOWS` changes the number of flows.

use mcpgate_e2e::envoy_setup::{GateOptions, GateStack};
use mcpgate_e2e::soak;

#[tokio::test]
#[ignore = "soak: run by scripts/soak.sh"]
async fn soak_complete_flows_through_envoy() {
    let stack = GateStack::start(GateOptions::default().concurrency(2))
        .await
        .unwrap();
    let report = soak::run(&stack, soak::flows_from_env(1000)).await;
    println!("Envoy {report}");
    report.assert_passed();
}
