#!/usr/bin/env bash
# Idempotently install the TypeScript check of mcpgate's identity assertion (the README's
# snippet, tests/js/mcpgate-assertion.ts) and its one dependency, `jose`, pinned in
# tests/js/package-lock.json, into tests/js/node_modules. The test bundles it with the esbuild
# that wrangler brings (edge-worker/node_modules, installed by scripts/build-worker.sh).
set -euo pipefail

DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/js"
WANT="$(node -e 'console.log(require(process.argv[1]).packages["node_modules/jose"].version)' "${DIR}/package-lock.json")"
HAVE="$(node -e 'try { console.log(require(process.argv[1]).version) } catch { console.log("") }' "${DIR}/node_modules/jose/package.json")"
if [ "${WANT}" = "${HAVE}" ]; then
  echo "jose ${HAVE} already installed"
  exit 0
fi
echo "installing jose ${WANT} into ${DIR}/node_modules"
(cd "${DIR}" && npm ci --no-audit --no-fund --loglevel=error)
