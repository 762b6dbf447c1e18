"""An MCP server written with the official Python SDK (`mcp` 2.x, `MCPServer`, streamable HTTP
on uvicorn): the second origin behind mcpgate in the end-to-end tests, besides the rmcp demo.

It is built the way most Python MCP servers are deployed: stateless streamable HTTP, answers
as SSE (the SDK's default), Starlette routing on the percent-decoded path. Tools mirror the
demo server's (`tests/src/demo_mcp.rs`):

* `whoami` - the `x-mcpgate-*` and `Cookie` headers it received and whether `Authorization`
  reached it;
* `echo {text}` - returns `text`;
* `count {n, interval_ms}` - `n` progress notifications `interval_ms` apart, then `counted n`;
* `unauthenticated_requests` - how many requests reached it without `x-mcpgate-sub`.

Every HTTP request is recorded (method, decoded path and query, raw path, whether it carried
the identity header or one of the proxy's own cookies) and served to the tests at
`GET /_origin/requests` (reached directly, not through the
proxy); `GET /healthz` answers `ok`.

Usage: python mcp_origin.py --port PORT   (prints "listening on PORT" once it accepts)
"""

import argparse
import asyncio
import json
import sys

import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import BaseModel
from starlette.responses import JSONResponse, PlainTextResponse

IDENTITY = b"x-mcpgate-sub"
LOG: list[dict] = []

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
            if scope["path"] == "/_origin/ready":
                await PlainTextResponse("ready")(scope, receive, send)
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
