"""Time as the back office needs it: the back-dating limit of product changes, test clocks of sandbox tenants
(advance a year: twelve bills, once), anniversary alignment of recurring prices (the 31st, 29 February) and
transfers to another billing account by product order."""

from __future__ import annotations

import calendar
import itertools
import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from openbss.billing.service import TenantBilling, alignment_of
from openbss.platform.tmf.resource import system_context
from openbss.pricing import changes, proration
from openbss.pricing.cycles import anniversary_period, pieces
from tests.billing.helpers import billing_account, in_tenant, recurring, run, sell
from tests.billing.test_changes import change, lines
from tests.billing.test_order_changes import completed_order, deliver, product_changes
from tests.conftest import session_services

D = Decimal
CLOCK = "/billing/v1/testClock"
SETTINGS = "/billing/v1/settings"


async def make_sandbox(rt: Any, tenant: str) -> None:
    async with rt.db.transaction(None) as session:
        await session.execute(text("UPDATE tenant SET sandbox = true WHERE id = :t"), {"t": tenant})


async def bills(rt: Any, tenant: str, account_id: str) -> list[tuple[date, str, Decimal]]:
    rows = await in_tenant(rt, tenant, "SELECT bill_date, state, total FROM billing_customer_bill WHERE "
                                       "billing_account_id = :a ORDER BY bill_date", a=account_id)
    return [(r[0], r[1], r[2]) for r in rows]


# --- test clocks ----------------------------------------------------------------------------------------------
async def test_a_production_tenant_refuses_a_test_clock(client: Any, tenant: str,
                                                        admin_headers: dict[str, str]) -> None:
    r = await client.post(CLOCK, headers=admin_headers, json={"frozenTime": "2027-01-01T00:00:00Z"})
    assert r.status_code == 409, r.text
    assert "production tenant" in r.json()["message"] and "sandbox" in r.json()["message"]
    assert (await client.get(CLOCK, headers=admin_headers)).status_code == 404
    r = await client.post(f"{CLOCK}/advance", headers=admin_headers, json={"frozenTime": "2027-02-01T00:00:00Z"})
    assert r.status_code == 409, r.text


async def test_advancing_a_year_bills_twelve_months_once(client: Any, rt: Any, tenant: str,
                                                         admin_headers: dict[str, str]) -> None:
    await make_sandbox(rt, tenant)
    account = await billing_account(client, admin_headers, tz="UTC")
    await sell(rt, tenant, account, "2027-01-01T00:00:00.000Z", [recurring("31.00", rate="0")])
    bad = await client.post(CLOCK, headers=admin_headers, json={"frozenTime": "2027-01-01"})
    assert bad.status_code == 400 and "frozenTime" in bad.json()["message"]
    r = await client.post(CLOCK, headers=admin_headers, json={"frozenTime": "2027-01-01T12:00:00Z"})
    assert r.status_code == 201, r.text
    assert (await client.post(CLOCK, headers=admin_headers, json={"frozenTime": "2027-01-01T12:00:00Z"})
            ).status_code == 409
    assert await bills(rt, tenant, account["id"]) == []  # creating a clock bills nothing
    r = await client.post(f"{CLOCK}/advance", headers=admin_headers, json={"frozenTime": "2027-12-31T12:00:00Z"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["frozenTime"].startswith("2027-12-31T12:00:00") and out["billed"] == 12 and out["finalized"] == 12
    got = await bills(rt, tenant, account["id"])
    assert [b[0] for b in got] == [date(2027, m, 1) for m in range(1, 13)]
    assert {b[1] for b in got} == {"validated"} and sum(b[2] for b in got) == D("372.00")
    # to the same time again: nothing new
    again = (await client.post(f"{CLOCK}/advance", headers=admin_headers,
                               json={"frozenTime": "2027-12-31T12:00:00Z"})).json()
    assert again["billed"] == 0 and again["customerBill"] == []
    assert len(await bills(rt, tenant, account["id"])) == 12
    # a clock moves forward only
    back = await client.post(f"{CLOCK}/advance", headers=admin_headers, json={"frozenTime": "2027-06-01T00:00:00Z"})
    assert back.status_code == 409 and "forward" in back.json()["message"]
    assert (await client.get(CLOCK, headers=admin_headers)).json()["frozenTime"].startswith("2027-12-31")
    assert (await client.delete(CLOCK, headers=admin_headers)).status_code == 204
    assert (await client.get(CLOCK, headers=admin_headers)).status_code == 404


async def test_a_change_effective_immediately_takes_the_clocks_date(client: Any, rt: Any, tenant: str,
                                                                    admin_headers: dict[str, str]) -> None:
    await make_sandbox(rt, tenant)
    account = await billing_account(client, admin_headers, tz="UTC")
    product = await sell(rt, tenant, account, "2027-03-01T00:00:00.000Z", [recurring("31.00", rate="0")])
    await client.post(CLOCK, headers=admin_headers, json={"frozenTime": "2027-03-01T08:00:00Z"})
    first = (await client.post(f"{CLOCK}/advance", headers=admin_headers,
                               json={"frozenTime": "2027-03-17T08:00:00Z"})).json()
    assert first["billed"] == 1  # the bill of 1 March (March in advance)
    r = await change(client, admin_headers, product["id"], "cancel", "immediate")
    assert r.status_code == 201, r.text
    assert r.json()["effectiveDate"] == "2027-03-17"
    nxt = (await client.post(f"{CLOCK}/advance", headers=admin_headers,
                             json={"frozenTime": "2027-05-02T00:00:00Z"})).json()
    assert nxt["billed"] == 1  # April's bill carries the credit; May has nothing to bill
    assert await lines(rt, tenant, account["id"]) == [
        ("credit", date(2027, 3, 1), date(2027, 4, 1), D("-15.00")),
        ("recurring", date(2027, 3, 1), date(2027, 4, 1), D("31.00"))]


# --- the back-dating limit --------------------------------------------------------------------------------------
async def test_a_change_back_dated_beyond_the_limit_is_refused_naming_it(client: Any, rt: Any, tenant: str,
                                                                         admin_headers: dict[str, str]) -> None:
    await make_sandbox(rt, tenant)
    account = await billing_account(client, admin_headers, tz="UTC")
    product = await sell(rt, tenant, account, "2027-01-01T00:00:00.000Z", [recurring("31.00", rate="0")])
    await client.post(CLOCK, headers=admin_headers, json={"frozenTime": "2027-01-01T08:00:00Z"})
    await client.post(f"{CLOCK}/advance", headers=admin_headers, json={"frozenTime": "2027-04-20T08:00:00Z"})
    r = await client.patch(SETTINGS, headers=admin_headers, json={"backdateDays": -1})
    assert r.status_code == 400 and "backdateDays" in r.json()["message"]
    r = await client.patch(SETTINGS, headers=admin_headers, json={"backdateDays": 30})
    assert r.status_code == 200 and r.json()["backdateDays"] == 30
    r = await change(client, admin_headers, product["id"], "cancel", "2027-03-17")  # 34 days before 20 April
    assert r.status_code == 400, r.text
    assert "back-dating limit of 30 days" in r.json()["message"] and "backdateDays" in r.json()["message"]
    assert await product_changes(client, admin_headers, product["id"]) == []  # nothing written
    # within the limit (and in the future) it is taken, and billing honours the date
    r = await change(client, admin_headers, product["id"], "upgrade", "2027-03-25",
                     productPrice=[recurring("62.00", rate="0", name="Premium", price_id="pop-premium")])
    assert r.status_code == 201, r.text
    r = await change(client, admin_headers, product["id"], "cancel", "2027-06-01")  # future
    assert r.status_code == 201, r.text
    await client.post(f"{CLOCK}/advance", headers=admin_headers, json={"frozenTime": "2027-05-02T08:00:00Z"})
    got = [ln for ln in await lines(rt, tenant, account["id"]) if ln[1] >= date(2027, 3, 1)]
    # March billed 31.00, April billed 31.00 (before the back-dated upgrade): March credits 7 days (7.00) and
    # April all of it; Premium 62.00 × 7/31 = 14.00 for March, 62.00 April, 62.00 May
    assert got == [
        ("credit", date(2027, 3, 1), date(2027, 4, 1), D("-7.00")),
        ("recurring", date(2027, 3, 1), date(2027, 4, 1), D("31.00")),
        ("recurring", date(2027, 3, 25), date(2027, 4, 1), D("14.00")),
        ("credit", date(2027, 4, 1), date(2027, 5, 1), D("-31.00")),
        ("recurring", date(2027, 4, 1), date(2027, 5, 1), D("31.00")),
        ("recurring", date(2027, 4, 1), date(2027, 5, 1), D("62.00")),
        ("recurring", date(2027, 5, 1), date(2027, 6, 1), D("62.00"))]
    # a credit never exceeds what was billed for its piece
    assert all(-c[3] <= D("31.00") for c in got if c[0] == "credit")


async def test_no_limit_by_default(client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    r = await client.get(SETTINGS, headers=admin_headers)
    assert r.json()["backdateDays"] is None and r.json()["alignment"] == "calendar"
    account = await billing_account(client, admin_headers, tz="UTC")
    product = await sell(rt, tenant, account, "2020-01-01T00:00:00.000Z", [recurring("31.00", rate="0")])
    r = await change(client, admin_headers, product["id"], "suspend", "2020-02-01")
    assert r.status_code == 201, r.text


# --- anniversary alignment ---------------------------------------------------------------------------------------
def test_anniversary_periods_from_the_31st_and_29_february() -> None:
    got = pieces(date(2027, 1, 31), None, date(2027, 5, 1), 1, "month", 1, date(2027, 1, 31))
    assert [(p.start, p.end) for p in got] == [
        (date(2027, 1, 31), date(2027, 2, 28)), (date(2027, 2, 28), date(2027, 3, 31)),
        (date(2027, 3, 31), date(2027, 4, 30)), (date(2027, 4, 30), date(2027, 5, 31))]
    leap = pieces(date(2028, 2, 29), None, date(2032, 3, 1), 1, "year", 1, date(2028, 2, 29))
    assert [p.start for p in leap] == [date(2028, 2, 29), date(2029, 2, 28), date(2030, 2, 28), date(2031, 2, 28),
                                       date(2032, 2, 29)]
    monthly = pieces(date(2028, 2, 29), None, date(2028, 5, 1), 1, "month", 1, date(2028, 2, 29))
    assert [p.start for p in monthly] == [date(2028, 2, 29), date(2028, 3, 29), date(2028, 4, 29)]
    quarter = anniversary_period(date(2027, 6, 1), date(2027, 1, 31), 3)
    assert quarter == (date(2027, 4, 30), date(2027, 7, 31))
    # the price says, else the tenant's default
    default = TenantBilling(proration.Conventions())
    assert alignment_of({"billingAlignment": "anniversary"}, default, date(2027, 1, 31)) == date(2027, 1, 31)
    assert alignment_of({}, default, date(2027, 1, 31)) is None
    anniv = TenantBilling(proration.Conventions(), alignment="anniversary")
    assert alignment_of({}, anniv, date(2027, 1, 31)) == date(2027, 1, 31)
    assert alignment_of({"billingAlignment": "calendar"}, anniv, date(2027, 1, 31)) is None


@settings(max_examples=300, deadline=None)
@given(st.dates(date(2024, 1, 1), date(2032, 12, 31)), st.sampled_from(["month", "quarter", "year"]),
       st.integers(0, 800))
def test_anniversary_periods_tile_time_from_the_activation(start: date, period: str, later: int) -> None:
    cut = pieces(start, None, start + timedelta(days=later + 1), 1, period, 1, start)
    assert cut[0].start == start and cut[0].whole
    for a, b in itertools.pairwise(cut):
        assert a.end == b.start and b.whole
        assert b.start.day == min(start.day, calendar.monthrange(b.start.year, b.start.month)[1])


@settings(max_examples=300, deadline=None)
@given(st.dates(date(2024, 1, 1), date(2030, 12, 31)), st.integers(1, 400),
       st.decimals(min_value=0, max_value=1000, places=2), st.sampled_from(["EUR", "JPY", "BHD"]),
       st.sampled_from(["actual", "thirty"]))
def test_an_anniversary_period_split_at_any_day_costs_it_whole(start: date, offset: int, amount: Decimal,
                                                               currency: str, day_count: str) -> None:
    conv = proration.Conventions(day_count=day_count)
    p_start, p_end = anniversary_period(start + timedelta(days=offset), start, 1)
    cut = p_start + timedelta(days=offset % max((p_end - p_start).days, 1))
    whole = proration.charge(amount, currency, p_start, p_end, p_start, p_end, conv)
    parts = [proration.charge(amount, currency, s, e, p_start, p_end, conv)
             for s, e in ((p_start, cut), (cut, p_end)) if s < e]
    minor = D(1).scaleb(-{"EUR": 2, "JPY": 0, "BHD": 3}[currency])
    assert abs(sum(parts, D(0)) - whole) <= minor * len(parts)


async def test_anniversary_billing_from_the_31st(client: Any, rt: Any, tenant: str,
                                                 admin_headers: dict[str, str]) -> None:
    r = await client.patch(SETTINGS, headers=admin_headers, json={"alignment": "anniversary"})
    assert r.status_code == 200 and r.json()["alignment"] == "anniversary"
    assert (await client.patch(SETTINGS, headers=admin_headers, json={"alignment": "weekly"})).status_code == 400
    account = await billing_account(client, admin_headers, tz="UTC")
    product = await sell(rt, tenant, account, "2027-01-31T00:00:00.000Z", [recurring("28.00", rate="0")])
    for month in (2, 3, 4):
        await run(rt, tenant, date(2027, month, 1), finalize=True)
    # each period starts on the activation day (clamped), whole: no proration at the start; each is billed on
    # the first bill dated on or after its start (in advance)
    assert await lines(rt, tenant, account["id"]) == [
        ("recurring", date(2027, 1, 31), date(2027, 2, 28), D("28.00")),
        ("recurring", date(2027, 2, 28), date(2027, 3, 31), D("28.00")),
        ("recurring", date(2027, 3, 31), date(2027, 4, 30), D("28.00"))]
    # cancelled on 15 April: the period [31 Mar, 30 Apr) billed on 1 April used 15 of 30 days (14.00)
    r = await change(client, admin_headers, product["id"], "cancel", "2027-04-15")
    assert r.status_code == 201, r.text
    await run(rt, tenant, date(2027, 5, 1), finalize=True)
    got = await lines(rt, tenant, account["id"])
    assert got[2:] == [("credit", date(2027, 3, 31), date(2027, 4, 30), D("-14.00")),
                       ("recurring", date(2027, 3, 31), date(2027, 4, 30), D("28.00"))]
    assert len(got) == 4  # nothing for May
    # recurring charges were billed with it: the tenant's alignment no longer changes (they would be billed again)
    r = await client.patch(SETTINGS, headers=admin_headers, json={"alignment": "calendar"})
    assert r.status_code == 409 and "'alignment' cannot change" in r.json()["message"], r.text
    assert (await client.get(SETTINGS, headers=admin_headers)).json()["alignment"] == "anniversary"


async def test_anniversary_billing_from_29_february(client: Any, rt: Any, tenant: str,
                                                    admin_headers: dict[str, str]) -> None:
    await client.patch(SETTINGS, headers=admin_headers, json={"alignment": "anniversary"})
    account = await billing_account(client, admin_headers, tz="UTC", day=15)
    await sell(rt, tenant, account, "2028-02-29T00:00:00.000Z", [recurring("365.00", rate="0", period="year")])
    await run(rt, tenant, date(2028, 3, 15), finalize=True)
    await run(rt, tenant, date(2029, 3, 15), finalize=True)
    assert await lines(rt, tenant, account["id"]) == [
        ("recurring", date(2028, 2, 29), date(2029, 2, 28), D("365.00")),
        ("recurring", date(2029, 2, 28), date(2030, 2, 28), D("365.00"))]


# --- transfer to another billing account by product order --------------------------------------------------------
async def test_a_transfer_by_order_credits_the_old_account_and_bills_the_new(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    old = await billing_account(client, admin_headers)
    new = await billing_account(client, admin_headers)
    product = await sell(rt, tenant, old, "2027-02-28T23:00:00.000Z", [recurring("31.00", rate="0")])
    await run(rt, tenant, date(2027, 3, 1), finalize=True)
    # the order's change step moved the product to the new account in the inventory before the order completed
    async with rt.db.transaction(tenant) as session:
        ctx = system_context(tenant, session, "http://testserver")
        await session_services().inventory.service.change_product(ctx, product["id"],
                                                                   {"billingAccount": {"id": new["id"]}})
    order = completed_order([{"action": "modify", "product": {"id": product["id"]},
                              "billingAccount": {"id": new["id"]}}], requested="2027-03-16T23:00:00.000Z")
    await deliver(rt, tenant, order)
    await deliver(rt, tenant, order)  # once
    got = await product_changes(client, admin_headers, product["id"])
    assert [(c["kind"], c["effectiveDate"], c["billingAccount"]["id"], c["toBillingAccount"]["id"])
            for c in got] == [("transfer", "2027-03-17", old["id"], new["id"])]
    await run(rt, tenant, date(2027, 4, 1), finalize=True)
    # March billed 31.00 to the old account, used 16 days there: credit 15.00; the new account is billed from
    # 17 March (15.00) and April
    assert await lines(rt, tenant, old["id"]) == [
        ("credit", date(2027, 3, 1), date(2027, 4, 1), D("-15.00")),
        ("recurring", date(2027, 3, 1), date(2027, 4, 1), D("31.00"))]
    assert await lines(rt, tenant, new["id"]) == [
        ("recurring", date(2027, 3, 17), date(2027, 4, 1), D("15.00")),
        ("recurring", date(2027, 4, 1), date(2027, 5, 1), D("31.00"))]
    # back to the old account on 10 April, with a new offering, by one order item: a transfer, then the upgrade
    premium = recurring("62.00", rate="0", name="Premium", price_id=f"pop-premium-{uuid.uuid4().hex[:6]}")
    async with rt.db.transaction(tenant) as session:
        ctx = system_context(tenant, session, "http://testserver")
        await session_services().inventory.service.change_product(ctx, product["id"], {
            "billingAccount": {"id": old["id"]}, "productOffering": {"id": "premium"}, "productPrice": [premium]})
    await deliver(rt, tenant, completed_order([{"action": "modify", "product": {"id": product["id"]},
                                                "billingAccount": {"id": old["id"]},
                                                "productOffering": {"id": "premium"}, "itemPrice": [premium]}],
                                              requested="2027-04-09T22:00:00.000Z"))
    got = await product_changes(client, admin_headers, product["id"])
    assert [(c["kind"], c["effectiveDate"], c["billingAccount"]["id"], c.get("toBillingAccount", {}).get("id"))
            for c in got][1:] == [("transfer", "2027-04-10", new["id"], old["id"]),
                                  ("upgrade", "2027-04-10", old["id"], None)]
    await run(rt, tenant, date(2027, 5, 1), finalize=True)
    # the new account used 9 days of April (9.30): credited 21.70; the old one pays Premium from 10 April
    assert [ln for ln in await lines(rt, tenant, new["id"]) if ln[0] == "credit"] == [
        ("credit", date(2027, 4, 1), date(2027, 5, 1), D("-21.70"))]
    assert len(await lines(rt, tenant, new["id"])) == 3  # nothing for May
    assert [ln for ln in await lines(rt, tenant, old["id"]) if ln[1] >= date(2027, 4, 1)] == [
        ("recurring", date(2027, 4, 10), date(2027, 5, 1), D("43.40")),
        ("recurring", date(2027, 5, 1), date(2027, 6, 1), D("62.00"))]


async def test_a_transfer_without_a_record_of_the_old_account_is_not_prorated(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    old = await billing_account(client, admin_headers)
    new = await billing_account(client, admin_headers)
    product = await sell(rt, tenant, old, "2027-02-28T23:00:00.000Z", [recurring("31.00", rate="0")])
    await deliver(rt, tenant, completed_order([{"action": "modify", "product": {"id": product["id"]},
                                                "billingAccount": {"id": f"nope-{uuid.uuid4().hex[:6]}"}}]))
    assert await product_changes(client, admin_headers, product["id"]) == []
    del new


async def test_the_catalog_price_sets_anniversary_alignment(client: Any, rt: Any, tenant: str,
                                                            admin_headers: dict[str, str]) -> None:
    from tests.billing.test_phase_billing import TMF620, price

    pop = await price(client, admin_headers, billingAlignment="anniversary")
    assert (await client.get(f"{TMF620}/{pop}", headers=admin_headers)).json()["billingAlignment"] == "anniversary"
    r = await client.post(TMF620, headers=admin_headers, json={
        "name": "Fee", "priceType": "oneTime", "price": {"unit": "EUR", "value": "30.00"},
        "billingAlignment": "anniversary"})
    assert r.status_code == 400 and "'billingAlignment' applies only to recurring prices" in r.text, r.text
    r = await client.post(TMF620, headers=admin_headers, json={
        "name": "Plan", "priceType": "recurring", "price": {"unit": "EUR", "value": "30.00"},
        "billingAlignment": "monthly"})
    assert r.status_code == 400 and "billingAlignment" in r.text, r.text
    account = await billing_account(client, admin_headers, tz="UTC")
    calendar_one = await sell(rt, tenant, account, "2027-03-18T00:00:00.000Z", [recurring("31.00", rate="0")])
    await sell(rt, tenant, account, "2027-03-18T00:00:00.000Z",
               [recurring("30.00", rate="0", name="Plan", price_id=pop)])
    await run(rt, tenant, date(2027, 4, 1), finalize=True)
    got = await in_tenant(rt, tenant, "SELECT charge_key, period_start, period_end, amount FROM billing_applied_rate "
                                      "WHERE billing_account_id = :a ORDER BY amount", a=account["id"])
    # the tenant's default (calendar): 14 days of March prorated, then April in advance; the anniversary price: a
    # whole period from 18 March (the next one starts after the bill date)
    assert [(r[1], r[2], r[3]) for r in got] == [(date(2027, 3, 18), date(2027, 4, 1), D("14.00")),
                                                 (date(2027, 3, 18), date(2027, 4, 18), D("30.00")),
                                                 (date(2027, 4, 1), date(2027, 5, 1), D("31.00"))]
    assert calendar_one["id"] in got[0][0]


@settings(max_examples=400, deadline=None)
@given(st.dates(date(2024, 1, 1), date(2030, 12, 31)), st.integers(0, 40), st.integers(0, 400),
       st.decimals(min_value=0, max_value=5000, places=3), st.sampled_from(["EUR", "JPY", "BHD"]),
       st.sampled_from(["actual", "thirty"]), st.booleans())
def test_a_transfer_splits_a_period_between_the_accounts(activation: date, day_offset: int, offset: int,
                                                         amount: Decimal, currency: str, day_count: str,
                                                         anniversary: bool) -> None:
    """The old account keeps what it used (what it was billed less its credit), the new account pays the rest:
    together the period whole to within one minor unit per piece; the credit never exceeds what was billed."""
    conv = proration.Conventions(day_count=day_count)
    align = activation if anniversary else None
    on = activation + timedelta(days=offset)
    (full,) = pieces(on, None, on + timedelta(days=1), 1 + day_offset % 28, "month", 1, align)
    p_start, p_end = full.period_start, full.period_end
    moved = p_start + timedelta(days=offset % max((p_end - p_start).days, 1))
    billed = proration.charge(amount, currency, p_start, p_end, p_start, p_end, conv)
    credit = changes.unused_credit(billed, [(p_start, moved, amount)], currency, p_start, p_end, conv)
    new_piece = proration.charge(amount, currency, moved, p_end, p_start, p_end, conv)
    minor = D(1).scaleb(-{"EUR": 2, "JPY": 0, "BHD": 3}[currency])
    assert D(0) <= credit <= billed
    assert abs((billed - credit) + new_piece - billed) <= 2 * minor


async def test_a_sandbox_tenant_is_created_as_one(rt: Any) -> None:
    from openbss.platform.tenancy import Tenant, create_tenant

    tid = f"sbx-{uuid.uuid4().hex[:8]}"
    async with rt.db.transaction(None) as session:
        await create_tenant(session, "Sandbox", tid, sandbox=True)
        await create_tenant(session, "Production", f"{tid}-p")
    async with rt.db.transaction(None) as session:
        assert (await session.get(Tenant, tid)).sandbox is True  # type: ignore[union-attr]
        assert (await session.get(Tenant, f"{tid}-p")).sandbox is False  # type: ignore[union-attr]


async def test_concurrent_advances_bill_each_cycle_date_once(client: Any, rt: Any, tenant: str,
                                                             admin_headers: dict[str, str]) -> None:
    import asyncio

    await make_sandbox(rt, tenant)
    accounts = [await billing_account(client, admin_headers, tz="UTC") for _ in range(3)]
    for account in accounts:
        await sell(rt, tenant, account, "2027-01-01T00:00:00.000Z", [recurring("31.00", rate="0")])
    await client.post(CLOCK, headers=admin_headers, json={"frozenTime": "2027-01-01T12:00:00Z"})
    answers = await asyncio.gather(*(client.post(f"{CLOCK}/advance", headers=admin_headers,
                                                 json={"frozenTime": f"2027-{m:02d}-15T00:00:00Z"})
                                     for m in (6, 6, 4, 6)))
    assert all(a.status_code in (200, 409) for a in answers), [a.text for a in answers]
    made = sum(a.json()["billed"] for a in answers if a.status_code == 200)
    total = 0
    for account in accounts:
        got = await bills(rt, tenant, account["id"])
        # January to June (the clock ends at 15 June at the latest), one bill per cycle date
        assert [b[0] for b in got] == [date(2027, m, 1) for m in range(1, 7)]
        total += len(got)
    assert made == total == 18  # each reported by the advance that made it


async def test_advancing_in_steps_bills_what_one_advance_bills(client: Any, rt: Any, tenant: str, other_tenant: str,
                                                               ) -> None:
    """Eight advances over a year, and one advance over the same year on another tenant, make the same bills line
    for line (a sale mid-month, a back-dated upgrade, a cancellation, a grace period, cycle day 31)."""
    from tests.conftest import bearer

    async def year(t: str, stops: list[str]) -> tuple[list[Any], list[Any]]:
        h = bearer(t, "admin")
        await make_sandbox(rt, t)
        assert (await client.patch(SETTINGS, headers=h, json={"graceDays": 3})).status_code == 200
        account = await billing_account(client, h, tz="Europe/Paris", day=31)
        product = await sell(rt, t, account, "2027-01-17T10:00:00.000Z", [recurring("29.99", rate="0")])
        await client.post(CLOCK, headers=h, json={"frozenTime": "2027-01-01T00:00:00Z"})
        for stop in stops:
            if stop == "changes":
                r = await change(client, h, product["id"], "upgrade", "2027-05-10",
                                 productPrice=[recurring("45.50", rate="0", name="Premium", price_id="pop-premium")])
                assert r.status_code == 201, r.text
                r = await change(client, h, product["id"], "cancel", "2027-10-20")
                assert r.status_code == 201, r.text
                continue
            r = await client.post(f"{CLOCK}/advance", headers=h, json={"frozenTime": stop})
            assert r.status_code == 200, r.text
        return await lines(rt, t, account["id"]), await bills(rt, t, account["id"])

    stepped = await year(tenant, ["changes", *(f"2027-{m:02d}-{d:02d}T12:00:00Z" for m, d in (
        (2, 1), (3, 2), (4, 15), (5, 31), (7, 1), (9, 30), (11, 3), (12, 31))), "2027-12-31T12:00:00Z"])
    at_once = await year(other_tenant, ["changes", "2027-12-31T12:00:00Z"])
    assert stepped[0] == at_once[0]
    assert [(b[0], b[1], b[2]) for b in stepped[1]] == [(b[0], b[1], b[2]) for b in at_once[1]]
    assert {b[1] for b in stepped[1]} == {"validated"}  # the grace period of each is over by 31 December
    assert [b[0] for b in stepped[1]] == [date(2027, 1, 31), date(2027, 2, 28), date(2027, 3, 31),
                                          date(2027, 4, 30), date(2027, 5, 31), date(2027, 6, 30),
                                          date(2027, 7, 31), date(2027, 8, 31), date(2027, 9, 30)]
    # the changes were known before their periods were billed: no credit, each piece billed at its price
    assert [b[2] for b in stepped[1]] == [D(v) for v in ("43.53", "29.99", "29.99", "9.67", "76.32", "45.50",
                                                          "45.50", "45.50", "29.35")]


async def test_charging_follows_the_test_clock_renewals_and_prepaid_fees(client: Any, rt: Any, tenant: str,
                                                                        admin_headers: dict[str, str]) -> None:
    from datetime import UTC, datetime

    from openbss.billing import events
    from openbss.charging import clock
    from openbss.charging import service as charging
    from tests.charging.test_renewal_fees import facts, open_line
    from tests.conftest import deliver_all

    assert (clock.CLOCK_API, clock.CLOCK_EVENT) == (events.CLOCK_API, events.CLOCK_EVENT)
    clocks = session_services().charging.clocks
    await make_sandbox(rt, tenant)
    start = datetime(2027, 3, 1, tzinfo=UTC)
    r = await client.post(CLOCK, headers=admin_headers, json={"frozenTime": "2027-03-01T00:00:00Z"})
    assert r.status_code == 201, r.text
    line = await open_line(rt, tenant, "+33611119001", "50.00", start)  # the first period's fee at activation
    await deliver_all(rt)
    assert (await facts(rt, tenant, line["id"]))["fees"] == [("paid", 999, True)]
    # three months later by the clock: April, May and June renewed, each fee taken from the money, once
    r = await client.post(f"{CLOCK}/advance", headers=admin_headers, json={"frozenTime": "2027-06-01T00:30:00Z"})
    assert r.status_code == 200, r.text
    await deliver_all(rt)
    f = await facts(rt, tenant, line["id"])
    assert f["fees"] == [("paid", 999, True)] * 4 and f["money"] == 5000 - 4 * 999 and f["charges"] == (4, 3996)
    assert f["events"] == ["paid"] * 4
    async with rt.db.transaction(tenant) as session:
        ends = sorted(r[0] for r in (await session.execute(text(
            "SELECT valid_to FROM charging_bucket WHERE account_id = :a AND source = 'allowance'"),
            {"a": line["id"]})).all())
    assert ends[-1] == datetime(2027, 7, 1, tzinfo=UTC)  # June's allowance, granted by the clock
    # the hourly renewal runs at the clock's time: nothing more is due (real time would renew nothing either)
    assert await charging.renew_due_allowances(rt.db, tenant, clocks=clocks) == 0
    # an advance to a time already reached, and the event delivered again, take nothing more
    await client.post(f"{CLOCK}/advance", headers=admin_headers, json={"frozenTime": "2027-06-01T00:30:00Z"})
    await deliver_all(rt)
    assert (await facts(rt, tenant, line["id"]))["money"] == 5000 - 4 * 999
    # the money runs out: July is recorded unpaid and grants no allowance
    await client.post(f"{CLOCK}/advance", headers=admin_headers, json={"frozenTime": "2027-08-01T00:30:00Z"})
    await deliver_all(rt)
    f = await facts(rt, tenant, line["id"])
    assert f["money"] == 5000 - 5 * 999 and f["fees"][-1][0] == "unpaid"
    # the clock deleted: charging is back to real time
    async with rt.db.transaction(tenant) as session:
        assert await clocks.clock_time(session, tenant) == datetime(2027, 8, 1, 0, 30, tzinfo=UTC)
    assert (await client.delete(CLOCK, headers=admin_headers)).status_code == 204
    await deliver_all(rt)
    async with rt.db.transaction(tenant) as session:
        assert await clocks.clock_time(session, tenant) is None
