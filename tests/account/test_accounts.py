"""TMF666 accounts: contract of every resource, billing account rules, state machine, balance guard, scope."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.conftest import Owed, bearer
from tests.customer.helpers import (
    ACC,
    BA,
    CUST,
    TMF666,
    assert_valid,
    billing_account_body,
    make_billing_account,
    make_customer,
    make_individual,
    raw_rows,
)


@pytest.fixture
async def customer(client: httpx.AsyncClient, tenant: str) -> dict[str, Any]:
    h = bearer(tenant)
    return await make_customer(client, h, await make_individual(client, h))


async def test_billing_account_contract_defaults_and_link(client: httpx.AsyncClient, tenant: str,
                                                          customer: dict[str, Any]) -> None:
    h = bearer(tenant)
    a = await make_billing_account(client, h, customer)
    assert_valid(TMF666, "BillingAccount", a)
    assert a["state"] == "defined" and a["currency"] == "EUR" and a["paymentTermsDays"] == 14
    assert a["billCycle"] == {"billingDay": 5, "frequency": "monthly", "timeZone": "Europe/Paris"}
    assert a["creditLimit"] == {"unit": "EUR", "value": 250.5}
    owner = [rp for rp in a["relatedParty"] if rp["@referredType"] == "Individual"]
    assert owner and owner[0]["id"] == customer["engagedParty"]["id"] and owner[0]["role"] == "owner"
    assert a["lastModified"]
    # the customer lists its account (TMF629 Customer.account)
    c = (await client.get(f"{CUST}/{customer['id']}", headers=h)).json()
    assert [r["id"] for r in c["account"]] == [a["id"]]
    minimal = await client.post(BA, json={"name": "Minimal", "relatedParty": [
        {"id": customer["id"], "@referredType": "Customer", "name": "x"}]}, headers=h)
    assert minimal.status_code == 201, minimal.text
    m = minimal.json()
    assert (m["currency"], m["paymentTermsDays"], m["billCycle"]) == (
        "EUR", 30, {"billingDay": 1, "frequency": "monthly", "timeZone": "UTC"})
    for item in (await client.get(BA, headers=h)).json():
        assert_valid(TMF666, "BillingAccount", item)


async def test_every_tmf666_resource_validates(client: httpx.AsyncClient, tenant: str,
                                               customer: dict[str, Any]) -> None:
    h = bearer(tenant)
    party_ref = [{"id": customer["id"], "@referredType": "Customer", "name": customer["name"]}]
    cases = [
        ("partyAccount", "PartyAccount", {"name": "Household", "relatedParty": party_ref}),
        ("settlementAccount", "SettlementAccount", {"name": "Partner settlement", "relatedParty": party_ref}),
        ("financialAccount", "FinancialAccount", {"name": "Receivables", "relatedParty": party_ref}),
        ("billingCycleSpecification", "BillingCycleSpecification",
         {"name": "Monthly on the 5th", "frequency": "monthly", "billingDateShift": 4, "paymentDueDateOffset": 14}),
        ("billFormat", "BillFormat", {"name": "Detailed", "description": "Itemised bill"}),
        ("billPresentationMedia", "BillPresentationMedia", {"name": "portal", "description": "Self-care portal"}),
    ]
    for path, definition, body in cases:
        r = await client.post(f"{ACC}/{path}", json=body, headers=h)
        assert r.status_code == 201, (path, r.text)
        assert_valid(TMF666, definition, r.json())
        got = await client.get(f"{ACC}/{path}/{r.json()['id']}", headers=h)
        assert_valid(TMF666, definition, got.json())
        patched = await client.patch(f"{ACC}/{path}/{r.json()['id']}", json={"description": "changed"}, headers=h)
        assert patched.status_code == 200, patched.text
        assert_valid(TMF666, definition, patched.json())
        listed = await client.get(f"{ACC}/{path}", headers=h)
        assert listed.status_code == 200 and listed.headers["x-total-count"] == "1"
    hub = await client.post(f"{ACC}/hub", json={"callback": "http://127.0.0.1:9/x"}, headers=h)
    assert hub.status_code == 201


@pytest.mark.parametrize(("change", "word"), [
    ({"currency": "euro"}, "currency"),
    ({"billCycle": {"billingDay": 32}}, "billCycle.billingDay"),
    ({"billCycle": {"billingDay": 3, "timeZone": "Mars/Olympus"}}, "billCycle.timeZone"),
    ({"billCycle": {"billingDay": 3, "frequency": "daily"}}, "billCycle.frequency"),
    ({"paymentTermsDays": -1}, "paymentTermsDays"),
    ({"creditLimit": {"unit": "USD", "value": 10}}, "creditLimit.unit"),
    ({"creditLimit": {"unit": "EUR", "value": -10}}, "creditLimit.value"),
    ({"billStructure": {"presentationMedia": [{"name": "fax", "isRef": False}]}},
     "billStructure.presentationMedia[0].name"),
    ({"state": "closed"}, "state"),
    ({"contact": [{"contactType": "primary", "validFor": {}, "contactMedium": [
        {"mediumType": "phone", "characteristic": {"phoneNumber": "0612"}}]}],
      "billStructure": {"presentationMedia": [{"name": "paper", "isRef": False}]}},
     "contact[0].contactMedium[0].characteristic.phoneNumber"),
    ({"relatedParty": [{"id": "ghost", "@referredType": "Individual", "name": "x"}]}, "relatedParty[0].id"),
    ({"relatedParty": [{"id": "ghost", "@referredType": "Customer", "name": "x"}]}, "relatedParty[0].id"),
    ({"taxExemption": [{"issuingJurisdiction": "FR"}]}, "validFor"),
])
async def test_bad_billing_accounts_are_refused(client: httpx.AsyncClient, tenant: str, rt: Any,
                                                customer: dict[str, Any], change: dict[str, Any], word: str) -> None:
    r = await client.post(BA, json=billing_account_body(customer, **change), headers=bearer(tenant))
    assert r.status_code == 400, r.text
    assert word in r.json()["message"], r.json()
    assert (await raw_rows(rt, "SELECT count(*) FROM billing_account WHERE tenant_id = :t", t=tenant))[0][0] == 0


async def test_account_pointing_at_another_tenants_party(client: httpx.AsyncClient, tenant: str,
                                                         other_tenant: str, rt: Any) -> None:
    foreign = await make_individual(client, bearer(other_tenant))
    body = {"name": "X", "relatedParty": [{"id": foreign["id"], "@referredType": "Individual", "name": "x"}]}
    r = await client.post(BA, json=body, headers=bearer(tenant))
    assert r.status_code == 400 and "relatedParty[0].id" in r.json()["message"], r.text
    assert (await raw_rows(rt, "SELECT count(*) FROM billing_account WHERE tenant_id = :t", t=tenant))[0][0] == 0


async def test_state_machine_and_balance_guard(client: httpx.AsyncClient, tenant: str,
                                               customer: dict[str, Any],
                                               owing: tuple[httpx.AsyncClient, Owed]) -> None:
    h = bearer(tenant)
    a = await make_billing_account(client, h, customer)
    url = f"{BA}/{a['id']}"

    async def to(state: str) -> httpx.Response:
        return await client.patch(url, json={"state": state}, headers=h)

    assert (await to("suspended")).status_code == 409  # defined -> suspended is not a transition
    assert (await to("active")).json()["state"] == "active"
    assert (await client.patch(url, json={"currency": "USD", "creditLimit": {"unit": "USD", "value": 1}},
                               headers=h)).status_code == 400
    assert (await client.delete(url, headers=h)).status_code == 409  # only never-activated accounts
    assert (await to("suspended")).json()["state"] == "suspended"
    assert (await to("active")).json()["state"] == "active"
    assert (await to("bogus")).status_code == 409  # not a state of the machine

    # closing asks the open balance (a process whose billing domain reports what the account owes)
    billing, owed = owing
    owed.amounts[a["id"]] = Decimal("12.30")
    r = await billing.patch(url, json={"state": "closed"}, headers=h)
    assert r.status_code == 409 and r.json()["code"] == "OPEN_BALANCE" and "12.30" in r.json()["message"]
    assert (await client.get(url, headers=h)).json()["state"] == "active"  # nothing changed
    owed.amounts[a["id"]] = Decimal(0)
    assert (await billing.patch(url, json={"state": "closed"}, headers=h)).json()["state"] == "closed"
    assert (await to("active")).status_code == 409
    fresh = await make_billing_account(client, h, customer)
    assert (await client.delete(f"{BA}/{fresh['id']}", headers=h)).status_code == 204


async def test_customer_sees_only_its_accounts(client: httpx.AsyncClient, tenant: str,
                                               customer: dict[str, Any]) -> None:
    h = bearer(tenant)
    mine = await make_billing_account(client, h, customer)
    other_party = await make_individual(client, h, given="Alan", family="Turing", email="a@t.example", ident="X2")
    other = await make_billing_account(client, h, await make_customer(client, h, other_party))
    me = bearer(tenant, "customer", party=customer["engagedParty"]["id"])
    r = await client.get(BA, headers=me)
    assert r.status_code == 200 and [x["id"] for x in r.json()] == [mine["id"]]
    assert (await client.get(f"{BA}/{other['id']}", headers=me)).status_code == 404
    assert (await client.patch(f"{BA}/{mine['id']}", json={"state": "active"}, headers=me)).status_code == 403
    assert (await client.get(f"{ACC}/billFormat", headers=me)).status_code == 403
