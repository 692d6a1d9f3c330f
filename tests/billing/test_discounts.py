"""A fixed-amount discount (a coupon) of a product allocated across its charges pro rata before tax, against
PostgreSQL: the pieces add up exactly, each line is taxed on its discounted amount."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from tests.billing.helpers import billing_account, in_tenant, one_time, recurring, run, sell, terminate

D = Decimal


async def test_a_coupon_is_allocated_pro_rata_before_tax(client: Any, rt: Any, tenant: str,
                                                         admin_headers: dict[str, str]) -> None:
    r = await client.post("/tmf-api/productCatalogManagement/v4/productOfferingPrice", headers=admin_headers, json={
        "name": "Welcome coupon", "priceType": "discount", "price": {"unit": "EUR", "value": 5},
        "applicationDuration": {"amount": 2, "units": "month"}})
    assert r.status_code == 201, r.text
    coupon = {"name": "Welcome coupon", "priceType": "discount",
              "price": {"dutyFreeAmount": {"unit": "EUR", "value": "-5.00"}},
              "productOfferingPrice": {"id": r.json()["id"], "name": "Welcome coupon"}}
    account = await billing_account(client, admin_headers)
    await sell(rt, tenant, account, "2027-02-28T23:00:00.000Z", [recurring("29.99"), one_time("10.00"), coupon])
    for month in (3, 4, 5):
        assert (await run(rt, tenant, date(2027, month, 1), finalize=True)).billed == 1
    rows = await in_tenant(rt, tenant, "SELECT bill_date, total, body FROM billing_customer_bill "
                                       "WHERE billing_account_id = :a ORDER BY bill_date", a=account["id"])
    lines = await in_tenant(rt, tenant, "SELECT period_start, amount, body FROM billing_applied_rate "
                                        "WHERE billing_account_id = :a AND charge_key LIKE 'discount|%' "
                                        "ORDER BY period_start, amount", a=account["id"])
    # March: 5.00 over 29.99 and 10.00 → 3.75 and 1.25; April: all 5.00 on 29.99; May: the coupon has expired
    assert [(ln[0], ln[1]) for ln in lines] == [(date(2027, 3, 1), D("-3.75")), (date(2027, 3, 1), D("-1.25")),
                                               (date(2027, 4, 1), D("-5.00"))]
    assert lines[0][2]["taxIncludedAmount"]["value"] == D("-4.5")  # taxed like the line it reduces: −0.75
    # March: 29.99 + 6.00 tax, 10.00 + 2.00, −3.75 − 0.75, −1.25 − 0.25 (tax per line): 41.99
    assert [(r[0], r[1]) for r in rows] == [(date(2027, 3, 1), D("41.99")), (date(2027, 4, 1), D("29.99")),
                                           (date(2027, 5, 1), D("35.99"))]


async def _coupon(client: Any, h: dict[str, str], value: str, months: int) -> dict[str, Any]:
    r = await client.post("/tmf-api/productCatalogManagement/v4/productOfferingPrice", headers=h, json={
        "name": "Welcome coupon", "priceType": "discount", "price": {"unit": "EUR", "value": float(value)},
        "applicationDuration": {"amount": months, "units": "month"}})
    assert r.status_code == 201, r.text
    return {"name": "Welcome coupon", "priceType": "discount",
            "price": {"dutyFreeAmount": {"unit": "EUR", "value": f"-{value}"}},
            "productOfferingPrice": {"id": r.json()["id"], "name": "Welcome coupon"}}


@pytest.mark.parametrize(("coupon", "credit"), [("31.00", None), ("10.00", D("-20.00")), (None, D("-30.00"))])
async def test_a_cancellation_credits_the_unused_part_of_what_was_paid_after_a_coupon(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str], coupon: str | None,
        credit: Decimal | None) -> None:
    """31.00 a month billed in advance, cancelled after one day of March: the credit is what the customer paid for
    March less what the day used costs — nothing after a "first month free" coupon (it credited 30.00 of a month
    never paid), 21.00 − 1.00 after a 10.00 coupon, 31.00 − 1.00 without one."""
    account = await billing_account(client, admin_headers, tz="UTC")
    prices = [recurring("31.00", rate="0")] + ([await _coupon(client, admin_headers, coupon, 1)] if coupon else [])
    product = await sell(rt, tenant, account, "2027-03-01T00:00:00.000Z", prices)
    await run(rt, tenant, date(2027, 3, 1), finalize=True)
    await terminate(rt, tenant, product["id"], "2027-03-02T00:00:00.000Z")
    await run(rt, tenant, date(2027, 4, 1), finalize=True)
    credits = await in_tenant(rt, tenant, "SELECT amount FROM billing_applied_rate WHERE billing_account_id = :a "
                                          "AND charge_key LIKE 'credit|%'", a=account["id"])
    assert [c[0] for c in credits] == ([credit] if credit is not None else [])
    bills = await in_tenant(rt, tenant, "SELECT total FROM billing_customer_bill WHERE billing_account_id = :a "
                                        "ORDER BY bill_date", a=account["id"])
    paid = D(31) - D(coupon or 0)
    assert bills[0][0] == paid and -(credit or 0) <= paid  # never more credit than was paid
