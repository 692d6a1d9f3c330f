"""A fixed amount allocated across lines pro rata (largest remainder): worked figures and properties."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from openbss.pricing.allocation import allocate
from openbss.pricing.money import MINOR_UNITS

D = Decimal


def test_worked_figures() -> None:
    # 10.00 off three lines of 10.00: 3.33 each and one cent more for the first (equal remainders: the earlier)
    assert allocate(D("10.00"), [D(10), D(10), D(10)], "EUR") == [D("3.34"), D("3.33"), D("3.33")]
    # 5.00 off 29.99 and 10.00: 3.75 (3.7497…) and 1.25 (1.2503…)
    assert allocate(D("5.00"), [D("29.99"), D("10.00")], "EUR") == [D("3.75"), D("1.25")]
    # more than the lines: capped at what they charge
    assert allocate(D("50"), [D("12.50"), D("7.50")], "EUR") == [D("12.50"), D("7.50")]
    assert allocate(D(100), [D(1), D(2)], "JPY") == [D(1), D(2)]
    assert allocate(D("1.000"), [D("1.000"), D(0), D("2.000")], "BHD") == [D("0.333"), D("0.000"), D("0.667")]


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(["EUR", "JPY", "BHD"]), st.data())
def test_the_pieces_add_up_exactly_and_stay_within_one_minor_unit(currency: str, data: st.DataObject) -> None:
    places = MINOR_UNITS[currency]
    money = st.decimals(min_value=0, max_value=10_000, places=places)
    weights = data.draw(st.lists(money, min_size=1, max_size=12))
    amount = data.draw(money)
    pieces = allocate(amount, weights, currency)
    total = sum(weights, D(0))
    assert sum(pieces, D(0)) == min(amount, total)
    unit = D(1).scaleb(-places)
    for piece, w in zip(pieces, weights, strict=True):
        assert D(0) <= piece <= w
        if total:
            exact = Fraction(min(amount, total)) * Fraction(w) / Fraction(total)
            assert abs(Fraction(piece) - exact) < Fraction(unit)
