#!/usr/bin/env bash
# Soak runs: complete OAuth flows one after the other (register -> authorize -> consent ->
# sign-in -> callback -> token -> refresh -> MCP call), every request timed, through real Envoy
# (1000 flows) and through the Worker in workerd (1000 flows; the test suite runs 100). Each
# passes with 0 failed flows, no request slower than 1 s, and an MCP server that received only
# the flows' MCP calls. Prints one summary line per host (flows, failures, median/p99/max
# latency, duration).
#
#   scripts/soak.sh               # both hosts
#   scripts/soak.sh envoy         # one of them
#   MCPGATE_SOAK_FLOWS=200 scripts/soak.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

hosts=("$@")
[ "${#hosts[@]}" -gt 0 ] || hosts=(envoy worker)
export MCPGATE_SOAK_FLOWS="${MCPGATE_SOAK_FLOWS:-1000}"

for host in "${hosts[@]}"; do
  case "${host}" in
    envoy)
      scripts/ensure-envoy.sh >/dev/null
      cargo test -p mcpgate-e2e --locked --test soak_envoy -- --ignored --nocapture ;;
    worker)
      cargo test -p mcpgate-e2e --locked --test soak_worker -- --nocapture ;;
    *)
      echo "usage: scripts/soak.sh [envoy] [worker]" >&2
      exit 2 ;;
  esac
done
