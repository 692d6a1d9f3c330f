"""Service assurance benchmark: an alarm storm from one failed aggregation node correlated into one problem, and
sustained syslog ingestion with deduplication.

    .venv/bin/python bench/assurance.py storm --alarms 5000 --sites 20 --processes 1
    .venv/bin/python bench/assurance.py sustained --rate 20000 --seconds 10 --open 200 --processes 2

Both run the real syslog listeners: ``--processes`` processes of ``openbss assurance listen`` (``ListenerPool`` with
the composition root's ``run_listener_process``: UDP on loopback, one port shared with ``SO_REUSEPORT``, repeats
folded in memory over ``--window`` seconds, batches of ``OPENBSS_ASSURANCE_SYSLOG_BATCH`` signals in one
transaction each), against the configured database (``OPENBSS_DATABASE_URL``; migrations applied), in a fresh
tenant. The datagrams are sent by a separate process, one UDP socket (source port) per device as real devices
would: the kernel spreads the devices over the listener processes.

* ``storm``: an aggregation node and ``--sites`` cell sites relying on it (TMF639 ``resourceRelationship``
  ``reliesOn``), a service on each; the rules suppression, root cause (60 s) and grouping; the node's "node down"
  (critical) then ``--alarms`` distinct critical alarms from the cell sites, as fast as the sender goes. Reports
  the time from the first datagram to the last alarm stored and correlated (read back from the database), and
  checks that one problem is open with every alarm in it.
* ``sustained``: ``--open`` distinct alarms raised, then repeats of them at ``--rate`` datagrams/s for
  ``--seconds`` (each with the time it was sent as its TIMESTAMP). Reports datagrams received and applied per
  second, the kernel's drops, receipt → committed p50/p99 per datagram (receipt: read from the socket by the
  listener; committed: its batch's transaction, i.e. visible in the API), the lag from the last datagram sent to
  every count visible in the database (read back by this process), and CPU seconds per 1,000 events of the
  listener processes and of their PostgreSQL backends (``/proc/<pid>/stat``).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text

from openbss.assurance.ingest import ListenerStats
from openbss.assurance.models import Alarm, ServiceProblem
from openbss.assurance.shards import ListenerPool
from openbss.cli import upgrade_database
from openbss.platform.runtime import Runtime
from openbss.platform.tenancy import create_tenant
from openbss.platform.tmf.resource import system_context
from openbss.services import build_services, run_listener_process
from openbss.settings import get_settings

BASE = "http://bench"
TICK = os.sysconf("SC_CLK_TCK")


def line(host: str, problem: str, severity: int = 2, cause: str = "lossOfSignal", at: str = "2026-12-04T10:00:00Z",
         ) -> bytes:
    return (f"<{8 + severity}>1 {at} {host} enodeb - {problem[:32].replace(' ', '_')} "
            f'[alarm@32473 cause="{cause}" problem="{problem}"] bench').encode()


def send(port: int, lines: list[tuple[str, str, str, int, str]], rate: float, done: Any) -> None:
    """Send ``lines`` (host, problem, cause, severity, TIMESTAMP or "now") at ``rate`` datagrams/s (0: as fast as
    possible), each host from its own socket; puts (start, end, CPU seconds) on ``done``."""
    socks: dict[str, socket.socket] = {}
    start = time.perf_counter()
    wall = time.time()
    cache: dict[tuple[Any, ...], bytes] = {}
    stamp = ""
    for i, (host, problem, cause, severity, at) in enumerate(lines):
        if i % 100 == 0:
            if rate:
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            stamp = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
            cache.clear()
        key = (host, problem, cause, severity)
        data = cache.get(key)
        if data is None:
            data = cache[key] = line(host, problem, severity, cause, stamp if at == "now" else at)
        sock = socks.get(host)
        if sock is None:
            sock = socks[host] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.sendto(data, ("127.0.0.1", port))
    end = time.time()
    for sock in socks.values():
        sock.close()
    times = os.times()
    done.put((wall, end, times.user + times.system))


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def merged(stats: list[dict[str, Any]]) -> ListenerStats:
    out = ListenerStats()
    for s in stats:
        for name in ("received", "ignored", "malformed", "failed", "applied", "batches"):
            setattr(out, name, getattr(out, name) + int(s[name]))
        out.errors += s["errors"]
        for ms, n in s["latency_ms"].items():
            out.latency_ms[int(ms)] = out.latency_ms.get(int(ms), 0) + n
    return out


async def setup(sites: int) -> tuple[Runtime, Any, str, str]:
    settings = get_settings()
    upgrade_database()
    rt = Runtime.build(settings)
    services = build_services(settings, rt)
    tag = uuid.uuid4().hex[:8]
    tenant = f"bench-as-{tag}"
    async with rt.db.transaction(None) as session:
        await create_tenant(session, "Assurance benchmark", tenant)
    async with rt.db.transaction(tenant) as session:
        ctx = system_context(tenant, session, BASE, "bench")
        res = services.inventory.resources["resource"]
        await res.record(ctx, {"id": f"{tag}-agg", "name": "agg-1", "@type": "PhysicalResource"})
        for i in range(sites):
            await res.record(ctx, {"id": f"{tag}-cell-{i:02d}", "name": f"cell-{i:02d}", "@type": "PhysicalResource",
                                   "resourceRelationship": [{"relationshipType": "reliesOn",
                                                             "resource": {"id": f"{tag}-agg"}}]})
            await services.inventory.resources["service"].record(ctx, {
                "id": f"svc-{tag}-cell-{i:02d}", "name": f"Mobile on cell-{i:02d}", "state": "active",
                "supportingResource": [{"id": f"{tag}-cell-{i:02d}"}]})
        for kind in ("suppression", "rootCause", "grouping"):
            await services.assurance.service.rules.create(ctx, {"name": kind, "kind": kind})
    return rt, services, tenant, tag


class Bench:
    def __init__(self, rt: Runtime, tenant: str, args: argparse.Namespace) -> None:
        self.rt, self.tenant, self.args = rt, tenant, args
        self.mine: set[int] = set()  # this process's own database backends (not counted)

    async def counts(self) -> tuple[int, int]:
        """Alarms and the sum of their occurrence counts, as the API would read them."""
        async with self.rt.db.transaction(self.tenant) as session:
            self.mine.add(int(await session.scalar(text("SELECT pg_backend_pid()"))))
            row = (await session.execute(select(
                func.count(), func.coalesce(func.sum(Alarm.body["occurrenceCount"].as_integer()), 0)))).one()
        return int(row[0]), int(row[1])

    async def backends(self) -> list[int]:
        async with self.rt.db.transaction(None) as session:
            pids = (await session.execute(text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND backend_type = "
                "'client backend' AND pid <> pg_backend_pid()"))).scalars()
            return [p for p in pids if p not in self.mine]

    async def run(self, pool: ListenerPool, lines: list[tuple[str, str, str, int, str]], rate: float,
                  want: tuple[int, int], timeout: float = 300) -> dict[str, Any]:
        """Send ``lines``; wait until ``want`` (alarms, occurrences) is visible; the timings."""
        done = multiprocessing.get_context("spawn").Queue()
        sender = multiprocessing.get_context("spawn").Process(target=send, args=(pool.port, lines, rate, done))
        pids = [p.pid for p in pool._procs if p.pid]
        before = {p: cpu_seconds(p) for p in pids}
        backends = await self.backends()
        pg_before = {p: cpu_seconds(p) for p in backends}
        sender.start()
        got, shown, t0 = (0, 0), time.time(), time.time()
        while got < want and time.time() - t0 < timeout:
            await asyncio.sleep(0.1)
            got = await self.counts()
            if time.time() - shown > 2:
                shown = time.time()
                print(f"  {shown - t0:5.1f} s: alarms {got[0]}, occurrences {got[1]}", flush=True)
        visible = time.time()
        await asyncio.to_thread(sender.join)
        start, end, sender_cpu = done.get()
        backends = list(dict.fromkeys([*backends, *await self.backends()]))
        return {"start": start, "end": end, "visible": visible, "got": got, "sender_cpu": sender_cpu,
                "listener_cpu": sum(cpu_seconds(p) - before.get(p, 0) for p in pids),
                "pg_cpu": sum(cpu_seconds(p) - pg_before.get(p, 0) for p in backends)}


def pool_for(tenant: str, args: argparse.Namespace) -> ListenerPool:
    return ListenerPool(run_listener_process, args.processes, {"port": 0, "tenant": tenant, "window": args.window})


async def storm(args: argparse.Namespace) -> None:
    rt, _services, tenant, tag = await setup(args.sites)
    pool = pool_for(tenant, args)
    try:
        await asyncio.to_thread(pool.start)
        bench = Bench(rt, tenant, args)
        lines = [(f"{tag}-agg", "node down", "equipmentMalfunction", 2, "now")]
        lines += [(f"{tag}-cell-{i % args.sites:02d}", f"S1 link {i}", "lossOfSignal", 2, "now")
                  for i in range(args.alarms)]
        out = await bench.run(pool, lines, 0, (len(lines), len(lines)))
        async with rt.db.transaction(tenant) as session:
            problems = await session.scalar(select(func.count()).select_from(ServiceProblem).where(
                ServiceProblem.is_open))
            grouped = await session.scalar(select(func.count()).select_from(Alarm).where(
                Alarm.problem_id.is_not(None)))
            suppressed = await session.scalar(select(func.count()).select_from(Alarm).where(
                Alarm.body.contains({"suppressed": True})))
        s = merged(await asyncio.to_thread(pool.stop))
        took = out["visible"] - out["start"]
        print(f"storm: {len(lines)} alarms ({args.sites} cell sites under one aggregation node, {args.processes} "
              f"listener process(es)) received {s.received}, applied {s.applied}, failed {s.failed}; all stored "
              f"and correlated {took:.2f} s after the first datagram (sent in {out['end'] - out['start']:.2f} s); "
              f"open problems: {problems}, alarms in a problem: {grouped}, suppressed: {suppressed}; CPU per "
              f"alarm: listeners {out['listener_cpu'] / len(lines) * 1e3:.2f} ms, PostgreSQL backends "
              f"{out['pg_cpu'] / len(lines) * 1e3:.2f} ms; load average {os.getloadavg()}")
    finally:
        await asyncio.to_thread(pool.stop)
        await rt.close()


async def sustained(args: argparse.Namespace) -> None:
    rt, _services, tenant, tag = await setup(args.sites)
    pool = pool_for(tenant, args)
    try:
        await asyncio.to_thread(pool.start)
        bench = Bench(rt, tenant, args)
        first = [(f"{tag}-cell-{i % args.sites:02d}", f"CRC errors {i}", "transmissionError", 4, "now")
                 for i in range(args.open)]
        await bench.run(pool, first, 0, (args.open, args.open))
        total = int(args.rate * args.seconds)
        lines = [first[i % args.open] for i in range(total)]
        out = await bench.run(pool, lines, args.rate, (args.open, args.open + total),
                              timeout=args.seconds * 3 + 60)
        stats = await asyncio.to_thread(pool.stop)
        s = merged(stats)
        received = s.received - args.open
        count = out["got"][1] - args.open
        elapsed = out["visible"] - out["start"]
        print(f"sustained: asked {args.rate:,.0f}/s for {args.seconds} s ({total} datagrams over {args.open} open "
              f"alarms, {args.processes} listener process(es), window {args.window} s): sent in "
              f"{out['end'] - out['start']:.2f} s, received {received} ({total - received} dropped by the kernel), "
              f"occurrences counted {count} (all visible {elapsed:.2f} s after the first datagram, "
              f"{out['visible'] - out['end']:.2f} s after the last) = {count / elapsed:,.0f} events/s; "
              f"receipt -> visible p50 {s.latency_percentile(50):.0f} ms, p99 {s.latency_percentile(99):.0f} ms, "
              f"max {max(s.latency_ms):.0f} ms; {s.batches} transactions; CPU per 1,000 events: listeners "
              f"{out['listener_cpu'] / total * 1e6:.1f} ms, their PostgreSQL backends "
              f"{out['pg_cpu'] / total * 1e6:.1f} ms, sender {out['sender_cpu'] / total * 1e6:.1f} ms (with its "
              f"start-up); per process (received, applied, transactions): "
              f"{[(x['received'], x['applied'], x['batches']) for x in stats]}; load average {os.getloadavg()}")
    finally:
        await asyncio.to_thread(pool.stop)
        await rt.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("storm")
    p.add_argument("--alarms", type=int, default=5000)
    p.add_argument("--sites", type=int, default=20)
    p.add_argument("--processes", type=int, default=1)
    p.add_argument("--window", type=float, default=0.1)
    p = sub.add_parser("sustained")
    p.add_argument("--rate", type=float, default=20_000)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--open", type=int, default=200)
    p.add_argument("--sites", type=int, default=20)
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--window", type=float, default=0.1)
    ns = parser.parse_args()
    asyncio.run(storm(ns) if ns.command == "storm" else sustained(ns))
