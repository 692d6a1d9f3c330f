"""Bill cycles and proration: calendar edges (BCD 29–31, leap years, short months), both day counts, rounding to
0-, 2- and 3-decimal currencies, and the properties: a period split anywhere bills the whole to within one minor
unit per piece; a credit never exceeds what was billed."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openbss.pricing.cycles import cycle_period, last_cycle_date, next_cycle_date, pieces
from openbss.pricing.money import MINOR_UNITS
from openbss.pricing.proration import Conventions, charge, credit, days_360, factor, round_fraction

ACTUAL = Conventions()
THIRTY = Conventions(day_count="thirty")


def test_cycle_day_31_is_clamped_to_the_last_day_of_each_month() -> None:
    dates = [date(2027, 1, 31)]
    for _ in range(4):
        dates.append(next_cycle_date(dates[-1], 31))
    assert dates == [date(2027, 1, 31), date(2027, 2, 28), date(2027, 3, 31), date(2027, 4, 30), date(2027, 5, 31)]


def test_cycle_day_29_and_30_in_february_of_a_leap_year() -> None:
    assert cycle_period(date(2028, 2, 29), 29) == (date(2028, 2, 29), date(2028, 3, 29))
    assert cycle_period(date(2028, 2, 28), 30) == (date(2028, 1, 30), date(2028, 2, 29))
    assert cycle_period(date(2027, 2, 28), 30) == (date(2027, 2, 28), date(2027, 3, 30))
    assert last_cycle_date(date(2027, 3, 15), 31) == date(2027, 2, 28)


def test_quarterly_and_yearly_cycles_are_calendar_aligned() -> None:
    assert cycle_period(date(2027, 5, 20), 15, 3) == (date(2027, 4, 15), date(2027, 7, 15))
    assert cycle_period(date(2027, 4, 1), 15, 3) == (date(2027, 1, 15), date(2027, 4, 15))
    assert cycle_period(date(2028, 6, 1), 1, 12) == (date(2028, 1, 1), date(2029, 1, 1))


@pytest.mark.parametrize("day", [0, 32, -1, True])
def test_a_cycle_day_outside_1_to_31_is_refused(day: int) -> None:
    with pytest.raises(ValueError, match="between 1 and 31"):
        cycle_period(date(2027, 1, 1), day)


def test_pieces_of_a_product_started_mid_period_and_cancelled() -> None:
    got = pieces(date(2027, 1, 20), date(2027, 3, 10), date(2027, 4, 1), 1, "month")
    assert [(p.start, p.end, p.whole) for p in got] == [
        (date(2027, 1, 20), date(2027, 2, 1), False), (date(2027, 2, 1), date(2027, 3, 1), True),
        (date(2027, 3, 1), date(2027, 3, 10), False)]
    assert got[0].period_start == date(2027, 1, 1)


def test_actual_day_count_uses_the_full_period_of_the_piece() -> None:
    # 14 days of February 2027 (28 days) are a half; of March (31 days) 14/31
    assert factor(date(2027, 2, 15), date(2027, 3, 1), date(2027, 2, 1), date(2027, 3, 1)) == Fraction(1, 2)
    assert factor(date(2027, 3, 18), date(2027, 4, 1), date(2027, 3, 1), date(2027, 4, 1)) == Fraction(14, 31)
    # leap year: 15 days of February 2028 (29 days)
    assert factor(date(2028, 2, 15), date(2028, 3, 1), date(2028, 2, 1), date(2028, 3, 1)) == Fraction(15, 29)


def test_thirty_day_month() -> None:
    assert days_360(date(2027, 1, 1), date(2027, 2, 1)) == 30
    assert days_360(date(2027, 3, 31), date(2027, 4, 30)) == 30
    assert factor(date(2027, 3, 16), date(2027, 4, 1), date(2027, 3, 1), date(2027, 4, 1), THIRTY) == Fraction(1, 2)
    assert factor(date(2027, 2, 16), date(2027, 3, 1), date(2027, 2, 1), date(2027, 3, 1), THIRTY) == Fraction(1, 2)


def test_worked_example_of_the_documentation() -> None:
    # 29.99 EUR a month, subscribed on 18 March 2027, cycle day 1: 14 days of March
    assert charge(Decimal("29.99"), "EUR", date(2027, 3, 18), date(2027, 4, 1), date(2027, 3, 1),
                  date(2027, 4, 1)) == Decimal("13.54")  # 29.99 × 14/31 = 13.5441…
    assert charge(Decimal("29.99"), "EUR", date(2027, 3, 18), date(2027, 4, 1), date(2027, 3, 1),
                  date(2027, 4, 1), THIRTY) == Decimal("13.00")  # 29.99 × 13/30 = 12.9956…
    # an annual plan (359.88) cancelled on 1 July 2028 after being billed for the whole of 2028
    billed = Decimal("359.88")
    assert credit(billed, billed, "EUR", date(2028, 1, 1), date(2028, 7, 1), date(2029, 1, 1), date(2028, 1, 1),
                  date(2029, 1, 1)) == Decimal("180.92")  # 359.88 − 359.88 × 182/366 (178.96)


def test_rounding_to_0_2_and_3_decimal_currencies() -> None:
    args = (date(2027, 3, 18), date(2027, 4, 1), date(2027, 3, 1), date(2027, 4, 1))
    assert charge(Decimal(5000), "JPY", *args) == Decimal(2258)       # 2258.06…
    assert charge(Decimal(5000), "CLP", *args) == Decimal(2258)
    assert charge(Decimal("12.345"), "BHD", *args) == Decimal("5.575")  # 5.5751…
    assert charge(Decimal("12.345"), "BHD", *args).as_tuple().exponent == -3
    assert charge(Decimal("10"), "EUR", *args).as_tuple().exponent == -2


def test_rounding_modes_and_factor_precision() -> None:
    assert round_fraction(Fraction(5, 2), 0, "halfUp") == 3
    assert round_fraction(Fraction(5, 2), 0, "halfEven") == 2
    assert round_fraction(Fraction(-5, 2), 0, "halfUp") == -3
    coarse = Conventions(factor_places=2)
    # 14/31 = 0.4516… → 0.45
    assert factor(date(2027, 3, 18), date(2027, 4, 1), date(2027, 3, 1), date(2027, 4, 1), coarse) == Fraction(45, 100)


def test_policies_for_partial_periods() -> None:
    args = (date(2027, 3, 18), date(2027, 4, 1), date(2027, 3, 1), date(2027, 4, 1))
    assert charge(Decimal(31), "EUR", *args, policy="fullPeriod") == Decimal("31.00")
    assert charge(Decimal(31), "EUR", *args, policy="noCharge") == Decimal("0.00")
    with pytest.raises(ValueError, match="unknown proration policy"):
        charge(Decimal(31), "EUR", *args, policy="weekly")


def test_bad_conventions_are_refused() -> None:
    with pytest.raises(ValueError, match="day count"):
        Conventions(day_count="365")
    with pytest.raises(ValueError, match="period end"):
        Conventions(period_end="open")
    with pytest.raises(ValueError, match="not within the period"):
        factor(date(2027, 2, 1), date(2027, 4, 1), date(2027, 3, 1), date(2027, 4, 1))


amounts = st.decimals(min_value=Decimal("0.001"), max_value=Decimal("100000"), places=3)
currencies = st.sampled_from(["EUR", "JPY", "BHD", "CLP", "KWD", "USD"])
days_ = st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31))
conventions = st.sampled_from([ACTUAL, THIRTY, Conventions(rounding="halfEven"),
                               Conventions(day_count="thirty", rounding="halfEven")])


@settings(max_examples=400, deadline=None)
@given(amount=amounts, currency=currencies, on=days_, bcd=st.integers(1, 31), months=st.sampled_from([1, 3, 12]),
       cut=st.integers(0, 400), conv=conventions)
def test_splitting_a_period_bills_the_whole_within_one_minor_unit_per_piece(
        amount: Decimal, currency: str, on: date, bcd: int, months: int, cut: int, conv: Conventions) -> None:
    start, end = cycle_period(on, bcd, months)
    split = start + timedelta(days=cut % max(1, (end - start).days))
    whole = charge(amount, currency, start, end, start, end, conv)
    left = charge(amount, currency, start, split, start, end, conv)
    right = charge(amount, currency, split, end, start, end, conv)
    unit = Decimal(1).scaleb(-MINOR_UNITS[currency])
    assert abs(left + right - whole) <= 2 * unit


@settings(max_examples=400, deadline=None)
@given(amount=amounts, currency=currencies, on=days_, bcd=st.integers(1, 31), months=st.sampled_from([1, 3, 12]),
       begin=st.integers(0, 400), used=st.integers(0, 400), conv=conventions)
def test_a_credit_never_exceeds_what_was_billed(amount: Decimal, currency: str, on: date, bcd: int, months: int,
                                               begin: int, used: int, conv: Conventions) -> None:
    start, end = cycle_period(on, bcd, months)
    length = (end - start).days
    s = start + timedelta(days=begin % length)
    billed = charge(amount, currency, s, end, start, end, conv)
    until = s + timedelta(days=used % ((end - s).days + 1))
    got = credit(billed, amount, currency, s, until, end, start, end, conv)
    assert Decimal(0) <= got <= billed
    assert got + charge(amount, currency, s, until, start, end, conv) >= billed  # nothing billed is lost
