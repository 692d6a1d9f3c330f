"""Units of measure of usage and their conversions (exact).

Data volumes use binary multiples (1 GB = 1024 MB), as mobile operators bill them; time is in seconds; counted
events (SMS, MMS, calls, sessions) convert only to themselves.
"""

from __future__ import annotations

from decimal import Decimal

# unit -> (dimension, size in the dimension's base unit)
UNITS: dict[str, tuple[str, Decimal]] = {
    "B": ("data", Decimal(1)),
    "KB": ("data", Decimal(1024)),
    "MB": ("data", Decimal(1024) ** 2),
    "GB": ("data", Decimal(1024) ** 3),
    "TB": ("data", Decimal(1024) ** 4),
    "second": ("time", Decimal(1)),
    "minute": ("time", Decimal(60)),
    "hour": ("time", Decimal(3600)),
    "SMS": ("sms", Decimal(1)),
    "MMS": ("mms", Decimal(1)),
    "event": ("event", Decimal(1)),
    "session": ("event", Decimal(1)),
}
ALIASES = {"s": "second", "sec": "second", "seconds": "second", "min": "minute", "minutes": "minute",
           "h": "hour", "hours": "hour", "message": "SMS", "messages": "SMS", "sms": "SMS", "mms": "MMS",
           "events": "event", "sessions": "session", "byte": "B", "bytes": "B", "kB": "KB", "Mb": "MB"}


class UnitError(ValueError):
    pass


def canonical_unit(unit: str) -> str:
    name = ALIASES.get(unit, unit)
    if name not in UNITS:
        raise UnitError(f"unknown unit of measure '{unit}' (known: {', '.join(UNITS)})")
    return name


def dimension(unit: str) -> str:
    return UNITS[canonical_unit(unit)][0]


def convert(amount: Decimal, from_unit: str, to_unit: str) -> Decimal:
    """``amount`` of ``from_unit`` expressed in ``to_unit`` (exact; refuses different dimensions)."""
    f, t = UNITS[canonical_unit(from_unit)], UNITS[canonical_unit(to_unit)]
    if f[0] != t[0]:
        raise UnitError(f"cannot convert {from_unit} ({f[0]}) to {to_unit} ({t[0]})")
    return amount * f[1] / t[1]
