"""Business time: the working hours of a team in its time zone, less public holidays.

SLA targets are durations of *business* time: a 4-hour resolution target opened on Friday at 16:00 with working
hours 09:00–17:00 is due on Monday at 12:00 (or Tuesday, when Monday is a public holiday). This module is pure (no
I/O): ``add(start, duration)`` is the moment at which ``duration`` of business time has elapsed since ``start``, and
``between(a, b)`` the business time elapsed from ``a`` to ``b``. Both are exact (``timedelta`` arithmetic, no
floats) and consistent: ``between(t, add(t, d)) == d`` and ``add(add(t, d1), d2) == add(t, d1 + d2)`` (property
tests in ``tests/care/test_calendar.py``).

Working hours are wall-clock intervals per weekday in the calendar's time zone, so a daylight-saving change moves
them with the clock (09:00–17:00 stays 09:00–17:00 local; the day of the change may be an hour shorter or longer).
Public holidays come from the ``holidays`` library (country and optional subdivision), plus extra closed days.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAY = 24 * 60
#: how far ahead ``add`` looks for working time before it gives up (a calendar open one day a year still works)
HORIZON_DAYS = 366 * 5
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")


class CalendarError(ValueError):
    """A calendar that cannot be used (unknown time zone or country, malformed or empty working hours)."""


@lru_cache(maxsize=64)
def _public_holidays(country: str, subdivision: str | None) -> holidays.HolidayBase:
    return holidays.country_holidays(country, subdiv=subdivision)


def _minutes(value: str) -> int:
    if not isinstance(value, str) or not _HHMM.match(value):
        raise CalendarError(f"'{value}' is not a time of day HH:MM (00:00 to 24:00)")
    h, m = value.split(":")
    return int(h) * 60 + int(m)


@dataclass(frozen=True)
class BusinessCalendar:
    """Working intervals per weekday (minutes from local midnight, end exclusive, up to 1440), a time zone, the
    public holidays of a country (and subdivision), and extra closed days."""

    timezone: str = "UTC"
    #: seven entries, Monday first: the day's working intervals in minutes from local midnight
    hours: tuple[tuple[tuple[int, int], ...], ...] = ((),) * 7
    holiday_country: str | None = None
    holiday_subdivision: str | None = None
    closed_days: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise CalendarError(f"unknown time zone '{self.timezone}'") from exc
        if len(self.hours) != 7:
            raise CalendarError("working hours need an entry for each of the seven weekdays")
        for name, intervals in zip(WEEKDAYS, self.hours, strict=True):
            previous_end = 0
            for start, end in intervals:
                if not 0 <= start < end <= DAY:
                    raise CalendarError(f"{name}: a working interval must start before it ends, within the day")
                if start < previous_end:
                    raise CalendarError(f"{name}: working intervals overlap or are out of order")
                previous_end = end
        if not any(self.hours):
            raise CalendarError("the calendar has no working hours on any day")
        if self.holiday_country is not None:
            try:
                _public_holidays(self.holiday_country, self.holiday_subdivision)
            except NotImplementedError as exc:
                raise CalendarError(
                    f"no public holidays known for country '{self.holiday_country}'"
                    + (f" subdivision '{self.holiday_subdivision}'" if self.holiday_subdivision else "")) from exc

    # --- construction from the stored JSON form ------------------------------------------------------------
    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BusinessCalendar:
        """From ``{"timeZone": "Europe/Paris", "workingHours": {"monday": [["09:00", "17:00"]], ...},
        "holidayCountry": "FR", "holidaySubdivision": null, "closedDays": ["2026-12-24"]}``; a weekday left out
        is closed."""
        raw_hours = data.get("workingHours") or {}
        if not isinstance(raw_hours, Mapping):
            raise CalendarError("'workingHours' must map weekdays to lists of [start, end] times")
        unknown = set(raw_hours) - set(WEEKDAYS)
        if unknown:
            raise CalendarError(f"unknown weekday(s) in 'workingHours': {', '.join(sorted(unknown))}")
        hours: list[tuple[tuple[int, int], ...]] = []
        for name in WEEKDAYS:
            intervals = raw_hours.get(name) or []
            parsed = []
            for interval in intervals:
                if not isinstance(interval, Sequence) or isinstance(interval, str) or len(interval) != 2:
                    raise CalendarError(f"{name}: each working interval is a pair [\"HH:MM\", \"HH:MM\"]")
                parsed.append((_minutes(interval[0]), _minutes(interval[1])))
            hours.append(tuple(parsed))
        closed: set[date] = set()
        for raw in data.get("closedDays") or []:
            try:
                closed.add(date.fromisoformat(str(raw)))
            except ValueError as exc:
                raise CalendarError(f"closed day '{raw}' is not a date YYYY-MM-DD") from exc
        country = data.get("holidayCountry")
        subdivision = data.get("holidaySubdivision")
        return cls(timezone=str(data.get("timeZone") or "UTC"), hours=tuple(hours),
                   holiday_country=str(country) if country else None,
                   holiday_subdivision=str(subdivision) if subdivision else None,
                   closed_days=frozenset(closed))

    def to_json(self) -> dict[str, Any]:
        def hhmm(m: int) -> str:
            return f"{m // 60:02d}:{m % 60:02d}"

        return {
            "timeZone": self.timezone,
            "workingHours": {name: [[hhmm(s), hhmm(e)] for s, e in day]
                             for name, day in zip(WEEKDAYS, self.hours, strict=True) if day},
            "holidayCountry": self.holiday_country,
            "holidaySubdivision": self.holiday_subdivision,
            "closedDays": sorted(d.isoformat() for d in self.closed_days),
        }

    # --- questions -----------------------------------------------------------------------------------------
    def is_closed(self, day: date) -> bool:
        """Whether a local date is a public holiday or an extra closed day."""
        if day in self.closed_days:
            return True
        if self.holiday_country is None:
            return False
        return day in _public_holidays(self.holiday_country, self.holiday_subdivision)

    def working_intervals(self, day: date) -> list[tuple[datetime, datetime]]:
        """The working intervals of a local date, in UTC (empty on a holiday)."""
        if self.is_closed(day):
            return []
        tz = ZoneInfo(self.timezone)
        midnight = datetime.combine(day, time.min)
        out = []
        for start, end in self.hours[day.weekday()]:
            a = (midnight + timedelta(minutes=start)).replace(tzinfo=tz).astimezone(UTC)
            b = (midnight + timedelta(minutes=end)).replace(tzinfo=tz).astimezone(UTC)
            if b > a:  # an interval inside a daylight-saving gap has no duration
                out.append((a, b))
        return out

    def _intervals_from(self, moment: datetime) -> Iterator[tuple[datetime, datetime]]:
        local = moment.astimezone(ZoneInfo(self.timezone)).date() - timedelta(days=1)
        for offset in range(HORIZON_DAYS):
            yield from self.working_intervals(local + timedelta(days=offset))

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The moment (UTC) at which ``duration`` of business time has elapsed since ``start``."""
        _aware(start)
        if duration < timedelta(0):
            raise ValueError("a business duration cannot be negative")
        start = start.astimezone(UTC)
        if duration == timedelta(0):
            return start
        remaining = duration
        for a, b in self._intervals_from(start):
            s = max(a, start)
            if s >= b:
                continue
            available = b - s
            if remaining <= available:
                return s + remaining
            remaining -= available
        raise CalendarError(f"no business time within {HORIZON_DAYS} days of {start.isoformat()}")

    def between(self, a: datetime, b: datetime) -> timedelta:
        """The business time elapsed from ``a`` to ``b`` (zero when ``b`` is not after ``a``)."""
        _aware(a)
        _aware(b)
        if b <= a:
            return timedelta(0)
        total = timedelta(0)
        for s, e in self._intervals_from(a):
            if s >= b:
                break
            lo, hi = max(s, a), min(e, b)
            if hi > lo:
                total += hi - lo
        return total

    def is_working(self, moment: datetime) -> bool:
        """Whether ``moment`` falls within working time."""
        _aware(moment)
        for a, b in self._intervals_from(moment):
            if a > moment:
                return False
            if moment < b:
                return True
        return False


def _aware(moment: datetime) -> None:
    if moment.tzinfo is None:
        raise ValueError("business-time arithmetic needs time-zone-aware date-times")


__all__ = ["WEEKDAYS", "BusinessCalendar", "CalendarError"]
