#!/usr/bin/env bash
# Idempotently install the Python MCP origin of the end-to-end tests (the official `mcp` SDK
# and uvicorn, pinned in tests/python/requirements.txt) into the project's .venv, next to
# Envoy. Afterwards: .venv/bin/python tests/python/mcp_origin.py --port PORT
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec "${REPO_ROOT}/scripts/ensure-pinned-venv.sh" "${REPO_ROOT}/.venv" \
  "${REPO_ROOT}/tests/python/requirements.txt" "the Python MCP origin" \
  "import mcp.server.mcpserver, uvicorn; print('Python MCP origin ready')"
