"""Price phases and fixed terms (pricing/phases.py): worked figures at month ends and in leap years, properties."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openbss.pricing import proration
from openbss.pricing.cycles import pieces
from openbss.pricing.phases import Phase, PhaseError, add, bounds, parse, split, term_end

D = Decimal
TRIAL_THEN_HALF = parse([{"name": "Trial", "duration": {"amount": 14, "units": "day"}, "price": 0},
                         {"name": "Welcome", "duration": {"amount": 1, "units": "month"}, "discountPercentage": 50}])


def billed(start: date, until: date, phases: tuple[Phase, ...], amount: Decimal, end: date | None = None,
           day: int = 1) -> list[tuple[date, date, Decimal]]:
    out = []
    for piece in pieces(start, end, until, day, "month"):
        for s, e, price, _ in split(piece.start, piece.end, start, phases, amount):
            out.append((s, e, proration.charge(price, "EUR", s, e, piece.period_start, piece.period_end)))
    return out


def test_a_trial_then_a_discount_then_the_price_in_a_leap_year() -> None:
    # 30.00 a month, cycle day 1, subscribed 20 February 2028: trial to 5 March (14 days over 29 February), half
    # price to 5 April, then 30.00
    assert [(lo, hi) for lo, hi, _ in bounds(date(2028, 2, 20), TRIAL_THEN_HALF)] == [
        (date(2028, 2, 20), date(2028, 3, 5)), (date(2028, 3, 5), date(2028, 4, 5))]
    assert billed(date(2028, 2, 20), date(2028, 5, 1), TRIAL_THEN_HALF, D("30.00")) == [
        (date(2028, 2, 20), date(2028, 3, 1), D("0.00")),
        (date(2028, 3, 1), date(2028, 3, 5), D("0.00")),
        (date(2028, 3, 5), date(2028, 4, 1), D("13.06")),  # 15.00 × 27/31
        (date(2028, 4, 1), date(2028, 4, 5), D("2.00")),  # 15.00 × 4/30
        (date(2028, 4, 5), date(2028, 5, 1), D("26.00"))]  # 30.00 × 26/30


def test_month_phases_from_a_month_end_do_not_drift() -> None:
    three = parse([{"duration": {"amount": 1, "units": "month"}, "price": 1},
                   {"duration": {"amount": 1, "units": "month"}, "price": 2},
                   {"duration": {"amount": 1, "units": "month"}, "price": 3}])
    assert [hi for _, hi, _ in bounds(date(2028, 1, 31), three)] == [date(2028, 2, 29), date(2028, 3, 31),
                                                                     date(2028, 4, 30)]
    assert add(date(2027, 1, 31), 1, "month") == date(2027, 2, 28)
    assert add(date(2028, 2, 29), 1, "year") == date(2029, 2, 28)


def test_a_fixed_term_of_twelve_months_from_a_month_end_bills_twelve_months() -> None:
    start = date(2027, 1, 31)
    end = term_end(start, 12, "month")
    assert end == date(2028, 1, 31)
    lines = billed(start, date(2028, 6, 1), (), D("10.00"), end=end)
    assert lines[0] == (date(2027, 1, 31), date(2027, 2, 1), D("0.32"))  # 1 day of January
    assert lines[-1] == (date(2028, 1, 1), date(2028, 1, 31), D("9.68"))  # 30 days of January 2028, then nothing
    assert sum(a for _, _, a in lines) == D("120.00")
    assert term_end(date(2028, 2, 29), 1, "year") == date(2029, 2, 28)
    assert term_end(date(2027, 3, 3), 2, "week") == date(2027, 3, 17)


@pytest.mark.parametrize(("doc", "attribute"), [
    ([], "pricePhase"),
    ([{"duration": {"amount": 0, "units": "day"}, "price": 0}], "pricePhase[0].duration.amount"),
    ([{"duration": {"amount": 1, "units": "fortnight"}, "price": 0}], "pricePhase[0].duration.units"),
    ([{"duration": {"amount": 1, "units": "day"}}], "pricePhase[0]"),
    ([{"duration": {"amount": 1, "units": "day"}, "price": 1, "discountPercentage": 5}], "pricePhase[0]"),
    ([{"duration": {"amount": 1, "units": "day"}, "price": -1}], "pricePhase[0].price"),
    ([{"duration": {"amount": 1, "units": "day"}, "price": 0},
      {"duration": {"amount": 1, "units": "day"}, "discountPercentage": 150}], "pricePhase[1].discountPercentage"),
])
def test_a_bad_phase_names_the_attribute(doc: object, attribute: str) -> None:
    with pytest.raises(PhaseError) as err:
        parse(doc)
    assert err.value.attribute == attribute


phase_lists = st.lists(st.builds(lambda n, u: Phase("p", n, u, None, D(0) + 1),
                                 st.integers(1, 40), st.sampled_from(["day", "week", "month"])), max_size=3)


@settings(max_examples=300, deadline=None)
@given(st.dates(date(2026, 1, 1), date(2030, 12, 31)), st.integers(1, 31), phase_lists,
       st.decimals(min_value=0, max_value=1000, places=2))
def test_phase_boundaries_cut_pieces_without_losing_a_day_or_a_cent(start: date, day: int, steps: list[Phase],
                                                                    amount: Decimal) -> None:
    """Phases priced like the evergreen price: the parts of each piece cover it exactly and cost what the uncut
    piece costs, to within one minor unit per part."""
    steps = [Phase(p.name, p.amount, p.units, amount) for p in steps]
    for piece in pieces(start, None, start + timedelta(days=400), day, "month"):
        parts = split(piece.start, piece.end, start, steps, amount)
        assert parts[0][0] == piece.start and parts[-1][1] == piece.end
        assert all(a[1] == b[0] for a, b in itertools.pairwise(parts))
        cut = sum(proration.charge(p[2], "EUR", p[0], p[1], piece.period_start, piece.period_end) for p in parts)
        whole = proration.charge(amount, "EUR", piece.start, piece.end, piece.period_start, piece.period_end)
        assert abs(cut - whole) <= D("0.01") * len(parts)


@settings(max_examples=300, deadline=None)
@given(st.dates(date(2026, 1, 1), date(2030, 12, 31)), st.integers(1, 31), phase_lists,
       st.lists(st.tuples(st.integers(1, 14), st.sampled_from(["day", "week", "month"]),
                          st.decimals(min_value=-500, max_value=0, places=2)), max_size=3),
       st.decimals(min_value=0, max_value=1000, places=2))
def test_promotions_alter_the_price_until_they_end_and_cut_pieces_without_losing_a_day(
        start: date, day: int, steps: list[Phase], promos: list[tuple[int, str, Decimal]], amount: Decimal) -> None:
    """Discounts sold for a time (``Promotion``): every part of a piece is inside or outside each promotion, and is
    priced at the evergreen price plus the deltas of the promotions it is inside; the parts cover the piece."""
    from openbss.pricing.phases import promotion

    promotions = [promotion(start, delta, n, units) for n, units, delta in promos]
    steps = [Phase(p.name, p.amount, p.units, None, D(20)) for p in steps]  # 20 % off the altered price
    for piece in pieces(start, None, start + timedelta(days=500), day, "month"):
        parts = split(piece.start, piece.end, start, steps, amount, promotions)
        assert parts[0][0] == piece.start and parts[-1][1] == piece.end
        assert all(a[1] == b[0] and a[0] < a[1] for a, b in itertools.pairwise(parts))
        for lo, hi, price, phase in parts:
            inside = [p for p in promotions if lo < p.until]
            assert all(hi <= p.until for p in inside)  # a part never straddles the end of a promotion
            altered = amount + sum((p.delta for p in inside), D(0))
            assert price == (altered * 80 / 100 if phase is not None else altered)
    assert not promotions or split(start, start + timedelta(days=1), start, (), amount, promotions)[0][2] == \
        amount + sum((p.delta for p in promotions), D(0))
