#!/usr/bin/env bash
# Idempotently install FastMCP (pinned in bench/fastmcp/requirements.txt) into the bench's own
# virtualenv target/bench-fastmcp-venv (not the project's .venv: FastMCP brings its own `mcp`
# SDK version, the e2e tests' origin pins another). Called by scripts/bench.sh; afterwards:
# target/bench-fastmcp-venv/bin/python bench/fastmcp/server.py ...
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${REPO_ROOT}/target/bench-fastmcp-venv"
REQS="${REPO_ROOT}/bench/fastmcp/requirements.txt"

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
  echo "FastMCP already installed"
  exit 0
fi

echo "installing FastMCP into ${VENV}"
"${VENV}/bin/python" -m pip install --disable-pip-version-check --quiet -r "${REQS}"
"${VENV}/bin/python" -c "import fastmcp, uvicorn; print('FastMCP', fastmcp.__version__, 'ready')"
