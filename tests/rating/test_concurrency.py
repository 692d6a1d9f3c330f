"""Two raters on the same records at once (the same file delivered twice under two names, processed in
parallel): every record is rated once and the allowance is consumed once."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import text

from openbss.rating.specifications import default_specifications
from tests.charging.helpers import open_account
from tests.rating.helpers import MB, at, csv_file, ingest, rec, reconciles, usage_of


async def test_parallel_deliveries_rate_each_record_once(rt: Any, tenant: str) -> None:
    acc = await open_account(rt, tenant, payment_type="postpaid", balance="0", data_allowance_mb=10)
    data = csv_file(rec(f"s{i}", acc["msisdn"], at(3, i), quantity=MB) for i in range(12))
    reports = await asyncio.gather(*(ingest(rt, tenant, f"copy-{n}.csv", data) for n in range(4)))
    assert all(reconciles(r) for r in reports)
    assert sum(r["rated"] for r in reports) == 12 and sum(r["duplicate"] for r in reports) == 36
    usage = await usage_of(rt, tenant, acc["id"])
    assert len(usage) == 12
    assert sum(u["_allowance"] for u in usage) == 10 * MB  # the 10 MB allowance, once
    assert sum(u["_minor"] for u in usage) == 2  # the 2 MB beyond it, at 0.01 EUR/MB
    async with rt.db.transaction(tenant) as session:  # the tenant's first files: its specifications made once
        names = (await session.execute(text("SELECT body->>'name' FROM rating_usage_specification"))).scalars().all()
    assert sorted(names) == sorted(s["name"] for s in default_specifications())
