"""Charging-node benchmark: mixed INITIAL/UPDATE/TERMINATE/EVENT credit control on ``openbss charging-node``.

    createdb -h 127.0.0.1 -U postgres openbss_bench_node
    # 1. data: N prepaid subscribers (accounts and main money buckets written set-based: 100,000 in seconds)
    OPENBSS_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/openbss_bench_node \\
        .venv/bin/python bench/charging_node.py setup --subscribers 100000
    # 2. measure: starts 1 or 2 `openbss charging-node` processes and drives them from this process (loopback)
    OPENBSS_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/openbss_bench_node \\
        .venv/bin/python bench/charging_node.py run --seconds 20 --concurrency 128 --nodes 1

The load generator is this process (the raw asyncio HTTP/1.1 keep-alive client of ``charging_load.py``); each
virtual user takes a random subscriber among N for each cycle: INITIAL (voice, 60 s), UPDATE, UPDATE, TERMINATE, SMS
EVENT (5 operations). With 2 nodes the shards are split in halves and each request goes to the node that owns the
subscriber's shard (as a Diameter routing agent would route by Subscription-Id). The report gives operations/s,
p50/p90/p99, CPU per operation of the node processes, of the PostgreSQL backends and of the load generator (from
/proc), and the group-commit batch sizes and commit latency from the nodes' /metrics.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from charging_load import SMS, VOICE, Connection, cpu_seconds, pct, postgres_backends

ROOT = Path(__file__).resolve().parents[1]
TENANT = "bench-node"
SHARDS = 64


def msisdn(i: int) -> str:
    return f"3371{i:07d}"


# --- setup ------------------------------------------------------------------------------------------------------
async def setup(subscribers: int) -> None:
    import asyncpg

    from openbss.cli import upgrade_database
    from openbss.demo.charging import FALLBACK_PLAN
    from openbss.platform.db import owner_url
    from openbss.platform.runtime import Runtime
    from openbss.platform.tenancy import ensure_tenant
    from openbss.settings import get_settings

    upgrade_database()
    rt = Runtime.build(get_settings())
    async with rt.db.transaction(None) as session:
        await ensure_tenant(session, TENANT, "Charging node benchmark")
    await rt.db.dispose()
    conn = await asyncpg.connect(owner_url().set(drivername="postgresql").render_as_string(hide_password=False))
    started = time.perf_counter()
    async with conn.transaction():
        await conn.execute("SELECT set_config('openbss.tenant_id', $1, true)", TENANT)
        await conn.execute(
            "INSERT INTO charging_account (id, subscriber, payment_type, currency, time_zone, status, plan, "
            "product_id, tenant_id) SELECT 'bench-' || i, '3371' || lpad(i::text, 7, '0'), 'prepaid', 'EUR', 'UTC', "
            "'active', $1::jsonb, 'bench-line-' || i, $3 FROM generate_series(0, $2 - 1) AS i "
            "ON CONFLICT DO NOTHING", json.dumps(FALLBACK_PLAN), subscribers, TENANT)
        await conn.execute(
            "INSERT INTO charging_bucket (id, body, last_update, account_id, unit, remaining, reserved, initial, "
            "lower_limit, priority, source, source_key, rollover_periods, tenant_id) "
            "SELECT 'bench-main-' || i, jsonb_build_object('@type', 'Bucket', 'name', 'Main balance (prepaid)', "
            "'usageType', 'monetary', 'remainingValue', jsonb_build_object('units', 'EUR')), now(), 'bench-' || i, "
            "'money', 100000000, 0, 100000000, 0, 1000, 'main', 'main', 0, $2 FROM generate_series(0, $1 - 1) AS i "
            "ON CONFLICT DO NOTHING", subscribers, TENANT)
    await conn.execute("ANALYZE")
    await conn.close()
    print(f"{subscribers} subscribers in tenant {TENANT} in {time.perf_counter() - started:.1f} s")


# --- the load ------------------------------------------------------------------------------------------------------
def cycle(number: str) -> list[tuple[str, dict[str, Any]]]:
    sid = f"bench;{number};{uuid.uuid4().hex[:12]}"
    sub = {"type": "END_USER_E164", "data": number}
    again = {"ratingGroup": 1, "usedServiceUnit": {"time": 60}, "requestedServiceUnit": {"time": 60}}
    return [
        ("INITIAL", {"sessionId": sid, "requestType": "INITIAL_REQUEST", "requestNumber": 0,
                     "serviceContextId": VOICE, "subscriptionId": sub,
                     "multipleServicesCreditControl": [{"ratingGroup": 1, "requestedServiceUnit": {"time": 60}}]}),
        ("UPDATE", {"sessionId": sid, "requestType": "UPDATE_REQUEST", "requestNumber": 1, "serviceContextId": VOICE,
                    "subscriptionId": sub, "multipleServicesCreditControl": [again]}),
        ("UPDATE", {"sessionId": sid, "requestType": "UPDATE_REQUEST", "requestNumber": 2, "serviceContextId": VOICE,
                    "subscriptionId": sub, "multipleServicesCreditControl": [again]}),
        ("TERMINATE", {"sessionId": sid, "requestType": "TERMINATION_REQUEST", "requestNumber": 3,
                       "serviceContextId": VOICE, "subscriptionId": sub,
                       "multipleServicesCreditControl": [{"ratingGroup": 1, "usedServiceUnit": {"time": 42}}]}),
        ("EVENT", {"sessionId": sid + ";sms", "requestType": "EVENT_REQUEST", "requestNumber": 0,
                   "serviceContextId": SMS, "subscriptionId": sub, "requestedAction": "DIRECT_DEBITING",
                   "multipleServicesCreditControl": [{"ratingGroup": 3,
                                                      "requestedServiceUnit": {"serviceSpecificUnits": 1}}]}),
    ]


async def user(conns: list[Connection], owner: list[int], subscribers: int, stop: float,
               samples: dict[str, list[float]], errors: list[str]) -> None:
    for c in conns:
        await c.open()
    rnd = random.Random()
    while time.perf_counter() < stop:
        i = rnd.randrange(subscribers)
        conn = conns[owner[i]]
        for kind, body in cycle(msisdn(i)):
            t0 = time.perf_counter()
            status, answer = await conn.post(body)
            samples[kind].append(time.perf_counter() - t0)
            if status != 200 or answer.get("resultCode") != 2001:
                errors.append(f"{kind} {status} {answer.get('resultCode')}")


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = re.match(r'^(openbss_charging_node_(?:batch_size_(?:bucket|sum|count)|commit_seconds_(?:bucket|sum|count)'
                     r'|round_trips_total))(\{[^}]*\})? (\S+)',
                     line)
        if m:
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def histogram(before: dict[str, float], after: dict[str, float], name: str) -> dict[str, Any]:
    def delta(key: str) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    count = delta(f"{name}_count")
    buckets = []
    previous = 0.0
    for key in sorted((k for k in after if k.startswith(f"{name}_bucket")),
                      key=lambda k: float("inf") if "+Inf" in k else float(k.split('"')[1])):
        n = delta(key)
        buckets.append((key.split('"')[1], int(n - previous)))
        previous = n
    return {"count": int(count), "mean": round(delta(f"{name}_sum") / count, 5) if count else 0,
            "distribution (upper bound: n)": {b: n for b, n in buckets if n}}


def round_trips(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    batches = after.get("openbss_charging_node_batch_size_count", 0.0) - before.get(
        "openbss_charging_node_batch_size_count", 0.0)
    out = {}
    for key in after:
        if key.startswith("openbss_charging_node_round_trips_total"):
            phase = key.split('"')[1]
            out[phase] = round((after[key] - before.get(key, 0.0)) / batches, 2) if batches else 0.0
    return out


async def load(ports: list[int], owner: list[int], seconds: float, warmup: float, concurrency: int,
               subscribers: int, token: str, node_pids: list[int]) -> dict[str, Any]:
    samples: dict[str, list[float]] = {k: [] for k in ("INITIAL", "UPDATE", "TERMINATE", "EVENT")}
    errors: list[str] = []

    def conns() -> list[Connection]:
        return [Connection("127.0.0.1", p, token) for p in ports]

    if warmup:
        end = time.perf_counter() + warmup
        warm: dict[str, list[float]] = {k: [] for k in samples}
        await asyncio.gather(*(user(conns(), owner, subscribers, end, warm, []) for _ in range(concurrency)))
    metrics0 = [scrape(p) for p in ports]
    backends = postgres_backends()
    cpu0 = (cpu_seconds(node_pids), cpu_seconds(backends), time.process_time())
    start = time.perf_counter()
    await asyncio.gather(*(user(conns(), owner, subscribers, start + seconds, samples, errors)
                           for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    backends = sorted(set(backends) | set(postgres_backends()))
    cpu1 = (cpu_seconds(node_pids), cpu_seconds(backends), time.process_time())
    metrics1 = [scrape(p) for p in ports]
    every = [v for vs in samples.values() for v in vs]
    n = max(1, len(every))
    return {
        "operations": len(every), "seconds": round(elapsed, 2), "ops_per_second": round(len(every) / elapsed),
        "p50_ms": round(pct(every, 50), 2), "p90_ms": round(pct(every, 90), 2), "p99_ms": round(pct(every, 99), 2),
        "errors": len(errors), "first_errors": errors[:5],
        "cpu_ms_per_operation": {"nodes": round((cpu1[0] - cpu0[0]) * 1000 / n, 3),
                                 "postgresql": round((cpu1[1] - cpu0[1]) * 1000 / n, 3),
                                 "load_generator": round((cpu1[2] - cpu0[2]) * 1000 / n, 3)},
        "cpu_utilization": {"nodes": round((cpu1[0] - cpu0[0]) / elapsed, 2),
                            "postgresql": round((cpu1[1] - cpu0[1]) / elapsed, 2),
                            "load_generator": round((cpu1[2] - cpu0[2]) / elapsed, 2)},
        "batch_size": [histogram(a, b, "openbss_charging_node_batch_size") for a, b in zip(metrics0, metrics1,
                                                                                           strict=True)],
        "commit_seconds": [histogram(a, b, "openbss_charging_node_commit_seconds")["mean"]
                           for a, b in zip(metrics0, metrics1, strict=True)],
        # PostgreSQL round trips of the batch loop per group commit, by phase (nodes that count them)
        "round_trips_per_batch": [round_trips(a, b) for a, b in zip(metrics0, metrics1, strict=True)],
        "load_average_after": os.getloadavg()[0],
        "by_type": {k: {"n": len(v), "p50_ms": round(pct(v, 50), 2), "p99_ms": round(pct(v, 99), 2)}
                    for k, v in samples.items()},
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(args: argparse.Namespace) -> None:
    from openbss.charging.node.shards import shard_of
    from openbss.platform.auth import issue_token

    halves = [f"0-{SHARDS - 1}"] if args.nodes == 1 else [f"0-{SHARDS // 2 - 1}", f"{SHARDS // 2}-{SHARDS - 1}"]
    ports = [free_port() for _ in halves]
    env = {"OPENBSS_DEMO_MODE": "true", **os.environ, "OPENBSS_LOG_LEVEL": "WARNING",
           "OPENBSS_CHARGING_SHARDS": str(SHARDS), "OPENBSS_CHARGING_NODE_BATCH_MAX": str(args.batch_max)}
    # --profile DIR: each node runs under cProfile (its stats written to DIR/node-K.prof when it stops)
    profile = (lambda k: [sys.executable, "-m", "cProfile", "-o", str(Path(args.profile) / f"node-{k}.prof")]) \
        if args.profile else (lambda k: [])
    nodes = [subprocess.Popen([*profile(k), str(Path(sys.executable).parent / "openbss"), "charging-node", "--port",
                               str(port),
                               "--shards", shards, "--node-id", f"bench-node-{k}"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for k, (port, shards) in enumerate(zip(ports, halves, strict=True))]
    try:
        deadline = time.monotonic() + 60
        for port in ports:
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                        if len(json.loads(r.read())["shards"]) == SHARDS // len(ports):
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("the charging nodes did not take their shards")
                time.sleep(0.3)
        owner = [shard_of(msisdn(i), SHARDS) * len(ports) // SHARDS for i in range(args.subscribers)]
        token = issue_token(TENANT, ["system"], ttl_seconds=24 * 3600)
        try:
            import uvloop

            uvloop.install()
        except ImportError:  # pragma: no cover
            pass
        report = asyncio.run(load(ports, owner, args.seconds, args.warmup, args.concurrency, args.subscribers, token,
                                  [p.pid for p in nodes]))
    finally:
        for p in nodes:
            p.terminate()
        for p in nodes:
            p.wait(20)
    report["nodes"] = len(ports)
    report["subscribers"] = args.subscribers
    report["concurrency"] = args.concurrency
    report["machine"] = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, " \
                        f"Python {platform.python_version()}"
    report["command"] = " ".join(sys.argv)
    print(json.dumps(report, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("setup")
    s.add_argument("--subscribers", type=int, default=100_000)
    r = sub.add_parser("run")
    r.add_argument("--seconds", type=float, default=20)
    r.add_argument("--warmup", type=float, default=5)
    r.add_argument("--concurrency", type=int, default=128)
    r.add_argument("--subscribers", type=int, default=100_000)
    r.add_argument("--nodes", type=int, choices=(1, 2), default=1)
    r.add_argument("--batch-max", type=int, default=500)
    r.add_argument("--profile", help="a directory: run the nodes under cProfile and write their stats there")
    args = parser.parse_args()
    if args.command == "setup":
        asyncio.run(setup(args.subscribers))
    else:
        run(args)


if __name__ == "__main__":
    main()
