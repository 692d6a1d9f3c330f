"""From a new customer to an active mobile line and an active fiber line, with what the network saw: with the default
settings the OCS is the charging domain, so the mobile line gets a real charging account that follows the line."""

from __future__ import annotations

from typing import Any

from tests.ordering.helpers import (
    NET,
    PO,
    PRODUCT,
    RESOURCE,
    SERVICE,
    SO,
    assert_tmf,
    customer,
    fiber_item,
    get,
    mobile_order,
    run,
    setup_world,
)

TMF654 = "/tmf-api/prepayBalanceManagement/v4"


async def charging_account(rt: Any, tenant: str, msisdn: str) -> dict[str, Any]:
    from openbss.charging.service import system_context
    from tests.conftest import session_services

    async with rt.db.transaction(tenant) as session:
        return dict(await session_services().charging.service.get_account(
            system_context(session, tenant, "http://testserver"), subscriber=msisdn))


async def test_new_customer_to_active_mobile_and_fiber(rt: Any, client: Any) -> None:
    w = await setup_world(rt, client)
    h, offers = w["h"], w["offers"]
    c = await customer(client, h)
    body = mobile_order(c, offers["Mobile M"])
    body["productOrderItem"].append(fiber_item(offers["Fiber 1 Gbps"]))
    r = await client.post(PO, json=body, headers=h)
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["state"] == "acknowledged" and r.headers["location"] == order["href"]
    assert_tmf("TMF622", "ProductOrder", order)
    totals = {t["priceType"]: t for t in order["orderTotalPrice"]}
    # 10.00 activation + 49 installation + 79 router; 24.99 - 12.50 (50 %, rounded) + 39.99
    assert totals["oneTime"]["price"]["dutyFreeAmount"]["value"] == 138
    assert totals["recurring"]["price"]["dutyFreeAmount"]["value"] == 52.48

    await run(rt, w["tenant"])
    order = await get(client, h, f"{PO}/{order['id']}")
    assert order["state"] == "completed", order
    assert [i["state"] for i in order["productOrderItem"]] == ["completed", "completed"]
    assert order["completionDate"]
    assert_tmf("TMF622", "ProductOrder", order)

    products = await get(client, h, PRODUCT, **{"relatedParty.id": c["customer"]["id"]})
    assert len(products) == 2 and {p["status"] for p in products} == {"active"}
    view = await get(client, h, f"/tmf-api/customerManagement/v4/customer360/{c['customer']['id']}")
    assert {p["id"] for p in view["products"]} == {p["id"] for p in products}  # the inventory's 360 section
    for p in products:
        assert_tmf("TMF637", "Product", p)
        assert p["billingAccount"]["id"] == c["account"]["id"]
        assert p["productOffering"]["id"] in (offers["Mobile M"]["id"], offers["Fiber 1 Gbps"]["id"])
        assert p["startDate"] and p["productPrice"]
    mobile = next(p for p in products if p["name"] == "Mobile M")
    fiber = next(p for p in products if p["name"] == "Fiber 1 Gbps")
    assert {s["name"] for s in mobile["realizingService"]} == {"Mobile voice and data", "HSS subscription",
                                                               "PCRF policy"}
    resources = {r_["id"]: await get(client, h, f"{RESOURCE}/{r_['id']}") for r_ in mobile["realizingResource"]}
    for res in resources.values():
        assert_tmf("TMF639", "Resource", res)
    by_cat = {res["category"]: {c_["name"]: c_["value"] for c_ in res["resourceCharacteristic"]}
              for res in resources.values()}
    msisdn, imsi = by_cat["msisdn"]["value"], by_cat["sim"]["imsi"]
    for s in mobile["realizingService"]:
        assert_tmf("TMF638", "Service", await get(client, h, f"{SERVICE}/{s['id']}"))
    fiber_res = [await get(client, h, f"{RESOURCE}/{r_['id']}") for r_ in fiber["realizingResource"]]
    assert {x["category"] for x in fiber_res} == {"ont", "ipv4"}
    ont = next(x for x in fiber_res if x["category"] == "ont")["resourceCharacteristic"][0]["value"]

    # what the network saw: one applied call per element, with the allocated identifiers
    calls = await get(client, h, f"{NET}/networkCall")
    applied = [(c_["element"], c_["operation"], c_["subscriber"]) for c_ in calls if c_["outcome"] == "applied"]
    assert sorted(applied) == sorted([("hss", "createSubscriber", imsi), ("pcrf", "createPolicy", msisdn),
                                      ("aaa", "createProfile", ont)])
    hss = next(c_ for c_ in calls if c_["element"] == "hss")
    assert hss["request"]["msisdn"] == msisdn and hss["request"]["kiRef"].startswith("hsm://ki/")
    aaa = next(c_ for c_ in calls if c_["element"] == "aaa")
    assert aaa["request"]["ipAddress"].startswith("192.0.2.") and aaa["request"]["downloadSpeed"] == 1000
    state = await get(client, h, f"{NET}/elementState")
    assert {(s["element"], s["status"]) for s in state} == {("hss", "active"), ("pcrf", "active"),
                                                             ("aaa", "active")}
    # the OCS is the charging domain: the line has a charging account, postpaid (Mobile M) within the billing
    # account's credit limit, with this month's allowances; its buckets are TMF654 resources
    account = await charging_account(rt, w["tenant"], msisdn)
    assert account["status"] == "active" and account["payment_type"] == "postpaid"
    assert account["offering_id"] == offers["Mobile M"]["id"] and account["billing_account_id"] == c["account"]["id"]
    assert {b["unit"] for b in account["buckets"]} >= {"money", "data"}
    buckets = await get(client, h, f"{TMF654}/bucket", **{"logicalResource.id": account["subscriber"]})
    assert {b["usageType"] for b in buckets} >= {"monetary", "data"}

    sos = await get(client, h, SO)
    assert len(sos) == 2 and {s["state"] for s in sos} == {"completed"}
    for so in sos:
        assert_tmf("TMF641", "ServiceOrder", so)

    # suspend, resume and terminate the mobile line through orders: the network and the inventory follow
    async def change(item: dict[str, Any]) -> dict[str, Any]:
        r = await client.post(PO, json={"relatedParty": body["relatedParty"], "productOrderItem": [item]},
                              headers=h)
        assert r.status_code == 201, r.text
        await run(rt, w["tenant"])
        out = await get(client, h, f"{PO}/{r.json()['id']}")
        assert out["state"] == "completed", out
        return out

    # change plan, then characteristics
    prepaid = offers["Prepaid S"]
    await change({"id": "1", "action": "modify", "productOffering": {"id": prepaid["id"]},
                  "product": {"id": mobile["id"]}})
    changed = await get(client, h, f"{PRODUCT}/{mobile['id']}")
    assert changed["productOffering"]["id"] == prepaid["id"] and changed["name"] == "Prepaid S"
    assert {p["name"] for p in changed["productPrice"]} == {"Prepaid S bundle (30 days)", "SIM card (prepaid)"}
    updates = {c_["operation"]: c_["request"] for c_ in await get(client, h, f"{NET}/networkCall")
               if c_["operation"].startswith("update")}
    assert set(updates) == {"updatePolicy"}
    assert updates["updatePolicy"]["qosProfile"] == "Prepaid S"
    assert (await charging_account(rt, w["tenant"], msisdn))["offering_id"] == prepaid["id"]
    await change({"id": "1", "action": "modify", "product": {
        "id": mobile["id"], "productCharacteristic": [{"name": "simType", "value": "eSIM"}]}})
    chars = {c_["name"]: c_["value"] for c_ in (await get(client, h, f"{PRODUCT}/{mobile['id']}"))[
        "productCharacteristic"]}
    assert chars["simType"] == "eSIM"
    r = await client.post(PO, json={"relatedParty": body["relatedParty"], "productOrderItem": [
        {"id": "1", "action": "modify", "product": {"id": mobile["id"], "productCharacteristic": [
            {"name": "simType", "value": "nano"}]}}]}, headers=h)
    assert r.status_code == 400 and r.json()["code"] == "INVALID_CHARACTERISTIC"

    await change({"id": "1", "action": "modify", "product": {"id": mobile["id"], "status": "suspended"}})
    assert (await get(client, h, f"{PRODUCT}/{mobile['id']}"))["status"] == "suspended"
    state = {s["element"]: s["status"] for s in await get(client, h, f"{NET}/elementState")
             if s["subscriber"] in (imsi, msisdn)}
    assert state == {"hss": "suspended", "pcrf": "suspended"}
    assert (await charging_account(rt, w["tenant"], msisdn))["status"] == "suspended"
    await change({"id": "1", "action": "modify", "product": {"id": mobile["id"], "status": "active"}})
    assert (await get(client, h, f"{PRODUCT}/{mobile['id']}"))["status"] == "active"
    assert (await charging_account(rt, w["tenant"], msisdn))["status"] == "active"
    await change({"id": "1", "action": "delete", "product": {"id": mobile["id"]}})
    gone = await get(client, h, f"{PRODUCT}/{mobile['id']}")
    assert gone["status"] == "terminated" and gone["terminationDate"]
    assert {s["element"] for s in await get(client, h, f"{NET}/elementState")} == {"aaa"}
    assert (await charging_account(rt, w["tenant"], msisdn))["status"] == "closed"
    counts = await get(client, h, "/api/inventory/v1/poolCount")
    assert counts["msisdn"].get("quarantined") == 1 and counts["sim"].get("retired") == 1


async def test_customer_sees_own_products_only(rt: Any, client: Any) -> None:
    from tests.conftest import bearer

    w = await setup_world(rt, client, numbers=10, sims=10)
    h = w["h"]
    c = await customer(client, h)
    other = await customer(client, h, 9)
    for who in (c, other):
        r = await client.post(PO, json=mobile_order(who, w["offers"]["Mobile M"]), headers=h)
        assert r.status_code == 201, r.text
    await run(rt, w["tenant"])
    mine = await get(client, bearer(w["tenant"], "customer", party=c["party"]["id"]), PRODUCT)
    assert len(mine) == 1 and mine[0]["relatedParty"][0]["id"] == c["customer"]["id"]
    r = await client.get(PO, headers=bearer(w["tenant"], "customer", party=c["party"]["id"]))
    assert r.status_code == 403  # ordering is done by staff (or the self-care backend)
