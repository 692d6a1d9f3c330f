"""HTTP plumbing shared by every API: the request middleware (request id, metrics, size limits, response headers),
health, metrics and key endpoints."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from typing import Any, Protocol

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openbss.platform.auth import local_jwks
from openbss.platform.observability import record_request, request_id_var
from openbss.platform.runtime import runtime
from openbss.platform.tmf.errors import error_body


class ResponseHeaders(Protocol):
    """Headers a part of the site adds to its responses (e.g. the portal's security headers): those the response
    does not set itself are added to every response whose path starts with ``prefix``."""

    prefix: str

    def for_path(self, path: str) -> Sequence[tuple[bytes, bytes]]: ...


class PlatformMiddleware:
    """The platform's single ASGI layer around every request (pure ASGI: no request object, one wrapper of ``send``):

    * a request id — the caller's ``X-Request-ID`` when it is short and printable, else a new one — in the log context
      and the response's ``X-Request-ID``;
    * the count and latency of the request per route template (``scope["route"]``, "unmatched" when no route);
    * 400 for a path or a query string with a NUL character, or an invalid ``Content-Length``; 413 for a body over
      ``max_bytes``, by its declared length or, for a body sent without a length, while it streams;
    * the headers of the ``response_headers`` rules whose prefix the path starts with.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, response_headers: Sequence[ResponseHeaders] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.rules = tuple(response_headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = declared = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                rid = value.decode("latin-1")
            elif name == b"content-length":
                declared = value
            elif name == b"transfer-encoding":
                chunked = True
        if not rid or len(rid) > 128 or not rid.isprintable():
            rid = os.urandom(16).hex()
        token = request_id_var.set(rid)
        start = time.perf_counter()
        path: str = scope["path"]
        extra = [(b"x-request-id", rid.encode("latin-1"))]
        for rule in self.rules:
            if path.startswith(rule.prefix):
                extra.extend(rule.for_path(path))
        status = 0

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                if len(extra) > 1:
                    present = {k.lower() for k, _ in headers}
                    headers += [h for h in extra[1:] if h[0] not in present]
                headers.append(extra[0])
                message["headers"] = headers
            await send(message)

        try:
            rejected = self._rejected(path, scope.get("query_string", b""), declared)
            if rejected is not None:
                await rejected(scope, receive, send_with_headers)
            elif declared is not None or (not chunked and scope.get("http_version") in ("1.0", "1.1")):
                # the server reads exactly the declared length (checked above), or there is no body (HTTP/1)
                await self.app(scope, receive, send_with_headers)
            else:
                try:
                    await self.app(scope, self._limited(receive), send_with_headers)
                except _TooLarge:
                    if status:
                        raise
                    await self._too_large()(scope, receive, send_with_headers)
        finally:
            route = scope.get("route")
            record_request(scope.get("method", ""), getattr(route, "path", None) or "unmatched", status or 500,
                           time.perf_counter() - start)
            request_id_var.reset(token)

    def _rejected(self, path: str, query: bytes, declared: bytes | None) -> JSONResponse | None:
        if "\x00" in path:
            return JSONResponse(error_body(400, "BAD_REQUEST", "the path contains a NUL character"), status_code=400)
        if query and (b"%00" in query or b"\x00" in query):
            return JSONResponse(error_body(400, "BAD_REQUEST", "the query string contains a NUL character (%00): "
                                           "query values are text without NUL"), status_code=400)
        if declared is not None:
            try:
                too_large = int(declared) > self.max_bytes
            except ValueError:
                return JSONResponse(error_body(400, "BAD_REQUEST", "invalid Content-Length"), status_code=400)
            if too_large:
                return self._too_large()
        return None

    def _too_large(self) -> JSONResponse:
        return JSONResponse(error_body(413, "PAYLOAD_TOO_LARGE", f"the request body exceeds {self.max_bytes} bytes"),
                            status_code=413)

    def _limited(self, receive: Receive) -> Receive:
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge(self.max_bytes)
            return message

        return limited_receive


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
