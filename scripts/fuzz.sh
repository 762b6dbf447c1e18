#!/usr/bin/env bash
# Fuzzes every target of fuzz/ for SECONDS each (default 10: the smoke run the test command
# does) and writes fuzz/RESULTS.md: executions and crashes per target.
#   ./scripts/fuzz.sh          # smoke run, ~1.5 minutes after the first build
#   ./scripts/fuzz.sh 600      # the long run: 10 minutes per target
#   ./scripts/fuzz.sh 600 form # some targets only
# Runs of 60 s or more are appended to fuzz/RESULTS.md.
# cargo-fuzz needs nightly features; RUSTC_BOOTSTRAP=1 enables them on the stable toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --version =0.13.2 --locked
targets=(token jwks form redirect_uri unseal config request mcp)
if [ $# -gt 1 ]; then targets=("${@:2}"); fi
cargo fuzz build -O >/dev/null
results="fuzz/RESULTS.md"
tmp="$(mktemp)"
{
  echo
  echo "## $(date -u +%Y-%m-%dT%H:%MZ), ${seconds} s per target, \`./scripts/fuzz.sh ${seconds}\`."
  echo
  echo "| target | executions | crashes |"
  echo "| --- | --- | --- |"
} >"$tmp"
failed=0
for t in "${targets[@]}"; do
  log="target/fuzz-$t.log"
  mkdir -p target
  set +e
  cargo fuzz run -O "$t" -- -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 >"$log" 2>&1
  rc=$?
  set -e
  runs=$(grep -Eo 'Done [0-9]+ runs' "$log" | grep -Eo '[0-9]+' | tail -1 || true)
  crashes=0
  if [ "$rc" -ne 0 ]; then crashes=1; failed=1; tail -30 "$log"; fi
  echo "fuzz $t: ${runs:-0} executions, $crashes crashes"
  echo "| $t | ${runs:-0} | $crashes |" >>"$tmp"
done
if [ "$seconds" -ge 60 ]; then
  [ -f "$results" ] || printf '# Fuzzing results\n\nExecutions and crashes per target, newest run last.\n' >"$results"
  cat "$tmp" >>"$results"
fi
rm -f "$tmp"
exit "$failed"
