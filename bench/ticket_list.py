"""Trouble ticket list benchmark: a queue's open work, ``GET /tmf-api/troubleTicket/v4/troubleTicket?queue.id=…&
status=…&limit=20``, what a supervisor's and an agent's work list asks, at N tickets.

    # 1. generate (a dedicated database)
    OPENBSS_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/openbss_bench_tickets \\
        .venv/bin/python bench/ticket_list.py generate --count 1000000
    # 2. measure: starts `openbss serve` on the database and runs the query mix
    OPENBSS_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/openbss_bench_tickets \\
        .venv/bin/python bench/ticket_list.py run --requests 2000 --concurrency 4

Tickets are written as the API writes them (the TMF621 document and the search entries the kit computes for it),
with COPY. 20 work queues of uneven size (the largest holds ~28 % of the tickets), a year of history, statuses as
a help desk has them (most tickets closed; ~40 % open). The query mix: one queue and one open status, or one queue
and the open statuses together (``status=acknowledged,inProgress``), newest first, 20 a page, with the total count.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from customer_search import _copy_value, _keys
from support import api_server, percentile

TENANT = "bench"
QUEUES = 20
STATUSES = [("closed", 0.45), ("resolved", 0.10), ("cancelled", 0.03), ("rejected", 0.02), ("acknowledged", 0.10),
            ("inProgress", 0.18), ("pending", 0.08), ("held", 0.04)]
OPEN = ["acknowledged", "inProgress", "pending", "held"]
TYPES = ["network", "billing", "service", "device", "other"]
PRIORITIES = [("low", 0.3), ("medium", 0.45), ("high", 0.2), ("critical", 0.05)]


def _pick(rng: random.Random, weighted: list[tuple[str, float]]) -> str:
    return rng.choices([k for k, _ in weighted], [w for _, w in weighted])[0]


def generate(count: int, seed: int, batch: int) -> None:
    import psycopg

    from openbss.cli import upgrade_database
    from openbss.platform.db import json_dumps, libpq_conninfo, owner_url
    from openbss.platform.tmf.search import indexes_of
    from openbss.services import tmf_apis
    from openbss.settings import get_settings

    upgrade_database()
    _, _, ikey = asyncio.run(_keys(TENANT))
    index = {ix.resource_type: ix for ix in indexes_of(tmf_apis(get_settings()))}["TroubleTicket"]
    conninfo = libpq_conninfo(owner_url())
    tables = ["trouble_ticket", "search_entry"]
    rng = random.Random(seed)
    base = "http://127.0.0.1:8000/tmf-api/troubleTicket/v4/troubleTicket"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        queues = [r[0] for r in conn.execute("SELECT id FROM care_queue WHERE tenant_id = %s ORDER BY name",
                                             (TENANT,)).fetchall()]
        if not queues:
            for q in range(QUEUES):
                conn.execute("INSERT INTO care_queue (id, tenant_id, name) VALUES (%s, %s, %s)",
                             (str(uuid.uuid4()), TENANT, f"Queue {q:02d}"))
            queues = [r[0] for r in conn.execute("SELECT id FROM care_queue WHERE tenant_id = %s ORDER BY name",
                                                 (TENANT,)).fetchall()]
        weights = [1 / (i + 1) for i in range(len(queues))]  # uneven queues (Zipf)
        existing = conn.execute("SELECT count(*) FROM trouble_ticket WHERE tenant_id = %s", (TENANT,)).fetchone()
        start = int(existing[0]) if existing else 0
        if start >= count:
            print(f"{start} tickets already there")
            return
        indexdefs = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s) AND indexname NOT LIKE 'pk_%%'",
            (tables,)).fetchall()
        print(f"dropping {len(indexdefs)} secondary indexes for the load")
        for name, _ in indexdefs:
            conn.execute(f'DROP INDEX IF EXISTS "{name}"')
        t0 = time.perf_counter()
        year_ago = datetime(2026, 1, 1, tzinfo=UTC)
        n = start
        while n < count:
            bufs: dict[str, list[str]] = {t: [] for t in tables}
            for _ in range(min(batch, count - n)):
                tid = str(uuid.uuid4())
                created = year_ago + timedelta(seconds=int(365 * 86400 * n / max(count, 1)) + rng.randint(0, 59))
                stamp = created.strftime("%Y-%m-%dT%H:%M:%S.000Z")
                status = _pick(rng, STATUSES)
                queue = rng.choices(queues, weights)[0]
                doc: dict[str, Any] = {
                    "id": tid, "href": f"{base}/{tid}", "@type": "OpenBSSTroubleTicket", "@baseType": "TroubleTicket",
                    "description": f"Ticket {n}", "severity": rng.choice(["minor", "major", "critical"]),
                    "ticketType": rng.choice(TYPES), "priority": _pick(rng, PRIORITIES), "status": status,
                    "creationDate": stamp, "lastUpdate": stamp, "statusChangeDate": stamp,
                    "statusChange": [{"status": "acknowledged", "changeDate": stamp}],
                    "queue": {"id": queue, "name": f"Queue {queues.index(queue):02d}"},
                    "relatedParty": [{"id": f"cust-{rng.randint(0, count // 3)}", "role": "customer",
                                      "@referredType": "Customer"}],
                    "channel": {"id": rng.choice(["phone", "email", "chat", "selfcare"])}}
                bufs["trouble_ticket"].append("\t".join(_copy_value(v) for v in (
                    tid, TENANT, json_dumps(doc), stamp, stamp, 1)))
                bufs["search_entry"] += ["\t".join(_copy_value(v) for v in (
                    TENANT, e["resource_type"], e["attribute"], e["value"], tid, "t" if e["is_unique"] else "f"))
                    for e in index.entries(tid, doc, ikey)]
                n += 1
            with conn.cursor() as cur:
                for table, lines in bufs.items():
                    cols = ("(tenant_id, resource_type, attribute, value, resource_id, is_unique)"
                            if table == "search_entry" else "(id, tenant_id, body, created_at, last_update, revision)")
                    with cur.copy(f"COPY {table} {cols} FROM STDIN") as copy:
                        copy.write(io.StringIO("\n".join(lines) + "\n").getvalue())
            rate = (n - start) / (time.perf_counter() - t0)
            print(f"\r{n:>9,} tickets  {rate:,.0f}/s", end="", flush=True)
        print()
        print("re-creating indexes…")
        for name, ddl in indexdefs:
            t1 = time.perf_counter()
            conn.execute(ddl)
            print(f"  {name}: {time.perf_counter() - t1:.0f}s")
        conn.execute("VACUUM ANALYZE")
    print(f"done in {time.perf_counter() - t0:.0f}s")


async def _measure(base: str, token: str, queues: list[str], requests: int, concurrency: int,
                   seed: int) -> dict[str, list[float]]:
    import httpx

    rng = random.Random(seed)
    plan: asyncio.Queue[tuple[str, dict[str, str]]] = asyncio.Queue()
    for _ in range(requests):
        q = rng.choice(queues)
        if rng.random() < 0.5:
            plan.put_nowait(("one status", {"queue.id": q, "status": rng.choice(OPEN)}))
        else:
            plan.put_nowait(("open statuses", {"queue.id": q, "status": "acknowledged,inProgress"}))
    lat: dict[str, list[float]] = {"one status": [], "open statuses": []}
    totals: list[int] = []
    path = "/tmf-api/troubleTicket/v4/troubleTicket"
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        for q in queues[:3]:  # warm-up
            await client.get(path, params={"queue.id": q, "status": "inProgress", "limit": "20"})

        async def worker() -> None:
            while not plan.empty():
                kind, params = plan.get_nowait()
                t = time.perf_counter()
                r = await client.get(path, params={**params, "limit": "20"})
                lat[kind].append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200, r.text
                assert len(r.json()) <= 20
                totals.append(int(r.headers["x-total-count"]))

        await asyncio.gather(*[worker() for _ in range(concurrency)])
    print(f"  matches per request: mean {sum(totals) / len(totals):,.0f}, max {max(totals):,}")
    return lat


def run(requests: int, concurrency: int, port: int, seed: int) -> None:
    import psycopg

    from openbss.platform.auth import issue_token
    from openbss.platform.db import libpq_conninfo, owner_url

    with psycopg.connect(libpq_conninfo(owner_url())) as conn:
        queues = [r[0] for r in conn.execute("SELECT id FROM care_queue WHERE tenant_id = %s", (TENANT,)).fetchall()]
        total = conn.execute("SELECT count(*) FROM trouble_ticket WHERE tenant_id = %s", (TENANT,)).fetchone()
    print(f"{total[0] if total else 0:,} tickets, {len(queues)} queues")
    with api_server(port) as base:
        token = issue_token(TENANT, ["csr_agent"], subject="bench")
        lat = asyncio.run(_measure(base, token, queues, requests, concurrency, seed))
    every = [v for vs in lat.values() for v in vs]
    print(f"{'query':<16}{'n':>6}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
    for kind, vs in [*lat.items(), ("all", every)]:
        print(f"{kind:<16}{len(vs):>6}{percentile(vs, 50):>9.1f}{percentile(vs, 95):>9.1f}{percentile(vs, 99):>9.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate")
    g.add_argument("--count", type=int, default=1_000_000)
    g.add_argument("--seed", type=int, default=42)
    g.add_argument("--batch", type=int, default=5000)
    r = sub.add_parser("run")
    r.add_argument("--requests", type=int, default=2000)
    r.add_argument("--concurrency", type=int, default=4)
    r.add_argument("--port", type=int, default=8766)
    r.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    if a.cmd == "generate":
        generate(a.count, a.seed, a.batch)
    else:
        run(a.requests, a.concurrency, a.port, a.seed)


if __name__ == "__main__":
    main()
