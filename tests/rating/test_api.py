"""TMF635 as served for batch-rated usage: ``usage`` read with a billing team's filters and valid against the
specification, each referencing its ``usageSpecification``; ``usageSpecification`` GET/POST/PATCH/DELETE;
``POST /usage`` for a single record; the bulk file endpoint and the suspense queue over HTTP."""

from __future__ import annotations

from typing import Any

from tests.charging.helpers import TMF635, open_account
from tests.charging.test_contract import assert_valid
from tests.conftest import bearer
from tests.rating.helpers import at, csv_file, rec

SPEC = "TMF635-UsageManagement-v4.0.0.swagger.json"


def usage_create(number: str, rid: str, **extra: Any) -> dict[str, Any]:
    chars = [{"name": "recordId", "value": rid}, {"name": "msisdn", "value": number},
             {"name": "quantity", "value": 3}, {"name": "unit", "value": "MB"}]
    chars += [{"name": k, "value": v} for k, v in extra.items()]
    return {"usageDate": "2026-11-05T10:00:00Z", "usageType": "data", "usageCharacteristic": chars}


async def test_rated_usage_is_read_through_tmf635_with_filters(client: Any, rt: Any, tenant: str) -> None:
    h = bearer(tenant, "admin")
    acc = await open_account(rt, tenant, payment_type="postpaid", balance="0")
    other = await open_account(rt, tenant, payment_type="postpaid", balance="0")
    data = csv_file([rec("d1", acc["msisdn"], at(3)), rec("d2", acc["msisdn"], at(4), visitedCountry="ES"),
                     rec("v1", acc["msisdn"], at(5), "voice", 60), rec("o1", other["msisdn"], at(5)),
                     rec("nobody", "+33600000009", at(5))])
    r = await client.post("/rating/v1/usageFile", params={"name": "pgw-1.csv", "source": "pgw1"}, content=data,
                          headers={**h, "Content-Type": "text/csv"})
    assert r.status_code == 201, r.text
    assert {k: r.json()[k] for k in ("received", "rated", "suspended")} == {"received": 5, "rated": 4,
                                                                          "suspended": 1}
    r = await client.post("/rating/v1/usageFile", params={"name": "pgw-1.csv", "source": "pgw1"}, content=data,
                          headers={**h, "Content-Type": "text/csv"})
    assert r.status_code == 200 and r.json()["duplicateFile"] is True

    party = acc["party_id"]
    r = await client.get(f"{TMF635}/usage", params={"relatedParty.id": party}, headers=h)
    assert r.status_code == 200 and r.headers["X-Total-Count"] == "3", r.text
    for doc in r.json():
        assert_valid(SPEC, "Usage", doc)
        spec = (await client.get(f"{TMF635}/usageSpecification/{doc['usageSpecification']['id']}", headers=h))
        assert spec.status_code == 200
        assert_valid(SPEC, "UsageSpecification", spec.json())
    names = {d["usageSpecification"]["name"] for d in r.json()}
    assert names == {"data", "roamingData", "voice"}
    r = await client.get(f"{TMF635}/usage", params={"relatedParty.id": party, "usageType": "voice",
                                                   "status": "rated"}, headers=h)
    assert [d["usageType"] for d in r.json()] == ["voice"]
    r = await client.get(f"{TMF635}/usage", params={"relatedParty.id": party, "usageDate.gte": "2026-11-04T00:00:00Z",
                                                   "usageDate.lt": "2026-11-05T00:00:00Z"}, headers=h)
    assert [c["value"] for d in r.json() for c in d["usageCharacteristic"] if c["name"] == "recordId"] == ["d2"]
    # the customer sees their own usage only
    mine = await client.get(f"{TMF635}/usage", headers=bearer(tenant, "customer", party=party))
    assert mine.status_code == 200 and len(mine.json()) == 3

    r = await client.get("/rating/v1/suspense", headers=h)
    assert [s["reason"] for s in r.json()] == ["unknown number 33600000009: no subscription uses it"]
    r = await client.post("/rating/v1/suspense/reprocess", json={}, headers=h)
    assert r.json() == {"rated": 0, "duplicate": 0, "pending": 1}


async def test_usage_specification_crud(client: Any, tenant: str) -> None:
    h = bearer(tenant, "admin")
    r = await client.post(f"{TMF635}/usageSpecification", headers=h, json={
        "name": "wholesaleVoice", "description": "Interconnect minutes", "version": "1.0",
        "specCharacteristic": [{"name": "trunk", "valueType": "string"}]})
    assert r.status_code == 201, r.text
    spec = r.json()
    assert_valid(SPEC, "UsageSpecification", spec)
    assert r.headers["Location"].endswith(f"/usageSpecification/{spec['id']}")
    r = await client.patch(f"{TMF635}/usageSpecification/{spec['id']}", headers=h,
                           json={"description": "Interconnect (wholesale) minutes"})
    assert r.status_code == 200 and r.json()["description"] == "Interconnect (wholesale) minutes"
    r = await client.post(f"{TMF635}/usageSpecification", headers=h, json={"description": "no name"})
    assert r.status_code == 400 and "'name' is required" in r.json()["message"]
    assert (await client.delete(f"{TMF635}/usageSpecification/{spec['id']}", headers=h)).status_code == 204
    assert (await client.get(f"{TMF635}/usageSpecification/{spec['id']}", headers=h)).status_code == 404


async def test_post_usage_rates_one_record(client: Any, rt: Any, tenant: str) -> None:
    h = bearer(tenant, "admin")
    acc = await open_account(rt, tenant, payment_type="postpaid", balance="0")
    r = await client.post(f"{TMF635}/usage", headers=h, json=usage_create(acc["msisdn"], "one"))
    assert r.status_code == 201, r.text
    doc = r.json()
    assert_valid(SPEC, "Usage", doc)
    assert doc["ratedProductUsage"][0]["taxExcludedRatingAmount"] == {"unit": "EUR", "value": 0.03}
    assert doc["usageSpecification"]["name"] == "data" and r.headers["Location"] == doc["href"]
    assert (await client.get(f"{TMF635}/usage/{doc['id']}", headers=h)).json()["id"] == doc["id"]
    again = await client.post(f"{TMF635}/usage", headers=h, json=usage_create(acc["msisdn"], "one"))
    assert again.status_code == 409 and again.json()["code"] == "DUPLICATE_USAGE_RECORD"
    bad = await client.post(f"{TMF635}/usage", headers=h, json=usage_create(acc["msisdn"], "two", colour="red"))
    assert bad.status_code == 400 and "unknown usageCharacteristic 'colour'" in bad.json()["message"]
    lost = await client.post(f"{TMF635}/usage", headers=h, json=usage_create("+33600000008", "three"))
    assert lost.status_code == 422 and "unknown number" in lost.json()["message"]
    r = await client.get(f"{TMF635}/usage", params={"relatedParty.id": acc["party_id"]}, headers=h)
    assert r.headers["X-Total-Count"] == "1"  # nothing written for the refused ones
    denied = await client.post(f"{TMF635}/usage", headers=bearer(tenant, "customer", party=acc["party_id"]),
                               json=usage_create(acc["msisdn"], "four"))
    assert denied.status_code == 403


async def test_rerate_over_http(client: Any, rt: Any, tenant: str) -> None:
    from openbss.charging import repository as repo
    from tests.charging.helpers import plan

    h = bearer(tenant, "admin")
    acc = await open_account(rt, tenant, payment_type="postpaid", balance="0")
    r = await client.post("/rating/v1/usageFile", params={"name": "d.csv"}, content=csv_file([
        rec("d1", acc["msisdn"], at(3), quantity=5 * 1024 * 1024)]), headers={**h, "Content-Type": "text/csv"})
    assert r.status_code == 201, r.text
    corrected = plan()
    corrected["data"]["price"] = "0.03"
    async with rt.db.transaction(tenant) as session:
        await repo.set_plan(await repo.session_connection(session), acc["id"], None, corrected)
    job = {"id": "tariff-fix-7", "period": "2026-11", "accountId": acc["id"]}
    r = await client.post("/rating/v1/rerate", json=job, headers=h)
    assert r.status_code == 201, r.text
    assert (r.json()["difference"], r.json()["changed"]) == ({"EUR": "0.10"}, 1)
    r = await client.post("/rating/v1/rerate", json=job, headers=h)
    assert r.status_code == 200 and r.json()["alreadyRun"] is True
    # the versions are TMF635 usage, valid against the specification
    r = await client.get(f"{TMF635}/usage", params={"relatedParty.id": acc["party_id"], "status": "rerated"},
                         headers=h)
    assert r.status_code == 200 and len(r.json()) == 2, r.text
    assert sorted(u["ratedProductUsage"][0]["taxExcludedRatingAmount"]["value"] for u in r.json()) == [-0.05, 0.15]
    for doc in r.json():
        assert_valid(SPEC, "Usage", doc)
    for bad, message in (({**job, "id": "x", "period": "November"}, "is not a month"),
                         ({"id": "y", "period": "2026-11"}, "either 'accountId' or 'tariffId'"),
                         ({**job, "extra": 1}, "extra")):
        r = await client.post("/rating/v1/rerate", json=bad, headers=h)
        assert 400 <= r.status_code < 500 and message in r.text, r.text
    r = await client.post("/rating/v1/rerate", json={**job, "id": "z"}, headers=bearer(tenant, "customer",
                                                                                       party=acc["party_id"]))
    assert r.status_code == 403
