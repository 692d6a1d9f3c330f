"""The demo: prepaid and postpaid subscribers with live balances and usage, from the demo catalog."""

from __future__ import annotations

from typing import Any

from tests.charging.helpers import TMF635, TMF654
from tests.conftest import bearer, make_tenant, session_services


async def test_seed_charging_on_the_demo_catalog(client: Any, rt: Any) -> None:
    from openbss.demo.catalog import seed_catalog
    from openbss.demo.charging import POSTPAID, PREPAID, seed_charging

    tenant = await make_tenant(rt, "ocs")
    await seed_catalog(session_services(), rt.db, tenant, "http://testserver")
    await seed_charging(session_services(), rt.db, tenant, "http://testserver")
    await seed_charging(session_services(), rt.db, tenant, "http://testserver")  # idempotent
    h = bearer(tenant, "admin")
    for msisdn in (PREPAID, POSTPAID):
        r = await client.get(f"{TMF654}/accumulatedBalance", params={"logicalResource.id": msisdn}, headers=h)
        balances = {a["totalBalance"]["units"]: a["totalBalance"]["amount"] for a in r.json()}
        assert set(balances) >= {"EUR", "B", "second"}, balances
    usage = (await client.get(f"{TMF635}/usage", params={"limit": 1000}, headers=h)).json()
    # the prepaid line's monthly bundle, taken from its money at activation
    fees = [u for u in usage if u["usageType"] == "fee"]
    assert [u["ratedProductUsage"][0]["taxExcludedRatingAmount"]["value"] for u in fees] == [9.99]
    usage = [u for u in usage if u["usageType"] != "fee"]
    # per subscriber, last month and this month: data update + terminate, 3 calls, 3 SMS
    assert len(usage) == 2 * 2 * (2 + 3 + 3)
    months = {u["usageDate"][:7] for u in usage}
    assert len(months) == 2  # the usage date is the event's time (Event-Timestamp), not the rating time
    called = {c["value"] for u in usage for c in u["usageCharacteristic"] if c["name"] == "calledParty"}
    apns = {c["value"] for u in usage for c in u["usageCharacteristic"] if c["name"] == "apn"}
    assert "+447700900123" in called and apns == {"internet.demo"}
    zones = {c["value"] for u in usage for c in u["usageCharacteristic"] if c["name"] == "destinationZone"}
    assert {"FR-FIX", "GB"} <= zones
    roaming = [u for u in usage if any(c["name"] == "roamingZone" for c in u["usageCharacteristic"])]
    assert roaming
    for u in roaming:  # charged, unless an allowance paid it (the prepaid line's night and weekend minutes)
        chars = {c["name"]: c["value"] for c in u["usageCharacteristic"]}
        amount = u["ratedProductUsage"][0]["taxExcludedRatingAmount"]["value"]
        assert amount > 0 or (chars["allowanceQuantity"] == chars["quantity"]
                                and chars["timeBand"] in ("offPeak", "weekend")), u
    assert any(u["ratedProductUsage"][0]["taxExcludedRatingAmount"]["value"] > 0 for u in roaming)
    buckets = (await client.get(f"{TMF654}/bucket", params={"usageType": "data"}, headers=h)).json()
    assert any(b["reservedValue"]["amount"] > 0 for b in buckets)  # the live data session


async def test_demo_tariffs_use_blocks_several_buckets_and_a_time_band(client: Any, rt: Any) -> None:
    from openbss.demo.catalog import seed_catalog
    from openbss.demo.charging import PREPAID, seed_charging

    tenant = await make_tenant(rt, "ocsfeat")
    await seed_catalog(session_services(), rt.db, tenant, "http://testserver")
    await seed_charging(session_services(), rt.db, tenant, "http://testserver")
    h = bearer(tenant, "admin")
    buckets = (await client.get(f"{TMF654}/bucket", params={"logicalResource.id": PREPAID[1:], "limit": 100},
                                headers=h)).json()
    money = {b["name"] for b in buckets if b["usageType"] == "monetary"}
    assert {"Welcome credit", "National calls bonus"} <= money and len(money) == 3
    night = next(b for b in buckets if b["name"] == "Night and weekend minutes")
    assert night["usageRestriction"] == {"timeBand": ["offPeak", "weekend"]}
    # the welcome credit paid first: the prepaid line's traffic used it up before the main balance
    welcome = next(b for b in buckets if b["name"] == "Welcome credit")
    assert welcome["remainingValue"]["amount"] < 2
    prices = (await client.get("/tmf-api/productCatalogManagement/v4/productOfferingPrice",
                               params={"name": "Prepaid S data"}, headers=h)).json()
    assert prices[0]["ratingBlock"]["subsequent"] == {"amount": 10, "units": "KB"}
    # a tariff with tiers of their own increments: business calls by the minute for 3 minutes, then by the second
    from openbss.charging import service
    from openbss.charging.sessions import Ledger

    r = await client.get("/tmf-api/productCatalogManagement/v4/productOffering",
                         params={"name": "Business mobile line"}, headers=h)
    async with rt.db.transaction(tenant) as session:
        ctx = service.system_context(session, tenant, "http://testserver")
        voice = (await session_services().charging.service.compile_plan(ctx, r.json()[0]["id"]))["voice"]
    assert voice["incrementTiers"] == [[0, 180, 60], [180, None, 1]]
    ledger = Ledger.load({"quota_validity_seconds": 300, "low_balance_minor": 0}, [
        {"id": "m", "unit": "money", "remaining": 0, "reserved": 0, "initial": 0, "lower_limit": -10**6,
         "valid_from": None, "valid_to": None, "priority": 1000, "zones": None, "threshold_level": 0,
         "source": "main"}], [], 0.0)
    res = ledger.open_reservation(1, 1, "voice", {**voice, "productId": None})
    # 70 s: two started minutes (0.40); 195 s in all: 3 minutes and 15 s at 0.10/min (0.625 -> 0.63)
    assert [ledger.debit(res, n).amount_minor for n in (70, 125)] == [40, 23]
