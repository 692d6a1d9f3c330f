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
from typing import Protocol

from openbss.pricing.money import MINOR_UNITS


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


def _round_div(numerator: int, denominator: int, mode: str) -> int:
    """``numerator / denominator`` rounded to an integer as ``round_fraction`` rounds (half away from zero, or
    half to even), in integers only."""
    if denominator < 0:
        numerator, denominator = -numerator, -denominator
    sign = -1 if numerator < 0 else 1
    whole, rest = divmod(abs(numerator), denominator)
    twice = 2 * rest
    if twice > denominator or (twice == denominator and (mode == "halfUp" or whole % 2 == 1)):
        whole += 1
    return sign * whole


def taxes_of(amount: Decimal, rates: Sequence[TaxRate], currency: str, *, inclusive: bool = False,
             rounding: str = "halfUp") -> tuple[Decimal, list[Tax]]:
    """The net amount of a line and its taxes, one per rate.

    Exact, in integers: each amount and rate is an integer ratio (``Decimal.as_integer_ratio``), results are
    integers of minor units, rounded once each — the same figures as the rational arithmetic of
    ``round_fraction`` (a property test compares them), without building ``Fraction`` objects."""
    exponent = MINOR_UNITS[currency]
    scale = 10 ** exponent
    num, den = amount.as_integer_ratio()
    base = _round_div(num * scale, den, rounding)  # the amount in minor units (the net, or the gross)
    if not rates:
        return Decimal(base).scaleb(-exponent), []
    ratios = [r.rate.as_integer_ratio() for r in rates]
    if not inclusive:
        net_units = base
    else:  # net = gross / (1 + Σ rates / 100), with Σ rates = total_num / total_den
        total_num, total_den = 0, 1
        for rn, rd in ratios:
            total_num, total_den = total_num * rd + rn * total_den, total_den * rd
        net_units = _round_div(base * 100 * total_den, 100 * total_den + total_num, rounding)
    net = Decimal(net_units).scaleb(-exponent)
    taxes = [Tax(r.name, r.category, r.rate, Decimal(_round_div(net_units * rn, rd * 100, rounding)).scaleb(-exponent))
             for r, (rn, rd) in zip(rates, ratios, strict=True)]
    if not inclusive:
        return net, taxes
    gross = Decimal(base).scaleb(-exponent)
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
