"""Online charging benchmark: a mixed INITIAL/UPDATE/TERMINATE/EVENT load on ``POST /ocs/v1/creditControl``.

    # 1. data: a database with N subscribers (prepaid, large balance, data/voice allowances)
    OPENBSS_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/openbss_bench_ocs \\
        .venv/bin/python bench/charging_load.py setup --subscribers 2000
    # 2. measure: starts `openbss serve` (the charging API) and drives it from this process over loopback
    OPENBSS_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/openbss_bench_ocs \\
        .venv/bin/python bench/charging_load.py run --seconds 30 --concurrency 64 --workers 1

The load generator is this process (a minimal HTTP/1.1 keep-alive client on raw asyncio streams, so that the
client costs little CPU next to the server); the server is a separate ``openbss serve`` process. Each virtual user
owns a subscriber and loops: INITIAL (voice, 60 s), UPDATE (used 60, ask 60), UPDATE, TERMINATE, then an SMS
EVENT — 5 operations per cycle. Every request is timed; the report gives operations per second and p50/p90/p99
latency per request type and overall.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TENANT = "bench-ocs"
VOICE, SMS = "32260@3gpp.org", "32274@3gpp.org"


def msisdn(i: int) -> str:
    return f"3370{i:07d}"


# --- setup ------------------------------------------------------------------------------------------------------
async def setup(subscribers: int) -> None:
    from openbss.charging import service
    from openbss.cli import upgrade_database
    from openbss.demo.charging import FALLBACK_PLAN
    from openbss.platform.runtime import Runtime
    from openbss.platform.tenancy import ensure_tenant
    from openbss.services import build_services
    from openbss.settings import get_settings

    upgrade_database()
    rt = Runtime.build(get_settings())
    charging = build_services(rt.settings, rt).charging.service
    db = rt.db
    async with db.transaction(None) as session:
        await ensure_tenant(session, TENANT, "Charging benchmark")
    made = 0
    for start in range(0, subscribers, 200):
        async with db.transaction(TENANT) as session:
            ctx = service.system_context(session, TENANT, "http://bench")
            for i in range(start, min(subscribers, start + 200)):
                try:
                    await charging.open_account(ctx, subscriber=msisdn(i), payment_type="prepaid", currency="EUR",
                                                plan=FALLBACK_PLAN, initial_balance=Decimal("1000000"))
                    made += 1
                except service.SubscriberExists:
                    pass
        print(f"\r{min(subscribers, start + 200)}/{subscribers} subscribers", end="", flush=True)
    print(f"\ncreated {made} subscribers in tenant {TENANT}")
    await db.dispose()
    import asyncpg

    from openbss.platform.db import owner_url

    owner = await asyncpg.connect(owner_url().set(drivername="postgresql").render_as_string(hide_password=False))
    await owner.execute("ANALYZE")
    await owner.close()


# --- a small HTTP/1.1 keep-alive client ----------------------------------------------------------------------------
class Connection:
    def __init__(self, host: str, port: int, token: str) -> None:
        self.host, self.port = host, port
        self.head = (f"POST /ocs/v1/creditControl HTTP/1.1\r\nHost: {host}:{port}\r\n"
                     f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n").encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def post(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        assert self.reader is not None and self.writer is not None
        data = json.dumps(body, separators=(",", ":")).encode()
        self.writer.write(self.head + b"Content-Length: " + str(len(data)).encode() + b"\r\n\r\n" + data)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        payload = await self.reader.readexactly(length)
        return status, json.loads(payload)


# --- the load ------------------------------------------------------------------------------------------------------
async def user(conn: Connection, number: str, stop: float, samples: dict[str, list[float]],
               errors: list[str]) -> None:
    await conn.open()
    n = 0
    while time.perf_counter() < stop:
        n += 1
        sid = f"bench;{number};{uuid.uuid4().hex[:12]}"
        sub = {"type": "END_USER_E164", "data": number}
        again = {"ratingGroup": 1, "usedServiceUnit": {"time": 60}, "requestedServiceUnit": {"time": 60}}
        steps = [
            ("INITIAL", {"sessionId": sid, "requestType": "INITIAL_REQUEST", "requestNumber": 0,
                         "serviceContextId": VOICE, "subscriptionId": sub,
                         "multipleServicesCreditControl": [{"ratingGroup": 1, "requestedServiceUnit": {"time": 60}}]}),
            ("UPDATE", {"sessionId": sid, "requestType": "UPDATE_REQUEST", "requestNumber": 1,
                        "serviceContextId": VOICE, "multipleServicesCreditControl": [again]}),
            ("UPDATE", {"sessionId": sid, "requestType": "UPDATE_REQUEST", "requestNumber": 2,
                        "serviceContextId": VOICE, "multipleServicesCreditControl": [again]}),
            ("TERMINATE", {"sessionId": sid, "requestType": "TERMINATION_REQUEST", "requestNumber": 3,
                           "serviceContextId": VOICE,
                           "multipleServicesCreditControl": [{"ratingGroup": 1, "usedServiceUnit": {"time": 42}}]}),
            ("EVENT", {"sessionId": sid + ";sms", "requestType": "EVENT_REQUEST", "requestNumber": 0,
                       "serviceContextId": SMS, "subscriptionId": sub, "requestedAction": "DIRECT_DEBITING",
                       "multipleServicesCreditControl": [{"ratingGroup": 3,
                                                          "requestedServiceUnit": {"serviceSpecificUnits": 1}}]}),
        ]
        for kind, body in steps:
            t0 = time.perf_counter()
            status, answer = await conn.post(body)
            samples[kind].append(time.perf_counter() - t0)
            if status != 200 or answer.get("resultCode") != 2001:
                errors.append(f"{kind} {status} {answer.get('resultCode')}")


def pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    return statistics.quantiles(values, n=1000, method="inclusive")[int(p * 10) - 1] * 1000 if len(values) > 1 \
        else values[0] * 1000


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
    out = [pid]
    for child in Path("/proc").glob("[0-9]*"):
        try:
            ppid = int(child.joinpath("stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            out += process_tree(int(child.name))
    return out


def postgres_backends() -> list[int]:
    """Backend processes serving the benchmark database (same host)."""
    out = []
    db = (os.environ.get("OPENBSS_DATABASE_URL") or "").rsplit("/", 1)[-1]
    for child in Path("/proc").glob("[0-9]*"):
        try:
            cmd = child.joinpath("cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if cmd.startswith("postgres:") and f" {db} " in cmd:
            out.append(int(child.name))
    return out


async def load(port: int, seconds: float, concurrency: int, subscribers: int, token: str,
               warmup: float, server_pid: int = 0) -> dict[str, Any]:
    samples: dict[str, list[float]] = {k: [] for k in ("INITIAL", "UPDATE", "TERMINATE", "EVENT")}
    errors: list[str] = []
    if warmup:
        warm: dict[str, list[float]] = {k: [] for k in samples}
        end = time.perf_counter() + warmup
        await asyncio.gather(*(user(Connection("127.0.0.1", port, token), msisdn(i % subscribers), end, warm, [])
                               for i in range(concurrency)))
    servers, backends = process_tree(server_pid) if server_pid else [], postgres_backends()
    cpu0 = (cpu_seconds(servers), cpu_seconds(backends), time.process_time())
    start = time.perf_counter()
    stop = start + seconds
    await asyncio.gather(*(user(Connection("127.0.0.1", port, token), msisdn(i % subscribers), stop, samples,
                                errors) for i in range(concurrency)))
    elapsed = time.perf_counter() - start
    backends = sorted(set(backends) | set(postgres_backends()))
    cpu1 = (cpu_seconds(servers), cpu_seconds(backends), time.process_time())
    every = [v for vs in samples.values() for v in vs]
    n = max(1, len(every))
    report: dict[str, Any] = {
        "operations": len(every), "seconds": round(elapsed, 2), "ops_per_second": round(len(every) / elapsed),
        "p50_ms": round(pct(every, 50), 2), "p90_ms": round(pct(every, 90), 2), "p99_ms": round(pct(every, 99), 2),
        "errors": len(errors), "first_errors": errors[:5],
        "cpu_ms_per_operation": {"api_server": round((cpu1[0] - cpu0[0]) * 1000 / n, 3),
                                 "postgresql": round((cpu1[1] - cpu0[1]) * 1000 / n, 3),
                                 "load_generator": round((cpu1[2] - cpu0[2]) * 1000 / n, 3)},
        "cpu_utilization": {"api_server": round((cpu1[0] - cpu0[0]) / elapsed, 2),
                            "postgresql": round((cpu1[1] - cpu0[1]) / elapsed, 2),
                            "load_generator": round((cpu1[2] - cpu0[2]) / elapsed, 2)},
        "load_average_after": os.getloadavg()[0],
        "by_type": {k: {"n": len(v), "p50_ms": round(pct(v, 50), 2), "p99_ms": round(pct(v, 99), 2)}
                    for k, v in samples.items()},
    }
    return report


def run(args: argparse.Namespace) -> None:
    from openbss.platform.auth import issue_token

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"OPENBSS_DEMO_MODE": "true", **os.environ, "OPENBSS_LOG_LEVEL": "WARNING",
           "OPENBSS_DB_POOL_SIZE": str(args.pool)}  # development keys unless the caller configured secrets
    server = subprocess.Popen([str(Path(sys.executable).parent / "openbss"), "serve", "--port", str(port),
                               "--workers", str(args.workers)], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import urllib.request

        deadline = time.monotonic() + 90
        ready = 0
        while ready < 3 * args.workers:  # every worker process answers (they share the port)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=2) as r:
                    ready += r.status == 200
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("the server did not start") from None
                time.sleep(0.3)
        time.sleep(2.0 * args.workers)
        token = issue_token(TENANT, ["system"], ttl_seconds=24 * 3600)
        try:
            import uvloop

            uvloop.install()
        except ImportError:  # pragma: no cover
            pass
        report = asyncio.run(load(port, args.seconds, args.concurrency, args.subscribers, token, args.warmup,
                                  server.pid))
    finally:
        server.terminate()
        server.wait(20)
    report["machine"] = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, " \
                        f"Python {platform.python_version()}"
    report["command"] = " ".join(sys.argv)
    print(json.dumps(report, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("setup")
    s.add_argument("--subscribers", type=int, default=2000)
    r = sub.add_parser("run")
    r.add_argument("--seconds", type=float, default=30)
    r.add_argument("--warmup", type=float, default=3)
    r.add_argument("--concurrency", type=int, default=64)
    r.add_argument("--subscribers", type=int, default=2000)
    r.add_argument("--workers", type=int, default=1)
    r.add_argument("--pool", type=int, default=10)
    args = parser.parse_args()
    if args.command == "setup":
        asyncio.run(setup(args.subscribers))
    else:
        run(args)


if __name__ == "__main__":
    main()
