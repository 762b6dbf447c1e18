"""An MCP server written with the official Python SDK (`mcp` 2.x, `MCPServer`, streamable HTTP
on uvicorn): the second origin behind mcpgate in the end-to-end tests, besides the rmcp demo.

It is built the way most Python MCP servers are deployed: stateless streamable HTTP, answers
as SSE (the SDK's default), Starlette routing on the percent-decoded path. Tools mirror the
demo server's (`tests/src/demo_mcp.rs`):

* `whoami` - the `x-mcpgate-*` and `Cookie` headers it received and whether `Authorization`
  reached it;
* `echo {text}` - returns `text`;
* `count {n, interval_ms}` - `n` progress notifications `interval_ms` apart, then `counted n`;
* `unauthenticated_requests` - how many requests reached it without `x-mcpgate-sub`;
* `upstream_userinfo` - calls the IdP's userInfo as the user with the IdP token the proxy
  forwarded (issue 16);
* `verify_assertion {tamper}` - verifies the proxy's identity assertion with PyJWT against the
  proxy's JWKS, with exactly the code the README shows (`mcpgate_assertion.py`).

Where the IdP and the proxy are is posted by the tests to `POST /_origin/settings` (JSON:
`userinfo_url`, `jwks_url`, `issuer`, `audience`, `upstream_token_header`,
`assertion_header`) once the proxy's URL is known.

Every HTTP request is recorded (method, decoded path and query, raw path, whether it carried
the identity header or one of the proxy's own cookies) and served to the tests at
`GET /_origin/requests` (reached directly, not through the
proxy); `GET /healthz` answers `ok`.

Usage: python mcp_origin.py --port PORT   (prints "listening on PORT" once it accepts)
"""

import argparse
import asyncio
import json
import os
import sys
from typing import Any

import urllib.error
import urllib.request

import jwt
import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import BaseModel
from starlette.responses import JSONResponse, PlainTextResponse

from mcpgate_assertion import assertion_verifier

IDENTITY = b"x-mcpgate-sub"
LOG: list[dict] = []
SETTINGS: dict = {}
VERIFIERS: dict = {}

mcp = MCPServer("mcpgate-python-origin", instructions="Python origin for mcpgate's tests")


class WhoAmI(BaseModel):
    headers: dict[str, str]
    authorization_present: bool


@mcp.tool(description="The x-mcpgate-* and Cookie headers this server received and whether Authorization reached it")
def whoami(ctx: Context) -> WhoAmI:
    headers = ctx.headers or {}
    seen = {
        k.lower(): v
        for k, v in headers.items()
        if k.lower().startswith("x-mcpgate-") or k.lower() == "cookie"
    }
    present = any(k.lower() == "authorization" for k in headers.keys())
    return WhoAmI(headers=seen, authorization_present=present)


@mcp.tool(description="Return the given text")
def echo(text: str) -> str:
    return text


@mcp.tool(description="Send n progress notifications interval_ms apart (default 100), then answer")
async def count(n: int, ctx: Context, interval_ms: int = 100) -> str:
    if n > 1000:
        raise ValueError("n must be at most 1000")
    for i in range(1, n + 1):
        if i > 1:
            await asyncio.sleep(min(interval_ms, 10_000) / 1000)
        await ctx.report_progress(i, n, f"tick {i}")
    return f"counted {n}"


@mcp.tool(description="How many requests reached this server without the x-mcpgate-sub header")
def unauthenticated_requests() -> int:
    return sum(1 for r in LOG if not r["identified"])


def credential(ctx: Context, name: str):
    """A header's value without the `Bearer ` prefix the proxy adds in `authorization`."""
    headers = {k.lower(): v for k, v in (ctx.headers or {}).items()}
    value = headers.get(name.lower())
    if value is None:
        return None
    value = value.strip()
    return value[len("Bearer "):] if value.startswith("Bearer ") else value


def readable_claims(token: str) -> dict:
    """The token's claims, unverified: only to tell tokens apart in tests."""
    try:
        return jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}


@mcp.tool(description="Call the identity provider's userInfo as the signed-in user, with the IdP token the proxy forwarded")
async def upstream_userinfo(ctx: Context) -> dict[str, Any]:
    token = credential(ctx, SETTINGS.get("upstream_token_header", "x-mcpgate-upstream-token"))
    if token is None:
        return {"token_present": False}
    c = readable_claims(token)
    summary = {k: c.get(k) for k in ("jti", "exp", "token_use", "username", "client_id")}

    def call():
        req = urllib.request.Request(SETTINGS["userinfo_url"], headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    status, raw = await asyncio.to_thread(call)
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    return {"token_present": True, "status": status, "userinfo": body, "token": summary}


@mcp.tool(description="Verify the identity assertion the proxy sent against the proxy's JWKS")
def verify_assertion(ctx: Context, tamper: bool = False) -> dict[str, Any]:
    assertion = credential(ctx, SETTINGS.get("assertion_header", "x-mcpgate-assertion"))
    if assertion is None:
        return {"present": False, "valid": False}
    if tamper:
        # The payload's first character: a claim changed under the same signature.
        dot = assertion.index(".") + 1
        swapped = "g" if assertion[dot] == "f" else "f"
        assertion = assertion[:dot] + swapped + assertion[dot + 1:]
    key = (SETTINGS["jwks_url"], SETTINGS["issuer"], SETTINGS["audience"])
    if key not in VERIFIERS:
        VERIFIERS[key] = assertion_verifier(*key)
    try:
        claims = VERIFIERS[key](assertion)
    except jwt.PyJWTError as e:
        return {"present": True, "valid": False, "error": f"{type(e).__name__}: {e}"}
    return {"present": True, "valid": True, "claims": claims}


def has_proxy_cookie(value: str) -> bool:
    """Whether a Cookie header holds one of the proxy's own cookies (mcpgate-*, __Host-mcpgate-*)."""
    for pair in value.replace(",", ";").split(";"):
        name = pair.split("=", 1)[0].strip()
        if name.startswith("mcpgate-") or name.startswith("__Host-mcpgate-"):
            return True
    return False


class RecordAll:
    """ASGI middleware: records every request before the app routes it."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            if scope["path"] == "/_origin/requests":
                await JSONResponse(LOG)(scope, receive, send)
                return
            if scope["path"] == "/_origin/settings" and scope["method"] == "POST":
                body = b""
                more = True
                while more:
                    message = await receive()
                    body += message.get("body", b"")
                    more = message.get("more_body", False)
                SETTINGS.clear()
                SETTINGS.update(json.loads(body))
                await PlainTextResponse("ok")(scope, receive, send)
                return
            if scope["path"] == "/_origin/ready":
                # The process id: the harness checks that the answer is this process's.
                await PlainTextResponse(f"ready {os.getpid()}")(scope, receive, send)
                return
            names = {k.lower() for k, _ in scope["headers"]}
            query = scope.get("query_string", b"").decode("latin-1")
            cookies = [v.decode("latin-1") for k, v in scope["headers"] if k.lower() == b"cookie"]
            LOG.append(
                {
                    "method": scope["method"],
                    "path": scope["path"] + (f"?{query}" if query else ""),
                    "raw_path": scope.get("raw_path", b"").decode("latin-1"),
                    "identified": IDENTITY in names,
                    "proxy_cookie": any(has_proxy_cookie(c) for c in cookies),
                }
            )
        await self.app(scope, receive, send)


def app():
    inner = mcp.streamable_http_app(
        stateless_http=True,
        # Behind a gateway the Host is the gateway's: DNS-rebinding protection is the
        # gateway's job here (as in most deployments behind a proxy).
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )

    async def healthz(request):
        return PlainTextResponse("ok")

    from starlette.routing import Route

    inner.router.routes.append(Route("/healthz", healthz))
    return RecordAll(inner)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    config = uvicorn.Config(app(), host="127.0.0.1", port=args.port, log_level="warning")
    server = uvicorn.Server(config)
    print(f"listening on {args.port}", flush=True)
    server.run()


if __name__ == "__main__":
    sys.exit(main())
