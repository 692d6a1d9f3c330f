"""Correctness under load: many concurrent sessions on one balance never overspend and never lose an update;
every debit writes exactly one usage record and the rated usage equals the balance movement; a repeated request
is answered the same and charged once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.charging.helpers import OCS, account_state, ccr, group, open_account

SESSIONS = 64


async def run_session(client: Any, headers: dict[str, str], msisdn: str, sid: str) -> dict[str, int]:
    """A well-behaved network element: uses what it was granted, reports it, stops on final units or 4012."""
    used_total = 0
    r = (await client.post(OCS, json=ccr("INITIAL_REQUEST", sid, 0, msisdn, groups=[group(1, 30)]),
                           headers=headers)).json()
    if r["resultCode"] != 2001:
        return {"used": 0, "denied": 1}
    number = 0
    for _ in range(3):
        granted = r["multipleServicesCreditControl"][0].get("grantedServiceUnit", {}).get("time", 0)
        final = "finalUnitIndication" in r["multipleServicesCreditControl"][0]
        number += 1
        if final or granted == 0:
            r = (await client.post(OCS, json=ccr("TERMINATION_REQUEST", sid, number, groups=[group(1, used=granted)]),
                                   headers=headers)).json()
            assert r["resultCode"] == 2001, r
            return {"used": used_total + granted, "denied": 0}
        r = (await client.post(OCS, json=ccr("UPDATE_REQUEST", sid, number, groups=[group(1, 30, used=granted)]),
                               headers=headers)).json()
        used_total += granted
        assert r["resultCode"] in (2001, 4012), r
    number += 1
    granted = r["multipleServicesCreditControl"][0].get("grantedServiceUnit", {}).get("time", 0)
    r = (await client.post(OCS, json=ccr("TERMINATION_REQUEST", sid, number, groups=[group(1, used=granted)]),
                           headers=headers)).json()
    assert r["resultCode"] == 2001, r
    return {"used": used_total + granted, "denied": 0}


@pytest.mark.parametrize("payment_type", ["prepaid", "postpaid"])
async def test_concurrent_sessions_on_one_balance(client: Any, rt: Any, tenant: str, system_headers: dict[str, str],
                                                  payment_type: str) -> None:
    if payment_type == "prepaid":
        acc = await open_account(rt, tenant, balance="20.00")
        floor = 0
    else:
        acc = await open_account(rt, tenant, payment_type="postpaid", balance="0", credit_limit="20.00")
        floor = -2000
    results = await asyncio.gather(*(run_session(client, system_headers, acc["msisdn"], f"c{payment_type}{i}")
                                     for i in range(SESSIONS)))
    used = sum(r["used"] for r in results)
    st = await account_state(rt, tenant, acc["id"])
    start = 2000 if payment_type == "prepaid" else 0
    assert st["money"] >= floor, "overspent past the allowed credit"
    assert st["money_reserved"] == 0 and st["openReservations"] == 0
    # exact: every reported second is charged once, and usage records add up to the balance movement
    assert start - st["money"] == used == st["usage"]["amount"] == st["usage"]["units"]
    assert used == 2000  # demand (64 x 120 s) exceeds the credit: everything is used, not one second more


async def test_repeated_request_same_answer_charged_once(client: Any, rt: Any, tenant: str,
                                                         system_headers: dict[str, str]) -> None:
    acc = await open_account(rt, tenant, balance="10.00")
    first = [await client.post(OCS, json=ccr("INITIAL_REQUEST", "dup", 0, acc["msisdn"], groups=[group(1, 60)]),
                               headers=system_headers) for _ in range(2)]
    assert first[0].json() == first[1].json()
    update = ccr("UPDATE_REQUEST", "dup", 1, groups=[group(1, 60, used=45)])
    answers = await asyncio.gather(*(client.post(OCS, json=update, headers=system_headers) for _ in range(8)))
    bodies = [a.json() for a in answers]
    assert all(b == bodies[0] for b in bodies) and bodies[0]["resultCode"] == 2001
    st = await account_state(rt, tenant, acc["id"])
    assert st["money"] == 1000 - 45 and st["usage"]["n"] == 1 and st["money_reserved"] == 60
    # an old request number repeated later still gets its own answer
    again = await client.post(OCS, json=ccr("INITIAL_REQUEST", "dup", 0, acc["msisdn"], groups=[group(1, 60)]),
                              headers=system_headers)
    assert again.json() == first[0].json()
    term = ccr("TERMINATION_REQUEST", "dup", 2, groups=[group(1, used=10)])
    t = await asyncio.gather(*(client.post(OCS, json=term, headers=system_headers) for _ in range(4)))
    assert all(a.json() == t[0].json() for a in t) and t[0].json()["resultCode"] == 2001
    st = await account_state(rt, tenant, acc["id"])
    assert st["money"] == 1000 - 55 and st["usage"]["n"] == 2 and st["money_reserved"] == 0


async def test_balance_actions_and_charging_interleaved(client: Any, rt: Any, tenant: str,
                                                        system_headers: dict[str, str]) -> None:
    """Optimistic charging writes and TMF654 actions (under the account lock) on one balance: no lost update."""
    from tests.charging.helpers import SMS, TMF654
    from tests.conftest import bearer

    acc = await open_account(rt, tenant, balance="2.00")
    money = next(b for b in acc["buckets"] if b["unit"] == "money")
    admin = bearer(tenant, "admin")

    async def sms(i: int) -> int:
        r = await client.post(OCS, headers=system_headers, json=ccr(
            "EVENT_REQUEST", f"ix{i}", 0, acc["msisdn"], context=SMS,
            groups=[group(1, 1, key="serviceSpecificUnits")]))
        return int(r.json()["resultCode"])

    async def debit() -> int:
        r = await client.post(f"{TMF654}/adjustBalance", headers=admin, json={
            "amount": {"amount": -0.5, "units": "EUR"}, "usageType": "monetary", "bucket": {"id": money["id"]}})
        return r.status_code

    results = await asyncio.gather(*(sms(i) for i in range(20)), debit(), debit())
    charged = sum(1 for r in results[:20] if r == 2001)
    debited = sum(1 for r in results[20:] if r == 201)
    st = await account_state(rt, tenant, acc["id"])
    assert st["money"] == 200 - 10 * charged - 50 * debited >= 0
    assert st["usage"]["n"] == charged and st["usage"]["amount"] == 10 * charged
