"""Proration of recurring charges over partial periods: exact, by day, under the tenant's conventions.

A piece ``[start, end)`` of a charge period ``[period_start, period_end)`` (the **full period** the piece belongs
to, see ``cycles.pieces``) is charged ``amount × factor``, rounded once to the currency's minor unit:

* day count ``actual``: ``factor = days(piece) / days(full period)`` (the actual days of the full period the
  partial piece lies in: 14 days of a 28-day February are 1/2, of a 31-day March 14/31);
* day count ``thirty`` (30E/360, a fixed 30-day month): each date counts as if every month had 30 days
  (day 31 counts as 30); a full month is 30 days, 15 days of February 1/2, of March 1/2;

Both day counts are additive (the days of two adjacent pieces are the days of their union), so the pieces of a
period add up to the whole to within one minor unit per piece (property-tested).

The factor is exact (a ratio of whole numbers) unless ``factor_places`` asks for it rounded to that many decimals
(``factor_rounding``); the amount is rounded once, per line, with ``rounding`` to the currency's minor unit
(``money.MINOR_UNITS``: 0, 2 or 3 decimals). Policies of a price: ``daily`` (the factor), ``fullPeriod`` (the
whole amount for any part), ``noCharge`` (nothing for a partial period).

``charge`` computes in integers (the amount's coefficient times the day ratio, rounded once by ``divmod``): a bill
run prorates every recurring line, and ``Fraction`` arithmetic (a gcd at every step) was the larger part of that
cost. ``charge_exact`` is the same charge written with ``Fraction``, kept as the reference the integer path is
property-tested against.

A credit for the unused part of a piece billed in advance is what was billed minus what the used part costs, so
it is never negative and never more than was billed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction

from openbss.pricing.money import MINOR_UNITS, ROUNDING

POLICIES = ("daily", "fullPeriod", "noCharge")
DAY_COUNTS = ("actual", "thirty")
PERIOD_ENDS = ("exclusive", "inclusive")


@dataclass(frozen=True)
class Conventions:
    """A tenant's proration conventions (``billing_settings``)."""

    day_count: str = "actual"
    #: how end dates are read: ``exclusive`` (the end date is not billed) or ``inclusive`` (it is)
    period_end: str = "exclusive"
    factor_places: int | None = None
    factor_rounding: str = "halfUp"
    rounding: str = "halfUp"

    def __post_init__(self) -> None:
        if self.day_count not in DAY_COUNTS:
            raise ValueError(f"day count '{self.day_count}' is not one of {', '.join(DAY_COUNTS)}")
        if self.period_end not in PERIOD_ENDS:
            raise ValueError(f"period end '{self.period_end}' is not one of {', '.join(PERIOD_ENDS)}")
        for mode in (self.factor_rounding, self.rounding):
            if mode not in ROUNDING:
                raise ValueError(f"rounding '{mode}' is not one of {', '.join(ROUNDING)}")
        if self.factor_places is not None and not 0 <= self.factor_places <= 12:
            raise ValueError("factor places must be between 0 and 12")


def days_360(start: date, end: date) -> int:
    """Days from ``start`` to ``end`` counting 30 days in every month (30E/360: day 31 counts as day 30)."""
    d1, d2 = min(start.day, 30), min(end.day, 30)
    return 360 * (end.year - start.year) + 30 * (end.month - start.month) + d2 - d1


def days(start: date, end: date, day_count: str = "actual") -> int:
    return (end - start).days if day_count == "actual" else days_360(start, end)


def round_fraction(value: Fraction, exponent: int, mode: str = "halfUp") -> Decimal:
    """``value`` rounded to ``exponent`` decimals, exactly (no intermediate decimal rounding)."""
    scaled = value * 10 ** exponent
    sign = -1 if scaled < 0 else 1
    magnitude = abs(scaled)
    whole, rest = divmod(magnitude.numerator, magnitude.denominator)
    twice = 2 * rest
    if twice > magnitude.denominator or (twice == magnitude.denominator
                                         and (mode == "halfUp" or whole % 2 == 1)):
        whole += 1
    return Decimal(sign * whole).scaleb(-exponent)


def round_ratio(numerator: int, denominator: int, mode: str = "halfUp") -> int:
    """``numerator / denominator`` (``denominator`` > 0) rounded to a whole number, as ``round_fraction`` rounds:
    ``halfUp`` away from zero, ``halfEven`` to the even neighbour."""
    magnitude = -numerator if numerator < 0 else numerator
    whole, rest = divmod(magnitude, denominator)
    twice = 2 * rest
    if twice > denominator or (twice == denominator and (mode == "halfUp" or whole % 2 == 1)):
        whole += 1
    return -whole if numerator < 0 else whole


def _full_days(start: date, end: date, period_start: date, period_end: date, conventions: Conventions) -> int:
    """The days of the full period, once the piece is checked to lie within it."""
    if not period_start <= start <= end <= period_end:
        raise ValueError(f"the piece {start}..{end} is not within the period {period_start}..{period_end}")
    full = days(period_start, period_end, conventions.day_count)
    if full <= 0:
        raise ValueError("the period must last at least one day")
    return full


def factor_ratio(start: date, end: date, period_start: date, period_end: date,
                 conventions: Conventions = Conventions()) -> tuple[int, int]:
    """``factor`` as ``(numerator, denominator)``, whole numbers (not reduced; the denominator is positive)."""
    full = _full_days(start, end, period_start, period_end, conventions)
    if start == period_start and end == period_end:
        return 1, 1
    part = min(max(0, days(start, end, conventions.day_count)), full)
    if conventions.factor_places is not None:
        scale = 10 ** conventions.factor_places
        return round_ratio(part * scale, full, conventions.factor_rounding), scale
    return part, full


def factor(start: date, end: date, period_start: date, period_end: date,
           conventions: Conventions = Conventions()) -> Fraction:
    """The part of the period ``[period_start, period_end)`` the piece ``[start, end)`` is."""
    full = _full_days(start, end, period_start, period_end, conventions)
    if start == period_start and end == period_end:
        return Fraction(1)
    part = Fraction(max(0, days(start, end, conventions.day_count)), full)
    part = min(part, Fraction(1))
    if conventions.factor_places is not None:
        part = Fraction(round_fraction(part, conventions.factor_places, conventions.factor_rounding))
    return part


def charge(amount: Decimal, currency: str, start: date, end: date, period_start: date, period_end: date,
           conventions: Conventions = Conventions(), policy: str = "daily") -> Decimal:
    """What the piece costs, rounded to the currency's minor unit (the same value as ``charge_exact``)."""
    if policy not in POLICIES:
        raise ValueError(f"unknown proration policy '{policy}' (known: {', '.join(POLICIES)})")
    if currency not in MINOR_UNITS:
        raise ValueError(f"unknown currency '{currency}'")
    num, den = factor_ratio(start, end, period_start, period_end, conventions)
    if num != den and policy == "fullPeriod" and start < end:
        num = den
    elif num != den and policy == "noCharge":
        num = 0
    sign, digits, exponent = amount.as_tuple()
    if not isinstance(exponent, int):
        raise ValueError(f"the amount {amount} is not a number")
    coefficient = int("".join(map(str, digits))) if digits else 0
    places = MINOR_UNITS[currency]
    top, bottom = coefficient * num, den
    shift = exponent + places
    if shift >= 0:
        top *= 10 ** shift
    else:
        bottom *= 10 ** -shift
    whole = round_ratio(-top if sign else top, bottom, conventions.rounding)
    return Decimal(whole).scaleb(-places)


def charge_exact(amount: Decimal, currency: str, start: date, end: date, period_start: date, period_end: date,
                 conventions: Conventions = Conventions(), policy: str = "daily") -> Decimal:
    """``charge`` with ``Fraction`` arithmetic: the reference the integer path is tested against."""
    if policy not in POLICIES:
        raise ValueError(f"unknown proration policy '{policy}' (known: {', '.join(POLICIES)})")
    if currency not in MINOR_UNITS:
        raise ValueError(f"unknown currency '{currency}'")
    f = factor(start, end, period_start, period_end, conventions)
    if f != 1 and policy == "fullPeriod" and start < end:
        f = Fraction(1)
    elif f != 1 and policy == "noCharge":
        f = Fraction(0)
    return round_fraction(Fraction(amount) * f, MINOR_UNITS[currency], conventions.rounding)


def credit(billed: Decimal, amount: Decimal, currency: str, start: date, used_until: date, end: date,
           period_start: date, period_end: date, conventions: Conventions = Conventions(),
           policy: str = "daily") -> Decimal:
    """The credit for the unused part ``[used_until, end)`` of a piece ``[start, end)`` billed ``billed``: what was
    billed minus what ``[start, used_until)`` costs — between zero and what was billed."""
    used_until = min(max(used_until, start), end)
    used = charge(amount, currency, start, used_until, period_start, period_end, conventions, policy)
    return min(billed, max(Decimal(0), billed - used))

