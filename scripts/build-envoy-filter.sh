#!/usr/bin/env bash
# Build the Envoy filter (crate mcpgate-envoy) for wasm32-wasip1, release. Idempotent; prints
# the path and size of the .wasm. Honours CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1; then
  rustup target add wasm32-wasip1 >&2
fi
cargo build -p mcpgate-envoy --target wasm32-wasip1 --release --locked >&2

target_dir="${CARGO_TARGET_DIR:-target}"
case "${target_dir}" in /*) ;; *) target_dir="$(pwd)/${target_dir}" ;; esac
wasm="${target_dir}/wasm32-wasip1/release/mcpgate_envoy.wasm"
if [ ! -f "${wasm}" ]; then
  echo "error: ${wasm} was not produced" >&2
  exit 1
fi
size=$(wc -c <"${wasm}")
echo "${wasm}"
echo "size: ${size} bytes ($(( size / 1024 )) KiB)" >&2
