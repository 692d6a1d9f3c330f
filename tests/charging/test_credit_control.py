"""Credit-control sessions: INITIAL / UPDATE / TERMINATE / EVENT, several rating groups, final-unit indication,
prepaid stop at zero, postpaid stop at the credit limit, lazy expiry of reservations."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.charging.helpers import DATA, MB, OCS, SMS, account_state, ccr, group, open_account


async def call(client: Any, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    r = await client.post(OCS, json=body, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def test_voice_session_reserve_update_terminate(client: Any, rt: Any, tenant: str,
                                                      system_headers: dict[str, str]) -> None:
    acc = await open_account(rt, tenant, balance="10.00")
    i = await call(client, system_headers, ccr("INITIAL_REQUEST", "s1", 0, acc["msisdn"], groups=[group(1, 120)]))
    assert i["resultCode"] == 2001, i
    m = i["multipleServicesCreditControl"][0]
    assert m["grantedServiceUnit"] == {"time": 120} and m["validityTime"] == 300
    st = await account_state(rt, tenant, acc["id"])
    assert st["money"] == 1000 and st["money_reserved"] == 120
    u = await call(client, system_headers, ccr("UPDATE_REQUEST", "s1", 1, groups=[group(1, 120, used=100)]))
    assert u["resultCode"] == 2001 and u["multipleServicesCreditControl"][0]["grantedServiceUnit"]["time"] == 120
    t = await call(client, system_headers, ccr("TERMINATION_REQUEST", "s1", 2, groups=[group(1, used=30)]))
    assert t["resultCode"] == 2001
    st = await account_state(rt, tenant, acc["id"])
    assert st["money"] == 1000 - 130 and st["money_reserved"] == 0 and st["openReservations"] == 0
    assert st["usage"] == {"n": 2, "amount": 130, "allowance": 0, "units": 130}
    # the session is over
    late = await call(client, system_headers, ccr("UPDATE_REQUEST", "s1", 3, groups=[group(1, 10, used=1)]))
    assert late["resultCode"] == 5002


async def test_final_unit_indication_and_prepaid_stops_at_zero(client: Any, rt: Any, tenant: str,
                                                               system_headers: dict[str, str]) -> None:
    acc = await open_account(rt, tenant, balance="1.00")  # 100 seconds
    i = await call(client, system_headers, ccr("INITIAL_REQUEST", "f1", 0, acc["msisdn"], groups=[group(1, 300)]))
    m = i["multipleServicesCreditControl"][0]
    assert m["grantedServiceUnit"]["time"] == 100 and m["finalUnitIndication"]["finalUnitAction"] == "TERMINATE"
    other = await call(client, system_headers, ccr("INITIAL_REQUEST", "f2", 0, acc["msisdn"],
                                                   groups=[group(1, 10)]))
    assert other["resultCode"] == 4012 and other["multipleServicesCreditControl"][0]["resultCode"] == 4012
    await call(client, system_headers, ccr("TERMINATION_REQUEST", "f1", 1, groups=[group(1, used=100)]))
    st = await account_state(rt, tenant, acc["id"])
    assert st["money"] == 0 and st["money_reserved"] == 0


async def test_postpaid_stops_at_credit_limit(client: Any, rt: Any, tenant: str,
                                              system_headers: dict[str, str]) -> None:
    acc = await open_account(rt, tenant, payment_type="postpaid", balance="0", credit_limit="2.00")
    i = await call(client, system_headers, ccr("INITIAL_REQUEST", "p1", 0, acc["msisdn"], groups=[group(1, 500)]))
    m = i["multipleServicesCreditControl"][0]
    assert m["grantedServiceUnit"]["time"] == 200 and "finalUnitIndication" in m
    await call(client, system_headers, ccr("TERMINATION_REQUEST", "p1", 1, groups=[group(1, used=200)]))
    st = await account_state(rt, tenant, acc["id"])
    assert st["money"] == -200
    denied = await call(client, system_headers, ccr("INITIAL_REQUEST", "p2", 0, acc["msisdn"],
                                                    groups=[group(1, 1)]))
    assert denied["resultCode"] == 4012


async def test_allowance_before_money_and_several_rating_groups(client: Any, rt: Any, tenant: str,
                                                                system_headers: dict[str, str]) -> None:
    acc = await open_account(rt, tenant, balance="5.00", data_allowance_mb=10)
    i = await call(client, system_headers, ccr("INITIAL_REQUEST", "d1", 0, acc["msisdn"], context=DATA, groups=[
        group(10, 8 * MB, key="totalOctets"), group(20, 4 * MB, key="totalOctets")]))
    assert [m["grantedServiceUnit"]["totalOctets"] for m in i["multipleServicesCreditControl"]] == [8 * MB, 4 * MB]
    st = await account_state(rt, tenant, acc["id"])
    # rating group 20: 2 MB from the allowance, 2 MB held in money (2 cents)
    assert st["money_reserved"] == 2
    t = await call(client, system_headers, ccr("TERMINATION_REQUEST", "d1", 1, context=DATA, groups=[
        {"ratingGroup": 10, "usedServiceUnit": {"inputOctets": 3 * MB, "outputOctets": 5 * MB}},
        {"ratingGroup": 20, "usedServiceUnit": {"totalOctets": 3 * MB}}]))
    assert t["resultCode"] == 2001
    st = await account_state(rt, tenant, acc["id"])
    allowance = next(b for b in st["buckets"] if b["unit"] == "data")
    assert allowance["remaining"] == 0 and allowance["reserved"] == 0
    assert st["money"] == 500 - 1 and st["usage"]["amount"] == 1 and st["usage"]["allowance"] == 10 * MB


async def test_event_sms_direct_debit(client: Any, rt: Any, tenant: str, system_headers: dict[str, str]) -> None:
    acc = await open_account(rt, tenant, balance="0.25")
    body = ccr("EVENT_REQUEST", "sms-1", 0, acc["msisdn"], context=SMS, requestedAction="DIRECT_DEBITING",
               groups=[group(5, 1, key="serviceSpecificUnits")])
    e = await call(client, system_headers, body)
    assert e["resultCode"] == 2001 and e["costInformation"]["unitValue"] == 0.1
    again = await call(client, system_headers, body)
    assert again == e  # same answer, charged once
    await call(client, system_headers, {**body, "sessionId": "sms-2"})
    third = await call(client, system_headers, {**body, "sessionId": "sms-3"})
    assert third["resultCode"] == 4012
    st = await account_state(rt, tenant, acc["id"])
    assert st["money"] == 5 and st["usage"]["n"] == 2 and st["usage"]["amount"] == 20


async def test_expired_reservation_returns_by_itself(client: Any, rt: Any, tenant: str,
                                                     system_headers: dict[str, str]) -> None:
    acc = await open_account(rt, tenant, balance="1.00", validity=1)
    i = await call(client, system_headers, ccr("INITIAL_REQUEST", "e1", 0, acc["msisdn"], groups=[group(1, 100)]))
    assert i["multipleServicesCreditControl"][0]["grantedServiceUnit"]["time"] == 100
    st = await account_state(rt, tenant, acc["id"])
    assert st["money_reserved"] == 100
    await asyncio.sleep(2.1)
    # lazily, on the next request of the account: the new session gets the whole balance
    j = await call(client, system_headers, ccr("INITIAL_REQUEST", "e2", 0, acc["msisdn"], groups=[group(1, 100)]))
    assert j["multipleServicesCreditControl"][0]["grantedServiceUnit"]["time"] == 100
    # the expired session is gone
    late = await call(client, system_headers, ccr("UPDATE_REQUEST", "e1", 1, groups=[group(1, 10, used=5)]))
    assert late["resultCode"] == 5002
    st = await account_state(rt, tenant, acc["id"])
    assert st["money"] == 100 and st["usage"]["n"] == 0


async def test_sweep_releases_without_traffic(rt: Any, tenant: str, client: Any,
                                              system_headers: dict[str, str]) -> None:
    from openbss.charging.service import release_expired

    acc = await open_account(rt, tenant, balance="1.00", validity=1)
    await call(client, system_headers, ccr("INITIAL_REQUEST", "w1", 0, acc["msisdn"], groups=[group(1, 50)]))
    await asyncio.sleep(1.1)
    assert await release_expired(rt.db, tenant) == 1
    st = await account_state(rt, tenant, acc["id"])
    assert st["money_reserved"] == 0 and st["openReservations"] == 0


async def test_a_session_id_reused_by_another_subscriber_gets_neither_the_answer_nor_the_service(
        client: Any, rt: Any, tenant: str, system_headers: dict[str, str]) -> None:
    """A stored answer is given again only to the subscriber it was given to: before, a second subscriber's
    request reusing a session id (a broken or hostile network element) got the first's answer — its grant, unpaid."""
    a = await open_account(rt, tenant, balance="1.00")
    b = await open_account(rt, tenant, balance="1.00")
    sms = {"context": SMS, "requestedAction": "DIRECT_DEBITING", "groups": [group(5, 1, key="serviceSpecificUnits")]}
    first = await call(client, system_headers, ccr("EVENT_REQUEST", "reused-1", 0, a["msisdn"], **sms))
    assert first["resultCode"] == 2001
    other = await call(client, system_headers, ccr("EVENT_REQUEST", "reused-1", 0, b["msisdn"], **sms))
    assert other["resultCode"] == 5004 and "another subscriber" in other.get("errorMessage", str(other)), other
    voice = await call(client, system_headers, ccr("INITIAL_REQUEST", "reused-2", 0, a["msisdn"],
                                                   groups=[group(1, 60)]))
    assert voice["resultCode"] == 2001
    taken = await call(client, system_headers, ccr("INITIAL_REQUEST", "reused-2", 0, b["msisdn"],
                                                   groups=[group(1, 60)]))
    assert taken["resultCode"] == 5004, taken
    # the first subscriber's repeats still get their answers, charged once
    assert await call(client, system_headers, ccr("EVENT_REQUEST", "reused-1", 0, a["msisdn"], **sms)) == first
    st_a, st_b = await account_state(rt, tenant, a["id"]), await account_state(rt, tenant, b["id"])
    assert st_a["usage"]["n"] == 1 and st_b["usage"]["n"] == 0
    assert st_b["money"] == 100 and st_b["money_reserved"] == 0
