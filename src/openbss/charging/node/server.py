"""The charging node's JSON front end: ``POST /ocs/v1/creditControl`` (the same JSON, authentication and answers as
the application's route), ``GET /metrics`` (Prometheus) and ``GET /health`` on a lean HTTP/1.1 server (asyncio
protocol, keep-alive, requests of a connection answered in order). The general web stack costs about a millisecond
of CPU per request (see docs/benchmarks.md), more than the decision itself.

``run_node`` is what ``openbss charging-node`` runs: the node, its leases and this front end until stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from typing import Any, cast

import jwt
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError

from openbss.charging.errors import InvalidChargingRequest
from openbss.charging.node.engine import ChargingNode
from openbss.charging.node.state import dumps
from openbss.charging.schemas import CreditControlRequest
from openbss.platform.auth import WRITE, Principal
from openbss.platform.db import json_dumps
from openbss.platform.errors import DomainError, Unauthorized, UnsupportedMediaType
from openbss.platform.tmf.errors import validation_message

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
MAX_HEAD = 16 * 1024
PRINCIPAL_CACHE_SECONDS = 300.0
TENANT_CACHE_SECONDS = 1.0
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 413: "Payload Too Large", 415: "Unsupported Media Type",
           500: "Internal Server Error"}


class FrontEnd:
    """HTTP/1.1 for one charging node. ``verifier`` verifies bearer tokens (``TokenVerifier``), ``tenants`` says
    whether a tenant is active (``TenantDirectory``)."""

    def __init__(self, node: ChargingNode, verifier: Any, tenants: Any) -> None:
        self.node = node
        self.verifier = verifier
        self.tenants = tenants
        self.principals: dict[str, tuple[Principal, float]] = {}
        self.tenant_cache: dict[str, tuple[bool, float]] = {}
        self.tenant_lookups: dict[str, asyncio.Future[bool]] = {}
        self.server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: _Connection(self), host, port, reuse_address=True)
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2)

    async def principal(self, headers: dict[str, str]) -> Principal:
        auth = headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("missing bearer token")
        now = time.time()
        hit = self.principals.get(token)
        if hit is None or hit[1] <= now:
            principal = await self.verifier.verify(token)
            expires = jwt.decode(token, options={"verify_signature": False}).get("exp", now)
            if len(self.principals) >= 4096:
                self.principals.clear()
            self.principals[token] = (principal, min(float(expires), now + PRINCIPAL_CACHE_SECONDS))
        else:
            principal = hit[0]
        if not await self.tenant_active(principal.tenant_id):
            raise Unauthorized(f"tenant '{principal.tenant_id}' does not exist or is not active",
                               code="UNKNOWN_TENANT")
        return principal

    async def tenant_active(self, tenant_id: str) -> bool:
        """Whether the tenant is active (the tenant directory), kept a second and asked once at a time: when it runs
        out, the requests arriving meanwhile share one lookup instead of each opening a transaction (hundreds at once
        under load)."""
        now = time.monotonic()
        hit = self.tenant_cache.get(tenant_id)
        if hit is not None and hit[1] > now:
            return hit[0]
        pending = self.tenant_lookups.get(tenant_id)
        if pending is None:
            pending = asyncio.ensure_future(self.tenants.is_active(tenant_id))
            self.tenant_lookups[tenant_id] = pending

            def done(f: asyncio.Future[bool]) -> None:
                self.tenant_lookups.pop(tenant_id, None)
                if not f.cancelled() and f.exception() is None:
                    self.tenant_cache[tenant_id] = (f.result(), time.monotonic() + TENANT_CACHE_SECONDS)

            pending.add_done_callback(done)
        return await asyncio.shield(pending)

    async def handle(self, method: str, path: str, headers: dict[str, str], body: bytes,
                     ) -> tuple[int, str, bytes]:
        path = path.split("?", 1)[0]
        try:
            if path == "/ocs/v1/creditControl":
                if method != "POST":
                    return _error(405, "METHOD_NOT_ALLOWED", f"{method} is not allowed here")
                principal = await self.principal(headers)
                principal.require("charging", WRITE)
                ctype = headers.get("content-type", "").split(";")[0].strip().lower()
                if ctype != "application/json":
                    raise UnsupportedMediaType(f"Content-Type must be application/json, got '{ctype or 'none'}'")
                try:
                    ccr = CreditControlRequest.model_validate_json(body)
                except ValidationError as exc:
                    raise InvalidChargingRequest(validation_message(exc)) from exc
                answer = await self.node.credit_control(principal.tenant_id, ccr)
                return 200, "application/json", dumps(answer)
            if path == "/metrics" and method == "GET":
                return 200, CONTENT_TYPE_LATEST, generate_latest()
            if path == "/health" and method == "GET":
                return 200, "application/json", json_dumps({
                    "node": self.node.config.node_id, "address": self.node.config.address,
                    "shards": self.node.owned_shards(), "queue": len(self.node.queue)}).encode()
            return _error(404, "NOT_FOUND", f"no route {path}")
        except DomainError as exc:
            return exc.status, "application/json", json_dumps(exc.body()).encode()
        except Exception:
            log.exception("charging node front end")
            return _error(500, "INTERNAL_ERROR", "internal error")


def _error(status: int, code: str, message: str) -> tuple[int, str, bytes]:
    return status, "application/json", json_dumps({"code": code, "reason": REASONS.get(status, ""),
                                                   "message": message, "status": str(status),
                                                   "@type": "Error"}).encode()


class _Connection(asyncio.Protocol):
    """One keep-alive connection: requests parsed as bytes arrive, answered in order by one task."""

    def __init__(self, front: FrontEnd) -> None:
        self.front = front
        self.buffer = bytearray()
        self.requests: asyncio.Queue[tuple[str, str, dict[str, str], bytes, bool] | None] = asyncio.Queue()
        self.transport: asyncio.Transport | None = None
        self.task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio's classes
        self.task = asyncio.get_running_loop().create_task(self._serve())

    def connection_lost(self, exc: Exception | None) -> None:
        self.requests.put_nowait(None)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEAD:
                    self._close()
                return
            head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            try:
                method, path, version = head[0].split(" ", 2)
            except ValueError:
                self._close()
                return
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length") or 0)
            if length > MAX_BODY or length < 0:
                self._close()
                return
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4:end + 4 + length])
            del self.buffer[:end + 4 + length]
            keep = headers.get("connection", "").lower() != "close" and version == "HTTP/1.1"
            self.requests.put_nowait((method, path, headers, body, keep))

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    async def _serve(self) -> None:
        while True:
            item = await self.requests.get()
            if item is None or self.transport is None or self.transport.is_closing():
                return
            method, path, headers, body, keep = item
            status, ctype, payload = await self.front.handle(method, path, headers, body)
            head = (f"HTTP/1.1 {status} {REASONS.get(status, '')}\r\ncontent-type: {ctype}\r\n"
                    f"content-length: {len(payload)}\r\n{'' if keep else 'connection: close' + chr(13) + chr(10)}"
                    f"\r\n").encode()
            if self.transport.is_closing():
                return
            self.transport.write(head + payload)
            if not keep:
                self.transport.close()
                return


YOUNG_COLLECTION_THRESHOLD = 20_000


def settle_heap(threshold: int = YOUNG_COLLECTION_THRESHOLD) -> tuple[int, int, int]:
    """Once a node process has started (modules, pools, its shards' first state): collect, then move what survived
    to the permanent generation (``gc.freeze``) so that collections no longer walk it, and collect the young
    generation every ``threshold`` allocations instead of 700. A decision allocates a few hundred short-lived
    objects that reference counting frees; the default threshold made the collector walk the young generation
    several times per batch. Only the charging-node command calls this (an API process keeps the defaults).
    Returns the previous thresholds."""
    previous = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(threshold, previous[1], previous[2])
    return previous


async def run_node(node: ChargingNode, front: FrontEnd, host: str, port: int, stop: asyncio.Event,
                   on_ready: Any = None) -> None:
    """Start the node and its front end, run until ``stop``, then stop both (releasing the leases)."""
    await node.start()
    bound = await front.start(host, port)
    if on_ready is not None:
        on_ready(bound)
    try:
        await stop.wait()
    finally:
        await front.stop()
        await node.stop()
