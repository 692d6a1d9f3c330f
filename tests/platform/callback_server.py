"""A subscriber's notification listener for hub tests: a real HTTP server on 127.0.0.1 (random port), in a thread, that
records every request and answers 201, or 500 for the first ``fail_first`` requests (or always, ``always_fail``)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class CallbackServer:
    base_url: str = ""
    fail_first: int = 0
    always_fail: bool = False
    requests: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, item: Received) -> int:
        with self._lock:
            self.requests.append(item)
            n = len(self.requests)
        return 500 if self.always_fail or n <= self.fail_first else 201

    def received(self) -> list[Received]:
        with self._lock:
            return list(self.requests)

    def for_event(self, event_id: str) -> list[Received]:
        return [r for r in self.received() if r.json().get("eventId") == event_id]


@contextmanager
def callback_server(**options: Any) -> Iterator[CallbackServer]:
    state = CallbackServer(**options)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status = state.record(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # silence the default stderr log
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}/subscriber"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
