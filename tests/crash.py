"""The kill -9 harness of the scheduler crash tests: a scheduler process started, killed (SIGKILL) once it has done
some of the work, and started again to finish it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable


def start_cli(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``openbss <args>`` in a process of its own, with ``env`` added to this process's environment."""
    return subprocess.Popen([sys.executable, "-m", "openbss.cli", *args], env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


async def kill_mid_round_then_restart(start: Callable[[], subprocess.Popen[bytes]],
                                      done: Callable[[], Awaitable[int]], total: int, *,
                                      first: tuple[int, float], rest: tuple[int, float], nothing: str) -> int:
    """Start a scheduler (``start``), kill it with SIGKILL as soon as ``done()`` counts some work (polling
    ``first``: (times, seconds between); ``nothing`` is the failure's text when it did none), check that it was
    killed in the middle of the work (``total``), then start another and let it run until ``done()`` reaches
    ``total`` (polling ``rest``) or the polls run out, and stop it (SIGTERM). Returns what was done when killed."""
    scheduler = start()
    try:
        for _ in range(first[0]):
            if await done() > 0:
                break
            await asyncio.sleep(first[1])
        else:  # stopped first: its output is read to the end
            scheduler.kill()
            raise AssertionError(scheduler.stdout.read() if scheduler.stdout else nothing)
        os.kill(scheduler.pid, signal.SIGKILL)
        scheduler.wait(10)
    finally:
        if scheduler.poll() is None:
            scheduler.kill()
    partial = await done()
    assert 0 < partial < total, partial  # killed in the middle of the work
    restarted = start()
    try:
        for _ in range(rest[0]):
            if await done() == total:
                break
            await asyncio.sleep(rest[1])
    finally:
        restarted.send_signal(signal.SIGTERM)
        try:
            restarted.wait(10)
        except subprocess.TimeoutExpired:
            restarted.kill()
    return partial
