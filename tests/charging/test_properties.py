"""Properties of credit control over one account (the ledger that decides every request, in memory):

* splitting a session's usage into any number of UPDATE reports charges the same as one TERMINATE, per funding
  source (each allowance bucket, each money bucket);
* a network that uses no more than it was granted never takes a prepaid bucket below its floor;
* every charged unit appears in exactly one usage record: the records add up to the buckets' movements.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from openbss.charging.sessions import Ledger

ACCOUNT = {"quota_validity_seconds": 300, "low_balance_minor": 0}


@st.composite
def rate_docs(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "currency": draw(st.sampled_from(["EUR", "JPY", "KWD"])),
        "price": str(draw(st.decimals(min_value=Decimal(0), max_value=Decimal(5), places=3))),
        "per": str(draw(st.sampled_from([1, 60, 1000, 1048576]))),
        "setup": draw(st.sampled_from(["0", "0.10"])),
        "tiers": [], "zone": "NAT",
    }
    if draw(st.booleans()):
        doc["initial"] = draw(st.integers(1, 120))
        doc["subsequent"] = draw(st.integers(1, 60))
    if draw(st.booleans()):
        doc["decimals"] = draw(st.integers(0, 4))
        doc["rounding"] = draw(st.sampled_from(["up", "down", "halfUp"]))
    if draw(st.booleans()):
        doc["setupAlways"] = True
    if draw(st.booleans()):
        doc["allowanceInitial"] = draw(st.integers(1, 60))
        doc["allowanceSubsequent"] = draw(st.integers(1, 60))
    if draw(st.booleans()):
        doc["maxCharge"] = str(draw(st.decimals(min_value=Decimal(0), max_value=Decimal(20), places=2)))
    if draw(st.booleans()):
        cut = draw(st.integers(1, 50))
        doc["tiers"] = [{"start": "0", "end": str(cut), "price": doc["price"]},
                        {"start": str(cut), "end": None, "price": str(draw(st.decimals(
                            min_value=Decimal(0), max_value=Decimal(5), places=3)))}]
    return doc


def bucket(bid: str, unit: str, remaining: int, *, lower: int = 0, priority: int = 100,
           source: str = "allowance") -> dict[str, Any]:
    return {"id": bid, "unit": unit, "remaining": remaining, "reserved": 0, "initial": max(remaining, 0),
            "lower_limit": lower, "valid_from": None, "valid_to": None, "priority": priority, "zones": None,
            "threshold_level": 0, "source": source}


@st.composite
def accounts(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Allowance buckets of voice, a bonus money bucket consumed first, the main (prepaid) money bucket."""
    rows = [bucket(f"allowance-{i}", "voice", draw(st.integers(0, 300)), priority=50 + i)
            for i in range(draw(st.integers(0, 2)))]
    if draw(st.booleans()):
        rows.append(bucket("bonus", "money", draw(st.integers(0, 500)), priority=10, source="topup"))
    rows.append(bucket("main", "money", draw(st.integers(0, 5000)), priority=1000, source="main"))
    return rows


def movements(ledger: Ledger) -> dict[str, int]:
    return {b.id: b.d_remaining for b in ledger.buckets.values()}


def session(rows: list[dict[str, Any]], rate: dict[str, Any], reports: list[int]) -> Ledger:
    ledger = Ledger.load(ACCOUNT, rows, [], 0.0)
    res = ledger.open_reservation(1, 1, "voice", rate)
    for used in reports:
        ledger.debit(res, used)
    return ledger


@settings(max_examples=400, deadline=None)
@given(accounts(), rate_docs(), st.lists(st.integers(0, 400), min_size=1, max_size=12))
def test_updates_charge_the_same_as_one_terminate_per_funding_source(rows: list[dict[str, Any]],
                                                                    rate: dict[str, Any], reports: list[int]) -> None:
    split = session(rows, rate, reports)
    once = session(rows, rate, [sum(reports)])
    assert movements(split) == movements(once)
    assert sum(d.amount_minor for d in split.debits) == sum(d.amount_minor for d in once.debits)
    assert sum(d.allowance_units for d in split.debits) == sum(d.allowance_units for d in once.debits)


@settings(max_examples=400, deadline=None)
@given(accounts(), rate_docs(), st.lists(st.tuples(st.integers(1, 400), st.floats(0, 1)), min_size=1, max_size=10))
def test_grants_keep_prepaid_buckets_above_their_floor_and_usage_records_add_up(
        rows: list[dict[str, Any]], rate: dict[str, Any], requests: list[tuple[int, float]]) -> None:
    ledger = Ledger.load(ACCOUNT, rows, [], 0.0)
    res = ledger.open_reservation(1, 1, "voice", rate)
    granted = 0
    reported = 0
    for want, share in requests:
        used = int(granted * share)  # the network uses at most what it was granted
        ledger.debit(res, used)
        reported += used
        grant = ledger.grant(res, want)
        granted = grant.units
        for b in ledger.buckets.values():  # holds never pass a floor either
            assert b.remaining + b.d_remaining - b.reserved - b.d_reserved >= b.lower_limit, b
        if grant.units == 0:
            break
    ledger.debit(res, granted)  # TERMINATE: the last grant used up
    reported += granted
    for b in ledger.buckets.values():
        assert b.remaining + b.d_remaining >= b.lower_limit, b
        assert b.reserved + b.d_reserved == 0  # the debit released the holds
    # every charged unit is in exactly one usage record
    money = -sum(b.d_remaining for b in ledger.buckets.values() if b.unit == "money")
    allowance = -sum(b.d_remaining for b in ledger.buckets.values() if b.unit == "voice")
    assert sum(d.amount_minor for d in ledger.debits) == money
    assert sum(d.allowance_units for d in ledger.debits) == allowance
    assert sum(d.units for d in ledger.debits) == reported == res.used_units
    if "allowanceInitial" not in rate:  # (with their own blocks, allowance_units are the used units they covered)
        assert sum(d.billable_units for d in ledger.debits) == res.allowance_units + res.money_units
