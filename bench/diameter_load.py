"""Diameter Gy/Ro benchmark: a mixed INITIAL/UPDATE/TERMINATE/EVENT credit-control load on ``openbss diameter``.

    # 1. data: the same database as bench/charging_load.py (N prepaid subscribers in tenant bench-ocs)
    OPENBSS_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/openbss_bench_ocs \\
        .venv/bin/python bench/charging_load.py setup --subscribers 2000
    # 2. measure: starts `openbss diameter` (the front end over the charging service) and drives it from this process
    OPENBSS_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/openbss_bench_ocs \\
        .venv/bin/python bench/diameter_load.py run --seconds 20 --concurrency 16 --connections 2

The load generator is this process: ``--connections`` Diameter peers (TCP, CER first), over which ``--concurrency``
virtual users pipeline their requests (answers matched by hop-by-hop identifier). Each user owns a subscriber and
loops: INITIAL (voice, 60 s), UPDATE (used 60, ask 60), UPDATE, TERMINATE, then an SMS EVENT (direct debit) — the
cycle of bench/charging_load.py, so the figures compare with the JSON API's. Every request is timed; the report
gives answered operations per second and p50/p90/p99 overall and per request type (refused requests, e.g. 3004
beyond ``--max-in-flight``, timed apart), answers by Result-Code, and the CPU per operation of the front-end
process and of the PostgreSQL backends of the database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import charging_load as common  # the setup, subscribers and CPU accounting of the JSON benchmark

from openbss.charging.diameter.client import DiameterClient

ROOT = Path(__file__).resolve().parents[1]
VOICE, SMS = common.VOICE, common.SMS


def cycle(number: str) -> list[tuple[str, dict[str, Any]]]:
    sid = f"bench;{number};{uuid.uuid4().hex[:12]}"
    sub = {"type": "END_USER_E164", "data": number}
    again = {"ratingGroup": 1, "usedServiceUnit": {"time": 60}, "requestedServiceUnit": {"time": 60}}
    return [
        ("INITIAL", {"sessionId": sid, "requestType": "INITIAL_REQUEST", "requestNumber": 0, "serviceContextId": VOICE,
                     "subscriptionId": sub,
                     "multipleServicesCreditControl": [{"ratingGroup": 1, "requestedServiceUnit": {"time": 60}}]}),
        ("UPDATE", {"sessionId": sid, "requestType": "UPDATE_REQUEST", "requestNumber": 1, "serviceContextId": VOICE,
                    "multipleServicesCreditControl": [again]}),
        ("UPDATE", {"sessionId": sid, "requestType": "UPDATE_REQUEST", "requestNumber": 2, "serviceContextId": VOICE,
                    "multipleServicesCreditControl": [again]}),
        ("TERMINATE", {"sessionId": sid, "requestType": "TERMINATION_REQUEST", "requestNumber": 3,
                       "serviceContextId": VOICE,
                       "multipleServicesCreditControl": [{"ratingGroup": 1, "usedServiceUnit": {"time": 42}}]}),
        ("EVENT", {"sessionId": sid + ";sms", "requestType": "EVENT_REQUEST", "requestNumber": 0,
                   "serviceContextId": SMS, "subscriptionId": sub, "requestedAction": "DIRECT_DEBITING",
                   "multipleServicesCreditControl": [{"ratingGroup": 3,
                                                      "requestedServiceUnit": {"serviceSpecificUnits": 1}}]}),
    ]


async def user(peer: DiameterClient, number: str, stop: float, samples: dict[str, list[float]],
               results: Counter[int]) -> None:
    while time.perf_counter() < stop:
        for kind, body in cycle(number):
            t0 = time.perf_counter()
            answer = await peer.credit_control(body)
            code = int(answer["resultCode"])
            results[code] += 1
            if code != 2001:  # a refused step (3004 too busy, ...) ends the cycle; the next starts a new session
                samples.setdefault(f"refused {code}", []).append(time.perf_counter() - t0)
                break
            samples[kind].append(time.perf_counter() - t0)


async def peers(port: int, connections: int) -> list[DiameterClient]:
    out = []
    for n in range(connections):
        client = DiameterClient(origin_host=f"pgw{n}.bench.example", origin_realm="bench.example")
        await client.connect("127.0.0.1", port)
        sock = client.writer.get_extra_info("socket") if client.writer else None
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        out.append(client)
    return out


async def load(port: int, args: argparse.Namespace, server_pid: int) -> dict[str, Any]:
    clients = await peers(port, args.connections)
    kinds = ("INITIAL", "UPDATE", "TERMINATE", "EVENT")
    if args.warmup:
        end = time.perf_counter() + args.warmup
        warm: dict[str, list[float]] = {k: [] for k in kinds}
        await asyncio.gather(*(user(clients[i % len(clients)], common.msisdn(i % args.subscribers), end, warm,
                                    Counter()) for i in range(args.concurrency)))
    samples: dict[str, list[float]] = {k: [] for k in kinds}
    results: Counter[int] = Counter()
    servers, backends = common.process_tree(server_pid), common.postgres_backends()
    cpu0 = (common.cpu_seconds(servers), common.cpu_seconds(backends), time.process_time())
    load0 = os.getloadavg()[0]
    start = time.perf_counter()
    await asyncio.gather(*(user(clients[i % len(clients)], common.msisdn(i % args.subscribers),
                                start + args.seconds, samples, results) for i in range(args.concurrency)))
    elapsed = time.perf_counter() - start
    backends = sorted(set(backends) | set(common.postgres_backends()))
    cpu1 = (common.cpu_seconds(servers), common.cpu_seconds(backends), time.process_time())
    for client in clients:
        await client.close()
    every = [v for kind, vs in samples.items() if kind in kinds for v in vs]
    n = max(1, len(every))
    pct = common.pct
    return {
        "operations": len(every), "seconds": round(elapsed, 2), "ops_per_second": round(len(every) / elapsed),
        "p50_ms": round(pct(every, 50), 2), "p90_ms": round(pct(every, 90), 2), "p99_ms": round(pct(every, 99), 2),
        "result_codes": dict(sorted(results.items())),
        "cpu_ms_per_operation": {"diameter_front_end": round((cpu1[0] - cpu0[0]) * 1000 / n, 3),
                                 "postgresql": round((cpu1[1] - cpu0[1]) * 1000 / n, 3),
                                 "load_generator": round((cpu1[2] - cpu0[2]) * 1000 / n, 3)},
        "cpu_utilization": {"diameter_front_end": round((cpu1[0] - cpu0[0]) / elapsed, 2),
                            "postgresql": round((cpu1[1] - cpu0[1]) / elapsed, 2),
                            "load_generator": round((cpu1[2] - cpu0[2]) / elapsed, 2)},
        "load_average_before": load0, "load_average_after": os.getloadavg()[0],
        "by_type": {k: {"n": len(v), "p50_ms": round(pct(v, 50), 2), "p99_ms": round(pct(v, 99), 2)}
                    for k, v in samples.items()},
    }


def run(args: argparse.Namespace) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OPENBSS_LOG_LEVEL": "WARNING", "OPENBSS_DB_POOL_SIZE": str(args.pool),
           "OPENBSS_DIAMETER_DEFAULT_TENANT": common.TENANT,
           "OPENBSS_DIAMETER_MAX_IN_FLIGHT_PER_PEER": str(args.max_in_flight),
           "OPENBSS_DIAMETER_MAX_IN_FLIGHT": str(args.max_in_flight * max(1, args.connections))}
    server = subprocess.Popen([str(Path(sys.executable).parent / "openbss"), "diameter", "--port", str(port)],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the Diameter front end did not start") from None
                time.sleep(0.3)
        try:
            import uvloop

            uvloop.install()
        except ImportError:  # pragma: no cover
            pass
        report = asyncio.run(load(port, args, server.pid))
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
    r = sub.add_parser("run")
    r.add_argument("--seconds", type=float, default=20)
    r.add_argument("--warmup", type=float, default=3)
    r.add_argument("--concurrency", type=int, default=16, help="virtual users (sessions in flight)")
    r.add_argument("--connections", type=int, default=2, help="Diameter peers (TCP connections)")
    r.add_argument("--subscribers", type=int, default=2000)
    r.add_argument("--pool", type=int, default=10)
    r.add_argument("--max-in-flight", type=int, default=256, help="the front end's bound per peer (3004 beyond)")
    args = parser.parse_args()
    run(args)


if __name__ == "__main__":
    main()
