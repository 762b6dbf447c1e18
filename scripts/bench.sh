#!/usr/bin/env bash
# Every benchmark, numbers and ratios side by side in one run:
#  1. criterion micro-benchmarks of the core (token verification per algorithm, hot paths);
#  2. bench-envoy: no filter, an empty proxy-wasm filter (the floor), Envoy's jwt_authn and
#     mcpgate on the same Envoy, interleaved, with FastMCP (rows F/F0/FG, its own venv from
#     scripts/ensure-bench-fastmcp.sh) in each round;
#  3. the Worker in workerd itself (bench-envoy --workerd: the workerd binary wrangler installs,
#     a generated config, no wrangler; builds the Worker with scripts/build-worker.sh).
# Arguments go to bench-envoy (--seconds N --rounds N --rows 4,4s,4d --wasm [label=]path …;
# --oauth N instead times N OAuth flows per store, shared data against DynamoDB on the local
# moto server). `--quick` (routine runs, ≤ 3 minutes on 2 cores): a few rows for 2 s each, no
# criterion benches, no memory run, no Worker, nothing written. Results of the full run:
# bench/RESULTS.md. `--instructions` (with --rows, --wasm, --rounds, --requests N): the rows
# counted in instructions per request with Envoy under callgrind instead — repeatable whatever
# the machine does (bench/src/instructions.rs); nothing else runs, nothing is written.
# `--together a:b,…` (with --rows, --wasm, --rounds, --seconds): each pair of rows measured in
# the same windows, both Envoys on one CPU, with a 95 % interval for the median of the
# per-window ratio (bench/src/together.rs); nothing else runs, nothing is written. The full
# run measures the goals' pairs that way too (`--together-rounds N` windows, 16 by default).
set -euo pipefail
cd "$(dirname "$0")/.."
quick=false
instructions=false
for a in "$@"; do
  [ "$a" = --quick ] && quick=true
  [ "$a" = --instructions ] && { quick=true; instructions=true; }
  [ "$a" = --together ] && quick=true
done
if $instructions; then
  command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind; }
fi
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
command -v taskset >/dev/null || { apt-get update -qq && apt-get install -y -qq util-linux; }
./scripts/ensure-envoy.sh >/dev/null
./scripts/ensure-aws-local.sh >/dev/null
./scripts/ensure-bench-fastmcp.sh >/dev/null
./scripts/build-envoy-filter.sh
if ! $quick; then
  echo "== core micro-benchmarks (native) =="
  cargo bench -p mcpgate-filter --bench verify --bench hot_path -- --warm-up-time 1 --measurement-time 3 2>&1 \
    | grep -E -B1 'time:' | grep -vE '^--$|^ +[0-9]|^Found|^Benchmarking|^Warning|^$' || true
fi
$instructions && echo "== Envoy under callgrind: instructions per request ==" || echo "== Envoy: side by side =="
cargo run --release -q -p mcpgate-bench -- "$@"
if ! $quick; then
  echo "== Worker in workerd itself =="
  cargo run --release -q -p mcpgate-bench -- --workerd
fi
