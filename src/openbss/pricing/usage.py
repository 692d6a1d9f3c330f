"""Rating of usage quantities, shared by online charging (OCS) and batch rating: pure, exact, no I/O.

Units are integers in the base unit of the usage: bytes for data, seconds for voice and video, a count for SMS and
events. Money is a ``Decimal`` before rounding and an ``int`` of the currency's minor units after it.

The model (what makes real-time and batch give the same figure):

* A :class:`UnitRate` is the price of one kind of usage once the tariff has been resolved for an event
  (destination zone by longest prefix, time band in the subscriber's time zone, roaming zone: see
  ``openbss.pricing.rating`` and ``catalog.tariff``): a price per ``per`` base units, rating increments
  (``initial``/``subsequent``, e.g. 60/1 seconds), an optional setup charge and optional graduated tiers.
* Charges are computed on **cumulative** quantities: ``cumulative_minor(units)`` is the rounded price of the first
  ``units`` billable units of a session (or period), and the charge of a step from ``before`` to ``after`` units is
  ``cumulative_minor(after) - cumulative_minor(before)``. Summing the steps telescopes: rating N units at once
  equals rating them in any increments, to the minor unit; a step is never negative (the function is monotone).
* Allowances are consumed before money (:func:`allocate`), in bucket priority order.
* Volume tiers (the whole quantity at the tier the total reaches) are not monotone; in real time they are rated as
  graduated tiers, and batch rating at the end of the period applies the volume price (:func:`volume_amount`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal

from openbss.pricing.money import MINOR_UNITS, ROUNDING, round_money
from openbss.pricing.tiers import Tier, price_tiered, price_volume

BASE_UNIT = {"data": "B", "voice": "second", "video": "second", "sms": "SMS", "mms": "MMS", "event": "event"}


class RatingError(ValueError):
    """A quantity or rate that cannot be rated (negative quantity, non-positive increment...)."""


@dataclass(frozen=True)
class UnitRate:
    currency: str
    price: Decimal  # per ``per`` base units
    per: Decimal = Decimal(1)  # base units the price is for (60 for "per minute", 1048576 for "per MB")
    initial: int = 1  # first rating increment, in base units
    subsequent: int = 1  # next increments
    setup: Decimal = Decimal(0)  # charged once, with the first billable unit
    tiers: tuple[Tier, ...] = field(default=())  # graduated; quantities in ``per`` units; overrides ``price``
    rounding: str = "halfUp"

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.subsequent <= 0:
            raise RatingError("rating increments must be positive")
        if self.per <= 0:
            raise RatingError("the unit of measure of a price must be positive")
        if self.price < 0 or self.setup < 0:
            raise RatingError("prices must not be negative")
        if self.currency not in MINOR_UNITS:
            raise RatingError(f"unknown currency '{self.currency}'")
        if self.rounding not in ROUNDING:
            raise RatingError(f"unknown rounding '{self.rounding}'")

    @property
    def is_free(self) -> bool:
        return self.price == 0 and self.setup == 0 and all(t.unit_price == 0 and t.flat_fee == 0
                                                          for t in self.tiers)


def _check(units: int) -> None:
    if units < 0:
        raise RatingError("a quantity must not be negative")


def billable(units: int, rate: UnitRate) -> int:
    """Units charged for ``units`` used: 0 is free, any started increment is charged whole."""
    _check(units)
    if units == 0:
        return 0
    if units <= rate.initial:
        return rate.initial
    return rate.initial + math.ceil((units - rate.initial) / rate.subsequent) * rate.subsequent


def cumulative_amount(units: int, rate: UnitRate) -> Decimal:
    """The exact (unrounded) price of the first ``units`` used units (increments applied)."""
    b = billable(units, rate)
    if b == 0:
        return Decimal(0)
    quantity = Decimal(b) / rate.per
    if rate.tiers:
        return rate.setup + price_tiered(quantity, rate.tiers)
    return rate.setup + quantity * rate.price


def cumulative_minor(units: int, rate: UnitRate) -> int:
    """``cumulative_amount`` rounded to the currency's minor unit (the platform's one rounding rule)."""
    return to_minor(round_money(cumulative_amount(units, rate), rate.currency, rate.rounding), rate.currency)


def step_minor(before: int, after: int, rate: UnitRate) -> int:
    """Money (minor units) for going from ``before`` to ``after`` cumulative units; never negative."""
    _check(before)
    if after < before:
        raise RatingError("cumulative usage cannot decrease")
    return cumulative_minor(after, rate) - cumulative_minor(before, rate)


def affordable_units(before: int, budget_minor: int, rate: UnitRate, cap: int) -> int:
    """The most units ``u <= cap`` whose step from ``before`` costs at most ``budget_minor`` (a quota to grant).

    Monotone in ``u``, so a binary search; the answer is a whole number of increments past ``before`` when the
    budget is the limit.
    """
    _check(before)
    _check(cap)
    if budget_minor < 0:
        return 0
    if rate.is_free or step_minor(before, before + cap, rate) <= budget_minor:
        return cap
    lo, hi = 0, cap  # step(lo) <= budget < step(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if step_minor(before, before + mid, rate) <= budget_minor:
            lo = mid
        else:
            hi = mid
    return lo


def allocate(units: int, available: Sequence[tuple[str, int]]) -> tuple[list[tuple[str, int]], int]:
    """Consume ``units`` from allowance buckets in the given (priority) order: ([(bucket, units)], remainder)."""
    _check(units)
    out: list[tuple[str, int]] = []
    left = units
    for bucket_id, free in available:
        if left == 0:
            break
        take = min(left, max(0, free))
        if take:
            out.append((bucket_id, take))
            left -= take
    return out, left


def volume_amount(units: int, rate: UnitRate) -> Decimal:
    """Batch (end of period) price of ``units`` with volume tiers: all units at the tier the total reaches."""
    b = billable(units, rate)
    if not rate.tiers:
        return cumulative_amount(units, rate)
    return (rate.setup if b else Decimal(0)) + price_volume(Decimal(b) / rate.per, rate.tiers)


# --- money ------------------------------------------------------------------------------------------------------
def to_minor(amount: Decimal, currency: str) -> int:
    """An amount already rounded to the currency's precision, in minor units (refuses sub-minor amounts)."""
    scaled = amount.scaleb(MINOR_UNITS[currency])
    if scaled != scaled.to_integral_value():
        raise RatingError(f"{amount} {currency} has more decimals than the currency allows")
    return int(scaled)


def from_minor(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-MINOR_UNITS[currency])


def ceil_to_minor(amount: Decimal, currency: str) -> int:
    """An amount in minor units, rounded up (what a reservation must hold to cover it)."""
    return int(amount.scaleb(MINOR_UNITS[currency]).to_integral_value(rounding=ROUND_CEILING))
