"""Proration's integer arithmetic (``proration.charge``) gives exactly the figures of the rational (``Fraction``)
arithmetic it replaced (``proration.charge_exact``): same value, same exponent, for both day counts, factors
rounded or exact, every policy, 0-, 2- and 3-decimal currencies, both rounding modes, negative amounts and amounts
finer or coarser than the currency's unit."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openbss.pricing import proration
from openbss.pricing.proration import Conventions

amounts = st.builds(lambda coefficient, exponent: Decimal(coefficient).scaleb(exponent),
                    st.integers(-10**12, 10**12), st.integers(-8, 3))
conventions = st.builds(Conventions, day_count=st.sampled_from(proration.DAY_COUNTS),
                        factor_places=st.one_of(st.none(), st.integers(0, 12)),
                        factor_rounding=st.sampled_from(["halfUp", "halfEven"]),
                        rounding=st.sampled_from(["halfUp", "halfEven"]))


@st.composite
def pieces(draw: st.DrawFn) -> tuple[date, date, date, date]:
    period_start = draw(st.dates(date(1999, 1, 1), date(2099, 1, 1)))
    period_end = period_start + timedelta(days=draw(st.integers(1, 400)))
    start = period_start + timedelta(days=draw(st.integers(0, (period_end - period_start).days)))
    end = start + timedelta(days=draw(st.integers(0, (period_end - start).days)))
    return start, end, period_start, period_end


@settings(max_examples=3000, deadline=None)
@given(amount=amounts, currency=st.sampled_from(["EUR", "JPY", "KWD", "USD"]), piece=pieces(),
       conv=conventions, policy=st.sampled_from(proration.POLICIES))
def test_the_integer_charge_is_the_fraction_charge(amount: Decimal, currency: str,
                                                   piece: tuple[date, date, date, date], conv: Conventions,
                                                   policy: str) -> None:
    start, end, period_start, period_end = piece
    try:
        expected = proration.charge_exact(amount, currency, start, end, period_start, period_end, conv, policy)
    except ValueError:  # a 30E/360 period of no day (e.g. 30 to 31 of a month): refused by both
        with pytest.raises(ValueError):
            proration.charge(amount, currency, start, end, period_start, period_end, conv, policy)
        return
    got = proration.charge(amount, currency, start, end, period_start, period_end, conv, policy)
    assert got == expected and str(got) == str(expected), (got, expected)
    num, den = proration.factor_ratio(start, end, period_start, period_end, conv)
    assert den > 0 and proration.factor(start, end, period_start, period_end, conv) == Fraction(num, den)


def test_the_integer_charge_refuses_what_the_fraction_charge_refuses() -> None:
    d = date(2027, 1, 1)
    for bad in (dict(policy="monthly"), dict(currency="EURO")):
        args = {"amount": Decimal("10"), "currency": "EUR", "start": d, "end": d, "period_start": d,
                "period_end": date(2027, 2, 1), "policy": "daily", **bad}
        with pytest.raises(ValueError):
            proration.charge(**args)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            proration.charge_exact(**args)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        proration.charge(Decimal("NaN"), "EUR", d, d, d, date(2027, 2, 1))
