"""Personal data is encrypted at rest: the raw tables show no plaintext, the API shows it, blind-index search
finds it, filters that cannot work on ciphertext are refused naming the attribute."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import bearer
from tests.customer.helpers import (
    BA,
    CUST,
    IND,
    ROLE,
    TMF669,
    assert_valid,
    make_billing_account,
    make_customer,
    make_individual,
    raw_rows,
)

SECRETS = ("Lovelace", "ada.lovelace@example.com", "7700900123", "P1234567", "1815-12-10", "St James",
           "billing.ada@example.com")


async def test_no_plaintext_personal_data_in_the_tables(client: httpx.AsyncClient, tenant: str, rt: Any) -> None:
    h = bearer(tenant)
    ind = await make_individual(client, h)
    customer = await make_customer(client, h, ind)
    account = await make_billing_account(client, h, customer)
    role = await client.post(ROLE, json={"name": "reseller", "engagedParty": {
        "id": ind["id"], "@referredType": "Individual", "name": "Ada Lovelace"}, "contactMedium": [
        {"mediumType": "email", "characteristic": {"emailAddress": "ada.lovelace@example.com"}}]}, headers=h)
    assert role.status_code == 201, role.text
    assert_valid(TMF669, "PartyRole", role.json())

    for table in ("party_individual", "customer", "billing_account", "party_role"):
        rows = await raw_rows(rt, f"SELECT body::text FROM {table} WHERE tenant_id = :t", t=tenant)  # noqa: S608
        assert rows, table
        for (body,) in rows:
            for secret in SECRETS:
                assert secret not in body, f"{secret!r} in plaintext in {table}: {body}"
            assert "pii:1:" in body
    # the search entries hold digests of personal values, never the values
    index = await raw_rows(rt, "SELECT value, attribute FROM search_entry WHERE tenant_id = :t", t=tenant)
    assert {a for _, a in index} >= {"familyName", "contactMedium.characteristic.emailAddress", "name"}
    for value, attribute in index:
        for secret in (*SECRETS, "lovelace", "ada lovelace", "447700900123", "1815-12-10T00:00:00.000Z"):
            assert secret.lower() not in value.lower(), f"{secret!r} in plaintext in search_entry ({attribute})"
    audit = await raw_rows(rt, "SELECT changes::text FROM audit_record WHERE tenant_id = :t", t=tenant)
    for (changes,) in audit:
        for secret in SECRETS:
            assert secret not in changes, f"{secret!r} in the audit trail: {changes}"
    outbox = await raw_rows(rt, "SELECT count(*) FROM outbox_event WHERE tenant_id = :t", t=tenant)
    assert outbox[0][0] >= 4  # events carry the resource (the event backbone is inside the trust boundary)

    # ...while the API returns the plaintext
    got = (await client.get(f"{IND}/{ind['id']}", headers=h)).json()
    assert got["familyName"] == "Lovelace" and got["birthDate"].startswith("1815-12-10")
    assert got["contactMedium"][0]["characteristic"]["emailAddress"] == "ada.lovelace@example.com"
    got = (await client.get(f"{BA}/{account['id']}", headers=h)).json()
    assert got["contact"][0]["contactMedium"][0]["characteristic"]["emailAddress"] == "billing.ada@example.com"
    assert (await client.get(f"{CUST}/{customer['id']}", headers=h)).json()["name"] == "Ada Lovelace"


async def test_exact_search_on_blind_indexed_attributes(client: httpx.AsyncClient, tenant: str) -> None:
    h = bearer(tenant)
    ada = await make_individual(client, h)
    await make_individual(client, h, given="Alan", family="Turing", email="alan@example.com", phone="+447700900999",
                          ident="T999")

    async def ids(params: dict[str, str]) -> list[str]:
        r = await client.get(IND, params=params, headers=h)
        assert r.status_code == 200, r.text
        return [x["id"] for x in r.json()]

    assert await ids({"contactMedium.characteristic.emailAddress": "ADA.Lovelace@example.com"}) == [ada["id"]]
    assert await ids({"contactMedium.characteristic.phoneNumber": "+44 7700 900123"}) == [ada["id"]]
    assert await ids({"individualIdentification.identificationId": "p1234567"}) == [ada["id"]]
    assert await ids({"familyName": "lovelace"}) == [ada["id"]]
    assert await ids({"givenName": "Ada,Alan"}) and len(await ids({"givenName": "Ada,Alan"})) == 2
    assert await ids({"familyName": "Lovelace", "givenName": "Alan"}) == []
    assert await ids({"contactMedium.preferred": "true", "familyName": "Lovelace"}) == [ada["id"]]


async def test_same_value_in_two_tenants_gives_different_digests(client: httpx.AsyncClient, tenant: str,
                                                                 other_tenant: str, rt: Any) -> None:
    await make_individual(client, bearer(tenant))
    await make_individual(client, bearer(other_tenant))
    rows = await raw_rows(rt, "SELECT tenant_id, value FROM search_entry WHERE resource_type = 'Individual' AND "
                              "attribute = 'contactMedium.characteristic.emailAddress' AND tenant_id IN (:t, :o)",
                          t=tenant, o=other_tenant)
    assert len(rows) == 2 and rows[0][1] != rows[1][1]
    r = await client.get(IND, params={"contactMedium.characteristic.emailAddress": "ada.lovelace@example.com"},
                         headers=bearer(other_tenant))
    assert r.status_code == 200 and len(r.json()) == 1


async def test_filters_and_sorts_that_need_plaintext_are_refused(client: httpx.AsyncClient, tenant: str) -> None:
    h = bearer(tenant)
    await make_individual(client, h)
    for params, word in (({"birthDate.gt": "1800-01-01T00:00:00Z"}, "birthDate"),
                         ({"familyName.gt": "A"}, "familyName"),
                         ({"contactMedium.characteristic.city": "London"}, "contactMedium.characteristic.city"),
                         ({"sort": "familyName"}, "familyName")):
        r = await client.get(IND, params=params, headers=h)
        assert r.status_code == 400, r.text
        assert word in r.json()["message"] and "encrypted" in r.json()["message"]
    assert (await client.get(IND, params={"sort": "status"}, headers=h)).status_code == 200


async def test_a_ciphertext_moved_to_another_row_does_not_decrypt(client: httpx.AsyncClient, tenant: str,
                                                                  rt: Any) -> None:
    from sqlalchemy import select

    from openbss.party.models import Individual

    h = bearer(tenant)
    a = await make_individual(client, h)
    b = await make_individual(client, h, given="Alan", family="Turing", email="alan@example.com",
                              phone="+447700900999", ident="T1")
    async with rt.db.transaction(tenant) as s:
        rows = {r.id: r for r in (await s.execute(select(Individual))).scalars()}
        body = dict(rows[b["id"]].body)
        body["familyName"] = rows[a["id"]].body["familyName"]
        rows[b["id"]].body = body
    r = await client.get(f"{IND}/{b['id']}", headers=h)
    assert r.status_code == 500 and "Lovelace" not in r.text


async def test_reserved_token_prefix_is_refused(client: httpx.AsyncClient, tenant: str) -> None:
    r = await client.post(IND, json={"givenName": "x", "familyName": "y", "title": "pii:1:abc:def"},
                          headers=bearer(tenant))
    assert r.status_code == 400 and "title" in r.json()["message"]


async def test_duplicate_external_reference_is_refused_and_nothing_written(client: httpx.AsyncClient, tenant: str,
                                                                           rt: Any) -> None:
    h = bearer(tenant)
    ext = [{"externalReferenceType": "legacyCrm", "name": "CRM-0001"}]
    await make_individual(client, h, externalReference=ext)
    r = await client.post(IND, json={"givenName": "B", "familyName": "C", "externalReference": ext}, headers=h)
    assert r.status_code == 409 and "externalReference[0].name" in r.json()["message"], r.text
    rows = await raw_rows(rt, "SELECT count(*) FROM party_individual WHERE tenant_id = :t", t=tenant)
    assert rows[0][0] == 1
    # the same id of another system is fine
    r = await client.post(IND, json={"givenName": "B", "familyName": "C", "externalReference": [
        {"externalReferenceType": "billingLegacy", "name": "CRM-0001"}]}, headers=h)
    assert r.status_code == 201, r.text


async def test_phone_must_be_e164(client: httpx.AsyncClient, tenant: str) -> None:
    h = bearer(tenant)
    for number in ("0612345678", "555-1234", "+0123456789", "phone"):
        r = await client.post(IND, json={"givenName": "A", "familyName": "B", "contactMedium": [
            {"mediumType": "phone", "characteristic": {"phoneNumber": number}}]}, headers=h)
        assert r.status_code == 400, (number, r.text)
        assert "contactMedium[0].characteristic.phoneNumber" in r.json()["message"] and "E.164" in r.json()["message"]


async def test_operator_declared_personal_attributes_are_sealed(tenant: str, rt: Any, settings: Any) -> None:
    """``OPENBSS_PII_ATTRIBUTES`` reaches the codecs through the composition root (not at import): an operator with
    many sole traders seals organization names too, which are then neither stored plain nor sortable."""
    from openbss.app import create_app
    from openbss.services import build_services

    sole_traders = settings.model_copy(update={"pii_attributes": {"Organization": ["tradingName"]}})
    app = create_app(sole_traders, services=build_services(sole_traders, rt), runtime=rt)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        r = await c.post("/tmf-api/party/v4/organization", json={"tradingName": "Jo's Plumbing", "name": "J. Doe"},
                         headers=bearer(tenant))
        assert r.status_code == 201, r.text
        assert (await c.get(r.json()["href"].replace("http://testserver", ""), headers=bearer(tenant))
                ).json()["tradingName"] == "Jo's Plumbing"
        sort = await c.get("/tmf-api/party/v4/organization", params={"sort": "tradingName"}, headers=bearer(tenant))
        assert sort.status_code == 400 and sort.json()["code"] == "INVALID_SORT"
    [(stored,)] = await raw_rows(rt, "SELECT body->>'tradingName' FROM party_organization WHERE id = :i",
                                 i=r.json()["id"])
    assert stored.startswith("pii:1:") and "Plumbing" not in stored
