"""Diameter Gy/Ro benchmark: a mixed INITIAL/UPDATE/TERMINATE/EVENT credit-control load on ``openbss diameter``.

    # 1. data: the same database as bench/charging_load.py (N prepaid subscribers in tenant bench-ocs)
    OPENBSS_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/openbss_bench_ocs \\
        .venv/bin/python bench/charging_load.py setup --subscribers 2000
    # 2. measure: starts `openbss diameter` (the front end over the charging service) and drives it from this process
    OPENBSS_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/openbss_bench_ocs \\
        .venv/bin/python bench/diameter_load.py run --seconds 20 --concurrency 16 --connections 2
    # or: `openbss charging-node --diameter-port` (1 or 2 nodes, shards split in halves), on the database of
    # bench/charging_node.py setup (tenant bench-node); each user's requests go to the node owning its subscriber
    OPENBSS_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/openbss_bench_node \\
        .venv/bin/python bench/diameter_load.py run --nodes 1 --seconds 20 --concurrency 64 --connections 2

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
import urllib.request
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import charging_load as common  # the setup, subscribers and CPU accounting of the JSON benchmark
import charging_node as node_bench  # the charging-node benchmark's tenant, subscribers and shards

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


def number(i: int, args: argparse.Namespace) -> str:
    return node_bench.msisdn(i) if args.nodes else common.msisdn(i)


async def load(ports: list[int], args: argparse.Namespace, server_pids: list[int], http: list[int]) -> dict[str, Any]:
    from openbss.charging.node.shards import shard_of

    by_node = [await peers(port, args.connections) for port in ports]
    clients = [c for cs in by_node for c in cs]

    def peer(i: int) -> DiameterClient:  # the node owning the subscriber's shard (as a routing agent routes)
        n = shard_of(number(i % args.subscribers, args), node_bench.SHARDS) * len(ports) // node_bench.SHARDS
        return by_node[n][i % args.connections]

    kinds = ("INITIAL", "UPDATE", "TERMINATE", "EVENT")
    if args.warmup:
        end = time.perf_counter() + args.warmup
        warm: dict[str, list[float]] = {k: [] for k in kinds}
        await asyncio.gather(*(user(peer(i), number(i % args.subscribers, args), end, warm, Counter())
                               for i in range(args.concurrency)))
    samples: dict[str, list[float]] = {k: [] for k in kinds}
    results: Counter[int] = Counter()
    servers = [p for pid in server_pids for p in common.process_tree(pid)]
    backends = common.postgres_backends()
    metrics0 = [node_bench.scrape(h) for h in http]
    cpu0 = (common.cpu_seconds(servers), common.cpu_seconds(backends), time.process_time())
    load0 = os.getloadavg()[0]
    start = time.perf_counter()
    await asyncio.gather(*(user(peer(i), number(i % args.subscribers, args), start + args.seconds, samples,
                                results) for i in range(args.concurrency)))
    elapsed = time.perf_counter() - start
    metrics1 = [node_bench.scrape(h) for h in http]
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
        "batch_size": [node_bench.histogram(a, b, "openbss_charging_node_batch_size")
                       for a, b in zip(metrics0, metrics1, strict=True)],
        "commit_seconds": [node_bench.histogram(a, b, "openbss_charging_node_commit_seconds")["mean"]
                           for a, b in zip(metrics0, metrics1, strict=True)],
    }


def run(args: argparse.Namespace) -> None:
    def free() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    env = {**os.environ, "OPENBSS_LOG_LEVEL": "WARNING", "OPENBSS_DB_POOL_SIZE": str(args.pool),
           "OPENBSS_DIAMETER_DEFAULT_TENANT": node_bench.TENANT if args.nodes else common.TENANT,
           "OPENBSS_DIAMETER_MAX_IN_FLIGHT_PER_PEER": str(args.max_in_flight),
           "OPENBSS_DIAMETER_MAX_IN_FLIGHT": str(args.max_in_flight * max(1, args.connections))}
    exe = str(Path(sys.executable).parent / "openbss")
    http: list[int] = []  # the nodes' HTTP ports (health, metrics)
    if args.nodes:
        env = {"OPENBSS_DEMO_MODE": "true", **env, "OPENBSS_CHARGING_SHARDS": str(node_bench.SHARDS)}
        halves = [f"0-{node_bench.SHARDS - 1}"] if args.nodes == 1 else \
            [f"0-{node_bench.SHARDS // 2 - 1}", f"{node_bench.SHARDS // 2}-{node_bench.SHARDS - 1}"]
        ports = [free() for _ in halves]
        http = [free() for _ in halves]
        servers = [subprocess.Popen([exe, "charging-node", "--port", str(h), "--diameter-port", str(port),
                                     "--shards", shards, "--node-id", f"bench-diameter-node-{k}"], cwd=ROOT, env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                   for k, (port, h, shards) in enumerate(zip(ports, http, halves, strict=True))]
    else:
        ports = [free()]
        servers = [subprocess.Popen([exe, "diameter", "--port", str(ports[0])], cwd=ROOT, env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 90
        for port in ports:
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or any(s.poll() is not None for s in servers):
                        raise SystemExit("the Diameter front end did not start") from None
                    time.sleep(0.3)
        for h in http:  # the node answers once it holds its shards' leases
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{h}/health", timeout=2) as r:
                        if len(json.loads(r.read())["shards"]) == node_bench.SHARDS // args.nodes:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("the charging nodes did not take their shards")
                time.sleep(0.3)
        try:
            import uvloop

            uvloop.install()
        except ImportError:  # pragma: no cover
            pass
        report = asyncio.run(load(ports, args, [p.pid for p in servers], http))
    finally:
        for p in servers:
            p.terminate()
        for p in servers:
            p.wait(20)
    report["nodes"] = args.nodes
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
    r.add_argument("--nodes", type=int, choices=(0, 1, 2), default=0,
                   help="0: `openbss diameter` over the service; 1 or 2: `openbss charging-node --diameter-port`")
    args = parser.parse_args()
    run(args)


if __name__ == "__main__":
    main()
