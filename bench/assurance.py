"""Service assurance benchmark: an alarm storm from one failed aggregation node correlated into one problem, and
sustained syslog ingestion with deduplication.

    .venv/bin/python bench/assurance.py storm --alarms 5000 --sites 20
    .venv/bin/python bench/assurance.py sustained --rate 20000 --seconds 10 --open 200

Both run the real syslog listener (``SyslogListener`` of the composition root, UDP on loopback, batches of
``OPENBSS_ASSURANCE_SYSLOG_BATCH`` datagrams applied in one transaction each) in this process, against the
configured database (``OPENBSS_DATABASE_URL``; migrations applied), in a fresh tenant. The datagrams are sent by a
separate process (the other core).

* ``storm``: an aggregation node and ``--sites`` cell sites relying on it (TMF639 ``resourceRelationship``
  ``reliesOn``), a service on each; the rules suppression, root cause (60 s) and grouping; the node's "node down"
  (critical) then ``--alarms`` distinct critical alarms from the cell sites. Reports the time from the first
  datagram to the last alarm correlated, and checks that one problem is open with every alarm in it.
* ``sustained``: ``--open`` distinct alarms raised, then repeats of them at ``--rate`` datagrams/s for
  ``--seconds``. Reports datagrams received and applied per second, the drops, and receipt → committed (visible
  in the API) p50/p99, measured per datagram (receipt time taken in the listener's protocol callback, commit
  time after its batch's transaction).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import time
import uuid
from collections import deque
from typing import Any

from sqlalchemy import func, select
from support import percentile

from openbss.assurance.models import Alarm, ServiceProblem
from openbss.cli import upgrade_database
from openbss.platform.runtime import Runtime
from openbss.platform.tenancy import create_tenant
from openbss.platform.tmf.resource import system_context
from openbss.services import build_services
from openbss.settings import get_settings

BASE = "http://bench"


def line(host: str, problem: str, severity: int = 2, cause: str = "lossOfSignal") -> bytes:
    return (f"<{8 + severity}>1 2026-12-04T10:00:00Z {host} enodeb - {problem[:32].replace(' ', '_')} "
            f'[alarm@32473 cause="{cause}" problem="{problem}"] bench').encode()


def send(port: int, lines: list[bytes], rate: float) -> None:
    """Send ``lines`` to the listener at ``rate`` datagrams/s (0: as fast as possible)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    start = time.perf_counter()
    for i, data in enumerate(lines):
        if rate and i % 100 == 0:
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        sock.sendto(data, ("127.0.0.1", port))
    sock.close()


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


async def run_listener(rt: Runtime, services: Any, tenant: str, total: int, lines: list[bytes], rate: float,
                       ) -> dict[str, Any]:
    listener = services.assurance.syslog_listener(rt.db, port=0, tenant=tenant)
    received: deque[float] = deque()
    latencies: list[float] = []
    original_received = listener._received

    def stamped(data: Any) -> None:
        received.append(time.perf_counter())
        original_received(data)

    listener._received = stamped  # receipt time, in arrival order (the queue's order)
    original_sink = listener.sink

    async def timed_sink(signals: list[Any]) -> None:
        await original_sink(signals)
        now = time.perf_counter()
        for _ in range(len(signals)):
            if received:
                latencies.append(now - received.popleft())

    listener.sink = timed_sink
    stop = asyncio.Event()
    task = asyncio.create_task(listener.run(stop))
    await listener.ready.wait()
    t0 = time.perf_counter()
    # a fresh interpreter (spawn), not a fork of this process and its connections
    sender = multiprocessing.get_context("spawn").Process(target=send, args=(listener.bound_port, lines, rate))
    sender.start()
    last_progress, last_applied, shown = time.perf_counter(), -1, time.perf_counter()
    last_received = -1
    while listener.stats.applied + listener.stats.failed < total:
        await asyncio.sleep(0.05)
        if time.perf_counter() - shown > 2:
            shown = time.perf_counter()
            print(f"  {shown - t0:5.1f} s: received {listener.stats.received}, applied {listener.stats.applied}",
                  flush=True)
        if listener.stats.applied != last_applied:
            last_applied, last_progress = listener.stats.applied, time.perf_counter()
        elif not sender.is_alive() and listener.stats.received == last_received \
                and time.perf_counter() - last_progress > 60:
            break  # datagrams lost on the way (nothing applied for a minute): stop waiting
        last_received = listener.stats.received
    elapsed = time.perf_counter() - t0
    await asyncio.to_thread(sender.join)
    stop.set()
    await task
    return {"elapsed": elapsed, "stats": listener.stats, "latencies": latencies}


async def storm(args: argparse.Namespace) -> None:
    rt, services, tenant, tag = await setup(args.sites)
    try:
        lines = [line(f"{tag}-agg", "node down", 2, "equipmentMalfunction")]
        lines += [line(f"{tag}-cell-{i % args.sites:02d}", f"S1 link {i}", 2) for i in range(args.alarms)]
        out = await run_listener(rt, services, tenant, len(lines), lines, 0)
        async with rt.db.transaction(tenant) as session:
            problems = await session.scalar(select(func.count()).select_from(ServiceProblem).where(
                ServiceProblem.is_open))
            grouped = await session.scalar(select(func.count()).select_from(Alarm).where(
                Alarm.problem_id.is_not(None)))
            suppressed = await session.scalar(select(func.count()).select_from(Alarm).where(
                Alarm.body.contains({"suppressed": True})))
        s = out["stats"]
        print(f"storm: {len(lines)} alarms ({args.sites} cell sites under one aggregation node) received "
              f"{s.received}, applied {s.applied}, failed {s.failed} in {out['elapsed']:.2f} s "
              f"({s.applied / out['elapsed']:,.0f} alarms/s); open problems: {problems}, alarms in a problem: "
              f"{grouped}, suppressed: {suppressed}; load average {os.getloadavg()}")
    finally:
        await rt.close()


async def sustained(args: argparse.Namespace) -> None:
    rt, services, tenant, tag = await setup(args.sites)
    try:
        first = [line(f"{tag}-cell-{i % args.sites:02d}", f"CRC errors {i}", 4, "transmissionError")
                 for i in range(args.open)]
        await run_listener(rt, services, tenant, len(first), first, 0)
        total = int(args.rate * args.seconds)
        lines = [first[i % args.open] for i in range(total)]
        out = await run_listener(rt, services, tenant, total, lines, args.rate)
        s, lat = out["stats"], out["latencies"]
        async with rt.db.transaction(tenant) as session:
            count = await session.scalar(select(func.sum(Alarm.body["occurrenceCount"].as_integer())))
        print(f"sustained: asked {args.rate:,.0f}/s for {args.seconds} s ({total} datagrams, {args.open} open "
              f"alarms): received {s.received} ({total - s.received} dropped by the kernel), applied {s.applied} "
              f"in {out['elapsed']:.2f} s = {s.applied / out['elapsed']:,.0f} events/s; occurrences counted "
              f"{count}; receipt -> visible p50 {percentile(lat, 50) * 1000:.0f} ms, p99 "
              f"{percentile(lat, 99) * 1000:.0f} ms; load average {os.getloadavg()}")
    finally:
        await rt.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("storm")
    p.add_argument("--alarms", type=int, default=5000)
    p.add_argument("--sites", type=int, default=20)
    p = sub.add_parser("sustained")
    p.add_argument("--rate", type=float, default=20_000)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--open", type=int, default=200)
    p.add_argument("--sites", type=int, default=20)
    ns = parser.parse_args()
    asyncio.run(storm(ns) if ns.command == "storm" else sustained(ns))
