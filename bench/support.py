"""What the HTTP benchmarks share: a started ``openbss serve`` on loopback and one percentile definition."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (the value below which p % of the samples fall); NaN for no samples."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def api_server(port: int, *extra_args: str) -> Iterator[str]:
    """Run ``openbss serve`` on 127.0.0.1:port (settings from the environment) until the block ends; yields the
    base URL once the server answers."""
    env = {**os.environ, "OPENBSS_LOG_LEVEL": "WARNING", "OPENBSS_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    server = subprocess.Popen([str(Path(sys.executable).parent / "openbss"), "serve", "--port", str(port),
                               *extra_args], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if httpx.get(f"{base}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError(f"openbss serve did not answer on {base}")
        yield base
    finally:
        server.terminate()
        server.wait(10)
