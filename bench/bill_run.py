"""Bill-run benchmark: a partitioned bill run over N billing accounts, then PDFs of a sample of the bills.

    # 1. data: N billing accounts, each with a monthly plan (in advance, started mid-cycle) and an activation fee;
    #    one in five also a second line with an in-arrears option
    OPENBSS_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/openbss_bench_bill \\
        .venv/bin/python bench/bill_run.py setup --accounts 2000
    # 2. measure: a partitioned run (workers in this process, each its own connection), then PDFs
    OPENBSS_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/openbss_bench_bill \\
        .venv/bin/python bench/bill_run.py run --workers 2 --partition 250 --pdfs 200
    #    (--pdfs N: N bills' PDFs one by one as the API renders them, then N more as one batch through
    #    billing.archive, the way a run's documents are issued)
    # 3. where the time goes: one run of the next cycle under cProfile (one worker)
    OPENBSS_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/openbss_bench_bill \\
        .venv/bin/python bench/bill_run.py profile --as-of 2027-04-01

The run is timed in its two phases (drafts written per partition; drafts issued one transaction each) and as a
whole; a second run as of the same date is timed too (it must bill nothing). Bills are kept: measure on a freshly
set-up database (a second measurement finds everything billed). The accounts have no postpaid usage
(usage lines are not part of this mix).
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


async def setup(accounts: int) -> None:
    from openbss.cli import upgrade_database
    from openbss.platform.runtime import Runtime
    from openbss.platform.tenancy import ensure_tenant
    from openbss.platform.tmf.resource import system_context
    from openbss.services import build_services
    from openbss.settings import get_settings

    upgrade_database()
    rt = Runtime.build(get_settings())
    services = build_services(rt.settings, rt)
    async with rt.db.transaction(None) as session:
        await ensure_tenant(session, TENANT, "Bill run benchmark")
    async with rt.db.transaction(TENANT) as session:  # one business customer holding every account
        ctx = system_context(TENANT, session, "http://bench")
        org = await services.party.service.create_organization(ctx, {"name": "Bench Ltd", "tradingName": "Bench Ltd"})
        customer = await services.customer.service.create_customer(ctx, {
            "name": "Bench Ltd", "engagedParty": {"id": org["id"], "@referredType": "Organization"}})
    holder = [{"id": customer["id"], "name": "Bench Ltd", "role": "customer", "@referredType": "Customer"}]
    made = 0
    started = time.perf_counter()
    while made < accounts:
        async with rt.db.transaction(TENANT) as session:
            ctx = system_context(TENANT, session, "http://bench")
            for i in range(made, min(accounts, made + 200)):
                account = await services.account.service.create_billing_account(ctx, {
                    "name": f"Account {i}", "currency": "EUR", "paymentTermsDays": 14, "relatedParty": holder,
                    "billCycle": {"billingDay": 1 + i % 28, "frequency": "monthly", "timeZone": "Europe/Paris"}})
                prices = [
                    {"name": "Mobile plan", "priceType": "recurring", "recurringChargePeriod": "month",
                     "price": {"dutyFreeAmount": {"unit": "EUR", "value": f"{19 + i % 20}.99"}, "taxRate": 20},
                     "productOfferingPrice": {"id": "pop-plan"}},
                    {"name": "Activation", "priceType": "oneTime",
                     "price": {"dutyFreeAmount": {"unit": "EUR", "value": "10.00"}, "taxRate": 20},
                     "productOfferingPrice": {"id": "pop-activation"}}]
                products = [prices] + ([[{**prices[0], "name": "Roaming option",
                                          "productOfferingPrice": {"id": "pop-option"}}]] if i % 5 == 0 else [])
                for n, pp in enumerate(products):
                    pid = f"prod-{i}-{n}"
                    await services.inventory.service.products.store.insert(ctx, pid, {
                        "id": pid, "@type": "Product", "name": pp[0]["name"], "status": "active",
                        "startDate": f"2027-01-{1 + (i * 7) % 28:02d}T10:00:00Z",
                        "billingAccount": {"id": account["id"]}, "productPrice": pp,
                        "relatedParty": [{"id": f"party-{i}", "role": "owner", "@referredType": "Individual"}]})
        made = min(accounts, made + 200)
        print(f"\r{made}/{accounts} accounts", end="", flush=True)
    print(f"\nset up in {time.perf_counter() - started:.1f} s")
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
    async def one_run() -> tuple[dict[str, Any], float]:
        async with rt.db.transaction(TENANT) as session:
            job = await start_run(system_context(TENANT, session, "http://bench"), billing, AS_OF, finalize=True,
                                  size=partition)
        t0 = time.perf_counter()
        await asyncio.gather(*[work_run(rt.db, TENANT, "http://bench", billing, job["id"], worker=f"w{i}")
                               for i in range(workers)])
        elapsed = time.perf_counter() - t0
        async with rt.db.transaction(TENANT) as session:
            return await run_status(system_context(TENANT, session, "http://bench"), job["id"]), elapsed

    status, elapsed = await one_run()
    n = status["accounts"]
    print(f"machine: {platform.node()} · {os.cpu_count()} cores · Python {platform.python_version()}")
    print(f"run: {n} accounts, {status['billed']} billed, {status['finalized']} issued, {len(status['failed'])} "
          f"failed, totals {status['totals']}")
    print(f"run: {elapsed:.1f} s → {n / elapsed:.0f} accounts/s ({workers} workers, partitions of {partition})")
    again, elapsed2 = await one_run()
    print(f"second run as of the same date: {again['billed']} billed, {elapsed2:.1f} s → "
          f"{again['accounts'] / elapsed2:.0f} accounts/s")
    async with rt.db.transaction(TENANT) as session:
        ids = [r[0] for r in await session.execute(select(CustomerBill.id).order_by(CustomerBill.id)
                                                   .limit(2 * pdfs))]
    one, batch = ids[:pdfs], ids[pdfs:]
    t0 = time.perf_counter()
    for bill_id in one:
        async with rt.db.transaction(TENANT) as session:
            await bill_pdf(system_context(TENANT, session, "http://bench"), billing.bills, services.billing.documents,
                           bill_id, billing.accounts)
    elapsed3 = time.perf_counter() - t0
    print(f"PDFs one by one (as asked through the API): {len(one)} rendered and archived in {elapsed3:.1f} s → "
          f"{len(one) / elapsed3:.0f} documents/s")
    document.pool()  # the worker processes started before timing (as in a long-lived worker)
    await asyncio.get_running_loop().run_in_executor(None, document.render_many, [])
    t0, cpu = time.perf_counter(), _cpu()
    async with rt.db.transaction(TENANT) as session:
        due = await documents_due(system_context(TENANT, session, "http://bench"), billing.bills, batch,
                                  billing.accounts)
    t1 = time.perf_counter()
    await store_documents(services.billing.documents, due)
    elapsed4, cpu = time.perf_counter() - t0, _cpu() - cpu
    print(f"PDFs in a batch (billing.archive: read in one transaction {t1 - t0:.2f} s, rendered in worker processes "
          f"and stored): {len(due)} in {elapsed4:.1f} s → {len(due) / elapsed4:.0f} documents/s; CPU of this "
          f"process and its workers {1000 * cpu / max(len(due), 1):.1f} ms per document")
    await rt.close()


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
        asyncio.run(setup(args.accounts))
    else:
        asyncio.run(measure(args.workers, args.partition, args.pdfs))


if __name__ == "__main__":
    main()
