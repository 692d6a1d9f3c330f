"""Proration of product changes (upgrade, downgrade, suspend/resume, transfer, cancel), effective immediately, at
the end of the term or on a date; credits for the unused part capped by what was billed. Worked figures."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from openbss.pricing import changes
from openbss.pricing.changes import Change, Segment, charged_parts, timeline, unused_credit
from tests.billing.helpers import billing_account, in_tenant, one_time, recurring, run, sell

CHANGE = "/billing/v1/productChange"
D = Decimal


def test_a_timeline_through_changes() -> None:
    segs = timeline(date(2027, 3, 1), "A", [("p", D(31))], [
        Change(date(2027, 3, 10), "suspend"), Change(date(2027, 3, 20), "resume"),
        Change(date(2027, 4, 5), "upgrade", (("q", D(62)),)), Change(date(2027, 5, 1), "transfer", to_account="B"),
        Change(date(2027, 6, 1), "cancel")])
    assert segs == [Segment(date(2027, 3, 1), date(2027, 3, 10), "A", (("p", D(31)),)),
                    Segment(date(2027, 3, 10), date(2027, 3, 20), "A", (("p", D(31)),), True),
                    Segment(date(2027, 3, 20), date(2027, 4, 5), "A", (("p", D(31)),)),
                    Segment(date(2027, 4, 5), date(2027, 5, 1), "A", (("q", D(62)),)),
                    Segment(date(2027, 5, 1), date(2027, 6, 1), "B", (("q", D(62)),))]
    assert charged_parts(date(2027, 3, 1), date(2027, 4, 1), segs, "A", "p") == [
        (date(2027, 3, 1), date(2027, 3, 10), D(31)), (date(2027, 3, 20), date(2027, 4, 1), D(31))]
    # March billed 31.00 in advance; used 9 + 12 days: 9.00 + 12.00; credit 10.00
    used = charged_parts(date(2027, 3, 1), date(2027, 4, 1), segs, "A", "p")
    assert unused_credit(D("31.00"), used, "EUR", date(2027, 3, 1), date(2027, 4, 1)) == D("10.00")


@settings(max_examples=300, deadline=None)
@given(st.decimals(min_value=0, max_value=1000, places=2), st.decimals(min_value=0, max_value=2000, places=2),
       st.lists(st.tuples(st.integers(0, 30), st.integers(0, 30)), max_size=4))
def test_a_credit_is_never_negative_nor_more_than_was_billed(billed: Decimal, amount: Decimal,
                                                              cuts: list[tuple[int, int]]) -> None:
    start = date(2028, 2, 1)
    used = [(date(2028, 2, 1 + min(a, b)), date(2028, 2, 1 + max(a, b) if max(a, b) < 29 else 29)
             if max(a, b) < 29 else date(2028, 3, 1), amount) for a, b in cuts if min(a, b) < 29]
    used = [(s, e, a) for s, e, a in used if s < e]
    credit = unused_credit(billed, used, "EUR", start, date(2028, 3, 1))
    assert D(0) <= credit <= billed


async def lines(rt: Any, tenant: str, account_id: str) -> list[tuple[str, date, date, Decimal]]:
    rows = await in_tenant(rt, tenant, "SELECT charge_key, period_start, period_end, amount FROM billing_applied_rate "
                                       "WHERE billing_account_id = :a ORDER BY period_start, amount", a=account_id)
    return [(r[0].split("|")[0], r[1], r[2], r[3]) for r in rows]


async def change(client: Any, h: dict[str, str], product: str, kind: str, effective: str, **extra: Any) -> Any:
    return await client.post(CHANGE, headers=h, json={"product": {"id": product}, "kind": kind,
                                                      "effective": effective, **extra})


async def test_an_upgrade_mid_month_credits_the_old_price_and_charges_the_new(client: Any, rt: Any, tenant: str,
                                                                              admin_headers: dict[str, str]) -> None:
    account = await billing_account(client, admin_headers)
    product = await sell(rt, tenant, account, "2027-02-28T23:00:00.000Z", [recurring("31.00", rate="0")])
    await run(rt, tenant, date(2027, 3, 1), finalize=True)
    r = await change(client, admin_headers, product["id"], "upgrade", "2027-03-17",
                     productPrice=[recurring("62.00", rate="0", name="Premium", price_id="pop-premium"),
                                   one_time("49.00", rate="0", name="New device")])
    assert r.status_code == 201, r.text
    assert r.json()["effectiveDate"] == "2027-03-17"
    await run(rt, tenant, date(2027, 4, 1), finalize=True)
    # March billed 31.00; used 16 days (16.00): credit 15.00; Premium 62.00 × 15/31 = 30.00, then April 62.00;
    # the upgrade's one-time fee once, on the day it took effect
    assert await lines(rt, tenant, account["id"]) == [
        ("credit", date(2027, 3, 1), date(2027, 4, 1), D("-15.00")),
        ("recurring", date(2027, 3, 1), date(2027, 4, 1), D("31.00")),
        ("recurring", date(2027, 3, 17), date(2027, 4, 1), D("30.00")),
        ("oneTime", date(2027, 3, 17), date(2027, 3, 17), D("49.00")),
        ("recurring", date(2027, 4, 1), date(2027, 5, 1), D("62.00"))]
    again = await run(rt, tenant, date(2027, 4, 1), finalize=True)
    assert again.billed == 0 and len(await lines(rt, tenant, account["id"])) == 5
    await run(rt, tenant, date(2027, 5, 1), finalize=True)
    assert len(await lines(rt, tenant, account["id"])) == 6  # May; the fee is not charged again


async def test_no_recurring_charge_while_suspended(client: Any, rt: Any, tenant: str,
                                                   admin_headers: dict[str, str]) -> None:
    account = await billing_account(client, admin_headers)
    product = await sell(rt, tenant, account, "2027-02-28T23:00:00.000Z", [recurring("31.00", rate="0")])
    await run(rt, tenant, date(2027, 3, 1), finalize=True)
    assert (await change(client, admin_headers, product["id"], "suspend", "2027-03-10")).status_code == 201
    r = await change(client, admin_headers, product["id"], "suspend", "2027-03-12")
    assert r.status_code == 409 and r.json()["code"] == "ALREADY_SUSPENDED", r.text
    assert (await change(client, admin_headers, product["id"], "resume", "2027-03-20")).status_code == 201
    await run(rt, tenant, date(2027, 4, 1), finalize=True)
    # suspended 10–20 March: used 9 + 12 of 31 days, credit 31.00 − 21.00; the resumed part was billed in advance
    assert await lines(rt, tenant, account["id"]) == [
        ("credit", date(2027, 3, 1), date(2027, 4, 1), D("-10.00")),
        ("recurring", date(2027, 3, 1), date(2027, 4, 1), D("31.00")),
        ("recurring", date(2027, 4, 1), date(2027, 5, 1), D("31.00"))]
    assert (await change(client, admin_headers, product["id"], "suspend", "2027-04-10")).status_code == 201
    await run(rt, tenant, date(2027, 5, 1), finalize=True)
    got = await lines(rt, tenant, account["id"])
    # April (30 days) used 9: 31.00 × 9/30 = 9.30, credit 21.70; nothing for May while suspended
    assert got[2:] == [("credit", date(2027, 4, 1), date(2027, 5, 1), D("-21.70")),
                       ("recurring", date(2027, 4, 1), date(2027, 5, 1), D("31.00"))]


async def test_a_transfer_moves_the_charge_to_the_other_account(client: Any, rt: Any, tenant: str,
                                                                 admin_headers: dict[str, str]) -> None:
    a = await billing_account(client, admin_headers)
    b = await billing_account(client, admin_headers)
    product = await sell(rt, tenant, a, "2027-02-28T23:00:00.000Z", [recurring("31.00", rate="0")])
    await run(rt, tenant, date(2027, 3, 1), finalize=True)
    r = await change(client, admin_headers, product["id"], "transfer", "2027-03-17",
                     toBillingAccount={"id": b["id"]})
    assert r.status_code == 201, r.text
    await run(rt, tenant, date(2027, 4, 1), finalize=True)
    assert await lines(rt, tenant, a["id"]) == [
        ("credit", date(2027, 3, 1), date(2027, 4, 1), D("-15.00")),
        ("recurring", date(2027, 3, 1), date(2027, 4, 1), D("31.00"))]
    assert await lines(rt, tenant, b["id"]) == [
        ("recurring", date(2027, 3, 17), date(2027, 4, 1), D("15.00")),
        ("recurring", date(2027, 4, 1), date(2027, 5, 1), D("31.00"))]


async def test_effective_at_the_end_of_term_and_bad_changes(client: Any, rt: Any, tenant: str,
                                                            admin_headers: dict[str, str]) -> None:
    account = await billing_account(client, admin_headers)
    today = datetime.now(UTC).astimezone(ZoneInfo("Europe/Paris")).date()
    product = await sell(rt, tenant, account, "2026-10-31T23:00:00.000Z", [recurring("31.00", rate="0")])
    r = await change(client, admin_headers, product["id"], "downgrade", "endOfTerm",
                     productPrice=[recurring("10.00", rate="0", price_id="pop-lite")])
    assert r.status_code == 201, r.text
    nxt = date(today.year + (today.month == 12), today.month % 12 + 1, 1)
    assert r.json()["effectiveDate"] == nxt.isoformat()  # the end of the current monthly period
    r = await change(client, admin_headers, product["id"], "cancel", "immediate")
    assert r.status_code == 400 and "before the product's last change" in r.json()["message"], r.text
    for body, words in [
        ({"product": {"id": product["id"]}, "kind": "teleport"}, "'kind'"),
        ({"product": {"id": "nope"}, "kind": "cancel"}, "product 'nope' not found"),
        ({"product": {"id": product["id"]}, "kind": "upgrade", "effective": "endOfTerm"}, "'productPrice'"),
        ({"product": {"id": product["id"]}, "kind": "transfer", "effective": "endOfTerm"}, "'toBillingAccount.id'"),
        ({"product": {"id": product["id"]}, "kind": "cancel", "effective": "someday"}, "'effective'"),
        ({"product": {"id": product["id"]}, "kind": "cancel", "effective": "2026-01-01"}, "before the product's"),
    ]:
        r = await client.post(CHANGE, headers=admin_headers, json=body)
        assert r.status_code == 400 and words in r.json()["message"], (body, r.text)
    r = await change(client, admin_headers, product["id"], "resume", "endOfTerm")
    assert r.status_code == 409 and r.json()["code"] == "NOT_SUSPENDED", r.text
    listed = await client.get(CHANGE, headers=admin_headers, params={"product.id": product["id"]})
    assert [c["kind"] for c in listed.json()] == ["downgrade"]
    assert changes.KINDS == ("upgrade", "downgrade", "cancel", "suspend", "resume", "transfer")


@settings(max_examples=300, deadline=None)
@given(st.dates(date(2027, 1, 1), date(2028, 12, 31)), st.integers(1, 31),
       st.lists(st.integers(0, 40), min_size=0, max_size=6, unique=True),
       st.decimals(min_value=0, max_value=500, places=2), st.sampled_from(["EUR", "JPY", "BHD"]))
def test_suspensions_within_a_billed_period_credit_exactly_the_days_off(start: date, day: int, offsets: list[int],
                                                                         amount: Decimal, currency: str) -> None:
    """A period billed whole in advance, then suspended and resumed on any days (month ends, leap years): what is
    kept (billed − credit) is what the days used cost, to within one minor unit per part, and the credit is
    between zero and what was billed."""
    from openbss.pricing import proration
    from openbss.pricing.cycles import cycle_period
    from openbss.pricing.money import MINOR_UNITS

    p_start, p_end = cycle_period(start, day)
    kinds = ["suspend", "resume"] * 3
    moves = [Change(min(p_start + timedelta(days=o), p_end), kinds[i]) for i, o in enumerate(sorted(offsets))]
    segs = timeline(p_start, "A", [("p", amount)], moves)
    billed = proration.charge(amount, currency, p_start, p_end, p_start, p_end)
    used = charged_parts(p_start, p_end, segs, "A", "p")
    credit = unused_credit(billed, used, currency, p_start, p_end)
    assert D(0) <= credit <= billed
    exact = sum((Decimal(amount) * Decimal((e - s).days) / Decimal((p_end - p_start).days) for s, e, _ in used),
                D(0))
    unit = D(1).scaleb(-MINOR_UNITS[currency])
    assert abs((billed - credit) - exact) <= unit * (len(used) + 1)
