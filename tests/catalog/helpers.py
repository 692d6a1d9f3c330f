"""Shared helpers of the catalog tests: API paths, payload builders and the TMF620 contract validator."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator

TMF = "/tmf-api/productCatalogManagement/v4"
EXT = "/api/catalog/v1"
SSPEC = "/tmf-api/serviceCatalogManagement/v4/serviceSpecification"
RSPEC = "/tmf-api/resourceCatalogManagement/v4/resourceSpecification"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "tmf"
if not SHARED.exists():  # pragma: no cover - repository checked out elsewhere
    SHARED = Path("/work/shared/tmf")


@cache
def _spec() -> dict[str, Any]:
    return json.loads((SHARED / "TMF620-ProductCatalog-v4.1.0.swagger.json").read_text())


def validator(definition: str) -> Draft4Validator:
    spec = _spec()
    return Draft4Validator({"definitions": spec["definitions"], "$ref": f"#/definitions/{definition}"})


def assert_tmf620(definition: str, document: Any) -> None:
    """The document validates against the official TMF620 JSON schema of ``definition``."""
    errors = sorted(validator(definition).iter_errors(document), key=lambda e: list(e.path))
    assert not errors, f"{definition} does not validate: " + "; ".join(
        f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:5])


def money(value: Any, unit: str = "EUR") -> dict[str, Any]:
    return {"unit": unit, "value": value}


def recurring(name: str = "Monthly fee", value: Any = 20, **extra: Any) -> dict[str, Any]:
    return {"name": name, "priceType": "recurring", "price": money(value), "recurringChargePeriodType": "month",
            **extra}


def one_time(name: str = "Activation", value: Any = 10, **extra: Any) -> dict[str, Any]:
    return {"name": name, "priceType": "oneTime", "price": money(value), "chargeCategory": "activation", **extra}


def usage_data(name: str = "Data overage", **extra: Any) -> dict[str, Any]:
    return {"name": name, "priceType": "usage", "usageType": "data", "price": money("0.01"),
            "unitOfMeasure": {"amount": 1, "units": "MB"},
            "allowance": [{"quantity": {"amount": 10, "units": "GB"}, "period": "month",
                           "rollover": {"maxPeriods": 1}}], **extra}


async def create(client: Any, headers: dict[str, str], path: str, body: dict[str, Any], status: int = 201) -> Any:
    url = path if path.startswith("/") else f"{TMF}/{path}"
    r = await client.post(url, json=body, headers=headers)
    assert r.status_code == status, r.text
    return r.json()


async def activate(client: Any, headers: dict[str, str], path: str, rid: str) -> dict[str, Any]:
    url = path if path.startswith("/") else f"{TMF}/{path}"
    for status in ("In test", "Active"):
        r = await client.patch(f"{url}/{rid}", json={"lifecycleStatus": status}, headers=headers)
        assert r.status_code == 200, r.text
    return dict(r.json())


async def active(client: Any, headers: dict[str, str], path: str, body: dict[str, Any]) -> dict[str, Any]:
    doc = await create(client, headers, path, body)
    return await activate(client, headers, path, doc["id"])
