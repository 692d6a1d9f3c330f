"""Tariffs: longest-prefix destination zones, time bands in a time zone, increments, validation, the rating API."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openbss.catalog.errors import InvalidTariff
from openbss.catalog.tariff import compile_tariff, validate_tariff
from openbss.demo.catalog import demo_tariff
from openbss.pricing.rating import PrefixTable, TimeBand, band_at, billable_seconds, validate_time_bands
from tests.catalog.helpers import EXT, create
from tests.conftest import bearer

DEMO = demo_tariff()
COMPILED = compile_tariff(DEMO)
WEEK = [TimeBand("peak", ("mon", "tue", "wed", "thu", "fri"), "08:00", "20:00"),
        TimeBand("off", ("mon", "tue", "wed", "thu", "fri"), "00:00", "08:00"),
        TimeBand("off", ("mon", "tue", "wed", "thu", "fri"), "20:00", "24:00"),
        TimeBand("weekend", ("sat", "sun"))]


@given(st.dictionaries(st.from_regex(r"[1-9][0-9]{0,5}", fullmatch=True), st.sampled_from("ABCDE"), min_size=1),
       st.from_regex(r"[1-9][0-9]{0,11}", fullmatch=True))
def test_longest_prefix_matches_brute_force(prefixes: dict[str, str], number: str) -> None:
    got = PrefixTable(prefixes).match(number)
    candidates = [p for p in prefixes if number.startswith(p)]
    if not candidates:
        assert got is None
    else:
        best = max(candidates, key=len)
        assert got == (best, prefixes[best])


def test_demo_tariff_longest_prefix() -> None:
    at = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
    assert COMPILED.rate("+33612345678", at).destination_zone == "FR-MOB"
    assert COMPILED.rate("0033145678901", at).destination_zone == "FR-FIX"
    assert COMPILED.rate("+1 242 555 0100", at).destination_zone == "BS"  # 1242 beats 1
    assert COMPILED.rate("+12125550100", at).destination_zone == "US"
    assert COMPILED.rate("+14165550100", at).destination_zone == "CA"
    assert COMPILED.rate("+77011234567", at).destination_zone == "KZ"  # 77 beats 7
    assert COMPILED.rate("+74951234567", at).destination_zone == "RU"
    assert COMPILED.rate("+262269123456", at).destination_zone == "YT"  # 262269 beats 262
    assert COMPILED.rate("+262262123456", at).destination_zone == "RE"
    assert len(DEMO["destinationZone"]) >= 200


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)))
def test_every_moment_is_in_exactly_one_band(moment: datetime) -> None:
    band = band_at(moment, WEEK, "Europe/Paris")
    local = moment.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris"))
    if local.weekday() >= 5:
        assert band == "weekend"
    elif 8 <= local.hour < 20:
        assert band == "peak"
    else:
        assert band == "off"


def test_time_bands_follow_the_tariff_time_zone_and_dst() -> None:
    # 07:30 UTC is 08:30 in Paris in winter (peak) but 09:30 in summer; 06:30 UTC is 07:30 winter (off) 08:30 summer
    assert band_at(datetime(2026, 1, 14, 6, 30, tzinfo=UTC), WEEK, "Europe/Paris") == "off"
    assert band_at(datetime(2026, 7, 15, 6, 30, tzinfo=UTC), WEEK, "Europe/Paris") == "peak"
    # Friday 23:30 UTC is already Saturday in Paris
    assert band_at(datetime(2026, 3, 6, 23, 30, tzinfo=UTC), WEEK, "Europe/Paris") == "weekend"
    ev = COMPILED.rate("+33612345678", datetime(2026, 12, 25, 10, 0, tzinfo=UTC))
    assert ev.time_band == "weekend"  # holiday


@given(st.integers(min_value=0, max_value=20_000), st.sampled_from([(60, 60), (30, 1), (1, 1), (60, 1), (30, 30)]))
def test_increments(duration: int, inc: tuple[int, int]) -> None:
    initial, subsequent = inc
    billed = billable_seconds(duration, initial, subsequent)
    if duration == 0:
        assert billed == 0
        return
    assert billed >= duration and billed >= initial
    assert (billed - initial) % subsequent == 0
    assert billed - duration < max(initial, subsequent)


def test_rating_amounts() -> None:
    at = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)  # Wednesday 11:00 in Paris: peak
    ev = COMPILED.rate("+33612345678", at, quantity=61)  # 60/1 default increments, 0.10 per minute
    assert (ev.time_band, ev.billable_quantity, ev.amount) == ("peak", Decimal(61), Decimal("0.10") * 61 / 60)
    ev = COMPILED.rate("+4420700000", at, quantity=31)  # UK, group A, 30/1
    assert ev.billable_quantity == 31 and ev.rate.price == Decimal("0.19")
    ev = COMPILED.rate("+2431234567", at, quantity=61)  # DR Congo, group D, 60/60
    assert ev.billable_quantity == 120 and ev.amount == Decimal("4.98")
    ev = COMPILED.rate("+33812345678", at, quantity=10)  # special number: setup charge
    assert ev.amount == Decimal("0.10") + Decimal("0.35")
    assert COMPILED.rate("+33812345678", at, quantity=0).amount == 0
    roaming = COMPILED.rate("+33612345678", at, visited_country="US", quantity=30)
    assert roaming.roaming_zone == "WORLD1" and roaming.billable_quantity == 60 and roaming.amount == Decimal("0.99")
    assert COMPILED.rate("+33612345678", at, visited_country="DE").roaming_zone == "EU"
    assert COMPILED.rate("+33612345678", at, visited_country="FR").roaming_zone is None


def _broken(mutate: Any) -> dict[str, Any]:
    doc = copy.deepcopy(DEMO)
    mutate(doc)
    return doc


@pytest.mark.parametrize(("mutate", "words"), [
    (lambda d: d["timeBand"].pop(1), "gap"),
    (lambda d: d["timeBand"].append({"name": "x", "dayOfWeek": ["mon"], "startTime": "12:00", "endTime": "13:00"}),
     "overlap"),
    (lambda d: d["timeBand"][0].update(startTime="25:00"), "not a time of day"),
    (lambda d: d["destinationZone"][5]["prefix"].append("336"), "in both destination zones"),
    (lambda d: d["destinationZone"][3]["prefix"].append("+44"), "digits only"),
    (lambda d: d["destinationZone"].append({"id": "FR-MOB", "prefix": ["999"]}), "defined twice"),
    (lambda d: d["rate"].pop(0), "no rate for destination zone 'FR-FIX' at home in time band 'peak'"),
    (lambda d: d["rate"].append({"destinationZone": "MARS", "price": {"unit": "EUR", "value": 1}}),
     "unknown destination zone 'MARS'"),
    (lambda d: d["rate"][0].update(price={"value": 1}), "currency"),
    (lambda d: d["rate"][0].update(price={"unit": "EUR", "value": -1}), "negative"),
    (lambda d: d["rate"][0].update(price={"unit": "USD", "value": 1}), "one currency"),
    (lambda d: d["rate"][0].update(ratingIncrement={"initial": 0, "subsequent": 1}), "positive"),
    (lambda d: d["roamingZone"][0]["country"].append("France"), "alpha-2"),
    (lambda d: d["roamingZone"][1]["country"].append("DE"), "roaming zones"),
    (lambda d: d.update(timeZone="Mars/Olympus"), "IANA"),
    (lambda d: d["holiday"].append({"date": "2026-05-01", "timeBand": "holiday"}), "unknown time band"),
])
def test_invalid_tariffs(mutate: Any, words: str) -> None:
    with pytest.raises(InvalidTariff) as exc:
        validate_tariff(_broken(mutate))
    assert words in exc.value.message


def test_band_validation_names_the_gap() -> None:
    from openbss.pricing.rating import RatingRuleError

    with pytest.raises(RatingRuleError, match="mon 20:00 to mon 21:00"):
        validate_time_bands([TimeBand("a", ("mon",), "00:00", "20:00"), TimeBand("b", ("mon",), "21:00", "24:00"),
                             TimeBand("c", ("tue", "wed", "thu", "fri", "sat", "sun"))])


async def test_tariff_api_versions_and_rating(client: Any, tenant: str) -> None:
    h = bearer(tenant, "catalog_manager")
    small = {"name": "Voice", "usageType": "voice", "timeZone": "Europe/Paris", "lifecycleStatus": "Active",
             "destinationZone": [{"id": "FR", "prefix": ["33"]}, {"id": "FRM", "prefix": ["336", "337"]}],
             "rate": [{"destinationZone": "FR", "price": {"unit": "EUR", "value": 0.05}},
                      {"destinationZone": "FRM", "price": {"unit": "EUR", "value": 0.10},
                       "ratingIncrement": {"initial": 30, "subsequent": 1}}]}
    t1 = await create(client, h, f"{EXT}/tariff", small)
    assert t1["lifecycleStatus"] == "Active" and t1["version"] == "1.0"
    r = await client.get(f"{EXT}/tariff/{t1['id']}/rate", headers=h,
                         params={"destination": "+33 6 12 34 56 78", "quantity": "45", "at": "2026-03-04T10:00:00Z"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["destinationZone"] == "FRM" and out["matchedPrefix"] == "336" and out["billableQuantity"] == 45
    assert out["amount"] == {"unit": "EUR", "value": 0.075}
    price = await create(client, h, "productOfferingPrice", {
        "name": "Voice usage", "priceType": "usage", "price": {"unit": "EUR"}, "lifecycleStatus": "Active",
        "unitOfMeasure": {"amount": 1, "units": "minute"}, "tariff": {"id": t1["id"]}})
    assert price["usageType"] == "voice"
    r = await client.patch(f"{EXT}/tariff/{t1['id']}", headers=h, json={"rate": [
        {"destinationZone": "FR", "price": {"unit": "EUR", "value": 0.04}},
        {"destinationZone": "FRM", "price": {"unit": "EUR", "value": 0.09}}]})
    assert r.status_code == 200, r.text
    t2 = r.json()
    assert t2["id"] != t1["id"] and t2["version"] == "2.0"
    # the usage price follows the new tariff version with a new version of its own
    prices = (await client.get(f"{EXT}/productOfferingPrice/{price['id']}/versions", headers=h)).json()
    assert [p["tariff"]["id"] for p in prices] == [t1["id"], t2["id"]]
    r = await client.post(f"{EXT}/tariff", headers=h, json={**small, "rate": small["rate"][:1]})
    assert r.status_code == 400 and r.json()["code"] == "INVALID_TARIFF" and "'FRM'" in r.json()["message"]
    r = await client.get(f"{EXT}/tariff/{t2['id']}/rate", headers=h, params={"destination": "+4420"})
    assert r.status_code == 400 and "no destination zone" in r.json()["message"]
    r = await client.get(f"{EXT}/tariff?usageType=voice&lifecycleStatus=Active", headers=h)
    assert [t["id"] for t in r.json()] == [t2["id"]]


def test_rating_is_exact_decimal() -> None:
    ev = COMPILED.rate("+33612345678", datetime(2026, 3, 7, 10, 0, tzinfo=UTC) + timedelta(0), quantity=7)
    assert isinstance(ev.amount, Decimal) and ev.time_band == "weekend"
