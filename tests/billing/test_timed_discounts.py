"""A percentage discount sold with a limited duration ("50 % off for 2 months": an order item's price alteration
with ``applicationDuration``) reduces the recurring charge for that time from the product's start, not for ever: a
charge period cut by the end of the discount is prorated in two parts, as at a price phase boundary."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from tests.billing.helpers import billing_account, in_tenant, recurring, run, sell

D = Decimal


def discounted(value: str, off: str, months: int | None, *, pct: str = "50") -> dict[str, Any]:
    """A recurring price as an order records it, with the discount the order priced (ordering/pricing.py)."""
    price = recurring(value, rate="0")
    alteration: dict[str, Any] = {
        "name": f"{pct} % off", "priceType": "recurring", "priority": 1, "recurringChargePeriod": "month",
        "price": {"percentage": float(pct), "dutyFreeAmount": {"unit": "EUR", "value": f"-{off}"},
                  "taxIncludedAmount": {"unit": "EUR", "value": f"-{off}"}, "taxRate": "0"},
        "productOfferingPrice": {"id": "pop-discount", "name": f"{pct} % off"}}
    if months is not None:
        alteration["applicationDuration"] = months
        alteration["unitOfMeasure"] = "month"
    price["productPriceAlteration"] = [alteration]
    return price


async def _charges(rt: Any, tenant: str, account: dict[str, Any]) -> list[tuple[date, date, Decimal]]:
    rows = await in_tenant(rt, tenant, "SELECT period_start, period_end, amount FROM billing_applied_rate "
                                       "WHERE billing_account_id = :a AND charge_key LIKE 'recurring|%' "
                                       "ORDER BY period_start", a=account["id"])
    return [(r[0], r[1], r[2]) for r in rows]


async def test_a_discount_for_two_months_ends_after_two_months(client: Any, rt: Any, tenant: str,
                                                               admin_headers: dict[str, str]) -> None:
    account = await billing_account(client, admin_headers)
    await sell(rt, tenant, account, "2027-02-28T23:00:00.000Z", [discounted("30.00", "15.00", 2)])  # 1 March, Paris
    for month in (3, 4, 5, 6):
        await run(rt, tenant, date(2027, month, 1), finalize=True)
    assert [c[2] for c in await _charges(rt, tenant, account)] == [D("15.00"), D("15.00"), D("30.00"), D("30.00")]


async def test_a_discount_without_duration_lasts(client: Any, rt: Any, tenant: str,
                                                 admin_headers: dict[str, str]) -> None:
    account = await billing_account(client, admin_headers)
    await sell(rt, tenant, account, "2027-02-28T23:00:00.000Z", [discounted("30.00", "15.00", None)])
    for month in (3, 4, 5):
        await run(rt, tenant, date(2027, month, 1), finalize=True)
    assert [c[2] for c in await _charges(rt, tenant, account)] == [D("15.00")] * 3


async def test_a_discount_ending_within_a_period_is_prorated_at_its_end(client: Any, rt: Any, tenant: str,
                                                                        admin_headers: dict[str, str]) -> None:
    """Sold on 16 March (bills on the 1st): 2 months off end on 16 May. March 16–April 1: 16/31 of 15.00 = 7.74;
    April: 15.00; May 1–16 at 15.00: 15/31 × 15.00 = 7.26, May 16–June 1 at 30.00: 16/31 × 30.00 = 15.48; June:
    30.00."""
    account = await billing_account(client, admin_headers)
    await sell(rt, tenant, account, "2027-03-15T23:00:00.000Z", [discounted("30.00", "15.00", 2)])
    for month in (4, 5, 6):
        await run(rt, tenant, date(2027, month, 1), finalize=True)
    assert await _charges(rt, tenant, account) == [
        (date(2027, 3, 16), date(2027, 4, 1), D("7.74")), (date(2027, 4, 1), date(2027, 5, 1), D("15.00")),
        (date(2027, 5, 1), date(2027, 5, 16), D("7.26")), (date(2027, 5, 16), date(2027, 6, 1), D("15.48")),
        (date(2027, 6, 1), date(2027, 7, 1), D("30.00"))]


async def test_a_cancellation_during_the_discount_credits_the_discounted_price(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    """15.00 billed for March (30.00, 50 % off for 2 months), cancelled on 17 March: 15 of 31 days unused are
    credited at the price paid, 15/31 × 15.00 = 7.26 (not 15/31 × 30.00 = 14.52)."""
    from tests.billing.helpers import terminate

    account = await billing_account(client, admin_headers)
    product = await sell(rt, tenant, account, "2027-02-28T23:00:00.000Z", [discounted("30.00", "15.00", 2)])
    await run(rt, tenant, date(2027, 3, 1), finalize=True)
    await terminate(rt, tenant, product["id"], "2027-03-16T23:00:00.000Z")
    await run(rt, tenant, date(2027, 4, 1), finalize=True)
    credits = await in_tenant(rt, tenant, "SELECT amount FROM billing_applied_rate WHERE billing_account_id = :a "
                                          "AND charge_key LIKE 'credit|%'", a=account["id"])
    assert [c[0] for c in credits] == [D("-7.26")]


async def test_a_bad_duration_parks_the_account_naming_it(client: Any, rt: Any, tenant: str,
                                                          admin_headers: dict[str, str]) -> None:
    account = await billing_account(client, admin_headers)
    price = discounted("30.00", "15.00", 2)
    price["productPriceAlteration"][0]["unitOfMeasure"] = "fortnight"
    await sell(rt, tenant, account, "2027-02-28T23:00:00.000Z", [price])
    result = await run(rt, tenant, date(2027, 3, 1), finalize=True)
    assert result.billed == 0 and list(result.failed) == [account["id"]]
    assert "'unitOfMeasure': 'fortnight' is not one of day, week, month, year" in result.failed[account["id"]]


async def test_a_discount_sold_with_an_upgrade_counts_from_the_upgrade(client: Any, rt: Any, tenant: str,
                                                                       admin_headers: dict[str, str]) -> None:
    """30.00 a month from 1 March, upgraded on 17 March to 60.00 with 50 % off for 1 month: the discount runs 17
    March – 17 April (not from the product's start, when it would have ended on 1 April). April's bill: March
    17–31 at 30.00 = 14.52 (less the credit of the old price), April 1–17 at 30.00 = 16.00, April 17–May 1 at
    60.00 = 28.00."""
    from tests.billing.test_changes import change

    account = await billing_account(client, admin_headers)
    product = await sell(rt, tenant, account, "2027-02-28T23:00:00.000Z", [recurring("30.00", rate="0")])
    await run(rt, tenant, date(2027, 3, 1), finalize=True)
    upgraded = discounted("60.00", "30.00", 1)
    upgraded["productOfferingPrice"] = {"id": "pop-premium", "name": "Premium"}
    r = await change(client, admin_headers, product["id"], "upgrade", "2027-03-17", productPrice=[upgraded])
    assert r.status_code == 201, r.text
    await run(rt, tenant, date(2027, 4, 1), finalize=True)
    rows = await in_tenant(rt, tenant, "SELECT period_start, period_end, amount FROM billing_applied_rate "
                                       "WHERE billing_account_id = :a AND charge_key LIKE 'recurring|%pop-premium%' "
                                       "ORDER BY period_start", a=account["id"])
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (date(2027, 3, 17), date(2027, 4, 1), D("14.52")), (date(2027, 4, 1), date(2027, 4, 17), D("16.00")),
        (date(2027, 4, 17), date(2027, 5, 1), D("28.00"))]
