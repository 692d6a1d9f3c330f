"""Revenue recognition and the ledger replay against PostgreSQL: a recurring charge billed in advance is posted to
deferred revenue at finalization and recognized day by day over its service period (idempotent per line and day);
the deferred revenue roll-forward; the replay of the sources rebuilds exactly the journal."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from openbss.payments import ledger, reports
from openbss.payments.replay import replay
from openbss.payments.service import PaymentService
from openbss.platform.tmf.resource import system_context
from tests.billing.helpers import in_tenant
from tests.payments.test_ledger import Accounts
from tests.payments.test_writeoffs import BillsWithLines

BASE = "http://testserver"


def _line(line_id: str, value: str, start: str, end: str, kind: str = "recurringCharge") -> dict[str, Any]:
    return {"id": line_id, "taxExcludedAmount": {"unit": "EUR", "value": value}, "product": {"id": "p1"},
            "periodCoverage": {"startDateTime": f"{start}T00:00:00Z", "endDateTime": f"{end}T00:00:00Z"},
            "characteristic": [{"name": "chargeType", "value": kind}]}


async def test_a_charge_billed_in_advance_is_recognized_day_by_day(rt: Any, tenant: str, services: Any) -> None:
    bill_id, monthly, usage = f"bill-{uuid.uuid4().hex[:8]}", f"l-{uuid.uuid4().hex[:8]}", f"u-{uuid.uuid4().hex[:8]}"
    bills = BillsWithLines(lines={bill_id: [
        _line(monthly, "28.00", "2027-02-01", "2027-03-01"),  # February, billed on 1 February: in advance
        _line(usage, "5.00", "2027-01-01", "2027-02-01", kind="usage")]})  # January's usage: earned
    bills.docs[bill_id] = {"id": bill_id, "state": "validated", "billNo": "N1", "billDate": "2027-02-01T00:00:00Z",
                           "billingAccount": {"id": "acct"}, "taxIncludedAmount": {"unit": "EUR", "value": 33},
                           "taxItem": []}
    payments = PaymentService(rt.db, BASE, services.payments.gateway, bills, Accounts(),
                              services.payments.resources["payment"], services.payments.resources["refund"])

    async def run(through: date) -> dict[str, Any]:
        async with rt.db.transaction(tenant) as session:
            return await payments.recognize_revenue(system_context(tenant, session, BASE), through)

    async with rt.db.transaction(tenant) as session:
        await payments.bill_issued(system_context(tenant, session, BASE), bills.docs[bill_id])
    balances = dict(await in_tenant(rt, tenant, "SELECT l.account_code, sum(l.debit - l.credit) FROM ledger_line l "
                                                "GROUP BY 1"))
    assert balances == {"1200": Decimal(33), "2400": Decimal(-28), "4000": Decimal(-5)}
    assert (await run(date(2027, 2, 11)))["recognized"] == {"EUR": Decimal("10.00")}  # 10 of 28 days
    assert (await run(date(2027, 2, 11)))["lines"] == 0  # the same day again: nothing
    assert (await run(date(2027, 2, 5)))["lines"] == 0  # an earlier day: nothing
    assert (await run(date(2027, 3, 10)))["recognized"] == {"EUR": Decimal("18.00")}  # the rest, at the end
    assert (await run(date(2027, 4, 1)))["lines"] == 0
    async with rt.db.transaction(tenant) as session:
        feb = await reports.deferred_revenue(session, date(2027, 2, 1), date(2027, 2, 28))
        mar = await reports.deferred_revenue(session, date(2027, 3, 1), date(2027, 3, 31))
        result = await replay(payments, system_context(tenant, session, BASE))
    assert [(r["opening"], r["billed"], r["recognized"], r["closing"]) for r in feb] == [
        (0, Decimal(28), Decimal(10), Decimal(18))]
    assert [(r["opening"], r["billed"], r["recognized"], r["closing"]) for r in mar] == [
        (Decimal(18), 0, Decimal(18), 0)]
    assert result["differences"] == [] and result["lines"] >= 5
    # a tampered journal is found: an entry posted without its source
    async with rt.db.transaction(tenant) as session:
        await ledger.post(session, source_type="WriteOff", source_id="ghost", event="writtenOff", currency="EUR",
                          description="no source", postings=ledger.write_off_postings(Decimal("1.00")))
        found = (await replay(payments, system_context(tenant, session, BASE)))["differences"]
    assert {(d["source"], d["account"], d["rebuilt"]) for d in found} == {
        ("WriteOff/ghost", "1200", None), ("WriteOff/ghost", "6200", None)}


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 10_000_000), st.integers(1, 400), st.lists(st.integers(0, 450), min_size=1, max_size=12))
def test_daily_recognition_never_exceeds_the_line_and_ends_exactly_at_it(cents: int, days: int,
                                                                        runs: list[int]) -> None:
    amount = Decimal(cents).scaleb(-2)
    start = date(2027, 1, 1)
    end = start + timedelta(days=days)
    recognized = Decimal(0)
    through = start
    for offset in sorted(runs):  # the job runs on some days, in order
        day = start + timedelta(days=offset)
        if day <= through:
            continue
        target = ledger.recognized_by(amount, start, end, day, "EUR")
        assert target >= recognized and target <= amount
        assert target == target.quantize(Decimal("0.01"))
        recognized, through = target, day
    assert ledger.recognized_by(amount, start, end, end, "EUR") == amount
    assert ledger.recognized_by(amount, start, end, start, "EUR") == 0


async def test_the_replay_and_the_roll_forward_over_http_with_billings_own_bills(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    from tests.conftest import deliver_all
    from tests.payments.helpers import cash, issued_bill, method, pay

    account, bill = await issued_bill(client, rt, tenant, admin_headers)
    await deliver_all(rt)
    m = await method(client, admin_headers, cash(account))
    await pay(client, admin_headers, account, m["id"], "50.00", [bill["id"]])
    r = await client.get("/payments/v1/ledgerReplay", headers=admin_headers)
    assert r.status_code == 200, r.text
    assert r.json()["differences"] == [] and r.json()["lines"] == 5  # bill: 1200, 4000, 2100; payment: 1000, 1200
    rf = await client.get("/payments/v1/report/deferredRevenue", params={"start": "2027-01-01", "asOf": "2027-12-31",
                                                                        "format": "csv"}, headers=admin_headers)
    assert rf.status_code == 200 and rf.text == ""  # nothing billed in advance: no rows


async def test_revenue_by_product_period_and_tax_rate_and_the_aging_chart(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    from xml.etree import ElementTree

    from tests.conftest import bearer, deliver_all
    from tests.payments.helpers import issued_bill

    await issued_bill(client, rt, tenant, admin_headers)  # 100.00 + 20 % VAT, 1 February 2027
    await issued_bill(client, rt, tenant, admin_headers, "50.00", as_of=date(2027, 3, 1))
    await deliver_all(rt)
    r = await client.get("/payments/v1/report/revenue", params={"start": "2027-01-01", "asOf": "2027-12-31"},
                         headers=admin_headers)
    assert r.status_code == 200, r.text
    rows = r.json()
    # the month of the bill date as the ledger counts it (UTC: the bills are dated at the account's local
    # midnight, the evening before in UTC)
    dates = dict(await in_tenant(rt, tenant, "SELECT amount, bill_date FROM payments_receivable"))
    months = [f"{dates[Decimal('120')]:%Y-%m}", f"{dates[Decimal('60')]:%Y-%m}"]
    assert [(x["period"], x["currency"], x["net"], x["tax"]) for x in rows] == [
        (months[0], "EUR", 100, 20), (months[1], "EUR", 50, 10)]
    assert all(x["product"] and Decimal(str(x["taxRate"])) == 20 for x in rows)
    second = dates[Decimal("60")]
    only_second = (await client.get("/payments/v1/report/revenue", params={
        "start": second.replace(day=1).isoformat(), "asOf": second.isoformat()}, headers=admin_headers)).json()
    assert [x["period"] for x in only_second] == [months[1]]
    chart = await client.get("/payments/v1/chart/arAging.svg", params={"asOf": "2027-03-20"}, headers=admin_headers)
    assert chart.status_code == 200 and chart.headers["content-type"].startswith("image/svg+xml")
    svg = ElementTree.fromstring(chart.content)  # noqa: S314 - the server's own drawing
    ns = "{http://www.w3.org/2000/svg}"
    bars = svg.findall(f"{ns}rect")
    assert len(bars) == 5
    titles = [b.find(f"{ns}title").text for b in bars]  # type: ignore[union-attr]
    assert [t.split(": ")[0] for t in titles] == ["current", "1-30", "31-60", "61-90", "90+"]
    assert sum(Decimal(t.split(": ")[1]) for t in titles) == Decimal("180.00")  # all that is owed
    heights = [float(b.get("height") or 0) for b in bars]
    assert max(heights) > 0 and heights.count(0.0) >= 3
    assert b"<script" not in chart.content and b"http" not in chart.content.replace(b"http://www.w3.org", b"")
    assert (await client.get("/payments/v1/chart/arAging.svg", params={"asOf": "x"},
                             headers=admin_headers)).status_code == 400
    assert (await client.get("/payments/v1/chart/arAging.svg",
                             headers=bearer(tenant, "network_ops"))).status_code == 403
