"""The batch rating core: guided usage records in, rated amounts out, with the ``pricing`` functions online
charging uses (one source of truth for the money).

For each record: the rate is chosen from the line's plan entry for the usage type by the function online charging
chooses the rate of a session with (``pricing.choice.choose_rate``: the entry's rating settings — blocks, setup,
rounding, maximum charge and rate — and, when the price has a tariff, the catalog's compiled tariff: destination
zone by longest prefix of the called number, roaming zone by the visited country, time band at the event time in
the account's time zone; with ``bandChange: split`` each second of a call in its band, ``pricing.bands``). A
record is one whole session and is rated as online charging debits one (``charging.sessions.Ledger.debit``): the
rating blocks apply once to the quantity (``pricing.usage.billable``); the included allowances of the billing
period (the calendar month in the account's time zone) pay first, in the order the records happened
(``pricing.usage.allocate``; in their own blocks when the price gives them some: ``pricing.usage.allowance_reach``);
the money-paid units are priced with ``pricing.usage.money_minor`` (each block rounded as the rate says, the
charge rounded up to the currency's minor unit, tiers counted on money-paid units only, the maximum charge), plus
the setup charge apart when it comes even with an allowance (``pricing.usage.setup_minor``).

Pure: the caller loads the plans, tariffs and the allowance consumption already recorded, and writes the results.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from openbss.catalog.service import CompiledTariff
from openbss.pricing.bands import band_split, runs, session_money
from openbss.pricing.choice import UNITS_OF, choose_rate
from openbss.pricing.money import to_decimal
from openbss.pricing.units import UnitError, canonical_unit, convert
from openbss.pricing.usage import (
    RatingError,
    allocate,
    allowance_blocks,
    allowance_reach,
    billable,
    money_minor,
    setup_minor,
    unit_rate,
)
from openbss.rating.layouts import UsageRecord

UNLIMITED = 2**62
#: allowance unit of each usage type: online charging's bucket units (an MMS allowance counts MMS)
ALLOWANCE_UNIT = {**UNITS_OF, "event": "SMS"}


class Unratable(ValueError):
    """A guided record that cannot be rated (no price for its usage type, no tariff entry for its destination)."""


@dataclass(frozen=True)
class Line:
    """What guiding found for a record: the subscription using the number at the event time."""

    account_id: str  # the charging account of the subscription
    msisdn: str
    product_id: str | None
    offering_id: str | None
    billing_account_id: str | None
    party_id: str | None
    party_type: str
    currency: str
    time_zone: str
    plan: Mapping[str, Any]


@dataclass(frozen=True)
class Rated:
    record: UsageRecord
    line: Line
    rate: dict[str, Any]
    billable_units: int
    allowance_units: int
    amount_minor: int
    currency: str
    period: str  # the billing period the allowances were taken from (YYYY-MM in the account's time zone)






def resolve_rate(record: UsageRecord, line: Line, tariffs: Mapping[str, CompiledTariff],
                 band_change: str = "start") -> dict[str, Any]:
    """The rate of a record under the line's plan: ``pricing.choice.choose_rate``, the function online charging
    rates a session with, a record being a session (originating, or terminating for a call received) that starts at its
    event time. A rate in another currency than the line's is :class:`Unratable`."""
    entry = line.plan.get(record.usage_type)
    tariff_id = (entry or {}).get("tariffId")
    try:
        rate = choose_rate(entry, usage_type=record.usage_type, product_id=line.product_id,
                           tariff=tariffs.get(tariff_id) if tariff_id else None,
                           destination=record.called_number if record.direction == "originating"
                           else record.calling_number, direction=record.direction,
                           visited_country=record.visited_country, visited_network=record.visited_network,
                           moment=record.event_time, time_zone=line.time_zone, band_change=band_change)
    except ValueError as exc:  # NoRate, or a tariff that cannot rate this moment or country
        raise Unratable(str(exc)) from exc
    # the amount is stored in minor units of the rate's currency and billed as the line's money: a price in
    # another currency is not rated (no conversion here)
    if rate.get("currency") != line.currency:
        raise Unratable(f"price '{rate.get('priceId') or (entry or {}).get('priceId')}' is in "
                        f"{rate.get('currency')}, not in the line's currency {line.currency}")
    return rate


def period_of(moment: datetime, time_zone: str) -> str:
    """The billing period of an event: the calendar month in the account's time zone."""
    local = moment.astimezone(ZoneInfo(time_zone or "UTC"))
    return f"{local.year:04d}-{local.month:02d}"


def allowance_quantity(allowance: Mapping[str, Any], usage_type: str) -> int:
    """An allowance of a plan entry in the usage type's base units (as online charging's buckets hold it)."""
    if allowance.get("unlimited"):
        return UNLIMITED
    q = allowance.get("quantity") or {}
    try:
        return int(convert(to_decimal(q.get("amount", 0)), canonical_unit(q.get("units", "B")),
                           ALLOWANCE_UNIT.get(usage_type, "SMS")))  # as charging.service
    except (UnitError, ValueError) as exc:
        raise Unratable(f"allowance '{allowance.get('name')}': {exc}") from exc


#: consumed allowance units by (account id, period, allowance key)
Consumption = MutableMapping[tuple[str, str, str], int]


def allowance_keys(line: Line, usage_type: str) -> list[str]:
    entry = line.plan.get(usage_type) or {}
    return [f"{entry.get('priceId')}:{i}" for i, _ in enumerate(entry.get("allowances") or [])]


def rate_record(record: UsageRecord, line: Line, rate: dict[str, Any], consumed: Consumption) -> Rated:
    """Rate one record as online charging debits a whole session, consuming the period's allowances in
    ``consumed`` (updated in place)."""
    try:
        unit = unit_rate(rate)
        own = allowance_blocks(rate, unit)
        units = billable(record.quantity, unit)
    except (RatingError, ArithmeticError, KeyError, ValueError) as exc:
        raise Unratable(f"rate of price '{rate.get('priceId')}': {exc}") from exc
    period = period_of(record.event_time, line.time_zone)
    entry = line.plan.get(record.usage_type) or {}
    available: list[tuple[str, int]] = []
    bands_of: dict[str, list[str] | None] = {}
    # a received SMS the tariff does not charge (``free``, pricing.choice.received_free) takes no allowance
    for i, allowance in enumerate([] if rate.get("free") else entry.get("allowances") or []):
        zones = allowance.get("destinationZone") or None
        if zones is not None and (rate.get("zone") not in zones or rate.get("roaming")):
            continue
        key = f"{entry.get('priceId')}:{i}"
        bands_of[key] = allowance.get("timeBand") or None
        total = allowance_quantity(allowance, record.usage_type)
        available.append((key, total - consumed.get((line.account_id, period, key), 0)))
    split = band_split(rate)
    if split is not None:  # each billable second at the band in force then (pricing.bands), as online charging
        lanes: dict[str, int] = {}
        allowance_units = 0
        free = dict(available)
        for band, n in runs(split, 0, units):
            pays = [(k, free[k]) for k, _ in available if bands_of[k] is None or band in (bands_of[k] or ())]
            taken, rest = allocate(n, pays)
            for key, used in taken:
                free[key] -= used
                consumed[(line.account_id, period, key)] = consumed.get((line.account_id, period, key), 0) + used
            allowance_units += n - rest
            if rest:
                lanes[band] = lanes.get(band, 0) + rest
        amount = session_money(unit, split, lanes) + (setup_minor(unit) if record.quantity else 0)
        return Rated(record, line, {**rate, "lanes": lanes}, units, allowance_units, amount, unit.currency, period)
    available = [(k, n) for k, n in available if bands_of[k] is None or rate.get("band") in (bands_of[k] or ())]
    if own is None:  # allowances pay the billable units first, money the rest
        taken, money_units = allocate(units, available)
        allowance_units = units - money_units
    else:  # allowances cover the first used units in their own blocks, money the rest in the rate's
        reach = min(record.quantity, allowance_reach(0, sum(max(0, n) for _, n in available), own))
        allowance_units = billable(reach, own)
        taken, _ = allocate(allowance_units, available)
        money_units = billable(record.quantity - reach, unit)
    for key, n in taken:
        consumed[(line.account_id, period, key)] = consumed.get((line.account_id, period, key), 0) + n
    amount = money_minor(money_units, unit) if money_units else 0
    if record.quantity:
        amount += setup_minor(unit)  # the setup charge apart (even when an allowance pays the units), if so
    return Rated(record, line, rate, allowance_units + money_units, allowance_units, amount, unit.currency, period)


def in_event_order(items: Iterable[tuple[UsageRecord, Line]]) -> list[tuple[UsageRecord, Line]]:
    """Records of each account in the order they happened (allowances are consumed in event-time order)."""
    return sorted(items, key=lambda it: (it[1].account_id, it[0].event_time, it[0].key))
