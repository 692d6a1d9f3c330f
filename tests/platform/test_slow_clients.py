"""Slow and greedy clients against the real HTTP server (uvicorn with the platform's protocol, on a loopback port):
a body or headers that never complete are cut off with 408 and the request's task ends; one client's connections
are capped."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn

from openbss.platform.connections import ConnectionLimits, GuardedHttpProtocol, server_options
from tests.conftest import bearer

IND = "/tmf-api/party/v4/individual"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def serving(app: Any, settings: Any, **limits: Any) -> AsyncIterator[int]:
    port = _free_port()
    options = server_options(settings)
    GuardedHttpProtocol.limits = ConnectionLimits(**limits)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False,
                                           lifespan="off", **options))
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.02)
        assert server.started
        yield port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        GuardedHttpProtocol.limits = None


async def _read_all(reader: asyncio.StreamReader, within: float) -> tuple[bytes, float]:
    started = time.monotonic()
    data = await asyncio.wait_for(reader.read(), within)  # until the server closes the connection
    return data, time.monotonic() - started


def test_the_server_uses_the_guarded_protocol(settings: Any) -> None:
    options = server_options(settings)
    assert options["http"] is GuardedHttpProtocol
    assert GuardedHttpProtocol.limits == ConnectionLimits(settings.http_header_timeout_seconds,
                                                          settings.http_body_timeout_seconds,
                                                          settings.http_max_connections_per_client)
    GuardedHttpProtocol.limits = None


async def test_a_body_that_never_completes_is_cut_off(app: Any, settings: Any, tenant: str) -> None:
    async with serving(app, settings, header_timeout=5, body_timeout=0.5, max_per_client=10) as port:
        auth = bearer(tenant, "admin")["Authorization"]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"POST {IND} HTTP/1.1\r\nHost: t\r\nAuthorization: {auth}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"givenName\": ".encode())
        await writer.drain()
        data, waited = await _read_all(reader, 10)
        writer.close()
        assert data.startswith(b"HTTP/1.1 408"), data
        assert b"request body did not arrive within 0.5 s" in data
        assert 0.4 < waited < 5
        # and the server still serves others; nothing was created
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET {IND} HTTP/1.1\r\nHost: t\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        data, _ = await _read_all(reader, 10)
        writer.close()
        assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"[]"), data


async def test_headers_that_never_complete_are_cut_off(app: Any, settings: Any) -> None:
    async with serving(app, settings, header_timeout=0.5, body_timeout=5, max_per_client=10) as port:
        # a connection that sends nothing, and one that sends its headers a byte at a time, never finishing
        silent = await asyncio.open_connection("127.0.0.1", port)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for ch in b"GET /health/live HTTP/1.1\r\n"[:12]:
            writer.write(bytes([ch]))
            await writer.drain()
            await asyncio.sleep(0.01)
        data, waited = await _read_all(reader, 10)
        assert waited < 5
        assert data.startswith(b"HTTP/1.1 408") and b"request headers" in data, data
        data, _ = await _read_all(silent[0], 10)
        assert data.startswith(b"HTTP/1.1 408"), data
        writer.close()
        silent[1].close()


async def test_a_kept_alive_connection_is_timed_per_request(app: Any, settings: Any) -> None:
    async with serving(app, settings, header_timeout=0.5, body_timeout=0.5, max_per_client=10) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(3):  # requests spaced by more than the header timeout: each is timed from its first byte
            writer.write(b"GET /health/live HTTP/1.1\r\nHost: t\r\n\r\n")
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200"), head
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            await reader.readexactly(length)
            await asyncio.sleep(0.7)
        writer.close()


async def test_connections_per_client_are_capped(app: Any, settings: Any) -> None:
    async with serving(app, settings, header_timeout=10, body_timeout=10, max_per_client=3) as port:
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        await asyncio.sleep(0.1)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        data, _ = await _read_all(reader, 5)
        writer.close()
        assert data.startswith(b"HTTP/1.1 503") and b"TOO_MANY_CONNECTIONS" in data, data
        # one closes: a new connection is served
        held[0][1].close()
        await asyncio.sleep(0.2)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /health/live HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        await writer.drain()
        data, _ = await _read_all(reader, 5)
        writer.close()
        assert data.startswith(b"HTTP/1.1 200"), data
        for _, w in held[1:]:
            w.close()
        assert GuardedHttpProtocol.open_by_client.get("127.0.0.1", 0) <= 3


@pytest.mark.parametrize("value", [0])
async def test_no_cap_when_set_to_zero(app: Any, settings: Any, value: int) -> None:
    async with serving(app, settings, header_timeout=10, body_timeout=10, max_per_client=value) as port:
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(5)]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /health/live HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        await writer.drain()
        data, _ = await _read_all(reader, 5)
        assert data.startswith(b"HTTP/1.1 200"), data
        for _, w in [*held, (reader, writer)]:
            w.close()
