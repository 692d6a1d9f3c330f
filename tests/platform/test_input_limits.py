"""Inputs that once made the server answer 500: each is now a 400 naming the problem, with nothing written (no
resource, no outbox event)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from openbss.platform.events.outbox import OutboxEvent
from tests.conftest import bearer

IND = "/tmf-api/party/v4/individual"
ORG = "/tmf-api/party/v4/organization"
OFFERING = "/tmf-api/productCatalogManagement/v4/productOffering"
BIG = str(2**64 + 7)

GETS = [
    ("offset-audit", "/audit/v1/auditRecord", {"resourceType": "Individual", "resourceId": "x", "offset": BIG},
     "offset"),
    ("offset-customer-search", "/tmf-api/customerManagement/v4/customerSearch", {"name": "ada", "offset": BIG},
     "offset"),
    ("offset-accumulated", "/tmf-api/prepayBalanceManagement/v4/accumulatedBalance", {"offset": BIG}, "offset"),
    ("offset-orderable", "/api/catalog/v1/orderableOffering", {"offset": BIG}, "offset"),
    ("nul-audit", "/audit/v1/auditRecord", {"resourceType": "Individual", "resourceId": "a\x00b"}, "NUL"),
    ("nul-messaging", "/api/messaging/v1/message", {"to": "a\x00b"}, "NUL"),
    ("nul-subscriber", "/api/provisioning/v1/networkCall", {"subscriber": "a\x00b"}, "NUL"),
    ("nul-outcome", "/api/provisioning/v1/networkCall", {"outcome": "ok\x00"}, "NUL"),
    ("nul-tmf-filter", IND, {"familyName": "a\x00"}, "NUL"),
]


@pytest.mark.parametrize(("path", "params", "mentions"), [g[1:] for g in GETS], ids=[g[0] for g in GETS])
async def test_query_values_that_crashed(client: httpx.AsyncClient, tenant: str, path: str,
                                         params: dict[str, str], mentions: str) -> None:
    r = await client.get(path, params=params, headers=bearer(tenant, "admin"))
    assert r.status_code == 400, r.text
    assert mentions in r.json()["message"], r.text


async def _written(rt: Any, tenant: str) -> int:
    async with rt.db.transaction(tenant) as session:
        return int(await session.scalar(select(func.count()).select_from(OutboxEvent)) or 0)


BODIES = [
    ("lone-surrogate", IND, b'{"givenName": "Ada\\ud800", "familyName": "Lovelace"}', "surrogate"),
    ("lone-low-surrogate", ORG, b'{"tradingName": "\\udc00Acme"}', "surrogate"),
    ("contact-media-8000", IND, json.dumps({"givenName": "Ada", "familyName": "Lovelace", "contactMedium": [
        {"mediumType": "phone", "characteristic": {"phoneNumber": f"+3361{i:07d}"}} for i in range(8000)]}).encode(),
     "contactMedium"),
    ("year-0001-before-utc", OFFERING, json.dumps({"name": "Old", "validFor": {
        "startDateTime": "0001-01-01T00:00:00+02:00"}}).encode(), "validFor.startDateTime"),
]


@pytest.mark.parametrize(("path", "body", "mentions"), [b[1:] for b in BODIES], ids=[b[0] for b in BODIES])
async def test_bodies_that_crashed(rt: Any, client: httpx.AsyncClient, tenant: str, path: str, body: bytes,
                                   mentions: str) -> None:
    before = await _written(rt, tenant)
    r = await client.post(path, content=body, headers={**bearer(tenant, "admin"), "Content-Type": "application/json"})
    assert r.status_code == 400, r.text[:500]
    assert mentions in r.json()["message"], r.text[:500]
    assert await _written(rt, tenant) == before
    r = await client.get(path, headers=bearer(tenant, "admin"))
    assert r.status_code == 200 and r.json() == [], r.text[:500]


async def test_paired_surrogates_are_text(client: httpx.AsyncClient, tenant: str) -> None:
    """An escaped character outside the basic plane (a valid surrogate pair) is accepted and stored as written."""
    r = await client.post(IND, content=b'{"givenName": "Ada \\ud83d\\ude00", "familyName": "L"}',
                          headers={**bearer(tenant, "admin"), "Content-Type": "application/json"})
    assert r.status_code == 201, r.text
    assert r.json()["givenName"] == "Ada \U0001f600"


async def test_dates_keep_their_order(client: httpx.AsyncClient, tenant: str) -> None:
    """Date-times are stored normalized (UTC, four-digit year), so that their string order is their time order."""
    h = bearer(tenant, "admin")
    r = await client.post(OFFERING, json={"name": "Old", "validFor": {"startDateTime": "0300-01-01T00:00:00Z"}},
                          headers=h)
    assert r.status_code == 201, r.text
    old = r.json()
    assert old["validFor"]["startDateTime"] == "0300-01-01T00:00:00.000Z"
    r = await client.get(f"{OFFERING}/{old['id']}", headers=h)
    assert r.status_code == 200 and r.json()["validFor"] == old["validFor"], r.text
    r = await client.post(OFFERING, json={"name": "New", "validFor": {"startDateTime": "1999-01-01T00:00:00Z"}},
                          headers=h)
    assert r.status_code == 201, r.text
    r = await client.get(OFFERING, params={"sort": "validFor.startDateTime", "fields": "name"}, headers=h)
    assert [o["name"] for o in r.json()] == ["Old", "New"], r.text
    r = await client.get(OFFERING, params={"validFor.startDateTime.lt": "1000-01-01T00:00:00Z"}, headers=h)
    assert [o["name"] for o in r.json()] == ["Old"], r.text
    r = await client.post(OFFERING, json={"name": "Tz", "validFor": {"startDateTime": "2030-01-01T01:00:00+02:00"}},
                          headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["validFor"]["startDateTime"].startswith("2029-12-31T23:00:00")


QUEUE = "/api/care/v1/queue"
OWN_ROUTE_BODIES = [
    ("nul-in-a-queue-name", b'{"name": "first line\\u0000", "description": "x"}', "NUL"),
    ("surrogate-in-a-queue-name", b'{"name": "first line \\ud891", "description": "x"}', "unicode"),
]


@pytest.mark.parametrize(("body", "mentions"), [b[1:] for b in OWN_ROUTE_BODIES], ids=[b[0] for b in OWN_ROUTE_BODIES])
async def test_text_the_database_cannot_store_on_a_domains_own_route(client: httpx.AsyncClient, tenant: str,
                                                                     body: bytes, mentions: str) -> None:
    """The domains' configuration routes (outside the TMF kit's models) answer 400 for text PostgreSQL cannot
    store, and write nothing (found by the fuzz run on the care queues)."""
    r = await client.post(QUEUE, content=body, headers={**bearer(tenant, "admin"), "Content-Type": "application/json"})
    assert r.status_code == 400, r.text[:500]
    assert mentions in r.json()["message"], r.text
    r = await client.get(QUEUE, headers=bearer(tenant, "admin"))
    assert r.status_code == 200 and not [q for q in r.json() if q["name"].startswith("first line")], r.text
