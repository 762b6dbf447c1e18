"""The reference proxy of bench-envoy's rows F / F0: a FastMCP server (fastmcp pinned in
bench/fastmcp/requirements.txt) with one trivial tool, `whoami`, served as streamable HTTP
(stateless, JSON answers) on uvicorn, one process, at /mcp.

`--auth oidc` protects it with FastMCP's OIDC proxy (`OIDCProxy`, the class FastMCP's
`AWSCognitoProvider` is built on) against the project's Cognito emulator: discovery at
`--discovery-url`, the app client `--client-id` / `--client-secret`, Cognito's token checks
(FastMCP's `AWSCognitoTokenVerifier`: RS256 by the pool's JWKS, the issuer, `client_id` for
the audience). `AWSCognitoProvider` itself builds its discovery URL from the AWS region and
cannot point at an emulator; everything else is what it configures. Consent is off (a bench
client signs in without a browser), the client store is in memory (as one process keeps it).
`--auth none` serves the same tool without authentication: the MCP server's own cost.

Usage: python server.py --port PORT --auth oidc|none [--discovery-url URL --base-url URL
       --client-id ID --client-secret SECRET --signing-key KEY]
(prints "listening on PORT" before serving)
"""

import argparse
import sys

import uvicorn
from fastmcp import FastMCP


def auth_provider(args):
    from fastmcp.server.auth.oidc_proxy import OIDCProxy
    from fastmcp.server.auth.providers.aws import AWSCognitoTokenVerifier
    from key_value.aio.stores.memory import MemoryStore

    import httpx2

    discovery = httpx2.get(args.discovery_url, timeout=10).json()
    verifier = AWSCognitoTokenVerifier(
        jwks_uri=discovery["jwks_uri"],
        issuer=discovery["issuer"],
        algorithm="RS256",
        audience=args.client_id,
        required_scopes=["openid"],
    )
    return OIDCProxy(
        config_url=args.discovery_url,
        client_id=args.client_id,
        client_secret=args.client_secret,
        token_verifier=verifier,
        base_url=args.base_url,
        jwt_signing_key=args.signing_key,
        require_authorization_consent=False,
        client_storage=MemoryStore(),
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--auth", choices=["oidc", "none"], required=True)
    parser.add_argument("--discovery-url")
    parser.add_argument("--base-url")
    parser.add_argument("--client-id")
    parser.add_argument("--client-secret")
    parser.add_argument("--signing-key")
    args = parser.parse_args()

    auth = auth_provider(args) if args.auth == "oidc" else None
    mcp = FastMCP("mcpgate-bench-fastmcp", auth=auth)

    @mcp.tool
    def whoami() -> str:
        """A trivial tool: a constant answer."""
        return "ok"

    app = mcp.http_app(path="/mcp", stateless_http=True, json_response=True)
    config = uvicorn.Config(app, host="127.0.0.1", port=args.port, log_level="warning")
    print(f"listening on {args.port}", flush=True)
    uvicorn.Server(config).run()


if __name__ == "__main__":
    sys.exit(main())
