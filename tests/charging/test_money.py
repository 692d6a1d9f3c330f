"""Money is charged right, driven through ``/ocs/v1/creditControl`` as an operator's network would.

* no grant and 4012 when not even one rated unit is affordable; usage the network reports is always charged; a
  session's charge is never rounded to zero when its usage is not zero (rated per block, as the price says);
* grants are whole increments that the allowance plus the affordable money cover; a prepaid balance never goes below
  its floor because of a grant;
* a call's first increment applies once, to the call, not again to the part paid with money.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from tests.charging.helpers import DATA, OCS, VOICE, account_state, ccr, entry, group, open_account

FIVE_MB = 5_000_000  # the price's unit of measure: 0.30 EUR per 5,000,000 bytes
DATA_030 = entry("data", "0.30", FIVE_MB)


async def call(client: Any, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    r = await client.post(OCS, json=body, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def octets(rg: int, requested: int | None = None, used: int | None = None) -> dict[str, Any]:
    return group(rg, requested, used, key="totalOctets")


async def set_money(rt: Any, tenant: str, account_id: str, minor: int) -> None:
    async with rt.db.transaction(tenant) as session:
        await session.execute(text("UPDATE charging_bucket SET remaining = :m WHERE account_id = :a "
                                   "AND unit = 'money'"), {"m": minor, "a": account_id})


def bucket(state: dict[str, Any], unit: str) -> dict[str, Any]:
    return next(b for b in state["buckets"] if b["unit"] == unit)


# --- 1. no grant without one affordable rated unit; reported usage is charged, never rounded to zero -------------
async def test_zero_or_negative_prepaid_money_gets_no_grant(client: Any, rt: Any, tenant: str,
                                                            system_headers: dict[str, str]) -> None:
    acc = await open_account(rt, tenant, balance="0.00", rating=DATA_030)
    for n in range(2):  # every session, again and again
        i = await call(client, system_headers, ccr("INITIAL_REQUEST", f"z{n}", 0, acc["msisdn"], context=DATA,
                                                   groups=[octets(1, FIVE_MB)]))
        assert i["resultCode"] == 4012, i
        m = i["multipleServicesCreditControl"][0]
        assert m["resultCode"] == 4012 and "grantedServiceUnit" not in m
        # the session was refused: a report on it is an unknown session, nothing is charged
        t = await call(client, system_headers, ccr("TERMINATION_REQUEST", f"z{n}", 1, context=DATA,
                                                   groups=[octets(1, used=FIVE_MB)]))
        assert t["resultCode"] == 5002
    st = await account_state(rt, tenant, acc["id"])
    assert st["money"] == 0 and st["money_reserved"] == 0 and st["usage"]["n"] == 0

    await set_money(rt, tenant, acc["id"], -10000)  # -100 EUR
    i = await call(client, system_headers, ccr("INITIAL_REQUEST", "neg", 0, acc["msisdn"], context=DATA,
                                               groups=[octets(1, FIVE_MB)]))
    assert i["resultCode"] == 4012 and "grantedServiceUnit" not in i["multipleServicesCreditControl"][0]
    st = await account_state(rt, tenant, acc["id"])
    assert st["money"] == -10000 and st["money_reserved"] == 0


async def test_one_block_short_is_refused(client: Any, rt: Any, tenant: str, system_headers: dict[str, str]) -> None:
    acc = await open_account(rt, tenant, balance="0.29", rating=DATA_030)
    i = await call(client, system_headers, ccr("INITIAL_REQUEST", "short", 0, acc["msisdn"], context=DATA,
                                               groups=[octets(1, 1000)]))
    assert i["resultCode"] == 4012 and "grantedServiceUnit" not in i["multipleServicesCreditControl"][0]


async def test_small_usage_is_charged_a_whole_block(client: Any, rt: Any, tenant: str,
                                                    system_headers: dict[str, str]) -> None:
    acc = await open_account(rt, tenant, balance="1.00", rating=DATA_030)
    i = await call(client, system_headers, ccr("INITIAL_REQUEST", "b1", 0, acc["msisdn"], context=DATA,
                                               groups=[octets(1, 1000)]))
    m = i["multipleServicesCreditControl"][0]
    # the request is rounded up to the rated unit (5,000,000 bytes), held in money
    assert i["resultCode"] == 2001 and m["grantedServiceUnit"] == {"totalOctets": FIVE_MB}
    assert "finalUnitIndication" not in m
    st = await account_state(rt, tenant, acc["id"])
    assert st["money"] == 100 and st["money_reserved"] == 30
    u = await call(client, system_headers, ccr("UPDATE_REQUEST", "b1", 1, context=DATA,
                                               groups=[octets(1, FIVE_MB, used=1000)]))
    assert u["resultCode"] == 2001
    st = await account_state(rt, tenant, acc["id"])
    assert st["money"] == 70  # 1,000 bytes started a block: 0.30, not 0.00
    t = await call(client, system_headers, ccr("TERMINATION_REQUEST", "b1", 2, context=DATA,
                                               groups=[octets(1, used=1000)]))
    assert t["resultCode"] == 2001
    st = await account_state(rt, tenant, acc["id"])
    assert st["money"] == 70 and st["money_reserved"] == 0  # still within the block already charged
    assert st["usage"] == {"n": 2, "amount": 30, "allowance": 0, "units": 2000}


async def test_reported_usage_past_the_grant_is_charged(client: Any, rt: Any, tenant: str,
                                                        system_headers: dict[str, str]) -> None:
    acc = await open_account(rt, tenant, balance="0.30", rating=DATA_030)
    i = await call(client, system_headers, ccr("INITIAL_REQUEST", "over", 0, acc["msisdn"], context=DATA,
                                               groups=[octets(1, 3 * FIVE_MB)]))
    m = i["multipleServicesCreditControl"][0]
    assert m["grantedServiceUnit"] == {"totalOctets": FIVE_MB} and m["finalUnitIndication"]
    await call(client, system_headers, ccr("TERMINATION_REQUEST", "over", 1, context=DATA,
                                           groups=[octets(1, used=FIVE_MB + 1)]))
    st = await account_state(rt, tenant, acc["id"])
    assert st["money"] == -30 and st["usage"]["amount"] == 60  # the usage happened: two started blocks


# --- 2. grants are whole increments; a grant never takes a prepaid balance below its floor ------------------------
VOICE_60_60 = entry("voice", "0.50", 60, initial=60, subsequent=60,
                    allowances=[{"name": "100 s", "quantity": {"amount": 100, "units": "second"}}])


async def test_allowance_grant_is_whole_increments(client: Any, rt: Any, tenant: str,
                                                   system_headers: dict[str, str]) -> None:
    acc = await open_account(rt, tenant, balance="0.00", rating=VOICE_60_60)
    i = await call(client, system_headers, ccr("INITIAL_REQUEST", "v1", 0, acc["msisdn"], context=VOICE,
                                               groups=[group(1, 120)], serviceInformation={"calledParty": "+331"}))
    m = i["multipleServicesCreditControl"][0]
    assert i["resultCode"] == 2001 and m["grantedServiceUnit"] == {"time": 60}, i
    assert m["finalUnitIndication"] == {"finalUnitAction": "TERMINATE"}
    st = await account_state(rt, tenant, acc["id"])
    assert bucket(st, "voice")["reserved"] == 60 and st["money_reserved"] == 0
    await call(client, system_headers, ccr("TERMINATION_REQUEST", "v1", 1, context=VOICE, groups=[group(1, used=60)]))
    st = await account_state(rt, tenant, acc["id"])
    assert bucket(st, "voice")["remaining"] == 40 and st["money"] == 0
    # 40 s of allowance and no money do not make one more 60 s increment
    j = await call(client, system_headers, ccr("INITIAL_REQUEST", "v2", 0, acc["msisdn"], context=VOICE,
                                               groups=[group(1, 120)]))
    assert j["resultCode"] == 4012
    st = await account_state(rt, tenant, acc["id"])
    assert st["money"] == 0 and st["money_reserved"] == 0 and bucket(st, "voice")["reserved"] == 0


async def test_allowance_and_money_make_an_increment_together(client: Any, rt: Any, tenant: str,
                                                             system_headers: dict[str, str]) -> None:
    acc = await open_account(rt, tenant, balance="0.30", rating=VOICE_60_60)
    i = await call(client, system_headers, ccr("INITIAL_REQUEST", "v3", 0, acc["msisdn"], context=VOICE,
                                               groups=[group(1, 120)]))
    m = i["multipleServicesCreditControl"][0]
    # the second minute: 40 s of allowance and 20 s of money (0.50 / 60 * 20 = 0.1666..., charged 0.17)
    assert m["grantedServiceUnit"] == {"time": 120} and "finalUnitIndication" not in m
    st = await account_state(rt, tenant, acc["id"])
    assert bucket(st, "voice")["reserved"] == 100 and st["money_reserved"] == 17
    await call(client, system_headers, ccr("TERMINATION_REQUEST", "v3", 1, context=VOICE,
                                           groups=[group(1, used=120)]))
    st = await account_state(rt, tenant, acc["id"])
    assert bucket(st, "voice")["remaining"] == 0 and st["money"] == 13 and st["money"] >= 0


# --- 3. the first increment applies once per call ------------------------------------------------------------
VOICE_60_1 = entry("voice", "0.02", 1, initial=60, subsequent=1,
                   allowances=[{"name": "30 s", "quantity": {"amount": 30, "units": "second"}}])


async def test_first_increment_once_per_call(client: Any, rt: Any, tenant: str,
                                             system_headers: dict[str, str]) -> None:
    acc = await open_account(rt, tenant, balance="10.00", rating=VOICE_60_1)
    i = await call(client, system_headers, ccr("INITIAL_REQUEST", "c1", 0, acc["msisdn"], context=VOICE,
                                               groups=[group(1, 80)]))
    assert i["multipleServicesCreditControl"][0]["grantedServiceUnit"] == {"time": 80}
    st = await account_state(rt, tenant, acc["id"])
    assert st["money_reserved"] == 100
    await call(client, system_headers, ccr("TERMINATION_REQUEST", "c1", 1, context=VOICE,
                                           groups=[group(1, used=80)]))
    st = await account_state(rt, tenant, acc["id"])
    assert bucket(st, "voice")["remaining"] == 0
    assert st["money"] == 900  # 50 s paid with money at 0.02: 1.00, not 1.20
    assert st["usage"] == {"n": 1, "amount": 100, "allowance": 30, "units": 80}


# --- the same through the API: any split of a session's reports charges the same, per funding source -------------
async def _drive(client: Any, headers: dict[str, str], msisdn: str, sid: str, reports: list[int]) -> None:
    await call(client, headers, ccr("INITIAL_REQUEST", sid, 0, msisdn, context=VOICE, groups=[group(1, 60)]))
    for n, used in enumerate(reports[:-1], start=1):
        u = await call(client, headers, ccr("UPDATE_REQUEST", sid, n, context=VOICE, groups=[group(1, 60, used=used)]))
        assert u["resultCode"] in (2001, 4012), u
    t = await call(client, headers, ccr("TERMINATION_REQUEST", sid, len(reports), context=VOICE,
                                        groups=[group(1, used=reports[-1])]))
    assert t["resultCode"] == 2001, t


async def test_any_split_charges_the_same_per_funding_source(client: Any, rt: Any, tenant: str,
                                                             system_headers: dict[str, str]) -> None:
    for reports in ([95], [1, 29, 30, 35], [59, 1, 1, 34], [0, 95], [10] * 9 + [5]):
        acc = await open_account(rt, tenant, balance="10.00", rating=VOICE_60_1)
        await _drive(client, system_headers, acc["msisdn"], f"split-{acc['id']}", reports)
        st = await account_state(rt, tenant, acc["id"])
        # 95 s: 60 s first increment, then 35 s; 30 s of allowance, 65 s of money at 0.02
        assert bucket(st, "voice")["remaining"] == 0 and st["money"] == 1000 - 130, reports
        assert st["usage"]["amount"] == 130 and st["usage"]["allowance"] == 30 and st["usage"]["units"] == 95
