"""Refund of the increments a session was granted but did not use: a call that ends early gives back what was held
(allowance and money) and is charged only the started increments of what it used."""

from __future__ import annotations

from typing import Any

from tests.charging.helpers import OCS, account_state, ccr, entry, group, open_account


async def _call(client: Any, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    r = await client.post(OCS, json=body, headers=headers)
    assert r.status_code == 200 and r.json()["resultCode"] == 2001, r.text
    return r.json()


def voice_left(st: dict[str, Any]) -> int:
    return sum(int(b["remaining"]) for b in st["buckets"] if b["unit"] == "voice")


async def test_money_held_for_unused_increments_is_released(client: Any, rt: Any, tenant: str,
                                                            system_headers: dict[str, str]) -> None:
    """0.60 EUR/min in 60/60 increments, 5.00 EUR: a 300 s grant holds 3.00; the call ends at 70 s and costs two
    started minutes, 1.20; the other 1.80 held comes back."""
    acc = await open_account(rt, tenant, balance="5.00", rating=entry("voice", "0.60", 60, initial=60, subsequent=60))
    i = await _call(client, system_headers, ccr("INITIAL_REQUEST", "early1", 0, acc["msisdn"],
                                                groups=[group(1, 300)]))
    assert i["multipleServicesCreditControl"][0]["grantedServiceUnit"] == {"time": 300}
    st = await account_state(rt, tenant, acc["id"])
    assert st["money_reserved"] == 300 and st["money"] == 500
    await _call(client, system_headers, ccr("TERMINATION_REQUEST", "early1", 1, groups=[group(1, used=70)]))
    st = await account_state(rt, tenant, acc["id"])
    assert st["money"] == 500 - 120 and st["money_reserved"] == 0 and st["openReservations"] == 0
    assert st["usage"]["amount"] == 120 and st["usage"]["units"] == 70


async def test_allowance_held_for_unused_increments_is_released(client: Any, rt: Any, tenant: str,
                                                                system_headers: dict[str, str]) -> None:
    """The same price with a 4-minute allowance: a 300 s grant holds 240 s of allowance and one minute of money
    (0.60); ended at 70 s after an UPDATE at 30 s, the call takes 120 s of allowance and no money."""
    allowance = [{"name": "4 minutes", "quantity": {"amount": 4, "units": "minute"}}]
    acc = await open_account(rt, tenant, balance="5.00", rating=entry("voice", "0.60", 60, initial=60, subsequent=60,
                                                                      allowances=allowance))
    await _call(client, system_headers, ccr("INITIAL_REQUEST", "early2", 0, acc["msisdn"], groups=[group(1, 300)]))
    st = await account_state(rt, tenant, acc["id"])
    assert st["money_reserved"] == 60
    assert sum(int(b["reserved"]) for b in st["buckets"] if b["unit"] == "voice") == 240
    await _call(client, system_headers, ccr("UPDATE_REQUEST", "early2", 1, groups=[group(1, 240, used=30)]))
    await _call(client, system_headers, ccr("TERMINATION_REQUEST", "early2", 2, groups=[group(1, used=40)]))
    st = await account_state(rt, tenant, acc["id"])
    assert voice_left(st) == 240 - 120 and st["money"] == 500 and st["money_reserved"] == 0
    assert sum(int(b["reserved"]) for b in st["buckets"] if b["unit"] == "voice") == 0
