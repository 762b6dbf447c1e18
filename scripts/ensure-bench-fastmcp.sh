#!/usr/bin/env bash
# Idempotently install FastMCP (pinned in bench/fastmcp/requirements.txt) into the bench's own
# virtualenv target/bench-fastmcp-venv (not the project's .venv: FastMCP brings its own `mcp`
# SDK version, the e2e tests' origin pins another). Called by scripts/bench.sh; afterwards:
# target/bench-fastmcp-venv/bin/python bench/fastmcp/server.py ...
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec "${REPO_ROOT}/scripts/ensure-pinned-venv.sh" "${REPO_ROOT}/target/bench-fastmcp-venv" \
  "${REPO_ROOT}/bench/fastmcp/requirements.txt" "FastMCP" \
  "import fastmcp, uvicorn; print('FastMCP', fastmcp.__version__, 'ready')"
