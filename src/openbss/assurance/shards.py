"""Several alarm listener processes on one UDP port: each binds it with ``SO_REUSEPORT`` and the kernel spreads
the senders over them (by source address and port: a device's datagrams always reach the same process, which
keeps its repeats folded in one place). Each process has its own database connections, window and batches; the
alarms stay deduplicated across processes by the unique index of open alarms and the per-object advisory locks
the batches take (in one order, so that they wait for each other rather than deadlock).

``ListenerPool`` starts the processes (``spawn``: fresh interpreters, no inherited connections) with a target of
the composition root (``openbss.services.run_listener_process``), waits until every one is listening, and at
``stop`` asks each to stop (``SIGTERM``: it reads what its socket holds and applies it) and collects their
statistics.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

#: what a listener process is called with: its index, the options, a queue to say it listens, one for its stats
Target = Callable[[int, dict[str, Any], Any, Any], None]


def free_port(host: str = "127.0.0.1") -> int:
    """A UDP port nobody listens on now (for ``port`` 0: the processes must share one)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ListenerPool:
    """``processes`` listener processes running ``target`` on one port (``options["port"]``; 0: a free one)."""

    def __init__(self, target: Target, processes: int, options: dict[str, Any]) -> None:
        if processes < 1:
            raise ValueError("at least one listener process")
        self.target = target
        self.processes = processes
        self.options = dict(options)
        if not self.options.get("port"):
            self.options["port"] = free_port(self.options.get("host") or "127.0.0.1")
        self.port: int = int(self.options["port"])
        ctx = multiprocessing.get_context("spawn")
        self._ready = ctx.Queue()
        self._results = ctx.Queue()
        self._procs = [ctx.Process(target=target, args=(i, self.options, self._ready, self._results),
                                   name=f"openbss-listener-{i}") for i in range(processes)]

    def start(self, timeout: float = 120) -> None:
        """Start the processes; return when every one listens (a process that dies first is an error)."""
        for proc in self._procs:
            proc.start()
        deadline = time.monotonic() + timeout
        ready = 0
        while ready < self.processes:
            try:
                self._ready.get(timeout=0.5)
                ready += 1
            except queue.Empty:
                dead = [p for p in self._procs if p.exitcode is not None]
                if dead or time.monotonic() > deadline:
                    self.stop(timeout=10)
                    raise RuntimeError(f"listener processes did not start (exit codes "
                                       f"{[p.exitcode for p in self._procs]})") from None

    def alive(self) -> bool:
        return all(p.is_alive() for p in self._procs)

    def stop(self, timeout: float = 120) -> list[dict[str, Any]]:
        """Ask every process to stop (``SIGTERM``: what it received is applied first); their statistics."""
        for proc in self._procs:
            if proc.pid is not None and proc.exitcode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout: float | None = None) -> list[dict[str, Any]]:
        """Wait for the processes to end; their statistics (one dict each, by index)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        stats: dict[int, dict[str, Any]] = {}
        while len(stats) < sum(1 for p in self._procs if p.pid is not None):
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            try:
                got = self._results.get(timeout=0.5 if left is None else min(0.5, left))
                stats[int(got["index"])] = got
            except queue.Empty:
                if all(p.exitcode is not None for p in self._procs if p.pid is not None):
                    break
        for proc in self._procs:
            if proc.pid is not None:
                proc.join(None if deadline is None else max(0.1, deadline - time.monotonic()))
        return [stats[i] for i in sorted(stats)]


__all__ = ["ListenerPool", "Target", "free_port"]
