"""Export/import round trip into an empty tenant, failed imports, events in the outbox and hub notifications."""

from __future__ import annotations

import base64
import json
from typing import Any

from sqlalchemy import select

from tests.catalog.helpers import EXT, SSPEC, TMF, active, assert_tmf620, create, recurring
from tests.conftest import bearer

KINDS = [(f"{TMF}/catalog", "Catalog"), (f"{TMF}/category", "Category"),
         (f"{TMF}/productSpecification", "ProductSpecification"), (f"{TMF}/productOffering", "ProductOffering"),
         (f"{TMF}/productOfferingPrice", "ProductOfferingPrice"), (f"{EXT}/tariff", None), (SSPEC, None),
         ("/tmf-api/resourceCatalogManagement/v4/resourceSpecification", None)]
VOLATILE = {"id", "href", "lastUpdate"}


def _normalize(value: Any, names: dict[str, str]) -> Any:
    """A document with ids replaced by the names of what they refer to (ids differ between tenants)."""
    if isinstance(value, list):
        return [_normalize(v, names) for v in value]
    if isinstance(value, dict):
        out = {k: _normalize(v, names) for k, v in value.items() if k not in VOLATILE}
        if "id" in value:
            out["ref"] = names.get(value["id"], value["id"])
        if "parentId" in value:
            out["parentId"] = names.get(value["parentId"])
        return out
    return value


async def _snapshot(client: Any, headers: dict[str, str]) -> dict[str, Any]:
    docs: dict[str, list[dict[str, Any]]] = {}
    for url, _ in KINDS:
        r = await client.get(f"{url}?limit=1000", headers=headers)
        assert r.status_code == 200
        docs[url] = r.json()
    names = {d["id"]: f"{d['name']}@{d.get('version')}" for items in docs.values() for d in items}
    return {url: sorted((_normalize(d, names) for d in items), key=lambda d: json.dumps(d, sort_keys=True))
            for url, items in docs.items()}


async def test_export_import_round_trip(client: Any, demo_tenant: str, tenant: str) -> None:
    src, dst = bearer(demo_tenant, "catalog_manager"), bearer(tenant, "catalog_manager")
    # give the source a version history too
    fee = (await client.get(f"{TMF}/productOfferingPrice?name=Extra 5 GB", headers=src)).json()
    if fee and fee[0]["lifecycleStatus"] == "Active":
        r = await client.patch(f"{TMF}/productOfferingPrice/{fee[0]['id']}", headers=src,
                               json={"price": {"unit": "EUR", "value": 6}})
        assert r.status_code == 200
    job = await create(client, src, "exportJob", {})
    r = await client.get(job["url"].replace("http://testserver", ""), headers=src)
    assert r.status_code == 200 and r.json()["format"] == "openbss-catalog"
    content = r.content
    # the export job is the source tenant's: another tenant cannot read it
    assert (await client.get(job["url"].replace("http://testserver", ""), headers=dst)).status_code == 404
    url = "data:application/json;base64," + base64.b64encode(content).decode()
    imported = await create(client, dst, "importJob", {"url": url})
    assert imported["status"] == "Succeeded", imported.get("errorLog")
    assert_tmf620("ImportJob", imported)
    before, after = await _snapshot(client, src), await _snapshot(client, dst)
    for url_, _ in KINDS:
        assert after[url_] == before[url_], url_
    # imported references resolve inside the new tenant, and lineages survive
    offers = (await client.get(f"{TMF}/productOffering?name=Extra 5 GB&lifecycleStatus=Active", headers=dst)).json()
    assert len(offers) == 1
    assert all(p["href"].startswith("http://testserver/") for p in offers[0]["productOfferingPrice"])
    for p in offers[0]["productOfferingPrice"]:
        assert (await client.get(p["href"].replace("http://testserver", ""), headers=dst)).status_code == 200
    versions = (await client.get(f"{EXT}/productOffering/{offers[0]['id']}/versions", headers=dst)).json()
    assert len(versions) == 2


async def test_failed_import_changes_nothing(client: Any, tenant: str) -> None:
    h = bearer(tenant, "catalog_manager")
    bad = {"format": "openbss-catalog", "formatVersion": 1, "resources": {"productOffering": [
        {"document": {"id": "a", "name": "A", "lifecycleStatus": "In design", "version": "1.0"}},
        {"document": {"id": "b", "name": "B", "lifecycleStatus": "In design", "version": "1.0",
                      "productOfferingPrice": [{"id": "missing-price"}]}}]}}
    url = "data:application/json;base64," + base64.b64encode(json.dumps(bad).encode()).decode()
    job = await create(client, h, "importJob", {"url": url})
    assert job["status"] == "Failed" and "missing-price" in job["errorLog"] and "'B'" in job["errorLog"]
    assert (await client.get(f"{TMF}/productOffering", headers=h)).json() == []
    r = await client.post(f"{TMF}/importJob", json={"url": "https://example.com/catalog.json"}, headers=h)
    assert r.status_code == 400 and r.json()["code"] == "UNSUPPORTED_URL"
    r = await client.post(f"{TMF}/importJob", json={"url": "data:application/json;base64,@@@"}, headers=h)
    assert r.status_code == 400 and r.json()["code"] == "INVALID_URL"
    job = await create(client, h, "importJob", {"url": "data:application/json,%7B%22a%22%3A1%7D"})
    assert job["status"] == "Failed" and "not an openbss-catalog export" in job["errorLog"]


async def test_events_and_hub(client: Any, tenant: str, rt: Any, relay: Any) -> None:
    from openbss.platform.events.outbox import OutboxEvent
    from openbss.platform.tmf.hub import HubDelivery

    h = bearer(tenant, "catalog_manager")
    r = await client.post(f"{TMF}/hub", headers=h, json={
        "callback": "http://127.0.0.1:9/cb", "query": "eventType=ProductOfferingStateChangeEvent"})
    assert r.status_code == 201, r.text
    sub = r.json()
    fee = await active(client, h, "productOfferingPrice", recurring())
    offer = await active(client, h, "productOffering", {"name": "Plan", "productOfferingPrice": [{"id": fee["id"]}]})
    await client.patch(f"{TMF}/productOfferingPrice/{fee['id']}", json={"price": {"unit": "EUR", "value": 30}},
                       headers=h)
    async with rt.db.transaction(tenant) as session:
        events = (await session.execute(select(OutboxEvent.event_type, OutboxEvent.resource_id)
                                        .order_by(OutboxEvent.id))).all()
    kinds = [e for e, _ in events]
    assert kinds[:1] == ["ProductOfferingPriceCreateEvent"]
    assert ("ProductOfferingStateChangeEvent", offer["id"]) in events  # activation, then retirement
    assert kinds.count("ProductOfferingCreateEvent") == 2 and kinds.count("ProductOfferingPriceCreateEvent") == 2
    await relay()
    async with rt.db.transaction(tenant) as session:
        deliveries = (await session.execute(select(HubDelivery).where(HubDelivery.subscription_id == sub["id"])))
        rows = deliveries.scalars().all()
        assert rows and all(d.event_type == "ProductOfferingStateChangeEvent" for d in rows)
        assert all(d.url == "http://127.0.0.1:9/cb/listener/productOfferingStateChangeEvent" for d in rows)
        for d in rows:
            await session.delete(d)
    assert (await client.delete(f"{TMF}/hub/{sub['id']}", headers=h)).status_code == 204
    r = await client.post(f"{TMF}/hub", headers=h, json={"callback": "http://x/cb", "query": "eventType=Nope"})
    assert r.status_code == 400
    r = await client.post(f"{EXT}/hub", headers=h, json={"callback": "http://127.0.0.1:9/cb",
                                                         "query": "eventType=TariffCreateEvent"})
    assert r.status_code == 201
    await client.delete(f"{EXT}/hub/{r.json()['id']}", headers=h)
