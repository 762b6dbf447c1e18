//! The hostile-input suite (`mcpgate_e2e::hostile`) against the compiled filter in real Envoy:
//! one stack for every case, then Envoy must still be running, still serving, and its wasm VM
//! must not have trapped.

use mcpgate_e2e::envoy_setup::{GateOptions, GateStack};
use mcpgate_e2e::hostile::{assert_no_traps, run_all, HostileContext, Platform};
use serde_json::json;

#[tokio::test]
async fn hostile_inputs_get_their_specific_refusals_and_the_vm_survives() {
    let mut stack = GateStack::start(
        GateOptions::default()
            .set("accepted_client_ids", json!(["m2m-client"]))
            .set("accepted_client_scopes", json!([]))
            .set("store", json!("shared_data"))
            // The retired-key check needs the refetch on an unknown kid at once.
            .set("jwks_min_refetch_seconds", json!(0)),
    )
    .await
    .unwrap();
    let ctx = HostileContext::build(&stack.base_url, &stack.idp, Platform::Envoy)
        .await
        .unwrap();
    let report = run_all(&stack.base_url, &ctx).await;
    println!("{report}");

    assert!(
        stack.envoy.child.is_running(),
        "Envoy exited during the suite; log {}",
        stack.envoy.child.log_path().display()
    );
    assert_no_traps(
        &stack.envoy.child.log(),
        &[
            &["wasm log", "panicked"],
            &["Function: proxy_on_", "failed"],
        ],
    );
    report.assert_all_refused();
}
