"""The demo's portal lines are recorded the way an order's add item leaves a product: offering, prices (with
their alterations) and billing account, as the specifications type them; the charging buckets of a line name the
owner's kind (an organization is no Individual) and the party account that balance actions must name."""

from __future__ import annotations

from typing import Any

from tests.charging.helpers import TMF654
from tests.conftest import bearer, make_tenant, session_services
from tests.ordering.helpers import PRODUCT, assert_tmf, get

OFFERING = "/tmf-api/productCatalogManagement/v4/productOffering"


async def test_seeded_lines_carry_what_an_order_gives_them(rt: Any, client: Any) -> None:
    from openbss.demo.charging import seed_charging
    from openbss.demo.selfcare import CORPORATE_LINE, seed_corporate_line, seed_selfcare

    services = session_services()
    tenant = await make_tenant(rt, "lines")
    owners = await seed_selfcare(services, rt.db, tenant, "http://testserver")
    await seed_charging(services, rt.db, tenant, "http://testserver", owners=owners)
    await seed_corporate_line(services, rt.db, tenant, "http://testserver", owners[CORPORATE_LINE])
    h = bearer(tenant, "admin")

    products = await get(client, h, PRODUCT)
    assert len(products) == len(owners) == 3
    for product in products:
        assert_tmf("TMF637", "Product", product)
        offering = await get(client, h, f"{OFFERING}/{product['productOffering']['id']}")
        assert product["productOffering"]["name"] == offering["name"] == product["name"]
        sold = {p["id"] for p in offering.get("productOfferingPrice") or []}
        priced = {p["productOfferingPrice"]["id"] for p in product["productPrice"]}
        assert priced and priced <= sold, (product["name"], priced, sold)
        for price in product["productPrice"]:
            assert price["priceType"] in ("oneTime", "recurring")
            assert price["price"]["dutyFreeAmount"]["unit"] == "EUR"
        owner = next(o for o in owners.values() if o["product_id"] == product["id"])
        assert product["billingAccount"]["id"] == owner["billing_account_id"]
        kinds = {p["role"]: p["@referredType"] for p in product["relatedParty"]}
        assert kinds == {"customer": "Customer", "owner": owner["party_type"]}

    for msisdn, owner in owners.items():
        buckets = (await client.get(f"{TMF654}/bucket", params={"logicalResource.id": msisdn.lstrip("+")},
                                    headers=h)).json()
        assert buckets, msisdn
        for bucket in buckets:
            assert bucket["relatedParty"] == [{"id": owner["party_id"], "role": "customer",
                                               "@referredType": owner["party_type"]}], (msisdn, bucket)
            assert bucket["partyAccount"] == {"id": owner["billing_account_id"], "@referredType": "BillingAccount"}
            assert bucket["product"] == [{"id": owner["product_id"], "@referredType": "Product"}]
    assert owners[CORPORATE_LINE]["party_type"] == "Organization"
