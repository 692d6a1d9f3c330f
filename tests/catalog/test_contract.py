"""Every TMF620 resource, as created, read and listed, validates against the official TMF620 JSON schemas."""

from __future__ import annotations

from typing import Any

import pytest

from tests.catalog.helpers import (
    EXT,
    RSPEC,
    SSPEC,
    TMF,
    active,
    assert_tmf620,
    create,
    one_time,
    recurring,
    usage_data,
)
from tests.conftest import bearer

RESOURCES = {"catalog": "Catalog", "category": "Category", "productSpecification": "ProductSpecification",
             "productOffering": "ProductOffering", "productOfferingPrice": "ProductOfferingPrice",
             "importJob": "ImportJob", "exportJob": "ExportJob"}


async def test_created_resources_validate(client: Any, tenant: str) -> None:
    h = bearer(tenant, "catalog_manager")
    spec = await create(client, h, "productSpecification", {
        "name": "Mobile", "productSpecCharacteristic": [
            {"name": "simType", "valueType": "string",
             "productSpecCharacteristicValue": [{"value": "physical"}, {"value": "eSIM"}]}]})
    assert_tmf620("ProductSpecification", spec)
    assert spec["lifecycleStatus"] == "In design" and spec["version"] == "1.0" and spec["lastUpdate"]
    assert spec["href"].endswith(f"{TMF}/productSpecification/{spec['id']}")
    prices = [await active(client, h, "productOfferingPrice", p)
              for p in (recurring(), one_time(), usage_data(),
                        {"name": "Promo", "priceType": "discount", "percentage": 25,
                         "applicationDuration": {"amount": 3, "units": "month"}})]
    for p in prices:
        assert_tmf620("ProductOfferingPrice", p)
    cat = await create(client, h, "category", {"name": "Mobile", "isRoot": True})
    assert_tmf620("Category", cat)
    offer = await create(client, h, "productOffering", {
        "name": "Plan", "productSpecification": {"id": spec["id"]}, "category": [{"id": cat["id"]}],
        "productOfferingPrice": [{"id": p["id"]} for p in prices],
        "prodSpecCharValueUse": [{"name": "simType", "productSpecCharacteristicValue": [{"value": "eSIM"}]}]})
    assert_tmf620("ProductOffering", offer)
    r = await client.post(f"{TMF}/catalog", json={"name": "Main", "category": [{"id": cat["id"]}]}, headers=h)
    assert r.status_code == 201 and r.headers["location"] == r.json()["href"]
    assert_tmf620("Catalog", r.json())
    export = await create(client, h, "exportJob", {})
    assert_tmf620("ExportJob", export)
    assert export["status"] == "Succeeded" and export["url"].endswith(f"/exportJob/{export['id']}/content")
    for path, definition in RESOURCES.items():
        r = await client.get(f"{TMF}/{path}", headers=h)
        assert r.status_code == 200, r.text
        assert int(r.headers["X-Total-Count"]) >= (0 if path == "importJob" else 1)
        for item in r.json():
            assert_tmf620(definition, item)
            one = await client.get(item["href"].replace("http://testserver", ""), headers=h)
            assert one.status_code == 200
            assert_tmf620(definition, one.json())


@pytest.mark.parametrize(("path", "definition"), list(RESOURCES.items()))
async def test_demo_catalog_is_browsable_and_valid(client: Any, demo_tenant: str, path: str,
                                                   definition: str) -> None:
    h = bearer(demo_tenant, "csr_agent")
    r = await client.get(f"{TMF}/{path}?limit=1000", headers=h)
    assert r.status_code == 200, r.text
    if path not in ("importJob", "exportJob"):
        assert int(r.headers["X-Total-Count"]) > 0
    for item in r.json():
        assert_tmf620(definition, item)


async def test_demo_catalog_content(client: Any, demo_tenant: str) -> None:
    h = bearer(demo_tenant, "csr_agent")
    r = await client.get(f"{TMF}/productOffering?fields=name,isBundle&limit=100", headers=h)
    names = {o["name"] for o in r.json()}
    assert {"Prepaid S", "Mobile M", "Travel World roaming pass", "Fiber 1 Gbps", "Business Pro 10",
            "Extra 5 GB", "International 100"} <= names
    assert set(r.json()[0]) <= {"id", "href", "@type", "name", "isBundle"}
    bundle = (await client.get(f"{TMF}/productOffering?name=Business Pro 10", headers=h)).json()[0]
    lines = bundle["bundledProductOffering"][0]["bundledProductOfferingOption"]
    assert lines["numberRelOfferLowerLimit"] == 10 and lines["numberRelOfferUpperLimit"] == 10
    fiber = (await client.get(f"{TMF}/productOffering?name=Fiber 1 Gbps", headers=h)).json()[0]
    assert fiber["productOfferingTerm"][0]["duration"] == {"amount": 24, "units": "month"}
    fees = [(await client.get(p["href"].replace("http://testserver", ""), headers=h)).json()
            for p in fiber["productOfferingPrice"]]
    assert {"installation", "device"} <= {f.get("chargeCategory") for f in fees}
    data = (await client.get(f"{TMF}/productOfferingPrice?name=Mobile M data", headers=h)).json()[0]
    assert data["allowance"][0]["quantity"] == {"amount": 50, "units": "GB"}
    assert data["allowance"][0]["rollover"]["maxPeriods"] == 1 and data["tierType"] == "tiered"
    sms = (await client.get(f"{TMF}/productOfferingPrice?name=Mobile M SMS", headers=h)).json()[0]
    assert sms["allowance"][0]["unlimited"] is True
    tariffs = (await client.get(f"{EXT}/tariff", headers=h)).json()
    assert len(tariffs) == 1 and len(tariffs[0]["destinationZone"]) >= 200
    # filters and sort over the demo catalog
    r = await client.get(f"{TMF}/productOfferingPrice?priceType=oneTime&sort=name", headers=h)
    got = [p["name"] for p in r.json()]
    assert got == sorted(got) and "Fiber installation" in got
    r = await client.get(f"{TMF}/productOffering?marketSegment.id=enterprise", headers=h)
    assert {o["name"] for o in r.json()} == {"Business Pro 10", "Business mobile line", "Shared data pool 200 GB"}


async def test_service_and_resource_specifications(client: Any, demo_tenant: str) -> None:
    h = bearer(demo_tenant, "csr_agent")
    r = await client.get(f"{SSPEC}?@type=CustomerFacingServiceSpecification", headers=h)
    assert r.status_code == 200 and {s["name"] for s in r.json()} == {"Mobile voice and data", "Broadband internet"}
    r = await client.get(f"{RSPEC}?category=sim", headers=h)
    assert [s["name"] for s in r.json()] == ["SIM card"]
    mobile = (await client.get(f"{TMF}/productSpecification?name=Mobile line", headers=h)).json()[0]
    r = await client.get(f"{EXT}/productSpecification/{mobile['id']}/decomposition", headers=h)
    assert r.status_code == 200, r.text
    tree = r.json()
    cfs = tree["serviceSpecification"][0]
    assert cfs["name"] == "Mobile voice and data" and cfs["@type"] == "CustomerFacingServiceSpecification"
    assert {s["name"] for s in cfs["serviceSpecification"]} == {"HSS subscription", "PCRF policy"}
    hss = next(s for s in cfs["serviceSpecification"] if s["name"] == "HSS subscription")
    assert {x["name"] for x in hss["resourceSpecification"]} == {"MSISDN", "SIM card"}
    assert {x["name"] for x in tree["resourceSpecification"]} == {"MSISDN", "SIM card"}
    fiber = (await client.get(f"{TMF}/productSpecification?name=Fiber broadband", headers=h)).json()[0]
    tree = (await client.get(f"{EXT}/productSpecification/{fiber['id']}/decomposition", headers=h)).json()
    aaa = tree["serviceSpecification"][0]["serviceSpecification"][0]
    assert aaa["name"] == "AAA broadband profile"
    assert {x["name"] for x in aaa["resourceSpecification"]} == {"ONT", "Static IPv4 address"}


async def test_permissions(client: Any, demo_tenant: str) -> None:
    r = await client.post(f"{TMF}/category", json={"name": "X"}, headers=bearer(demo_tenant, "csr_agent"))
    assert r.status_code == 403 and "catalog:write" in r.json()["message"]
    customer = bearer(demo_tenant, "customer", party="p-1")
    assert (await client.get(f"{TMF}/productOffering", headers=customer)).status_code == 403
    r = await client.get(f"{EXT}/orderableOffering?channel=web&marketSegment=consumer", headers=customer)
    assert r.status_code == 200
    assert "Prepaid S" in {o["name"] for o in r.json()}


async def test_tenant_isolation(client: Any, demo_tenant: str, other_tenant: str) -> None:
    r = await client.get(f"{TMF}/productOffering", headers=bearer(other_tenant, "admin"))
    assert r.status_code == 200 and r.json() == []
