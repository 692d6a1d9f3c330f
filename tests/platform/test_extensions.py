"""Responses carry only their specification's attributes; what a resource carries beyond it travels in a declared
TMF630 subtype (``@type``, ``@baseType``, ``@schemaLocation``) whose published JSON Schema validates it.

The check is strict at the first level of a representation (every attribute is the specification's, or the
declared extension's); nested shapes are checked against the schemas as published (draft 4)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from jsonschema import Draft4Validator

from tests.charging.helpers import TMF654, open_account
from tests.conftest import bearer

SHARED = Path(__file__).resolve().parents[3] / "shared" / "tmf"
if not SHARED.exists():
    SHARED = Path(__file__).resolve().parents[2] / "src" / "openbss" / "platform" / "tmf" / "specs"


@cache
def _published(spec_file: str) -> dict[str, Any]:
    return json.loads((SHARED / spec_file).read_text())["definitions"]  # type: ignore[no-any-return]


@cache
def _base_validator(spec_file: str, definition: str) -> Draft4Validator:
    return Draft4Validator({"definitions": _published(spec_file), "$ref": f"#/definitions/{definition}"})


#: the extension schemas fetched (by path): their validator and attributes
_EXTENSIONS: dict[str, tuple[Draft4Validator, set[str]]] = {}


@cache
def _allowed(spec_file: str, name: str) -> frozenset[str]:
    return frozenset(_properties(_published(spec_file), name))


def _properties(definitions: dict[str, Any], name: str) -> set[str]:
    d = definitions[name]
    out = set(d.get("properties") or {})
    for part in d.get("allOf") or []:
        out |= _properties(definitions, part["$ref"].split("/")[-1]) if "$ref" in part else set(part.get("properties")
                                                                                                  or {})
    return out


async def conformance_errors(client: httpx.AsyncClient, spec_file: str, definition: str, doc: dict[str, Any]
                             ) -> list[str]:
    """What in ``doc`` the published ``definition`` (or the extension it declares) does not describe."""
    allowed = set(_allowed(spec_file, definition))
    validator = _base_validator(spec_file, definition)
    errors = []
    path = urlsplit(str(doc.get("@schemaLocation") or "")).path
    if path.startswith("/tmf-api/schema/"):  # the server's own subtype (a client may declare its own elsewhere)
        if path not in _EXTENSIONS:
            r = await client.get(path)
            if r.status_code != 200:
                return [f"@schemaLocation {doc['@schemaLocation']}: {r.status_code}"]
            schema = r.json()
            Draft4Validator.check_schema(schema)
            _EXTENSIONS[path] = (Draft4Validator(schema),
                                 {k for part in schema["allOf"] for k in part.get("properties") or {}})
        validator, extra = _EXTENSIONS[path]
        allowed |= extra
        if doc.get("@baseType") != definition:
            errors.append(f"@baseType is {doc.get('@baseType')!r}, not {definition!r}")
    errors += [f"'{k}' is not an attribute of {definition}" for k in sorted(set(doc) - allowed)]
    errors += [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(doc)]
    return errors


async def test_extension_schemas_are_published(client: httpx.AsyncClient) -> None:
    r = await client.get("/tmf-api/schema/OpenBSSBucket.schema.json")
    assert r.status_code == 200, r.text
    schema = r.json()
    Draft4Validator.check_schema(schema)
    assert schema["id"] == "http://testserver/tmf-api/schema/OpenBSSBucket.schema.json"
    assert "initialValue" in schema["allOf"][1]["properties"]
    r = await client.get("/tmf-api/schema/Nothing.schema.json")
    assert r.status_code == 404


async def test_buckets_and_topups_conform(client: httpx.AsyncClient, rt: Any, tenant: str) -> None:
    spec = "TMF654-PrepayBalance-v4.0.0.swagger.json"
    h = bearer(tenant, "admin")
    acc = await open_account(rt, tenant, balance="5.00", data_allowance_mb=100)
    r = await client.get(f"{TMF654}/bucket", params={"logicalResource.id": acc["msisdn"].lstrip("+")}, headers=h)
    buckets = r.json()
    assert buckets
    for b in buckets:
        assert b["@type"] == "OpenBSSBucket" and "initialValue" in b
        assert await conformance_errors(client, spec, "Bucket", b) == []
    money = next(b for b in buckets if b["usageType"] == "monetary")
    body = {"amount": {"amount": 1, "units": "EUR"}, "usageType": "monetary", "bucket": {"id": money["id"]},
            "partyAccount": {"id": money["partyAccount"]["id"]}}  # the account the bucket names
    r = await client.post(f"{TMF654}/topupBalance", json=body, headers={**h, "Idempotency-Key": "k-1"})
    assert r.status_code == 201, r.text
    assert r.json()["@type"] == "OpenBSSTopupBalance" and r.json()["idempotencyKey"] == "k-1"
    assert await conformance_errors(client, spec, "TopupBalance", r.json()) == []
    r = await client.post(f"{TMF654}/topupBalance", json=body, headers=h)
    assert r.status_code == 201, r.text
    assert "idempotencyKey" not in r.json() and r.json()["@type"] == "TopupBalance"
    assert await conformance_errors(client, spec, "TopupBalance", r.json()) == []


async def test_orders_and_services_conform(rt: Any, client: httpx.AsyncClient) -> None:
    from tests.ordering.helpers import PO, SERVICE, customer, mobile_order, run, setup_world

    w = await setup_world(rt, client, numbers=5, sims=5)
    c = await customer(client, w["h"])
    r = await client.post(PO, json=mobile_order(c, w["offers"]["Mobile M"]), headers=w["h"])
    assert r.status_code == 201, r.text
    order = r.json()
    await run(rt, w["tenant"])
    r = await client.patch(f"{PO}/{order['id']}", json={"description": "checked"}, headers=w["h"])
    assert r.status_code == 200, r.text
    assert "lastUpdate" not in r.json()
    assert [e for e in await conformance_errors(client, "TMF622-ProductOrder-v4.0.0.swagger.json", "ProductOrder",
                                                r.json()) if e.startswith("'")] == []
    services = (await client.get(SERVICE, headers=w["h"])).json()
    assert services
    for s in services:
        assert "@type" not in s
        assert [e for e in await conformance_errors(client, "TMF638-ServiceInventory-v4.0.0.swagger.json",
                                                    "Service", s) if e.startswith("'")] == []


async def test_the_demo_catalogs_prices_and_offerings_conform(rt: Any, client: httpx.AsyncClient) -> None:
    from openbss.demo.catalog import seed_catalog
    from tests.conftest import make_tenant, session_services

    tenant = await make_tenant(rt, "ext")
    await seed_catalog(session_services(), rt.db, tenant, "http://testserver")
    h = bearer(tenant, "admin")
    spec = "TMF620-ProductCatalog-v4.1.0.swagger.json"
    base = "/tmf-api/productCatalogManagement/v4"
    prices = (await client.get(f"{base}/productOfferingPrice", params={"limit": 500}, headers=h)).json()
    extended = [p for p in prices if p.get("@type") == "OpenBSSProductOfferingPrice"]
    assert extended and any("tierType" in p for p in extended) and any("prorationPolicy" in p for p in extended)
    for p in prices:
        assert await conformance_errors(client, spec, "ProductOfferingPrice", p) == [], p
    offerings = (await client.get(f"{base}/productOffering", params={"limit": 500}, headers=h)).json()
    for o in offerings:
        assert [e for e in await conformance_errors(client, spec, "ProductOffering", o) if e.startswith("'")] == []


async def test_every_listed_tmf_resource_conforms(rt: Any, client: httpx.AsyncClient, services: Any) -> None:
    """A populated tenant (catalog, customer, account, a completed order with its products, services and
    resources, a charging account, a cart): every TMF resource as listed conforms to its published definition, or
    to the extension subtype it declares."""
    from tests.ordering.helpers import CART, PO, customer, fiber_item, mobile_order, run, setup_world

    w = await setup_world(rt, client, numbers=5, sims=5)
    c = await customer(client, w["h"])
    body = mobile_order(c, w["offers"]["Mobile M"])
    body["productOrderItem"].append(fiber_item(w["offers"]["Fiber 1 Gbps"]))
    assert (await client.post(PO, json=body, headers=w["h"])).status_code == 201
    await run(rt, w["tenant"])
    await open_account(rt, w["tenant"], balance="5.00", data_allowance_mb=100)
    rp = [{"id": c["customer"]["id"], "@referredType": "Customer", "role": "customer"}]
    assert (await client.post(CART, json={"relatedParty": rp, "cartItem": [
        {"id": "1", "action": "add", "productOffering": {"id": w["offers"]["Mobile M"]["id"]}}]},
        headers=w["h"])).status_code == 201
    problems, seen = [], 0
    for api in services.apis:
        if not (SHARED / api.spec_file).exists():
            continue  # OpenBSS's own APIs (tariffs...): no published TMF specification
        for res in api.resources:
            if "list" not in res.operations:
                continue
            r = await client.get(f"{api.base_path}/{res.path}", params={"limit": 20}, headers=w["h"])
            assert r.status_code == 200, r.text
            for doc in r.json():
                seen += 1
                for e in await conformance_errors(client, api.spec_file, res.type, doc):
                    problems.append(f"{res.type} {doc.get('id')}: {e}")
    assert seen >= 40, seen
    assert not problems, "\n".join(problems[:30])
