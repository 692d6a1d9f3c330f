"""Bill runs against PostgreSQL: charges from the inventory, proration, credits, usage; a run twice adds nothing
(enforced by the database too); issued bills are numbered gaplessly and immutable; the open balance is real."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError

from openbss.platform.tmf.resource import system_context
from tests.billing.helpers import (
    billing_account,
    in_tenant,
    one_time,
    postpaid_line,
    recurring,
    run,
    sell,
    terminate,
    usage,
)
from tests.conftest import session_services


async def lines_of(rt: Any, tenant: str, account_id: str) -> list[tuple[str, date, date, Decimal]]:
    rows = await in_tenant(rt, tenant, "SELECT charge_key, period_start, period_end, amount FROM billing_applied_rate "
                                       "WHERE billing_account_id = :a ORDER BY period_start, charge_key", a=account_id)
    return [(r[0].split("|")[0], r[1], r[2], r[3]) for r in rows]


async def bills_of(rt: Any, tenant: str, account_id: str) -> list[Any]:
    return await in_tenant(rt, tenant, "SELECT id, bill_date, state, number, total, balance_after, body "
                                       "FROM billing_customer_bill WHERE billing_account_id = :a ORDER BY bill_date",
                           a=account_id)


async def test_a_run_bills_what_was_sold_and_a_second_run_adds_nothing(client: Any, rt: Any, tenant: str,
                                                                         admin_headers: dict[str, str]) -> None:
    account = await billing_account(client, admin_headers)
    # sold on 20 January 2027, 10:00 in Paris: 12 days of January, then whole months in advance
    await sell(rt, tenant, account, "2027-01-20T09:00:00.000Z", [recurring("31.00"), one_time("49.00")])
    first = await run(rt, tenant, date(2027, 3, 1), finalize=True)
    assert (first.billed, first.finalized, first.failed) == (1, 1, {})
    assert await lines_of(rt, tenant, account["id"]) == [
        ("oneTime", date(2027, 1, 20), date(2027, 1, 20), Decimal("49.00")),
        ("recurring", date(2027, 1, 20), date(2027, 2, 1), Decimal("12.00")),
        ("recurring", date(2027, 2, 1), date(2027, 3, 1), Decimal("31.00")),
        ("recurring", date(2027, 3, 1), date(2027, 4, 1), Decimal("31.00"))]
    [bill] = await bills_of(rt, tenant, account["id"])
    assert bill.total == Decimal("147.60")  # 123.00 + 20 % VAT
    body = bill.body
    assert body["taxExcludedAmount"] == {"unit": "EUR", "value": Decimal("123.0")}
    assert body["taxItem"] == [{"@type": "TaxItem", "taxCategory": "VAT/standard", "taxRate": Decimal(20),
                                "taxAmount": {"unit": "EUR", "value": Decimal("24.6")}}]
    assert body["billNo"] == "INV-2027-000001" and body["state"] == "validated"
    assert body["billDate"] == "2027-02-28T23:00:00.000Z"  # midnight in Paris
    assert body["paymentDueDate"] == "2027-03-14T23:00:00.000Z"
    assert body["amountDue"] == {"unit": "EUR", "value": Decimal("147.6")}

    again = await run(rt, tenant, date(2027, 3, 1), finalize=True)
    assert (again.billed, again.skipped) == (0, 1)
    again = await run(rt, tenant, date(2027, 3, 20), finalize=True)  # same cycle date
    assert (again.billed, again.skipped) == (0, 1)
    assert len(await lines_of(rt, tenant, account["id"])) == 4

    nxt = await run(rt, tenant, date(2027, 4, 1), finalize=True)
    assert nxt.billed == 1
    bills = await bills_of(rt, tenant, account["id"])
    assert [b.number for b in bills] == ["INV-2027-000001", "INV-2027-000002"]
    second = bills[1].body
    assert second["previousBalance"] == {"unit": "EUR", "value": Decimal("147.6")}
    assert second["taxIncludedAmount"] == {"unit": "EUR", "value": Decimal("37.2")}
    assert second["amountDue"] == {"unit": "EUR", "value": Decimal("184.8")}  # no payment yet: the balance grows
    async with rt.db.transaction(tenant) as session:
        ctx = system_context(tenant, session, "http://testserver")
        assert await session_services().billing.balances.open_balance(ctx, account["id"]) == Decimal("184.80")


async def test_the_database_refuses_a_charge_billed_twice_for_one_period(client: Any, rt: Any, tenant: str,
                                                                         admin_headers: dict[str, str]) -> None:
    account = await billing_account(client, admin_headers)
    await sell(rt, tenant, account, "2027-01-01T00:00:00.000Z", [recurring("10.00")])
    await run(rt, tenant, date(2027, 1, 1), finalize=False)
    [(_line, bill_id, key)] = await in_tenant(
        rt, tenant, "SELECT id, bill_id, charge_key FROM billing_applied_rate WHERE billing_account_id = :a",
        a=account["id"])
    with pytest.raises(IntegrityError, match="uq_billing_applied_rate"):
        await in_tenant(rt, tenant, "INSERT INTO billing_applied_rate (id, body, bill_id, billing_account_id, "
                                    "charge_key, period_start, period_end, amount) VALUES ('x', '{}', :b, :a, :k, "
                                    "'2027-01-01', '2027-02-01', 10) RETURNING id", b=bill_id, a=account["id"], k=key)
    with pytest.raises(IntegrityError, match="uq_billing_customer_bill_cycle"):
        await in_tenant(rt, tenant, "INSERT INTO billing_customer_bill (id, body, billing_account_id, bill_date, "
                                    "period_start, period_end, run_type, state, currency, total) VALUES ('y', '{}', "
                                    ":a, '2027-01-01', '2026-12-01', '2027-01-01', 'onCycle', 'new', 'EUR', 0) "
                                    "RETURNING id", a=account["id"])


async def test_an_issued_bill_is_immutable(client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    account = await billing_account(client, admin_headers)
    await sell(rt, tenant, account, "2027-01-01T00:00:00.000Z", [recurring("10.00")])
    await run(rt, tenant, date(2027, 1, 1), finalize=True)
    [bill] = await bills_of(rt, tenant, account["id"])
    for sql in ("UPDATE billing_customer_bill SET total = 0 WHERE id = :b",
                "UPDATE billing_customer_bill SET body = body || '{\"billNo\": \"X\"}' WHERE id = :b",
                "DELETE FROM billing_customer_bill WHERE id = :b",
                "UPDATE billing_applied_rate SET amount = 0 WHERE bill_id = :b",
                "DELETE FROM billing_applied_rate WHERE bill_id = :b",
                "UPDATE billing_customer_bill SET state = 'new' WHERE id = :b"):
        with pytest.raises(DBAPIError, match=r"is issued|issued bill"):
            await in_tenant(rt, tenant, sql + " RETURNING 1", b=bill.id)
    # the state alone may move on
    await in_tenant(rt, tenant, "UPDATE billing_customer_bill SET state = 'sent', body = jsonb_set(body, '{state}', "
                                "'\"sent\"') WHERE id = :b RETURNING 1", b=bill.id)


async def test_a_cancellation_credits_the_unused_part_billed_in_advance(client: Any, rt: Any, tenant: str,
                                                                        admin_headers: dict[str, str]) -> None:
    account = await billing_account(client, admin_headers, tz="UTC")
    product = await sell(rt, tenant, account, "2027-03-01T00:00:00.000Z", [recurring("31.00", rate="0")])
    await run(rt, tenant, date(2027, 3, 1), finalize=True)  # March billed in advance
    await terminate(rt, tenant, product["id"], "2027-03-17T12:00:00.000Z")  # ends on 17 March: 16 days used
    await run(rt, tenant, date(2027, 4, 1), finalize=True)
    assert await lines_of(rt, tenant, account["id"]) == [
        ("credit", date(2027, 3, 1), date(2027, 4, 1), Decimal("-15.00")),
        ("recurring", date(2027, 3, 1), date(2027, 4, 1), Decimal("31.00"))]
    bills = await bills_of(rt, tenant, account["id"])
    assert bills[1].body["taxIncludedAmount"]["value"] == -15
    assert bills[1].body["amountDue"]["value"] == 16
    assert bills[1].balance_after == Decimal(16)
    again = await run(rt, tenant, date(2027, 5, 1), finalize=True)  # credited once
    assert again.billed == 0


async def test_a_credit_balance_is_applied_to_the_next_bill(client: Any, rt: Any, tenant: str,
                                                             admin_headers: dict[str, str]) -> None:
    account = await billing_account(client, admin_headers, tz="UTC")
    first = await sell(rt, tenant, account, "2027-03-01T00:00:00.000Z", [recurring("31.00", rate="0")])
    await run(rt, tenant, date(2027, 3, 1), finalize=True)
    await terminate(rt, tenant, first["id"], "2027-03-01T00:00:00.000Z")  # cancelled on its first day: all credited
    await run(rt, tenant, date(2027, 3, 2), finalize=True)  # nothing new on the same cycle date
    await run(rt, tenant, date(2027, 4, 1), finalize=True)
    bills = await bills_of(rt, tenant, account["id"])
    assert bills[-1].balance_after == Decimal(0)
    await sell(rt, tenant, account, "2027-04-01T00:00:00.000Z", [recurring("10.00", rate="0")])
    await run(rt, tenant, date(2027, 5, 1), finalize=True)
    last = (await bills_of(rt, tenant, account["id"]))[-1].body
    assert last["taxIncludedAmount"]["value"] == 20  # April and May in advance
    assert last["creditApplied"]["value"] == 0 and last["amountDue"]["value"] == 20


async def test_postpaid_usage_is_billed_once(client: Any, rt: Any, tenant: str,
                                             admin_headers: dict[str, str]) -> None:
    account = await billing_account(client, admin_headers, tz="UTC")
    product = await sell(rt, tenant, account, "2027-01-01T00:00:00.000Z", [recurring("10.00", rate="0")])
    line = await postpaid_line(rt, tenant, account, product["id"], "+33600000001")
    await usage(rt, tenant, line, datetime(2027, 1, 10, tzinfo=UTC), 125)
    await usage(rt, tenant, line, datetime(2027, 1, 31, 23, 59, tzinfo=UTC), 75)
    await usage(rt, tenant, line, datetime(2027, 2, 1, 0, 0, tzinfo=UTC), 1000)  # the next period
    await run(rt, tenant, date(2027, 2, 1), finalize=True)
    lines = await lines_of(rt, tenant, account["id"])
    assert ("usage", date(2027, 1, 1), date(2027, 2, 1), Decimal("2.00")) in lines
    # a record that arrives late (dated in January) goes on the next bill; nothing is billed twice
    await usage(rt, tenant, line, datetime(2027, 1, 15, tzinfo=UTC), 50)
    await run(rt, tenant, date(2027, 2, 1), finalize=True)
    await run(rt, tenant, date(2027, 3, 1), finalize=True)
    usage_lines = [ln for ln in await lines_of(rt, tenant, account["id"]) if ln[0] == "usage"]
    assert [ln[3] for ln in usage_lines] == [Decimal("2.00"), Decimal("10.50")]
    assert (await in_tenant(rt, tenant, "SELECT count(*) FROM billing_usage_item"))[0][0] == 4


async def test_bill_dates_are_local_dates_across_a_dst_change(client: Any, rt: Any, tenant: str,
                                                               admin_headers: dict[str, str]) -> None:
    account = await billing_account(client, admin_headers, day=15, tz="America/New_York")
    # 03:00 UTC on 1 March is still 28 February in New York
    await sell(rt, tenant, account, "2027-03-01T03:00:00.000Z", [recurring("28.00", rate="0")])
    await run(rt, tenant, date(2027, 3, 15), finalize=False)
    [bill] = await bills_of(rt, tenant, account["id"])
    assert bill.bill_date == date(2027, 3, 15) and bill.state == "new" and bill.number is None
    assert bill.body["billDate"] == "2027-03-15T04:00:00.000Z"  # EDT since 14 March
    assert bill.body["billingPeriod"] == {"startDateTime": "2027-02-15T05:00:00.000Z",
                                          "endDateTime": "2027-03-15T04:00:00.000Z"}
    assert (await lines_of(rt, tenant, account["id"]))[0] == (
        "recurring", date(2027, 2, 28), date(2027, 3, 15), Decimal("15.00"))  # 15 of February's 28 days


async def test_bill_cycle_day_31_in_february_of_a_leap_year(client: Any, rt: Any, tenant: str,
                                                             admin_headers: dict[str, str]) -> None:
    account = await billing_account(client, admin_headers, day=31, tz="UTC")
    await sell(rt, tenant, account, "2028-02-10T00:00:00.000Z", [recurring("29.00", rate="0")])
    report = await run(rt, tenant, date(2028, 3, 1), finalize=True)
    [bill] = await bills_of(rt, tenant, account["id"])
    assert report.billed == 1 and bill.bill_date == date(2028, 2, 29)
    assert await lines_of(rt, tenant, account["id"]) == [
        ("recurring", date(2028, 2, 10), date(2028, 2, 29), Decimal("19.00")),  # 19 of [31 Jan, 29 Feb)'s 29 days
        ("recurring", date(2028, 2, 29), date(2028, 3, 31), Decimal("29.00"))]


async def test_numbers_are_gapless_under_concurrent_finalization(client: Any, rt: Any, tenant: str,
                                                                 admin_headers: dict[str, str]) -> None:
    accounts = [await billing_account(client, admin_headers, tz="UTC") for _ in range(6)]
    for a in accounts:
        await sell(rt, tenant, a, "2027-01-01T00:00:00.000Z", [recurring("10.00", rate="0")])
    await run(rt, tenant, date(2027, 1, 1), finalize=False)
    ids = [r[0] for r in await in_tenant(rt, tenant, "SELECT id FROM billing_customer_bill")]
    billing = session_services().billing.service

    async def finalize(bill_id: str, fail: bool) -> None:
        async with rt.db.transaction(tenant) as session:
            await billing.finalize(system_context(tenant, session, "http://testserver"), bill_id)
            if fail:
                raise RuntimeError("rolled back after taking a number")

    results = await asyncio.gather(*[finalize(b, i % 3 == 0) for i, b in enumerate(ids)], return_exceptions=True)
    assert sum(isinstance(r, RuntimeError) for r in results) == 2
    numbers = sorted(r[0] for r in await in_tenant(rt, tenant, "SELECT number FROM billing_customer_bill "
                                                               "WHERE number IS NOT NULL"))
    assert numbers == [f"INV-2027-{i:06d}" for i in range(1, 5)]


async def test_closing_an_account_that_owes_money_is_refused(client: Any, rt: Any, tenant: str,
                                                             admin_headers: dict[str, str]) -> None:
    account = await billing_account(client, admin_headers)
    await client.patch(f"/tmf-api/accountManagement/v4/billingAccount/{account['id']}", json={"state": "active"},
                       headers=admin_headers)
    await sell(rt, tenant, account, "2027-01-01T00:00:00.000Z", [recurring("10.00")])
    await run(rt, tenant, date(2027, 1, 1), finalize=True)
    r = await client.patch(f"/tmf-api/accountManagement/v4/billingAccount/{account['id']}",
                           json={"state": "closed"}, headers=admin_headers)
    assert r.status_code == 409, r.text
    assert "12" in r.json()["message"]  # the balance it owes


async def test_a_failing_account_is_parked_and_the_run_goes_on(client: Any, rt: Any, tenant: str,
                                                               admin_headers: dict[str, str]) -> None:
    good = await billing_account(client, admin_headers)
    bad = await billing_account(client, admin_headers)
    await sell(rt, tenant, good, "2027-01-01T00:00:00.000Z", [recurring("10.00")])
    await sell(rt, tenant, bad, "2027-01-01T00:00:00.000Z", [recurring("10.00", period="fortnight")])
    report = await run(rt, tenant, date(2027, 1, 1), finalize=True)
    assert report.billed == 1 and list(report.failed) == [bad["id"]]
    assert "fortnight" in report.failed[bad["id"]]
    assert report.totals == {"EUR": Decimal("12.00")}


async def test_a_price_in_another_currency_than_the_account_is_not_billed(client: Any, rt: Any, tenant: str,
                                                                          admin_headers: dict[str, str]) -> None:
    good = await billing_account(client, admin_headers)
    bad = await billing_account(client, admin_headers)
    await sell(rt, tenant, good, "2027-01-01T00:00:00.000Z", [recurring("10.00")])
    dollars = recurring("10.00")
    dollars["price"]["dutyFreeAmount"]["unit"] = "USD"
    product = await sell(rt, tenant, bad, "2027-01-01T00:00:00.000Z", [one_time("5.00"), dollars])
    report = await run(rt, tenant, date(2027, 1, 1), finalize=True)
    # USD 10.00 is not EUR 10.00: the account is parked with the reason, nothing of it is billed
    assert report.billed == 1 and list(report.failed) == [bad["id"]]
    assert "USD" in report.failed[bad["id"]] and product["id"] in report.failed[bad["id"]], report.failed
    assert await bills_of(rt, tenant, bad["id"]) == []
    assert report.totals == {"EUR": Decimal("12.00")}


async def test_tenant_settings_change_the_day_count(client: Any, rt: Any, tenant: str,
                                                     admin_headers: dict[str, str]) -> None:
    r = await client.patch("/billing/v1/settings", headers=admin_headers,
                           json={"dayCount": "thirty", "numberFormat": "F{year}{month:02d}-{seq}"})
    assert r.status_code == 200, r.text
    bad = await client.patch("/billing/v1/settings", json={"dayCount": "365"}, headers=admin_headers)
    assert bad.status_code == 400 and "day count" in bad.json()["message"]
    bad = await client.patch("/billing/v1/settings", json={"numberFormat": "{nope}"}, headers=admin_headers)
    assert bad.status_code == 400 and "numberFormat" in bad.json()["message"]
    account = await billing_account(client, admin_headers, tz="UTC")
    await sell(rt, tenant, account, "2027-03-16T00:00:00.000Z", [recurring("30.00", rate="0")])
    await run(rt, tenant, date(2027, 4, 1), finalize=True)
    lines = await lines_of(rt, tenant, account["id"])
    assert lines[0] == ("recurring", date(2027, 3, 16), date(2027, 4, 1), Decimal("15.00"))  # 15 of 30 days
    [bill] = await bills_of(rt, tenant, account["id"])
    assert bill.number == "F202704-1"


async def test_a_draft_is_recomputed_until_it_is_issued(client: Any, rt: Any, tenant: str,
                                                         admin_headers: dict[str, str]) -> None:
    account = await billing_account(client, admin_headers, tz="UTC")
    await sell(rt, tenant, account, "2027-01-01T00:00:00.000Z", [recurring("10.00", rate="0")])
    await run(rt, tenant, date(2027, 1, 1), finalize=False)
    await sell(rt, tenant, account, "2027-01-01T00:00:00.000Z", [one_time("5.00", rate="0")])
    await run(rt, tenant, date(2027, 1, 1), finalize=False)
    [bill] = await bills_of(rt, tenant, account["id"])
    assert bill.state == "new" and bill.total == Decimal(15)
    assert len(await lines_of(rt, tenant, account["id"])) == 2
    events = await in_tenant(rt, tenant, "SELECT event_type FROM outbox_event WHERE resource_id = :b "
                                         "ORDER BY id", b=bill.id)
    assert [e[0] for e in events] == ["CustomerBillCreateEvent", "CustomerBillAttributeValueChangeEvent"]


async def test_a_prepaid_lines_fee_is_not_billed_after_a_product_change_either(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    """A prepaid line suspended then resumed (product changes billing records): online charging still takes its
    monthly fee from its money at renewal, so the bill charges no fee and credits none — it billed the fee (a
    second time) once the product had changes."""
    from tests.billing.test_changes import change

    account = await billing_account(client, admin_headers, tz="UTC")
    prepaid = await sell(rt, tenant, account, "2027-01-01T00:00:00.000Z", [recurring("9.99", rate="0")])
    await postpaid_line(rt, tenant, account, prepaid["id"], "+33600000073", payment_type="prepaid")
    await run(rt, tenant, date(2027, 2, 1), finalize=True)
    for kind, when in (("suspend", "2027-02-10"), ("resume", "2027-02-20")):
        r = await change(client, admin_headers, prepaid["id"], kind, when)
        assert r.status_code == 201, r.text
    await run(rt, tenant, date(2027, 3, 1), finalize=True)
    await run(rt, tenant, date(2027, 4, 1), finalize=True)
    lines = await lines_of(rt, tenant, account["id"])
    assert [ln for ln in lines if ln[0] in ("recurring", "credit")] == []


async def test_a_prepaid_lines_yearly_fee_is_billed(client: Any, rt: Any, tenant: str,
                                                    admin_headers: dict[str, str]) -> None:
    """Online charging takes a prepaid line's monthly fees at its monthly renewals, and no other: a yearly fee of a
    prepaid line is billed on its account (it was charged nowhere)."""
    r = await client.post("/tmf-api/productCatalogManagement/v4/productOfferingPrice", headers=admin_headers, json={
        "name": "Yearly pass", "priceType": "recurring", "recurringChargePeriodType": "year",
        "price": {"unit": "EUR", "value": 120}})
    assert r.status_code == 201, r.text
    yearly = recurring("120.00", rate="0", name="Yearly pass", price_id=r.json()["id"], period="year")
    account = await billing_account(client, admin_headers, tz="UTC")
    product = await sell(rt, tenant, account, "2027-01-01T00:00:00.000Z", [yearly])
    await postpaid_line(rt, tenant, account, product["id"], "+33600000074", payment_type="prepaid")
    await run(rt, tenant, date(2027, 2, 1), finalize=True)
    lines = await lines_of(rt, tenant, account["id"])
    assert [(ln[1], ln[2], ln[3]) for ln in lines if ln[0] == "recurring"] == [
        (date(2027, 1, 1), date(2028, 1, 1), Decimal("120.00"))]


async def test_a_prepaid_lines_recurring_fee_is_not_billed(client: Any, rt: Any, tenant: str,
                                                           admin_headers: dict[str, str]) -> None:
    """Online charging takes a prepaid line's periodic fee from its money at renewal: the bill does not charge it
    again; the postpaid line on the same account is billed its fee."""
    account = await billing_account(client, admin_headers, tz="UTC")
    prepaid = await sell(rt, tenant, account, "2027-01-01T00:00:00.000Z", [recurring("9.99", rate="0")])
    postpaid = await sell(rt, tenant, account, "2027-01-01T00:00:00.000Z", [recurring("24.99", rate="0")])
    await postpaid_line(rt, tenant, account, prepaid["id"], "+33600000071", payment_type="prepaid")
    await postpaid_line(rt, tenant, account, postpaid["id"], "+33600000072")
    await run(rt, tenant, date(2027, 2, 1), finalize=True)
    lines = await lines_of(rt, tenant, account["id"])
    assert [ln[3] for ln in lines if ln[0] == "recurring"] == [Decimal("24.99"), Decimal("24.99")]  # Jan, Feb
