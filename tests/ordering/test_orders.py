"""TMF622 product orders: validation against the catalog and accounts, idempotency, lifecycle (hold, cancel,
failure with compensation, operator retry), carts with live prices, events."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import make_tenant
from tests.customer.helpers import make_billing_account
from tests.ordering.helpers import (
    CANCEL,
    CART,
    NET,
    PO,
    PRODUCT,
    assert_tmf,
    customer,
    fiber_item,
    get,
    mobile_order,
    orchestrator,
    run,
    setup_world,
)


@pytest.fixture(scope="module")
async def world(rt: Any, app: Any) -> dict[str, Any]:
    import httpx

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        w = await setup_world(rt, client)
        w["c"] = await customer(client, w["h"], 1)
        w["corp"] = await customer(client, w["h"], 2, characteristic=[{"name": "segment", "value": "corporate"}])
    return w


async def post(client: Any, w: dict[str, Any], body: dict[str, Any], **headers: str) -> Any:
    return await client.post(PO, json=body, headers={**w["h"], **headers})


async def test_orders_are_validated_naming_item_and_rule(client: Any, world: dict[str, Any]) -> None:
    w, offers, c = world, world["offers"], world["c"]

    async def refused(body: dict[str, Any], status: int, code: str, *words: str) -> None:
        r = await post(client, w, body)
        assert r.status_code == status, r.text
        err = r.json()
        assert err["code"] == code, err
        for word in words:
            assert word in err["message"], err["message"]

    # segment: Business Pro 10 is for enterprise customers only
    await refused(mobile_order(c, offers["Business Pro 10"]), 400, "OFFERING_NOT_ORDERABLE", "productOrderItem '1'",
                  "customer segment 'consumer'")
    # channel: Prepaid S is not sold by the call center
    body = mobile_order(c, offers["Prepaid S"])
    body["channel"] = [{"id": "callCenter"}]
    await refused(body, 400, "OFFERING_NOT_ORDERABLE", "sales channel 'callCenter'")
    # characteristic value not allowed
    body = mobile_order(c, offers["Mobile M"])
    body["productOrderItem"][0]["product"]["productCharacteristic"] = [{"name": "simType", "value": "nano"}]
    await refused(body, 400, "INVALID_CHARACTERISTIC", "productOrderItem '1'", "'nano'")
    # the fiber offer only sells 1000 Mbps
    body = mobile_order(c, offers["Mobile M"])
    body["productOrderItem"] = [{"id": "7", "action": "add", "productOffering": {"id": offers["Fiber 1 Gbps"]["id"]},
                                 "product": {"productCharacteristic": [{"name": "downloadSpeed", "value": 300}]}}]
    await refused(body, 400, "INVALID_CHARACTERISTIC", "productOrderItem '7'")
    # billing account of another customer, then one not active
    body = mobile_order(c, offers["Mobile M"])
    body["billingAccount"] = {"id": w["corp"]["account"]["id"]}
    await refused(body, 400, "INVALID_BILLING_ACCOUNT", "does not belong")
    defined = await make_billing_account(client, w["h"], c["customer"])
    body["billingAccount"] = {"id": defined["id"]}
    await refused(body, 400, "INVALID_BILLING_ACCOUNT", "defined, not active")
    # quantity: a whole number from 1, or the item's prices are multiplied by a fraction or a negative number
    for bad in (0, -3):
        body = mobile_order(c, offers["Mobile M"])
        body["productOrderItem"][0]["quantity"] = bad
        await refused(body, 400, "INVALID_QUANTITY", f"productOrderItem '{body['productOrderItem'][0]['id']}'"
                      ".quantity", "whole number")
    # a billing account in another currency than the offering's prices (one-time, recurring, usage)
    dollars = await make_billing_account(client, w["h"], c["customer"], state="active", currency="USD",
                                   creditLimit={"unit": "USD", "value": 100})
    body = mobile_order(c, offers["Mobile M"])
    body["billingAccount"] = {"id": dollars["id"]}
    await refused(body, 400, "INVALID_BILLING_ACCOUNT", "productOrderItem '1'", "'USD'", "EUR")
    # no customer
    body = mobile_order(c, offers["Mobile M"])
    body["relatedParty"] = []
    await refused(body, 400, "MISSING_CUSTOMER")
    # bundle cardinalities: Business Pro 10 needs 10 lines and 1 pool
    corp = w["corp"]
    bundle = offers["Business Pro 10"]
    line, pool = (b["id"] for b in bundle["bundledProductOffering"])
    children = [{"id": f"l{i}", "action": "add", "productOffering": {"id": line}} for i in range(9)]
    children.append({"id": "p", "action": "add", "productOffering": {"id": pool}})
    body = mobile_order(corp, bundle)
    body["channel"] = [{"id": "b2bSales"}]
    body["productOrderItem"][0] = {"id": "b", "action": "add", "productOffering": {"id": bundle["id"]},
                                   "productOrderItem": children}
    await refused(body, 400, "BUNDLE_CARDINALITY", "productOrderItem 'b'", "between 10 and 10", "the order has 9")
    # nothing was created
    assert await get(client, w["h"], PO) == [] or all(
        o["relatedParty"][0]["id"] not in (c["customer"]["id"], corp["customer"]["id"])
        for o in await get(client, w["h"], PO))


async def test_idempotency_key_returns_the_same_order(client: Any, world: dict[str, Any]) -> None:
    w = world
    body = mobile_order(w["c"], w["offers"]["Mobile M"])
    responses = await asyncio.gather(*(post(client, w, body, **{"Idempotency-Key": "order-42"}) for _ in range(5)))
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    again = await post(client, w, body, **{"Idempotency-Key": "order-42"})
    assert again.json()["id"] == responses[0].json()["id"]
    other = dict(body, description="another order")
    r = await post(client, w, other, **{"Idempotency-Key": "order-42"})
    assert r.status_code == 409 and r.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    orders = [o for o in await get(client, w["h"], PO, limit=1000) if o["id"] == responses[0].json()["id"]]
    assert len(orders) == 1
    cancel = await client.post(CANCEL, json={"productOrder": {"id": orders[0]["id"]}}, headers=w["h"])
    assert cancel.status_code == 201, cancel.text


async def test_cancel_hold_and_their_rules(rt: Any, client: Any, world: dict[str, Any]) -> None:
    w = world
    order = (await post(client, w, mobile_order(w["c"], w["offers"]["Mobile M"]))).json()
    # held: no step runs
    r = await client.patch(f"{PO}/{order['id']}", json={"state": "held"}, headers=w["h"])
    assert r.status_code == 200 and r.json()["state"] == "held", r.text
    await run(rt, w["tenant"])
    assert (await get(client, w["h"], f"{PO}/{order['id']}"))["state"] == "held"
    r = await client.patch(f"{PO}/{order['id']}", json={"state": "completed"}, headers=w["h"])
    assert r.status_code == 409
    r = await client.patch(f"{PO}/{order['id']}", json={"billingAccount": {"id": "x"}}, headers=w["h"])
    assert r.status_code == 400 and r.json()["code"] == "IMMUTABLE_ATTRIBUTE"
    # cancelled while held: nothing had run, so it is cancelled at once
    r = await client.post(CANCEL, json={"productOrder": {"id": order["id"]}, "cancellationReason": "changed mind"},
                          headers=w["h"])
    assert r.status_code == 201, r.text
    cancel = r.json()
    assert cancel["state"] == "done" and cancel["effectiveCancellationDate"]
    assert_tmf("TMF622", "CancelProductOrder", cancel)
    order = await get(client, w["h"], f"{PO}/{order['id']}")
    assert order["state"] == "cancelled" and order["cancellationReason"] == "changed mind"
    assert {i["state"] for i in order["productOrderItem"]} == {"cancelled"}
    # a cancelled (or completed) order cannot be cancelled again
    r = await client.post(CANCEL, json={"productOrder": {"id": order["id"]}}, headers=w["h"])
    assert r.status_code == 409 and r.json()["code"] == "ORDER_NOT_CANCELLABLE"

    # cancelled in flight: what ran is compensated
    order = (await post(client, w, mobile_order(w["c"], w["offers"]["Mobile M"]))).json()
    orch = orchestrator(rt)
    await orch.run_once()  # the allocations run
    r = await client.post(CANCEL, json={"productOrder": {"id": order["id"]}}, headers=w["h"])
    assert r.status_code == 201 and r.json()["state"] == "inProgress"
    assert (await get(client, w["h"], f"{PO}/{order['id']}"))["state"] == "pendingCancellation"
    await run(rt, w["tenant"])
    order = await get(client, w["h"], f"{PO}/{order['id']}")
    assert order["state"] == "cancelled"
    assert (await get(client, w["h"], f"{CANCEL}/{r.json()['id']}"))["state"] == "done"
    progress = await get(client, w["h"], f"{PO}/{order['id']}/progress")
    steps = {s["name"]: s["state"] for s in progress["productOrderItem"][0]["steps"]}
    assert steps["undo:allocate:msisdn"] == "done" and steps["inventory:activate"] == "cancelled"


async def test_failure_is_compensated_then_retried(rt: Any, client: Any) -> None:
    import httpx  # noqa: F401

    w = await setup_world(rt, client, numbers=20, sims=20)
    h = w["h"]
    c = await customer(client, h)
    # (the network simulator plays the OCS: its calls are recorded)
    # the HSS keeps failing (transient errors): retried with backoff, then the item fails and is compensated
    r = await client.put(f"{NET}/simulator/hss", json={"errorRate": 1.0}, headers=h)
    assert r.status_code == 200, r.text
    body = mobile_order(c, w["offers"]["Mobile M"])
    body["productOrderItem"].append(fiber_item(w["offers"]["Fiber 1 Gbps"]))
    order = (await client.post(PO, json=body, headers=h)).json()
    await run(rt, w["tenant"], provisioning_ocs="simulator")
    order = await get(client, h, f"{PO}/{order['id']}")
    assert order["state"] == "partial"  # the fiber line completed, the mobile line failed
    assert [i["state"] for i in order["productOrderItem"]] == ["failed", "completed"]
    assert any("hss:createSubscriber" in n["text"] for n in order["note"])
    progress = await get(client, h, f"{PO}/{order['id']}/progress")
    mobile = progress["productOrderItem"][0]
    assert mobile["failedStep"] == "hss:createSubscriber" and "transient error" in mobile["reason"]
    hss_step = next(s for s in mobile["steps"] if s["name"] == "hss:createSubscriber")
    assert hss_step["attempts"] == 4 and hss_step["state"] == "failed"
    # compensation: the OCS account opened in parallel was deleted, numbers and SIM went back to the pool
    calls = await get(client, h, f"{NET}/networkCall", element="ocs")
    assert [x["operation"] for x in calls if x["outcome"] == "applied"] == ["createAccount", "deleteAccount"]
    assert [x["outcome"] for x in await get(client, h, f"{NET}/networkCall", element="hss")] == ["error"] * 4
    counts = await get(client, h, "/api/inventory/v1/poolCount")
    assert "inUse" not in counts["msisdn"] and "inUse" not in counts["sim"]
    assert (await get(client, h, f"{NET}/elementState", element="ocs")) == []

    # the operator fixes the network and retries
    await client.put(f"{NET}/simulator/hss", json={"errorRate": 0}, headers=h)
    r = await client.post(f"{PO}/{order['id']}/retry", headers=h)
    assert r.status_code == 200 and r.json()["state"] == "inProgress", r.text
    await run(rt, w["tenant"], provisioning_ocs="simulator")
    order = await get(client, h, f"{PO}/{order['id']}")
    assert (order["state"] == "completed" and "note" not in order) or order["note"] == []
    assert len(await get(client, h, PRODUCT)) == 2
    r = await client.post(f"{PO}/{order['id']}/retry", headers=h)
    assert r.status_code == 409

    # a rejection (permanent) fails at once, without retries
    sims = await get(client, h, "/api/inventory/v1/poolCount")
    assert sims["sim"]["inUse"] == 1
    await client.put(f"{NET}/simulator/hss", json={"rejectImsi": [f"20801{i:010d}" for i in range(20)]}, headers=h)
    order = (await client.post(PO, json=mobile_order(c, w["offers"]["Mobile M"]), headers=h)).json()
    await run(rt, w["tenant"], provisioning_ocs="simulator")
    progress = await get(client, h, f"{PO}/{order['id']}/progress")
    assert progress["state"] == "failed"
    step = next(s for s in progress["productOrderItem"][0]["steps"] if s["name"] == "hss:createSubscriber")
    assert step["attempts"] == 1 and "rejected" in step["error"]


async def test_cart_prices_live_and_checks_out(rt: Any, client: Any, world: dict[str, Any]) -> None:
    w, offers = world, world["offers"]
    rp = [{"id": w["c"]["customer"]["id"], "@referredType": "Customer", "role": "customer"}]
    r = await client.post(CART, json={"relatedParty": rp, "cartItem": [
        {"id": "1", "action": "add", "quantity": 2, "productOffering": {"id": offers["Mobile M"]["id"]}},
        {"id": "2", "action": "add", "productOffering": {"id": offers["Fiber 1 Gbps"]["id"]},
         "product": {"productCharacteristic": [{"name": "staticIp", "value": False}]}}]}, headers=w["h"])
    assert r.status_code == 201, r.text
    cart = r.json()
    assert_tmf("TMF663", "ShoppingCart", cart)
    totals = {t["priceType"]: t["price"] for t in cart["cartTotalPrice"]}
    assert totals["oneTime"]["dutyFreeAmount"]["value"] == 148  # 2 x 10 + 49 + 79
    assert totals["recurring"]["dutyFreeAmount"]["value"] == 64.98  # 2 x 24.99 - 24.99 (50 %) + 39.99
    assert totals["recurring"]["taxIncludedAmount"]["value"] == 77.98
    m = cart["cartItem"][0]
    recurring = next(p for p in m["itemPrice"] if p["priceType"] == "recurring")
    assert recurring["priceAlteration"][0]["price"]["percentage"] == 50
    assert recurring["priceAlteration"][0]["applicationDuration"] == 3
    # change the quantity: re-priced
    items = cart["cartItem"]
    items[0]["quantity"] = 1
    r = await client.patch(f"{CART}/{cart['id']}", json={"cartItem": items}, headers=w["h"])
    assert r.status_code == 200, r.text
    totals = {t["priceType"]: t["price"] for t in r.json()["cartTotalPrice"]}
    assert totals["oneTime"]["dutyFreeAmount"]["value"] == 138
    # checkout: a product order, validated like any
    r = await client.post(f"{CART}/{cart['id']}/checkout", json={
        "billingAccount": {"id": w["c"]["account"]["id"]}, "channel": [{"id": "web"}]}, headers=w["h"])
    assert r.status_code == 201, r.text
    order = r.json()
    assert len(order["productOrderItem"]) == 2 and order["state"] == "acknowledged"
    await run(rt, w["tenant"])
    assert (await get(client, w["h"], f"{PO}/{order['id']}"))["state"] == "completed"
    r = await client.post(CART, json={"relatedParty": rp, "cartItem": [
        {"id": "1", "action": "add", "productOffering": {"id": offers["Mobile M"]["id"]}}]}, headers=w["h"])
    r = await client.post(f"{CART}/{r.json()['id']}/checkout", json={"channel": [{"id": "web"}]}, headers=w["h"])
    assert r.status_code == 400 and r.json()["code"] == "INVALID_BILLING_ACCOUNT"


async def test_state_changes_are_events(rt: Any, client: Any, world: dict[str, Any]) -> None:
    from sqlalchemy import select

    from openbss.platform.events.outbox import OutboxEvent

    w = world
    order = (await post(client, w, mobile_order(w["c"], w["offers"]["Mobile M"]))).json()
    await run(rt, w["tenant"])
    async with rt.db.transaction(w["tenant"]) as session:
        rows = (await session.execute(select(OutboxEvent.event_type, OutboxEvent.envelope)
                                      .order_by(OutboxEvent.id))).all()
    mine = [(t, e) for t, e in rows if t.startswith("ProductOrder") and
            e["event"]["productOrder"]["id"] == order["id"]]
    states = [e["event"]["productOrder"]["state"] for t, e in mine if t == "ProductOrderStateChangeEvent"]
    assert next(t for t, _ in mine) == "ProductOrderCreateEvent"
    assert states == ["inProgress", "completed"]
    types = {t for t, _ in rows}
    assert {"ServiceOrderCreateEvent", "ServiceOrderStateChangeEvent", "ProductCreateEvent", "ServiceCreateEvent",
            "ResourceCreateEvent", "ShoppingCartCreateEvent", "CancelProductOrderCreateEvent"} <= types


async def test_other_tenants_see_nothing(rt: Any, client: Any, world: dict[str, Any]) -> None:
    from tests.conftest import bearer

    other = await make_tenant(rt, "x")
    orders = await get(client, bearer(other, "admin"), PO)
    assert orders == []
    assert await get(client, bearer(other, "admin"), PRODUCT) == []


async def test_future_start_date_keeps_the_order_pending(rt: Any, client: Any, world: dict[str, Any]) -> None:
    from datetime import UTC, datetime, timedelta

    w = world
    start = datetime.now(UTC) + timedelta(seconds=1.5)
    body = mobile_order(w["c"], w["offers"]["Mobile M"])
    body["requestedStartDate"] = start.isoformat().replace("+00:00", "Z")
    order = (await post(client, w, body)).json()
    assert order["state"] == "pending"
    await orchestrator(rt).run_once()  # nothing may start before the requested date
    assert (await get(client, w["h"], f"{PO}/{order['id']}"))["state"] == "pending"
    progress = await get(client, w["h"], f"{PO}/{order['id']}/progress")
    assert {s["attempts"] for s in progress["productOrderItem"][0]["steps"]} == {0}
    await run(rt, w["tenant"])
    done = await get(client, w["h"], f"{PO}/{order['id']}")
    assert done["state"] == "completed"
    assert datetime.fromisoformat(done["completionDate"].replace("Z", "+00:00")) >= start


async def test_bundle_order_for_a_corporate_customer(rt: Any, client: Any, world: dict[str, Any]) -> None:
    w, corp = world, world["corp"]
    bundle = w["offers"]["Business Pro 10"]
    line, pool = (b["id"] for b in bundle["bundledProductOffering"])
    children = [{"id": f"l{i}", "action": "add", "productOffering": {"id": line}} for i in range(10)]
    children.append({"id": "p", "action": "add", "productOffering": {"id": pool}})
    body = mobile_order(corp, bundle)
    body["channel"] = [{"id": "b2bSales"}]
    body["productOrderItem"][0] = {"id": "b", "action": "add", "productOffering": {"id": bundle["id"]},
                                   "productOrderItem": children}
    r = await post(client, w, body)
    assert r.status_code == 201, r.text
    await run(rt, w["tenant"])
    order = await get(client, w["h"], f"{PO}/{r.json()['id']}")
    assert order["state"] == "completed", order
    top = order["productOrderItem"][0]
    assert top["state"] == "completed" and {i["state"] for i in top["productOrderItem"]} == {"completed"}
    products = await get(client, w["h"], PRODUCT, **{"relatedParty.id": corp["customer"]["id"]})
    assert len(products) == 12
    # the bundle's product lists its 11 products as bundled (TMF637 productRelationship)
    parent = next(p for p in products if p["id"] == top["product"]["id"])
    assert_tmf("TMF637", "Product", parent)
    bundled = {x["product"]["id"] for x in parent["productRelationship"] if x["relationshipType"] == "bundled"}
    assert len(parent["productRelationship"]) == 11
    assert bundled == {i["product"]["id"] for i in top["productOrderItem"]}
    assert parent["id"] not in bundled
