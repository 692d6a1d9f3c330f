"""Shared set-up of the billing tests: a billing account with products sold at given prices, usage records."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from typing import Any

import httpx
from sqlalchemy import text

from openbss.platform.tmf.resource import Context, system_context
from tests.conftest import session_services
from tests.customer.helpers import billing_account_body, created, make_customer, make_individual

TMF678 = "TMF678-CustomerBill-v4.0.0.swagger.json"
CB = "/tmf-api/customerBillManagement/v4"


async def billing_account(client: httpx.AsyncClient, h: dict[str, str], *, day: int = 1, tz: str = "Europe/Paris",
                          currency: str = "EUR", terms: int = 14) -> dict[str, Any]:
    party = await make_individual(client, h)
    customer = await make_customer(client, h, party)
    customer["engagedParty"] = {"id": party["id"], "@referredType": "Individual"}
    body = billing_account_body(customer, currency=currency, paymentTermsDays=terms,
                                billCycle={"billingDay": day, "frequency": "monthly", "timeZone": tz})
    body["creditLimit"] = {"unit": currency, "value": 1000}
    account = await created(await client.post("/tmf-api/accountManagement/v4/billingAccount", json=body, headers=h))
    account["_owner"] = [{"id": party["id"], "role": "owner", "@referredType": "Individual"}]
    return account


def recurring(value: str, *, rate: str = "20", name: str = "Monthly fee", price_id: str | None = None,
              period: str = "month") -> dict[str, Any]:
    return {"name": name, "priceType": "recurring", "recurringChargePeriod": period,
            "price": {"dutyFreeAmount": {"unit": "EUR", "value": value}, "taxRate": rate},
            "productOfferingPrice": {"id": price_id or f"pop-{uuid.uuid4().hex[:8]}", "name": name}}


def one_time(value: str, *, rate: str = "20", name: str = "Activation") -> dict[str, Any]:
    return {"name": name, "priceType": "oneTime",
            "price": {"dutyFreeAmount": {"unit": "EUR", "value": value}, "taxRate": rate},
            "productOfferingPrice": {"id": f"pop-{uuid.uuid4().hex[:8]}", "name": name}}


async def sell(rt: Any, tenant: str, account: dict[str, Any], start: str, prices: list[dict[str, Any]],
               **extra: Any) -> dict[str, Any]:
    """A product charged to ``account`` since ``start`` (an instant) at ``prices`` (as the order recorded them)."""
    async with rt.db.transaction(tenant) as session:
        ctx = system_context(tenant, session, "http://testserver")
        return await session_services().inventory.service.products.record(ctx, {
            "@type": "Product", "name": "Mobile plan", "status": "active", "startDate": start,
            "billingAccount": {"id": account["id"]}, "productPrice": prices,
            "relatedParty": [*account["relatedParty"], *account.get("_owner", [])], **extra})


async def terminate(rt: Any, tenant: str, product_id: str, when: str) -> None:
    async with rt.db.transaction(tenant) as session:
        ctx = system_context(tenant, session, "http://testserver")
        await session_services().inventory.service.change_product(
            ctx, product_id, {"status": "terminated", "terminationDate": when})


async def run(rt: Any, tenant: str, as_of: date, **kw: Any) -> Any:
    async with rt.db.transaction(tenant) as session:
        ctx = system_context(tenant, session, "http://testserver")
        return await session_services().billing.service.run(ctx, as_of, **kw)


async def in_tenant(rt: Any, tenant: str, sql: str, **params: Any) -> list[Any]:
    async with rt.db.transaction(tenant) as session:
        return list((await session.execute(text(sql), params)).all())


async def postpaid_line(rt: Any, tenant: str, account: dict[str, Any], product_id: str, subscriber: str, *,
                        payment_type: str = "postpaid") -> str:
    """The charging account of a line of ``account`` for ``product_id`` (a prepaid one with ``payment_type``)."""
    async with rt.db.transaction(tenant) as session:
        ctx: Context = system_context(tenant, session, "http://testserver")
        acc = await session_services().charging.service.open_account(
            ctx, subscriber=subscriber, payment_type=payment_type, billing_account_id=account["id"],
            product_id=product_id, plan={}, currency=account.get("currency") or "EUR")
        return str(acc["id"])


async def usage(rt: Any, tenant: str, charging_account: str, when: datetime, amount_minor: int, units: int = 60,
                usage_type: str = "voice", *, allowance_units: int = 0, called: str | None = None) -> str:
    usage_id = str(uuid.uuid4())
    body = {"usageCharacteristic": [{"name": "calledParty", "valueType": "string", "value": called}]} if called else {}
    async with rt.db.transaction(tenant) as session:
        await session.execute(text(
            "INSERT INTO charging_usage (id, body, account_id, session_id, request_number, rating_group, usage_type, "
            "units, allowance_units, amount_minor, currency, usage_date) VALUES (:id, CAST(:body AS jsonb), :acc, "
            ":sid, 0, 1, :ut, :units, :allowance, :amount, 'EUR', :when)"),
            {"id": usage_id, "body": json.dumps(body), "acc": charging_account, "sid": usage_id, "ut": usage_type,
             "units": units, "allowance": allowance_units, "amount": amount_minor, "when": when})
    return usage_id
