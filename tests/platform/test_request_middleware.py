"""The platform's request middleware (one pure ASGI layer): request ids, metrics per route, 400/413 before any
handler, response headers by path prefix."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import REGISTRY

from openbss.platform.http import PlatformMiddleware
from openbss.platform.observability import request_id_var
from openbss.platform.tmf.errors import install_error_handlers


class Headers:
    prefix = "/portal"

    def for_path(self, path: str) -> Sequence[tuple[bytes, bytes]]:
        return [(b"x-frame-options", b"DENY"), (b"cache-control", b"no-store")]


def app_with_middleware(max_bytes: int = 100) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(PlatformMiddleware, max_bytes=max_bytes, response_headers=[Headers()])

    @app.post("/echo/{name}")
    async def echo(name: str, request: Request) -> PlainTextResponse:
        body = await request.body()
        return PlainTextResponse(f"{name}:{len(body)}:{request_id_var.get()}")

    @app.get("/portal/page")
    async def page() -> Response:
        return Response("page", headers={"Cache-Control": "max-age=60"})

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    return app


async def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                             base_url="http://t")


def count(method: str, route: str, status: int) -> float:
    return REGISTRY.get_sample_value("openbss_http_requests_total",
                                     {"method": method, "route": route, "status": str(status)}) or 0.0


async def test_request_id_reaches_the_handler_and_the_response() -> None:
    async with await client(app_with_middleware()) as c:
        mine = await c.post("/echo/a", content=b"xyz", headers={"X-Request-ID": "abc-1"})
        assert mine.text == "a:3:abc-1" and mine.headers["x-request-id"] == "abc-1"
        odd = await c.post("/echo/a", content=b"", headers={"X-Request-ID": "x" * 129})
        assert odd.headers["x-request-id"] != "x" * 129 and len(odd.headers["x-request-id"]) == 32
        assert odd.text == f"a:0:{odd.headers['x-request-id']}"
        assert request_id_var.get() is None  # reset after the request


async def test_bodies_over_the_limit_and_bad_lengths_are_refused_before_any_handler() -> None:
    async with await client(app_with_middleware(max_bytes=100)) as c:
        assert (await c.post("/echo/a", content=b"x" * 100)).text.startswith("a:100:")
        declared = await c.post("/echo/a", content=b"x" * 101)
        assert declared.status_code == 413 and declared.json()["code"] == "PAYLOAD_TOO_LARGE"
        assert "x-request-id" in declared.headers

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(5):
                yield b"y" * 30

        streamed = await c.post("/echo/a", content=chunks())  # no Content-Length: counted while read
        assert streamed.status_code == 413 and "100 bytes" in streamed.json()["message"]
        bad = await c.post("/echo/a", content=b"x", headers={"Content-Length": "ten"})
        assert bad.status_code == 400 and bad.json()["message"] == "invalid Content-Length"
        nul = await c.post("/echo/a%00b", content=b"x")
        assert nul.status_code == 400 and "NUL" in nul.json()["message"]


async def test_headers_are_added_under_the_prefix_without_overriding_the_response() -> None:
    async with await client(app_with_middleware()) as c:
        page = await c.get("/portal/page")
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["cache-control"] == "max-age=60"  # the response's own header wins
        missing = await c.get("/portal/nothing")  # 404s under the prefix carry them too
        assert missing.status_code == 404 and missing.headers["cache-control"] == "no-store"
        assert "x-frame-options" not in (await c.post("/echo/a", content=b"")).headers


async def test_requests_are_counted_per_route_template_including_refusals_and_errors() -> None:
    before = (count("POST", "/echo/{name}", 200), count("POST", "unmatched", 413), count("GET", "/boom", 500),
              count("GET", "unmatched", 404))
    async with await client(app_with_middleware(max_bytes=10)) as c:
        await c.post("/echo/a", content=b"1")
        await c.post("/echo/b", content=b"2")
        await c.post("/echo/c", content=b"x" * 11)
        assert (await c.get("/boom")).status_code == 500
        await c.get("/nowhere")
    after = (count("POST", "/echo/{name}", 200), count("POST", "unmatched", 413), count("GET", "/boom", 500),
             count("GET", "unmatched", 404))
    assert [a - b for a, b in zip(after, before, strict=True)] == [2, 1, 1, 1]


async def test_portal_headers_on_the_app(client: Any) -> None:
    health = await client.get("/health/live")
    assert "content-security-policy" not in health.headers and len(health.headers["x-request-id"]) == 32
    unknown = await client.get("/selfcare/api/nothing")
    assert unknown.status_code == 404 and unknown.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in unknown.headers["content-security-policy"]


def test_the_stack_is_pure_asgi_with_one_platform_layer(rt: Any, settings: Any) -> None:
    from starlette.middleware.base import BaseHTTPMiddleware

    from openbss.app import create_app
    from openbss.platform.dispatch import PrefixDispatcher

    app = create_app(settings, runtime=rt)
    layers, layer = [], app.build_middleware_stack()
    while layer is not None and layer is not app.router:
        layers.append(layer)
        layer = getattr(layer, "app", None)
    layers.append(layer)
    assert not [x for x in layers if isinstance(x, BaseHTTPMiddleware)]
    assert sum(isinstance(x, PlatformMiddleware) for x in layers) == 1
    assert layers[-1] is app.router and isinstance(app.router.middleware_stack, PrefixDispatcher)
