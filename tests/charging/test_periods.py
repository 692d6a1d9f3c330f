"""Allowances renewed each period with rollover; housekeeping of finished sessions; the periodic jobs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from tests.charging.helpers import MB, OCS, ccr, group, plan
from tests.conftest import bearer, session_services


async def test_renewal_with_rollover_and_purge(client: Any, rt: Any, tenant: str) -> None:
    from openbss.charging import repository as repo
    from openbss.charging import service
    from openbss.charging.jobs import charging_blueprint
    from tests.charging.helpers import account_state

    p = plan(data_allowance_mb=100)
    p["data"]["allowances"][0]["rollover"] = {"maxPeriods": 1, "maxQuantity": {"amount": 30, "units": "MB"}}
    now = datetime.now(UTC).replace(microsecond=0)
    start = service.add_months(now, -1) + timedelta(hours=1)  # the first period ends in an hour
    async with rt.db.transaction(tenant) as session:
        ctx = service.system_context(session, tenant, "http://testserver")
        charging = session_services().charging.service
        acc = await charging.open_account(ctx, subscriber="+33611112222", payment_type="prepaid", plan=p,
                                         initial_balance=Decimal(1), period_start=start)
        data = next(b for b in acc["buckets"] if b["unit"] == "data")
        await service.adjust(ctx, acc["id"], data["id"], -60 * MB)  # 40 MB left at the end of the period
    # two periods later: two renewals, each rolling over what was left, capped at 30 MB
    later = service.add_months(start, 2) + timedelta(days=1)
    assert await service.renew_due_allowances(rt.db, tenant, now=later) == 4
    assert await service.renew_due_allowances(rt.db, tenant, now=later) == 0
    st = await account_state(rt, tenant, acc["id"])
    buckets = sorted((b for b in st["buckets"] if b["unit"] == "data"), key=lambda b: b["valid_from"] or 0)
    rolled = [b for b in buckets if b["source"] == "rollover"]
    assert [b["remaining"] for b in rolled] == [30 * MB, 30 * MB]
    assert datetime.fromtimestamp(rolled[0]["valid_from"], UTC) == service.add_months(start, 1)
    # housekeeping: a finished session's stored answers and released reservations go after the retention
    h = bearer(tenant, "system")
    number = "+33611112222"
    await client.post(OCS, headers=h, json=ccr("INITIAL_REQUEST", "h1", 0, number, groups=[group(1, 10)]))
    await client.post(OCS, headers=h, json=ccr("TERMINATION_REQUEST", "h1", 1, groups=[group(1, used=5)]))
    pool = await repo.charging_pool(rt.db)
    async with repo.tenant_transaction(pool, tenant) as conn:
        assert await repo.purge_finished(conn, 3600) == 0
        assert await repo.purge_finished(conn, -1) == 2 + 1 + 1  # 2 answers, 1 reservation, 1 session
    assert (await account_state(rt, tenant, acc["id"]))["usage"]["n"] == 1  # usage stays
    assert {t.name for t in charging_blueprint().tasks.values()} >= {"charging.release_expired"}
