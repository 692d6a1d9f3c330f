"""The choice of a rate: one function for online charging (a session or event) and batch rating (a usage record).

Given the line's plan entry for the usage type (a catalog usage price read as a rating entry) and, when the price
has one, the catalog's compiled tariff, :func:`choose_rate` picks the destination zone (longest prefix of the called
number; of the calling number for an incoming call), the roaming zone (visited network, else visited country), the
time band (in the account's time zone at the session's start) and the call direction, and returns the **rate
document** (strings for decimals) that ``pricing.usage.unit_rate`` reads. Pure: the caller fetches the tariff.

With ``band_change="split"`` a time-measured session (a call) on a tariff with time bands also carries its
``bandSplit``: the session's start and the rate of every band for the same destination, roaming zone and direction,
so that ``charging.sessions.Ledger`` rates each second in the band in force then (see ``pricing.bands``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from openbss.pricing.money import to_decimal
from openbss.pricing.rating import RatingRuleError, TimeBand, band_at
from openbss.pricing.units import UnitError, convert

UNITS_OF = {"data": "B", "voice": "second", "sms": "SMS", "mms": "MMS"}
ANY_DESTINATION = "*"  # a tariff's rates for any destination zone
#: the rating settings a plan entry (a catalog usage price) may carry into the rate of a session
RATE_SETTINGS = ("initial", "subsequent", "setup", "rounding", "decimals", "quota", "setupAlways", "maxCharge",
                 "allowanceInitial", "allowanceSubsequent", "incrementTiers")
BAND_CHANGES = ("start", "split")
TIME_USAGE = ("voice", "video")


class NoRate(ValueError):
    """No rate for this usage under the plan (no price for the usage type, no zone for the number, ...)."""


class TariffRate(Protocol):
    @property
    def price(self) -> Decimal: ...

    @property
    def currency(self) -> str: ...

    @property
    def per_amount(self) -> Decimal: ...

    @property
    def per_unit(self) -> str: ...

    @property
    def setup(self) -> Decimal: ...

    @property
    def initial(self) -> int: ...

    @property
    def subsequent(self) -> int: ...


class Tariff(Protocol):
    """What the choice reads of a compiled tariff (``catalog.tariff.CompiledTariff``)."""

    @property
    def time_zone(self) -> str: ...

    @property
    def bands(self) -> Sequence[TimeBand]: ...

    @property
    def holidays(self) -> Mapping[str, str]: ...

    @property
    def rounding(self) -> Mapping[str, Any] | None: ...

    @property
    def prefixes(self) -> Any: ...

    def roaming_zone_for(self, visited_country: str | None, visited_network: str | None = None) -> str | None: ...

    def find_rate(self, zone: str, roaming: str | None, band: str | None,
                  direction: str | None = None) -> TariffRate | None: ...


#: usage free for the receiver (direction terminating) unless the tariff has a rate for received usage
RECEIVED_FREE = ("sms",)


def received_free(rate: Mapping[str, Any]) -> dict[str, Any]:
    """The rate of a received message (an SMS, direction terminating) that the tariff does not charge: free
    for the receiver, and taking nothing from the allowances (``free``). A tariff charges received messages with
    a rate of direction ``terminating`` (then rated like any other usage, allowances included)."""
    return {"currency": rate["currency"], "price": "0", "per": "1", "tiers": [], "priceId": rate.get("priceId"),
            "productId": rate.get("productId"), "direction": "terminating", "free": True}


def capped(rate: dict[str, Any], entry: Mapping[str, Any]) -> dict[str, Any]:
    """The rate with its price (and tiers' prices) no more than the plan entry's maximum rate, which is per the
    entry's unit of measure (``per``) while the rate's price is per the rate's (a tariff's rate may count per
    second what the price caps per minute)."""
    if entry.get("maxRate") is None:
        return rate
    cap = to_decimal(entry["maxRate"]) * to_decimal(rate.get("per", "1")) / to_decimal(entry.get("per", "1"))
    out = {**rate, "price": str(min(to_decimal(rate["price"]), cap))}
    if rate.get("tiers"):
        out["tiers"] = [{**t, "price": str(min(to_decimal(t["price"]), cap))} for t in rate["tiers"]]
    if to_decimal(out["price"]) < to_decimal(rate["price"]):
        out["cappedFrom"] = rate["price"]
    return out


def plan_rate(entry: Mapping[str, Any], product_id: str | None) -> dict[str, Any]:
    """The rate of a price without a tariff: the plan entry's price and rating settings."""
    rate: dict[str, Any] = {"currency": entry["currency"], "price": entry["price"], "per": entry.get("per", "1"),
                            "tiers": entry.get("tiers") or [], "priceId": entry.get("priceId"),
                            "productId": product_id}
    rate.update({k: entry[k] for k in RATE_SETTINGS if entry.get(k) is not None})
    return rate


def _per(found: TariffRate, usage_type: str, tariff_id: str) -> Decimal:
    try:
        return convert(found.per_amount, found.per_unit, UNITS_OF.get(usage_type, "event"))
    except UnitError as exc:
        raise NoRate(f"tariff '{tariff_id}': {exc}") from exc


def choose_rate(entry: Mapping[str, Any] | None, *, usage_type: str, product_id: str | None,
                tariff: Tariff | None, destination: str | None, direction: str, visited_country: str | None,
                visited_network: str | None, moment: datetime, time_zone: str | None,
                band_change: str = "start") -> dict[str, Any]:
    """The rate document of a usage under a plan entry (raises :class:`NoRate` naming why there is none).

    ``destination`` is the called number of an originating call, the calling number of a terminating one (None:
    unknown); ``moment`` (aware) is the session's start; ``time_zone`` the account's (else the tariff's)."""
    if entry is None:
        raise NoRate(f"the offering of product '{product_id}' has no {usage_type} price")
    if band_change not in BAND_CHANGES:
        raise NoRate(f"band change '{band_change}' is not one of {', '.join(BAND_CHANGES)}")
    rate = plan_rate(entry, product_id)
    tariff_id = entry.get("tariffId")
    received_sms = usage_type in RECEIVED_FREE and direction == "terminating"
    if not tariff_id:
        return received_free(rate) if received_sms else capped(rate, entry)
    if tariff is None:
        raise NoRate(f"tariff '{tariff_id}' of price '{entry.get('priceId')}' is not available")
    tz = time_zone or tariff.time_zone
    try:
        if destination:
            match = tariff.prefixes.match(destination)
            if match is None:
                raise NoRate(f"no destination zone of tariff '{tariff_id}' matches '{destination}'")
            prefix, zone = match
        elif usage_type == "data" or direction == "terminating":  # no number to rate: any destination's rate
            prefix, zone = None, ANY_DESTINATION
        else:
            raise NoRate(f"price '{entry.get('priceId')}' is rated by destination and the usage has no called "
                         "number")
        roaming = tariff.roaming_zone_for(visited_country.upper() if visited_country else None, visited_network)
        band = band_at(moment, tariff.bands, tz, tariff.holidays) if tariff.bands else None
        call_direction = direction if usage_type == "voice" or received_sms else None
        found = tariff.find_rate(zone, roaming, band, call_direction)
        if received_sms and getattr(found, "direction", None) != "terminating":
            return received_free(rate)  # no rate of the tariff for received messages: free for the receiver
    except RatingRuleError as exc:
        raise NoRate(f"tariff '{tariff_id}': {exc}") from exc
    if found is None:
        raise NoRate(f"tariff '{tariff_id}' has no rate for zone '{zone}'"
                     f"{f', roaming zone {roaming}' if roaming else ''}{f', time band {band}' if band else ''}")
    out = {**rate, "currency": found.currency or rate["currency"], "price": str(found.price),
           "per": str(_per(found, usage_type, tariff_id)), "setup": str(found.setup), "tiers": [], "zone": zone,
           "prefix": prefix, "band": band, "roaming": roaming, "tariffId": tariff_id}
    if usage_type == "voice" or received_sms:
        out["direction"] = direction
    if usage_type == "voice":  # a tariff's rating increments are seconds; data keeps the price's blocks
        out["initial"], out["subsequent"] = found.initial, found.subsequent
    if tariff.rounding:
        out["rounding"] = tariff.rounding.get("method") or "halfUp"
        out["decimals"] = int(tariff.rounding["decimals"])
    out = capped(out, entry)
    if band_change == "split" and usage_type in TIME_USAGE and tariff.bands and not entry.get("allowanceInitial"):
        names = list(dict.fromkeys(b.name for b in tariff.bands))
        rates: dict[str, dict[str, str]] = {}
        for name in names:
            other = tariff.find_rate(zone, roaming, name, call_direction)
            if other is None:
                raise NoRate(f"tariff '{tariff_id}' has no rate for zone '{zone}', time band {name}")
            if (other.currency or rate["currency"]) != out["currency"]:
                raise NoRate(f"tariff '{tariff_id}': time bands '{band}' and '{name}' rate in different currencies")
            priced = capped({"price": str(other.price), "per": str(_per(other, usage_type, tariff_id))}, entry)
            rates[name] = {"price": priced["price"], "per": priced["per"]}
        out["bandSplit"] = {
            "start": moment.timestamp(), "timeZone": tz, "holidays": dict(tariff.holidays), "rates": rates,
            "bands": [[b.name, list(b.days), b.start, b.end] for b in tariff.bands]}
    return out
