"""TMF639 resources written through the API: recorded resources (routers, ONTs, ports, licences) are created,
merge-patched and deleted as the specification defines, audited and announced; pooled resources (what orders
allocate from the pools) are protected from the edits that would break allocation."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import bearer
from tests.ordering.helpers import (
    PO,
    PRODUCT,
    RESOURCE,
    assert_tmf,
    customer,
    get,
    mobile_order,
    run,
    setup_world,
)

ROUTER = {"@type": "PhysicalResource", "name": "Core router PAR-1", "category": "router",
          "serialNumber": "FOC2231X0AB", "versionNumber": "17.9", "resourceStatus": "available",
          "administrativeState": "unlocked", "operationalState": "enable", "usageState": "active",
          "place": {"id": "paris-dc1", "name": "Paris DC1", "role": "installation site"},
          "resourceCharacteristic": [{"name": "ports", "valueType": "integer", "value": 48}]}


async def _events(rt: Any, tenant: str, resource_id: str) -> list[tuple[str, dict[str, Any]]]:
    from openbss.platform.events.outbox import OutboxEvent

    async with rt.db.transaction(tenant) as session:
        rows = (await session.execute(select(OutboxEvent.event_type, OutboxEvent.envelope)
                                      .where(OutboxEvent.event_type.like("Resource%"))
                                      .order_by(OutboxEvent.id))).all()
    return [(t, e) for t, e in rows if e["event"]["resource"]["id"] == resource_id]


async def _audit(client: Any, h: dict[str, str], resource_id: str) -> list[str]:
    r = await client.get("/audit/v1/auditRecord", params={"resourceType": "Resource", "resourceId": resource_id},
                         headers=h)
    assert r.status_code == 200, r.text
    return [x["action"] for x in r.json()]


async def test_a_recorded_resource_is_created_patched_and_deleted(rt: Any, client: Any, tenant: str) -> None:
    h = bearer(tenant, "admin")
    r = await client.post(RESOURCE, json=ROUTER, headers=h)
    assert r.status_code == 201, r.text
    router = r.json()
    assert r.headers["Location"] == router["href"] and router["href"].endswith(f"/resource/{router['id']}")
    assert_tmf("TMF639", "PhysicalResource", router)
    assert router["serialNumber"] == "FOC2231X0AB" and router["@type"] == "PhysicalResource"
    assert await get(client, h, f"{RESOURCE}/{router['id']}") == router
    listed = await get(client, h, RESOURCE, category="router")
    assert [x["id"] for x in listed] == [router["id"]]
    licence = await client.post(RESOURCE, headers=h, json={"@type": "LogicalResource", "name": "Licence",
                                                           "value": "LIC-1"})
    assert licence.status_code == 201, licence.text
    assert [x["id"] for x in await get(client, h, RESOURCE, serialNumber="FOC2231X0AB")] == [router["id"]]
    assert [x["id"] for x in await get(client, h, RESOURCE, value="LIC-1")] == [licence.json()["id"]]
    assert await get(client, h, RESOURCE, serialNumber="LIC-1") == []

    # JSON merge patch (RFC 7386): set, replace, remove with null
    r = await client.patch(f"{RESOURCE}/{router['id']}", headers={**h, "Content-Type": "application/merge-patch+json"},
                           content=b'{"description": "spine", "resourceStatus": "suspended", "versionNumber": null}')
    assert r.status_code == 200, r.text
    patched = r.json()
    assert patched["description"] == "spine" and patched["resourceStatus"] == "suspended"
    assert "versionNumber" not in patched and patched["serialNumber"] == "FOC2231X0AB"
    assert await get(client, h, f"{RESOURCE}/{router['id']}") == patched

    r = await client.delete(f"{RESOURCE}/{router['id']}", headers=h)
    assert r.status_code == 204 and r.content == b""
    assert (await client.get(f"{RESOURCE}/{router['id']}", headers=h)).status_code == 404
    assert (await client.delete(f"{RESOURCE}/{router['id']}", headers=h)).status_code == 404

    assert await _audit(client, h, router["id"]) == ["create", "update", "delete"]
    events = await _events(rt, tenant, router["id"])
    assert [t for t, _ in events] == ["ResourceCreateEvent", "ResourceAttributeValueChangeEvent",
                                      "ResourceStateChangeEvent", "ResourceDeleteEvent"]
    for event_type, envelope in events:
        assert_tmf("TMF639", event_type, {k: v for k, v in envelope.items() if k in (
            "eventId", "eventTime", "eventType", "event")})
        assert envelope["eventType"] == event_type


@pytest.mark.parametrize(("body", "status", "words"), [
    ({"category": "router"}, 400, "name"),
    ({"name": "x", "@type": "Router"}, 400, "@schemaLocation"),
    ({"name": "x", "serialNumber": "S1"}, 400, "PhysicalResource"),
    ({"name": "x", "@type": "PhysicalResource", "value": "1"}, 400, "LogicalResource"),
    ({"name": "x", "resourceStatus": "broken"}, 400, "resourceStatus"),
    ({"name": "x", "colour": "red"}, 400, "colour"),
])
async def test_bad_resources_are_refused_naming_the_problem(client: Any, tenant: str, body: dict[str, Any],
                                                             status: int, words: str) -> None:
    h = bearer(tenant, "admin")
    r = await client.post(RESOURCE, json=body, headers=h)
    assert r.status_code == status and words in r.json()["message"], r.text
    assert await get(client, h, RESOURCE) == []


async def test_resource_writes_need_the_right_to_write_the_inventory(client: Any, tenant: str) -> None:
    h = bearer(tenant, "admin")
    router = (await client.post(RESOURCE, json=ROUTER, headers=h)).json()
    ok = {"@type": "PhysicalResource", "name": "Licence", "category": "licence"}
    assert (await client.post(RESOURCE, json=ok, headers=bearer(tenant, "customer", party="p1"))).status_code == 403
    assert (await client.post(RESOURCE, json=ok, headers=bearer(tenant, "csr_agent"))).status_code == 403
    assert (await client.post(RESOURCE, json=ok, headers=bearer(tenant, "network_ops"))).status_code == 201
    for role in ("customer", "csr_agent"):
        rh = bearer(tenant, role, party="p1" if role == "customer" else None)
        assert (await client.patch(f"{RESOURCE}/{router['id']}", json={"description": "x"},
                                   headers=rh)).status_code == 403, role
        assert (await client.delete(f"{RESOURCE}/{router['id']}", headers=rh)).status_code == 403, role
    extension = {"@type": "Licence", "@baseType": "Resource", "@schemaLocation": "https://example.com/licence.json",
                 "name": "BNG subscriber licence", "category": "licence"}
    r = await client.post(RESOURCE, json=extension, headers=h)
    assert r.status_code == 201 and r.json()["@type"] == "Licence", r.text


async def test_pooled_resources_are_protected(rt: Any, client: Any) -> None:
    w = await setup_world(rt, client, numbers=20, sims=20)
    h = w["h"]
    c = await customer(client, h, 3)
    order = (await client.post(PO, json=mobile_order(c, w["offers"]["Mobile M"]), headers=h)).json()
    await run(rt, w["tenant"])
    order = await get(client, h, f"{PO}/{order['id']}")
    progress = await get(client, h, f"{PO}/{order['id']}/progress")
    assert order["state"] == "completed", [s for s in progress["productOrderItem"][0]["steps"] if s.get("error")]
    product = await get(client, h, f"{PRODUCT}/{order['productOrderItem'][0]['product']['id']}")
    resources = [await get(client, h, f"{RESOURCE}/{ref['id']}") for ref in product["realizingResource"]]
    msisdn = next(x for x in resources if x["category"] == "msisdn")
    number = next(ch["value"] for ch in msisdn["resourceCharacteristic"] if ch["name"] == "value")
    url = f"{RESOURCE}/{msisdn['id']}"

    for change, named in [({"resourceStatus": "standby"}, "resourceStatus"),
                          ({"usageState": "idle"}, "usageState"),
                          ({"name": "MSISDN 33699999999"}, "name"),
                          ({"category": "router"}, "category"),
                          ({"resourceCharacteristic": [{"name": "value", "value": "33699999999"}]},
                           "resourceCharacteristic (value)")]:
        r = await client.patch(url, json=change, headers=h)
        assert r.status_code == 409, r.text
        err = r.json()
        assert err["code"] == "POOL_MANAGED" and named in err["message"] and number in err["message"], err
    r = await client.delete(url, headers=h)
    assert r.status_code == 409 and r.json()["code"] == "POOL_MANAGED" and "cannot be deleted" in r.json()["message"]
    assert await get(client, h, url) == msisdn  # nothing changed
    # what describes it can be edited
    r = await client.patch(url, json={"description": "VIP line", "note": [{"text": "port-in pending"}]}, headers=h)
    assert r.status_code == 200 and r.json()["description"] == "VIP line", r.text
    assert r.json()["resourceStatus"] == msisdn["resourceStatus"]

    # a number of the pool (allocated or still free) cannot be recorded by hand, nor taken by a recorded resource
    free = "33612000019"
    for value in (number, free):
        r = await client.post(RESOURCE, headers=h, json={
            "@type": "LogicalResource", "name": f"MSISDN {value}", "category": "msisdn", "value": value})
        assert r.status_code == 409 and r.json()["code"] == "POOL_MANAGED" and value in r.json()["message"], r.text
    own = (await client.post(RESOURCE, headers=h, json={"name": "Customer ONT", "category": "ont",
                                                        "resourceCharacteristic": [{"name": "value",
                                                                                    "value": "ALCL0000FFFF"}]}))
    assert own.status_code == 201, own.text  # an ONT the pools do not hold is a recorded resource
    r = await client.patch(f"{RESOURCE}/{own.json()['id']}", headers=h, json={
        "resourceCharacteristic": [{"name": "value", "value": "HWTC00000001"}]})  # an ONT of the pool
    assert r.status_code == 409 and r.json()["code"] == "POOL_MANAGED", r.text
    assert (await client.delete(f"{RESOURCE}/{own.json()['id']}", headers=h)).status_code == 204

    # the inventory's own changes still apply: suspending the product suspends its resources
    suspend = {**mobile_order(c, w["offers"]["Mobile M"]), "productOrderItem": [
        {"id": "1", "action": "modify", "product": {"id": product["id"], "status": "suspended"}}]}
    assert (await client.post(PO, json=suspend, headers=h)).status_code == 201
    await run(rt, w["tenant"])
    assert (await get(client, h, url))["resourceStatus"] == "suspended"
