"""Revenue assurance of a period: rated usage against billed usage (counts and amounts), unbilled usage, products
never charged — through the API and the CLI."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from typer.testing import CliRunner

from openbss.cli import app as cli
from tests.billing.helpers import billing_account, postpaid_line, recurring, run, sell, usage

RA = "/billing/v1/revenueAssurance"


async def test_rated_billed_and_unbilled_usage_and_products_never_charged(client: Any, rt: Any, tenant: str,
                                                                          admin_headers: dict[str, str]) -> None:
    account = await billing_account(client, admin_headers)
    product = await sell(rt, tenant, account, "2027-02-28T23:00:00.000Z", [recurring("10.00")])
    line = await postpaid_line(rt, tenant, account, product["id"], "33600000002")
    await usage(rt, tenant, line, datetime(2027, 3, 5, tzinfo=UTC), 150)  # 1.50, billed on 1 April
    await usage(rt, tenant, line, datetime(2027, 3, 9, tzinfo=UTC), 250, usage_type="sms", units=1)  # 2.50 too
    await run(rt, tenant, date(2027, 4, 1), finalize=True)
    await usage(rt, tenant, line, datetime(2027, 3, 20, tzinfo=UTC), 75)  # late: not billed yet
    other = await billing_account(client, admin_headers)  # sold, never billed: no run covered it since
    forgotten = await sell(rt, tenant, other, "2027-03-10T00:00:00.000Z", [recurring("5.00")])
    await sell(rt, tenant, other, "2027-03-10T00:00:00.000Z", [recurring("0")])  # free: nothing to charge

    r = await client.get(RA, headers=admin_headers, params={"from": "2027-03-01", "to": "2027-04-01"})
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["usage"] == [
        {"usageType": "sms", "currency": "EUR", "ratedCount": 1, "ratedAmount": 2.5, "billedCount": 1,
         "billedAmount": 2.5, "unbilledCount": 0, "unbilledAmount": 0},
        {"usageType": "voice", "currency": "EUR", "ratedCount": 2, "ratedAmount": 2.25, "billedCount": 1,
         "billedAmount": 1.5, "unbilledCount": 1, "unbilledAmount": 0.75}]
    assert report["unbilledUsageCount"] == 1
    assert report["unbilledUsage"][0]["amount"] == {"unit": "EUR", "value": 0.75}
    assert [p["id"] for p in report["productsNeverCharged"]] == [forgotten["id"]]
    assert sum(Decimal(str(x["amount"])) for x in report["usageLinesBilled"]) == Decimal("4.00")

    r = await client.get(RA, headers=admin_headers, params={"from": "2027-04-01", "to": "2027-03-01"})
    assert r.status_code == 400 and "'to' (2027-03-01) must be after 'from'" in r.json()["message"]
    r = await client.get(RA, headers=admin_headers, params={"from": "March"})
    assert r.status_code == 400 and "'from' and 'to' are dates" in r.json()["message"]

    result = await asyncio.to_thread(CliRunner().invoke, cli, ["billing", "assurance", "--tenant", tenant,
                                                               "--from", "2027-03-01", "--to", "2027-04-01"])
    out = " ".join(result.output.split())
    assert result.exit_code == 0, out
    assert "voice │ EUR │ 2 │ 2.25 │ 1 │ 1.50 │ 1 │ 0.75" in out, out
    assert "unbilled usage records: 1" in out and "products never charged: 1" in out, out
