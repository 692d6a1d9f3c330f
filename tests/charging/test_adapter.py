"""The account at activation (what order-to-activate's OCS adapter calls): opened from a catalog offering,
suspended (every request denied with 4010), resumed, re-rated with another offering."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.charging.helpers import OCS, ccr, group
from tests.conftest import bearer, make_tenant, session_services


async def test_account_lifecycle_from_the_catalog(client: Any, rt: Any) -> None:
    from openbss.charging import service
    from openbss.demo.catalog import seed_catalog

    tenant = await make_tenant(rt, "ad")
    await seed_catalog(session_services(), rt.db, tenant, "http://testserver")
    async with rt.db.transaction(tenant) as session:
        ctx = service.system_context(session, tenant, "http://testserver")
        offerings, _ = await session_services().catalog.service.orderable_offerings(ctx, limit=100)
        by_name = {o["name"]: o["id"] for o in offerings}
        assert await session_services().charging.service.payment_type_of(ctx, by_name["Prepaid S"]) == "prepaid"
        assert await session_services().charging.service.payment_type_of(ctx, by_name["Mobile M"]) == "postpaid"
        charging = session_services().charging.service
        account = await charging.open_account(ctx, subscriber="+33699000001", payment_type="prepaid",
                                             offering_id=by_name["Prepaid S"], initial_balance=Decimal("20.00"))
        assert {b["unit"] for b in account["buckets"]} == {"money", "data", "voice", "sms"}
        assert set(account["plan"]) == {"data", "voice", "sms", "fees"}
        assert account["balance"] == Decimal("10.01")  # the 9.99 bundle of the first period, from the balance
    h = bearer(tenant, "system")
    body = ccr("INITIAL_REQUEST", "a1", 0, "+33699000001", context="32251@3gpp.org",
               groups=[group(1, 1000, key="totalOctets")])
    assert (await client.post(OCS, json=body, headers=h)).json()["resultCode"] == 2001  # 10 GB allowance
    async with rt.db.transaction(tenant) as session:
        await service.set_status(service.system_context(session, tenant, ""), account["id"], "suspended")
    r = await client.post(OCS, json={**body, "sessionId": "a2"}, headers=h)
    assert r.json()["resultCode"] == 4010
    async with rt.db.transaction(tenant) as session:
        ctx = service.system_context(session, tenant, "")
        await service.set_status(ctx, account["id"], "active")
        await session_services().charging.service.change_offering(ctx, account["id"], by_name["Mobile M"])
        assert (await service.get_account(ctx, account["id"]))["offering_id"] == by_name["Mobile M"]
    assert (await client.post(OCS, json={**body, "sessionId": "a3"}, headers=h)).json()["resultCode"] == 2001
