"""Usage priced per period with the catalog's charge model, against PostgreSQL: a graduated price with a minimum
spend; usage arriving late is billed by difference, so a period billed over two runs totals one run at its end."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from tests.billing.helpers import billing_account, in_tenant, postpaid_line, run, sell, usage

MB = 1024 * 1024


async def modelled_lines(rt: Any, tenant: str, account_id: str) -> list[tuple[str, date, Decimal]]:
    rows = await in_tenant(rt, tenant, "SELECT charge_key, period_start, amount FROM billing_applied_rate "
                                       "WHERE billing_account_id = :a ORDER BY charge_key", a=account_id)
    return [(r[0].split("|")[0] + "|" + r[0].split("|")[-1], r[1], r[2]) for r in rows]


async def test_graduated_usage_with_minimum_spend_billed_over_two_runs(client: Any, rt: Any, tenant: str,
                                                                       admin_headers: dict[str, str]) -> None:
    r = await client.post("/tmf-api/productCatalogManagement/v4/productOfferingPrice", headers=admin_headers, json={
        "name": "Data", "priceType": "usage", "usageType": "data", "price": {"unit": "EUR", "value": "0.10"},
        "unitOfMeasure": {"amount": 1, "units": "MB"},
        "chargeModel": {"model": "graduated", "minimumSpend": 20, "tiers": [
            {"fromQuantity": 0, "toQuantity": 100, "unitPrice": "0.10"},
            {"fromQuantity": 100, "unitPrice": "0.05"}]}})
    assert r.status_code == 201, r.text
    assert r.json()["@type"] == "OpenBSSProductOfferingPrice"
    price = r.json()
    account = await billing_account(client, admin_headers)
    product = await sell(rt, tenant, account, "2026-12-31T23:00:00.000Z", [
        {"name": "Data", "priceType": "usage", "productOfferingPrice": {"id": price["id"], "name": "Data"}}])
    line = await postpaid_line(rt, tenant, account, product["id"], "33600000001")
    # charging rated the record at its own figure (999.99): billing prices the period with the model instead
    await usage(rt, tenant, line, datetime(2027, 1, 10, 12, tzinfo=UTC), 99999, units=60 * MB, usage_type="data")

    first = await run(rt, tenant, date(2027, 2, 1), finalize=True)
    assert (first.billed, first.failed) == (1, {})
    # January: 60 MB × 0.10 = 6.00, under the 20.00 minimum: a true-up of 14.00
    assert await modelled_lines(rt, tenant, account["id"]) == [
        ("minimumSpend|2027-02-01", date(2027, 1, 1), Decimal("14.00")),
        ("usageModel|2027-02-01", date(2027, 1, 1), Decimal("6.00"))]

    # 80 MB of January arrive late; 10 MB used in February
    await usage(rt, tenant, line, datetime(2027, 1, 20, 12, tzinfo=UTC), 1, units=80 * MB, usage_type="data")
    await usage(rt, tenant, line, datetime(2027, 2, 5, 12, tzinfo=UTC), 1, units=10 * MB, usage_type="data")
    second = await run(rt, tenant, date(2027, 3, 1), finalize=True)
    assert (second.billed, second.failed) == (1, {})
    # January now: 100 × 0.10 + 40 × 0.05 = 12.00 (6.00 more), true-up 8.00 (6.00 less); February: 1.00 + 19.00
    got = await modelled_lines(rt, tenant, account["id"])
    assert got == [
        ("minimumSpend|2027-02-01", date(2027, 1, 1), Decimal("14.00")),
        ("minimumSpend|2027-03-01", date(2027, 1, 1), Decimal("-6.00")),
        ("minimumSpend|2027-03-01", date(2027, 2, 1), Decimal("19.00")),
        ("usageModel|2027-02-01", date(2027, 1, 1), Decimal("6.00")),
        ("usageModel|2027-03-01", date(2027, 1, 1), Decimal("6.00")),
        ("usageModel|2027-03-01", date(2027, 2, 1), Decimal("1.00"))]
    january = sum(a for _, start, a in got if start == date(2027, 1, 1))
    assert january == Decimal("20.00")  # what one run at the period's end bills: max(12.00, 20.00)
    [[billed_records]] = await in_tenant(rt, tenant, "SELECT count(*) FROM billing_usage_item")
    assert billed_records == 3  # each record on exactly one line

    again = await run(rt, tenant, date(2027, 3, 1), finalize=True)
    assert (again.billed, again.skipped) == (0, 1)
    assert len(await modelled_lines(rt, tenant, account["id"])) == 6
