"""Bill-run benchmark: a partitioned bill run over N billing accounts, then PDFs of a sample of the bills.

    # 1. data: N billing accounts, each with a monthly plan (in advance, started mid-cycle) and an activation fee;
    #    one in five also a roaming option, one in four a postpaid line with 8 rated usage records in February.
    #    The first 140 accounts (every shape once) through the services, the others copied in bulk (minutes)
    OPENBSS_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/openbss_bench_bill \\
        .venv/bin/python bench/bill_run.py setup --accounts 100000
    # 2. measure: a partitioned run (workers in this process, each its own connection), then PDFs
    OPENBSS_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/openbss_bench_bill \\
        .venv/bin/python bench/bill_run.py run --workers 2 --partition 1000 --pdfs 200
    #    (--pdfs N: N bills' PDFs one by one as the API renders them, then N more as one batch through
    #    billing.archive, the way a run's documents are issued)
    # 3. where the time goes: one run of the next cycle under cProfile (one worker)
    OPENBSS_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/openbss_bench_bill \\
        .venv/bin/python bench/bill_run.py profile --as-of 2027-04-01

The run is timed as a whole (drafts written per partition, then issued per partition), with the CPU it took in
this process and in PostgreSQL's backends of the database, and the statements it sent; a second run as of the
same date is timed too (it must bill nothing); then every account copied in bulk is checked to be billed exactly
as the account it copies. Bills are kept: measure on a freshly set-up database (a second measurement finds
everything billed).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import time
from datetime import date
from typing import Any

TENANT = "bench-bill"
AS_OF = date(2027, 3, 1)


#: account ``i`` has the shape of account ``i % SHAPES`` (price, bill cycle day, start day, option, postpaid line)
SHAPES = 140


def _prices(i: int) -> list[list[dict[str, Any]]]:
    """The products of account ``i``: a monthly plan with an activation fee; one in five a roaming option."""
    prices = [
        {"name": "Mobile plan", "priceType": "recurring", "recurringChargePeriod": "month",
         "price": {"dutyFreeAmount": {"unit": "EUR", "value": f"{19 + i % 20}.99"}, "taxRate": 20},
         "productOfferingPrice": {"id": "pop-plan"}},
        {"name": "Activation", "priceType": "oneTime",
         "price": {"dutyFreeAmount": {"unit": "EUR", "value": "10.00"}, "taxRate": 20},
         "productOfferingPrice": {"id": "pop-activation"}}]
    return [prices] + ([[{**prices[0], "name": "Roaming option", "productOfferingPrice": {"id": "pop-option"}}]]
                       if i % 5 == 0 else [])


def _product(i: int, n: int, account_id: str, pp: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": f"prod-{i}-{n}", "@type": "Product", "name": pp[0]["name"], "status": "active",
            "startDate": f"2027-01-{1 + (i * 7) % 28:02d}T10:00:00Z",
            "billingAccount": {"id": account_id}, "productPrice": pp,
            "relatedParty": [{"id": f"party-{i}", "role": "owner", "@referredType": "Individual"}]}


def _usage(i: int, line_id: str) -> list[tuple[Any, ...]]:
    """Postpaid usage of line ``i`` (one in four accounts): 8 rated voice records in February 2027."""
    from datetime import UTC, datetime

    return [(f"use-{i}-{k}", line_id, f"use-{i}-{k}", "voice", 60 * (1 + k), 5 + (i % SHAPES + k) % 40,
             datetime(2027, 2, 1 + 3 * k, 9 + k, tzinfo=UTC)) for k in range(8)]


USAGE_SQL = ("INSERT INTO charging_usage (id, body, account_id, session_id, request_number, rating_group, usage_type, "
             "units, allowance_units, amount_minor, currency, usage_date) VALUES ($1, '{}'::jsonb, $2, $3, 0, 1, $4, "
             "$5, 0, $6, 'EUR', $7)")


async def setup(accounts: int, chunk: int) -> None:
    """The first ``SHAPES`` accounts (every shape once) through the services, as an operator's orders would make
    them; the others as copies of the account of their shape, written with the kit's bulk writes (the same
    documents, search entries, audit records and events as the services write; products as the inventory stores
    them; postpaid lines as charging opens them), ``chunk`` accounts per transaction. ``run`` checks that every
    copy is billed exactly as the account it copies."""
    import copy
    import uuid

    from openbss.charging import repository as repo
    from openbss.charging.service import MAIN_PRIORITY, UNLIMITED, bucket_body, subscriber_key
    from openbss.cli import upgrade_database
    from openbss.platform.db import json_dumps
    from openbss.platform.runtime import Runtime
    from openbss.platform.tenancy import ensure_tenant
    from openbss.platform.tmf.resource import system_context
    from openbss.services import build_services
    from openbss.settings import get_settings

    upgrade_database()
    rt = Runtime.build(get_settings())
    services = build_services(rt.settings, rt)
    charging = services.charging.service
    account_docs = services.account.resources["billingAccount"]
    products = services.inventory.service.products
    async with rt.db.transaction(None) as session:
        await ensure_tenant(session, TENANT, "Bill run benchmark")
    async with rt.db.transaction(TENANT) as session:  # one business customer holding every account
        ctx = system_context(TENANT, session, "http://bench")
        org = await services.party.service.create_organization(ctx, {"name": "Bench Ltd", "tradingName": "Bench Ltd"})
        customer = await services.customer.service.create_customer(ctx, {
            "name": "Bench Ltd", "engagedParty": {"id": org["id"], "@referredType": "Organization"}})
    holder = [{"id": customer["id"], "name": "Bench Ltd", "role": "customer", "@referredType": "Customer"}]
    started = time.perf_counter()
    shapes: list[dict[str, Any]] = []
    async with rt.db.transaction(TENANT) as session:  # every shape through the services
        ctx = system_context(TENANT, session, "http://bench")
        conn = await repo.session_connection(session)
        for i in range(min(SHAPES, accounts)):
            account = await services.account.service.create_billing_account(ctx, {
                "name": f"Account {i}", "currency": "EUR", "paymentTermsDays": 14, "relatedParty": holder,
                "billCycle": {"billingDay": 1 + i % 28, "frequency": "monthly", "timeZone": "Europe/Paris"}})
            for n, pp in enumerate(_prices(i)):
                await products.store.insert(ctx, f"prod-{i}-{n}", _product(i, n, account["id"], pp))
            if i % 4 == 0:
                line = await charging.open_account(ctx, subscriber=f"+3360{i:07d}", payment_type="postpaid",
                                                   billing_account_id=account["id"], product_id=f"prod-{i}-0",
                                                   plan={})
                await conn.executemany(USAGE_SQL, _usage(i, str(line["id"])))
            shapes.append({k: v for k, v in account.items() if k != "href"})
    made = len(shapes)
    print(f"{made} accounts through the services in {time.perf_counter() - started:.1f} s")
    while made < accounts:
        async with rt.db.transaction(TENANT) as session:
            ctx = system_context(TENANT, session, "http://bench")
            conn = await repo.session_connection(session)
            docs: list[tuple[dict[str, Any], Any]] = []
            prods: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
            lines: list[tuple[Any, ...]] = []
            buckets: list[tuple[Any, ...]] = []
            usage: list[tuple[Any, ...]] = []
            for i in range(made, min(accounts, made + chunk)):
                doc = copy.deepcopy(shapes[i % SHAPES])
                doc["id"], doc["name"] = str(uuid.uuid4()), f"Account {i}"
                docs.append((doc, None))
                prods += [(f"prod-{i}-{n}", _product(i, n, doc["id"], pp), {}) for n, pp in enumerate(_prices(i))]
                if i % 4 == 0:  # what ChargingService.open_account writes for a postpaid line without allowances
                    line_id = str(uuid.uuid4())
                    line = {"id": line_id, "subscriber": subscriber_key(f"+3360{i:07d}"), "product_id": f"prod-{i}-0",
                            "offering_id": None, "billing_account_id": doc["id"], "party_id": None,
                            "party_type": "Individual", "payment_type": "postpaid", "currency": "EUR",
                            "time_zone": "Europe/Paris", "plan": {}, "quota_validity_seconds": 300,
                            "low_balance_minor": 0}
                    lines.append((line_id, line["subscriber"], line["product_id"], None, doc["id"], None, "postpaid",
                                  "EUR", "Europe/Paris", json_dumps({}), 300, 0, "Individual"))
                    buckets.append((str(uuid.uuid4()), json_dumps(bucket_body(
                        line, name="Main balance (postpaid)", unit="money", valid_from=None, valid_to=None,
                        description="Postpaid usage within the credit limit")), line_id, "money", 0, -UNLIMITED,
                        None, None, MAIN_PRIORITY, "main", "main", None, 0, None, None))
                    usage += _usage(i, line_id)
            await account_docs.record_many(ctx, docs)
            await products.store.insert_many(ctx, prods)
            await conn.executemany(repo.INSERT_ACCOUNT, lines)
            await conn.executemany(repo.INSERT_BUCKET, buckets)
            await conn.executemany(USAGE_SQL, usage)
        made = min(accounts, made + chunk)
        print(f"\r{made}/{accounts} accounts", end="", flush=True)
    elapsed = time.perf_counter() - started
    print(f"\nset up in {elapsed:.1f} s ({accounts / elapsed:.0f} accounts/s)")
    await rt.close()


def _cpu() -> float:
    """CPU seconds (user + sys) of this process and its child processes, running (the render workers) or ended."""
    import psutil

    me = psutil.Process()
    t = me.cpu_times()
    live = sum(c.cpu_times().user + c.cpu_times().system for c in me.children(recursive=True))
    return t.user + t.system + t.children_user + t.children_system + live


async def measure(workers: int, partition: int, pdfs: int) -> None:
    from sqlalchemy import select

    from openbss.billing import document
    from openbss.billing.archive import documents_due, store_documents
    from openbss.billing.models import CustomerBill
    from openbss.billing.runs import run_status, start_run, work_run
    from openbss.billing.service import bill_pdf
    from openbss.platform.runtime import Runtime
    from openbss.platform.tmf.resource import system_context
    from openbss.services import build_services
    from openbss.settings import get_settings

    rt = Runtime.build(get_settings())
    services = build_services(rt.settings, rt)
    billing = services.billing.service
    statements = _count_statements(rt.db.engine)
    database = rt.db.engine.url.database or ""

    async def one_run() -> tuple[dict[str, Any], float, float, float, int]:
        async with rt.db.transaction(TENANT) as session:
            job = await start_run(system_context(TENANT, session, "http://bench"), billing, AS_OF, finalize=True,
                                  size=partition)
        t0, cpu0, pg0, sql0 = time.perf_counter(), time.process_time(), _postgres_cpu(database), statements[0]
        await asyncio.gather(*[work_run(rt.db, TENANT, "http://bench", billing, job["id"], worker=f"w{i}")
                               for i in range(workers)])
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        pg, sql = _postgres_cpu(database) - pg0, statements[0] - sql0
        async with rt.db.transaction(TENANT) as session:
            status = await run_status(system_context(TENANT, session, "http://bench"), job["id"])
        return status, elapsed, cpu, pg, sql

    print(f"machine: {platform.node()} · {os.cpu_count()} cores · Python {platform.python_version()} · "
          f"load {_loadavg()}")
    status, elapsed, cpu, pg, sql = await one_run()
    n = status["accounts"]
    print(f"run: {n} accounts, {status['billed']} billed, {status['finalized']} issued, {len(status['failed'])} "
          f"failed, totals {status['totals']}")
    print(f"run: {elapsed:.1f} s → {n / elapsed:.0f} accounts/s ({workers} workers, partitions of {partition}); "
          f"load {_loadavg()}")
    print(f"run: CPU {cpu:.1f} s in this process ({1000 * cpu / n:.2f} ms/account), {pg:.1f} s in PostgreSQL's "
          f"backends of {database} ({1000 * pg / n:.2f} ms/account); {sql} statements ({sql / n:.2f}/account)")
    again, elapsed2, cpu2, pg2, sql2 = await one_run()
    print(f"second run as of the same date: {again['billed']} billed, {elapsed2:.1f} s → "
          f"{again['accounts'] / elapsed2:.0f} accounts/s; CPU {cpu2:.1f} s here, {pg2:.1f} s in PostgreSQL; "
          f"{sql2 / max(again['accounts'], 1):.2f} statements/account")
    await _check_copies(rt)
    async with rt.db.transaction(TENANT) as session:
        ids = [r[0] for r in await session.execute(select(CustomerBill.id).order_by(CustomerBill.id)
                                                   .limit(2 * pdfs))]
    one, batch = ids[:pdfs], ids[pdfs:]
    t0 = time.perf_counter()
    for bill_id in one:
        async with rt.db.transaction(TENANT) as session:
            await bill_pdf(system_context(TENANT, session, "http://bench"), billing.bills, services.billing.documents,
                           bill_id, billing.accounts, billing.usage)
    elapsed3 = time.perf_counter() - t0
    print(f"PDFs one by one (as asked through the API): {len(one)} rendered and archived in {elapsed3:.1f} s → "
          f"{len(one) / elapsed3:.0f} documents/s")
    document.pool()  # the worker processes started before timing (as in a long-lived worker)
    await asyncio.get_running_loop().run_in_executor(None, document.render_many, [])
    t0, cpu = time.perf_counter(), _cpu()
    async with rt.db.transaction(TENANT) as session:
        due = await documents_due(system_context(TENANT, session, "http://bench"), billing.bills, batch,
                                  billing.accounts, billing.usage)
    t1 = time.perf_counter()
    await store_documents(services.billing.documents, due)
    elapsed4, cpu = time.perf_counter() - t0, _cpu() - cpu
    print(f"PDFs in a batch (billing.archive: read in one transaction {t1 - t0:.2f} s, rendered in worker processes "
          f"and stored): {len(due)} in {elapsed4:.1f} s → {len(due) / elapsed4:.0f} documents/s; CPU of this "
          f"process and its workers {1000 * cpu / max(len(due), 1):.1f} ms per document")
    await rt.close()


def _loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def _count_statements(engine: Any) -> list[int]:
    """A counter of the statements this process sends through SQLAlchemy (the usage query, sent with asyncpg
    directly, once per partition, is not counted)."""
    from sqlalchemy import event

    count = [0]

    def counted(*_: Any) -> None:
        count[0] += 1

    event.listen(engine.sync_engine, "before_cursor_execute", counted)
    return count


def _postgres_cpu(database: str) -> float:
    """User + system CPU seconds of the PostgreSQL backends connected to ``database`` (this machine's /proc)."""
    total = 0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                title = f.read().replace(b"\0", b" ").decode(errors="replace")
            if not title.startswith("postgres:") or f" {database} " not in title:
                continue
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            continue
    return total / tick


async def _check_copies(rt: Any) -> None:
    """Every account copied in bulk by ``setup`` is billed exactly as the account of its shape, made through the
    services: the same lines (charge, period, amounts) and totals."""
    import re

    from sqlalchemy import text

    async with rt.db.transaction(TENANT) as session:
        rows = await session.execute(text(
            "SELECT r.billing_account_id, r.charge_key, r.period_start, r.period_end, r.amount, "
            "r.body->'taxIncludedAmount'->>'value', b.total FROM billing_applied_rate r "
            "JOIN billing_customer_bill b ON b.id = r.bill_id"))
        per_account: dict[str, set[tuple[Any, ...]]] = {}
        number: dict[str, int] = {}
        for account_id, key, start, end, amount, gross, total in rows:
            found = re.search(r"prod-(\d+)-", key)
            if found:
                number[account_id] = int(found.group(1))
            per_account.setdefault(account_id, set()).add(
                (re.sub(r"prod-\d+-", "prod-", key), start, end, amount, gross, total))
    shapes = {number[a]: lines for a, lines in per_account.items()}
    differ = [i for i in shapes if i >= SHAPES and shapes[i] != shapes.get(i % SHAPES)]
    print(f"check: {len(shapes)} accounts billed; {len(shapes) - min(len(shapes), SHAPES) - len(differ)} bulk copies "
          f"billed as the account they copy, {len(differ)} differ{(': ' + str(differ[:5])) if differ else ''}")


async def profile(as_of: date, partition: int, top: int) -> None:
    """One run (one worker) as of ``as_of`` under cProfile: the functions by own time, and CPU against wall time."""
    import cProfile
    import pstats

    from openbss.billing.runs import start_run, work_run
    from openbss.platform.runtime import Runtime
    from openbss.platform.tmf.resource import system_context
    from openbss.services import build_services
    from openbss.settings import get_settings

    rt = Runtime.build(get_settings())
    billing = build_services(rt.settings, rt).billing.service
    async with rt.db.transaction(TENANT) as session:
        job = await start_run(system_context(TENANT, session, "http://bench"), billing, as_of, finalize=True,
                              size=partition)
    prof = cProfile.Profile()
    wall, cpu = time.perf_counter(), time.process_time()
    prof.enable()
    await work_run(rt.db, TENANT, "http://bench", billing, job["id"], worker="profiled")
    prof.disable()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{job['accounts']} accounts in {wall:.1f} s wall, {cpu:.1f} s CPU in this process "
          f"({job['accounts'] / wall:.0f} accounts/s)")
    stats = pstats.Stats(prof)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    await rt.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("setup")
    s.add_argument("--accounts", type=int, default=2000)
    s.add_argument("--chunk", type=int, default=2000, help="accounts written per transaction")
    r = sub.add_parser("run")
    r.add_argument("--workers", type=int, default=2)
    r.add_argument("--partition", type=int, default=250)
    r.add_argument("--pdfs", type=int, default=200)
    p = sub.add_parser("profile")
    p.add_argument("--as-of", type=date.fromisoformat, default=date(2027, 4, 1))
    p.add_argument("--partition", type=int, default=500)
    p.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    if args.command == "profile":
        asyncio.run(profile(args.as_of, args.partition, args.top))
    elif args.command == "setup":
        asyncio.run(setup(args.accounts, args.chunk))
    else:
        asyncio.run(measure(args.workers, args.partition, args.pdfs))


if __name__ == "__main__":
    main()
