"""Proration of recurring charges over partial periods (by day, exact)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

POLICIES = ("daily", "fullPeriod", "noCharge")


def prorate(amount: Decimal, period_start: date, period_end: date, active_start: date, active_end: date,
            policy: str = "daily") -> Decimal:
    """The part of ``amount`` (for ``[period_start, period_end)``) due for ``[active_start, active_end)``.

    ``daily``: by the number of days; ``fullPeriod``: the whole amount for any part; ``noCharge``: nothing for a
    partial period.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown proration policy '{policy}' (known: {', '.join(POLICIES)})")
    days = (period_end - period_start).days
    if days <= 0:
        raise ValueError("the period must last at least one day")
    start, end = max(period_start, active_start), min(period_end, active_end)
    used = max(0, (end - start).days)
    if used == 0:
        return Decimal(0)
    if used == days or policy == "fullPeriod":
        return amount
    if policy == "noCharge":
        return Decimal(0)
    return amount * Decimal(used) / Decimal(days)
