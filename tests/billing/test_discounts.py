"""A fixed-amount discount (a coupon) of a product allocated across its charges pro rata before tax, against
PostgreSQL: the pieces add up exactly, each line is taxed on its discounted amount."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from tests.billing.helpers import billing_account, in_tenant, one_time, recurring, run, sell

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
