#!/usr/bin/env bash
# Validate the shipped deployment files of the Envoy filter:
#  * envoy/envoy.yaml and envoy/envoy-cognito.yaml with `envoy --mode validate` (needs .venv/bin/envoy
#    from scripts/ensure-envoy.sh and the built .wasm from scripts/build-envoy-filter.sh);
#  * the Wasm filter of envoy/istio/envoy-filter.yaml and envoy/istio/fleet/envoy-filter.yaml
#    (their EXTENSION_CONFIG patch, and the listeners and clusters they ADD) the same way,
#    inside a generated bootstrap;
#  * envoy/docker-compose.yml with `docker-compose config` (skipped when docker-compose is missing);
#  * envoy/istio/*.yaml and envoy/istio/fleet/*.yaml parse as YAML documents with apiVersion/kind
#    (python3);
#  * every shipped Envoy configuration sets allow_on_headers_stop_iteration in the Wasm filter's
#    PluginConfig and declares it to the filter (without both, OAuth POSTs are refused), and the
#    EnvoyFilter's HTTP filter loads its extension config by the same name (python3).
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
  # The same with a FastMCP deployment's variable names (plus the domain FastMCP discovers).
  if FASTMCP_SERVER_AUTH_AWS_COGNITO_USER_POOL_ID=eu-central-1_Example1 \
     FASTMCP_SERVER_AUTH_AWS_COGNITO_AWS_REGION=eu-central-1 MCPGATE_COGNITO_DOMAIN=my-domain \
     FASTMCP_SERVER_AUTH_AWS_COGNITO_CLIENT_ID=example \
     FASTMCP_SERVER_AUTH_AWS_COGNITO_CLIENT_SECRET=example \
     FASTMCP_SERVER_AUTH_AWS_COGNITO_JWT_SIGNING_KEY=example-example-example-example-1234 \
     FASTMCP_SERVER_AUTH_AWS_COGNITO_BASE_URL=http://localhost:10000 \
     MCPGATE_CLUSTERS='{"cognito-idp.eu-central-1.amazonaws.com": "cognito_idp", "my-domain.auth.eu-central-1.amazoncognito.com": "cognito_domain"}' \
     .venv/bin/envoy --mode validate -c "${tmp}/cognito.yaml" --log-level error >"${tmp}/fastmcp.log" 2>&1; then
    echo "ok: envoy/envoy-cognito.yaml with FASTMCP_SERVER_AUTH_AWS_COGNITO_* names"
  else
    echo "FAIL: envoy/envoy-cognito.yaml with FASTMCP_SERVER_AUTH_AWS_COGNITO_* names"; tail -5 "${tmp}/fastmcp.log"; status=1
  fi
  # The Istio EnvoyFilters' Wasm filter, in a bootstrap of its own: the local .wasm instead of
  # the OCI image (the istio-agent's rewrite), example values for the secrets it reads; with
  # the listeners and clusters the EnvoyFilter adds (the fleet one's internal files listener).
  if command -v python3 >/dev/null 2>&1 && python3 -c 'import yaml' 2>/dev/null; then
    for filter in envoy/istio/envoy-filter.yaml envoy/istio/fleet/envoy-filter.yaml; do
      python3 - "${filter}" "$(pwd)/${wasm}" >"${tmp}/istio.yaml" <<'PY'
import json, sys, yaml
path, wasm = sys.argv[1:3]
doc = next(d for d in yaml.safe_load_all(open(path)) if d and d.get("kind") == "EnvoyFilter")
patches = doc["spec"]["configPatches"]
ext = next(p for p in patches if p["applyTo"] == "EXTENSION_CONFIG")
typed = ext["patch"]["value"]["typed_config"]
typed["config"]["vm_config"]["code"] = {"local": {"filename": wasm}}
added = lambda kind: [p["patch"]["value"] for p in patches
                      if p["applyTo"] == kind and p["patch"]["operation"] == "ADD"]
print(json.dumps({
  "bootstrap_extensions": [{"name": "envoy.bootstrap.internal_listener", "typed_config": {
    "@type": "type.googleapis.com/envoy.extensions.bootstrap.internal_listener.v3.InternalListener"}}],
  "static_resources": {"listeners": [{
    "name": "istio", "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
    "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": "istio",
            "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
                {"match": {"prefix": "/"}, "direct_response": {"status": 200}}]}]},
            "http_filters": [
                {"name": ext["patch"]["value"]["name"], "typed_config": typed},
                {"name": "envoy.filters.http.router", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}}]}]}]
    + added("LISTENER"),
    "clusters": added("CLUSTER")}}))
PY
      # The fleet filter signs with IRSA credentials: their variables, as the webhook sets them.
      if MCPGATE_CLIENT_SECRET=example MCPGATE_JWT_SIGNING_KEY=example-example-example-example-1234 \
         AWS_ROLE_ARN=arn:aws:iam::111122223333:role/mcpgate-store \
         AWS_WEB_IDENTITY_TOKEN_FILE=/var/run/secrets/eks.amazonaws.com/serviceaccount/token \
         .venv/bin/envoy --mode validate -c "${tmp}/istio.yaml" --log-level error >"${tmp}/istio.log" 2>&1; then
        echo "ok: ${filter} (its Wasm filter in Envoy)"
      else
        echo "FAIL: ${filter} (its Wasm filter in Envoy)"; tail -5 "${tmp}/istio.log"; status=1
      fi
    done
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
  # FastMCP's names reach the container too.
  if FASTMCP_SERVER_AUTH_AWS_COGNITO_USER_POOL_ID=eu-central-1_Example1 \
     FASTMCP_SERVER_AUTH_AWS_COGNITO_CLIENT_ID=example \
     FASTMCP_SERVER_AUTH_AWS_COGNITO_CLIENT_SECRET=fastmcp-example-secret \
     MCPGATE_COGNITO_DOMAIN=my-domain \
     docker-compose -f envoy/docker-compose.yml config 2>/dev/null \
     | grep 'FASTMCP_SERVER_AUTH_AWS_COGNITO_CLIENT_SECRET: fastmcp-example-secret' >/dev/null; then
    echo "ok: envoy/docker-compose.yml passes FASTMCP_SERVER_AUTH_AWS_COGNITO_* names"
  else
    echo "FAIL: envoy/docker-compose.yml does not pass FASTMCP_SERVER_AUTH_AWS_COGNITO_* names"; status=1
  fi
else
  echo "skip: envoy/docker-compose.yml (docker-compose not installed; apt-get install -y docker-compose)"
fi

if command -v python3 >/dev/null 2>&1 && python3 -c 'import yaml' 2>/dev/null; then
  if python3 - envoy/istio/*.yaml envoy/istio/fleet/*.yaml <<'PY'
import sys, yaml
bad = 0
for path in sys.argv[1:]:
    for doc in yaml.safe_load_all(open(path)):
        if doc is None:
            continue
        if not isinstance(doc, dict) or "apiVersion" not in doc or "kind" not in doc:
            print(f"FAIL: {path}: a document without apiVersion/kind"); bad = 1
print("ok: envoy/istio/*.yaml, envoy/istio/fleet/*.yaml" if not bad else "", end="")
sys.exit(bad)
PY
  then echo; else status=1; fi
  # Every shipped Envoy configuration holds OAuth POSTs at their headers: the flag in the Wasm
  # filter's PluginConfig and the filter's declaration, side by side.
  if python3 - envoy/envoy.yaml envoy/envoy-cognito.yaml envoy/istio/envoy-filter.yaml envoy/istio/fleet/envoy-filter.yaml <<'PY'
import json, sys, yaml
WASM = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
def wasm_configs(node):
    if isinstance(node, dict):
        if node.get("@type") == WASM:
            yield node["config"]
        for v in node.values():
            yield from wasm_configs(v)
    elif isinstance(node, list):
        for v in node:
            yield from wasm_configs(v)
bad = 0
for path in sys.argv[1:]:
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    configs = [c for d in docs for c in wasm_configs(d)]
    if not configs:
        print(f"FAIL: {path}: no Wasm filter"); bad = 1
    for c in configs:
        plugin = c.get("configuration", {}).get("value", "")
        env = c.get("vm_config", {}).get("environment_variables", {}).get("key_values", {})
        declared = (json.loads(plugin).get("allow_on_headers_stop_iteration") is True if plugin.strip()
                    else env.get("MCPGATE_ALLOW_ON_HEADERS_STOP_ITERATION") == "true")
        if c.get("allow_on_headers_stop_iteration") is not True:
            print(f"FAIL: {path}: allow_on_headers_stop_iteration is not set in the PluginConfig"); bad = 1
        if not declared:
            print(f"FAIL: {path}: allow_on_headers_stop_iteration is not declared to the filter"); bad = 1
    for d in docs:
        if d.get("kind") != "EnvoyFilter":
            continue
        patches = d["spec"]["configPatches"]
        ext = {p["patch"]["value"]["name"] for p in patches if p["applyTo"] == "EXTENSION_CONFIG"}
        for p in patches:
            if p["applyTo"] != "HTTP_FILTER":
                continue
            v = p["patch"]["value"]
            if v["name"] not in ext or WASM not in v["config_discovery"]["type_urls"]:
                print(f"FAIL: {path}: HTTP filter {v['name']} loads no extension config of this file"); bad = 1
if not bad:
    print("ok: allow_on_headers_stop_iteration set and declared in " + ", ".join(sys.argv[1:]))
sys.exit(bad)
PY
  then :; else status=1; fi
else
  echo "skip: envoy/istio (python3 with PyYAML not available)"
fi
exit "${status}"
