"""A customer acts only on its own party's resources: a person listed as a contact of an organization reads it but
does not administer it; administration needs the role the operator grants (``relatedParty`` with role
``administrator``), and even then the organization's related parties are the operator's to change."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import bearer

IND = "/tmf-api/party/v4/individual"
ORG = "/tmf-api/party/v4/organization"
ROLE = "/tmf-api/partyRoleManagement/v4/partyRole"


async def _person(client: httpx.AsyncClient, h: dict[str, str], name: str) -> str:
    r = await client.post(IND, json={"givenName": name, "familyName": "Edge"}, headers=h)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def _org(client: httpx.AsyncClient, h: dict[str, str], related: list[dict[str, Any]]) -> dict[str, Any]:
    r = await client.post(ORG, json={"tradingName": "Acme", "relatedParty": related}, headers=h)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_a_contact_cannot_patch_the_organization(client: httpx.AsyncClient, tenant: str) -> None:
    staff = bearer(tenant, "admin")
    owner, contact = await _person(client, staff, "Owner"), await _person(client, staff, "Contact")
    org = await _org(client, staff, [
        {"id": owner, "role": "administrator", "@referredType": "Individual"},
        {"id": contact, "role": "contact", "@referredType": "Individual"}])
    as_contact = bearer(tenant, "customer", party=contact)
    # the contact reads it
    r = await client.get(f"{ORG}/{org['id']}", headers=as_contact)
    assert r.status_code == 200, r.text
    # but cannot change it, let alone take it over
    r = await client.patch(f"{ORG}/{org['id']}", json={"tradingName": "Mine"}, headers=as_contact)
    assert r.status_code == 403 and r.json()["code"] == "CUSTOMER_FORBIDDEN", r.text
    assert "administrator" in r.json()["message"]
    r = await client.patch(f"{ORG}/{org['id']}", json={"relatedParty": [
        {"id": contact, "role": "administrator", "@referredType": "Individual"}]}, headers=as_contact)
    assert r.status_code == 403, r.text
    r = await client.get(f"{ORG}/{org['id']}", headers=staff)
    assert r.json()["tradingName"] == "Acme" and len(r.json()["relatedParty"]) == 2


async def test_the_administrator_changes_the_organization_not_its_parties(client: httpx.AsyncClient,
                                                                          tenant: str) -> None:
    staff = bearer(tenant, "admin")
    owner, other = await _person(client, staff, "Owner"), await _person(client, staff, "Other")
    org = await _org(client, staff, [{"id": owner, "role": "administrator", "@referredType": "Individual"}])
    as_owner = bearer(tenant, "customer", party=owner)
    r = await client.patch(f"{ORG}/{org['id']}", json={"tradingName": "Acme Ltd"}, headers=as_owner)
    assert r.status_code == 200 and r.json()["tradingName"] == "Acme Ltd", r.text
    r = await client.patch(f"{ORG}/{org['id']}", json={"relatedParty": [
        {"id": owner, "role": "administrator", "@referredType": "Individual"},
        {"id": other, "role": "administrator", "@referredType": "Individual"}]}, headers=as_owner)
    assert r.status_code == 403 and "relatedParty" in r.json()["message"], r.text
    # the operator grants the role
    r = await client.patch(f"{ORG}/{org['id']}", json={"relatedParty": [
        {"id": owner, "role": "administrator", "@referredType": "Individual"},
        {"id": other, "role": "administrator", "@referredType": "Individual"}]}, headers=staff)
    assert r.status_code == 200, r.text
    r = await client.patch(f"{ORG}/{org['id']}", json={"tradingName": "Acme Group"},
                           headers=bearer(tenant, "customer", party=other))
    assert r.status_code == 200, r.text


async def test_a_customer_cannot_give_its_resources_away(client: httpx.AsyncClient, tenant: str) -> None:
    staff = bearer(tenant, "admin")
    me, someone = await _person(client, staff, "Me"), await _person(client, staff, "Someone")
    r = await client.post(ROLE, json={"name": "reseller", "engagedParty": {"id": me, "@referredType": "Individual"}},
                          headers=staff)
    assert r.status_code == 201, r.text
    role = r.json()
    as_me = bearer(tenant, "customer", party=me)
    r = await client.patch(f"{ROLE}/{role['id']}", json={
        "engagedParty": {"id": someone, "@referredType": "Individual"}}, headers=as_me)
    assert r.status_code == 403 and r.json()["code"] == "CUSTOMER_FORBIDDEN", r.text
    r = await client.patch(f"{IND}/{someone}", json={"givenName": "Hacked"}, headers=as_me)
    assert r.status_code == 404, r.text  # not even visible
