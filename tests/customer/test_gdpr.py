"""GDPR: export every personal datum of a party (API and CLI); erasure anonymizes while keeping financial
records, refused while the party has an open balance or an active product (guards other domains register)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from openbss.platform import personal_data
from tests.conftest import Owed, bearer
from tests.customer.helpers import (
    BA,
    CUST,
    IND,
    ROLE,
    SEARCH,
    make_billing_account,
    make_customer,
    make_individual,
    raw_rows,
)

PRIV = "/privacy/v1/party"


@pytest.fixture
async def ada(client: httpx.AsyncClient, tenant: str) -> dict[str, Any]:
    h = bearer(tenant)
    ind = await make_individual(client, h)
    customer = await make_customer(client, h, ind)
    account = await make_billing_account(client, h, customer)
    role = await client.post(ROLE, json={"name": "referrer", "engagedParty": {"id": ind["id"],
                                                                             "@referredType": "Individual"}},
                             headers=h)
    return {"party": ind, "customer": customer, "account": account, "role": role.json()}


async def test_export(client: httpx.AsyncClient, tenant: str, ada: dict[str, Any]) -> None:
    pid = ada["party"]["id"]
    r = await client.get(f"{PRIV}/{pid}/personalData", headers=bearer(tenant))
    assert r.status_code == 200, r.text
    out = r.json()
    data = out["personalData"]
    assert out["partyId"] == pid and out["exportedAt"]
    assert data["party"]["familyName"] == "Lovelace"
    assert data["party"]["contactMedium"][0]["characteristic"]["emailAddress"] == "ada.lovelace@example.com"
    assert [c["id"] for c in data["customers"]] == [ada["customer"]["id"]]
    assert [a["id"] for a in data["accounts"]] == [ada["account"]["id"]]
    assert data["accounts"][0]["contact"][0]["contactName"] == "Ada Lovelace"
    assert [x["id"] for x in data["partyRoles"]] == [ada["role"]["id"]]
    # the data subject may export its own data, not another's; an agent may; other staff may not
    me = bearer(tenant, "customer", party=pid)
    assert (await client.get(f"{PRIV}/{pid}/personalData", headers=me)).json()["personalData"].keys() == data.keys()
    other = await make_individual(client, bearer(tenant), given="Alan", family="Turing", email="a@t.example",
                                  ident="X2")
    assert (await client.get(f"{PRIV}/{other['id']}/personalData", headers=me)).status_code == 403
    assert (await client.get(f"{PRIV}/{pid}/personalData", headers=bearer(tenant, "csr_agent"))).status_code == 200
    assert (await client.get(f"{PRIV}/{pid}/personalData", headers=bearer(tenant, "network_ops"))).status_code == 403
    assert (await client.get(f"{PRIV}/nobody/personalData", headers=bearer(tenant))).status_code == 404
    audit = await client.get("/audit/v1/auditRecord", params={"resourceType": "Party", "resourceId": pid},
                             headers=bearer(tenant))
    assert [x["action"] for x in audit.json()] == ["gdpr-export"] * 3


async def test_erasure_refused_with_open_balance_or_active_product(client: httpx.AsyncClient, tenant: str,
                                                                   ada: dict[str, Any], rt: Any, services: Any,
                                                                   owing: tuple[httpx.AsyncClient, Owed]) -> None:
    """The guards ask the domains that know: the open balance of the party's billing accounts (billing's provider;
    until billing exists nothing is owed) and the product inventory (live products of the party)."""
    from openbss.platform.tmf.resource import system_context

    pid = ada["party"]["id"]
    # a live product of the party, recorded in the inventory
    async with rt.db.transaction(tenant) as session:
        ctx = system_context(tenant, session, "http://testserver")
        product = await services.inventory.service.record_subscription(ctx, {
            "name": "Fibre 1G", "relatedParty": [{"id": pid, "role": "owner", "@referredType": "Individual"}]},
            [], [])
    r = await client.post(f"{PRIV}/{pid}/erasure", headers=bearer(tenant))
    assert r.status_code == 409 and r.json()["code"] == "ERASURE_REFUSED", r.text
    assert "1 live product(s): 'Fibre 1G' (active)" in r.json()["message"]
    async with rt.db.transaction(tenant) as session:
        await services.inventory.service.set_product_status(system_context(tenant, session, "http://testserver"),
                                                             product["id"], "terminated")
    # the billing account owes money (a process whose billing domain reports it)
    owing_client, owed = owing
    owed.amounts[ada["account"]["id"]] = Decimal("40.00")
    r = await owing_client.post(f"{PRIV}/{pid}/erasure", headers=bearer(tenant))
    assert r.status_code == 409 and r.json()["code"] == "ERASURE_REFUSED", r.text
    assert f"billing account '{ada['account']['id']}' has an open balance of 40.00" in r.json()["message"]
    got = (await client.get(f"{IND}/{pid}", headers=bearer(tenant))).json()
    assert got["familyName"] == "Lovelace"  # nothing changed
    assert (await client.post(f"{PRIV}/{pid}/erasure", headers=bearer(tenant, "csr_agent"))).status_code == 403


async def test_erasure_anonymizes_and_keeps_financial_records(client: httpx.AsyncClient, tenant: str,
                                                              ada: dict[str, Any], rt: Any) -> None:
    h = bearer(tenant)
    pid = ada["party"]["id"]
    r = await client.post(f"{PRIV}/{pid}/erasure", headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["anonymizedRecords"] == {"accounts": 1, "customers": 1, "partyRoles": 1, "party": 1,
                                             "selfcareIdentities": 0, "messages": 0, "copies": 0}
    party = (await client.get(f"{IND}/{pid}", headers=h)).json()
    assert party["givenName"] == party["familyName"] == party["fullName"] == "[erased]"
    for gone in ("contactMedium", "birthDate", "individualIdentification"):
        assert gone not in party
    customer = (await client.get(f"{CUST}/{ada['customer']['id']}", headers=h)).json()
    assert customer["name"] == "[erased]" and customer["engagedParty"]["name"] == "[erased]"
    account = (await client.get(f"{BA}/{ada['account']['id']}", headers=h)).json()
    assert "contact" not in account and all(rp["name"] == "[erased]" for rp in account["relatedParty"])
    assert account["creditLimit"] == {"unit": "EUR", "value": 250.5} and account["currency"] == "EUR"
    assert account["billCycle"]["billingDay"] == 5
    # nothing findable by the old personal data any more
    for params in ({"email": "ada.lovelace@example.com"}, {"phone": "+447700900123"},
                   {"identification": "P1234567"}, {"name": "lovelace"}):
        r = await client.get(SEARCH, params=params, headers=h)
        assert r.headers["x-total-count"] == "0", params
    index = await raw_rows(rt, "SELECT attribute FROM search_entry WHERE tenant_id = :t AND resource_id = :pid",
                           t=tenant, pid=pid)
    # of the personal attributes, only the '[erased]' placeholders of the names are still indexed
    personal = {a for (a,) in index if a.startswith(("contactMedium", "individualIdentification", "birthDate"))}
    assert index and not personal, personal
    audit = await client.get("/audit/v1/auditRecord", params={"resourceType": "Party", "resourceId": pid},
                             headers=h)
    assert [x["action"] for x in audit.json()] == ["gdpr-erase"]


@pytest.mark.slow
async def test_cli_export(client: httpx.AsyncClient, tenant: str, ada: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "export.json"
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "openbss"), "gdpr", "export", "--tenant", tenant, "--party",
        ada["party"]["id"], "--out", str(out), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=dict(os.environ))
    stdout, _ = await proc.communicate()
    assert proc.returncode == 0, stdout.decode()
    data = json.loads(out.read_text())
    assert data["personalData"]["party"]["familyName"] == "Lovelace"
    assert data["personalData"]["customers"][0]["id"] == ada["customer"]["id"]
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "openbss"), "gdpr", "export", "--tenant", tenant, "--party", "nobody",
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=dict(os.environ))
    await proc.communicate()
    assert proc.returncode == 1


async def test_a_party_id_is_one_value_not_a_query(client: httpx.AsyncClient, tenant: str,
                                                   ada: dict[str, Any]) -> None:
    """An id with ',' or '&' must not widen an export or an erasure to other parties."""
    h = bearer(tenant)
    other = await make_individual(client, h)
    await make_customer(client, h, other)
    pid = ada["party"]["id"]
    for crafted in (f"{pid},{other['id']}", f"{pid}&engagedParty.id={other['id']}"):
        r = await client.get(f"{PRIV}/{httpx.URL(crafted)}/personalData", headers=h)
        assert r.status_code == 404, r.text
        r = await client.post(f"{PRIV}/{httpx.URL(crafted)}/erasure", headers=h)
        assert r.status_code == 404, r.text
    # both parties keep their data
    for party in (ada["party"]["id"], other["id"]):
        assert (await client.get(f"{IND}/{party}", headers=h)).json()["familyName"] != personal_data.ERASED


async def test_export_covers_lines_usage_carts_and_messages(client: httpx.AsyncClient, tenant: str,
                                                            ada: dict[str, Any], rt: Any, services: Any) -> None:
    """The export reaches what other domains hold on the party: its charging accounts (lines and buckets), its
    usage records, its shopping carts and the messages sent to its contacts."""
    from openbss.charging import service as charging
    from openbss.platform import messaging
    from tests.charging.helpers import OCS, SMS, ccr, group, msisdn, plan

    pid, customer = ada["party"]["id"], ada["customer"]
    number = msisdn()
    async with rt.db.transaction(tenant) as session:
        await services.charging.service.open_account(
            charging.system_context(session, tenant, "http://testserver"), subscriber=number,
            payment_type="prepaid", currency="EUR", plan=plan(), initial_balance=Decimal("5.00"), party_id=pid)
        await messaging.send(session, "email", "ada.lovelace@example.com", "Welcome", purpose="notice")
    r = await client.post(OCS, headers=bearer(tenant, "system"), json=ccr(
        "EVENT_REQUEST", "sms-gdpr", 0, number, context=SMS, requestedAction="DIRECT_DEBITING",
        groups=[group(5, 1, key="serviceSpecificUnits")]))
    assert r.status_code == 200 and r.json()["resultCode"] == 2001, r.text
    r = await client.post("/tmf-api/shoppingCart/v4/shoppingCart", headers=bearer(tenant), json={
        "relatedParty": [{"id": customer["id"], "@referredType": "Customer", "role": "customer"}]})
    assert r.status_code == 201, r.text
    cart = r.json()
    r = await client.get(f"{PRIV}/{pid}/personalData", headers=bearer(tenant))
    assert r.status_code == 200, r.text
    data = r.json()["personalData"]
    assert [a["subscriber"] for a in data["chargingAccounts"]] == [number.lstrip("+")]
    assert data["chargingAccounts"][0]["balance"] == 4.9 and data["chargingAccounts"][0]["buckets"]
    assert len(data["usage"]) == 1 and data["usage"][0]["usageType"] == "sms"
    assert [c["id"] for c in data["shoppingCarts"]] == [cart["id"]]
    assert [(m["channel"], m["to"], m["text"]) for m in data["messages"]] == [
        ("email", "ada.lovelace@example.com", "Welcome")]
    # the party's own token exports the same (its reads stay scoped to its party)
    mine = (await client.get(f"{PRIV}/{pid}/personalData", headers=bearer(tenant, "customer", party=pid))).json()
    assert len(mine["personalData"]["usage"]) == 1
