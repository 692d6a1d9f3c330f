"""Bill cycles and charge periods, on local calendar dates (no clock, no time zone arithmetic here).

A billing account is billed on its **bill cycle day** (1–31): in a month shorter than that day, on the month's
last day (day 31 is 30 April, 28 or 29 February). A cycle of ``n`` months starts in the months whose index
(``year * 12 + month - 1``) is a multiple of ``n`` (calendar alignment: quarters start in January, April, July and
October, years in January). Every period is **end-exclusive**: ``[start, end)``, ``end`` being the next cycle
date.

A recurring price's periods follow the same anchors: a monthly price on a monthly cycle with day 31 runs
``[31 Jan, 28 Feb)``, ``[28 Feb, 31 Mar)``, ``[31 Mar, 30 Apr)``… A weekly price runs in 7-day periods from the
product's start. With **anniversary alignment** (``align``: the product's activation day) month-based periods
start on that day instead: activated on 18 March, a monthly price runs ``[18 Mar, 18 Apr)``, ``[18 Apr, 18 May)``…;
on 31 January, ``[31 Jan, 28 Feb)``, ``[28 Feb, 31 Mar)`` (each anchor counted from the activation, so no drift);
a yearly price activated on 29 February 2028 runs to 28 February 2029, then to 28 February 2030…

``pieces`` cuts a product's active span into the periods it touches, each with the **full
period** it belongs to (the denominator of its proration).
"""

from __future__ import annotations

import calendar
import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

#: months per period of each recurring period type (weeks and days are counted in days)
MONTHS = {"month": 1, "bimonthly": 2, "quarter": 3, "quarterly": 3, "monthly": 1, "year": 12, "yearly": 12}
DAYS = {"week": 7, "day": 1}


def monthly_price(price: Mapping[str, Any]) -> bool:
    """Whether a catalog recurring price is charged every month (period type ``month``, length 1): what online
    charging takes from a prepaid line's money at its monthly renewal. A prepaid line's recurring prices of other
    periods (a year, a quarter, a week) are billed on its account's bills instead."""
    return MONTHS.get(str(price.get("recurringChargePeriodType") or "month")) == 1 and \
        int(price.get("recurringChargePeriodLength") or 1) == 1


@functools.lru_cache(maxsize=16384)
def clamp(year: int, month: int, day: int) -> date:
    """``day`` of the month, or the month's last day when it has fewer days."""
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def _month_index(d: date) -> int:
    return d.year * 12 + d.month - 1


def anchor(index: int, day: int) -> date:
    """The cycle date of month ``index`` (``year * 12 + month - 1``)."""
    return clamp(index // 12, index % 12 + 1, day)


def check_cycle_day(day: int) -> None:
    if not isinstance(day, int) or isinstance(day, bool) or not 1 <= day <= 31:
        raise ValueError(f"bill cycle day {day!r} is not a day between 1 and 31")


@functools.lru_cache(maxsize=65536, typed=True)  # a run asks the same few periods for every account
def cycle_period(on: date, day: int, months: int = 1) -> tuple[date, date]:
    """The cycle period ``[start, end)`` holding ``on`` (pure: memoized; a refused day is not)."""
    check_cycle_day(day)
    if months < 1:
        raise ValueError("a cycle lasts at least one month")
    index = _month_index(on)
    index -= index % months
    if anchor(index, day) > on:
        index -= months
    return anchor(index, day), anchor(index + months, day)


def last_cycle_date(on: date, day: int, months: int = 1) -> date:
    """The latest cycle date on or before ``on`` (the date of the bill a run on ``on`` produces)."""
    return cycle_period(on, day, months)[0]


def next_cycle_date(on: date, day: int, months: int = 1) -> date:
    """The first cycle date after ``on``."""
    return cycle_period(on, day, months)[1]


def previous_cycle_date(cycle_date: date, day: int, months: int = 1) -> date:
    return cycle_period(cycle_date - timedelta(days=1), day, months)[0]


@dataclass(frozen=True)
class Piece:
    """A part ``[start, end)`` of one charge period ``[period_start, period_end)`` (the full period)."""

    start: date
    end: date
    period_start: date
    period_end: date

    @property
    def whole(self) -> bool:
        return self.start == self.period_start and self.end == self.period_end


def anniversary_period(on: date, align: date, months: int) -> tuple[date, date]:
    """The period ``[start, end)`` of ``months`` months anchored on ``align``'s day (clamped) that holds ``on``."""
    if months < 1:
        raise ValueError("a period lasts at least one month")
    base = _month_index(align)
    k = (_month_index(on) - base) // months
    if anchor(base + k * months, align.day) > on:
        k -= 1
    return anchor(base + k * months, align.day), anchor(base + (k + 1) * months, align.day)


def charge_periods(first: date, until: date, day: int, period_type: str, length: int = 1,
                   align: date | None = None) -> Iterator[tuple[date, date]]:
    """The charge periods of a recurring price from the one holding ``first`` to the last starting before
    ``until``: month-based ones on the cycle anchors (on ``align``'s day, counted from it, with anniversary
    alignment), week- and day-based ones from ``first``."""
    if length < 1:
        raise ValueError("a charge period lasts at least one unit")
    if period_type in MONTHS and align is not None:
        months = MONTHS[period_type] * length
        start, end = anniversary_period(first, align, months)
        while start < until:
            yield start, end
            start, end = anniversary_period(end, align, months)
        return
    if period_type in MONTHS:
        months = MONTHS[period_type] * length
        start, end = cycle_period(first, day, months)
        while start < until:
            yield start, end
            start, end = end, next_cycle_date(end, day, months)
        return
    if period_type in DAYS:
        step = timedelta(days=DAYS[period_type] * length)
        start = first
        while start < until:
            yield start, start + step
            start += step
        return
    raise ValueError(f"unknown recurring period '{period_type}' (known: {', '.join([*MONTHS, *DAYS])})")


def pieces(active_start: date, active_end: date | None, until: date, day: int, period_type: str,
           length: int = 1, align: date | None = None) -> list[Piece]:
    """The pieces of ``[active_start, active_end)`` (``None``: still active) in the charge periods starting before
    ``until`` (anchored on ``align`` with anniversary alignment)."""
    out = []
    for start, end in charge_periods(active_start, until, day, period_type, length, align):
        s = max(start, active_start)
        e = end if active_end is None else min(end, active_end)
        if s < e:
            out.append(Piece(s, e, start, end))
    return out
