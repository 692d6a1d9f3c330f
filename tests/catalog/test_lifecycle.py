"""Lifecycle, versions (new id per version, sold versions keep their content), deletion and orderability."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.catalog.helpers import EXT, TMF, active, create, recurring, usage_data
from tests.conftest import bearer, session_services


def _path(href: str) -> str:
    return href.replace("http://testserver", "")


async def test_full_lifecycle(client: Any, tenant: str) -> None:
    h = bearer(tenant, "catalog_manager")
    o = await create(client, h, "productOffering", {"name": "Plan"})
    url = f"{TMF}/productOffering/{o['id']}"
    # drafts change in place
    r = await client.patch(url, json={"description": "v1 draft"}, headers=h)
    assert r.status_code == 200 and r.json()["id"] == o["id"] and r.json()["version"] == "1.0"
    for status in ("In test", "In design", "In test", "Active", "Retired", "Obsolete"):
        r = await client.patch(url, json={"lifecycleStatus": status}, headers=h,)
        assert r.status_code == 200, (status, r.text)
        assert r.json()["lifecycleStatus"] == status
    r = await client.patch(url, json={"lifecycleStatus": "Active"}, headers=h)
    assert r.status_code == 409 and "allowed from Obsolete: none" in r.json()["message"]
    r = await client.patch(url, json={"description": "late change"}, headers=h)
    assert r.status_code == 409 and r.json()["code"] == "VERSION_FROZEN"


async def test_changing_an_active_price_creates_versions_and_sold_ones_keep_theirs(client: Any, tenant: str) -> None:
    h = bearer(tenant, "catalog_manager")
    fee = await active(client, h, "productOfferingPrice", recurring("Monthly", 20))
    data = await active(client, h, "productOfferingPrice", usage_data())
    offer = await active(client, h, "productOffering", {
        "name": "Plan", "productOfferingPrice": [{"id": fee["id"], "version": "1.0"}, {"id": data["id"]}]})
    bundle = await active(client, h, "productOffering", {"name": "Family", "isBundle": True,
                                                         "bundledProductOffering": [{"id": offer["id"]}]})
    draft_bundle = await create(client, h, "productOffering", {"name": "Family next", "isBundle": True,
                                                               "bundledProductOffering": [{"id": offer["id"]}]})
    # a product was sold with offer v1 / fee v1: it references these ids
    r = await client.patch(f"{TMF}/productOfferingPrice/{fee['id']}", json={"price": {"unit": "EUR", "value": 22}},
                           headers=h)
    assert r.status_code == 200, r.text
    fee2 = r.json()
    assert fee2["id"] != fee["id"] and fee2["version"] == "2.0" and fee2["lifecycleStatus"] == "Active"
    assert fee2["price"]["value"] == 22 and fee2["validFor"]["startDateTime"]
    old_fee = (await client.get(f"{TMF}/productOfferingPrice/{fee['id']}", headers=h)).json()
    assert old_fee["lifecycleStatus"] == "Retired" and old_fee["price"]["value"] == 20
    assert old_fee["validFor"]["endDateTime"] <= fee2["validFor"]["startDateTime"]
    # the offering got a new version pointing at the new price; the sold version is unchanged
    sold = (await client.get(f"{TMF}/productOffering/{offer['id']}", headers=h)).json()
    assert sold["lifecycleStatus"] == "Retired"
    assert sold["productOfferingPrice"][0]["id"] == fee["id"]
    versions = (await client.get(f"{EXT}/productOffering/{offer['id']}/versions", headers=h)).json()
    assert [v["version"] for v in versions] == ["1.0", "2.0"]
    offer2 = versions[1]
    assert offer2["lifecycleStatus"] == "Active" and offer2["name"] == "Plan"
    assert offer2["productOfferingPrice"][0] == {"id": fee2["id"], "href": fee2["href"], "version": "2.0"}
    assert offer2["productOfferingPrice"][1]["id"] == data["id"]
    # the Active bundle follows with a new version; the draft bundle is updated in place
    bundles = (await client.get(f"{EXT}/productOffering/{bundle['id']}/versions", headers=h)).json()
    assert [b["lifecycleStatus"] for b in bundles] == ["Retired", "Active"]
    assert bundles[1]["bundledProductOffering"][0]["id"] == offer2["id"]
    d = (await client.get(f"{TMF}/productOffering/{draft_bundle['id']}", headers=h)).json()
    assert d["bundledProductOffering"][0]["id"] == offer2["id"] and d["version"] == "1.0"
    # only the newest versions are orderable
    active_now = (await client.get(f"{TMF}/productOffering?lifecycleStatus=Active", headers=h)).json()
    assert {o["id"] for o in active_now} == {offer2["id"], bundles[1]["id"]}
    # retired versions are frozen
    r = await client.patch(f"{TMF}/productOfferingPrice/{fee['id']}", json={"name": "x"}, headers=h)
    assert r.status_code == 409 and r.json()["code"] == "VERSION_FROZEN"
    # a no-op patch of an Active version changes nothing
    r = await client.patch(f"{TMF}/productOfferingPrice/{fee2['id']}", json={"name": fee2["name"]}, headers=h)
    assert r.status_code == 200 and r.json()["id"] == fee2["id"] and r.json()["version"] == "2.0"


async def test_draft_version_replaces_active_on_activation(client: Any, tenant: str) -> None:
    h = bearer(tenant, "catalog_manager")
    v1 = await active(client, h, "productOffering", {"name": "Plan", "description": "v1"})
    r = await client.patch(f"{TMF}/productOffering/{v1['id']}", headers=h,
                           json={"description": "v2", "lifecycleStatus": "In design", "version": "2026.1"})
    assert r.status_code == 200, r.text
    v2 = r.json()
    assert v2["id"] != v1["id"] and v2["lifecycleStatus"] == "In design" and v2["version"] == "2026.1"
    assert (await client.get(f"{TMF}/productOffering/{v1['id']}", headers=h)).json()["lifecycleStatus"] == "Active"
    await client.patch(f"{TMF}/productOffering/{v2['id']}", json={"lifecycleStatus": "In test"}, headers=h)
    r = await client.patch(f"{TMF}/productOffering/{v2['id']}", json={"lifecycleStatus": "Active"}, headers=h)
    assert r.status_code == 200
    assert (await client.get(f"{TMF}/productOffering/{v1['id']}", headers=h)).json()["lifecycleStatus"] == "Retired"
    r = await client.patch(f"{TMF}/productOffering/{v2['id']}", headers=h,
                           json={"description": "v3", "lifecycleStatus": "Retired"})
    assert r.status_code == 409 and "new version" in r.json()["message"]


async def _sell(services: Any, rt: Any, tenant: str, offer_id: str | None, price_id: str, n: int) -> list[str]:
    """``n`` live products in the inventory sold with the offering and its price (as an order records them)."""
    from openbss.platform.tmf.resource import system_context

    product: dict[str, Any] = {"name": "Plan", "productPrice": [
        {"name": "Monthly fee", "priceType": "recurring", "productOfferingPrice": {"id": price_id}}]}
    if offer_id:
        product["productOffering"] = {"id": offer_id, "name": "Plan"}
    async with rt.db.transaction(tenant) as session:
        ctx = system_context(tenant, session, "http://testserver")
        return [(await services.inventory.service.record_subscription(ctx, product, [], []))["id"]
                for _ in range(n)]


async def _terminate(services: Any, rt: Any, tenant: str, product_ids: list[str]) -> None:
    from openbss.platform.tmf.resource import system_context

    async with rt.db.transaction(tenant) as session:
        ctx = system_context(tenant, session, "http://testserver")
        for pid in product_ids:
            await services.inventory.service.set_product_status(ctx, pid, "terminated")


async def test_deletion_rules(client: Any, tenant: str, rt: Any, services: Any) -> None:
    """What was sold cannot be deleted while a live product uses it (the product inventory answers)."""
    h = bearer(tenant, "catalog_manager")
    fee = await active(client, h, "productOfferingPrice", recurring())
    offer = await active(client, h, "productOffering", {"name": "Plan", "productOfferingPrice": [{"id": fee["id"]}]})
    r = await client.delete(f"{TMF}/productOffering/{offer['id']}", headers=h)
    assert r.status_code == 409 and r.json()["code"] == "RETIRE_FIRST"
    r = await client.patch(f"{TMF}/productOffering/{offer['id']}", json={"lifecycleStatus": "Retired"}, headers=h)
    assert r.status_code == 200
    sold = await _sell(services, rt, tenant, offer["id"], fee["id"], 3)
    r = await client.delete(f"{TMF}/productOffering/{offer['id']}", headers=h)
    assert r.status_code == 409 and r.json()["code"] == "IN_USE"
    assert "3 live product(s)" in r.json()["message"] and "only retired" in r.json()["message"]
    await _terminate(services, rt, tenant, sold[:2])
    r = await client.delete(f"{TMF}/productOffering/{offer['id']}", headers=h)
    assert r.status_code == 409 and "1 live product(s)" in r.json()["message"]
    await _terminate(services, rt, tenant, sold[2:])
    # the price is used by the (retired) offering
    await client.patch(f"{TMF}/productOfferingPrice/{fee['id']}", json={"lifecycleStatus": "Retired"}, headers=h)
    r = await client.delete(f"{TMF}/productOfferingPrice/{fee['id']}", headers=h)
    assert r.status_code == 409 and "used by ProductOffering 'Plan'" in r.json()["message"]
    # no live product any more: the retired offering can go, then its price
    assert (await client.delete(f"{TMF}/productOffering/{offer['id']}", headers=h)).status_code == 204
    # a live product still charged with the price: the price stays
    still = await _sell(services, rt, tenant, None, fee["id"], 1)
    r = await client.delete(f"{TMF}/productOfferingPrice/{fee['id']}", headers=h)
    assert r.status_code == 409 and "1 live product(s) use ProductOfferingPrice" in r.json()["message"]
    await _terminate(services, rt, tenant, still)
    assert (await client.delete(f"{TMF}/productOfferingPrice/{fee['id']}", headers=h)).status_code == 204
    assert (await client.get(f"{TMF}/productOffering/{offer['id']}", headers=h)).status_code == 404
    draft = await create(client, h, "productOffering", {"name": "Never sold"})
    assert (await client.delete(f"{TMF}/productOffering/{draft['id']}", headers=h)).status_code == 204


async def test_orderability_and_eligibility(client: Any, tenant: str) -> None:
    h = bearer(tenant, "catalog_manager")
    now = datetime.now(UTC)
    iso = lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    consumer = await active(client, h, "productOffering", {
        "name": "Consumer plan", "marketSegment": [{"id": "consumer"}], "channel": [{"id": "web"}, {"id": "retail"}],
        "validFor": {"startDateTime": iso(now - timedelta(days=1)), "endDateTime": iso(now + timedelta(days=30))}})
    future = await active(client, h, "productOffering", {
        "name": "Next year plan", "validFor": {"startDateTime": iso(now + timedelta(days=365))}})
    open_offer = await active(client, h, "productOffering", {"name": "Everyone"})
    draft = await create(client, h, "productOffering", {"name": "Draft"})
    hidden = await active(client, h, "productOffering", {"name": "Only in bundles", "isSellable": False})

    async def check(oid: str, **params: str) -> dict[str, Any]:
        r = await client.get(f"{EXT}/productOffering/{oid}/orderability", params=params, headers=h)
        assert r.status_code == 200, r.text
        return dict(r.json())

    assert (await check(consumer["id"], channel="web", marketSegment="consumer"))["orderable"] is True
    res = await check(consumer["id"], channel="b2bSales", marketSegment="enterprise")
    assert res["orderable"] is False and len(res["reason"]) == 2
    assert "sales channel 'b2bSales'" in res["reason"][0] and "customer segment 'enterprise'" in res["reason"][1]
    assert (await check(consumer["id"], at=iso(now + timedelta(days=60))))["reason"][0].startswith("no longer valid")
    assert (await check(future["id"]))["reason"][0].startswith("not valid before")
    assert "only Active" in (await check(draft["id"]))["reason"][0]
    assert "not sellable on its own" in (await check(hidden["id"]))["reason"][0]
    assert (await check(open_offer["id"], channel="anything", marketSegment="any"))["orderable"] is True
    r = await client.get(f"{EXT}/orderableOffering", params={"channel": "web", "marketSegment": "consumer"}, headers=h)
    assert {o["name"] for o in r.json()} == {"Consumer plan", "Everyone"}
    assert r.headers["X-Total-Count"] == "2"
    r = await client.get(f"{EXT}/orderableOffering", params={"channel": "b2bSales"}, headers=h)
    assert {o["name"] for o in r.json()} == {"Everyone"}
    r = await client.get(f"{EXT}/orderableOffering", params={"at": iso(now + timedelta(days=400))}, headers=h)
    assert {o["name"] for o in r.json()} == {"Everyone", "Next year plan"}
    # the named action ordering calls
    from openbss.catalog.errors import NotOrderable
    product_catalog = session_services().catalog.service
    from openbss.platform.auth import Principal, permissions_for
    from openbss.platform.tmf.resource import Context

    rt = client._transport.app.state.runtime
    principal = Principal("t", tenant, ("admin",), permissions=permissions_for(("admin",)))
    async with rt.db.transaction(tenant) as session:
        ctx = Context(principal=principal, session=session, base_url="http://testserver")
        got = await product_catalog.check_orderable(ctx, consumer["id"], channel="web", market_segment="consumer")
        assert got["id"] == consumer["id"]
        try:
            await product_catalog.check_orderable(ctx, draft["id"])
            raise AssertionError("a draft is not orderable")
        except NotOrderable as exc:
            assert exc.status == 409 and "In design" in exc.message


async def test_retired_bundle_member_blocks_bundle_orders(client: Any, tenant: str) -> None:
    h = bearer(tenant, "catalog_manager")
    line = await active(client, h, "productOffering", {"name": "Line", "isSellable": False})
    bundle = await active(client, h, "productOffering", {
        "name": "Pack", "isBundle": True, "bundledProductOffering": [
            {"id": line["id"], "bundledProductOfferingOption": {"numberRelOfferLowerLimit": 2,
                                                                "numberRelOfferUpperLimit": 5}}]})
    await client.patch(f"{TMF}/productOffering/{line['id']}", json={"lifecycleStatus": "Retired"}, headers=h)
    r = await client.get(f"{EXT}/productOffering/{bundle['id']}/orderability", headers=h)
    assert r.json()["orderable"] is False and "'Line' is not Active" in r.json()["reason"][0]
