#!/usr/bin/env bash
# Build the Cloudflare Worker (crate mcpgate-edge-worker, edge-worker/) offline and check it:
#   * npm ci in edge-worker/ when node_modules is missing or older than package-lock.json
#     (pinned wrangler 4.86.0 with workerd + esbuild, binaryen 132 for wasm-opt);
#   * cargo install worker-build 0.8.7 / wasm-bindgen-cli 0.2.130 into ~/.cargo/bin only when
#     missing or at another version;
#   * worker-build --release with WASM_BINDGEN_BIN / ESBUILD_BIN / WASM_OPT_BIN pointing at
#     local binaries, so nothing is downloaded (MCPGATE_WORKER_NO_OPT=1 skips wasm-opt);
#   * wrangler deploy --dry-run --outdir edge-worker/dist (no network, no metrics);
#   * prints the gzipped bundle size and fails when it reaches 1 MiB.
# Idempotent, and quick when nothing changed: the bundle is rebuilt only when a source it is
# built from is newer than the last build's stamp (test processes call this script each, so
# it also takes a lock: concurrent callers wait, then find the bundle built).
# Prints the path of edge-worker/build/worker/shim.mjs last on stdout.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$(pwd)"
worker_dir="${root}/edge-worker"
shim="${worker_dir}/build/worker/shim.mjs"
stamp_dir="${CARGO_TARGET_DIR:-${root}/target}"
mkdir -p "${stamp_dir}"
# One stamp per kind of build (with or without wasm-opt); building removes the other's.
stamp="${stamp_dir}/worker-bundle${MCPGATE_WORKER_NO_OPT:+-no-opt}.stamp"
exec 9>"${stamp_dir}/worker-bundle.lock"
flock 9
newer_source() {
  find "${root}/filter" "${worker_dir}/src" "${worker_dir}/Cargo.toml" "${worker_dir}/wrangler.toml" \
    "${worker_dir}/package-lock.json" "${root}/Cargo.toml" "${root}/Cargo.lock" \
    "${BASH_SOURCE[0]}" -type f -newer "${stamp}" -print -quit 2>/dev/null
}
if [ -f "${stamp}" ] && [ -f "${shim}" ] && [ -d "${worker_dir}/dist" ] \
  && [ -x "${worker_dir}/node_modules/.bin/wrangler" ] && [ -z "$(newer_source)" ]; then
  echo "the Worker bundle is up to date ($(cat "${stamp}"))" >&2
  echo "${shim}"
  exit 0
fi

WORKER_BUILD_VERSION="0.8.7"
WASM_BINDGEN_VERSION="0.2.130"
MAX_GZIP_BYTES=$((1024 * 1024))

export WRANGLER_SEND_METRICS=false
export WRANGLER_SEND_ERROR_REPORTS=false
export WRANGLER_HIDE_BANNER=true
export CLOUDFLARE_CF_FETCH_ENABLED=false
export NO_UPDATE_NOTIFIER=1

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown >&2
fi

# npm packages (wrangler, workerd, esbuild, binaryen), exactly as locked.
if [ ! -f "${worker_dir}/node_modules/.package-lock.json" ] \
  || [ "${worker_dir}/package-lock.json" -nt "${worker_dir}/node_modules/.package-lock.json" ] \
  || [ ! -x "${worker_dir}/node_modules/.bin/wrangler" ]; then
  (cd "${worker_dir}" && npm ci --no-audit --no-fund >&2)
fi

cargo_bin="${CARGO_HOME:-${HOME}/.cargo}/bin"
version_of() { "$1" --version 2>/dev/null | awk '{print $2}' || true; }
if [ "$(version_of "${cargo_bin}/worker-build")" != "${WORKER_BUILD_VERSION}" ]; then
  cargo install worker-build --version "=${WORKER_BUILD_VERSION}" --locked >&2
fi
if [ "$(version_of "${cargo_bin}/wasm-bindgen")" != "${WASM_BINDGEN_VERSION}" ]; then
  # --locked fails for this version; the CLI must equal the lock file's wasm-bindgen.
  cargo install wasm-bindgen-cli --version "=${WASM_BINDGEN_VERSION}" >&2
fi

export WASM_BINDGEN_BIN="${cargo_bin}/wasm-bindgen"
export ESBUILD_BIN="${worker_dir}/node_modules/.bin/esbuild"
export WASM_OPT_BIN="${worker_dir}/node_modules/.bin/wasm-opt"
opt_flag=()
if [ "${MCPGATE_WORKER_NO_OPT:-0}" = "1" ]; then
  opt_flag=(--no-opt)
fi

rm -f "${stamp_dir}"/worker-bundle*.stamp
(cd "${worker_dir}" && "${cargo_bin}/worker-build" --release "${opt_flag[@]}" >&2)
if [ ! -f "${shim}" ]; then
  echo "error: ${shim} was not produced" >&2
  exit 1
fi

# What would be uploaded, without uploading (checks wrangler.toml and the bundle).
rm -rf "${worker_dir}/dist"
(cd "${worker_dir}" && node_modules/.bin/wrangler deploy --dry-run --outdir dist >&2)

gz=0
while IFS= read -r -d '' f; do
  gz=$((gz + $(gzip -9 -c "$f" | wc -c)))
done < <(find "${worker_dir}/dist" -type f ! -name '*.map' -print0)
echo "bundle: $(du -sb "${worker_dir}/dist" | cut -f1) bytes, gzip ${gz} bytes ($((gz / 1024)) KiB; limit $((MAX_GZIP_BYTES / 1024)) KiB)" >&2
if [ "${gz}" -ge "${MAX_GZIP_BYTES}" ]; then
  echo "error: the Worker bundle is ${gz} bytes gzipped, at or over 1 MiB" >&2
  exit 1
fi
echo "gzip ${gz} bytes, built $(date -u +%FT%TZ)" >"${stamp}"
echo "${shim}"
