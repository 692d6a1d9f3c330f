"""Collections benchmark: the daily evaluation over N billing accounts of which 5 % are overdue.

    # 1. data: N billing accounts (three customers: residential, sme, corporate), one bill each: 5 % past due and
    #    unpaid, 50 % past due and paid (allocated), the rest not due yet; a default policy and an sme one
    OPENBSS_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/openbss_bench_coll \\
        .venv/bin/python bench/dunning.py setup --accounts 1000000
    # 2. measure: the set-based evaluation (episodes opened), the claim of every due step (FOR UPDATE SKIP LOCKED,
    #    executions inserted), then the next day's evaluation (refresh, nothing to open); then taking a sample of
    #    the claimed steps one by one (reminders: account read, message queued, execution done, event), then
    #    more reminders in batches (``act_reminders``: a few hundred per transaction, what the scheduler does)
    OPENBSS_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/openbss_bench_coll \\
        .venv/bin/python bench/dunning.py run --act 1000 --batched 5000 --batch 200

The data is written with set-based SQL (not through the services: a million accounts through the API would be the
benchmark of account creation). Measure on a freshly set-up database (a second run finds the episodes open).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import time
from datetime import date, timedelta
from typing import Any

from sqlalchemy import text

TENANT = "bench-coll"
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
        await ensure_tenant(session, TENANT, "Collections benchmark")
    started = time.perf_counter()
    async with rt.db.transaction(TENANT) as s:
        await s.execute(text("""
            INSERT INTO customer (id, body, engaged_party_id)
            SELECT 'cust-' || i, jsonb_build_object('name', 'Customer ' || i, 'characteristic', jsonb_build_array(
                   jsonb_build_object('name', 'segment', 'value', (ARRAY['residential', 'sme', 'corporate'])[i + 1]))),
                   NULL
            FROM generate_series(0, 2) i"""))
    step = 100_000
    for first in range(0, accounts, step):
        last = min(accounts, first + step) - 1
        async with rt.db.transaction(TENANT) as s:
            params = {"first": first, "last": last, "as_of": AS_OF}
            await s.execute(text("""
                INSERT INTO billing_account (id, body)
                SELECT 'ba-' || n, jsonb_build_object('name', 'Account ' || n, 'currency', 'EUR',
                       'accountType', CASE WHEN n % 50 = 0 THEN 'key' ELSE 'standard' END,
                       'billCycle', jsonb_build_object('billingDay', 1, 'timeZone', 'Europe/Paris'),
                       'contact', jsonb_build_array(jsonb_build_object('contactType', 'primary', 'contactMedium',
                           jsonb_build_array(jsonb_build_object('mediumType', 'email', 'characteristic',
                               jsonb_build_object('emailAddress', 'a' || n || '@example.com'))))),
                       'relatedParty', jsonb_build_array(jsonb_build_object('id', 'cust-' || (n % 3),
                                                                            '@referredType', 'Customer')))
                FROM generate_series(CAST(:first AS int), CAST(:last AS int)) n"""), params)
            await s.execute(text("""
                INSERT INTO payments_receivable (bill_id, billing_account_id, number, bill_date, due_date, currency,
                                                 amount)
                SELECT 'bill-' || n, 'ba-' || n, 'INV-' || n, CAST(:as_of AS date) - 30,
                       CASE WHEN n % 20 <= 10 THEN CAST(:as_of AS date) - 1 - (n % 30)
                            ELSE CAST(:as_of AS date) + 10 END,
                       'EUR', 20 + (n % 100)
                FROM generate_series(CAST(:first AS int), CAST(:last AS int)) n"""), params)
            await s.execute(text("""
                INSERT INTO payments_allocation (payment_id, billing_account_id, bill_id, amount, source)
                SELECT 'pay-' || n, 'ba-' || n, 'bill-' || n, 20 + (n % 100), 'allocation'
                FROM generate_series(CAST(:first AS int), CAST(:last AS int)) n
                WHERE n % 20 BETWEEN 1 AND 10"""), params)
        print(f"  {last + 1} accounts written ({time.perf_counter() - started:.1f} s)")
    async with rt.db.transaction(TENANT) as s:
        ctx = system_context(TENANT, s, "http://bench")
        policies = services.collections.resources["dunningPolicy"]
        reminder = {"action": "reminder", "channel": ["email"], "template": {"en": "Please pay {amount}"}}
        await policies.create(ctx, {"name": "Default", "isDefault": True, "dunningStep": [
            {**reminder, "daysPastDue": 0}, {"action": "suspend", "daysPastDue": 20}]})
        await policies.create(ctx, {"name": "SME", "segment": "sme", "dunningStep": [
            {**reminder, "daysPastDue": 0, "minimumAmount": [{"unit": "EUR", "value": 50}]}]})
    async with rt.db.transaction(None) as s:
        await s.execute(text("ANALYZE"))
    print(f"set up {accounts} accounts in {time.perf_counter() - started:.1f} s")
    await rt.close()


async def run(act: int, batched: int, per_tx: int) -> None:
    from openbss.platform.runtime import Runtime
    from openbss.platform.tmf.resource import system_context
    from openbss.services import build_services
    from openbss.settings import get_settings

    rt = Runtime.build(get_settings())
    services = build_services(rt.settings, rt)
    svc = services.collections.service
    print(f"machine: {platform.node()} · {os.cpu_count()} cores · Python {platform.python_version()}")
    async with rt.db.transaction(TENANT) as s:
        accounts = (await s.execute(text("SELECT count(*) FROM billing_account"))).scalar()
    t0 = time.perf_counter()
    async with rt.db.transaction(TENANT) as s:
        report = await svc.evaluate(system_context(TENANT, s, "http://bench"), AS_OF)
    t1 = time.perf_counter()
    claimed: list[Any] = []
    while True:
        async with rt.db.transaction(TENANT) as s:
            batch = await svc.claim(s, TENANT, AS_OF, "bench", 5000)
        if not batch:
            break
        claimed += batch
    t2 = time.perf_counter()
    async with rt.db.transaction(TENANT) as s:
        again = await svc.evaluate(system_context(TENANT, s, "http://bench"), AS_OF + timedelta(days=1))
    t3 = time.perf_counter()
    print(f"accounts {accounts}: evaluation opened {report.opened} episodes in {t1 - t0:.1f} s; "
          f"{len(claimed)} steps claimed in {t2 - t1:.1f} s; daily evaluation total {t2 - t0:.1f} s")
    print(f"next day's evaluation (refreshed {again.refreshed}, opened {again.opened}): {t3 - t2:.1f} s")
    sample = claimed[:act]
    t4 = time.perf_counter()
    states = [await svc.act(c) for c in sample]
    t5 = time.perf_counter()
    if sample:
        print(f"{len(sample)} steps taken one by one in {t5 - t4:.1f} s ({len(sample) / (t5 - t4):.0f}/s; "
              f"{sorted(set(states))})")
    reminders = [c for c in claimed[act:] if c.action == "reminder"][:batched]
    t6 = time.perf_counter()
    states = []
    for i in range(0, len(reminders), per_tx):
        states += await svc.act_reminders(reminders[i:i + per_tx])
    t7 = time.perf_counter()
    if reminders:
        print(f"{len(reminders)} reminders taken in batches of {per_tx} in {t7 - t6:.1f} s "
              f"({len(reminders) / (t7 - t6):.0f}/s; {sorted(set(states))})")
    await rt.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("setup")
    s.add_argument("--accounts", type=int, default=1_000_000)
    r = sub.add_parser("run")
    r.add_argument("--act", type=int, default=1000, help="steps taken one by one")
    r.add_argument("--batched", type=int, default=5000, help="reminders then taken in batches")
    r.add_argument("--batch", type=int, default=200, help="reminders per transaction")
    args = parser.parse_args()
    if args.command == "setup":
        asyncio.run(setup(args.accounts))
    else:
        asyncio.run(run(args.act, args.batched, args.batch))


if __name__ == "__main__":
    main()
