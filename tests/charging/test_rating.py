"""Real-time rating (``openbss.pricing.usage``): exact, monotone, the same at once or in increments."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openbss.pricing.money import MINOR_UNITS
from openbss.pricing.tiers import Tier
from openbss.pricing.usage import (
    RatingError,
    UnitRate,
    allocate,
    billable,
    cumulative_minor,
    money_amount,
    money_minor,
    quota,
    step_minor,
    to_minor,
    volume_amount,
)

prices = st.decimals(min_value=Decimal(0), max_value=Decimal(100), places=4)
currencies = st.sampled_from(["EUR", "JPY", "KWD", "USD"])


@st.composite
def rates(draw: st.DrawFn) -> UnitRate:
    tiers: tuple[Tier, ...] = ()
    if draw(st.booleans()):
        cut = Decimal(draw(st.integers(1, 500)))
        tiers = (Tier(Decimal(0), cut, draw(prices)), Tier(cut, None, draw(prices)))
    return UnitRate(currency=draw(currencies), price=draw(prices), per=Decimal(draw(st.sampled_from([1, 60, 1024]))),
                    initial=draw(st.integers(1, 60)), subsequent=draw(st.integers(1, 60)),
                    setup=draw(st.sampled_from([Decimal(0), Decimal("0.10")])), tiers=tiers)


@settings(max_examples=300, deadline=None)
@given(rates(), st.lists(st.integers(0, 5000), min_size=1, max_size=20))
def test_rating_at_once_equals_rating_in_increments(rate: UnitRate, steps: list[int]) -> None:
    total, charged = 0, 0
    for n in steps:
        charged += step_minor(total, total + n, rate)
        total += n
    assert charged == cumulative_minor(total, rate)


@settings(max_examples=300, deadline=None)
@given(rates(), st.integers(0, 10**6), st.integers(0, 10**6))
def test_never_negative_and_monotone(rate: UnitRate, a: int, b: int) -> None:
    lo, hi = sorted((a, b))
    assert step_minor(lo, hi, rate) >= 0
    assert cumulative_minor(lo, rate) <= cumulative_minor(hi, rate)
    assert billable(hi, rate) >= hi


@settings(max_examples=200, deadline=None)
@given(rates(), st.integers(0, 10**5))
def test_rounding_to_the_currency_minor_unit(rate: UnitRate, units: int) -> None:
    minor = cumulative_minor(units, rate)
    assert isinstance(minor, int)
    exact = Decimal(minor).scaleb(-MINOR_UNITS[rate.currency])
    assert to_minor(exact, rate.currency) == minor


@settings(max_examples=300, deadline=None)
@given(rates(), st.integers(0, 10**4), st.integers(0, 10**4), st.integers(0, 10**4), st.integers(0, 10**4),
       st.integers(0, 10**3))
def test_quota_is_whole_blocks_within_the_budget(rate: UnitRate, used: int, want: int, free: int, budget: int,
                                                 paid: int) -> None:
    q = quota(used, want, rate, money_units=paid, allowance_free=free, budget_minor=budget)
    assert q.money_minor <= budget and q.allowance <= free
    assert money_minor(paid + q.money_units, rate) - money_minor(paid, rate) == q.money_minor
    end = used + q.units
    if q.units:
        assert billable(end, rate) == end  # a grant ends on a block boundary
        assert q.allowance + q.money_units == end - billable(used, rate)
    if not q.final:
        assert end >= used + want  # the request, rounded up to a block
    elif want:
        # one more block would not fit
        nxt = rate.initial if end == 0 else end + rate.subsequent
        need = nxt - billable(used, rate)
        money = max(0, need - free)
        assert money_minor(paid + money, rate) - money_minor(paid, rate) > budget


@given(st.integers(0, 10**6), st.lists(st.integers(-5, 10**5), max_size=6))
def test_allowances_consumed_in_order_before_money(units: int, frees: list[int]) -> None:
    allocations, rest = allocate(units, [(str(i), f) for i, f in enumerate(frees)])
    assert sum(n for _, n in allocations) + rest == units
    assert all(n > 0 for _, n in allocations)
    # an allowance is used only when the previous ones are exhausted
    ids = [int(i) for i, _ in allocations]
    for i in ids[1:]:
        assert all(frees[j] <= dict(allocations).get(str(j), 0) for j in range(i) if frees[j] > 0)


def test_increments_and_examples() -> None:
    per_minute_60_1 = UnitRate("EUR", Decimal("0.60"), Decimal(60), initial=60, subsequent=1)
    assert billable(0, per_minute_60_1) == 0
    assert billable(1, per_minute_60_1) == 60
    assert billable(61, per_minute_60_1) == 61
    assert cumulative_minor(90, per_minute_60_1) == 90
    rate_30_30 = UnitRate("EUR", Decimal("0.19"), Decimal(60), initial=30, subsequent=30)
    assert cumulative_minor(31, rate_30_30) == 19  # 60 s billed
    tiered = UnitRate("EUR", Decimal(0), Decimal(1), tiers=(Tier(Decimal(0), Decimal(1024), Decimal("0.02")),
                                                              Tier(Decimal(1024), None, Decimal("0.01"))))
    assert cumulative_minor(2048, tiered) == 2048 + 1024
    assert volume_amount(2048, tiered) == Decimal("20.48")
    assert cumulative_minor(3, UnitRate("JPY", Decimal("0.5"), Decimal(1))) == 2  # half up, no minor unit


def test_refuses_negative_and_invalid() -> None:
    rate = UnitRate("EUR", Decimal(1), Decimal(1))
    with pytest.raises(RatingError):
        billable(-1, rate)
    with pytest.raises(RatingError):
        step_minor(10, 5, rate)
    with pytest.raises(RatingError):
        UnitRate("EUR", Decimal(-1), Decimal(1))
    with pytest.raises(RatingError):
        UnitRate("XXX", Decimal(1), Decimal(1))
    with pytest.raises(RatingError):
        UnitRate("EUR", Decimal(1), Decimal(1), initial=0)


@settings(max_examples=200, deadline=None)
@given(rates(), st.integers(0, 4), st.sampled_from(["up", "down", "halfUp"]), st.integers(0, 3000))
def test_rounding_per_block_equals_the_sum_of_rounded_blocks(rate: UnitRate, decimals: int, method: str,
                                                           units: int) -> None:
    from dataclasses import replace
    from fractions import Fraction

    from openbss.pricing.usage import block_price

    r = replace(rate, decimals=decimals, rounding=method)
    expected = Fraction(r.setup) if units else Fraction(0)
    start, size = 0, r.initial
    while start < units:
        price = block_price(start, size, r)
        assert price * 10**decimals == int(price * 10**decimals)  # rounded to the decimals
        if (price == 0) != (block_price(start, size, replace(r, decimals=None)) == 0):
            raise AssertionError("a positive block price rounded to zero")
        expected += price * Fraction(min(size, units - start), size)
        start, size = start + size, r.subsequent
    assert money_amount(units, r) == expected
    assert money_minor(units, r) >= (1 if units and expected > 0 else 0)  # never charged zero
