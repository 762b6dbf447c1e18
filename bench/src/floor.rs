//! The floor row (1e): the empty proxy-wasm filter of `bench/empty-filter`, built here for
//! wasm32-wasip1 (release, the workspace's profile) and run by the same Envoy as mcpgate.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context};
use mcpgate_e2e::harness::{repo_root, target_dir};
use serde_json::{json, Value};

/// Builds the empty filter; returns its `.wasm`.
pub fn build() -> anyhow::Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "-q",
            "--release",
            "--locked",
            "--target",
            "wasm32-wasip1",
            "-p",
            "mcpgate-bench-empty-filter",
        ])
        .current_dir(repo_root())
        .status()
        .context("building the empty proxy-wasm filter")?;
    if !status.success() {
        bail!("building the empty proxy-wasm filter failed");
    }
    let wasm = target_dir().join("wasm32-wasip1/release/mcpgate_bench_empty_filter.wasm");
    if !wasm.is_file() {
        bail!("{} was not produced", wasm.display());
    }
    Ok(wasm)
}

/// Envoy's Wasm filter running the empty filter (same runtime as mcpgate: V8).
pub fn filter(wasm: &std::path::Path) -> Value {
    json!({"name": "envoy.filters.http.wasm", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
        "config": {
            "name": "empty", "root_id": "",
            "vm_config": {"vm_id": "empty", "runtime": "envoy.wasm.runtime.v8",
                          "code": {"local": {"filename": wasm.display().to_string()}}}
        }
    }})
}
