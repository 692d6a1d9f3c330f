"""Finance reports against PostgreSQL: the receivables aging by customer segment, the reconciliation of the
gateway's settlements against the payments recorded, the revenue by month chart — JSON, CSV and SVG."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal
from typing import Any
from xml.etree import ElementTree

import pytest
from sqlalchemy import text

from tests.customer.helpers import billing_account_body, created, make_customer, make_individual
from tests.payments.helpers import PAY, card, issued_bill, method, pay
from tests.payments.test_periods import _posted

REPORT = "/payments/v1/report"


@pytest.fixture
def sandbox(services: Any) -> Any:
    gw = services.payments.gateway
    gw.timeouts = 0
    return gw


async def _sql(rt: Any, tenant: str, sql: str, payment_id: str) -> None:
    async with rt.db.transaction(tenant) as session:
        await session.execute(text(sql), {"p": payment_id})


async def _account(client: Any, h: dict[str, str], segment: str | None) -> dict[str, Any]:
    party = await make_individual(client, h)
    extra = {"characteristic": [{"name": "segment", "value": segment}]} if segment else {}
    customer = await make_customer(client, h, party, **extra)
    body = billing_account_body(customer, billCycle={"billingDay": 1, "frequency": "monthly", "timeZone": "UTC"})
    return await created(await client.post("/tmf-api/accountManagement/v4/billingAccount", json=body, headers=h))


async def test_the_aging_by_segment_splits_what_is_owed_by_the_customers_segment(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    for segment, value in (("sme", "100.00"), ("sme", "50.00"), ("corporate", "10.00"), (None, "20.00")):
        account = await _account(client, admin_headers, segment)
        _, bill = await issued_bill(client, rt, tenant, admin_headers, value, account=account, as_of=date(2027, 2, 1))
        await _posted(rt, tenant, bill)
    r = await client.get(f"{REPORT}/arAgingBySegment", params={"asOf": "2027-03-20"}, headers=admin_headers)
    assert r.status_code == 200, r.text
    rows = {row["segment"]: row for row in r.json()}
    assert set(rows) == {"sme", "corporate", "residential"}  # a customer without one is residential
    assert rows["sme"]["bills"] == 2 and Decimal(str(rows["sme"]["total"])) == Decimal("180.00")  # 150 + 20 % VAT
    assert Decimal(str(rows["sme"]["31-60"])) == Decimal("180.00")  # due 15 February: 33 days past due
    assert Decimal(str(rows["corporate"]["total"])) == Decimal("12.00")
    assert Decimal(str(rows["residential"]["total"])) == Decimal("24.00")
    text = (await client.get(f"{REPORT}/arAgingBySegment", params={"asOf": "2027-03-20", "format": "csv"},
                             headers=admin_headers)).text
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert {p["segment"] for p in parsed} == {"sme", "corporate", "residential"} and "90+" in parsed[0]


async def test_the_reconciliation_shows_what_the_gateway_settled_against_what_was_recorded(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str], sandbox: Any) -> None:
    account, bill = await issued_bill(client, rt, tenant, admin_headers)
    m = await method(client, admin_headers, card(account, token="tok_instant"))
    ok = (await pay(client, admin_headers, account, m["id"], "120.00", [bill["id"]])).json()
    extra = (await pay(client, admin_headers, account, m["id"], "5.00")).json()
    # the books disagree with the gateway: one payment's amount, one charge the gateway never settled
    await _sql(rt, tenant, "UPDATE payments_payment SET amount = 6.00 WHERE id = :p", extra["id"])
    sandbox.charges.pop(extra["id"])
    today = date.today().isoformat()
    r = await client.get(f"{REPORT}/gatewayReconciliation", params={"asOf": today, "start": today},
                         headers=admin_headers)
    assert r.status_code == 200, r.text
    rows = {row["payment"]: row for row in r.json()}
    assert rows[ok["id"]]["status"] == "matched" and rows[ok["id"]]["gatewayAmount"] == 120
    assert rows[extra["id"]]["status"] == "notSettled" and rows[extra["id"]]["gatewayAmount"] is None
    assert r.json()[-1]["status"] == "matched"  # the differences first
    # a charge the gateway settled that is not recorded as succeeded here
    await _sql(rt, tenant, "UPDATE payments_payment SET state = 'failed' WHERE id = :p", ok["id"])
    rows = {row["payment"]: row for row in (await client.get(
        f"{REPORT}/gatewayReconciliation", params={"asOf": today, "start": today}, headers=admin_headers)).json()}
    assert rows[ok["id"]]["status"] == "notRecorded"
    other = await client.get(f"{REPORT}/gatewayReconciliation", params={"asOf": today, "start": today},
                             headers={**admin_headers})
    assert other.status_code == 200
    assert (await client.get(f"{PAY}/payment/{ok['id']}", headers=admin_headers)).status_code == 200


async def test_the_revenue_by_month_chart_draws_a_bar_per_month(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    account = await _account(client, admin_headers, None)
    for value, month in (("100.00", 2), ("40.00", 3)):
        _, bill = await issued_bill(client, rt, tenant, admin_headers, value, account=account,
                                    as_of=date(2027, month, 1))
        await _posted(rt, tenant, bill)
    chart = await client.get("/payments/v1/chart/revenue.svg", params={"start": "2027-01-01", "asOf": "2027-03-31"},
                             headers=admin_headers)
    assert chart.status_code == 200 and chart.headers["content-type"].startswith("image/svg+xml")
    svg = ElementTree.fromstring(chart.content)  # noqa: S314 - the server's own drawing
    ns = "{http://www.w3.org/2000/svg}"
    labels = [t.text for t in svg.findall(f"{ns}rect/{ns}title")]
    assert labels == ["2027-02: 100.00", "2027-03: 40.00"], labels
    heights = [float(r.get("height") or 0) for r in svg.findall(f"{ns}rect")]
    assert heights[0] > heights[1] > 0
    assert (await client.get("/payments/v1/chart/revenue.svg", params={"asOf": "x"},
                             headers=admin_headers)).status_code == 400
