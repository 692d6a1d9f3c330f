"""Price phases and fixed terms of recurring charges: pure, exact, no I/O.

A recurring price may have **phases** counted from the product's start: a free trial (``price`` 0 for 14 days), a
discounted start (``discountPercentage`` 50 for 3 months), then the **evergreen** price (the price itself). A phase
lasts ``duration`` (``{amount, units: day | week | month}``; months add calendar months, clamped to the month's last
day: 31 January + 1 month = 28 February, 29 February 2028 in a leap year).

A phase boundary inside a charge period cuts the period's piece in two: each part is charged at its phase's price ×
its proration factor against the **full** charge period (``proration.charge``), so a period half trial, half paid
costs half the price.

A **fixed term** (``fixedTermPeriods``: N) stops the charge after N charge periods counted from the product's start
(N months of a monthly price, N years of a yearly one): the product's charges end there even while it is active.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any

from openbss.pricing.cycles import DAYS, MONTHS, clamp
from openbss.pricing.money import to_decimal

UNITS = ("day", "week", "month", "year")


class PhaseError(ValueError):
    def __init__(self, message: str, attribute: str) -> None:
        super().__init__(f"'{attribute}': {message}")
        self.attribute = attribute


@dataclass(frozen=True)
class Phase:
    name: str
    amount: int
    units: str  # day | week | month | year
    price: Decimal | None = None  # the phase's price per charge period
    discount: Decimal | None = None  # or a percentage off the evergreen price

    def price_of(self, evergreen: Decimal) -> Decimal:
        if self.price is not None:
            return self.price
        return evergreen * (100 - (self.discount or Decimal(0))) / 100


def add(start: date, amount: int, units: str) -> date:
    """``start`` plus ``amount`` days, weeks, months or years (months clamped to the month's last day)."""
    if units in ("month", "year"):
        months = amount * (12 if units == "year" else 1)
        index = start.year * 12 + start.month - 1 + months
        return clamp(index // 12, index % 12 + 1, start.day)
    if units == "week":
        return start + timedelta(days=7 * amount)
    if units == "day":
        return start + timedelta(days=amount)
    raise ValueError(f"unknown duration unit '{units}' (known: {', '.join(UNITS)})")


def parse(doc: Any, where: str = "pricePhase") -> tuple[Phase, ...]:
    """The catalog's ``pricePhase`` list; raises :class:`PhaseError` naming the bad attribute."""
    if not isinstance(doc, Sequence) or isinstance(doc, str) or not doc:
        raise PhaseError("a non-empty list of {name, duration: {amount, units}, price | discountPercentage}", where)
    out = []
    for i, p in enumerate(doc):
        w = f"{where}[{i}]"
        if not isinstance(p, Mapping):
            raise PhaseError("a phase is an object", w)
        duration = p.get("duration") or {}
        amount, units = duration.get("amount"), duration.get("units")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount < 1:
            if not (isinstance(amount, float | Decimal) and amount == int(amount) and amount >= 1):
                raise PhaseError(f"{amount!r} is not a whole number of at least 1", f"{w}.duration.amount")
        if units not in UNITS:
            raise PhaseError(f"{units!r} is not one of {', '.join(UNITS)}", f"{w}.duration.units")
        has_price, has_discount = p.get("price") is not None, p.get("discountPercentage") is not None
        if has_price == has_discount:
            raise PhaseError("give either a price or a discountPercentage", w)
        price = discount = None
        try:
            if has_price:
                price = to_decimal(p["price"])
            else:
                discount = to_decimal(p["discountPercentage"])
        except ValueError as exc:
            raise PhaseError(str(exc), f"{w}.{'price' if has_price else 'discountPercentage'}") from exc
        if price is not None and price < 0:
            raise PhaseError(f"{price} must not be negative", f"{w}.price")
        if discount is not None and not 0 < discount <= 100:
            raise PhaseError(f"{discount} must be more than 0 and at most 100", f"{w}.discountPercentage")
        out.append(Phase(str(p.get("name") or f"phase {i + 1}"), int(amount), str(units), price, discount))
    return tuple(out)


def check_fixed_term(value: Any, where: str = "fixedTermPeriods") -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise PhaseError(f"{value!r} is not a whole number of periods (at least 1)", where)
    return value


def bounds(start: date, phases: Sequence[Phase]) -> list[tuple[date, date, Phase]]:
    """``[from, to)`` of each phase from the product's start; the evergreen price follows the last."""
    out = []
    # consecutive month phases are counted from where they began, so they do not drift (31 Jan + 1 month is
    # 29 Feb 2028, + 2 months 31 Mar); a day or week phase starts a new count
    base, months, at = start, 0, start
    for p in phases:
        if p.units in ("month", "year"):
            months += p.amount * (12 if p.units == "year" else 1)
            end = add(base, months, "month")
        else:
            end = add(at, p.amount, p.units)
            base, months = end, 0
        out.append((at, end, p))
        at = end
    return out


@dataclass(frozen=True)
class Promotion:
    """An amount added to a recurring price per charge period (a discount: negative) from the product's start until
    ``until`` (exclusive): an order's price alteration with an ``applicationDuration`` ("50 % off for 3 months").
    It changes the evergreen price while it lasts; a phase's own price still wins, a phase's percentage applies to
    the price altered."""

    until: date
    delta: Decimal


def promotion(start: date, delta: Decimal, duration: Any, units: Any) -> Promotion:
    """The promotion of an alteration ``delta`` lasting ``duration`` ``units`` from ``start``; raises ``ValueError``
    naming what is wrong."""
    if isinstance(duration, bool) or not isinstance(duration, int | float | Decimal) or duration != int(duration) \
            or duration < 1:
        raise ValueError(f"'applicationDuration': {duration!r} is not a whole number of at least 1")
    if units not in UNITS:
        raise ValueError(f"'unitOfMeasure': {units!r} is not one of {', '.join(UNITS)}")
    return Promotion(add(start, int(duration), str(units)), delta)


def altered(evergreen: Decimal, day: date, promotions: Sequence[Promotion]) -> Decimal:
    """The evergreen price with the promotions still running on ``day``."""
    return evergreen + sum((p.delta for p in promotions if day < p.until), Decimal(0))


def split(piece_start: date, piece_end: date, start: date, phases: Sequence[Phase], evergreen: Decimal,
          promotions: Sequence[Promotion] = ()) -> list[tuple[date, date, Decimal, str | None]]:
    """The parts of the piece ``[piece_start, piece_end)`` in each phase, with the phase's price (and name;
    ``None`` for the evergreen price). The end of a promotion inside the piece cuts it too: before it, the
    evergreen price is altered by the promotion."""
    if not promotions:
        return _split(piece_start, piece_end, start, phases, evergreen)
    edges = [piece_start, *sorted({p.until for p in promotions if piece_start < p.until < piece_end}), piece_end]
    out: list[tuple[date, date, Decimal, str | None]] = []
    for lo, hi in pairwise(edges):
        out.extend(_split(lo, hi, start, phases, altered(evergreen, lo, promotions)))
    return out


def _split(piece_start: date, piece_end: date, start: date, phases: Sequence[Phase], evergreen: Decimal,
           ) -> list[tuple[date, date, Decimal, str | None]]:
    out: list[tuple[date, date, Decimal, str | None]] = []
    at = piece_start
    for lo, hi, p in bounds(start, phases):
        s, e = max(lo, at), min(hi, piece_end)
        if s < e:
            out.append((s, e, p.price_of(evergreen), p.name))
            at = e
    if at < piece_end:
        out.append((at, piece_end, evergreen, None))
    return out


def price_on(day: date, start: date, phases: Sequence[Phase], evergreen: Decimal,
             promotions: Sequence[Promotion] = ()) -> Decimal:
    """The price per period in force on ``day``."""
    evergreen = altered(evergreen, day, promotions)
    for lo, hi, p in bounds(start, phases):
        if lo <= day < hi:
            return p.price_of(evergreen)
    return evergreen


def term_end(start: date, periods: int, period_type: str, length: int = 1) -> date:
    """Where a fixed term of ``periods`` charge periods from ``start`` ends (exclusive)."""
    if period_type in MONTHS:
        return add(start, periods * length * MONTHS[period_type], "month")
    if period_type in DAYS:
        return start + timedelta(days=periods * length * DAYS[period_type])
    raise ValueError(f"unknown recurring period '{period_type}'")
