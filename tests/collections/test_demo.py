"""The demo's collections: a policy assigned to four late customers, driven by the real scheduler — one reminded,
one with a line barred (suspended in the inventory, refused by charging), one resumed by a payment, one with a
promise to pay; seeding twice changes nothing."""

from __future__ import annotations

from typing import Any

import httpx

from openbss.demo.collections import seed_collections
from openbss.demo.orders import seed_orders
from tests.collections.helpers import API, episodes, executions
from tests.collections.test_suspension import _credit_control, _status
from tests.conftest import bearer, make_tenant, session_services

PI = "/tmf-api/productInventory/v4/product"


async def test_the_demo_has_an_account_at_each_stage_of_collections(client: httpx.AsyncClient, rt: Any) -> None:
    tenant = await make_tenant(rt, "demo")
    services = session_services()
    await seed_orders(services, rt, tenant, "http://testserver")  # the catalog and the number and SIM pools
    accounts = await seed_collections(services, rt, tenant, "http://testserver")
    assert sorted(accounts) == ["promise", "reminded", "resumed", "suspended"]
    before = (len(await episodes(rt, tenant)), len(await executions(rt, tenant)))
    assert await seed_collections(services, rt, tenant, "http://testserver") == {}
    assert (len(await episodes(rt, tenant)), len(await executions(rt, tenant))) == before
    # the worker's scheduler, on its timer today, finds nothing more to do (the promise pauses its episode)
    again = await services.collections.service.run_tenant(tenant)
    assert again.done == 0 and again.claimed == 0, again.as_dict()
    assert (len(await episodes(rt, tenant)), len(await executions(rt, tenant))) == before
    h, admin = bearer(tenant, "billing_ops"), bearer(tenant, "admin")

    async def episode(key: str) -> dict[str, Any]:
        r = await client.get(f"{API}/dunningEpisode", params={"billingAccount.id": accounts[key]}, headers=h)
        assert r.status_code == 200, r.text
        [doc] = r.json()
        return dict(doc)

    async def line(key: str) -> tuple[dict[str, Any], str]:
        r = await client.get(PI, params={"billingAccount.id": accounts[key]}, headers=admin)
        assert r.status_code == 200, r.text
        [product] = [p for p in r.json() if p["name"] == "Mobile M"]
        msisdn = ""
        for ref in product["realizingResource"]:
            res = (await client.get(ref["href"].replace("http://testserver", ""), headers=admin)).json()
            if res["category"] == "msisdn":
                msisdn = res["resourceCharacteristic"][0]["value"]
        return product, msisdn

    reminded = await episode("reminded")
    assert reminded["state"] == "open" and [s["action"] for s in reminded["stepTaken"]] == ["reminder"]

    suspended = await episode("suspended")
    assert [s["action"] for s in suspended["stepTaken"]] == ["reminder", "suspend"]
    product, msisdn = await line("suspended")
    assert product["status"] == "suspended" and msisdn, suspended["stepTaken"]
    assert await _status(rt, tenant, msisdn) == "suspended"
    assert await _credit_control(client, tenant, msisdn, "demo-barred") == 4010  # charging refuses the line

    resumed = await episode("resumed")
    assert resumed["state"] == "closed" and resumed["closeReason"] == "paid"
    assert [s["action"] for s in resumed["stepTaken"]] == ["reminder", "suspend"] and resumed["resumeOrder"]
    order = (await client.get(f"/tmf-api/productOrderingManagement/v4/productOrder/{resumed['resumeOrder'][0]}",
                              headers=admin)).json()
    assert order["state"] == "completed", order
    product, msisdn = await line("resumed")
    assert product["status"] == "active" and await _status(rt, tenant, msisdn) == "active"

    promised = await episode("promise")
    assert promised["state"] == "open" and [s["action"] for s in promised["stepTaken"]] == ["reminder"]
    r = await client.get(f"{API}/promiseToPay", params={"billingAccount.id": accounts["promise"]}, headers=h)
    [promise] = r.json()
    assert promise["state"] == "pending" and promise["dunningEpisode"]["id"] == promised["id"]
