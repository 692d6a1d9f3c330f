"""The tax engine's integer arithmetic gives exactly the figures of the rational (``Fraction``) arithmetic it
replaced: same net, same taxes, same exponents, for exclusive and inclusive prices, stacked rates, 0-, 2- and
3-decimal currencies and both rounding modes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from openbss.pricing.money import MINOR_UNITS
from openbss.pricing.proration import round_fraction
from openbss.pricing.taxes import Tax, TaxRate, taxes_of


def fraction_taxes_of(amount: Decimal, rates: Sequence[TaxRate], currency: str, *, inclusive: bool = False,
                      rounding: str = "halfUp") -> tuple[Decimal, list[Tax]]:
    """The previous implementation, in ``Fraction`` arithmetic: the reference."""
    exponent = MINOR_UNITS[currency]
    if not rates:
        return round_fraction(Fraction(amount), exponent, rounding), []
    if not inclusive:
        net = round_fraction(Fraction(amount), exponent, rounding)
        return net, [Tax(r.name, r.category, r.rate, round_fraction(Fraction(net) * Fraction(r.rate) / 100, exponent,
                                                                     rounding)) for r in rates]
    gross = round_fraction(Fraction(amount), exponent, rounding)
    total_rate = sum((Fraction(r.rate) for r in rates), Fraction(0))
    net = round_fraction(Fraction(gross) / (1 + total_rate / 100), exponent, rounding)
    taxes = [Tax(r.name, r.category, r.rate, round_fraction(Fraction(net) * Fraction(r.rate) / 100, exponent,
                                                            rounding)) for r in rates]
    difference = gross - net - sum((t.amount for t in taxes), Decimal(0))
    if difference:
        largest = max(range(len(taxes)), key=lambda i: (taxes[i].rate, -i))
        t = taxes[largest]
        taxes[largest] = Tax(t.name, t.category, t.rate, t.amount + difference)
    return net, taxes


amounts = st.decimals(min_value=Decimal("-1000000"), max_value=Decimal("1000000"), allow_nan=False,
                      allow_infinity=False, places=6) | st.integers(-10**9, 10**9).map(Decimal) | st.sampled_from(
    [Decimal("0.005"), Decimal("-0.005"), Decimal("0.015"), Decimal("0.5"), Decimal("2.5"), Decimal("-2.5"),
     Decimal("0.0005"), Decimal("1E+3"), Decimal("-0")])
rates = st.decimals(min_value=Decimal(0), max_value=Decimal(40), allow_nan=False, allow_infinity=False,
                    places=3) | st.sampled_from([Decimal(20), Decimal("5.5"), Decimal("2.1"), Decimal("19.6"),
                                                 Decimal("8.875"), Decimal(0), Decimal("0.000")])


@settings(max_examples=1500, deadline=None)
@given(amount=amounts, percents=st.lists(rates, max_size=4), currency=st.sampled_from(["EUR", "JPY", "BHD", "USD"]),
       inclusive=st.booleans(), rounding=st.sampled_from(["halfUp", "halfEven"]))
def test_integer_taxes_equal_fraction_taxes(amount: Decimal, percents: list[Decimal], currency: str,
                                            inclusive: bool, rounding: str) -> None:
    table = [TaxRate("FR", "standard", f"tax {i}", p, date(2020, 1, 1)) for i, p in enumerate(percents)]
    net, taxes = taxes_of(amount, table, currency, inclusive=inclusive, rounding=rounding)
    ref_net, ref_taxes = fraction_taxes_of(amount, table, currency, inclusive=inclusive, rounding=rounding)
    assert (str(net), [(t.name, t.rate, str(t.amount)) for t in taxes]) == (
        str(ref_net), [(t.name, t.rate, str(t.amount)) for t in ref_taxes])
    assert taxes == ref_taxes


def test_half_cases() -> None:
    ten = [TaxRate("FR", "reduced", "VAT", Decimal(10), date(2020, 1, 1))]
    # 0.25 × 10 % = 0.025: half a cent, away from zero (halfUp) or to the even cent (halfEven)
    assert taxes_of(Decimal("0.25"), ten, "EUR")[1][0].amount == Decimal("0.03")
    assert taxes_of(Decimal("0.25"), ten, "EUR", rounding="halfEven")[1][0].amount == Decimal("0.02")
    assert taxes_of(Decimal("-0.25"), ten, "EUR")[1][0].amount == Decimal("-0.03")
    vat = [TaxRate("FR", "standard", "VAT", Decimal(20), date(2020, 1, 1))]
    net, taxes = taxes_of(Decimal("12.00"), vat, "EUR", inclusive=True)
    assert (net, taxes[0].amount) == (Decimal("10.00"), Decimal("2.00"))
