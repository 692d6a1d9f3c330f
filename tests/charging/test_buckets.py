"""Several money buckets per account: promotional credit, main balance, bonus — consumed in priority order and split
exactly, never outside their validity window, only for the services and destinations they are restricted to; TMF654
shows them all."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from openbss.platform.db import utcnow
from tests.catalog.helpers import EXT, create, money
from tests.charging.helpers import OCS, SMS, TMF654, account_state, ccr, group, open_account
from tests.charging.test_rating_features import account_on
from tests.conftest import bearer, session_services


async def call(client: Any, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    r = await client.post(OCS, json=body, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def add(rt: Any, tenant: str, account_id: str, **kwargs: Any) -> str:
    from openbss.charging import service

    async with rt.db.transaction(tenant) as session:
        ctx = service.system_context(session, tenant, "http://testserver")
        made = await session_services().charging.service.add_bucket(ctx, account_id, **kwargs)
    return str(made["id"])


def remaining(st: dict[str, Any], bucket_id: str) -> int:
    return int(next(b for b in st["buckets"] if b["id"] == bucket_id)["remaining"])


async def test_priority_validity_and_exact_split(client: Any, rt: Any, tenant: str,
                                                 system_headers: dict[str, str]) -> None:
    acc = await open_account(rt, tenant, balance="5.00")  # voice: 1 cent a second
    now = utcnow()
    promo = await add(rt, tenant, acc["id"], unit="money", amount=50, name="Welcome credit", priority=10,
                      valid_to=now + timedelta(days=30))
    bonus = await add(rt, tenant, acc["id"], unit="money", amount=30, name="Bonus", priority=20)
    expired = await add(rt, tenant, acc["id"], unit="money", amount=300, name="Expired promotion", priority=1,
                        valid_from=now - timedelta(days=60), valid_to=now - timedelta(days=30))
    future = await add(rt, tenant, acc["id"], unit="money", amount=400, name="Next month's gift", priority=1,
                       valid_from=now + timedelta(days=5))
    main = next(b["id"] for b in (await account_state(rt, tenant, acc["id"]))["buckets"] if b["unit"] == "money"
                and b["priority"] == 1000)
    i = await call(client, system_headers, ccr("INITIAL_REQUEST", "mb1", 0, acc["msisdn"], groups=[group(1, 100)]))
    assert i["multipleServicesCreditControl"][0]["grantedServiceUnit"] == {"time": 100}
    await call(client, system_headers, ccr("TERMINATION_REQUEST", "mb1", 1, groups=[group(1, used=95)]))
    st = await account_state(rt, tenant, acc["id"])
    # 0.95: the welcome credit (priority 10) then the bonus (20) then the main balance; the expired and the
    # not-yet-valid buckets are never touched
    assert remaining(st, promo) == 0 and remaining(st, bonus) == 0 and remaining(st, main) == 500 - 15
    assert remaining(st, future) == 400
    assert st["usage"]["amount"] == 95
    # TMF654 shows every bucket of the line, with its validity and priority order
    h = bearer(tenant, "admin")
    r = await client.get(f"{TMF654}/bucket", params={"logicalResource.id": acc["subscriber"],
                                                    "usageType": "monetary"}, headers=h)
    assert r.status_code == 200, r.text
    shown = {b["id"]: b for b in r.json()}
    assert {promo, bonus, expired, future, main} <= set(shown)
    assert shown[promo]["name"] == "Welcome credit" and shown[promo]["validFor"]["endDateTime"]
    assert shown[future]["remainingValue"] == {"amount": 4, "units": "EUR"}
    assert shown[expired]["remainingValue"] == {"amount": 3, "units": "EUR"}


async def test_bucket_restricted_to_a_service(client: Any, rt: Any, tenant: str,
                                              system_headers: dict[str, str]) -> None:
    acc = await open_account(rt, tenant, balance="0.00")
    sms_bonus = await add(rt, tenant, acc["id"], unit="money", amount=20, name="SMS bonus", services=["sms"])
    v = await call(client, system_headers, ccr("INITIAL_REQUEST", "rs1", 0, acc["msisdn"], groups=[group(1, 60)]))
    assert v["resultCode"] == 4012  # the SMS bonus does not pay for calls
    body = ccr("EVENT_REQUEST", "rs2", 0, acc["msisdn"], context=SMS, requestedAction="DIRECT_DEBITING",
               groups=[group(5, 1, key="serviceSpecificUnits")])
    assert (await call(client, system_headers, body))["resultCode"] == 2001
    st = await account_state(rt, tenant, acc["id"])
    assert remaining(st, sms_bonus) == 10 and st["money"] == 10
    r = await client.get(f"{TMF654}/bucket/{sms_bonus}", headers=bearer(tenant, "admin"))
    assert r.json()["@type"] == "OpenBSSBucket" and r.json()["usageRestriction"] == {"usageType": ["sms"]}


async def test_bucket_restricted_to_destinations(client: Any, rt: Any, tenant: str,
                                                 system_headers: dict[str, str]) -> None:
    h = bearer(tenant, "catalog_manager")
    tariff = await create(client, h, f"{EXT}/tariff", {
        "name": "National and international", "usageType": "voice", "lifecycleStatus": "Active",
        "defaultRatingIncrement": {"initial": 1, "subsequent": 1},
        "destinationZone": [{"id": "NAT", "prefix": ["33"]}, {"id": "INT", "prefix": ["44"]}],
        "rate": [{"destinationZone": "NAT", "price": money("0.60")}, {"destinationZone": "INT",
                                                                      "price": money("1.20")}]})
    acc = await account_on(client, rt, tenant, {
        "name": "Voice by tariff", "priceType": "usage", "usageType": "voice", "price": {"unit": "EUR"},
        "unitOfMeasure": {"amount": 1, "units": "minute"}, "tariff": {"id": tariff["id"]}}, balance="0.00")
    national = await add(rt, tenant, acc["id"], unit="money", amount=100, name="National calls bonus",
                         zones=["NAT"])
    info = {"calledParty": "+33123456789"}
    i = await call(client, system_headers, ccr("INITIAL_REQUEST", "z1", 0, acc["msisdn"], groups=[group(1, 300)],
                                               serviceInformation=info))
    m = i["multipleServicesCreditControl"][0]
    assert m["grantedServiceUnit"] == {"time": 100} and m["finalUnitIndication"]
    j = await call(client, system_headers, ccr("INITIAL_REQUEST", "z2", 0, acc["msisdn"], groups=[group(1, 60)],
                                               serviceInformation={"calledParty": "+442071234567"}))
    assert j["resultCode"] == 4012  # the bonus pays national calls only
    roaming = await call(client, system_headers, ccr("INITIAL_REQUEST", "z3", 0, acc["msisdn"],
                                                     groups=[group(1, 60)],
                                                     serviceInformation={**info, "visitedCountry": "ES"}))
    assert roaming["resultCode"] in (4012, 5031)  # not at home: the bonus does not pay
    await call(client, system_headers, ccr("TERMINATION_REQUEST", "z1", 1, groups=[group(1, used=100)]))
    st = await account_state(rt, tenant, acc["id"])
    assert remaining(st, national) == 0 and st["money"] == 0


async def test_bad_buckets_are_refused(rt: Any, tenant: str) -> None:
    import pytest

    from openbss.charging.errors import InvalidBalanceAction

    acc = await open_account(rt, tenant, balance="0")
    now = utcnow()
    for kwargs, words in (({"unit": "gold", "amount": 1}, "'unit'"), ({"unit": "money", "amount": 0}, "'amount'"),
                          ({"unit": "money", "amount": 5, "priority": 1000}, "'priority'"),
                          ({"unit": "money", "amount": 5, "services": ["fax"]}, "'services'"),
                          ({"unit": "data", "amount": 5, "services": ["voice"]}, "'services'"),
                          ({"unit": "money", "amount": 5, "valid_from": now, "valid_to": now},
                           "'validFor'")):
        with pytest.raises(InvalidBalanceAction, match=words):
            await add(rt, tenant, acc["id"], name="x", **kwargs)
