"""Shared helpers of the customer, account and PII tests: parties, customers, accounts and TMF contract checks."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from jsonschema import Draft4Validator

IND = "/tmf-api/party/v4/individual"
ORG = "/tmf-api/party/v4/organization"
ROLE = "/tmf-api/partyRoleManagement/v4/partyRole"
CUST = "/tmf-api/customerManagement/v4/customer"
SEARCH = "/tmf-api/customerManagement/v4/customerSearch"
C360 = "/tmf-api/customerManagement/v4/customer360"
ACC = "/tmf-api/accountManagement/v4"
BA = f"{ACC}/billingAccount"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "tmf"


@cache
def spec(filename: str) -> dict[str, Any]:
    path = SHARED / filename
    if not path.exists():
        from openbss.platform.tmf.spec import SPEC_DIR

        path = SPEC_DIR / filename
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def assert_valid(filename: str, definition: str, doc: Any) -> None:
    """The document validates against the official specification's JSON schema of ``definition``."""
    schema = {"definitions": spec(filename)["definitions"], "$ref": f"#/definitions/{definition}"}
    errors = sorted(Draft4Validator(schema).iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]


TMF629, TMF632, TMF666, TMF669 = ("TMF629-Customer-v4.0.0.swagger.json", "TMF632-Party-v4.0.0.swagger.json",
                                  "TMF666-Account-v4.0.0.swagger.json", "TMF669-PartyRole-v4.0.0.swagger.json")


def person(given: str = "Ada", family: str = "Lovelace", email: str = "ada.lovelace@example.com",
           phone: str = "+447700900123", ident: str = "P1234567", **extra: Any) -> dict[str, Any]:
    return {
        "givenName": given, "familyName": family, "birthDate": "1815-12-10T00:00:00Z",
        "contactMedium": [
            {"mediumType": "email", "preferred": True, "characteristic": {"emailAddress": email}},
            {"mediumType": "phone", "characteristic": {"phoneNumber": phone, "contactType": "mobile"}},
            {"mediumType": "postalAddress", "characteristic": {"street1": "12 St James's Square", "city": "London",
                                                               "postCode": "SW1Y 4JH", "country": "GB"}},
        ],
        "individualIdentification": [{"identificationType": "passport", "identificationId": ident}],
        **extra,
    }


async def created(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def make_individual(client: httpx.AsyncClient, h: dict[str, str], **kw: Any) -> dict[str, Any]:
    return await created(await client.post(IND, json=person(**kw), headers=h))


async def make_customer(client: httpx.AsyncClient, h: dict[str, str], party: dict[str, Any],
                        **extra: Any) -> dict[str, Any]:
    body = {"name": party.get("fullName") or party.get("tradingName"),
            "engagedParty": {"id": party["id"], "@referredType": party["@type"]}, **extra}
    return await created(await client.post(CUST, json=body, headers=h))


def billing_account_body(customer: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "name": f"{customer['name']} billing",
        "relatedParty": [{"id": customer["id"], "@referredType": "Customer", "name": customer["name"],
                          "role": "customer"}],
        "currency": "EUR",
        "billCycle": {"billingDay": 5, "frequency": "monthly", "timeZone": "Europe/Paris"},
        "paymentTermsDays": 14,
        "creditLimit": {"unit": "EUR", "value": 250.5},
        "billStructure": {"presentationMedia": [{"name": "email", "isRef": False}]},
        "contact": [{"contactType": "primary", "contactName": "Ada Lovelace",
                     "validFor": {"startDateTime": "2026-01-01T00:00:00Z"},
                     "contactMedium": [{"mediumType": "email",
                                        "characteristic": {"emailAddress": "billing.ada@example.com"}}]}],
        **extra,
    }


async def make_billing_account(client: httpx.AsyncClient, h: dict[str, str], customer: dict[str, Any],
                               **extra: Any) -> dict[str, Any]:
    return await created(await client.post(BA, json=billing_account_body(customer, **extra), headers=h))


async def raw_rows(rt: Any, sql: str, **params: Any) -> list[Any]:
    """Rows as the database owner sees them (no row-level security, no decryption)."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from openbss.platform.db import owner_url

    engine = create_async_engine(owner_url().set(drivername="postgresql+asyncpg"))
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(text(sql), params)).all())
    finally:
        await engine.dispose()
