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


async def test_balance_events_and_audit_carry_no_msisdn(client: Any, rt: Any, tenant: str) -> None:
    """The subscriber's and the receiver's MSISDN are personal data: a balance action's events (outbox, backbone,
    hub) leave them out, the audit trail masks them; the action itself still shows them to who may read it."""
    h = bearer(tenant, "system")
    acc = await open_account(rt, tenant, balance="10.00", data_allowance_mb=10)
    other = await open_account(rt, tenant, balance="1.00")
    money = next(b for b in acc["buckets"] if b["unit"] == "money")
    other_money = next(b for b in other["buckets"] if b["unit"] == "money")
    r = await client.post(f"{TMF654}/transferBalance", headers=h, json={
        "amount": {"amount": 2, "units": "EUR"}, "usageType": "monetary", "bucket": {"id": money["id"]},
        "receiverBucket": {"id": other_money["id"]}, "receiverBucketUsageType": "monetary", "reason": "gift",
        "channel": {"id": "app"},
        "logicalResource": [{"id": acc["msisdn"]}], "receiverLogicalResource": {"id": other["msisdn"]}})
    assert r.status_code == 201, r.text
    transfer = r.json()
    assert transfer["logicalResource"] == [{"id": acc["msisdn"]}]  # the resource itself keeps them
    # and a threshold: 80 % of the data allowance
    await client.post(OCS, headers=h, json=ccr("EVENT_REQUEST", "d1", 0, acc["msisdn"], context=DATA,
                                               requestedAction="DIRECT_DEBITING",
                                               groups=[group(1, 9 * MB, key="totalOctets")]))
    got = await events(rt, tenant)
    assert {e["eventType"] for e in got} >= {"TransferBalanceCreateEvent", "BucketThresholdEvent"}, got
    for envelope in got:
        text = str(envelope)
        for number in (acc["msisdn"], other["msisdn"]):
            digits = number.lstrip("+")
            text = text.replace(f"party-{digits}", "party-id")  # the test accounts' party ids are made of them
            assert number not in text and digits not in text, envelope
    created = next(e for e in got if e["eventType"] == "TransferBalanceCreateEvent")["event"]["transferBalance"]
    assert created["id"] == transfer["id"] and created["href"] == transfer["href"]
    assert "logicalResource" not in created and created["receiverLogicalResource"] == {}  # emptied object
    r = await client.get("/audit/v1/auditRecord", params={"resourceType": "TransferBalance",
                                                          "resourceId": transfer["id"]}, headers=bearer(tenant))
    changes = r.json()[0]["changes"]
    assert changes["logicalResource"] == {"old": None, "new": "***"}
    assert changes["receiverLogicalResource"] == {"old": None, "new": "***"}
