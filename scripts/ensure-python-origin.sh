#!/usr/bin/env bash
# Idempotently install the Python MCP origin of the end-to-end tests (the official `mcp` SDK
# and uvicorn, pinned in tests/python/requirements.txt) into the project's .venv, next to
# Envoy. Afterwards: .venv/bin/python tests/python/mcp_origin.py --port PORT
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${REPO_ROOT}/.venv"
REQS="${REPO_ROOT}/tests/python/requirements.txt"

if [ ! -x "${VENV}/bin/python" ]; then
  echo "creating virtualenv ${VENV}"
  python3 -m venv "${VENV}"
fi

# Already installed at the pinned versions: nothing to do (no network).
if "${VENV}/bin/python" - "${REQS}" <<'PY'
import sys
from importlib.metadata import version, PackageNotFoundError
ok = True
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if not line:
        continue
    name, want = line.split("==")
    try:
        ok &= version(name) == want
    except PackageNotFoundError:
        ok = False
sys.exit(0 if ok else 1)
PY
then
  echo "Python MCP origin already installed"
  exit 0
fi

echo "installing the Python MCP origin's packages into ${VENV}"
"${VENV}/bin/python" -m pip install --disable-pip-version-check --quiet -r "${REQS}"
"${VENV}/bin/python" -c "import mcp.server.mcpserver, uvicorn; print('Python MCP origin ready')"
