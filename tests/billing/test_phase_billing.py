"""Price phases and fixed terms billed from the catalog, against PostgreSQL."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from tests.billing.helpers import billing_account, in_tenant, recurring, run, sell, terminate

TMF620 = "/tmf-api/productCatalogManagement/v4/productOfferingPrice"


async def price(client: Any, h: dict[str, str], **extra: Any) -> str:
    r = await client.post(TMF620, headers=h, json={
        "name": "Plan", "priceType": "recurring", "price": {"unit": "EUR", "value": "30.00"},
        "recurringChargePeriodType": "month", **extra})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def lines(rt: Any, tenant: str, account_id: str) -> list[tuple[date, date, Decimal, Any]]:
    rows = await in_tenant(rt, tenant, "SELECT period_start, period_end, amount, body FROM billing_applied_rate "
                                       "WHERE billing_account_id = :a ORDER BY period_start, amount", a=account_id)
    return [(r[0], r[1], r[2], r[3]["name"]) for r in rows]


async def test_a_trial_then_a_discount_then_a_cancellation_credit(client: Any, rt: Any, tenant: str,
                                                                   admin_headers: dict[str, str]) -> None:
    pop = await price(client, admin_headers, pricePhase=[
        {"name": "Trial", "duration": {"amount": 14, "units": "day"}, "price": 0},
        {"name": "Welcome", "duration": {"amount": 1, "units": "month"}, "discountPercentage": 50}])
    account = await billing_account(client, admin_headers)
    product = await sell(rt, tenant, account, "2028-02-19T23:00:00.000Z",  # 20 February 2028 in Paris
                         [recurring("30.00", rate="0", name="Plan", price_id=pop)])
    assert (await run(rt, tenant, date(2028, 3, 1), finalize=True)).billed == 1
    assert await lines(rt, tenant, account["id"]) == [
        (date(2028, 2, 20), date(2028, 3, 1), Decimal("0.00"), "Plan (Trial)"),
        (date(2028, 3, 1), date(2028, 3, 5), Decimal("0.00"), "Plan (Trial)"),
        (date(2028, 3, 5), date(2028, 4, 1), Decimal("13.06"), "Plan (Welcome)")]  # 15.00 × 27/31
    await terminate(rt, tenant, product["id"], "2028-03-19T23:00:00.000Z")  # cancelled on 20 March
    assert (await run(rt, tenant, date(2028, 4, 1), finalize=True)).billed == 1
    got = await lines(rt, tenant, account["id"])
    # used 5–20 March at the Welcome price: 15.00 × 15/31 = 7.26; credited 13.06 − 7.26
    assert [g for g in got if g[3] == "Credit: Plan"] == [
        (date(2028, 3, 5), date(2028, 4, 1), Decimal("-5.80"), "Credit: Plan")]
    assert len(got) == 4


async def test_a_fixed_term_stops_charging_after_its_periods(client: Any, rt: Any, tenant: str,
                                                              admin_headers: dict[str, str]) -> None:
    pop = await price(client, admin_headers, fixedTermPeriods=2)
    account = await billing_account(client, admin_headers)
    await sell(rt, tenant, account, "2027-01-30T23:00:00.000Z",  # 31 January 2027 in Paris
               [recurring("31.00", rate="0", name="Plan", price_id=pop)])
    for month in (2, 3, 4, 5):
        await run(rt, tenant, date(2027, month, 1), finalize=True)
    # two months from 31 January: to 31 March (1 day of January, February, 30 days of March), then nothing
    assert [(s, e, a) for s, e, a, _ in await lines(rt, tenant, account["id"])] == [
        (date(2027, 1, 31), date(2027, 2, 1), Decimal("1.00")),
        (date(2027, 2, 1), date(2027, 3, 1), Decimal("31.00")),
        (date(2027, 3, 1), date(2027, 3, 31), Decimal("30.00"))]


async def test_bad_phases_are_refused_by_the_catalog(client: Any, admin_headers: dict[str, str]) -> None:
    r = await client.post(TMF620, headers=admin_headers, json={
        "name": "Plan", "priceType": "recurring", "price": {"unit": "EUR", "value": "30.00"},
        "pricePhase": [{"name": "Trial", "duration": {"amount": 14, "units": "day"}}]})
    assert r.status_code == 400 and "'pricePhase[0]': give either a price or a discountPercentage" in r.text, r.text
    r = await client.post(TMF620, headers=admin_headers, json={
        "name": "Fee", "priceType": "oneTime", "price": {"unit": "EUR", "value": "30.00"}, "fixedTermPeriods": 3})
    assert r.status_code == 400 and "'fixedTermPeriods' applies only to recurring prices" in r.text, r.text
