"""Shared helpers of the collections tests: billing accounts with a contact, bills made overdue (payments'
receivables), payments received (allocations), policies."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import func, select

from openbss.collections.models import Episode, StepExecution
from openbss.payments.models import Allocation, Receivable
from openbss.platform.messaging import OutboundMessage
from tests.conftest import bearer
from tests.customer.helpers import make_billing_account, make_customer, make_individual

API = "/api/collections/v1"
TODAY = date.today()


async def accounts(client: httpx.AsyncClient, tenant: str, n: int) -> list[dict[str, Any]]:
    h = bearer(tenant, "admin")
    party = await make_individual(client, h)
    customer = await make_customer(client, h, party)
    return [await make_billing_account(client, h, customer) for _ in range(n)]


async def overdue(rt: Any, tenant: str, account_id: str, amount: str, days: int, currency: str = "EUR") -> str:
    """A bill of ``account_id`` issued and due ``days`` ago, unpaid (as payments knows it)."""
    bill_id = str(uuid.uuid4())
    async with rt.db.transaction(tenant) as s:
        s.add(Receivable(bill_id=bill_id, billing_account_id=account_id, number=None,
                         bill_date=TODAY - timedelta(days=days + 14), due_date=TODAY - timedelta(days=days),
                         currency=currency, amount=Decimal(amount)))
    return bill_id


async def paid(rt: Any, tenant: str, account_id: str, bill_id: str | None, amount: str) -> None:
    """A payment received: the account's credit, allocated to the bill when named."""
    pid = str(uuid.uuid4())
    async with rt.db.transaction(tenant) as s:
        s.add(Allocation(payment_id=pid, billing_account_id=account_id, bill_id=bill_id, amount=Decimal(amount),
                         source="payment"))


def reminder(days: int, name: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"name": name or f"reminder day {days}", "action": "reminder", "daysPastDue": days,
            "channel": ["email"], "template": {"en": "Please pay {amount} {currency} ({daysPastDue} days late)"},
            **extra}


async def policy(client: httpx.AsyncClient, h: dict[str, str], steps: list[dict[str, Any]], **extra: Any
                 ) -> dict[str, Any]:
    r = await client.post(f"{API}/dunningPolicy", json={"name": "Standard", "isDefault": True, "dunningStep": steps,
                                                        **extra}, headers=h)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def executions(rt: Any, tenant: str) -> list[StepExecution]:
    async with rt.db.transaction(tenant) as s:
        return list((await s.execute(select(StepExecution).order_by(StepExecution.episode_id, StepExecution.step)))
                    .scalars())


async def episodes(rt: Any, tenant: str) -> list[Episode]:
    async with rt.db.transaction(tenant) as s:
        return list((await s.execute(select(Episode))).scalars())


async def messages(rt: Any, tenant: str) -> int:
    async with rt.db.transaction(tenant) as s:
        return int(await s.scalar(select(func.count()).select_from(OutboundMessage).where(
            OutboundMessage.purpose == "dunning")) or 0)



def assert_spec(definition: str, doc: Any) -> None:
    """``doc`` is valid against ``OpenBSS-Collections-v1.swagger.json``'s ``definition``."""
    import json

    from jsonschema import Draft4Validator

    from openbss.platform.tmf.spec import SPEC_DIR

    spec = json.loads((SPEC_DIR / "OpenBSS-Collections-v1.swagger.json").read_text())
    schema = {"definitions": spec["definitions"], "$ref": f"#/definitions/{definition}"}
    errors = sorted(Draft4Validator(schema).iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]
