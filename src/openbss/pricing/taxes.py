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
from typing import Protocol

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


# --- the tax engine interface -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TaxableLine:
    """A bill line as a tax engine sees it. ``key`` identifies it in a quote (the line's charge and period)."""

    key: str
    amount: Decimal  # net, or gross when ``inclusive``
    category: str  # the price's tax category (standard, reduced, exempt, telecom…)
    inclusive: bool = False
    sold_rate: Decimal = Decimal(0)  # the rate the price was sold with (used when there is no tax table)


@dataclass(frozen=True)
class TaxRequest:
    """What a bill needs taxed: where (``country``, ``region``), when (``on``: the bill date), in which currency,
    whether the customer is exempt (its certificate), and the lines."""

    country: str | None
    region: str | None
    on: date
    currency: str
    lines: tuple[TaxableLine, ...]
    exemption: str | None = None
    rounding: str = "halfUp"


@dataclass(frozen=True)
class TaxedLine:
    key: str
    net: Decimal
    taxes: tuple[Tax, ...]


class TaxEngine(Protocol):
    """Computes the taxes of a bill's lines: the net amount and the taxes of each line, in the request's order.

    It is called by billing **inside** its write transaction, so it must not do I/O: an external provider is asked
    beforehand (:class:`QuotedTaxEngine`)."""

    def taxes(self, request: TaxRequest) -> list[TaxedLine]: ...


class TableTaxEngine:
    """The built-in engine: the tenant's rates by jurisdiction, category and validity (stacking), exclusive or
    inclusive; a customer exemption exempts every line; without a table, the rate each price was sold with."""

    def __init__(self, rates: Sequence[TaxRate]) -> None:
        self.rates = list(rates)

    def taxes(self, request: TaxRequest) -> list[TaxedLine]:
        out = []
        for ln in request.lines:
            if request.exemption is not None:
                net, taxes = taxes_of(ln.amount, [], request.currency, rounding=request.rounding)
            elif self.rates:
                rates = applicable(self.rates, request.country, request.region, ln.category, request.on) \
                    if request.country else []
                net, taxes = taxes_of(ln.amount, rates, request.currency, inclusive=ln.inclusive,
                                      rounding=request.rounding)
            elif ln.sold_rate:
                net, taxes = taxes_of(ln.amount, [TaxRate("", "standard", "VAT", ln.sold_rate, request.on)],
                                      request.currency, rounding=request.rounding)
            else:
                net, taxes = taxes_of(ln.amount, [], request.currency, rounding=request.rounding)
            out.append(TaxedLine(ln.key, net, tuple(taxes)))
        return out


class TaxQuoteMismatch(ValueError):
    """A quote that does not answer the request (a line changed or appeared since it was fetched): fetch again."""


class QuotedTaxEngine:
    """An external provider's answer, fetched **before** billing's transaction (``request`` → the provider →
    ``quote``), served inside it: each line must be in the quote with the same amount, else the account is parked
    with :class:`TaxQuoteMismatch` and billed by a later run with a fresh quote."""

    def __init__(self, request: TaxRequest, quote: Sequence[TaxedLine]) -> None:
        self.asked = {ln.key: ln.amount for ln in request.lines}
        self.quote = {q.key: q for q in quote}

    def taxes(self, request: TaxRequest) -> list[TaxedLine]:
        out = []
        for ln in request.lines:
            q = self.quote.get(ln.key)
            if q is None or self.asked.get(ln.key) != ln.amount:
                raise TaxQuoteMismatch(f"the tax quote has no line '{ln.key}' of {ln.amount}: the bill changed "
                                       "since it was quoted")
            out.append(q)
        return out
