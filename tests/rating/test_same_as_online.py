"""One source of truth for the money: for the same usage, batch rating charges exactly what online charging's
real-time path (``charging.sessions.Ledger``: direct debiting, or a session reported in increments) charges —
per record, allowance units included, for any rate (price, unit, increments or none, setup charged with money or
always, graduated tiers, blocks rounded on their own, a maximum charge, allowances in their own blocks)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from openbss.charging.sessions import Ledger
from openbss.rating.layouts import UsageRecord
from openbss.rating.rater import Line, allowance_quantity, rate_record

START = datetime(2026, 11, 2, tzinfo=UTC)


@st.composite
def rates(draw: st.DrawFn) -> dict[str, Any]:
    per = draw(st.sampled_from([1, 60, 1024, 1048576]))
    doc: dict[str, Any] = {
        "currency": draw(st.sampled_from(["EUR", "JPY", "BHD"])),
        "price": str(draw(st.decimals(min_value=0, max_value=5, places=4))),
        "per": str(per), "initial": draw(st.integers(1, 120)), "subsequent": draw(st.integers(1, 60)),
        "setup": str(draw(st.decimals(min_value=0, max_value=1, places=2))), "tiers": [], "priceId": "p",
    }
    if draw(st.booleans()):
        edge = draw(st.integers(1, 50))
        doc["tiers"] = [{"start": "0", "end": str(edge), "price": str(draw(st.decimals(0, 2, places=3)))},
                        {"start": str(edge), "end": None, "price": str(draw(st.decimals(0, 2, places=3)))}]
    if draw(st.booleans()):  # no increments: rated per the unit of measure
        del doc["initial"], doc["subsequent"]
    if draw(st.booleans()):
        doc["rounding"] = draw(st.sampled_from(["up", "down", "halfUp", "halfEven"]))
        doc["decimals"] = draw(st.integers(0, 5))
    if draw(st.booleans()):
        doc["setupAlways"] = True
    if draw(st.booleans()):
        doc["maxCharge"] = str(draw(st.decimals(min_value=0, max_value=3, places=2)))
    if draw(st.booleans()):  # allowances counted in their own blocks
        doc["allowanceInitial"] = draw(st.integers(1, 90))
        if draw(st.booleans()):
            doc["allowanceSubsequent"] = draw(st.integers(1, 30))
    return doc


def _ledger(allowance: int | None) -> Ledger:
    buckets = [{"id": "money", "unit": "money", "remaining": 0, "reserved": 0, "initial": 0,
                "lower_limit": -10**18, "valid_from": None, "valid_to": None, "priority": 1000, "zones": None,
                "threshold_level": 0, "source": "main"}]
    if allowance is not None:
        buckets.append({"id": "allowance", "unit": "data", "remaining": allowance, "reserved": 0,
                        "initial": allowance, "lower_limit": 0, "valid_from": None, "valid_to": None,
                        "priority": 100, "zones": None, "threshold_level": 0, "source": "allowance"})
    account = {"quota_validity_seconds": 300, "low_balance_minor": 0}
    return Ledger.load(account, buckets, [], START.timestamp())


@settings(max_examples=300, deadline=None)
@given(rate=rates(), allowance=st.one_of(st.none(), st.integers(0, 5000)),
       usage=st.lists(st.tuples(st.integers(0, 4000), st.lists(st.integers(0, 1500), max_size=4)),
                      min_size=1, max_size=8))
def test_batch_and_real_time_charge_the_same(rate: dict[str, Any], allowance: int | None,
                                             usage: list[tuple[int, list[int]]]) -> None:
    plan_entry = {"priceId": "p", "currency": rate["currency"], "price": rate["price"], "per": rate["per"],
                  "allowances": [] if allowance is None else [{"quantity": {"amount": allowance, "units": "B"}}]}
    line = Line(account_id="acc", msisdn="33600000000", product_id=None, offering_id=None,
                billing_account_id=None, party_id=None, party_type="Individual", currency=rate["currency"],
                time_zone="UTC", plan={"data": plan_entry})
    ledger = _ledger(allowance)
    consumed: dict[tuple[str, str, str], int] = {}
    batch_total = 0
    for i, (first, more) in enumerate(usage):
        quantity = first + sum(more)
        record = UsageRecord(key=str(i), record_id=str(i), origin="t", msisdn=line.msisdn,
                             event_time=START + timedelta(minutes=i), usage_type="data", quantity=quantity)
        batch = rate_record(record, line, rate, consumed)
        if not more and "allowanceInitial" not in rate:  # an event, debited directly
            n = len(ledger.debits)
            ledger.charge_event(1, "data", quantity, rate)
            online_amount = sum(d.amount_minor for d in ledger.debits[n:])
            online_allowance = sum(d.allowance_units for d in ledger.debits[n:])
        else:  # a session reported in increments (UPDATE, UPDATE, ..., TERMINATE)
            res = ledger.open_reservation(i, 1, "data", rate)
            steps = [ledger.debit(res, step) for step in [first, *more]]
            online_amount = sum(d.amount_minor for d in steps)
            online_allowance = sum(d.allowance_units for d in steps)
        assert (batch.amount_minor, batch.allowance_units) == (online_amount, online_allowance)
        batch_total += batch.amount_minor
    assert -ledger.buckets["money"].d_remaining == batch_total  # the balance moved by what batch rating charged
    assert sum(consumed.values()) == (0 if allowance is None else
                                      allowance - (ledger.buckets["allowance"].remaining
                                                   + ledger.buckets["allowance"].d_remaining))


def test_a_known_case() -> None:
    """0.60 EUR per minute, 60/1 increments, 100 s of which 30 from an allowance: 70 s... the increments apply to
    the whole call (billable 100 s), the allowance covers 30 s, 70 s are charged: 0.70 EUR."""
    rate = {"currency": "EUR", "price": "0.60", "per": "60", "initial": 60, "subsequent": 1, "tiers": [],
            "priceId": "v"}
    line = Line(account_id="a", msisdn="1", product_id=None, offering_id=None, billing_account_id=None,
                party_id=None, party_type="Individual", currency="EUR", time_zone="UTC",
                plan={"voice": {"priceId": "v", "allowances": [{"quantity": {"amount": 30, "units": "second"}}]}})
    record = UsageRecord(key="k", record_id="k", origin="t", msisdn="1", event_time=START, usage_type="voice",
                         quantity=100, called_number="33142000000")
    rated = rate_record(record, line, rate, {})
    assert (rated.billable_units, rated.allowance_units, rated.amount_minor) == (100, 30, 70)
    assert Decimal(rated.amount_minor) / 100 == Decimal("0.70")


def test_allowances_count_in_online_charging_bucket_units() -> None:
    """An MMS allowance counts MMS (as online charging's MMS bucket), minutes count seconds, GB count bytes."""
    assert allowance_quantity({"quantity": {"amount": 5, "units": "MMS"}}, "mms") == 5
    assert allowance_quantity({"quantity": {"amount": 2, "units": "minute"}}, "voice") == 120
    assert allowance_quantity({"quantity": {"amount": 1, "units": "GB"}}, "data") == 1024**3
    assert allowance_quantity({"quantity": {"amount": 3, "units": "SMS"}}, "sms") == 3
