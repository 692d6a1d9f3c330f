"""Dispatch by path prefix: every route of the app is reached as with the framework's linear matching; 404, 405 with
Allow, trailing-slash redirects, path parameters, mounts and routers added after start-up, metrics per route."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.routing import iter_route_contexts
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from openbss.platform.dispatch import PrefixDispatcher, install_dispatcher, static_prefix
from tests.conftest import bearer

SAMPLES = {"str": "z9sample", "int": "7", "float": "1.5", "path": "z9/sample",
           "uuid": "0b0e8f52-8d5c-4c55-9d0a-3a9c1b4f1e21"}
PARAM = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)(?::([a-z]+))?}")


def sample_path(path: str, mount: bool) -> str:
    concrete = PARAM.sub(lambda m: SAMPLES[m.group(2) or "str"], path)
    return concrete.rstrip("/") + "/z9asset" if mount else concrete


def leaves(app: FastAPI) -> Iterator[tuple[Any, str, str, bool]]:
    """(route, concrete path, method, is a mount) for every route of the app, included routers unfolded."""
    for rc in iter_route_contexts(app.routes):
        route = rc.original_route
        mount = isinstance(route, Mount)
        methods = sorted(rc.methods or {"GET"})
        yield route, sample_path(rc.path or "", mount), methods[0], mount


async def call(app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]] | None = None,
               ) -> tuple[int, dict[str, str], dict[str, Any]]:
    """One request through the ASGI app; returns the status, the headers and the request's final scope."""
    scope: dict[str, Any] = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", b"testserver"), *(headers or [])], "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80), "state": {},
    }
    sent: list[dict[str, Any]] = []
    received: list[bool] = []

    async def receive() -> dict[str, Any]:
        if received:  # the body was read: what comes next is the client going away, once the answer is sent
            await asyncio.Event().wait()
        received.append(True)
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]}, scope


async def linear_and_dispatched(app: Any, method: str, path: str) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """The same request routed by the framework's linear matching and by the dispatcher."""
    dispatcher = app.router.middleware_stack
    assert isinstance(dispatcher, PrefixDispatcher)
    app.router.middleware_stack = app.router.app
    try:
        linear = await call(app, method, path)
    finally:
        app.router.middleware_stack = dispatcher
    dispatched = await call(app, method, path)
    return summary(linear), summary(dispatched)


def summary(result: tuple[int, dict[str, str], dict[str, Any]]) -> tuple[Any, ...]:
    status, headers, scope = result
    route = scope.get("route")
    return (status, headers.get("allow"), headers.get("location"), getattr(route, "path", None),
            scope.get("endpoint"), scope.get("path_params"))


@pytest.fixture(scope="module")
def fresh_app(rt: Any, settings: Any) -> FastAPI:
    from openbss.app import create_app

    return create_app(settings, runtime=rt)


def test_static_prefix_is_the_literal_segments_before_the_first_parameter() -> None:
    assert static_prefix("/tmf-api/party/v4/individual/{id}") == ("tmf-api", "party", "v4", "individual")
    assert static_prefix("/selfcare/api/usage/{month}.pdf") == ("selfcare", "api", "usage")
    assert static_prefix("/a/b{x}") == ("a",)  # "b{x}" matches "b..." segments: not a complete literal segment
    assert static_prefix("/health/live") == ("health", "live")
    assert static_prefix("/selfcare/") == ("selfcare", "")
    assert static_prefix("/selfcare/assets", mount=True) == ("selfcare", "assets")
    assert static_prefix("", mount=True) == ()  # a mount at the root may serve any path


async def test_every_route_of_the_app_is_reached_as_with_linear_matching(fresh_app: FastAPI) -> None:
    checked = 0
    for route, path, method, mount in leaves(fresh_app):
        linear, dispatched = await linear_and_dispatched(fresh_app, method, path)
        assert dispatched == linear, (method, path)
        expected = route.app if mount else route.endpoint  # type: ignore[attr-defined]
        assert dispatched[4] is expected, f"{method} {path} reached {dispatched[3]}, not {route}"
        checked += 1
    assert checked >= 200  # every API of the platform


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/"), ("GET", "/nope"), ("GET", "/tmf-api/nope/v4/x"), ("GET", "/tmf-api/party/v4/nope"),
    ("DELETE", "/health/live"), ("PUT", "/tmf-api/party/v4/individual/x"), ("POST", "/selfcare/api/balance"),
    ("GET", "/health/live/"), ("GET", "/tmf-api/party/v4/individual/"), ("GET", "/tmf-api/party/v4/individual/x/"),
    ("GET", "/selfcare"), ("GET", "/selfcare/assets"), ("GET", "/docs/"), ("GET", "/openapi.json/"),
    ("GET", "/selfcare/api/usage/2026-01.pdf/"), ("GET", "/selfcare//api/balance"), ("GET", "/tmf-api//party"),
])
async def test_unknown_paths_wrong_methods_and_redirects_answer_as_before(fresh_app: FastAPI, method: str,
                                                                         path: str) -> None:
    linear, dispatched = await linear_and_dispatched(fresh_app, method, path)
    assert dispatched == linear


async def test_a_tmf_request_is_matched_against_its_own_routes_only(fresh_app: FastAPI) -> None:
    dispatcher = fresh_app.router.middleware_stack
    assert isinstance(dispatcher, PrefixDispatcher)
    candidates = dispatcher.candidates("/tmf-api/party/v4/individual/123")
    assert len(candidates) == 1  # the party API's router, among ~25
    inner = candidates[0].original_router  # type: ignore[attr-defined]
    assert {r.path for r in inner.routes} == {"/tmf-api/party/v4/individual", "/tmf-api/party/v4/individual/{id}"}
    assert dispatcher.candidates("/nowhere/at/all") == []


async def test_metrics_are_labelled_with_the_route_template(client: httpx.AsyncClient, tenant: str) -> None:
    h = bearer(tenant, "admin")
    created = await client.post("/tmf-api/party/v4/individual", json={"givenName": "Di", "familyName": "Spatch"},
                                headers=h)
    assert created.status_code == 201
    assert (await client.get(f"/tmf-api/party/v4/individual/{created.json()['id']}", headers=h)).status_code == 200
    assert (await client.get("/tmf-api/party/v4/nothing-here", headers=h)).status_code == 404
    text = (await client.get("/metrics")).text
    assert 'openbss_http_requests_total{method="GET",route="/tmf-api/party/v4/individual/{id}",status="200"}' in text
    assert 'openbss_http_requests_total{method="GET",route="unmatched",status="404"}' in text


# --- a small app: the rules one by one ------------------------------------------------------------------------------
def small_app() -> FastAPI:
    app = FastAPI()
    api = APIRouter(prefix="/api/things/v1")

    @api.get("/thing/special")
    async def special() -> dict[str, str]:
        return {"which": "special"}

    @api.get("/thing/{thing_id}", name="thing")
    async def thing(thing_id: int) -> dict[str, Any]:
        return {"which": "by id", "id": thing_id}

    @api.delete("/thing/{thing_id}")
    async def delete_thing(thing_id: int) -> dict[str, Any]:
        return {"deleted": thing_id}

    @api.get("/file/{rest:path}")
    async def file(rest: str) -> dict[str, str]:
        return {"rest": rest}

    other = APIRouter()

    @other.get("/folder/")
    async def folder() -> dict[str, str]:
        return {"folder": "index"}

    @other.get("/other/link")
    async def link(request: Request) -> dict[str, str]:  # url_for reaches a route of another prefix
        return {"href": str(request.url_for("thing", thing_id=5))}

    app.include_router(api)
    app.include_router(other)
    install_dispatcher(app)
    return app


async def get(app: FastAPI, path: str, method: str = "GET") -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        return await c.request(method, path, follow_redirects=False)


async def test_path_parameters_order_and_conversion() -> None:
    app = small_app()
    assert (await get(app, "/api/things/v1/thing/special")).json() == {"which": "special"}
    assert (await get(app, "/api/things/v1/thing/42")).json() == {"which": "by id", "id": 42}
    assert (await get(app, "/api/things/v1/thing/x")).status_code == 422  # the int convertor's validation
    assert (await get(app, "/api/things/v1/file/a/b/c.txt")).json() == {"rest": "a/b/c.txt"}
    assert (await get(app, "/other/link")).json() == {"href": "http://t/api/things/v1/thing/5"}


async def test_404_405_and_trailing_slash_redirect() -> None:
    app = small_app()
    assert (await get(app, "/api/things/v1/nothing")).status_code == 404
    assert (await get(app, "/elsewhere")).status_code == 404
    wrong = await get(app, "/api/things/v1/thing/42", "PUT")
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "GET"  # as the framework answers: the first route serving the path
    moved = await get(app, "/api/things/v1/thing/special/")
    assert moved.status_code == 307 and moved.headers["location"] == "http://t/api/things/v1/thing/special"
    slash = await get(app, "/folder")
    assert slash.status_code == 307 and slash.headers["location"] == "http://t/folder/"


async def test_mounts_and_routes_added_after_the_first_request_are_reached() -> None:
    app = small_app()
    assert (await get(app, "/demo-idp/acme/authorize")).status_code == 404  # the index is built now

    async def authorize(request: Any) -> PlainTextResponse:
        return PlainTextResponse(f"idp {request.url.path}")

    app.mount("/demo-idp/acme", Starlette(routes=[Route("/authorize", authorize)]))
    served = await get(app, "/demo-idp/acme/authorize")
    assert served.status_code == 200 and served.text == "idp /demo-idp/acme/authorize"

    late = APIRouter(prefix="/api/late/v1")

    @late.get("/ping")
    async def ping() -> dict[str, str]:
        return {"late": "yes"}

    app.include_router(late)
    assert (await get(app, "/api/late/v1/ping")).json() == {"late": "yes"}

    @late.get("/pong")  # a route added to a router that is already included
    async def pong() -> dict[str, str]:
        return {"late": "pong"}

    assert (await get(app, "/api/late/v1/pong")).json() == {"late": "pong"}


async def test_openapi_lists_every_route_with_the_dispatcher_installed() -> None:
    app = small_app()
    await get(app, "/api/things/v1/thing/1")
    paths = app.openapi()["paths"]
    assert {"/api/things/v1/thing/{thing_id}", "/api/things/v1/thing/special", "/other/link"} <= set(paths)
    assert install_dispatcher(app) is app.router.middleware_stack  # installing twice keeps one dispatcher
