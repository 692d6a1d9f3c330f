"""Bad input is refused with a 4xx naming the problem."""

from __future__ import annotations

from typing import Any

import pytest

from tests.catalog.helpers import EXT, TMF, active, create, money, recurring, usage_data
from tests.conftest import bearer, session_services


async def _post(client: Any, tenant: str, path: str, body: dict[str, Any]) -> Any:
    return await client.post(f"{TMF}/{path}", json=body, headers=bearer(tenant, "catalog_manager"))


@pytest.mark.parametrize(("body", "code", "words"), [
    ({"name": "p", "priceType": "recurring", "price": {"unit": "XYZ", "value": 10}}, "INVALID_PRICE", "ISO 4217"),
    ({"name": "p", "priceType": "oneTime", "price": money(-5)}, "INVALID_PRICE", "negative"),
    ({"name": "p", "price": money(5, "XYZ")}, "INVALID_PRICE", "ISO 4217"),
    ({"name": "p", "priceType": "monthly", "price": money(5)}, "INVALID_PRICE", "not a price type"),
    ({"name": "p", "priceType": "recurring", "price": money(5), "recurringChargePeriodType": "fortnight"},
     "INVALID_PRICE", "recurringChargePeriodType"),
    ({"name": "p", "priceType": "recurring", "price": money(5), "billingTiming": "sometimes"},
     "INVALID_REQUEST", "billingTiming"),
    ({"name": "p", "priceType": "oneTime", "price": money(5), "billingTiming": "inAdvance"},
     "INVALID_PRICE", "only to recurring"),
    ({"name": "p", "priceType": "usage", "price": money(1), "unitOfMeasure": {"amount": 1, "units": "parsec"}},
     "INVALID_PRICE", "unknown unit"),
    ({"name": "p", "priceType": "usage", "price": {"unit": "EUR"}, "unitOfMeasure": {"amount": 1, "units": "MB"},
      "priceTier": [{"fromQuantity": 0, "toQuantity": 100, "unitPrice": 1},
                    {"fromQuantity": 150, "unitPrice": 0.5}]}, "INVALID_PRICE_TIERS", "priceTier[1]"),
    ({"name": "p", "priceType": "usage", "price": {"unit": "EUR"}, "unitOfMeasure": {"amount": 1, "units": "MB"},
      "priceTier": [{"fromQuantity": 0, "toQuantity": 100, "unitPrice": 1},
                    {"fromQuantity": 50, "unitPrice": 0.5}]}, "INVALID_PRICE_TIERS", "overlap"),
    ({"name": "p", "priceType": "usage", "price": {"unit": "EUR"}, "unitOfMeasure": {"amount": 1, "units": "MB"},
      "priceTier": [{"fromQuantity": 0, "toQuantity": 100, "unitPrice": 1}]}, "INVALID_PRICE_TIERS",
     "open-ended"),
    ({"name": "p", "priceType": "usage", "price": {"unit": "EUR"}, "unitOfMeasure": {"amount": 1, "units": "MB"},
      "priceTier": [{"fromQuantity": 10, "unitPrice": 1}]}, "INVALID_PRICE_TIERS", "start at 0"),
    ({"name": "p", "priceType": "usage", "price": {"unit": "EUR"}, "unitOfMeasure": {"amount": 1, "units": "MB"},
      "priceTier": [{"fromQuantity": 0, "unitPrice": -1}]}, "INVALID_PRICE_TIERS", "negative"),
    ({**usage_data(), "allowance": [{"quantity": {"amount": 100, "units": "minute"}}]}, "INVALID_PRICE",
     "cannot measure usage in MB"),
    ({**usage_data(), "allowance": [{"unlimited": True, "quantity": {"amount": 1, "units": "GB"}}]},
     "INVALID_PRICE", "either a quantity or unlimited"),
    ({"name": "d", "priceType": "discount", "percentage": 150}, "INVALID_PRICE", "percentage"),
    ({"name": "d", "priceType": "discount", "percentage": 10, "price": money(5)}, "INVALID_PRICE",
     "either a percentage or an amount"),
    ({"name": "d", "priceType": "discount", "percentage": 10, "applicationDuration": {"amount": 0, "units": "month"}},
     "INVALID_PRICE", "applicationDuration"),
    ({**recurring(), "tax": [{"taxRate": 20}]}, "INVALID_PRICE", "taxCategory"),
    ({**recurring(), "validFor": {"startDateTime": "2026-02-01T00:00:00Z", "endDateTime": "2026-01-01T00:00:00Z"}},
     "INVALID_VALID_FOR", "endDateTime"),
    ({**recurring(), "price": {"unit": "EUR", "value": True}}, "INVALID_REQUEST", "price.value"),
    ({**recurring(), "tariff": {"id": "nope"}}, "INVALID_PRICE", "only to usage"),
    ({**recurring(), "ratingBlock": {"initial": {"amount": 1, "units": "MB"}}}, "INVALID_PRICE", "only to usage"),
    ({**usage_data(), "ratingBlock": {"initial": {"amount": 1, "units": "minute"}}}, "INVALID_PRICE",
     "'ratingBlock.initial.units': minute cannot measure usage in MB"),
    ({**usage_data(), "ratingBlock": {"initial": {"amount": 1, "units": "MB"},
                                      "subsequent": {"amount": 0.5, "units": "B"}}}, "INVALID_PRICE",
     "'ratingBlock.subsequent': 0.5 B is not a whole number of B"),
    ({**usage_data(), "rounding": {"method": "sideways", "decimals": 2}}, "INVALID_REQUEST", "rounding.method"),
    ({**usage_data(), "quotaPolicy": {"defaultQuota": {"amount": 5, "units": "minute"}}}, "INVALID_PRICE",
     "'quotaPolicy.defaultQuota.units': minute cannot measure usage in MB"),
    ({**usage_data(), "quotaPolicy": {"validityTime": 0}}, "INVALID_REQUEST", "quotaPolicy.validityTime"),
    ({**recurring(), "quotaPolicy": {"validityTime": 60}}, "INVALID_PRICE", "only to usage"),
    ({**usage_data(), "maximumCharge": money("5", "USD")}, "INVALID_PRICE",
     "'maximumCharge.unit': USD is not the price's currency EUR"),
    ({**usage_data(), "maximumRate": money("-1")}, "INVALID_PRICE", "'maximumRate.value'"),
    ({**usage_data(), "allowance": [{"quantity": {"amount": 1, "units": "GB"}, "timeBand": ["offPeak"]}]},
     "INVALID_PRICE", "'allowance[0].timeBand': time bands come from a tariff"),
    ({**usage_data(), "rounding": {"method": "up", "decimals": 12}}, "INVALID_REQUEST", "rounding.decimals"),
    ({**usage_data(), "tariff": {"id": "nope"}}, "UNKNOWN_REFERENCE", "Tariff 'nope' not found"),
    ({**recurring(), "chargeModel": {"model": "perUnit", "unitPrice": 1}}, "INVALID_PRICE", "only to usage"),
    ({**usage_data(), "chargeModel": {"model": "package", "packageSize": 0, "packagePrice": 5}}, "INVALID_PRICE",
     "'chargeModel.packageSize': 0"),
    ({**usage_data(), "chargeModel": {"model": "package", "packagePrice": 5}}, "INVALID_PRICE",
     "'chargeModel.packageSize': the package model needs it"),
    ({**usage_data(), "chargeModel": {"model": "volume", "tiers": [
        {"fromQuantity": 0, "toQuantity": 10, "unitPrice": 1}, {"fromQuantity": 12, "unitPrice": 1}]}},
     "INVALID_PRICE", "'chargeModel.tiers[1]': tier 1 starts at 12"),
    ({**usage_data(), "chargeModel": {"model": "perUnit", "unitPrice": 1, "fixedFee": 2}}, "INVALID_PRICE",
     "'chargeModel.fixedFee': does not apply to the perUnit model"),
    ({**usage_data(), "chargeModel": {"model": "percentage", "percentage": 120}}, "INVALID_PRICE",
     "'chargeModel.percentage': 120"),
    ({**usage_data(), "chargeModel": {"model": "stairs"}}, "INVALID_REQUEST", "chargeModel.model"),
])
async def test_bad_prices(client: Any, tenant: str, body: dict[str, Any], code: str, words: str) -> None:
    r = await _post(client, tenant, "productOfferingPrice", body)
    assert r.status_code == 400, r.text
    err = r.json()
    assert err["code"] == code and words in err["message"], err
    assert err["@type"] == "Error" and err["status"] == "400"


async def test_bundles(client: Any, tenant: str) -> None:
    h = bearer(tenant, "catalog_manager")
    a = await create(client, h, "productOffering", {"name": "A"})
    b = await create(client, h, "productOffering", {"name": "B", "isBundle": True,
                                                    "bundledProductOffering": [{"id": a["id"]}]})
    # a bundle that contains itself
    r = await client.patch(f"{TMF}/productOffering/{b['id']}", headers=h, json={
        "bundledProductOffering": [{"id": a["id"]}, {"id": b["id"]}]})
    assert r.status_code == 400 and r.json()["code"] == "INVALID_BUNDLE" and "itself" in r.json()["message"]
    # ... or through another bundle (cycle)
    c = await create(client, h, "productOffering", {"name": "C", "isBundle": True,
                                                    "bundledProductOffering": [{"id": b["id"]}]})
    r = await client.patch(f"{TMF}/productOffering/{b['id']}", headers=h, json={
        "bundledProductOffering": [{"id": c["id"]}]})
    assert r.status_code == 400 and "cycle" in r.json()["message"], r.text
    for body, words in [
        ({"name": "X", "bundledProductOffering": [{"id": a["id"]}]}, "isBundle"),
        ({"name": "X", "isBundle": True}, "at least one"),
        ({"name": "X", "isBundle": True, "bundledProductOffering": [{"id": a["id"]}, {"id": a["id"]}]}, "twice"),
        ({"name": "X", "isBundle": True, "bundledProductOffering": [{"id": a["id"], "bundledProductOfferingOption": {
            "numberRelOfferLowerLimit": 5, "numberRelOfferUpperLimit": 2}}]}, "exceeds upper limit"),
        ({"name": "X", "isBundle": True, "bundledProductOffering": [{"id": a["id"], "bundledProductOfferingOption": {
            "numberRelOfferLowerLimit": 1, "numberRelOfferUpperLimit": 2, "numberRelOfferDefault": 3}}]}, "outside"),
    ]:
        r = await client.post(f"{TMF}/productOffering", json=body, headers=h)
        assert r.status_code == 400 and r.json()["code"] == "INVALID_BUNDLE" and words in r.json()["message"], r.text
    r = await client.post(f"{TMF}/productOffering", headers=h, json={
        "name": "X", "isBundle": True, "bundledProductOffering": [{"id": "missing"}]})
    assert r.status_code == 400 and "ProductOffering 'missing' not found" in r.json()["message"]


async def test_characteristics(client: Any, tenant: str) -> None:
    h = bearer(tenant, "catalog_manager")
    spec = await create(client, h, "productSpecification", {"name": "Fiber", "productSpecCharacteristic": [
        {"name": "speed", "valueType": "integer", "productSpecCharacteristicValue": [{"value": 300}, {"value": 1000}]},
        {"name": "ipCount", "valueType": "integer",
         "productSpecCharacteristicValue": [{"valueFrom": 1, "valueTo": 8, "rangeInterval": "closed"}]}]})
    ok = await client.post(f"{TMF}/productOffering", headers=h, json={
        "name": "Fiber 1G", "productSpecification": {"id": spec["id"]},
        "prodSpecCharValueUse": [{"name": "speed", "productSpecCharacteristicValue": [{"value": 1000}]},
                                 {"name": "ipCount", "productSpecCharacteristicValue": [{"value": 8}]}]})
    assert ok.status_code == 201, ok.text
    for use, words in [
        ({"name": "speed", "productSpecCharacteristicValue": [{"value": 2000}]}, "not an allowed value"),
        ({"name": "colour", "productSpecCharacteristicValue": [{"value": "red"}]}, "not a characteristic"),
        ({"name": "ipCount", "productSpecCharacteristicValue": [{"value": 9}]}, "not an allowed value"),
        ({"name": "speed", "productSpecCharacteristicValue": [{"value": "fast"}]}, "not an allowed value"),
    ]:
        r = await client.post(f"{TMF}/productOffering", headers=h, json={
            "name": "Bad", "productSpecification": {"id": spec["id"]}, "prodSpecCharValueUse": [use]})
        assert r.status_code == 400 and r.json()["code"] == "INVALID_CHARACTERISTIC", r.text
        assert words in r.json()["message"] and use["name"] in r.json()["message"]
    for chars, words in [
        ([{"name": "a", "valueType": "string"}, {"name": "a", "valueType": "string"}], "defined twice"),
        ([{"name": "a", "valueType": "colour"}], "valueType"),
        ([{"name": "a", "valueType": "integer", "productSpecCharacteristicValue": [{"value": "x"}]}], "is not a"),
        ([{"name": "a", "valueType": "integer", "productSpecCharacteristicValue": [{"valueFrom": 5, "valueTo": 1}]}],
         "exceeds valueTo"),
    ]:
        r = await client.post(f"{TMF}/productSpecification", headers=h,
                              json={"name": "S", "productSpecCharacteristic": chars})
        assert r.status_code == 400 and words in r.json()["message"], r.text
    # characteristic values chosen when ordering (the service other domains call)
    from openbss.catalog.errors import InvalidCharacteristic
    product_catalog = session_services().catalog.service
    from openbss.platform.auth import Principal, permissions_for
    from openbss.platform.tmf.resource import Context

    principal = Principal("t", tenant, ("admin",), permissions=permissions_for(("admin",)))

    rt = client._transport.app.state.runtime
    async with rt.db.transaction(tenant) as session:
        ctx = Context(principal=principal, session=session, base_url="http://testserver")
        await product_catalog.check_characteristic_values(ctx, ok.json()["id"], [("speed", 1000), ("ipCount", 8)])
        for values in ([("speed", 300)], [("speed", 1234)], [("nope", 1)], [("ipCount", 4)]):
            with pytest.raises(InvalidCharacteristic):
                await product_catalog.check_characteristic_values(ctx, ok.json()["id"], values)


async def test_forbidden_transitions_and_statuses(client: Any, tenant: str) -> None:
    h = bearer(tenant, "catalog_manager")
    p = await create(client, h, "productOfferingPrice", recurring())
    r = await client.patch(f"{TMF}/productOfferingPrice/{p['id']}", json={"lifecycleStatus": "Active"}, headers=h)
    assert r.status_code == 409 and r.json()["code"] == "INVALID_LIFECYCLE_TRANSITION"
    assert "'In design' to 'Active'" in r.json()["message"] and "In test" in r.json()["message"]
    r = await client.patch(f"{TMF}/productOfferingPrice/{p['id']}", json={"lifecycleStatus": "Launched"}, headers=h)
    assert r.status_code == 400 and r.json()["code"] == "INVALID_LIFECYCLE_STATUS"
    r = await _post(client, tenant, "productOfferingPrice", {**recurring(), "lifecycleStatus": "Retired"})
    assert r.status_code == 409 and "not Retired" in r.json()["message"]
    # lowercase forms are accepted and stored canonically
    r = await client.patch(f"{TMF}/productOfferingPrice/{p['id']}", json={"lifecycleStatus": "in test"}, headers=h)
    assert r.status_code == 200 and r.json()["lifecycleStatus"] == "In test"
    a = await active(client, h, "productOfferingPrice", recurring("Other"))
    for bad in ("In design", "Obsolete"):
        r = await client.patch(f"{TMF}/productOfferingPrice/{a['id']}", json={"lifecycleStatus": bad}, headers=h)
        assert r.status_code == 409, r.text


async def test_unknown_references_and_body(client: Any, tenant: str) -> None:
    h = bearer(tenant, "catalog_manager")
    for path, body, words in [
        ("productOffering", {"name": "X", "productOfferingPrice": [{"id": "nope"}]},
         "'productOfferingPrice[0].id': ProductOfferingPrice 'nope' not found"),
        ("productOffering", {"name": "X", "productSpecification": {"id": "nope"}}, "ProductSpecification 'nope'"),
        ("productOffering", {"name": "X", "category": [{"id": "nope"}]}, "Category 'nope'"),
        ("productSpecification", {"name": "X", "serviceSpecification": [{"id": "nope"}]}, "ServiceSpecification"),
        ("category", {"name": "X", "parentId": "nope"}, "Category 'nope'"),
    ]:
        r = await _post(client, tenant, path, body)
        assert r.status_code == 400 and words in r.json()["message"], r.text
    r = await _post(client, tenant, "productOffering", {"description": "no name"})
    assert r.status_code == 400 and "'name' is mandatory" in r.json()["message"]
    r = await _post(client, tenant, "productOffering", {"name": "X", "colour": "red"})
    assert r.status_code == 400 and "colour" in r.json()["message"]
    # an Active offering uses only Active prices
    draft = await create(client, h, "productOfferingPrice", recurring())
    r = await _post(client, tenant, "productOffering", {"name": "X", "lifecycleStatus": "Active",
                                                        "productOfferingPrice": [{"id": draft["id"]}]})
    assert r.status_code == 400 and "is In design" in r.json()["message"]
    r = await client.get(f"{EXT}/tariff/nope/rate?destination=33612345678", headers=h)
    assert r.status_code == 404
