"""Prepaid renewal fees: a prepaid line's periodic fees (the offering's monthly recurring prices) are taken from its
money at each renewal of its allowances, exactly once per period (even with two renewal runs at once), with a usage
record and a ``RenewalFeeEvent``; a period the money does not cover grants no allowance until a top-up pays it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from tests.charging.helpers import MB, plan
from tests.conftest import session_services

ROOT = Path(__file__).resolve().parents[2]
FEE = {"priceId": "price-bundle", "name": "Bundle (30 days)", "amount": "9.99", "currency": "EUR"}


async def open_line(rt: Any, tenant: str, number: str, balance: str, start: datetime,
                    payment_type: str = "prepaid") -> dict[str, Any]:
    from openbss.charging import service

    async with rt.db.transaction(tenant) as session:
        ctx = service.system_context(session, tenant, "http://testserver")
        return dict(await session_services().charging.service.open_account(
            ctx, subscriber=number, payment_type=payment_type, plan={**plan(data_allowance_mb=100), "fees": [FEE]},
            initial_balance=Decimal(balance), period_start=start, product_id=f"product-{number[1:]}"))


async def facts(rt: Any, tenant: str, account_id: str) -> dict[str, Any]:
    from tests.charging.helpers import account_state

    st = await account_state(rt, tenant, account_id)
    async with rt.db.transaction(tenant) as session:
        fees = (await session.execute(text(
            "SELECT status, amount_minor, usage_id IS NOT NULL AS recorded FROM charging_renewal_fee "
            "WHERE account_id = :a ORDER BY period_start"), {"a": account_id})).all()
        charges = (await session.execute(text(
            "SELECT count(*), coalesce(sum(amount_minor), 0) FROM charging_usage WHERE account_id = :a "
            "AND usage_type = 'fee'"), {"a": account_id})).one()
        events = (await session.execute(text(
            "SELECT envelope->'event'->'renewalFee'->>'status' FROM outbox_event WHERE event_type = 'RenewalFeeEvent' "
            "AND envelope->'event'->'renewalFee'->'account'->>'id' = :a ORDER BY created_at"),
            {"a": account_id})).scalars().all()
    data = [b for b in st["buckets"] if b["unit"] == "data" and b["source"] == "allowance"]
    return {"money": st["money"], "fees": [tuple(f) for f in fees], "charges": tuple(charges), "events": list(events),
            "allowances": len(data)}


def first_period() -> datetime:
    from openbss.charging import service

    now = datetime.now(UTC).replace(microsecond=0)
    return service.add_months(now, -1) + timedelta(hours=1)  # the first period ends in an hour


async def test_the_fee_is_taken_once_per_period_even_with_two_renewals_at_once(rt: Any, tenant: str) -> None:
    from openbss.charging import service

    start = first_period()
    acc = await open_line(rt, tenant, "+33611113001", "20.00", start)
    f = await facts(rt, tenant, acc["id"])
    # activation: the first period's fee from the initial balance, its allowance granted
    assert f["money"] == 2000 - 999 and f["fees"] == [("paid", 999, True)] and f["charges"] == (1, 999)
    assert f["allowances"] == 1 and f["events"] == ["paid"]
    # the next period: the hourly renewal runs twice at the same time
    later = service.add_months(start, 1) + timedelta(minutes=5)
    made = await asyncio.gather(service.renew_due_allowances(rt.db, tenant, now=later),
                                service.renew_due_allowances(rt.db, tenant, now=later))
    f = await facts(rt, tenant, acc["id"])
    assert f["money"] == 2000 - 2 * 999 and f["fees"] == [("paid", 999, True)] * 2 and f["charges"] == (2, 1998)
    assert f["allowances"] == 2 and f["events"] == ["paid", "paid"]
    assert sorted(made) == [0, 1] or sum(made) >= 1  # the second run found the period renewed
    assert await service.renew_due_allowances(rt.db, tenant, now=later) == 0
    assert (await facts(rt, tenant, acc["id"]))["money"] == 2


async def test_an_unpaid_fee_grants_no_allowance_until_a_top_up_pays_it(rt: Any, tenant: str) -> None:
    from openbss.charging import service

    acc = await open_line(rt, tenant, "+33611113002", "5.00", first_period())
    f = await facts(rt, tenant, acc["id"])
    assert f["money"] == 500 and f["fees"] == [("unpaid", 999, False)] and f["allowances"] == 0
    assert f["charges"] == (0, 0) and f["events"] == ["unpaid"]
    # the hourly renewal tries again: still not enough, nothing moves, no second event
    assert await service.renew_due_allowances(rt.db, tenant) == 0
    assert (await facts(rt, tenant, acc["id"]))["events"] == ["unpaid"]
    async with rt.db.transaction(tenant) as session:
        ctx = service.system_context(session, tenant, "http://testserver")
        await service.topup(ctx, acc["id"], 1000)
    f = await facts(rt, tenant, acc["id"])
    assert f["money"] == 1500 - 999 and f["fees"] == [("paid", 999, True)] and f["allowances"] == 1
    assert f["charges"] == (1, 999) and f["events"] == ["unpaid", "paid"]
    async with rt.db.transaction(tenant) as session:  # another top-up pays nothing more
        await service.topup(service.system_context(session, tenant, "http://testserver"), acc["id"], 100)
    f = await facts(rt, tenant, acc["id"])
    assert f["money"] == 1600 - 999 and f["charges"] == (1, 999)


async def test_a_postpaid_line_renews_without_a_fee_from_its_balance(rt: Any, tenant: str) -> None:
    acc = await open_line(rt, tenant, "+33611113003", "0", first_period(), payment_type="postpaid")
    f = await facts(rt, tenant, acc["id"])
    assert f["money"] == 0 and f["fees"] == [] and f["allowances"] == 1 and f["charges"] == (0, 0)
    assert MB  # (the allowance is the plan's 100 MB)


RENEW_SCRIPT = """
import asyncio, sys
from datetime import UTC, datetime
from openbss.charging import service
from openbss.platform.db import Database

async def main():
    db = Database.from_settings()
    await service.renew_due_allowances(db, sys.argv[1], now=datetime.fromtimestamp(float(sys.argv[2]), UTC))

asyncio.run(main())
"""


@pytest.mark.slow
async def test_kill_9_during_the_renewal_job_charges_each_line_once(rt: Any, tenant: str) -> None:
    """The renewal job renews each line in its own transaction (fee, usage record, allowances together): killed
    with -9 in the middle and run again, every line has paid its fee once and has its allowance."""
    from openbss.charging import service

    start = first_period()
    lines = 120
    ids = [(await open_line(rt, tenant, f"+3361120{i:04d}", "20.00", start))["id"] for i in range(lines)]
    later = service.add_months(start, 1) + timedelta(minutes=5)

    async def paid() -> int:
        async with rt.db.transaction(tenant) as session:
            return int((await session.execute(text(
                "SELECT count(*) FROM charging_renewal_fee WHERE status = 'paid' AND period_start > :s"),
                {"s": start})).scalar_one())

    proc = subprocess.Popen([sys.executable, "-c", RENEW_SCRIPT, tenant, str(later.timestamp())], cwd=ROOT,
                            env={**os.environ}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while await paid() < 5 and proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    done = await paid()
    assert 5 <= done < lines, done  # killed in the middle of the run
    assert await service.renew_due_allowances(rt.db, tenant, now=later) == lines - done  # one bucket per line left
    for account_id in ids:
        f = await facts(rt, tenant, account_id)
        assert f["money"] == 2000 - 2 * 999 and f["charges"] == (2, 1998) and f["allowances"] == 2, f


async def test_the_fee_is_the_price_the_line_was_sold_at_with_its_discount_for_a_time(rt: Any, tenant: str) -> None:
    """The order sold the bundle twice (quantity 2: 19.98) with 9.99 off for the first month: the first period's
    fee is 9.99, the next 19.98 — charging took the catalog's 9.99 for ever (the quantity and the discount of the
    sale ignored)."""
    from openbss.charging import service

    start = first_period()
    sold = [{"name": "Bundle (30 days)", "priceType": "recurring", "recurringChargePeriod": "month",
             "price": {"dutyFreeAmount": {"unit": "EUR", "value": "19.98"}},
             "productOfferingPrice": {"id": FEE["priceId"]},
             "productPriceAlteration": [{"name": "First month: one free", "priceType": "recurring",
                                         "applicationDuration": 1, "unitOfMeasure": "month",
                                         "price": {"dutyFreeAmount": {"unit": "EUR", "value": "-9.99"}}}]}]
    async with rt.db.transaction(tenant) as session:
        ctx = service.system_context(session, tenant, "http://testserver")
        acc = dict(await session_services().charging.service.open_account(
            ctx, subscriber="+33611113009", payment_type="prepaid", plan={**plan(data_allowance_mb=100),
                                                                           "fees": [FEE]},
            initial_balance=Decimal("40.00"), period_start=start, product_prices=sold))
    assert (await facts(rt, tenant, acc["id"]))["fees"] == [("paid", 999, True)]
    later = service.add_months(start, 1) + timedelta(minutes=5)
    await service.renew_due_allowances(rt.db, tenant, now=later)
    f = await facts(rt, tenant, acc["id"])
    assert f["fees"] == [("paid", 999, True), ("paid", 1998, True)] and f["money"] == 4000 - 999 - 1998
