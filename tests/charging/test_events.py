"""Threshold notifications: 80 % and 100 % of an allowance, low money balance — in the outbox (the bus) and
delivered to TMF654 hub subscribers."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select

from openbss.platform.events.outbox import OutboxEvent
from openbss.platform.tmf.hub import HubDelivery, HubSubscription
from tests.charging.helpers import DATA, MB, OCS, SMS, TMF654, ccr, group, open_account
from tests.conftest import bearer


async def events(rt: Any, tenant: str) -> list[dict[str, Any]]:
    async with rt.db.transaction(tenant) as session:
        rows = (await session.execute(select(OutboxEvent).where(OutboxEvent.api == "prepayBalanceManagement")
                                      .order_by(OutboxEvent.id))).scalars().all()
        return [dict(r.envelope) for r in rows]


async def test_allowance_thresholds_and_low_balance(client: Any, rt: Any, tenant: str, relay: Any) -> None:
    h = bearer(tenant, "system")
    r = await client.post(f"{TMF654}/hub", headers=bearer(tenant, "admin"),
                          json={"callback": "http://127.0.0.1:9/cb", "query": "eventType=BucketThresholdEvent"})
    assert r.status_code == 201, r.text
    acc = await open_account(rt, tenant, balance="0.30", data_allowance_mb=10, low_balance="0.15")
    await client.post(OCS, headers=h, json=ccr("INITIAL_REQUEST", "t1", 0, acc["msisdn"], context=DATA,
                                               groups=[group(1, 5 * MB, key="totalOctets")]))
    await client.post(OCS, headers=h, json=ccr("UPDATE_REQUEST", "t1", 1, context=DATA,
                                               groups=[group(1, 5 * MB, used=5 * MB, key="totalOctets")]))
    assert await events(rt, tenant) == []  # 50 %: nothing
    await client.post(OCS, headers=h, json=ccr("UPDATE_REQUEST", "t1", 2, context=DATA,
                                               groups=[group(1, 5 * MB, used=3 * MB, key="totalOctets")]))
    got = await events(rt, tenant)
    assert [e["eventType"] for e in got] == ["BucketThresholdEvent"]
    assert got[0]["event"]["bucket"]["threshold"]["percentage"] == 80
    await client.post(OCS, headers=h, json=ccr("TERMINATION_REQUEST", "t1", 3, context=DATA,
                                               groups=[group(1, used=2 * MB, key="totalOctets")]))
    got = await events(rt, tenant)
    assert [e["event"]["bucket"].get("threshold", {}).get("percentage") for e in got] == [80, 100]
    # money: 0.30 -> 0.10 crosses the low-balance threshold of 0.15 once
    for i in range(3):
        await client.post(OCS, headers=h, json=ccr("EVENT_REQUEST", f"sms{i}", 0, acc["msisdn"], context=SMS,
                                                   groups=[group(1, 1, key="serviceSpecificUnits")]))
    got = await events(rt, tenant)
    assert [e["eventType"] for e in got] == ["BucketThresholdEvent"] * 2 + ["BucketLowBalanceEvent"]
    assert got[-1]["event"]["bucket"]["remainingValue"] == {"amount": Decimal("0.1"), "units": "EUR"}
    # delivered to the hub subscriber (threshold events only, by its query)
    await relay()
    async with rt.db.transaction(tenant) as session:
        rows = (await session.execute(select(HubDelivery))).scalars().all()
        assert sorted(d.event_type for d in rows) == ["BucketThresholdEvent"] * 2
        assert all(d.url == "http://127.0.0.1:9/cb/listener/bucketThresholdEvent" for d in rows)
        await session.execute(delete(HubSubscription))
