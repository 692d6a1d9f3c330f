"""Shared set-up of the payments tests: a billing account with payment methods, issued bills."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx

from openbss.platform.tmf.resource import system_context
from tests.billing.helpers import billing_account, in_tenant, one_time, run, sell
from tests.conftest import session_services

PM = "/tmf-api/paymentMethod/v4/paymentMethod"
PAY = "/tmf-api/paymentManagement/v4"


def card(account: dict[str, Any], token: str = "tok_visa", **extra: Any) -> dict[str, Any]:  # noqa: S107
    return {"@type": "tokenizedCard", "name": "Visa ending 4242", "token": token, "brand": "visa",
            "lastFourDigits": "4242", "expirationDate": "2031-12-31T23:59:59Z",
            "account": [{"id": account["id"]}], **extra}


def cash(account: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"@type": "cash", "name": "Cash at the shop", "account": [{"id": account["id"]}], **extra}


async def method(client: httpx.AsyncClient, h: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    r = await client.post(PM, json=body, headers=h)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def issued_bill(client: httpx.AsyncClient, rt: Any, tenant: str, h: dict[str, str], value: str = "100.00",
                      account: dict[str, Any] | None = None, as_of: date = date(2027, 2, 1)) -> tuple[
                          dict[str, Any], dict[str, Any]]:
    """A billing account (or ``account``) with one issued bill of ``value`` + 20 % VAT, and that bill."""
    account = account or await billing_account(client, h)
    await sell(rt, tenant, account, f"{as_of.isoformat()}T10:00:00.000Z", [one_time(value)])
    report = await run(rt, tenant, as_of, finalize=True, account_ids=[account["id"]])
    assert report.finalized == 1, report.as_dict()
    [row] = await in_tenant(rt, tenant, "SELECT id FROM billing_customer_bill WHERE billing_account_id = :a "
                                        "ORDER BY issue_seq DESC LIMIT 1", a=account["id"])
    async with rt.db.transaction(tenant) as session:
        bill = await session_services().billing.service.get_bill(
            system_context(tenant, session, "http://testserver"), row[0])
    return account, bill


async def pay(client: httpx.AsyncClient, h: dict[str, str], account: dict[str, Any], method_id: str, value: str,
              bills: list[str] | None = None, key: str | None = None) -> httpx.Response:
    body: dict[str, Any] = {"account": {"id": account["id"]}, "paymentMethod": {"id": method_id},
                            "totalAmount": {"unit": "EUR", "value": value}}
    if bills:
        body["paymentItem"] = [{"item": {"id": b, "@referredType": "CustomerBill"}} for b in bills]
    headers = {**h, "Idempotency-Key": key} if key else h
    return await client.post(f"{PAY}/payment", json=body, headers=headers)
