"""Balance actions against a model: random sequences of top-ups, adjustments, transfers, reservations,
cancellations and deletions, each answered as the model predicts (applied, or refused with nothing moved), the
balances exact after every step."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import pytest

from tests.charging.helpers import TMF654, account_state, open_account
from tests.conftest import bearer

STEPS = 40


@dataclass
class Action:
    path: str
    id: str
    cents: int  # signed for adjustments
    status: str = "completed"


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_balance_actions_follow_the_model(client: Any, rt: Any, tenant: str, seed: int) -> None:
    rnd = random.Random(seed)
    h = bearer(tenant, "admin")
    lines = [await open_account(rt, tenant, balance="20.00"), await open_account(rt, tenant, balance="5.00")]
    buckets = [next(b for b in (await client.get(f"{TMF654}/bucket", params={"logicalResource.id": a["msisdn"][1:],
                                                                             "usageType": "monetary"},
                                                 headers=h)).json()) for a in lines]
    money = [2000, 500]
    reserved = [0, 0]
    actions: list[Action] = []

    def free(i: int) -> int:
        return money[i] - reserved[i]

    def eur(cents: int) -> dict[str, Any]:
        return {"amount": cents / 100, "units": "EUR"}

    for _ in range(STEPS):
        kind = rnd.choice(["topupBalance", "adjustBalance", "transferBalance", "reserveBalance", "cancel", "cancel",
                           "delete"])
        cents = rnd.randint(1, 1500)
        if kind in ("cancel", "delete"):
            if not actions:
                continue
            a = rnd.choice(actions)
            url = f"{TMF654}/{a.path}/{a.id}"
            if kind == "cancel":
                body: dict[str, Any] = {"status": "cancelled", "reason": "model"}
                if a.path == "transferBalance":
                    body |= {k: v for k, v in (await client.get(url, headers=h)).json().items()
                             if k in ("channel", "logicalResource", "receiverLogicalResource")}
                r = await client.patch(url, json=body, headers=h)
                if a.status == "cancelled":
                    expected = 200
                elif a.path == "topupBalance" or (a.path == "adjustBalance" and a.cents > 0):
                    expected = 200 if free(0) >= a.cents else 409
                elif a.path == "transferBalance":
                    expected = 200 if free(1) >= a.cents else 409
                else:
                    expected = 200
                assert r.status_code == expected, (a, r.text)
                if expected == 200 and a.status == "completed":
                    if a.path in ("topupBalance", "adjustBalance"):
                        money[0] -= a.cents
                    elif a.path == "transferBalance":
                        money[0] += a.cents
                        money[1] -= a.cents
                    else:
                        reserved[0] -= a.cents
                    a.status = "cancelled"
            else:
                r = await client.delete(url, headers=h)
                if a.status == "completed" and a.path != "reserveBalance":
                    assert r.status_code == 409 and r.json()["code"] == "ACTION_APPLIED", r.text
                else:
                    assert r.status_code == 204, r.text
                    if a.status == "completed":
                        reserved[0] -= a.cents
                    actions.remove(a)
        else:
            body = {"usageType": "monetary", "bucket": {"id": buckets[0]["id"]}, "amount": eur(cents)}
            if kind in ("topupBalance", "reserveBalance"):
                body["partyAccount"] = buckets[0]["partyAccount"]
            if kind == "adjustBalance":
                cents = cents * rnd.choice([1, -1])
                body |= {"amount": eur(cents), "adjustType": "oneTime"}
            if kind == "transferBalance":
                body |= {"receiverBucket": {"id": buckets[1]["id"]}, "receiverBucketUsageType": "monetary",
                         "reason": "gift", "channel": {"id": "app"}, "logicalResource": [{"id": lines[0]["msisdn"]}],
                         "receiverLogicalResource": {"id": lines[1]["msisdn"]}}
            ok = {"topupBalance": True, "adjustBalance": cents > 0 or free(0) >= -cents,
                  "transferBalance": free(0) >= cents, "reserveBalance": free(0) >= cents}[kind]
            r = await client.post(f"{TMF654}/{kind}", json=body, headers=h)
            assert r.status_code == (201 if ok else 409), (kind, cents, r.text)
            if ok:
                actions.append(Action(kind, r.json()["id"], cents))
                if kind in ("topupBalance", "adjustBalance"):
                    money[0] += cents
                elif kind == "transferBalance":
                    money[0] -= cents
                    money[1] += cents
                else:
                    reserved[0] += cents
        for i, line in enumerate(lines):
            st = await account_state(rt, tenant, line["id"])
            assert (st["money"], st["money_reserved"]) == (money[i], reserved[i]), (kind, i)
