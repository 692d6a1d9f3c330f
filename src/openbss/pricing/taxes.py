"""Taxes of a bill line, exact: one or several rates (stacking), on prices that exclude or include tax.

* **exclusive** prices: each tax is ``net × rate``, rounded to the currency's minor unit;
* **inclusive** prices: the gross amount is split into a net amount and the taxes so that they add up to the gross
  exactly: ``net = gross / (1 + Σ rates)`` rounded, each tax ``net × rate`` rounded, and the rounding difference
  given to the largest tax.

Rates are percentages (``20`` for 20 %). Which rates apply (jurisdiction, category, validity) is the tax table's
business (``applicable``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction

from openbss.pricing.money import MINOR_UNITS
from openbss.pricing.proration import round_fraction


@dataclass(frozen=True)
class TaxRate:
    jurisdiction: str  # ISO 3166-1 country ("FR") or country-region ("US-CA")
    category: str  # standard | reduced | exempt | telecom | … (the price's tax category)
    name: str  # what the bill calls it: VAT, a telecom levy…
    rate: Decimal  # percent
    valid_from: date
    valid_to: date | None = None  # exclusive


@dataclass(frozen=True)
class Tax:
    name: str
    category: str
    rate: Decimal
    amount: Decimal


def applicable(rates: Sequence[TaxRate], country: str, region: str | None, category: str, on: date,
               ) -> list[TaxRate]:
    """The rates of ``category`` in force on ``on`` for the country and, when given, its region (the country's
    rates and the region's stack)."""
    places = {country.upper()} | ({f"{country}-{region}".upper()} if region else set())
    return [r for r in rates if r.jurisdiction.upper() in places and r.category == category
            and r.valid_from <= on and (r.valid_to is None or on < r.valid_to)]


def taxes_of(amount: Decimal, rates: Sequence[TaxRate], currency: str, *, inclusive: bool = False,
             rounding: str = "halfUp") -> tuple[Decimal, list[Tax]]:
    """The net amount of a line and its taxes, one per rate."""
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
