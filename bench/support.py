"""What the HTTP benchmarks share: a started ``openbss serve`` on loopback and one percentile definition."""

from __future__ import annotations

import math
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

# the benchmarks run with the development keys (demo mode) unless the caller configured the secrets
os.environ.setdefault("OPENBSS_DEMO_MODE", "true")


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (the value below which p % of the samples fall); NaN for no samples."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))]


def require_wrk() -> str:
    """The path of wrk (the HTTP load generator), or exit saying how to install it."""
    found = shutil.which("wrk")
    if found is None:
        sys.exit("wrk is not installed; on Debian or Ubuntu: apt-get install -y wrk")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def api_server(port: int, *extra_args: str) -> Iterator[str]:
    """Run ``openbss serve`` on 127.0.0.1:port (settings from the environment) until the block ends; yields the
    base URL once the server answers."""
    with api_server_process(port, *extra_args) as (base, _):
        yield base


@contextmanager
def api_server_process(port: int, *extra_args: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``api_server`` that also yields the server process (to read its CPU time)."""
    # demo mode unless the caller configured secrets: a benchmark runs with the development keys
    env = {"OPENBSS_DEMO_MODE": "true", **os.environ, "OPENBSS_LOG_LEVEL": "WARNING",
           "OPENBSS_PUBLIC_URL": f"http://127.0.0.1:{port}"}
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
        yield base, server
    finally:
        server.terminate()
        server.wait(10)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of processes (Linux /proc), in seconds."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """The process and its descendants (e.g. uvicorn's supervisor and its worker processes)."""
    out = [pid]
    for child in Path("/proc").glob("[0-9]*"):
        try:
            ppid = int(child.joinpath("stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            out += process_tree(int(child.name))
    return out


def postgres_backends(database: str) -> list[int]:
    """PostgreSQL backend processes serving ``database`` (same host)."""
    out = []
    for child in Path("/proc").glob("[0-9]*"):
        try:
            cmd = child.joinpath("cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if cmd.startswith("postgres:") and f" {database} " in cmd:
            out.append(int(child.name))
    return out
