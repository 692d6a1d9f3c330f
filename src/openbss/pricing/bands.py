"""Calls crossing a time-band change, rated per band (the tenant setting ``bandChange: split``).

A call's billable seconds lie on its time line: billable second ``k`` of a session is the second that starts at
``start + k`` (the call's seconds are consecutive from its start; the increments' surplus of the last block lies just
after the end of the used seconds). Each second is in the band in force at that moment, in the account's time zone
(holidays included), and is paid at that band's price: allowances restricted to the band pay for it, unrestricted
ones too, money at the band's price. The money of each band is priced on the cumulative money-paid seconds **of that
band** (``pricing.usage.money_minor``, rounded up per band), the connect fee once per session, the maximum charge on
the session's total: every figure is a function of the session's cumulative counters, so a call charges the same
however the network splits its reports, per funding source.

The band changes are found from the band table (one step per band interval crossed, not per second or minute).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from openbss.pricing.money import MINOR_UNITS
from openbss.pricing.rating import MINUTES_PER_DAY, TimeBand, band_at, band_intervals
from openbss.pricing.usage import RatingError, UnitRate, money_minor


@dataclass(frozen=True)
class BandSplit:
    start: int  # the session's start, epoch seconds
    time_zone: str
    bands: tuple[TimeBand, ...]
    holidays: Mapping[str, str]
    rates: Mapping[str, tuple[Decimal, Decimal]]  # band -> (price, per)


def band_split(doc: Mapping[str, Any]) -> BandSplit | None:
    """The ``bandSplit`` of a rate document (see ``pricing.choice``), or None when the session is rated in one
    band."""
    raw = doc.get("bandSplit")
    if not raw:
        return None
    return BandSplit(start=math.floor(float(raw["start"])), time_zone=raw["timeZone"],
                     bands=tuple(TimeBand(n, tuple(d), s, e) for n, d, s, e in raw["bands"]),
                     holidays=dict(raw.get("holidays") or {}),
                     rates={b: (Decimal(r["price"]), Decimal(r["per"])) for b, r in raw["rates"].items()})


def _next_change(moment: datetime, split: BandSplit, tz: ZoneInfo) -> datetime:
    """The first local minute boundary after ``moment`` where the band may change: the end of the band interval
    containing it, or the next local midnight when there are holidays."""
    local = moment.astimezone(tz)
    minute = local.weekday() * MINUTES_PER_DAY + local.hour * 60 + local.minute
    end = None
    for band in split.bands:
        for a, b in band_intervals(band):
            if a <= minute < b:
                end = b
    if end is None:
        raise RatingError(f"no time band covers {local.isoformat()}")
    floor = local.replace(second=0, microsecond=0)
    candidate = floor + timedelta(minutes=end - minute)  # wall-clock arithmetic: the boundary's local time
    if split.holidays:
        midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), tzinfo=tz)
        candidate = min(candidate, midnight)
    out = candidate.astimezone(UTC)
    if out <= moment:  # a boundary inside a DST gap or fold: move on by a minute
        out = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return out


def runs(split: BandSplit, begin: int, end: int) -> list[tuple[str, int]]:
    """The billable seconds ``[begin, end)`` of the session grouped by band, in time order."""
    if end <= begin:
        return []
    tz = ZoneInfo(split.time_zone)
    out: list[tuple[str, int]] = []
    position = begin
    while position < end:
        moment = datetime.fromtimestamp(split.start + position, UTC)
        band = band_at(moment, split.bands, split.time_zone, split.holidays)
        change = int(_next_change(moment, split, tz).timestamp()) - split.start
        step = min(end, max(change, position + 1)) - position
        if out and out[-1][0] == band:
            out[-1] = (band, out[-1][1] + step)
        else:
            out.append((band, step))
        position += step
    return out


def lane_rate(rate: UnitRate, split: BandSplit, band: str) -> UnitRate:
    """The rate of one band's seconds: the band's price, the session's blocks and rounding; no connect fee, no cap
    (both apply once to the session: :func:`session_money`)."""
    price, per = split.rates[band]
    return replace(rate, price=price, per=per, setup=Decimal(0), setup_always=False, max_charge=None, tiers=())


def session_money(rate: UnitRate, split: BandSplit, lanes: Mapping[str, int]) -> int:
    """The money (minor units) of a session whose money-paid seconds per band are ``lanes``: each band's seconds
    at its price (rounded up per band), the connect fee with the first money-paid second (unless it comes with every
    call: ``setup_always``, charged apart), no more than the maximum charge."""
    scale = 10 ** MINOR_UNITS[rate.currency]
    total = sum(money_minor(m, lane_rate(rate, split, band)) for band, m in lanes.items() if m)
    if any(lanes.values()) and not rate.setup_always:
        total += math.ceil(Fraction(rate.setup) * scale)
    if rate.max_charge is not None:
        total = min(total, math.ceil(Fraction(rate.max_charge) * scale))
    return total
