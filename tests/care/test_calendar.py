"""Business-time arithmetic of the SLA calendars: examples (working hours, weekends, public holidays, daylight
saving) and properties (hypothesis) that hold for any calendar and moment."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openbss.care.calendar import BusinessCalendar, CalendarError

OFFICE = {"timeZone": "Europe/Paris", "holidayCountry": "FR",
          "workingHours": {d: [["09:00", "12:30"], ["13:30", "17:30"]]
                           for d in ("monday", "tuesday", "wednesday", "thursday", "friday")}}


def paris() -> BusinessCalendar:
    return BusinessCalendar.from_json(OFFICE)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_within_a_day_skips_the_lunch_break() -> None:
    cal = paris()
    # Wednesday 2 December 2026, 10:00 Paris = 09:00 UTC; 3 h of business time: 10:00-12:30 then 13:30-14:00
    assert cal.add(utc(2026, 12, 2, 9), timedelta(hours=3)) == utc(2026, 12, 2, 13)


def test_friday_evening_rolls_to_monday() -> None:
    cal = paris()
    # Friday 4 December 2026 17:00 Paris: 30 min left that day, 90 more on Monday from 09:00 → 10:30 Paris
    assert cal.add(utc(2026, 12, 4, 16), timedelta(hours=2)) == utc(2026, 12, 7, 9, 30)


def test_public_holidays_are_not_business_time() -> None:
    cal = paris()
    # Thursday 24 December 2026, 17:00 Paris; Friday 25 December is Christmas: the next working hour is Monday 28th
    assert cal.is_closed(date(2026, 12, 25))
    assert cal.add(utc(2026, 12, 24, 16), timedelta(hours=1)) == utc(2026, 12, 28, 8, 30)
    assert cal.between(utc(2026, 12, 25, 0), utc(2026, 12, 26, 0)) == timedelta(0)


def test_extra_closed_days_and_subdivisions() -> None:
    cal = BusinessCalendar.from_json({**OFFICE, "closedDays": ["2026-12-07"]})
    assert cal.add(utc(2026, 12, 4, 16), timedelta(hours=2)) == utc(2026, 12, 8, 9, 30)
    # Alsace-Moselle (FR-6AE) keeps 26 December as a holiday; the rest of France does not
    assert BusinessCalendar.from_json({**OFFICE, "holidaySubdivision": "6AE"}).is_closed(date(2025, 12, 26))
    assert not paris().is_closed(date(2025, 12, 26))


def test_working_hours_follow_the_local_clock_across_daylight_saving() -> None:
    cal = paris()
    # 09:00 Paris is 08:00 UTC in winter and 07:00 UTC in summer (clocks moved on Sunday 29 March 2026)
    assert cal.add(utc(2026, 3, 27, 17), timedelta(minutes=1)) == utc(2026, 3, 30, 7, 1)
    assert cal.add(utc(2026, 3, 20, 17), timedelta(minutes=1)) == utc(2026, 3, 23, 8, 1)


def test_a_twenty_four_seven_calendar_is_plain_time() -> None:
    cal = BusinessCalendar.from_json({"workingHours": {d: [["00:00", "24:00"]] for d in (
        "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")}})
    start = utc(2026, 12, 31, 23, 30)
    assert cal.add(start, timedelta(hours=5)) == start + timedelta(hours=5)


@pytest.mark.parametrize("bad, message", [
    ({"timeZone": "Mars/Olympus"}, "unknown time zone"),
    ({"workingHours": {}}, "no working hours"),
    ({"workingHours": {"monday": [["17:00", "09:00"]]}}, "start before it ends"),
    ({"workingHours": {"monday": [["09:00", "12:00"], ["11:00", "13:00"]]}}, "overlap"),
    ({"workingHours": {"monday": [["9h", "12:00"]]}}, "HH:MM"),
    ({"workingHours": {"moonday": [["09:00", "12:00"]]}}, "unknown weekday"),
    ({"workingHours": {"monday": [["09:00", "12:00"]]}, "holidayCountry": "XX"}, "no public holidays"),
    ({"workingHours": {"monday": [["09:00", "12:00"]]}, "closedDays": ["someday"]}, "not a date"),
])
def test_unusable_calendars_are_refused(bad: dict, message: str) -> None:
    with pytest.raises(CalendarError, match=message):
        BusinessCalendar.from_json(bad)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        paris().add(datetime(2026, 12, 2, 9), timedelta(hours=1))


# --- properties ---------------------------------------------------------------------------------------------
ZONES = ("UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe")
COUNTRIES = (None, "FR", "US", "GB", "DE")


@st.composite
def calendars(draw: st.DrawFn) -> BusinessCalendar:
    days = []
    for _ in range(7):
        cuts = sorted(draw(st.sets(st.integers(0, 1440), max_size=4)))
        if len(cuts) % 2:
            cuts = cuts[:-1]
        days.append(tuple((cuts[i], cuts[i + 1]) for i in range(0, len(cuts), 2)))
    if sum(e - s for day in days for s, e in day) < 480:  # at least a working day a week
        days[draw(st.integers(0, 6))] = ((540, 1020),)
    return BusinessCalendar(timezone=draw(st.sampled_from(ZONES)), hours=tuple(days),
                            holiday_country=draw(st.sampled_from(COUNTRIES)))


moments = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2028, 12, 31),
                       timezones=st.just(UTC))
durations = st.integers(0, 60 * 60 * 24 * 20).map(lambda s: timedelta(seconds=s))


@settings(max_examples=60, deadline=None)
@given(calendars(), moments, durations)
def test_elapsed_business_time_to_a_due_time_is_the_target(cal: BusinessCalendar, start: datetime,
                                                           target: timedelta) -> None:
    due = cal.add(start, target)
    assert due >= start
    assert cal.between(start, due) == target


@settings(max_examples=60, deadline=None)
@given(calendars(), moments, durations, durations)
def test_adding_in_two_steps_is_adding_once(cal: BusinessCalendar, start: datetime, d1: timedelta,
                                            d2: timedelta) -> None:
    assert cal.add(cal.add(start, d1), d2) == cal.add(start, d1 + d2)


@settings(max_examples=60, deadline=None)
@given(calendars(), moments, durations, durations)
def test_business_time_is_additive_and_bounded_by_wall_time(cal: BusinessCalendar, a: datetime, d1: timedelta,
                                                            d2: timedelta) -> None:
    b, c = a + d1, a + d1 + d2
    assert cal.between(a, c) == cal.between(a, b) + cal.between(b, c)
    assert timedelta(0) <= cal.between(a, b) <= b - a


@settings(max_examples=60, deadline=None)
@given(calendars(), moments, durations.filter(lambda d: d > timedelta(0)))
def test_a_positive_target_falls_due_in_working_time_or_at_its_end(cal: BusinessCalendar, start: datetime,
                                                                   target: timedelta) -> None:
    due = cal.add(start, target)
    # the last second before the due time was working time, and the due time is not on a closed day
    assert cal.is_working(due - timedelta(microseconds=1))
