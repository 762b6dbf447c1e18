//! The hostile-input suite (`mcpgate_e2e::hostile`) against the compiled filter in real Envoy,
//! once in front of each origin (the rmcp demo server, and the official Python SDK's server,
//! which routes on the percent-decoded path): one stack for every case, then Envoy must still
//! be running, still serving, its wasm VM must not have trapped, and the origin must have
//! received nothing without a verified identity but the public path's requests.

use mcpgate_e2e::envoy_setup::{GateOptions, GateStack};
use mcpgate_e2e::hostile::{
    assert_no_traps, assert_origin_saw_only_verified, hostile_path_config, run_all, HostileContext,
    Platform,
};
use mcpgate_e2e::origin::OriginKind;
use serde_json::json;

async fn hostile_inputs(origin: OriginKind) {
    let mut opts = GateOptions::default()
        .origin(origin)
        .set("accepted_client_ids", json!(["m2m-client"]))
        .set("accepted_client_scopes", json!([]))
        .set("store", json!("shared_data"))
        // The retired-key check needs the refetch on an unknown kid at once.
        .set("jwks_min_refetch_seconds", json!(0))
        // Metadata documents on, as in the shipped configurations (a dynamic forward proxy).
        .set(
            "cimd_cluster",
            json!(mcpgate_e2e::envoy_setup::CIMD_CLUSTER),
        );
    for (key, value) in hostile_path_config() {
        opts = opts.set(key, value);
    }
    let mut stack = GateStack::start(opts).await.unwrap();
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
    assert_origin_saw_only_verified(&stack.origin).await;
}

#[tokio::test]
async fn hostile_inputs_get_their_specific_refusals_and_the_vm_survives() {
    hostile_inputs(OriginKind::Demo).await;
}

#[tokio::test]
async fn hostile_inputs_in_front_of_the_python_sdk_origin() {
    hostile_inputs(OriginKind::Python).await;
}
