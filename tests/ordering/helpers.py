"""Shared helpers of the order-to-activate tests: a tenant with the demo catalog and resource pools, customers
with billing accounts, orders, and the orchestrator driven to completion."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from jsonschema import Draft4Validator

from tests.conftest import bearer, deliver_all, make_tenant, session_services
from tests.customer.helpers import make_billing_account, make_customer, make_individual

PO = "/tmf-api/productOrderingManagement/v4/productOrder"
CANCEL = "/tmf-api/productOrderingManagement/v4/cancelProductOrder"
CART = "/tmf-api/shoppingCart/v4/shoppingCart"
SO = "/tmf-api/serviceOrdering/v4/serviceOrder"
PRODUCT = "/tmf-api/productInventory/v4/product"
SERVICE = "/tmf-api/serviceInventory/v4/service"
RESOURCE = "/tmf-api/resourceInventoryManagement/v4/resource"
POOLS = "/api/inventory/v1"
NET = "/api/provisioning/v1"
OFFERING = "/tmf-api/productCatalogManagement/v4/productOffering"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "tmf"
SPECS = {"TMF622": "TMF622-ProductOrder-v4.0.0.swagger.json",
         "TMF663": "TMF663-ShoppingCart-v4.0.0.swagger.json",
         "TMF641": "TMF641-ServiceOrdering-v4.1.0.swagger.json",
         "TMF637": "TMF637-ProductInventory-v4.0.0.swagger.json",
         "TMF638": "TMF638-ServiceInventory-v4.0.0.swagger.json",
         "TMF639": "TMF639-ResourceInventory-v4.0.0.swagger.json"}


@cache
def _spec(api: str) -> dict[str, Any]:
    path = SHARED / SPECS[api]
    if not path.exists():
        from openbss.platform.tmf.spec import SPEC_DIR

        path = SPEC_DIR / SPECS[api]
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def assert_tmf(api: str, definition: str, doc: Any) -> None:
    schema = {"definitions": _spec(api)["definitions"], "$ref": f"#/definitions/{definition}"}
    errors = sorted(Draft4Validator(schema).iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]


def sim_csv(n: int, start: int = 0) -> str:
    lines = ["iccid,imsi,ki_ref"]
    for i in range(start, start + n):
        lines.append(f"8933010000{i:010d},20801{i:010d},hsm://ki/{i}")
    return "\n".join(lines) + "\n"


async def setup_world(rt: Any, client: httpx.AsyncClient, *, numbers: int = 300, sims: int = 300) -> dict[str, Any]:
    """A tenant with the demo catalog and pools; returns its headers and offerings by name."""
    from openbss.demo.catalog import seed_catalog

    tenant = await make_tenant(rt, "ord")
    await seed_catalog(session_services(), rt.db, tenant, "http://testserver")
    h = bearer(tenant, "admin")
    last = 33612000000 + numbers - 1
    r = await client.post(f"{POOLS}/numberRange", json={"from": "33612000000", "to": str(last)}, headers=h)
    assert r.status_code == 201, r.text
    r = await client.post(f"{POOLS}/simBatch", json={"csv": sim_csv(sims)}, headers=h)
    assert r.status_code == 201, r.text
    r = await client.post(f"{POOLS}/ipv4Pool", json={"cidr": "192.0.2.0/24"}, headers=h)
    assert r.status_code == 201, r.text
    r = await client.post(f"{POOLS}/ont", json={"serialNumber": [f"HWTC{i:08d}" for i in range(60)]}, headers=h)
    assert r.status_code == 201, r.text
    r = await client.get(OFFERING, params={"limit": 100, "lifecycleStatus": "Active"}, headers=h)
    offers = {o["name"]: o for o in r.json()}
    return {"tenant": tenant, "h": h, "offers": offers}


async def customer(client: httpx.AsyncClient, h: dict[str, str], n: int = 0, **extra: Any) -> dict[str, Any]:
    party = await make_individual(client, h, given="Grace", family=f"Hopper{n}", email=f"grace{n}@example.com",
                                  ident=f"P{n:07d}")
    cust = await make_customer(client, h, party, **extra)
    account = await make_billing_account(client, h, cust, state="active")
    return {"customer": cust, "account": account, "party": party}


def mobile_order(c: dict[str, Any], offer: dict[str, Any], **item: Any) -> dict[str, Any]:
    return {
        "channel": [{"id": "web", "name": "Web shop"}],
        "billingAccount": {"id": c["account"]["id"]},
        "relatedParty": [{"id": c["customer"]["id"], "@referredType": "Customer", "role": "customer"}],
        "productOrderItem": [{"id": "1", "action": "add", "productOffering": {"id": offer["id"]},
                              "product": {"productCharacteristic": [{"name": "simType", "value": "physical"}]},
                              **item}],
    }


def fiber_item(offer: dict[str, Any], item_id: str = "2", static_ip: bool = True) -> dict[str, Any]:
    return {"id": item_id, "action": "add", "productOffering": {"id": offer["id"]},
            "product": {"productCharacteristic": [{"name": "staticIp", "value": static_ip}]}}


def orchestrator(rt: Any, **overrides: Any) -> Any:
    """An orchestrator over the session's services (settings overridden; with ``provisioning_ocs``, over services
    built for it: the composition root plugs the network elements in)."""
    s = rt.settings.model_copy(update={"provisioning_step_backoff_seconds": 0.01, **overrides})
    services = session_services()
    if "provisioning_ocs" in overrides:
        from openbss.services import build_services

        services = build_services(s, rt)
    return services.provisioning.orchestrator(s)


async def run(rt: Any, tenant: str, **overrides: Any) -> None:
    """The worker's work for the tenant's orders: every step run, every event delivered (the product orders follow
    their items)."""
    orch = orchestrator(rt, **overrides)
    while True:
        await orch.run_until_idle(tenant)
        if not await deliver_all(rt) and not await orch.busy(tenant):
            return


async def get(client: httpx.AsyncClient, h: dict[str, str], url: str, **params: Any) -> Any:
    r = await client.get(url, headers=h, params=params)
    assert r.status_code == 200, r.text
    return r.json()
