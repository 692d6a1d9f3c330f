"""A modify (change plan, suspend) that fails on a later element is compensated: the elements already changed get
back what they had before (restored in durable compensation steps, seen in the call journal), the product keeps
its offering and status in the inventory, and the order item ends failed naming the failing step and reason."""

from __future__ import annotations

from typing import Any

from tests.ordering.helpers import NET, PO, PRODUCT, customer, get, mobile_order, run, setup_world


async def _live_mobile(rt: Any, client: Any) -> dict[str, Any]:
    w = await setup_world(rt, client, numbers=20, sims=20)
    h = w["h"]
    c = await customer(client, h)
    order = (await client.post(PO, json=mobile_order(c, w["offers"]["Mobile M"]), headers=h)).json()
    await run(rt, w["tenant"], provisioning_ocs="simulator")
    order = await get(client, h, f"{PO}/{order['id']}")
    assert order["state"] == "completed", order
    product = await get(client, h, order["productOrderItem"][0]["product"]["href"].split("testserver", 1)[-1])
    return {**w, "c": c, "product": product}


async def _modify(client: Any, w: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    body = {"relatedParty": [{"id": w["c"]["customer"]["id"], "@referredType": "Customer", "role": "customer"}],
            "productOrderItem": [item]}
    r = await client.post(PO, json=body, headers=w["h"])
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _states(client: Any, h: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {s["element"]: s for s in await get(client, h, f"{NET}/elementState")}


async def test_failed_plan_change_restores_the_policy_and_keeps_the_product(rt: Any, client: Any) -> None:
    w = await _live_mobile(rt, client)
    h, product = w["h"], w["product"]
    before = await get(client, h, f"{PRODUCT}/{product['id']}")
    assert (await _states(client, h))["pcrf"]["profile"]["qosProfile"] == "Mobile M"
    # the OCS keeps failing: the plan change fails after its retries; the PCRF was already updated
    r = await client.put(f"{NET}/simulator/ocs", json={"errorRate": 1.0}, headers=h)
    assert r.status_code == 200, r.text
    prepaid = w["offers"]["Prepaid S"]
    order = await _modify(client, w, {"id": "1", "action": "modify", "productOffering": {"id": prepaid["id"]},
                                      "product": {"id": product["id"]}})
    await run(rt, w["tenant"], provisioning_ocs="simulator")

    order = await get(client, h, f"{PO}/{order['id']}")
    assert order["state"] == "failed" and order["productOrderItem"][0]["state"] == "failed"
    assert any("ocs:updateAccount" in n["text"] for n in order["note"])
    progress = (await get(client, h, f"{PO}/{order['id']}/progress"))["productOrderItem"][0]
    assert progress["failedStep"] == "ocs:updateAccount" and "transient error" in progress["reason"]
    steps = {(s["name"], s["phase"]): s for s in progress["steps"]}
    assert steps[("pcrf:updatePolicy", "forward")]["state"] == "done"
    assert steps[("inventory:change", "forward")]["state"] == "cancelled"
    assert steps[("undo:pcrf:updatePolicy", "compensate")]["state"] == "done"

    # the PCRF has its old policy again; the journal shows the change and the restore
    pcrf = (await _states(client, h))["pcrf"]
    assert pcrf["profile"]["qosProfile"] == "Mobile M" and pcrf["status"] == "active"
    applied = [(x["operation"], x["request"].get("qosProfile"))
               for x in await get(client, h, f"{NET}/networkCall", element="pcrf") if x["outcome"] == "applied"]
    assert applied[-2:] == [("updatePolicy", "Prepaid S"), ("updatePolicy", "Mobile M")]
    assert (await _states(client, h))["ocs"]["profile"].get("offering") == w["offers"]["Mobile M"]["id"]

    # the product is as it was
    after = await get(client, h, f"{PRODUCT}/{product['id']}")
    for k in ("name", "productOffering", "productPrice", "productCharacteristic", "status"):
        assert after[k] == before[k], k


async def test_failed_suspend_resumes_what_was_suspended(rt: Any, client: Any) -> None:
    w = await _live_mobile(rt, client)
    h, product = w["h"], w["product"]
    r = await client.put(f"{NET}/simulator/pcrf", json={"errorRate": 1.0}, headers=h)
    assert r.status_code == 200, r.text
    order = await _modify(client, w, {"id": "1", "action": "modify",
                                      "product": {"id": product["id"], "status": "suspended"}})
    await run(rt, w["tenant"], provisioning_ocs="simulator")

    order = await get(client, h, f"{PO}/{order['id']}")
    assert order["state"] == "failed"
    progress = (await get(client, h, f"{PO}/{order['id']}/progress"))["productOrderItem"][0]
    assert progress["failedStep"] == "pcrf:suspendPolicy" and progress["reason"]
    # the HSS (and the OCS) were suspended, then resumed by the compensation; the PCRF never changed
    assert {e: s["status"] for e, s in (await _states(client, h)).items()} == {
        "hss": "active", "pcrf": "active", "ocs": "active"}
    hss = [x["operation"] for x in await get(client, h, f"{NET}/networkCall", element="hss")
           if x["outcome"] == "applied"]
    assert hss == ["createSubscriber", "suspendSubscriber", "resumeSubscriber"]
    compensations = {s["name"]: s["state"] for s in progress["steps"] if s["phase"] == "compensate"}
    assert compensations == {"undo:hss:suspendSubscriber": "done", "undo:ocs:suspendAccount": "done"}
    assert (await get(client, h, f"{PRODUCT}/{product['id']}"))["status"] == "active"

    # the network works again: the same suspend succeeds
    await client.put(f"{NET}/simulator/pcrf", json={}, headers=h)
    order = await _modify(client, w, {"id": "1", "action": "modify",
                                      "product": {"id": product["id"], "status": "suspended"}})
    await run(rt, w["tenant"], provisioning_ocs="simulator")
    assert (await get(client, h, f"{PO}/{order['id']}"))["state"] == "completed"
    assert {s["status"] for s in (await _states(client, h)).values()} == {"suspended"}
    assert (await get(client, h, f"{PRODUCT}/{product['id']}"))["status"] == "suspended"


def test_undo_of_modify_steps_restores_the_previous_state() -> None:
    from openbss.provisioning.decomposition import undo_of

    prev = {"previous": {"status": "active", "profile": {"msisdn": "336", "qosProfile": "Mobile M"}}}
    assert undo_of("pcrf", "updatePolicy", {"msisdn": "336", "qosProfile": "Prepaid S"}, prev) == (
        "updatePolicy", {"msisdn": "336", "qosProfile": "Mobile M"})
    assert undo_of("pcrf", "updatePolicy", {"msisdn": "336", "qosProfile": "Prepaid S"}, {}) is None
    assert undo_of("hss", "suspendSubscriber", {"imsi": "1"}, prev) == ("resumeSubscriber", {"imsi": "1"})
    assert undo_of("hss", "suspendSubscriber", {"imsi": "1"}, None) == ("resumeSubscriber", {"imsi": "1"})
    already = {"previous": {"status": "suspended", "profile": {}}}
    assert undo_of("hss", "suspendSubscriber", {"imsi": "1"}, already) is None
    assert undo_of("hss", "resumeSubscriber", {"imsi": "1"}, already) == ("suspendSubscriber", {"imsi": "1"})
    assert undo_of("hss", "deleteSubscriber", {"imsi": "1"}, prev) is None
