"""Rating features of real tariffs, from the catalog to ``/ocs/v1/creditControl``: rating blocks for data (and every
unit) with the price's rounding method and decimals."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.catalog.helpers import EXT, create, money
from tests.charging.helpers import DATA, OCS, TMF654, account_state, ccr, group, msisdn
from tests.conftest import bearer, session_services

KB = 1024


async def call(client: Any, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    r = await client.post(OCS, json=body, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def octets(rg: int, requested: int | None = None, used: int | None = None) -> dict[str, Any]:
    return group(rg, requested, used, key="totalOctets")


async def account_on(client: Any, rt: Any, tenant: str, price: dict[str, Any], balance: str) -> dict[str, Any]:
    """A prepaid line on an offering whose data price is ``price`` (created through TMF620)."""
    from openbss.charging import service

    h = bearer(tenant, "catalog_manager")
    pop = await create(client, h, "productOfferingPrice", price)
    offer = await create(client, h, "productOffering", {"name": f"Offer {pop['id'][:8]}",
                                                        "productOfferingPrice": [{"id": pop["id"]}]})
    number = msisdn()
    async with rt.db.transaction(tenant) as session:
        ctx = service.system_context(session, tenant, "http://testserver")
        account = await session_services().charging.service.open_account(
            ctx, subscriber=number, payment_type="prepaid", currency="EUR", offering_id=offer["id"],
            initial_balance=Decimal(balance))
    account["msisdn"] = number
    return dict(account)


def data_price(**extra: Any) -> dict[str, Any]:
    return {"name": "Data by blocks", "priceType": "usage", "usageType": "data", "price": money("1.00"),
            "unitOfMeasure": {"amount": 1, "units": "MB"}, **extra}


async def test_data_blocks_100_kb_then_10_kb_rounded_per_block(client: Any, rt: Any, tenant: str,
                                                              system_headers: dict[str, str]) -> None:
    # 1.00 EUR per MB; a 100 KB block costs 0.09765625 -> 0.10, a 10 KB block 0.009765625 -> 0.01 (half up, 2 dp)
    acc = await account_on(client, rt, tenant, data_price(
        ratingBlock={"initial": {"amount": 100, "units": "KB"}, "subsequent": {"amount": 10, "units": "KB"}},
        rounding={"method": "halfUp", "decimals": 2}), balance="0.13")
    assert acc["plan"]["data"]["initial"] == 100 * KB and acc["plan"]["data"]["subsequent"] == 10 * KB
    i = await call(client, system_headers, ccr("INITIAL_REQUEST", "blk", 0, acc["msisdn"], context=DATA,
                                               groups=[octets(1, 150 * KB)]))
    m = i["multipleServicesCreditControl"][0]
    # 0.13 EUR pays the first block and three more: 130 KB, whole blocks, and the credit ran out
    assert m["grantedServiceUnit"] == {"totalOctets": 130 * KB} and m["finalUnitIndication"]
    st = await account_state(rt, tenant, acc["id"])
    assert st["money_reserved"] == 13
    u = await call(client, system_headers, ccr("UPDATE_REQUEST", "blk", 1, context=DATA,
                                               groups=[octets(1, 10 * KB, used=100 * KB + 1)]))
    assert u["resultCode"] == 2001
    st = await account_state(rt, tenant, acc["id"])
    assert st["money"] == 2  # 100 KB + 1 byte started the second block: 0.10 + 0.01
    await call(client, system_headers, ccr("TERMINATION_REQUEST", "blk", 2, context=DATA,
                                           groups=[octets(1, used=20 * KB)]))
    st = await account_state(rt, tenant, acc["id"])
    # 120 KB + 1 byte: the first block and three 10 KB blocks = 0.13
    assert st["money"] == 0 and st["money_reserved"] == 0 and st["usage"]["amount"] == 13


async def test_rounding_method_and_decimals_of_a_price(client: Any, rt: Any, tenant: str,
                                                      system_headers: dict[str, str]) -> None:
    # 0.01 EUR per MB in 1 KB blocks: 0.0000097656.. per block; 'up' to 4 decimals makes 0.0001 per KB
    acc = await account_on(client, rt, tenant, data_price(
        price=money("0.01"), ratingBlock={"initial": {"amount": 1, "units": "KB"}},
        rounding={"method": "up", "decimals": 4}), balance="1.00")
    await call(client, system_headers, ccr("INITIAL_REQUEST", "rnd", 0, acc["msisdn"], context=DATA,
                                           groups=[octets(1, 1000 * KB)]))
    await call(client, system_headers, ccr("TERMINATION_REQUEST", "rnd", 1, context=DATA,
                                           groups=[octets(1, used=250 * KB)]))
    st = await account_state(rt, tenant, acc["id"])
    assert st["money"] == 100 - 3  # 250 blocks at 0.0001 = 0.025, the session's charge rounded up: 0.03
    # the same price without rounding per block: 250 KB at 0.01 per MB = 0.00244..., charged 0.01 (never zero)
    exact = await account_on(client, rt, tenant, data_price(
        price=money("0.01"), ratingBlock={"initial": {"amount": 1, "units": "KB"}}), balance="1.00")
    await call(client, system_headers, ccr("INITIAL_REQUEST", "rnd2", 0, exact["msisdn"], context=DATA,
                                           groups=[octets(1, 1000 * KB)]))
    await call(client, system_headers, ccr("TERMINATION_REQUEST", "rnd2", 1, context=DATA,
                                           groups=[octets(1, used=250 * KB)]))
    assert (await account_state(rt, tenant, exact["id"]))["money"] == 99


async def test_price_without_blocks_is_rated_per_its_unit_of_measure(client: Any, rt: Any, tenant: str,
                                                                     system_headers: dict[str, str]) -> None:
    acc = await account_on(client, rt, tenant, data_price(price=money("0.05")), balance="1.00")
    assert acc["plan"]["data"].get("initial") is None  # the rate's default: per started MB
    await call(client, system_headers, ccr("INITIAL_REQUEST", "uom", 0, acc["msisdn"], context=DATA,
                                           groups=[octets(1, 1)]))
    await call(client, system_headers, ccr("TERMINATION_REQUEST", "uom", 1, context=DATA,
                                           groups=[octets(1, used=1024 * KB + 1)]))
    assert (await account_state(rt, tenant, acc["id"]))["money"] == 90  # two started MB


async def test_tariff_rounding_is_validated(client: Any, tenant: str) -> None:
    h = bearer(tenant, "catalog_manager")
    base = {"name": "T", "usageType": "voice", "destinationZone": [{"id": "FR", "prefix": ["33"]}],
            "rate": [{"destinationZone": "FR", "price": money("0.12")}]}
    r = await client.post(f"{EXT}/tariff", json={**base, "rounding": {"method": "up", "decimals": 4}}, headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["rounding"] == {"method": "up", "decimals": 4}
    r = await client.post(f"{EXT}/tariff", json={**base, "rounding": {"method": "up"}}, headers=h)
    assert r.status_code == 400 and "decimals" in r.text


# --- quota policy ---------------------------------------------------------------------------------------------
def policy_price() -> dict[str, Any]:
    return data_price(quotaPolicy={"defaultQuota": {"amount": 3, "units": "MB"},
                                   "minimumQuota": {"amount": 2, "units": "MB"},
                                   "validityTime": 600, "quotaHoldingTime": 30})


async def test_quota_policy_default_minimum_validity_and_holding_time(client: Any, rt: Any, tenant: str,
                                                                      system_headers: dict[str, str]) -> None:
    rich = await account_on(client, rt, tenant, policy_price(), balance="10.00")
    i = await call(client, system_headers, ccr("INITIAL_REQUEST", "qp1", 0, rich["msisdn"], context=DATA,
                                               groups=[{"ratingGroup": 1}]))
    m = i["multipleServicesCreditControl"][0]
    # no Requested-Service-Unit: the price's default quota, held for its validity time
    assert m["grantedServiceUnit"] == {"totalOctets": 3 * 1024 * KB}
    assert m["validityTime"] == 600 and m["quotaHoldingTime"] == 30
    # 1.50 EUR buys one MB, less than the 2 MB minimum: no grant
    poor = await account_on(client, rt, tenant, policy_price(), balance="1.50")
    j = await call(client, system_headers, ccr("INITIAL_REQUEST", "qp2", 0, poor["msisdn"], context=DATA,
                                               groups=[octets(1, 5 * 1024 * KB)]))
    assert j["resultCode"] == 4012 and "grantedServiceUnit" not in j["multipleServicesCreditControl"][0]
    assert (await account_state(rt, tenant, poor["id"]))["money_reserved"] == 0
    # 2.50 EUR buys two MB: at the minimum, granted with a final-unit indication
    some = await account_on(client, rt, tenant, policy_price(), balance="2.50")
    k = await call(client, system_headers, ccr("INITIAL_REQUEST", "qp3", 0, some["msisdn"], context=DATA,
                                               groups=[octets(1, 5 * 1024 * KB)]))
    m = k["multipleServicesCreditControl"][0]
    assert m["grantedServiceUnit"] == {"totalOctets": 2 * 1024 * KB} and m["finalUnitIndication"]


async def test_all_or_nothing_request(client: Any, rt: Any, tenant: str, system_headers: dict[str, str]) -> None:
    acc = await account_on(client, rt, tenant, data_price(), balance="2.50")
    whole = {**octets(1, 3 * 1024 * KB), "allOrNothing": True}
    i = await call(client, system_headers, ccr("INITIAL_REQUEST", "aon1", 0, acc["msisdn"], context=DATA,
                                               groups=[whole]))
    assert i["resultCode"] == 4012  # 3 MB asked whole, 2 MB affordable: nothing
    assert (await account_state(rt, tenant, acc["id"]))["money_reserved"] == 0
    j = await call(client, system_headers, ccr("INITIAL_REQUEST", "aon2", 0, acc["msisdn"], context=DATA,
                                               groups=[{**octets(1, 2 * 1024 * KB), "allOrNothing": True}]))
    m = j["multipleServicesCreditControl"][0]
    assert m["grantedServiceUnit"] == {"totalOctets": 2 * 1024 * KB} and "finalUnitIndication" not in m


# --- allowances in a time band, connect fee when an allowance pays ------------------------------------------------
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]
MONDAY_NIGHT, MONDAY_MORNING = "2026-12-07T22:00:00Z", "2026-12-07T10:00:00Z"


async def banded_line(client: Any, rt: Any, tenant: str, *, fee_with_allowance: bool) -> dict[str, Any]:
    h = bearer(tenant, "catalog_manager")
    tariff = await create(client, h, f"{EXT}/tariff", {
        "name": "Peak and off-peak", "usageType": "voice", "lifecycleStatus": "Active",
        "defaultRatingIncrement": {"initial": 1, "subsequent": 1},
        "timeBand": [{"name": "peak", "dayOfWeek": WEEKDAYS, "startTime": "08:00", "endTime": "20:00"},
                     {"name": "offPeak", "dayOfWeek": WEEKDAYS, "startTime": "00:00", "endTime": "08:00"},
                     {"name": "offPeak", "dayOfWeek": WEEKDAYS, "startTime": "20:00", "endTime": "24:00"},
                     {"name": "offPeak", "dayOfWeek": ["sat", "sun"]}],
        "destinationZone": [{"id": "NAT", "prefix": ["33"]}],
        "rate": [{"destinationZone": "NAT", "timeBand": "peak", "price": money("0.60"), "setupCharge": money("0.10")},
                 {"destinationZone": "NAT", "timeBand": "offPeak", "price": money("0.30"),
                  "setupCharge": money("0.10")}]})
    price: dict[str, Any] = {
        "name": "Voice with night minutes", "priceType": "usage", "usageType": "voice", "price": {"unit": "EUR"},
        "unitOfMeasure": {"amount": 1, "units": "minute"}, "tariff": {"id": tariff["id"]},
        "allowance": [{"name": "Night minutes", "quantity": {"amount": 10, "units": "minute"},
                       "timeBand": ["offPeak"]}]}
    if fee_with_allowance:
        price["chargeSetupWithAllowance"] = True
    return await account_on(client, rt, tenant, price, balance="1.00")


async def voice_call(client: Any, headers: dict[str, str], msisdn: str, sid: str, when: str, seconds: int) -> None:
    info = {"calledParty": "+33123456789"}
    i = await call(client, headers, ccr("INITIAL_REQUEST", sid, 0, msisdn, groups=[group(1, seconds)],
                                        serviceInformation=info, eventTimestamp=when))
    assert i["resultCode"] == 2001, i
    t = await call(client, headers, ccr("TERMINATION_REQUEST", sid, 1, groups=[group(1, used=seconds)],
                                        serviceInformation=info, eventTimestamp=when))
    assert t["resultCode"] == 2001, t


def allowance_left(st: dict[str, Any]) -> int:
    return int(next(b for b in st["buckets"] if b["unit"] == "voice")["remaining"])


async def test_off_peak_allowance_and_connect_fee(client: Any, rt: Any, tenant: str,
                                                  system_headers: dict[str, str]) -> None:
    acc = await banded_line(client, rt, tenant, fee_with_allowance=True)
    r = await client.get(f"{TMF654}/bucket", params={"logicalResource.id": acc["subscriber"], "usageType": "voice"},
                         headers=bearer(tenant, "admin"))
    assert r.json()[0]["usageRestriction"] == {"timeBand": ["offPeak"]}
    # Monday 22:00: off-peak, the night minutes pay the call; the connect fee is charged all the same
    await voice_call(client, system_headers, acc["msisdn"], "night", MONDAY_NIGHT, 120)
    st = await account_state(rt, tenant, acc["id"])
    assert allowance_left(st) == 600 - 120 and st["money"] == 90
    # Monday 10:00: peak, the night minutes do not pay: 0.60 a minute and the connect fee
    await voice_call(client, system_headers, acc["msisdn"], "day", MONDAY_MORNING, 60)
    st = await account_state(rt, tenant, acc["id"])
    assert allowance_left(st) == 480 and st["money"] == 90 - 70
    assert st["usage"]["amount"] == 80 and st["usage"]["allowance"] == 120


async def test_connect_fee_waived_when_an_allowance_pays(client: Any, rt: Any, tenant: str,
                                                         system_headers: dict[str, str]) -> None:
    acc = await banded_line(client, rt, tenant, fee_with_allowance=False)
    await voice_call(client, system_headers, acc["msisdn"], "night2", MONDAY_NIGHT, 120)
    st = await account_state(rt, tenant, acc["id"])
    assert allowance_left(st) == 480 and st["money"] == 100


async def test_allowance_time_band_must_exist_in_the_tariff(client: Any, tenant: str) -> None:
    h = bearer(tenant, "catalog_manager")
    tariff = await create(client, h, f"{EXT}/tariff", {
        "name": "Flat", "usageType": "voice", "destinationZone": [{"id": "NAT", "prefix": ["33"]}],
        "rate": [{"destinationZone": "NAT", "price": money("0.60")}]})
    r = await client.post("/tmf-api/productCatalogManagement/v4/productOfferingPrice", headers=h, json={
        "name": "V", "priceType": "usage", "usageType": "voice", "price": {"unit": "EUR"},
        "unitOfMeasure": {"amount": 1, "units": "minute"}, "tariff": {"id": tariff["id"]},
        "allowance": [{"quantity": {"amount": 10, "units": "minute"}, "timeBand": ["offPeak"]}]})
    assert r.status_code == 400 and "'allowance[0].timeBand': tariff 'Flat' has no time band 'offPeak'" in r.text


# --- maximum cost per call, maximum rate ------------------------------------------------------------------------
async def test_maximum_charge_per_call(client: Any, rt: Any, tenant: str, system_headers: dict[str, str]) -> None:
    price = {"name": "Capped calls", "priceType": "usage", "usageType": "voice", "price": money("0.60"),
             "unitOfMeasure": {"amount": 1, "units": "minute"}, "maximumCharge": money("1.00"),
             "ratingBlock": {"initial": {"amount": 1, "units": "second"}}}
    acc = await account_on(client, rt, tenant, price, balance="1.50")
    i = await call(client, system_headers, ccr("INITIAL_REQUEST", "cap", 0, acc["msisdn"], groups=[group(1, 600)]))
    m = i["multipleServicesCreditControl"][0]
    # 10 minutes would be 6.00; a call never costs more than 1.00, so 1.50 covers it whole
    assert m["grantedServiceUnit"] == {"time": 600} and "finalUnitIndication" not in m
    assert (await account_state(rt, tenant, acc["id"]))["money_reserved"] == 100
    await call(client, system_headers, ccr("UPDATE_REQUEST", "cap", 1, groups=[group(1, 600, used=90)]))
    assert (await account_state(rt, tenant, acc["id"]))["money"] == 150 - 90
    await call(client, system_headers, ccr("TERMINATION_REQUEST", "cap", 2, groups=[group(1, used=510)]))
    st = await account_state(rt, tenant, acc["id"])
    assert st["money"] == 50 and st["usage"]["amount"] == 100 and st["usage"]["units"] == 600


async def test_maximum_rate_caps_a_tariff_rate(client: Any, rt: Any, tenant: str,
                                               system_headers: dict[str, str]) -> None:
    h = bearer(tenant, "catalog_manager")
    tariff = await create(client, h, f"{EXT}/tariff", {
        "name": "International", "usageType": "voice", "lifecycleStatus": "Active",
        "defaultRatingIncrement": {"initial": 60, "subsequent": 60},
        "destinationZone": [{"id": "NAT", "prefix": ["33"]}, {"id": "INT", "prefix": ["44"]}],
        "rate": [{"destinationZone": "NAT", "price": money("0.30")},
                 {"destinationZone": "INT", "price": money("1.20")}]})
    acc = await account_on(client, rt, tenant, {
        "name": "Capped rate", "priceType": "usage", "usageType": "voice", "price": {"unit": "EUR"},
        "unitOfMeasure": {"amount": 1, "units": "minute"}, "tariff": {"id": tariff["id"]},
        "maximumRate": money("0.90")}, balance="5.00")
    for sid, called in (("int", "+442071234567"), ("nat", "+33123456789")):
        info = {"calledParty": called}
        await call(client, system_headers, ccr("INITIAL_REQUEST", sid, 0, acc["msisdn"], groups=[group(1, 60)],
                                               serviceInformation=info))
        await call(client, system_headers, ccr("TERMINATION_REQUEST", sid, 1, groups=[group(1, used=60)]))
    # 1.20 a minute capped to 0.90; 0.30 under the cap unchanged
    assert (await account_state(rt, tenant, acc["id"]))["money"] == 500 - 90 - 30


# --- allowances with their own rate -------------------------------------------------------------------------------
async def test_bundle_counted_per_second_money_per_minute(client: Any, rt: Any, tenant: str,
                                                          system_headers: dict[str, str]) -> None:
    price = {"name": "Minutes by the second", "priceType": "usage", "usageType": "voice", "price": money("0.60"),
             "unitOfMeasure": {"amount": 1, "units": "minute"},
             "ratingBlock": {"initial": {"amount": 1, "units": "minute"}},
             "allowanceRatingBlock": {"initial": {"amount": 1, "units": "second"}},
             "allowance": [{"name": "100 s bundle", "quantity": {"amount": 100, "units": "second"}}]}
    acc = await account_on(client, rt, tenant, price, balance="5.00")
    await call(client, system_headers, ccr("INITIAL_REQUEST", "own1", 0, acc["msisdn"], groups=[group(1, 90)]))
    await call(client, system_headers, ccr("TERMINATION_REQUEST", "own1", 1, groups=[group(1, used=90)]))
    st = await account_state(rt, tenant, acc["id"])
    voice = next(b for b in st["buckets"] if b["unit"] == "voice")
    assert voice["remaining"] == 10 and st["money"] == 500  # 90 s of bundle, not two minutes
    # 70 s: the last 10 s of bundle, then 60 s of money counted per minute: 0.60 (not 1:50 of money at 1.10)
    i = await call(client, system_headers, ccr("INITIAL_REQUEST", "own2", 0, acc["msisdn"], groups=[group(1, 70)]))
    assert i["multipleServicesCreditControl"][0]["grantedServiceUnit"] == {"time": 70}
    assert (await account_state(rt, tenant, acc["id"]))["money_reserved"] == 60
    await call(client, system_headers, ccr("UPDATE_REQUEST", "own2", 1, groups=[group(1, 60, used=30)]))
    await call(client, system_headers, ccr("TERMINATION_REQUEST", "own2", 2, groups=[group(1, used=40)]))
    st = await account_state(rt, tenant, acc["id"])
    voice = next(b for b in st["buckets"] if b["unit"] == "voice")
    assert voice["remaining"] == 0 and st["money"] == 440 and st["money_reserved"] == 0
    assert st["usage"]["allowance"] == 100 and st["usage"]["amount"] == 60


# --- data by time band and visited network ------------------------------------------------------------------------
async def test_data_priced_by_time_band_and_visited_network(client: Any, rt: Any, tenant: str,
                                                            system_headers: dict[str, str]) -> None:
    h = bearer(tenant, "catalog_manager")
    mb = {"amount": 1, "units": "MB"}
    tariff = await create(client, h, f"{EXT}/tariff", {
        "name": "Data by band and network", "usageType": "data", "lifecycleStatus": "Active", "homeCountry": "FR",
        "timeBand": [{"name": "peak", "dayOfWeek": WEEKDAYS, "startTime": "08:00", "endTime": "20:00"},
                     {"name": "offPeak", "dayOfWeek": WEEKDAYS, "startTime": "00:00", "endTime": "08:00"},
                     {"name": "offPeak", "dayOfWeek": WEEKDAYS, "startTime": "20:00", "endTime": "24:00"},
                     {"name": "offPeak", "dayOfWeek": ["sat", "sun"]}],
        "roamingZone": [{"id": "PARTNER", "network": ["21401"]}, {"id": "WORLD", "country": ["US", "ES"]}],
        "rate": [{"destinationZone": "*", "timeBand": "peak", "price": money("0.02"), "unitOfMeasure": mb},
                 {"destinationZone": "*", "timeBand": "offPeak", "price": money("0.01"), "unitOfMeasure": mb},
                 {"destinationZone": "*", "roamingZone": "PARTNER", "price": money("0.05"), "unitOfMeasure": mb},
                 {"destinationZone": "*", "roamingZone": "WORLD", "price": money("1.00"), "unitOfMeasure": mb}]})
    acc = await account_on(client, rt, tenant, {
        "name": "Data by tariff", "priceType": "usage", "usageType": "data", "price": {"unit": "EUR"},
        "unitOfMeasure": mb, "tariff": {"id": tariff["id"]}}, balance="5.00")
    sessions = (("peak", MONDAY_MORNING, {}, 2), ("night", MONDAY_NIGHT, {}, 2),
                ("partner", MONDAY_MORNING, {"visitedCountry": "ES", "visitedNetwork": "21401"}, 2),
                ("spain", MONDAY_MORNING, {"visitedCountry": "ES", "visitedNetwork": "21403"}, 1))
    for sid, when, info, megabytes in sessions:
        extra = {"serviceInformation": info} if info else {}
        i = await call(client, system_headers, ccr("INITIAL_REQUEST", sid, 0, acc["msisdn"], context=DATA,
                                                   groups=[octets(1, megabytes * 1024 * KB)], eventTimestamp=when,
                                                   **extra))
        assert i["resultCode"] == 2001, i
        await call(client, system_headers, ccr("TERMINATION_REQUEST", sid, 1, context=DATA,
                                               groups=[octets(1, used=megabytes * 1024 * KB)]))
    st = await account_state(rt, tenant, acc["id"])
    # peak 2 x 0.02, off-peak 2 x 0.01, the partner network (MCC+MNC 214-01) 2 x 0.05, another Spanish network 1.00
    assert st["money"] == 500 - 4 - 2 - 10 - 100


async def test_data_price_on_a_voice_tariff_is_refused(client: Any, tenant: str) -> None:
    h = bearer(tenant, "catalog_manager")
    tariff = await create(client, h, f"{EXT}/tariff", {
        "name": "Voice only", "usageType": "voice", "destinationZone": [{"id": "NAT", "prefix": ["33"]}],
        "rate": [{"destinationZone": "NAT", "price": money("0.60")}]})
    r = await client.post("/tmf-api/productCatalogManagement/v4/productOfferingPrice", headers=h, json=data_price(
        price={"unit": "EUR"}, tariff={"id": tariff["id"]}))
    assert r.status_code == 400 and "tariff 'Voice only' rates voice, not data" in r.text, r.text
    r = await client.post(f"{EXT}/tariff", headers=h, json={
        "name": "Bad network", "usageType": "data", "roamingZone": [{"id": "X", "network": ["2140"]}],
        "rate": [{"destinationZone": "*", "price": money("0.01")}]})
    assert r.status_code == 400 and "'roamingZone[0].network': '2140' is not an MCC+MNC" in r.text, r.text


# --- call direction ---------------------------------------------------------------------------------------------
async def test_call_direction_selects_the_rate(client: Any, rt: Any, tenant: str,
                                               system_headers: dict[str, str]) -> None:
    h = bearer(tenant, "catalog_manager")
    tariff = await create(client, h, f"{EXT}/tariff", {
        "name": "Outgoing and incoming", "usageType": "voice", "lifecycleStatus": "Active", "homeCountry": "FR",
        "defaultRatingIncrement": {"initial": 60, "subsequent": 60},
        "destinationZone": [{"id": "NAT", "prefix": ["33"]}, {"id": "INT", "prefix": ["44"]}],
        "roamingZone": [{"id": "WORLD", "country": ["US"]}],
        "rate": [{"destinationZone": "NAT", "price": money("0.60")},
                 {"destinationZone": "INT", "price": money("1.20")},
                 {"destinationZone": "*", "roamingZone": "WORLD", "price": money("1.99")},
                 {"destinationZone": "*", "direction": "terminating", "price": money("0")},
                 {"destinationZone": "*", "roamingZone": "WORLD", "direction": "terminating",
                  "price": money("0.30")}]})
    acc = await account_on(client, rt, tenant, {
        "name": "Voice by direction", "priceType": "usage", "usageType": "voice", "price": {"unit": "EUR"},
        "unitOfMeasure": {"amount": 1, "units": "minute"}, "tariff": {"id": tariff["id"]}}, balance="5.00")
    calls = (("out-home", {"calledParty": "+33123456789"}),
             ("in-home", {"callingParty": "+442071234567", "roleOfNode": "TERMINATING_ROLE"}),
             ("in-us", {"callingParty": "+33123456789", "roleOfNode": "TERMINATING_ROLE", "visitedCountry": "US"}),
             ("out-us", {"calledParty": "+33123456789", "roleOfNode": "ORIGINATING_ROLE", "visitedCountry": "US"}))
    for sid, info in calls:
        i = await call(client, system_headers, ccr("INITIAL_REQUEST", sid, 0, acc["msisdn"], groups=[group(1, 60)],
                                                   serviceInformation=info))
        assert i["resultCode"] == 2001, (sid, i)
        await call(client, system_headers, ccr("TERMINATION_REQUEST", sid, 1, groups=[group(1, used=60)]))
    st = await account_state(rt, tenant, acc["id"])
    # out at home 0.60, in at home free, in while in the US 0.30, out from the US 1.99
    assert st["money"] == 500 - 60 - 0 - 30 - 199
    usage = (await client.get("/tmf-api/usageManagement/v4/usage", params={"limit": 100},
                              headers=bearer(tenant, "admin"))).json()
    directions = [c["value"] for u in usage for c in u["usageCharacteristic"] if c["name"] == "callDirection"
                  and any(x["name"] == "subscriber" and x["value"] == acc["subscriber"]
                          for x in u["usageCharacteristic"])]
    assert sorted(directions) == ["originating", "originating", "terminating", "terminating"]
