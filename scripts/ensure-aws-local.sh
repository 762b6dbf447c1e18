#!/usr/bin/env bash
# Idempotently install the local AWS server of the fleet-store tests: moto (PyPI, server mode:
# DynamoDB, STS and IAM in one process, checking SigV4 signatures and IAM policies once told
# to) at the pinned version, into its own virtualenv under target/ (apart from .venv, which
# holds Envoy and the Python MCP origin). boto3/botocore come with it: the tests' setup script
# (tests/python/aws_setup.py) and the reference signer of the SigV4 test vector use them.
# Afterwards: target/aws-local/venv/bin/moto_server -H 127.0.0.1 -p PORT
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-${REPO_ROOT}/target}"
case "${TARGET}" in /*) ;; *) TARGET="${REPO_ROOT}/${TARGET}" ;; esac
VENV="${TARGET}/aws-local/venv"
MOTO_VERSION="5.2.5"

if [ -x "${VENV}/bin/moto_server" ] \
   && [ "$("${VENV}/bin/python" -c 'from importlib.metadata import version; print(version("moto"))' 2>/dev/null)" = "${MOTO_VERSION}" ]; then
  echo "moto ${MOTO_VERSION} already installed in ${VENV}"
  exit 0
fi

echo "installing moto ${MOTO_VERSION} (server mode) into ${VENV}"
mkdir -p "$(dirname "${VENV}")"
[ -x "${VENV}/bin/python" ] || python3 -m venv "${VENV}"
"${VENV}/bin/python" -m pip install --disable-pip-version-check --quiet "moto[server]==${MOTO_VERSION}"
"${VENV}/bin/python" -c "import moto, boto3; print('moto', moto.__version__, 'ready')"
