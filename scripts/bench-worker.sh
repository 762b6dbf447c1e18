#!/usr/bin/env bash
# The Worker in workerd (wrangler dev --local): gzipped bundle size and CPU per request
# (authenticated MCP request, the 401 path, a /token code exchange), appended to
# bench/RESULTS.md. Called by scripts/bench.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
size_line="$(./scripts/build-worker.sh 2>&1 | grep -iE 'gzip' | tail -1)"
echo "$size_line"
out="$(cargo test -q -p mcpgate-e2e --test worker_e2e -- --ignored --nocapture measure 2>&1)"
table="$(printf '%s\n' "$out" | grep -E 'µs/request' | sed 's/^/- /' || true)"
printf '%s\n' "$table"
if [ -n "$table" ]; then
  {
    printf '\n## The Worker in workerd (wrangler dev --local)\n\n'
    printf '%s\n\n' "$size_line"
    printf '%s\n' "$table"
    printf '\nCPU is user+system time of the workerd processes divided by requests; wrangler'"'"'s local\n'
    printf 'runtime adds its own per-request work, so compare rows with the 401 baseline.\n'
  } >>bench/RESULTS.md
else
  printf '%s\n' "$out" | tail -20
  exit 1
fi
