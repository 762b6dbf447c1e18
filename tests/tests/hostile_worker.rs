//! The hostile-input suite (`mcpgate_e2e::hostile`) against the Worker in real workerd
//! (`wrangler dev --local`): the same cases as in Envoy (with what the platform does first,
//! `Platform::Worker`), once in front of each origin (the rmcp demo server and the official
//! Python SDK's server); then wrangler must still run, the wasm must not have trapped, the
//! Worker must still serve (the suite's last checks), and the origin must have received
//! nothing without a verified identity but the public path's requests.

use mcpgate_e2e::hostile::{
    assert_no_traps, assert_origin_saw_only_verified, hostile_path_config, run_all, HostileContext,
    Platform,
};
use mcpgate_e2e::origin::OriginKind;
use mcpgate_e2e::scenarios::HostOptions as _;
use mcpgate_e2e::worker_setup::{WorkerOptions, WorkerStack};

async fn hostile_inputs(origin: OriginKind) {
    let mut opts = WorkerOptions::default()
        .origin(origin)
        .var("MCPGATE_ACCEPTED_CLIENT_IDS", "m2m-client")
        .var("MCPGATE_ACCEPTED_CLIENT_SCOPES", "[]")
        .var("MCPGATE_RATE_LIMIT_PER_ADDRESS", "100000")
        .var("MCPGATE_RATE_LIMIT_PER_CLIENT", "100000")
        // The retired-key check needs the refetch on an unknown kid at once.
        .var("MCPGATE_JWKS_MIN_REFETCH_SECONDS", "0");
    for (key, value) in hostile_path_config() {
        opts = opts.config(key, value);
    }
    let mut stack = WorkerStack::start(opts).await.unwrap();
    let ctx = HostileContext::build(&stack.base_url, &stack.idp, Platform::Worker)
        .await
        .unwrap();
    let report = run_all(&stack.base_url, &ctx).await;
    println!("{report}");

    assert!(
        stack.wrangler.try_exit_status().is_none(),
        "wrangler exited during the suite; log {}",
        stack.wrangler.log_path().display()
    );
    // A Rust panic in the wasm module shows as an `unreachable` trap in workerd's log.
    assert_no_traps(
        &stack.wrangler.log(),
        &[&["panicked"], &["RuntimeError: unreachable"]],
    );
    report.assert_all_refused();
    assert_origin_saw_only_verified(&stack.origin).await;
}

#[tokio::test]
async fn hostile_inputs_get_their_specific_refusals_in_the_worker() {
    hostile_inputs(OriginKind::Demo).await;
}

#[tokio::test]
async fn hostile_inputs_in_the_worker_in_front_of_the_python_sdk_origin() {
    hostile_inputs(OriginKind::Python).await;
}
