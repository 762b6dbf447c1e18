#!/usr/bin/env bash
# Idempotently install a requirements file of exact pins (`name==version` lines) into a
# virtualenv: nothing is fetched when every pin is already installed at its version.
# Usage: ensure-pinned-venv.sh VENV REQUIREMENTS LABEL CHECK
#   CHECK is Python code run afterwards (imports that must work, then a line to print).
set -euo pipefail

VENV="$1"
REQS="$2"
LABEL="$3"
CHECK="$4"

if [ ! -x "${VENV}/bin/python" ]; then
  echo "creating virtualenv ${VENV}"
  mkdir -p "$(dirname "${VENV}")"
  python3 -m venv "${VENV}"
fi

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
  echo "${LABEL} already installed"
  exit 0
fi

echo "installing ${LABEL} into ${VENV}"
"${VENV}/bin/python" -m pip install --disable-pip-version-check --quiet -r "${REQS}"
"${VENV}/bin/python" -c "${CHECK}"
