"""HTTP plumbing shared by every API: request size limit, health, metrics and key endpoints."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openbss.platform.auth import local_jwks
from openbss.platform.runtime import runtime
from openbss.platform.tmf.errors import error_body


class BodySizeLimitMiddleware:
    """Refuses request bodies over ``max_bytes`` with 413, by the declared length or while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope.get("path", ""):
            await JSONResponse(error_body(400, "BAD_REQUEST", "the path contains a NUL character"),
                               status_code=400)(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        too_large = JSONResponse(
            error_body(413, "PAYLOAD_TOO_LARGE", f"the request body exceeds {self.max_bytes} bytes"),
            status_code=413)
        if declared is not None:
            try:
                if int(declared) > self.max_bytes:
                    await too_large(scope, receive, send)
                    return
            except ValueError:
                await JSONResponse(error_body(400, "BAD_REQUEST", "invalid Content-Length"),
                                   status_code=400)(scope, receive, send)
                return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await too_large(scope, receive, send)


class _TooLarge(StarletteHTTPException):
    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"the request body exceeds {max_bytes} bytes")


ops_router = APIRouter(tags=["Operations"])


@ops_router.get("/health/live", summary="The process is up")
async def live() -> dict[str, str]:
    return {"status": "up"}


@ops_router.get("/health/ready", summary="Database and broker reachable")
async def ready(request: Request) -> Response:
    rt = runtime(request)
    checks: dict[str, Any] = {}
    try:
        async with rt.db.engine.connect() as conn:
            await asyncio.wait_for(conn.execute(text("SELECT 1")), 2)
        checks["database"] = "up"
    except Exception as exc:
        checks["database"] = f"down: {type(exc).__name__}"
    if rt.settings.nats_url:
        healthy = getattr(rt.make_bus(), "healthy", None)
        checks["broker"] = "up" if healthy and await healthy() else "down"
    else:
        checks["broker"] = "in-process"
    ok = all(v in ("up", "in-process") for v in checks.values())
    return JSONResponse({"status": "up" if ok else "down", "checks": checks}, status_code=200 if ok else 503)


@ops_router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@ops_router.get("/.well-known/jwks.json", summary="Public keys of the local token issuer")
async def jwks(request: Request) -> dict[str, Any]:
    rt = runtime(request)
    if rt.settings.jwks_url:
        return {"keys": []}
    return local_jwks(rt.settings)
