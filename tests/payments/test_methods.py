"""TMF670 payment methods: cards are tokens (never a card number), SEPA mandates carry a valid IBAN, one default
per billing account, revoked or expired methods refused."""

from __future__ import annotations

from typing import Any

from tests.billing.helpers import billing_account, in_tenant
from tests.payments.helpers import PM, card, cash, method, pay


async def test_a_card_is_a_token_with_brand_last_four_and_expiry(client: Any, admin_headers: dict[str, str]) -> None:
    account = await billing_account(client, admin_headers)
    created = await method(client, admin_headers, card(account))
    assert created["@type"] == "tokenizedCard" and created["status"] == "active"
    assert created["lastFourDigits"] == "4242" and created["token"] == "tok_visa"
    assert created["account"][0]["id"] == account["id"]
    got = await client.get(f"{PM}/{created['id']}", headers=admin_headers)
    assert got.status_code == 200 and got.json()["brand"] == "visa"


async def test_card_numbers_are_refused_and_nothing_is_written(client: Any, rt: Any, tenant: str,
                                                                admin_headers: dict[str, str]) -> None:
    account = await billing_account(client, admin_headers)
    pan = {"@type": "bankCard", "name": "card", "cardNumber": "4242424242424242", "brand": "visa",
           "expirationDate": "2031-01-01T00:00:00Z", "nameOnCard": "A B", "account": [{"id": account["id"]}]}
    r = await client.post(PM, json=pan, headers=admin_headers)
    assert r.status_code == 400 and "card numbers" in r.json()["message"]
    r = await client.post(PM, json={**card(account), "cardNumber": "4242424242424242"}, headers=admin_headers)
    assert r.status_code == 400
    r = await client.post(PM, json={**card(account), "lastFourDigits": "42a2"}, headers=admin_headers)
    assert r.status_code == 400 and "lastFourDigits" in r.json()["message"]
    assert await in_tenant(rt, tenant, "SELECT id FROM payments_payment_method") == []


async def test_a_sepa_mandate_needs_a_valid_iban_a_reference_and_a_signature_date(
        client: Any, admin_headers: dict[str, str]) -> None:
    account = await billing_account(client, admin_headers)
    body = {"@type": "directDebit", "name": "SEPA mandate", "mandateType": "recurrent", "owner": "Ada Lovelace",
            "bank": "Commerzbank", "firstDebitDate": "2027-01-05T00:00:00Z",
            "accountNumber": "DE89 3704 0044 0532 0130 00",
            "mandateId": "MDT-000123", "signatureDate": "2026-12-01T00:00:00Z", "account": [{"id": account["id"]}]}
    created = await method(client, admin_headers, body)
    assert created["accountNumber"] == "DE89370400440532013000" and created["BIC"] == "COBADEFFXXX"
    bad = await client.post(PM, json={**body, "accountNumber": "DE89370400440532013001"}, headers=admin_headers)
    assert bad.status_code == 400 and "IBAN" in bad.json()["message"]
    no_ref = await client.post(PM, json={k: v for k, v in body.items() if k != "mandateId"}, headers=admin_headers)
    assert no_ref.status_code == 400 and "mandateId" in no_ref.json()["message"]


async def test_one_default_method_per_account(client: Any, rt: Any, tenant: str,
                                              admin_headers: dict[str, str]) -> None:
    account = await billing_account(client, admin_headers)
    first = await method(client, admin_headers, card(account, isPreferred=True))
    second = await method(client, admin_headers, cash(account, isPreferred=True))
    rows = await in_tenant(rt, tenant, "SELECT id FROM payments_payment_method WHERE is_default")
    assert [r[0] for r in rows] == [second["id"]]
    assert (await client.get(f"{PM}/{first['id']}", headers=admin_headers)).json()["isPreferred"] is False
    # a payment without a method uses the default
    r = await client.patch(f"{PM}/{first['id']}", json={"name": "Visa", "isPreferred": True},
                           headers={**admin_headers, "Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    rows = await in_tenant(rt, tenant, "SELECT id FROM payments_payment_method WHERE is_default")
    assert [r[0] for r in rows] == [first["id"]]


async def test_revoked_and_expired_methods_are_refused(client: Any, admin_headers: dict[str, str]) -> None:
    account = await billing_account(client, admin_headers)
    expired = await client.post(PM, json=card(account, expirationDate="2020-01-31T23:59:59Z"), headers=admin_headers)
    assert expired.status_code == 422 and "expired" in expired.json()["message"]
    m = await method(client, admin_headers, cash(account))
    r = await client.patch(f"{PM}/{m['id']}", json={"name": "Cash", "status": "revoked"},
                           headers={**admin_headers, "Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200 and r.json()["status"] == "revoked"
    refused = await pay(client, admin_headers, account, m["id"], "10.00")
    assert refused.status_code == 422 and "revoked" in refused.json()["message"]
    again = await client.patch(f"{PM}/{m['id']}", json={"name": "Cash", "status": "active"},
                               headers={**admin_headers, "Content-Type": "application/merge-patch+json"})
    assert again.status_code == 422
