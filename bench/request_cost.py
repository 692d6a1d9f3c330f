"""Per-request cost of the HTTP stack: a cached self-care read and a TMF GET by id, as ratios to ``/health/live``.

    # wrk is Debian's (apt-get install -y wrk); the data is the self-care benchmark's
    psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE openbss_bench_selfcare"
    export OPENBSS_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/openbss_bench_selfcare
    .venv/bin/openbss db upgrade
    .venv/bin/python bench/selfcare_read_paths.py generate --customers 20
    .venv/bin/python bench/request_cost.py run --workers 2 --duration 10 --rounds 3
    .venv/bin/python bench/request_cost.py in-process          # CPU per request of the stack, no server
    .venv/bin/python bench/request_cost.py rate-limits         # CPU per rate-limit hit, by keys in the window

``run`` starts ``openbss serve --workers N`` once and, in each round, drives every path with wrk (2 threads, 64
keep-alive connections) one after the other against the same processes:

* ``/health/live`` — the floor: uvicorn, the platform's middleware, routing, a constant answer;
* ``/selfcare/api/balance`` and ``/selfcare/api/customer`` for one signed-in customer (``Authorization: Bearer
  <portal session>``): session and rate limits checked on every request, the answer served from the portal's
  per-process cache (at most one miss per process and second);
* ``/tmf-api/party/v4/individual/{id}`` with a staff token (``csr_agent``): the token verified, the tenant
  checked, one transaction bound to the tenant (row-level security), the document read and decrypted, rendered.

Each path's throughput is reported as a ratio to ``/health/live`` measured in the same round (the machine is
shared: ratios of one round compare like with like), with the CPU time the API processes, the PostgreSQL backends
(read from ``/proc``) and wrk itself spent per request, and the ratio those CPU times give (what the throughput
ratio is on a machine doing nothing else: the API, PostgreSQL and wrk share its cores).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from support import api_server_process, cpu_seconds, free_port, postgres_backends, process_tree, require_wrk

DATA = Path(__file__).parent / ".data" / "selfcare_sessions.json"
HIGH_LIMITS = {"OPENBSS_SELFCARE_RATE_LIMIT_IP": "100000000/minute",
               "OPENBSS_SELFCARE_RATE_LIMIT_USER": "100000000/minute",
               "OPENBSS_SELFCARE_RATE_LIMIT_DOCUMENTS": "100000000/minute"}


def wrk(url: str, headers: dict[str, str], *, duration: int, connections: int, threads: int) -> dict[str, Any]:
    args = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s", "--latency"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "requests": total, "p50": lat.get("50"), "p99": lat.get("99"), "wrk_us": wrk_cpu / total * 1e6,
            "non2xx": int(non2xx.group(1)) if non2xx else 0, "socket_errors": errors.group(1) if errors else ""}


async def sign_in(tenant: str) -> str:
    """A new portal session for the first customer of the self-care benchmark (sessions expire when idle)."""
    from sqlalchemy import select

    from openbss.platform.runtime import Runtime
    from openbss.selfcare import signin
    from openbss.selfcare.models import SelfcareIdentity
    from openbss.selfcare.portal import build_portal
    from openbss.settings import get_settings

    settings = get_settings().model_copy(update={"selfcare_tenant": tenant})
    rt = Runtime.build(settings)
    portal = await build_portal(settings, rt.db)
    try:
        async with rt.db.transaction(tenant) as session:
            identity = (await session.execute(select(SelfcareIdentity).where(
                SelfcareIdentity.provider == "bench", SelfcareIdentity.subject == "bench-0"))).scalar_one()
            return (await signin._new_session(portal, session, identity)).token
    finally:
        await portal.close()
        await rt.close()


def load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def run(workers: int, duration: int, rounds: int, connections: int) -> None:
    require_wrk()
    from openbss.platform.auth import issue_token

    data = json.loads(DATA.read_text())
    tenant = data["tenant"]
    session = asyncio.run(sign_in(tenant))
    database = (os.environ.get("OPENBSS_DATABASE_URL") or "").rsplit("/", 1)[-1]
    os.environ.update({**HIGH_LIMITS, "OPENBSS_SELFCARE_TENANT": tenant})
    staff = issue_token(tenant, ["csr_agent"], subject="bench:request-cost", ttl_seconds=6 * 3600)
    port = free_port()
    with api_server_process(port, "--workers", str(workers)) as (base, server):
        with httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {staff}"}) as http:
            found = http.get("/tmf-api/party/v4/individual", params={"limit": 1, "fields": "id"})
            found.raise_for_status()
            individual = found.json()[0]["id"]
        paths = [
            ("GET /health/live", "/health/live", {}),
            ("RetrieveCurrentBalance (cached)", "/selfcare/api/balance", {"Authorization": f"Bearer {session}"}),
            ("RetrieveCustomerInformation (cached)", "/selfcare/api/customer",
             {"Authorization": f"Bearer {session}"}),
            ("TMF GET individual/{id}", f"/tmf-api/party/v4/individual/{individual}",
             {"Authorization": f"Bearer {staff}"}),
        ]
        for _, path, headers in paths:  # warm-up: every worker process, caches, connection pools
            check = httpx.get(f"{base}{path}", headers=headers, timeout=30)
            check.raise_for_status()
            wrk(f"{base}{path}", headers, duration=3, connections=connections, threads=2)
        results: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in paths}
        for n in range(rounds):
            for name, path, headers in paths:
                api, db = process_tree(server.pid), postgres_backends(database)
                cpu0 = (cpu_seconds(api), cpu_seconds(db))
                load0 = load_average()
                r = wrk(f"{base}{path}", headers, duration=duration, connections=connections, threads=2)
                # backends started during the run count whole (those that ended during it are not seen)
                cpu1 = (cpu_seconds(api), cpu_seconds(sorted(set(db) | set(postgres_backends(database)))))
                r["api_us"] = (cpu1[0] - cpu0[0]) / r["requests"] * 1e6
                r["db_us"] = (cpu1[1] - cpu0[1]) / r["requests"] * 1e6
                r["load"] = max(load0, load_average())
                results[name].append(r)
            floor = results[paths[0][0]][n]["rps"]
            line = ", ".join(f"{name}: {results[name][n]['rps']:,.0f}/s ({results[name][n]['rps'] / floor:.2f}x)"
                             for name, _, _ in paths)
            print(f"round {n + 1}: {line}", flush=True)
    print(f"\nworkers={workers} connections={connections} duration={duration}s rounds={rounds} "
          f"cpus={os.cpu_count()} python={sys.version.split()[0]} {time.strftime('%Y-%m-%d %H:%M')}")
    print("| path | requests/s (median) | ratio to /health/live (per round) | p50 | p99 | CPU µs/req: API "
          "| PostgreSQL | wrk | ratio by CPU | non-2xx | load avg |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    floors = [r["rps"] for r in results[paths[0][0]]]

    def cpu(rs: list[dict[str, Any]]) -> float:  # everything a request costs on this machine
        return statistics.median(r["api_us"] + max(0.0, r["db_us"]) + r["wrk_us"] for r in rs)

    floor_cpu = cpu(results[paths[0][0]])
    for name, _, _ in paths:
        rs = results[name]
        ratios = [r["rps"] / f for r, f in zip(rs, floors, strict=True)]
        mid = sorted(rs, key=lambda r: r["rps"])[len(rs) // 2]
        print(f"| {name} | {statistics.median(r['rps'] for r in rs):,.0f} | "
              f"{statistics.median(ratios):.2f} ({', '.join(f'{x:.2f}' for x in ratios)}) | {mid['p50']} | "
              f"{mid['p99']} | {statistics.median(r['api_us'] for r in rs):.0f} | "
              f"{statistics.median(max(0.0, r['db_us']) for r in rs):.0f} | "
              f"{statistics.median(r['wrk_us'] for r in rs):.0f} | {floor_cpu / cpu(rs):.2f} | "
              f"{sum(r['non2xx'] for r in rs)} | {max(r['load'] for r in rs):.1f} |")


async def in_process(requests: int, rounds: int) -> None:
    """The same paths through the ASGI app called directly (no server, no socket, one request at a time): the CPU
    time of the stack per request, which other load on the machine barely changes. For a profile of one path:
    ``py-spy record -f raw -o out.txt -- .venv/bin/python bench/request_cost.py in-process --only tmf``."""
    import time

    from openbss.app import create_app
    from openbss.platform.auth import issue_token
    from openbss.settings import get_settings

    data = json.loads(DATA.read_text())
    tenant = data["tenant"]
    session = await sign_in(tenant)
    os.environ.update({**HIGH_LIMITS, "OPENBSS_SELFCARE_TENANT": tenant})
    get_settings.cache_clear()
    app = create_app(get_settings())
    app.state.selfcare_charging_transport = httpx.ASGITransport(app=app)  # the portal reaches charging in process
    staff = issue_token(tenant, ["csr_agent"], subject="bench:request-cost", ttl_seconds=3600)
    lifespan_in: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    lifespan_out: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await lifespan_in.put({"type": "lifespan.startup"})
    lifespan = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
                                       lifespan_in.get, lifespan_out.put))
    await lifespan_out.get()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as http:
        found = await http.get("/tmf-api/party/v4/individual", params={"limit": 1, "fields": "id"},
                               headers={"Authorization": f"Bearer {staff}"})
        individual = found.json()[0]["id"]
    paths = {"health": ("/health/live", None), "balance": ("/selfcare/api/balance", session),
             "customer": ("/selfcare/api/customer", session),
             "tmf": (f"/tmf-api/party/v4/individual/{individual}", staff)}
    only = os.environ.get("BENCH_ONLY")
    body = {"type": "http.request", "body": b"", "more_body": False}
    statuses: set[int] = set()

    async def receive() -> dict[str, Any]:
        return body

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.add(message["status"])

    def scope(path: str, token: str | None) -> dict[str, Any]:
        headers = [(b"host", b"bench"), *([(b"authorization", f"Bearer {token}".encode())] if token else [])]
        return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
                "headers": headers, "client": ("127.0.0.1", 50000), "server": ("bench", 80), "state": {}}

    cpu: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(rounds):
        for name, (path, token) in paths.items():
            if only and name != only:
                continue
            count = requests if name != "tmf" else max(1, requests // 5)
            for _ in range(min(200, count)):
                await app(scope(path, token), receive, send)
            statuses.clear()
            start = time.process_time()
            for _ in range(count):
                await app(scope(path, token), receive, send)
            cpu[name].append((time.process_time() - start) / count * 1e6)
            assert statuses == {200}, (name, statuses)
    print(f"in process, {rounds} rounds: CPU µs per request (min / median)")
    for name, values in cpu.items():
        if values:
            print(f"  {name:9s} {min(values):7.1f} / {statistics.median(values):7.1f}")
    await lifespan_in.put({"type": "lifespan.shutdown"})
    await lifespan


async def rate_limits(hits: int) -> None:
    """CPU per rate-limit hit of the portal's in-process limiter and of the limits library's in-memory async storage,
    with 2, 1,000 and 10,000 keys in their windows (one key per client IP and one per signed-in customer)."""
    import time

    from limits import parse
    from limits.aio.strategies import FixedWindowRateLimiter
    from limits.storage import storage_from_string

    from openbss.selfcare.ratelimit import ProcessRateLimiter

    item = parse("100000000/minute")
    print("| keys in the window | limits (async memory storage) µs/hit | ProcessRateLimiter µs/hit |")
    print("|---:|---:|---:|")
    for keys in (2, 1_000, 10_000):
        row = []
        for limiter in (FixedWindowRateLimiter(storage_from_string("async+memory://")), ProcessRateLimiter()):
            for k in range(keys):
                await limiter.hit(item, "selfcare", "user", f"customer-{k}")
            start = time.process_time()
            for _ in range(hits):
                await limiter.hit(item, "selfcare", "ip", "192.0.2.1")
                await asyncio.sleep(0)  # other requests run in between (the library's sweep task completes)
            row.append((time.process_time() - start) / hits * 1e6)
        print(f"| {keys:,} | {row[0]:.1f} | {row[1]:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("--workers", type=int, default=2)
    r.add_argument("--duration", type=int, default=10)
    r.add_argument("--rounds", type=int, default=3)
    r.add_argument("--connections", type=int, default=64)
    sub.add_parser("session", help="print a new portal session token (for profiling by hand)")
    i = sub.add_parser("in-process", help="CPU per request through the ASGI app, without server or socket")
    i.add_argument("--requests", type=int, default=3000)
    i.add_argument("--rounds", type=int, default=5)
    i.add_argument("--only", choices=["health", "balance", "customer", "tmf"], default=None)
    lim = sub.add_parser("rate-limits", help="CPU per rate-limit hit, by the number of keys in the window")
    lim.add_argument("--hits", type=int, default=3000)
    args = parser.parse_args()
    if args.command == "rate-limits":
        asyncio.run(rate_limits(args.hits))
    elif args.command == "session":
        print(asyncio.run(sign_in(json.loads(DATA.read_text())["tenant"])))
    elif args.command == "in-process":
        if args.only:
            os.environ["BENCH_ONLY"] = args.only
        asyncio.run(in_process(args.requests, args.rounds))
    else:
        run(args.workers, args.duration, args.rounds, args.connections)


if __name__ == "__main__":
    main()
