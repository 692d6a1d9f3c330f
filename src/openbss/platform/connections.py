"""Slow and greedy clients: how long the server waits for a request, and how many connections one client may hold.

The HTTP server (uvicorn) waits for a request's headers and body as long as the client keeps the connection open:
a client that sends its headers or its body a byte at a time, or never finishes them, holds a connection and a task
forever, and a few hundred such connections exhaust the process. ``GuardedHttpProtocol`` is uvicorn's HTTP protocol
with three limits (settings, per API process):

* ``OPENBSS_HTTP_HEADER_TIMEOUT_SECONDS`` (10): a request's line and headers must have arrived within this time,
  counted from the connection's opening, or from the first byte of a next request on a kept-alive connection;
* ``OPENBSS_HTTP_BODY_TIMEOUT_SECONDS`` (60): its whole body within this time after the headers;
* ``OPENBSS_HTTP_MAX_CONNECTIONS_PER_CLIENT`` (100): open connections from one client address; the next one is
  answered 503 and closed. Behind a load balancer every connection comes from its address: raise the cap (or set
  0: no cap) and let the load balancer limit its clients.

A request out of time is answered 408 (when no response has started) and its connection closed, which ends the
request's task (the application sees the client disconnect). The idle time between requests on a kept-alive
connection is uvicorn's own ``timeout_keep_alive`` (5 s).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout: float = 10.0
    body_timeout: float = 60.0
    max_per_client: int = 100

    @classmethod
    def from_settings(cls, settings: Any) -> ConnectionLimits:
        return cls(header_timeout=settings.http_header_timeout_seconds,
                   body_timeout=settings.http_body_timeout_seconds,
                   max_per_client=settings.http_max_connections_per_client)


def _response(status: bytes, message: bytes) -> bytes:
    return (b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\nconnection: close\r\n"
            b"content-length: " + str(len(message)).encode() + b"\r\n\r\n" + message)


def _error(status: int, reason: str, code: str, message: str) -> bytes:
    import json

    body = json.dumps({"code": code, "reason": reason, "message": message, "status": str(status),
                       "@type": "Error"}).encode()
    return _response(f"{status} {reason}".encode(), body)


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol with header and body read timeouts and a per-client connection cap."""

    #: the limits of the process (from the settings, on first use); tests may set their own
    limits: ClassVar[ConnectionLimits | None] = None
    #: open connections by client address, in this process
    open_by_client: ClassVar[Counter[str]] = Counter()

    @classmethod
    def configured(cls) -> ConnectionLimits:
        if cls.limits is None:
            from openbss.settings import get_settings

            cls.limits = ConnectionLimits.from_settings(get_settings())
        return cls.limits

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._timer: asyncio.TimerHandle | None = None
        self._counted: str | None = None
        limits = self.configured()
        peer = self.client[0] if self.client else None
        if peer is not None and limits.max_per_client:
            if self.open_by_client[peer] >= limits.max_per_client:
                log.warning("refused a connection from %s: %d connections open (OPENBSS_HTTP_MAX_CONNECTIONS_PER_"
                            "CLIENT)", peer, self.open_by_client[peer])
                transport.write(_error(503, "Service Unavailable", "TOO_MANY_CONNECTIONS",
                                       f"at most {limits.max_per_client} open connections per client"))
                transport.close()
                return
            self.open_by_client[peer] += 1
            self._counted = peer
        self._arm(limits.header_timeout, "request headers")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._counted is not None:
            self.open_by_client[self._counted] -= 1
            if self.open_by_client[self._counted] <= 0:
                del self.open_by_client[self._counted]
            self._counted = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._timer is None and not self.transport.is_closing():  # a next request begins on the connection
            self._arm(self.configured().header_timeout, "request headers")
        super().data_received(data)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._arm(self.configured().body_timeout, "request body")

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()

    # --- the timer --------------------------------------------------------------------------------------------
    def _arm(self, seconds: float, what: str) -> None:
        self._disarm()
        if seconds and seconds > 0:
            self._timer = self.loop.call_later(seconds, self._expired, seconds, what)

    def _disarm(self) -> None:
        timer = getattr(self, "_timer", None)
        if timer is not None:
            timer.cancel()
            self._timer = None

    def _expired(self, seconds: float, what: str) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        peer = self.client[0] if self.client else "?"
        log.warning("closed a connection from %s: the %s did not arrive within %s s", peer, what, seconds)
        cycle = self.cycle
        if cycle is None or cycle.response_complete or not cycle.response_started:
            self.transport.write(_error(408, "Request Timeout", "REQUEST_TIMEOUT",
                                        f"the {what} did not arrive within {seconds:g} s"))
        self.transport.close()


def server_options(settings: Any) -> dict[str, Any]:
    """The uvicorn options of an API process: its HTTP protocol with the connection limits."""
    GuardedHttpProtocol.limits = ConnectionLimits.from_settings(settings)
    return {"http": GuardedHttpProtocol}
