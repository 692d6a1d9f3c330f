"""Pure rating primitives of tariffs: destination zones by longest number prefix, time bands in a time zone,
rating increments (60/60, 30/1, ...), and the charge of one rated event.

Charging (real time) and batch rating call these with a compiled tariff (``catalog.tariff``); nothing here does
I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")


class RatingRuleError(ValueError):
    pass


# --- numbers and prefixes --------------------------------------------------------------------------------------
def normalize_number(number: str) -> str:
    """E.164 digits of a dialled number: '+33 6 12-34', '0033612' -> '33612...'."""
    raw = number.strip()
    if raw.startswith("+"):
        raw = raw[1:]
    elif raw.startswith("00"):
        raw = raw[2:]
    digits = re.sub(r"[\s\-().]", "", raw)
    if not digits.isdigit():
        raise RatingRuleError(f"'{number}' is not a telephone number")
    return digits


class PrefixTable:
    """Longest-prefix match of E.164 numbers to zones (a dict per prefix length: O(max prefix length))."""

    def __init__(self, prefixes: Mapping[str, str]) -> None:
        self._by_prefix = dict(prefixes)
        self._lengths = sorted({len(p) for p in prefixes}, reverse=True)

    def match(self, number: str) -> tuple[str, str] | None:
        """(prefix, zone) of the longest prefix of ``number``, or None."""
        digits = normalize_number(number)
        for n in self._lengths:
            if n <= len(digits):
                zone = self._by_prefix.get(digits[:n])
                if zone is not None:
                    return digits[:n], zone
        return None


# --- time bands ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TimeBand:
    name: str
    days: tuple[str, ...]
    start: str = "00:00"  # HH:MM, local time
    end: str = "24:00"  # exclusive; "24:00" is the end of the day


def _minutes(value: str, what: str) -> int:
    if not _TIME.match(value):
        raise RatingRuleError(f"{what} '{value}' is not a time of day HH:MM (00:00 to 24:00)")
    h, m = value.split(":")
    return int(h) * 60 + int(m)


def band_intervals(band: TimeBand) -> list[tuple[int, int]]:
    """The minutes of the week ``[from, to)`` a band covers."""
    start, end = _minutes(band.start, f"time band '{band.name}' startTime"), _minutes(
        band.end, f"time band '{band.name}' endTime")
    if end <= start:
        raise RatingRuleError(f"time band '{band.name}': endTime {band.end} must be after startTime {band.start}")
    out = []
    for day in band.days:
        if day not in DAYS:
            raise RatingRuleError(f"time band '{band.name}': unknown day '{day}' (use {', '.join(DAYS)})")
        base = DAYS.index(day) * MINUTES_PER_DAY
        out.append((base + start, base + end))
    return out


def _fmt(minute_of_week: int) -> str:
    day, rest = divmod(minute_of_week, MINUTES_PER_DAY)
    return f"{DAYS[day % 7]} {rest // 60:02d}:{rest % 60:02d}"


def validate_time_bands(bands: Sequence[TimeBand]) -> None:
    """Every minute of the week belongs to exactly one band: no overlap, no gap (each named in the error).

    A band may be given in several entries of the same name (off-peak = weekday nights and mornings).
    """
    if not bands:
        return
    intervals = sorted((a, b, band.name) for band in bands for a, b in band_intervals(band))
    cursor, prev = 0, None
    for a, b, name in intervals:
        if a < cursor:
            raise RatingRuleError(f"time bands '{prev}' and '{name}' overlap at {_fmt(a)}")
        if a > cursor:
            raise RatingRuleError(f"no time band covers {_fmt(cursor)} to {_fmt(a)} (gap)")
        cursor, prev = b, name
    if cursor < MINUTES_PER_WEEK:
        raise RatingRuleError(f"no time band covers {_fmt(cursor)} to the end of the week (gap)")


def band_at(moment: datetime, bands: Sequence[TimeBand], tz: str,
            holidays: Mapping[str, str] | None = None) -> str:
    """The band in force at ``moment`` (aware) in the tariff's time zone; holidays map a local date to a band."""
    if moment.tzinfo is None:
        raise RatingRuleError("the moment must be timezone-aware")
    local = moment.astimezone(ZoneInfo(tz))
    if holidays and local.date().isoformat() in holidays:
        return holidays[local.date().isoformat()]
    minute = local.weekday() * MINUTES_PER_DAY + local.hour * 60 + local.minute
    for band in bands:
        for a, b in band_intervals(band):
            if a <= minute < b:
                return band.name
    raise RatingRuleError(f"no time band covers {_fmt(minute)}")


def local_time(value: time) -> str:
    return f"{value.hour:02d}:{value.minute:02d}"


# --- increments and charge ---------------------------------------------------------------------------------------
def billable_seconds(duration: int | Decimal, initial: int, subsequent: int) -> int:
    """Seconds charged for a call of ``duration`` with a ``initial/subsequent`` increment (e.g. 60/60, 30/1).

    A call of 0 s is free; any started increment is charged whole.
    """
    if initial <= 0 or subsequent <= 0:
        raise RatingRuleError("rating increments must be positive")
    d = Decimal(duration)
    if d < 0:
        raise RatingRuleError("duration must not be negative")
    if d == 0:
        return 0
    if d <= initial:
        return initial
    return initial + math.ceil((d - initial) / subsequent) * subsequent


def charge(quantity: Decimal, price: Decimal, per: Decimal, setup: Decimal = Decimal(0)) -> Decimal:
    """``quantity`` at ``price`` per ``per`` units (e.g. 90 s at 0.12 per 60 s), plus a setup charge (unrounded)."""
    if quantity == 0:
        return Decimal(0)
    return setup + quantity * price / per


def unique_prefixes(zones: Iterable[tuple[str, Sequence[str]]]) -> dict[str, str]:
    """prefix -> zone, refusing a prefix in two zones or a prefix that is not digits."""
    out: dict[str, str] = {}
    for zone, prefixes in zones:
        for p in prefixes:
            if not p.isdigit():
                raise RatingRuleError(f"destination zone '{zone}': prefix '{p}' must be digits only (E.164)")
            if p in out and out[p] != zone:
                raise RatingRuleError(f"prefix '{p}' is in both destination zones '{out[p]}' and '{zone}'")
            out[p] = zone
    return out
