//! Soak through the Worker under workerd: 100 complete OAuth flows one after the other
//! (register → authorize → consent → sign-in → callback → token → refresh → MCP call), no
//! failure, no request slower than 1 s, and an MCP server that received only the flows' MCP
//! calls. `MCPGATE_SOAK_FLOWS` changes the number of flows (`scripts/soak.sh` runs 1000).

use mcpgate_e2e::scenarios::HostOptions as _;
use mcpgate_e2e::soak;
use mcpgate_e2e::worker_setup::{WorkerOptions, WorkerStack};
use serde_json::json;

#[tokio::test]
async fn soak_complete_flows_through_the_worker() {
    // Every flow comes from 127.0.0.1: the per-address and per-client limits would stop it.
    let stack = WorkerStack::start(
        WorkerOptions::default()
            .config("rate_limit_per_address", json!(0))
            .config("rate_limit_per_client", json!(0)),
    )
    .await
    .unwrap();
    let report = soak::run(&stack, soak::flows_from_env(100)).await;
    println!("Worker {report}");
    report.assert_passed();
}
