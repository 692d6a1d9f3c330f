"""The vectorized core gives the scalar path's figures exactly: same billable units, allowance units and minor
units per record, allowances in event-time order per counter; the longest-prefix lookup agrees with the pricing
prefix table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openbss.pricing.rating import PrefixTable
from openbss.pricing.usage import UnitRate
from openbss.rating.layouts import UsageRecord
from openbss.rating.rater import Line, in_event_order, rate_record, unit_rate
from openbss.rating.vectorized import VectorizedRateError, longest_prefix, rate_frame

START = datetime(2026, 11, 1, tzinfo=UTC)


@st.composite
def rate_docs(draw: st.DrawFn) -> dict[str, Any]:
    doc = {"currency": draw(st.sampled_from(["EUR", "JPY", "BHD"])),
           "price": str(draw(st.decimals(min_value=0, max_value=3, places=5))),
           "per": str(draw(st.sampled_from([1, 60, 1024, 1048576]))),
           "initial": draw(st.integers(1, 90)), "subsequent": draw(st.integers(1, 60)),
           "setup": str(draw(st.decimals(min_value=0, max_value=1, places=3))), "tiers": [], "priceId": "p"}
    if draw(st.booleans()):  # no increments: rated per the unit of measure
        del doc["initial"], doc["subsequent"]
    if draw(st.booleans()):
        doc["setupAlways"] = True
    if draw(st.booleans()):
        doc["maxCharge"] = str(draw(st.decimals(min_value=0, max_value=50, places=3)))
    return doc


@settings(max_examples=150, deadline=None)
@given(rates=st.lists(rate_docs(), min_size=1, max_size=3),
       allowances=st.lists(st.one_of(st.none(), st.integers(0, 20000)), min_size=1, max_size=3),
       records=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(0, 10**7),
                                  st.integers(0, 60 * 24 * 40)), min_size=1, max_size=40))
def test_vectorized_equals_scalar(rates: list[dict[str, Any]], allowances: list[int | None],
                                  records: list[tuple[int, int, int, int]]) -> None:
    items = []
    for i, (acc, rate_i, quantity, minute) in enumerate(records):
        acc %= len(allowances)
        rate_i %= len(rates)
        allowance = allowances[acc]
        doc = rates[rate_i]
        entry = {"priceId": "p", "allowances": [] if allowance is None else
                 [{"quantity": {"amount": allowance, "units": "B"}}]}
        line = Line(account_id=f"a{acc}", msisdn="1", product_id=None, offering_id=None, billing_account_id=None,
                    party_id=None, party_type="Individual", currency=doc["currency"], time_zone="Europe/Paris",
                    plan={"data": entry})
        record = UsageRecord(key=f"k{i:04d}", record_id=str(i), origin="t", msisdn="1",
                             event_time=START + timedelta(minutes=minute), usage_type="data", quantity=quantity)
        items.append((record, line, rate_i))
    consumed: dict[tuple[str, str, str], int] = {}
    scalar = {}
    by_key = {r.key: (r, ln, ri) for r, ln, ri in items}
    for record, line in in_event_order((r, ln) for r, ln, _ in items):
        rated = rate_record(record, line, rates[by_key[record.key][2]], consumed)
        scalar[record.key] = (rated.billable_units, rated.allowance_units, rated.amount_minor, rated.period)
    frame = pl.DataFrame({
        "key": [r.key for r, _, _ in items], "rate": [ri for _, _, ri in items],
        "quantity": [r.quantity for r, _, _ in items], "event_time": [r.event_time for r, _, _ in items],
        "counter": [None if allowances[int(ln.account_id[1:])] is None else
                    f"{ln.account_id}|{scalar[r.key][3]}|p:0" for r, ln, _ in items],
        "allowance": [allowances[int(ln.account_id[1:])] for _, ln, _ in items],
    }, schema_overrides={"quantity": pl.Int64, "allowance": pl.Int64, "rate": pl.Int32})
    out = rate_frame(frame, [unit_rate(d) for d in rates])
    got = {row["key"]: (row["billable"], row["allowance_units"], row["amount_minor"])
           for row in out.iter_rows(named=True)}
    assert got == {k: v[:3] for k, v in scalar.items()}


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.from_regex(r"[1-9][0-9]{0,6}", fullmatch=True), st.sampled_from("ABCDE"), min_size=1),
       st.lists(st.from_regex(r"[1-9][0-9]{0,11}", fullmatch=True), min_size=1, max_size=30))
def test_longest_prefix_agrees_with_the_prefix_table(prefixes: dict[str, str], numbers: list[str]) -> None:
    table = PrefixTable(prefixes)
    prefix, zone = longest_prefix(pl.col("n"), prefixes)
    out = pl.DataFrame({"n": numbers}).select(prefix.alias("p"), zone.alias("z"))
    expected = [table.match(n) for n in numbers]
    assert list(zip(out["p"].to_list(), out["z"].to_list(), strict=True)) == \
        [(m[0], m[1]) if m else (None, None) for m in expected]


def test_tiers_and_overflow_go_to_the_scalar_path() -> None:
    from openbss.pricing.tiers import Tier

    tiered = UnitRate("EUR", Decimal(0), tiers=(Tier(Decimal(0), None, Decimal("0.1")),))
    frame = pl.DataFrame({"key": ["a"], "rate": [0], "quantity": [5], "event_time": [START], "counter": [None],
                          "allowance": [None]}, schema_overrides={"allowance": pl.Int64, "counter": pl.String})
    with pytest.raises(VectorizedRateError, match="tiered"):
        rate_frame(frame, [tiered])
    with pytest.raises(VectorizedRateError, match="per block"):
        rate_frame(frame, [UnitRate("EUR", Decimal("0.1"), rounding="up", decimals=2)])
    huge = frame.with_columns(pl.lit(2**61, dtype=pl.Int64).alias("quantity"))
    with pytest.raises(VectorizedRateError, match="63-bit"):
        rate_frame(huge, [UnitRate("EUR", Decimal("0.0123"))])


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.from_regex(r"[1-9][0-9]{0,6}", fullmatch=True), st.sampled_from("ABCDE"), min_size=1),
       st.lists(st.from_regex(r"[1-9][0-9]{0,14}", fullmatch=True), min_size=1, max_size=30))
def test_integer_zone_lookup_agrees_with_the_prefix_table(prefixes: dict[str, str], numbers: list[str]) -> None:
    from openbss.rating.vectorized import PrefixIntervals

    zones = {z: i for i, z in enumerate("ABCDE")}
    table = PrefixTable(prefixes)
    got = PrefixIntervals(prefixes, zones).lookup(pl.Series(numbers, dtype=pl.String)).to_list()
    assert got == [zones[m[1]] if (m := table.match(n)) else None for n in numbers]


@settings(max_examples=100, deadline=None)
@given(rates=st.lists(rate_docs(), min_size=1, max_size=3),
       tiered=st.booleans(),
       allowances=st.lists(st.lists(st.integers(0, 20000), max_size=2), min_size=1, max_size=3),
       records=st.lists(st.tuples(st.integers(0, 2), st.sampled_from(["data", "voice"]), st.integers(0, 10**7),
                                  st.integers(0, 60 * 24 * 40)), min_size=1, max_size=40))
def test_wired_batch_equals_record_by_record(rates: list[dict[str, Any]], tiered: bool,
                                             allowances: list[list[int]],
                                             records: list[tuple[int, str, int, int]]) -> None:
    """What ingest rates with (``rate_batch``: the vectorized core for the accounts it takes, one or two
    allowances, tiers left to the scalar path) gives the record-by-record figures and consumption."""
    from openbss.rating.vectorized import rate_batch

    lines = []
    for acc, amounts in enumerate(allowances):
        doc = rates[acc % len(rates)]
        plan = {}
        for kind in ("data", "voice"):
            entry = {k: v for k, v in doc.items()}
            entry["priceId"] = f"p-{kind}"
            entry["allowances"] = [{"quantity": {"amount": a, "units": "B" if kind == "data" else "s"}}
                                   for a in amounts]
            if tiered and acc == 0:
                entry["tiers"] = [{"upTo": 100, "price": "0.5"}, {"price": "0.1"}]
            plan[kind] = entry
        lines.append(Line(account_id=f"a{acc}", msisdn="1", product_id=None, offering_id=None,
                          billing_account_id=None, party_id=None, party_type="Individual", currency=doc["currency"],
                          time_zone="Europe/Paris", plan=plan))
    guided = in_event_order(
        (UsageRecord(key=f"k{i:04d}", record_id=str(i), origin="t", msisdn="1",
                     event_time=START + timedelta(minutes=minute), usage_type=kind, quantity=quantity,
                     called_number="33612345678" if kind == "voice" else None),
         lines[acc % len(lines)]) for i, (acc, kind, quantity, minute) in enumerate(records))
    results = []
    for vectorize in (True, False):
        consumed: dict[tuple[str, str, str], int] = {("a0", "2026-11", "p-data:0"): 7}
        rated, failed = rate_batch(guided, {}, "start", consumed, vectorize=vectorize)
        results.append(({r.record.key: (r.billable_units, r.allowance_units, r.amount_minor, r.period, r.currency)
                         for r in rated}, sorted((r.key, why) for r, why in failed), consumed))
    assert results[0] == results[1]
    assert len(results[0][0]) + len(results[0][1]) == len(records)
