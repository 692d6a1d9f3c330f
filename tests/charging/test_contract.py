"""TMF654 and TMF635 resources, as served, validate against the official JSON schemas; balance actions apply."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator

from tests.charging.helpers import DATA, MB, OCS, TMF635, TMF654, account_state, ccr, group, open_account
from tests.conftest import bearer

SPECS = Path(__file__).resolve().parents[2] / "src" / "openbss" / "platform" / "tmf" / "specs"


@cache
def _validator(filename: str, definition: str) -> Draft4Validator:
    spec = json.loads((SPECS / filename).read_text())
    return Draft4Validator({"definitions": spec["definitions"], "$ref": f"#/definitions/{definition}"})


def assert_valid(filename: str, definition: str, document: Any) -> None:
    errors = list(_validator(filename, definition).iter_errors(document))
    assert not errors, f"{definition}: " + "; ".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:5])


def tmf654(definition: str, doc: Any) -> None:
    assert_valid("TMF654-PrepayBalance-v4.0.0.swagger.json", definition, doc)


async def test_tmf654_and_tmf635_resources_validate(client: Any, rt: Any, tenant: str) -> None:
    h = bearer(tenant, "admin")
    acc = await open_account(rt, tenant, balance="5.00", data_allowance_mb=100)
    other = await open_account(rt, tenant, balance="0")
    r = await client.get(f"{TMF654}/bucket", params={"logicalResource.id": acc["msisdn"].lstrip("+")}, headers=h)
    assert r.status_code == 200, r.text
    buckets = r.json()
    assert len(buckets) == 2 and r.headers["X-Total-Count"] == "2"
    for b in buckets:
        tmf654("Bucket", b)
    money = next(b for b in buckets if b["usageType"] == "monetary")
    assert money["remainingValue"] == {"amount": 5, "units": "EUR"} and money["remainingValueName"] == "5.00 EUR"
    data = next(b for b in buckets if b["usageType"] == "data")
    assert data["remainingValue"] == {"amount": 100 * MB, "units": "B"} and data["status"] == "active"
    assert (await client.get(f"{TMF654}/bucket/{money['id']}", headers=h)).json() == money

    # top-up: 201 completed, the balance moves, the history records it
    r = await client.post(f"{TMF654}/topupBalance", headers=h, json={
        "amount": {"amount": 12.5, "units": "EUR"}, "usageType": "monetary", "bucket": {"id": money["id"]},
        "partyAccount": money["partyAccount"], "channel": {"id": "web"}, "reason": "voucher"})
    assert r.status_code == 201, r.text
    topup = r.json()
    tmf654("TopupBalance", topup)
    assert topup["status"] == "completed" and r.headers["location"] == topup["href"]
    got = (await client.get(f"{TMF654}/bucket/{money['id']}", headers=h)).json()
    assert got["remainingValue"]["amount"] == 17.5
    # adjust (debit), transfer to another subscriber, reserve
    r = await client.post(f"{TMF654}/adjustBalance", headers=h, json={
        "amount": {"amount": -2.5, "units": "EUR"}, "usageType": "monetary", "bucket": {"id": money["id"]},
        "adjustType": "oneTime", "reason": "goodwill reversal"})
    assert r.status_code == 201, r.text
    tmf654("AdjustBalance", r.json())
    other_money = next(b for b in other["buckets"] if b["unit"] == "money")
    r = await client.post(f"{TMF654}/transferBalance", headers=h, json={
        "amount": {"amount": 5, "units": "EUR"}, "usageType": "monetary", "bucket": {"id": money["id"]},
        "receiverBucket": {"id": other_money["id"]}, "receiverBucketUsageType": "monetary", "reason": "gift",
        "channel": {"id": "app"}, "logicalResource": [{"id": acc["msisdn"]}],
        "receiverLogicalResource": {"id": other["msisdn"]}})
    assert r.status_code == 201, r.text
    tmf654("TransferBalance", r.json())
    r = await client.post(f"{TMF654}/reserveBalance", headers=h, json={
        "amount": {"amount": 1, "units": "EUR"}, "usageType": "monetary", "bucket": {"id": money["id"]},
        "partyAccount": money["partyAccount"]})
    assert r.status_code == 201, r.text
    tmf654("ReserveBalance", r.json())
    st = await account_state(rt, tenant, acc["id"])
    assert st["money"] == 1000 and st["money_reserved"] == 100
    assert (await account_state(rt, tenant, other["id"]))["money"] == 500
    # refused actions: 4xx and nothing moves
    for path, body, status in (
        ("adjustBalance", {"amount": {"amount": -100, "units": "EUR"}, "usageType": "monetary",
                           "bucket": {"id": money["id"]}}, 409),
        ("topupBalance", {"amount": {"amount": 1, "units": "USD"}, "usageType": "monetary",
                          "bucket": {"id": money["id"]}, "partyAccount": {"id": "x"}}, 400),
        ("topupBalance", {"amount": {"amount": 0.001, "units": "EUR"}, "usageType": "monetary",
                          "bucket": {"id": money["id"]}, "partyAccount": {"id": "x"}}, 400),
        ("topupBalance", {"amount": {"amount": 1, "units": "EUR"}, "usageType": "data",
                          "bucket": {"id": money["id"]}, "partyAccount": {"id": "x"}}, 400),
        ("topupBalance", {"amount": {"amount": 1, "units": "EUR"}, "usageType": "monetary",
                          "bucket": {"id": "nope"}, "partyAccount": {"id": "x"}}, 400),
        ("topupBalance", {"amount": {"amount": 1e20, "units": "EUR"}, "usageType": "monetary",
                          "bucket": {"id": money["id"]}, "partyAccount": {"id": "x"}}, 400),
        ("adjustBalance", {"amount": {"amount": 1e20, "units": "EUR"}, "usageType": "monetary",
                           "bucket": {"id": money["id"]}}, 400),
    ):
        r = await client.post(f"{TMF654}/{path}", headers=h, json=body)
        assert r.status_code == status, (path, r.text)
    assert (await account_state(rt, tenant, acc["id"]))["money"] == 1000
    r = await client.get(f"{TMF654}/balanceActionHistory", headers=h)
    assert r.status_code == 200 and len(r.json()) == 4  # the 4 actions above (the initial balance is not one)
    for item in r.json():
        tmf654("BalanceActionHistory", item)
    for path, definition in (("topupBalance", "TopupBalance"), ("adjustBalance", "AdjustBalance"),
                             ("transferBalance", "TransferBalance"), ("reserveBalance", "ReserveBalance")):
        r = await client.get(f"{TMF654}/{path}", headers=h)
        assert r.status_code == 200 and r.json()
        for item in r.json():
            tmf654(definition, item)
    r = await client.get(f"{TMF654}/accumulatedBalance", params={"logicalResource.id": acc["msisdn"]}, headers=h)
    assert r.status_code == 200, r.text
    acc_bal = r.json()
    assert {a["totalBalance"]["units"] for a in acc_bal} == {"EUR", "B"}
    for a in acc_bal:
        tmf654("AccumulatedBalance", a)
        assert (await client.get(f"{TMF654}/accumulatedBalance/{a['id']}", headers=h)).json() == a

    # usage: one rated record per debit (TMF635)
    sh = bearer(tenant, "system")
    await client.post(OCS, headers=sh, json=ccr("INITIAL_REQUEST", "u1", 0, acc["msisdn"], context=DATA,
                                                groups=[group(1, 200 * MB, key="totalOctets")]))
    await client.post(OCS, headers=sh, json=ccr("TERMINATION_REQUEST", "u1", 1, context=DATA,
                                                groups=[group(1, used=150 * MB, key="totalOctets")]))
    r = await client.get(f"{TMF635}/usage", headers=h)
    assert r.status_code == 200 and r.headers["X-Total-Count"] == "1"
    usage = r.json()[0]
    assert_valid("TMF635-UsageManagement-v4.0.0.swagger.json", "Usage", usage)
    rated = usage["ratedProductUsage"][0]
    assert usage["status"] == "rated" and rated["usageRatingTag"] == "non included usage"
    assert rated["taxExcludedRatingAmount"] == {"unit": "EUR", "value": 0.5}  # 50 MB past the allowance
    assert (await client.get(f"{TMF635}/usage/{usage['id']}", headers=h)).json() == usage
    r = await client.get(f"{TMF635}/usage", params={"usageType": "data", "status": "rated"}, headers=h)
    assert len(r.json()) == 1
    # customers see their own balances only
    cust = bearer(tenant, "customer", party=f"party-{acc['msisdn'][1:]}")
    assert len((await client.get(f"{TMF654}/bucket", headers=cust)).json()) == 2
    assert len((await client.get(f"{TMF635}/usage", headers=cust)).json()) == 1
    stranger = bearer(tenant, "customer", party="someone-else")
    assert (await client.get(f"{TMF654}/bucket", headers=stranger)).json() == []
    # TMF635 POST /usage rates a single record (batch rating, docs/rating.md): an empty one is refused
    assert (await client.post(f"{TMF635}/usage", headers=h, json={})).status_code == 400


async def test_topup_idempotency_key(client: Any, rt: Any, tenant: str) -> None:
    import asyncio

    h = bearer(tenant, "admin")
    acc = await open_account(rt, tenant, balance="0")
    money = next(b for b in acc["buckets"] if b["unit"] == "money")
    body = {"amount": {"amount": 20, "units": "EUR"}, "usageType": "monetary", "bucket": {"id": money["id"]},
            "partyAccount": {"id": acc["id"]}}  # a line without a billing account: its charging account
    answers = await asyncio.gather(*(client.post(f"{TMF654}/topupBalance", json=body,
                                                 headers={**h, "Idempotency-Key": "pay-123"}) for _ in range(4)))
    assert sorted(a.status_code for a in answers) == [201, 409, 409, 409]
    assert (await account_state(rt, tenant, acc["id"]))["money"] == 2000
