"""TMF629 customers: contract, segment, references, bad input, scope, hub and events."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from openbss.platform.events.outbox import OutboxEvent
from tests.conftest import bearer
from tests.customer.helpers import (
    CUST,
    ORG,
    TMF629,
    assert_valid,
    make_customer,
    make_individual,
    raw_rows,
)


async def test_customer_contract_and_defaults(client: httpx.AsyncClient, tenant: str, rt: Any) -> None:
    h = bearer(tenant)
    ind = await make_individual(client, h)
    c = await make_customer(client, h, ind, contactMedium=[
        {"mediumType": "email", "characteristic": {"emailAddress": "ada@work.example"}}])
    assert_valid(TMF629, "Customer", c)
    assert c["status"] == "initialized" and c["engagedParty"]["name"] == "Ada Lovelace"
    assert {"name": "segment", "valueType": "string", "value": "residential"} in c["characteristic"]
    got = (await client.get(f"{CUST}/{c['id']}", headers=h)).json()
    assert_valid(TMF629, "Customer", got)
    assert got == c
    listed = await client.get(CUST, headers=h)
    assert listed.headers["x-total-count"] == "1"
    for item in listed.json():
        assert_valid(TMF629, "Customer", item)
    patched = await client.patch(f"{CUST}/{c['id']}", json={"status": "active"}, headers=h)
    assert patched.status_code == 200, patched.text
    assert_valid(TMF629, "Customer", patched.json())
    assert (await client.patch(f"{CUST}/{c['id']}", json={"status": "initialized"}, headers=h)).status_code == 409

    org = (await client.post(ORG, json={"tradingName": "Northwind", "name": "Northwind Ltd"}, headers=h)).json()
    sme = await make_customer(client, h, org)
    assert {"name": "segment", "valueType": "string", "value": "sme"} in sme["characteristic"]
    corp = await make_customer(client, h, org, name="Northwind Group", characteristic=[
        {"name": "segment", "value": "corporate"}])
    assert corp["characteristic"] == [{"name": "segment", "value": "corporate"}]
    async with rt.db.transaction(tenant) as s:
        types = (await s.execute(select(OutboxEvent.event_type, func.count()).where(
            OutboxEvent.resource_type == "Customer").group_by(OutboxEvent.event_type))).all()
    assert dict(types) == {"CustomerCreateEvent": 3, "CustomerAttributeValueChangeEvent": 1,
                           "CustomerStateChangeEvent": 1}


async def test_customer_hub(client: httpx.AsyncClient, tenant: str) -> None:
    r = await client.post("/tmf-api/customerManagement/v4/hub", json={
        "callback": "http://127.0.0.1:9/cb", "query": "eventType=CustomerCreateEvent"}, headers=bearer(tenant))
    assert r.status_code == 201, r.text
    assert (await client.delete(f"/tmf-api/customerManagement/v4/hub/{r.json()['id']}",
                                headers=bearer(tenant))).status_code == 204


async def count(rt: Any, tenant: str) -> int:
    return int((await raw_rows(rt, "SELECT count(*) FROM customer WHERE tenant_id = :t", t=tenant))[0][0])


@pytest.mark.parametrize(("body", "status", "word"), [
    ({"characteristic": [{"name": "segment", "value": "household"}]}, 400, "characteristic[0].value"),
    ({"contactMedium": [{"mediumType": "email", "characteristic": {"emailAddress": "nope"}}]}, 400,
     "contactMedium[0].characteristic.emailAddress"),
    ({"contactMedium": [{"mediumType": "phone", "characteristic": {"phoneNumber": "06 12 34 56 78"}}]}, 400,
     "contactMedium[0].characteristic.phoneNumber"),
    ({"engagedParty": {"id": "nobody", "@referredType": "Individual"}}, 400, "engagedParty.id"),
    ({"engagedParty": {"id": "x", "@referredType": "Robot"}}, 400, "engagedParty.@referredType"),
    ({"name": None}, 400, "name"),
    ({"segment": "sme"}, 400, "segment"),
], ids=["unknown-segment", "bad-email", "not-e164", "unknown-party", "bad-referred-type", "no-name",
        "unknown-attribute"])
async def test_bad_customers_are_refused_and_nothing_written(client: httpx.AsyncClient, tenant: str, rt: Any,
                                                             body: dict[str, Any], status: int, word: str) -> None:
    h = bearer(tenant)
    ind = await make_individual(client, h)
    payload = {"name": "Ada Lovelace", "engagedParty": {"id": ind["id"], "@referredType": "Individual"}, **body}
    payload = {k: v for k, v in payload.items() if v is not None}
    r = await client.post(CUST, json=payload, headers=h)
    assert r.status_code == status, r.text
    assert word in r.json()["message"], r.json()
    assert await count(rt, tenant) == 0


async def test_party_of_another_tenant_is_refused(client: httpx.AsyncClient, tenant: str, other_tenant: str,
                                                 rt: Any) -> None:
    foreign = await make_individual(client, bearer(other_tenant))
    r = await client.post(CUST, json={"name": "X", "engagedParty": {"id": foreign["id"],
                                                                    "@referredType": "Individual"}},
                          headers=bearer(tenant))
    assert r.status_code == 400 and "engagedParty.id" in r.json()["message"], r.text
    assert await count(rt, tenant) == 0


async def test_duplicate_external_id_is_refused(client: httpx.AsyncClient, tenant: str, rt: Any) -> None:
    h = bearer(tenant)
    ind = await make_individual(client, h)
    ext = [{"name": "externalId", "value": "LEGACY-42"}]
    await make_customer(client, h, ind, characteristic=ext)
    r = await client.post(CUST, json={"name": "Other", "characteristic": ext, "engagedParty": {
        "id": ind["id"], "@referredType": "Individual"}}, headers=h)
    assert r.status_code == 409 and "externalId" in r.json()["message"], r.text
    assert await count(rt, tenant) == 1


async def test_engaged_party_cannot_change(client: httpx.AsyncClient, tenant: str) -> None:
    h = bearer(tenant)
    a = await make_individual(client, h)
    b = await make_individual(client, h, given="Alan", family="Turing", email="a@t.example", ident="X2")
    c = await make_customer(client, h, a)
    r = await client.patch(f"{CUST}/{c['id']}", json={"engagedParty": {"id": b["id"], "@referredType": "Individual"}},
                           headers=h)
    assert r.status_code == 400 and "engagedParty.id" in r.json()["message"]


async def test_customer_role_sees_only_its_own_customer(client: httpx.AsyncClient, tenant: str) -> None:
    h = bearer(tenant)
    a = await make_individual(client, h)
    b = await make_individual(client, h, given="Alan", family="Turing", email="a@t.example", ident="X2")
    ca = await make_customer(client, h, a)
    cb = await make_customer(client, h, b)
    me = bearer(tenant, "customer", party=a["id"])
    r = await client.get(CUST, headers=me)
    assert r.status_code == 200 and [c["id"] for c in r.json()] == [ca["id"]]
    assert (await client.get(f"{CUST}/{cb['id']}", headers=me)).status_code == 404
    assert (await client.get(f"{CUST}/{ca['id']}", headers=me)).status_code == 200
    assert (await client.patch(f"{CUST}/{ca['id']}", json={"name": "x"}, headers=me)).status_code == 403
    assert (await client.post(CUST, json={"name": "x", "engagedParty": {"id": a["id"], "@referredType": "Individual"}},
                              headers=me)).status_code == 403
