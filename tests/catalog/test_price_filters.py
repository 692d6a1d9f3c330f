"""Price extension attributes are filterable like the specification's."""

from __future__ import annotations

from typing import Any

from tests.conftest import bearer

BASE = "/tmf-api/productCatalogManagement/v4"


async def test_prices_filter_on_extension_attributes(client: Any, tenant: str) -> None:
    staff = bearer(tenant, "catalog_manager")
    data = {"name": "Data overage", "priceType": "usage", "usageType": "data", "unitOfMeasure": {"units": "GB",
            "amount": 1}, "price": {"unit": "EUR", "value": 2}}
    voice = {"name": "Voice", "priceType": "usage", "usageType": "voice", "unitOfMeasure": {"units": "min",
             "amount": 1}, "price": {"unit": "EUR", "value": 0.1}}
    for body in (data, voice):
        r = await client.post(f"{BASE}/productOfferingPrice", json=body, headers=staff)
        assert r.status_code == 201, r.text
    r = await client.get(f"{BASE}/productOfferingPrice?usageType=data", headers=staff)
    assert r.status_code == 200, r.text
    assert [p["name"] for p in r.json()] == ["Data overage"]
    bad = await client.get(f"{BASE}/productOfferingPrice?usageType.gt=x&bogus=1", headers=staff)
    assert bad.status_code == 400
