#!/usr/bin/env bash
# Validate the shipped deployment files of the Envoy filter:
#  * envoy/envoy.yaml and envoy/envoy-cognito.yaml with `envoy --mode validate` (needs .venv/bin/envoy
#    from scripts/ensure-envoy.sh and the built .wasm from scripts/build-envoy-filter.sh);
#  * envoy/docker-compose.yml with `docker-compose config` (skipped when docker-compose is missing);
#  * envoy/istio/*.yaml parse as YAML documents with apiVersion/kind (python3).
# Each check is skipped with a message when its tool is missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
status=0
wasm="${CARGO_TARGET_DIR:-target}/wasm32-wasip1/release/mcpgate_envoy.wasm"

if [ -x .venv/bin/envoy ] && [ -f "${wasm}" ]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "${tmp}"' EXIT
  # envoy.yaml names the .wasm relative to the repository root: run from there.
  if .venv/bin/envoy --mode validate -c envoy/envoy.yaml --log-level error >"${tmp}/local.log" 2>&1; then
    echo "ok: envoy/envoy.yaml"
  else
    echo "FAIL: envoy/envoy.yaml"; tail -5 "${tmp}/local.log"; status=1
  fi
  # The compose config names the container path of the .wasm; point it at the local build.
  sed "s#/etc/mcpgate/mcpgate_envoy.wasm#$(pwd)/${wasm}#" envoy/envoy-cognito.yaml >"${tmp}/cognito.yaml"
  # Validation runs the filter's configure step too: give it example values.
  if MCPGATE_USER_POOL_ID=eu-central-1_Example1 MCPGATE_AWS_REGION=eu-central-1 \
     MCPGATE_COGNITO_DOMAIN=my-domain MCPGATE_CLIENT_ID=example MCPGATE_CLIENT_SECRET=example \
     MCPGATE_JWT_SIGNING_KEY=example-example-example-example-1234 \
     MCPGATE_BASE_URL=http://localhost:10000 \
     MCPGATE_CLUSTERS='{"cognito-idp.eu-central-1.amazonaws.com": "cognito_idp", "my-domain.auth.eu-central-1.amazoncognito.com": "cognito_domain"}' \
     .venv/bin/envoy --mode validate -c "${tmp}/cognito.yaml" --log-level error >"${tmp}/cognito.log" 2>&1; then
    echo "ok: envoy/envoy-cognito.yaml"
  else
    echo "FAIL: envoy/envoy-cognito.yaml"; tail -5 "${tmp}/cognito.log"; status=1
  fi
else
  echo "skip: Envoy configs (needs .venv/bin/envoy and ${wasm}: scripts/ensure-envoy.sh, scripts/build-envoy-filter.sh)"
fi

if command -v docker-compose >/dev/null 2>&1; then
  if MCPGATE_USER_POOL_ID=eu-central-1_Example1 MCPGATE_COGNITO_DOMAIN=my-domain \
     MCPGATE_CLIENT_ID=example MCPGATE_CLIENT_SECRET=example \
     MCPGATE_JWT_SIGNING_KEY=example-example-example-example-1234 \
     docker-compose -f envoy/docker-compose.yml config >/dev/null; then
    echo "ok: envoy/docker-compose.yml"
  else
    echo "FAIL: envoy/docker-compose.yml"; status=1
  fi
else
  echo "skip: envoy/docker-compose.yml (docker-compose not installed; apt-get install -y docker-compose)"
fi

if command -v python3 >/dev/null 2>&1 && python3 -c 'import yaml' 2>/dev/null; then
  if python3 - envoy/istio/*.yaml <<'PY'
import sys, yaml
bad = 0
for path in sys.argv[1:]:
    for doc in yaml.safe_load_all(open(path)):
        if doc is None:
            continue
        if not isinstance(doc, dict) or "apiVersion" not in doc or "kind" not in doc:
            print(f"FAIL: {path}: a document without apiVersion/kind"); bad = 1
print("ok: envoy/istio/*.yaml" if not bad else "", end="")
sys.exit(bad)
PY
  then echo; else status=1; fi
else
  echo "skip: envoy/istio (python3 with PyYAML not available)"
fi
exit "${status}"
