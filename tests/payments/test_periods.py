"""Ledger periods against PostgreSQL: every posting is dated on the document's local business date, in the billing
account's time zone — a bill dated 1 February for an account in Europe/Paris (local midnight is 23:00 UTC on
31 January) is posted, reported and locked in February, not January."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from openbss.platform.tmf.resource import system_context
from tests.billing.helpers import billing_account, in_tenant
from tests.conftest import session_services
from tests.payments.helpers import cash, issued_bill, method, pay


async def _posted(rt: Any, tenant: str, bill: dict[str, Any]) -> None:
    """What the bill-issued consumer does (run here, not waited for)."""
    async with rt.db.transaction(tenant) as session:
        await session_services().payments.service.bill_issued(system_context(tenant, session, "http://t"), bill)


async def _dates(rt: Any, tenant: str, source: str) -> set[date]:
    rows = await in_tenant(rt, tenant, "SELECT accounting_date FROM ledger_entry WHERE source_id = :s", s=source)
    return {r[0] for r in rows}


async def test_a_bill_is_posted_on_its_local_date_not_the_utc_date_of_its_midnight(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    paris = await billing_account(client, admin_headers, tz="Europe/Paris")
    _, bill = await issued_bill(client, rt, tenant, admin_headers, account=paris, as_of=date(2027, 2, 1))
    assert bill["billDate"].startswith("2027-01-31T23:00")  # billing's instant: local midnight, in UTC
    await _posted(rt, tenant, bill)
    assert await _dates(rt, tenant, bill["id"]) == {date(2027, 2, 1)}
    [(bill_date, due)] = await in_tenant(rt, tenant, "SELECT bill_date, due_date FROM payments_receivable "
                                                     "WHERE bill_id = :b", b=bill["id"])
    assert bill_date == date(2027, 2, 1) and due == date(2027, 2, 15)
    revenue = (await client.get("/payments/v1/report/revenue?start=2027-01-01&asOf=2027-02-28",
                                headers=admin_headers)).json()
    assert revenue and {r["period"] for r in revenue} == {"2027-02"}, revenue
    # a westward zone: local midnight is the same UTC day
    ny = await billing_account(client, admin_headers, tz="America/New_York")
    _, bill_ny = await issued_bill(client, rt, tenant, admin_headers, account=ny, as_of=date(2027, 2, 1))
    await _posted(rt, tenant, bill_ny)
    assert await _dates(rt, tenant, bill_ny["id"]) == {date(2027, 2, 1)}


async def test_a_receipt_is_posted_on_the_accounts_local_day(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    """A payment's posting date is today in the account's zone (Pacific/Kiritimati is UTC+14: its day is
    the next UTC day from 10:00 to 24:00 UTC, when this fails on a UTC dating)."""
    account = await billing_account(client, admin_headers, tz="Pacific/Kiritimati")
    m = await method(client, admin_headers, cash(account))
    r = await pay(client, admin_headers, account, m["id"], "120.00")  # no bill: account credit
    assert r.status_code == 201, r.text
    today = datetime.now(UTC).astimezone(ZoneInfo("Pacific/Kiritimati")).date()
    assert await _dates(rt, tenant, r.json()["id"]) == {today}
