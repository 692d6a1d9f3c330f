"""TMF620 lets a productOfferingPrice be created with only its ``name`` (``ProductOfferingPrice_Create`` requires
nothing else): what a price lacks is checked when the price is used (a cart or an order prices it, charging rates
with it), with a 422 naming the price and what it lacks, and nothing written."""

from __future__ import annotations

from typing import Any

import pytest

from tests.catalog.helpers import TMF, activate, assert_tmf620, create, money, recurring
from tests.conftest import bearer, session_services
from tests.customer.helpers import make_billing_account, make_customer, make_individual

CART = "/tmf-api/shoppingCart/v4/shoppingCart"
PO = "/tmf-api/productOrderingManagement/v4/productOrder"


async def test_a_price_is_created_with_only_its_name(client: Any, tenant: str) -> None:
    h = bearer(tenant, "catalog_manager")
    r = await client.post(f"{TMF}/productOfferingPrice", json={"name": "To be priced"}, headers=h)
    assert r.status_code == 201, r.text
    pop = r.json()
    assert_tmf620("ProductOfferingPrice", pop)
    assert pop["name"] == "To be priced" and pop["lifecycleStatus"] == "In design"
    assert "priceType" not in pop and "price" not in pop
    r = await client.get(f"{TMF}/productOfferingPrice/{pop['id']}", headers=h)
    assert r.status_code == 200 and r.json()["name"] == "To be priced"
    # partial prices too: a type without an amount, an amount without its currency, a usage price without its unit
    for body in ({"name": "a", "priceType": "recurring"}, {"name": "b", "price": {"value": 10}},
                 {"name": "c", "priceType": "usage", "price": money(1)},
                 {"name": "d", "priceType": "discount"}):
        r = await client.post(f"{TMF}/productOfferingPrice", json=body, headers=h)
        assert r.status_code == 201, (body, r.text)
        assert_tmf620("ProductOfferingPrice", r.json())
    # completing it later: the type's defaults are filled in then
    r = await client.patch(f"{TMF}/productOfferingPrice/{pop['id']}", headers=h,
                           json={"priceType": "recurring", "price": money("9.99")})
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["recurringChargePeriodType"] == "month" and done["billingTiming"] == "inAdvance"
    assert done["tax"] == [{"taxCategory": "standard"}]


@pytest.mark.parametrize(("body", "words"), [
    ({"name": "p", "price": money(5, "XYZ")}, "ISO 4217"),
    ({"name": "p", "price": money(-1)}, "negative"),
    ({"name": "p", "priceType": "monthly"}, "not a price type"),
    ({"name": "p", "priceType": "recurring", "recurringChargePeriodType": "fortnight"}, "fortnight"),
    ({"name": "p", "priceType": "usage", "unitOfMeasure": {"amount": 1, "units": "parsec"}}, "unknown unit"),
    ({"name": "p", "priceType": "oneTime", "priceTier": [{"fromQuantity": 0, "unitPrice": 1}]}, "only to usage"),
    ({"name": "d", "priceType": "discount", "percentage": 10, "price": money(5)}, "either a percentage"),
])
async def test_what_a_price_has_is_still_checked_at_creation(client: Any, tenant: str, body: dict[str, Any],
                                                             words: str) -> None:
    r = await client.post(f"{TMF}/productOfferingPrice", json=body, headers=bearer(tenant, "catalog_manager"))
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "INVALID_PRICE" and words in r.json()["message"], r.text


async def _offering_with(client: Any, h: dict[str, str], price: dict[str, Any]) -> dict[str, Any]:
    good = await create(client, h, "productOfferingPrice", recurring("Monthly", "20"))
    await activate(client, h, "productOfferingPrice", good["id"])
    await activate(client, h, "productOfferingPrice", price["id"])
    offering = await create(client, h, "productOffering", {
        "name": "Half priced", "productOfferingPrice": [{"id": good["id"]}, {"id": price["id"]}]})
    return await activate(client, h, "productOffering", offering["id"])


async def test_ordering_an_offering_with_an_incomplete_price_is_refused_naming_it(client: Any,
                                                                                  tenant: str) -> None:
    h = bearer(tenant, "admin")
    price = await create(client, h, "productOfferingPrice", {"name": "Setup fee", "priceType": "oneTime"})
    offering = await _offering_with(client, h, price)
    party = await make_individual(client, h, given="Ada", family="Byron", email="ada.byron@example.com",
                                  ident="P7654321")
    customer = await make_customer(client, h, party)
    account = await make_billing_account(client, h, customer, state="active")
    rp = [{"id": customer["id"], "@referredType": "Customer", "role": "customer"}]

    r = await client.post(CART, headers=h, json={"relatedParty": rp, "cartItem": [
        {"id": "1", "action": "add", "productOffering": {"id": offering["id"]}}]})
    assert r.status_code == 422, r.text
    err = r.json()
    assert err["code"] == "PRICE_INCOMPLETE" and err["status"] == "422", err
    assert price["id"] in err["message"] and "Setup fee" in err["message"] and "'price'" in err["message"]
    assert (await client.get(CART, headers=h)).json() == []

    order = {"billingAccount": {"id": account["id"]}, "relatedParty": rp,
             "productOrderItem": [{"id": "1", "action": "add", "productOffering": {"id": offering["id"]}}]}
    r = await client.post(PO, headers=h, json=order)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "PRICE_INCOMPLETE" and price["id"] in r.json()["message"]
    assert (await client.get(PO, headers=h)).json() == []

    # completed (an Active price changes by a new version, which the offering follows): the cart prices it
    r = await client.patch(f"{TMF}/productOfferingPrice/{price['id']}", headers=h, json={"price": money("49")})
    assert r.status_code == 200, r.text
    current = (await client.get(f"{TMF}/productOffering", headers=h,
                                params={"name": "Half priced", "lifecycleStatus": "Active"})).json()
    assert len(current) == 1
    r = await client.post(CART, headers=h, json={"relatedParty": rp, "cartItem": [
        {"id": "1", "action": "add", "productOffering": {"id": current[0]["id"]}}]})
    assert r.status_code == 201, r.text
    totals = {t["priceType"]: t["price"]["dutyFreeAmount"]["value"] for t in r.json()["cartTotalPrice"]}
    assert totals == {"oneTime": 49, "recurring": 20}


async def test_charging_refuses_to_rate_with_an_incomplete_usage_price(rt: Any, client: Any, tenant: str) -> None:
    from openbss.catalog.errors import PriceNotUsable
    from openbss.charging import service

    h = bearer(tenant, "admin")
    # a usage price without its unit of measure: rating cannot tell what the amount is per
    price = await create(client, h, "productOfferingPrice", {"name": "Data", "priceType": "usage",
                                                             "usageType": "data", "price": money("0.01")})
    offering = await _offering_with(client, h, price)
    async with rt.db.transaction(tenant) as session:
        ctx = service.system_context(session, tenant, "http://testserver")
        with pytest.raises(PriceNotUsable) as caught:
            await session_services().charging.service.compile_plan(ctx, offering["id"])
    assert caught.value.status == 422 and "unitOfMeasure.units" in caught.value.message
    assert price["id"] in caught.value.message
