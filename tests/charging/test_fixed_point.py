"""The integer path of usage rating (``pricing.usage.FixedRate``) gives exactly the amounts of the exact fraction path,
over random tariffs (prices, units of measure, increments, increment tiers, setup charges, per-block rounding,
graduated tiers, maximum charges), quantities, allowances, grants and calls split over time bands."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from openbss.pricing import usage
from openbss.pricing.bands import BandSplit, session_money
from openbss.pricing.tiers import Tier


@contextlib.contextmanager
def exact_only() -> Iterator[None]:
    usage.FIXED_POINT = False
    try:
        yield
    finally:
        usage.FIXED_POINT = True


def fresh(rate: usage.UnitRate) -> usage.UnitRate:
    """The same rate without its cached integer form."""
    return usage.replace(rate)


prices = st.decimals(min_value=Decimal(0), max_value=Decimal(50), places=6)


@st.composite
def rates(draw: st.DrawFn) -> usage.UnitRate:
    per = draw(st.sampled_from([Decimal(1), Decimal(60), Decimal(1000), Decimal(1024), Decimal(1048576),
                                Decimal("0.5"), Decimal("1.5"), Decimal("7"), Decimal("3600")]))
    tiers: tuple[Tier, ...] = ()
    if draw(st.booleans()):
        cuts = sorted(set(draw(st.lists(st.decimals(min_value=Decimal("0.001"), max_value=Decimal(5000), places=3),
                                        min_size=1, max_size=4))))
        bounds = [Decimal(0), *cuts]
        tiers = tuple(Tier(a, b, draw(prices), draw(st.sampled_from([Decimal(0), Decimal("0.25"),
                                                                      Decimal("1.333")])))
                      for a, b in zip(bounds, [*cuts, None], strict=True))
    steps: tuple[tuple[int, int | None, int], ...] = ()
    initial = draw(st.integers(1, 120))
    subsequent = draw(st.integers(1, 60))
    if draw(st.integers(0, 3)) == 0:
        first = draw(st.integers(1, 60))
        length = first * draw(st.integers(1, 10))
        steps = ((0, length, first), (length, None, draw(st.integers(1, 30))))
        initial = subsequent = first
    decimals = draw(st.one_of(st.none(), st.integers(0, 9)))
    return usage.UnitRate(
        currency=draw(st.sampled_from(["EUR", "JPY", "KWD"])), price=draw(prices), per=per, initial=initial,
        subsequent=subsequent, setup=draw(st.sampled_from([Decimal(0), Decimal("0.10"), Decimal("0.0049")])),
        tiers=tiers, rounding=draw(st.sampled_from(usage.ROUNDINGS)), decimals=decimals,
        setup_always=draw(st.booleans()),
        max_charge=draw(st.one_of(st.none(), st.decimals(min_value=Decimal(0), max_value=Decimal(500), places=3))),
        increment_tiers=steps)


quantities = st.one_of(st.integers(0, 400), st.integers(0, 10**7), st.integers(0, 10**12))


@settings(max_examples=300, deadline=None)
@given(rates(), st.lists(quantities, min_size=1, max_size=6))
def test_money_is_the_same_in_integers_and_in_fractions(rate: usage.UnitRate, units: list[int]) -> None:
    for u in units:
        fast = (usage.money_minor(u, rate), usage.cumulative_minor(u, rate), usage.setup_minor(rate))
        with exact_only():
            exact = (usage.money_minor(u, fresh(rate)), usage.cumulative_minor(u, fresh(rate)),
                     usage.setup_minor(fresh(rate)))
        assert fast == exact == (usage.exact_money_minor(u, rate), usage.exact_money_minor(usage.billable(u, rate),
                                                                                          rate),
                                 usage.exact_setup_minor(rate)), (rate, u)
    a, b = sorted(units[:2] * 2)[:2]
    fast_step = usage.money_step(a, b, rate), usage.step_minor(a, b, rate)
    with exact_only():
        assert fast_step == (usage.money_step(a, b, fresh(rate)), usage.step_minor(a, b, fresh(rate)))


@settings(max_examples=200, deadline=None)
@given(rates(), st.integers(0, 5000), st.integers(0, 5000), st.integers(0, 3000), st.integers(-10, 3000),
       st.integers(0, 10**6))
def test_grants_are_the_same_in_integers_and_in_fractions(rate: usage.UnitRate, used: int, want: int,
                                                          money_units: int, allowance: int, budget: int) -> None:
    """A grant against an allowance and a budget: the binary search over the blocks prices the same figures."""
    fast = usage.quota(used, want, rate, money_units=money_units, allowance_free=allowance, budget_minor=budget)
    with exact_only():
        exact = usage.quota(used, want, fresh(rate), money_units=money_units, allowance_free=allowance,
                            budget_minor=budget)
    assert fast == exact, rate
    doc_rate = usage.allowance_blocks({"allowanceInitial": 60, "allowanceSubsequent": 1}, rate)
    assert doc_rate is not None
    assert usage.allowance_reach(used, allowance, doc_rate) == usage.allowance_reach(used, allowance, fresh(doc_rate))


@settings(max_examples=150, deadline=None)
@given(rates(), st.dictionaries(st.sampled_from(["peak", "offpeak", "weekend"]), st.tuples(prices, st.sampled_from(
    [Decimal(1), Decimal(60), Decimal("0.5")])), min_size=1), st.dictionaries(
    st.sampled_from(["peak", "offpeak", "weekend"]), st.integers(0, 20000)))
def test_calls_over_time_bands_cost_the_same_in_integers_and_in_fractions(
        rate: usage.UnitRate, band_rates: dict[str, Any], lanes: dict[str, int]) -> None:
    rate = usage.replace(rate, tiers=())
    split = BandSplit(start=0, time_zone="UTC", bands=(), holidays={}, rates=band_rates)
    lanes = {b: m for b, m in lanes.items() if b in band_rates}
    fast = session_money(rate, split, lanes)
    with exact_only():
        assert fast == session_money(fresh(rate), split, lanes)


def test_the_integer_path_serves_the_common_rates_and_leaves_tiers_with_rounded_blocks_to_fractions() -> None:
    plain = usage.unit_rate({"currency": "EUR", "price": "0.0125", "per": "60", "initial": 60, "subsequent": 1,
                             "setup": "0.05", "maxCharge": "2.00"})
    rounded = usage.unit_rate({"currency": "EUR", "price": "0.0125", "per": "60", "decimals": 3,
                               "rounding": "up"})
    tiered = usage.unit_rate({"currency": "EUR", "price": "0", "per": "1048576",
                              "tiers": [{"start": "0", "end": "100", "price": "0.02"},
                                        {"start": "100", "end": None, "price": "0.01", "fee": "0.50"}]})
    assert all(usage.fixed_rate(r) is not None for r in (plain, rounded, tiered))
    assert usage.fixed_rate(usage.replace(tiered, decimals=2)) is None
    assert usage.money_minor(3600, plain) == 80 and usage.money_minor(10**9, plain) == 200
    assert usage.money_minor(150 * 1048576, tiered) == 300


def test_a_rate_document_is_read_once_and_alike_documents_give_alike_rates() -> None:
    doc = {"currency": "EUR", "price": "0.0125", "per": "60", "initial": 60, "subsequent": 1, "setup": "0.05",
           "tiers": [], "incrementTiers": [[0, 60, 60], [60, None, 1]]}
    assert usage.unit_rate(doc) is usage.unit_rate(dict(doc))
    assert usage.unit_rate(doc) == usage.read_unit_rate(doc)
    for change in ({"price": "0.01250"}, {"setupAlways": True}, {"incrementTiers": [[0, 60, 30], [60, None, 1]]},
                   {"tiers": [{"start": "0", "end": None, "price": "0.02"}]}, {"decimals": 2}, {"per": 60}):
        other = {**doc, **change}
        assert usage.unit_rate(other) == usage.read_unit_rate(other) and usage.unit_rate(other) is not \
            usage.unit_rate(doc), change
    assert usage.unit_rate({**doc, "price": Decimal("0.0125")}) == usage.unit_rate(doc)  # read, not kept
