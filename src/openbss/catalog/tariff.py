"""Tariffs: versioned catalog objects that usage prices reference (an OpenBSS extension of TMF620).

A tariff rates one kind of usage (voice, SMS, data, ...) by

* **destination zones**: E.164 number prefixes, the longest matching prefix wins (``33`` France, ``336``/``337``
  French mobiles);
* **time bands**: peak / off-peak / weekend, in the tariff's time zone, covering every minute of the week exactly
  once; holidays may be rated in another band;
* **roaming zones**: the visited countries (EU/EEA, world zones) when the subscriber is abroad;
* **rates**: a price per unit of measure for a destination zone (or ``*``), optionally only in a roaming zone
  and/or a time band, with rating increments (60/60, 30/1 seconds) and an optional setup charge. The most
  specific rate applies (exact zone over ``*``, band-specific over all-band).

Why not a TMF620 resource: TMF620 v4 has no tariff resource (rating tables belong to the charging side of the
SID), and adding one under ``/tmf-api/productCatalogManagement/v4/`` would claim a TM Forum path for a shape the
standard does not define. Tariffs are served at ``/api/catalog/v1/tariff``, an OpenBSS API described by
``OpenBSS-CatalogExtensions-v1.swagger.json`` and built with the same kit (validation from that specification,
TMF630 list queries, events, hub at ``/api/catalog/v1/hub``). Usage prices point at a tariff with their
``tariff`` extension attribute; changing an Active tariff creates a new version (new id) exactly like offerings
and prices, so sold products keep rating with the version they bought.

Charging and batch rating use ``compile_tariff(document).rate(...)``; the primitives are in ``openbss.pricing``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from openbss.catalog.errors import InvalidTariff
from openbss.pricing.money import is_currency, to_decimal
from openbss.pricing.rating import (
    PrefixTable,
    RatingRuleError,
    TimeBand,
    band_at,
    billable_seconds,
    charge,
    unique_prefixes,
    validate_time_bands,
)
from openbss.pricing.units import UnitError, canonical_unit, convert, dimension

ANY_ZONE = "*"
ALL_DAY_BAND = "all"
COUNTRY = re.compile(r"^[A-Z]{2}$")
NETWORK = re.compile(r"^\d{5,6}$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
ROUNDING_METHODS = ("up", "down", "halfUp")
DEFAULT_UNIT = {"voice": "minute", "video": "minute", "sms": "SMS", "mms": "MMS", "data": "MB"}


@dataclass(frozen=True)
class Rate:
    destination_zone: str
    roaming_zone: str | None
    time_band: str | None
    price: Decimal
    currency: str
    per_amount: Decimal
    per_unit: str
    setup: Decimal
    initial: int
    subsequent: int
    direction: str | None = None  # originating | terminating; None: both


@dataclass(frozen=True)
class RatedEvent:
    destination_zone: str
    prefix: str | None
    roaming_zone: str | None
    time_band: str
    rate: Rate
    billable_quantity: Decimal  # in the rate's base unit (seconds for time)
    amount: Decimal  # unrounded; rounding happens in billing/charging with pricing.money.round_money


class CompiledTariff:
    """A validated tariff ready to rate: prefix table, bands, roaming countries, rate index."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.usage_type = doc.get("usageType", "voice")
        self.time_zone = doc.get("timeZone") or "UTC"
        self.bands = [TimeBand(b["name"], tuple(b.get("dayOfWeek") or ()), b.get("startTime") or "00:00",
                               b.get("endTime") or "24:00") for b in doc.get("timeBand") or []]
        self.holidays = {h["date"]: h["timeBand"] for h in doc.get("holiday") or []}
        zones = [(z["id"], z.get("prefix") or []) for z in doc.get("destinationZone") or []]
        self.zone_ids = [z for z, _ in zones]
        self.prefixes = PrefixTable(unique_prefixes(zones))
        self.roaming_by_country: dict[str, str] = {}
        for rz in doc.get("roamingZone") or []:
            for c in rz.get("country") or []:
                if c in self.roaming_by_country and self.roaming_by_country[c] != rz["id"]:
                    raise RatingRuleError(f"country '{c}' is in roaming zones '{self.roaming_by_country[c]}' "
                                          f"and '{rz['id']}'")
                self.roaming_by_country[c] = rz["id"]
        self.roaming_by_network: dict[str, str] = {}
        for rz in doc.get("roamingZone") or []:
            for n in rz.get("network") or []:
                if n in self.roaming_by_network and self.roaming_by_network[n] != rz["id"]:
                    raise RatingRuleError(f"network '{n}' is in roaming zones '{self.roaming_by_network[n]}' "
                                          f"and '{rz['id']}'")
                self.roaming_by_network[n] = rz["id"]
        self.roaming_ids = [rz["id"] for rz in doc.get("roamingZone") or []]
        self.home_country = doc.get("homeCountry")
        default_inc = doc.get("defaultRatingIncrement") or {"initial": 1, "subsequent": 1}
        #: how the price of one rating increment is rounded ({"method", "decimals"}); None: exact
        self.rounding: dict[str, Any] | None = doc.get("rounding")
        self.rates: dict[tuple[str, str | None, str | None, str | None], Rate] = {}
        for i, r in enumerate(doc.get("rate") or []):
            price = r.get("price") or {}
            uom = r.get("unitOfMeasure") or {"amount": 1, "units": DEFAULT_UNIT.get(self.usage_type, "minute")}
            inc = r.get("ratingIncrement") or default_inc
            setup = r.get("setupCharge") or {}
            rate = Rate(
                destination_zone=r["destinationZone"], roaming_zone=r.get("roamingZone"),
                time_band=r.get("timeBand"), price=to_decimal(price.get("value", 0)),
                currency=price.get("unit", ""), per_amount=to_decimal(uom.get("amount", 1)),
                per_unit=canonical_unit(uom.get("units", "minute")), setup=to_decimal(setup.get("value", 0)),
                initial=int(inc["initial"]), subsequent=int(inc["subsequent"]), direction=r.get("direction"),
            )
            key = (rate.destination_zone, rate.roaming_zone, rate.time_band, rate.direction)
            if key in self.rates:
                raise RatingRuleError(f"rate[{i}] repeats the rate of zone '{key[0]}'"
                                      f"{f', roaming zone {key[1]}' if key[1] else ''}"
                                      f"{f', time band {key[2]}' if key[2] else ''}"
                                      f"{f', {key[3]} calls' if key[3] else ''}")
            self.rates[key] = rate

    def band_names(self) -> list[str]:
        return [b.name for b in self.bands] or [ALL_DAY_BAND]

    def find_rate(self, zone: str, roaming: str | None, band: str | None,
                  direction: str | None = None) -> Rate | None:
        """The most specific rate: the call direction's before a rate for both, the zone's before any zone's, the
        band's before an all-day rate."""
        for d in ((direction, None) if direction else (None,)):
            found = self._find(zone, roaming, band, d)
            if found is not None:
                return found
        return None

    def _find(self, zone: str, roaming: str | None, band: str | None, direction: str | None) -> Rate | None:
        for z in (zone, ANY_ZONE):
            for b in (band, None):
                rate = self.rates.get((z, roaming, b, direction))
                if rate is not None:
                    return rate
        return None

    def roaming_zone_for(self, visited_country: str | None, visited_network: str | None = None) -> str | None:
        """The roaming zone of a visited network (MCC+MNC), else of a visited country; None at home."""
        if visited_network and visited_network in self.roaming_by_network:
            return self.roaming_by_network[visited_network]
        if not visited_country or visited_country == self.home_country:
            return None
        zone = self.roaming_by_country.get(visited_country.upper())
        if zone is None:
            raise RatingRuleError(f"country '{visited_country}' is in no roaming zone of this tariff")
        return zone

    def rate(self, destination: str, at: datetime, *, visited_country: str | None = None,
             quantity: Decimal | int = 60) -> RatedEvent:
        """Rate one event: ``quantity`` in seconds for voice/video, units (SMS, MB, ...) otherwise."""
        match = self.prefixes.match(destination)
        if match is None:
            raise RatingRuleError(f"no destination zone matches '{destination}'")
        prefix, zone = match
        roaming = self.roaming_zone_for(visited_country)
        band = band_at(at, self.bands, self.time_zone, self.holidays) if self.bands else ALL_DAY_BAND
        rate = self.find_rate(zone, roaming, band if self.bands else None)
        if rate is None:
            raise RatingRuleError(f"no rate for zone '{zone}', roaming '{roaming or 'home'}', band '{band}'")
        qty = Decimal(quantity)
        if dimension(rate.per_unit) == "time":
            billable = Decimal(billable_seconds(qty, rate.initial, rate.subsequent))
            per = convert(rate.per_amount, rate.per_unit, "second")
        else:
            billable = qty
            per = rate.per_amount
        amount = charge(billable, rate.price, per, rate.setup if billable else Decimal(0))
        return RatedEvent(zone, prefix, roaming, band, rate, billable, amount)


def compile_tariff(doc: dict[str, Any]) -> CompiledTariff:
    try:
        return CompiledTariff(doc)
    except (RatingRuleError, UnitError, KeyError) as exc:
        raise InvalidTariff(str(exc)) from exc


def validate_tariff(doc: dict[str, Any]) -> None:
    """Refuse a tariff that cannot rate every destination at every moment, naming what is wrong."""
    tz = doc.get("timeZone")
    if tz:
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise InvalidTariff(f"'timeZone': '{tz}' is not an IANA time zone") from exc
    home = doc.get("homeCountry")
    if home is not None and not COUNTRY.match(home):
        raise InvalidTariff(f"'homeCountry': '{home}' is not an ISO 3166-1 alpha-2 code")
    inc = doc.get("defaultRatingIncrement")
    if inc and (inc["initial"] <= 0 or inc["subsequent"] <= 0):
        raise InvalidTariff("'defaultRatingIncrement': increments must be positive seconds")
    rounding = doc.get("rounding")
    if rounding is not None:
        if rounding.get("method", "halfUp") not in ROUNDING_METHODS:
            raise InvalidTariff(f"'rounding.method': '{rounding.get('method')}' is not one of "
                                f"{', '.join(ROUNDING_METHODS)}")
        if not isinstance(rounding.get("decimals"), int) or not 0 <= rounding["decimals"] <= 9:
            raise InvalidTariff("'rounding.decimals': a whole number of decimal places from 0 to 9 is required")
    zones = doc.get("destinationZone") or []
    ids = [z["id"] for z in zones]
    if not zones and doc.get("usageType") != "data":
        raise InvalidTariff("'destinationZone': a tariff needs at least one destination zone (a data tariff may have "
                            "none: its rates are for any destination, '*')")
    for i, z in enumerate(zones):
        if ids.count(z["id"]) > 1:
            raise InvalidTariff(f"'destinationZone[{i}].id': zone '{z['id']}' is defined twice")
        if z["id"] == ANY_ZONE:
            raise InvalidTariff(f"'destinationZone[{i}].id': '{ANY_ZONE}' is reserved for 'any destination'")
        if not z.get("prefix"):
            raise InvalidTariff(f"'destinationZone[{i}].prefix': zone '{z['id']}' has no prefix")
    rz_ids = [rz["id"] for rz in doc.get("roamingZone") or []]
    for i, rz in enumerate(doc.get("roamingZone") or []):
        if rz_ids.count(rz["id"]) > 1:
            raise InvalidTariff(f"'roamingZone[{i}].id': roaming zone '{rz['id']}' is defined twice")
        for c in rz.get("country") or []:
            if not COUNTRY.match(c):
                raise InvalidTariff(f"'roamingZone[{i}].country': '{c}' is not an ISO 3166-1 alpha-2 code")
        for n in rz.get("network") or []:
            if not NETWORK.match(n):
                raise InvalidTariff(f"'roamingZone[{i}].network': '{n}' is not an MCC+MNC (5 or 6 digits)")
        if not rz.get("country") and not rz.get("network"):
            raise InvalidTariff(f"'roamingZone[{i}]': a roaming zone lists countries or networks")
    band_names = list(dict.fromkeys(b["name"] for b in doc.get("timeBand") or []))
    for i, h in enumerate(doc.get("holiday") or []):
        if not DATE.match(h["date"]):
            raise InvalidTariff(f"'holiday[{i}].date': '{h['date']}' is not a date YYYY-MM-DD")
        if h["timeBand"] not in band_names:
            raise InvalidTariff(f"'holiday[{i}].timeBand': unknown time band '{h['timeBand']}'")
    for i, r in enumerate(doc.get("rate") or []):
        where = f"'rate[{i}]"
        if r["destinationZone"] != ANY_ZONE and r["destinationZone"] not in ids:
            raise InvalidTariff(f"{where}.destinationZone': unknown destination zone '{r['destinationZone']}'")
        if r.get("roamingZone") is not None and r["roamingZone"] not in rz_ids:
            raise InvalidTariff(f"{where}.roamingZone': unknown roaming zone '{r['roamingZone']}'")
        if r.get("timeBand") is not None and r["timeBand"] not in band_names:
            raise InvalidTariff(f"{where}.timeBand': unknown time band '{r['timeBand']}'")
        for attr in ("price", "setupCharge"):
            money = r.get(attr)
            if money is None:
                continue
            if not is_currency(money.get("unit")):
                raise InvalidTariff(f"{where}.{attr}.unit': a currency (ISO 4217) is required, "
                                    f"got {money.get('unit')!r}")
            if money.get("value") is None:
                raise InvalidTariff(f"{where}.{attr}.value': an amount is required")
            if to_decimal(money["value"]) < 0:
                raise InvalidTariff(f"{where}.{attr}.value': must not be negative")
        uom = r.get("unitOfMeasure")
        if uom is not None:
            try:
                canonical_unit(uom.get("units", ""))
            except UnitError as exc:
                raise InvalidTariff(f"{where}.unitOfMeasure.units': {exc}") from exc
            if uom.get("amount") is not None and to_decimal(uom["amount"]) <= 0:
                raise InvalidTariff(f"{where}.unitOfMeasure.amount': must be positive")
        ri = r.get("ratingIncrement")
        if ri and (ri["initial"] <= 0 or ri["subsequent"] <= 0):
            raise InvalidTariff(f"{where}.ratingIncrement': increments must be positive seconds")
    currencies = {(r.get("price") or {}).get("unit") for r in doc.get("rate") or []}
    if len(currencies) > 1:
        found = ", ".join(sorted(map(str, currencies)))
        raise InvalidTariff(f"'rate': all rates must be in one currency, found {found}")
    try:
        validate_time_bands([TimeBand(b["name"], tuple(b.get("dayOfWeek") or ()), b.get("startTime") or "00:00",
                                      b.get("endTime") or "24:00") for b in doc.get("timeBand") or []])
    except RatingRuleError as exc:
        raise InvalidTariff(f"'timeBand': {exc}") from exc
    compiled = compile_tariff(doc)
    # completeness: every destination zone, at home and in every roaming zone, in every band has a rate
    bands: list[str | None] = list(band_names) or [None]
    for roaming in [None, *rz_ids]:
        for zone in ids or [ANY_ZONE]:
            for band in bands:
                if compiled.find_rate(zone, roaming, band, "originating") is None:
                    raise InvalidTariff(
                        f"'rate': no rate for destination zone '{zone}'"
                        f"{f' in roaming zone {roaming!r}' if roaming else ' at home'}"
                        f"{f' in time band {band!r}' if band else ''}")
