"""Helpers of the charging tests: OCS accounts with a simple rating plan, credit-control requests."""

from __future__ import annotations

import itertools
import uuid
from decimal import Decimal
from typing import Any

from tests.conftest import session_services

OCS = "/ocs/v1/creditControl"
TMF654 = "/tmf-api/prepayBalanceManagement/v4"
TMF635 = "/tmf-api/usageManagement/v4"
DATA, VOICE, SMS = "32251@3gpp.org", "32260@3gpp.org", "32274@3gpp.org"
MB = 1024 * 1024

_numbers = itertools.count(1)


def plan(*, data_allowance_mb: int | None = None, voice_allowance_min: int | None = None) -> dict[str, Any]:
    """Data 0.01 EUR/MB (1 MB blocks), voice 0.60 EUR/min (1 cent a second, 1/1 increments), SMS 0.10."""
    data: dict[str, Any] = {"priceId": "price-data", "name": "Data", "currency": "EUR", "price": "0.01",
                            "per": str(MB), "tiers": [], "allowances": []}
    voice: dict[str, Any] = {"priceId": "price-voice", "name": "Voice", "currency": "EUR", "price": "0.60",
                             "per": "60", "initial": 1, "subsequent": 1, "tiers": [], "allowances": []}
    if data_allowance_mb:
        data["allowances"] = [{"name": f"{data_allowance_mb} MB", "quantity": {"amount": data_allowance_mb,
                                                                             "units": "MB"}}]
    if voice_allowance_min:
        voice["allowances"] = [{"name": "minutes", "quantity": {"amount": voice_allowance_min, "units": "minute"}}]
    return {"data": data, "voice": voice,
            "sms": {"priceId": "price-sms", "name": "SMS", "currency": "EUR", "price": "0.10", "per": "1",
                    "tiers": [], "allowances": []}}


def entry(usage_type: str, price: str, per: int, **extra: Any) -> dict[str, Any]:
    """One usage type's rating entry: ``price`` EUR per ``per`` base units, with ``extra`` settings (increments,
    allowances, rounding...)."""
    return {usage_type: {"priceId": f"price-{usage_type}", "name": usage_type.title(), "currency": "EUR",
                         "price": price, "per": str(per), "tiers": [], "allowances": [], **extra}}


def msisdn() -> str:
    return f"+3361{uuid.uuid4().int % 10**7:07d}"


async def open_account(rt: Any, tenant: str, *, payment_type: str = "prepaid", balance: str = "10.00",
                       credit_limit: str | None = None, validity: int = 300, low_balance: str | None = None,
                       rating: dict[str, Any] | None = None, **plan_args: Any) -> dict[str, Any]:
    from openbss.charging import service

    number = msisdn()
    async with rt.db.transaction(tenant) as session:
        ctx = service.system_context(session, tenant, "http://testserver")
        account = await session_services().charging.service.open_account(
            ctx, subscriber=number, payment_type=payment_type, currency="EUR",
            plan={**plan(**plan_args), **(rating or {})},
            credit_limit=Decimal(credit_limit) if credit_limit is not None else None,
            initial_balance=Decimal(balance), quota_validity_seconds=validity, party_id=f"party-{number[1:]}",
            low_balance=Decimal(low_balance) if low_balance else None)
    account["msisdn"] = number
    return account


async def account_state(rt: Any, tenant: str, account_id: str) -> dict[str, Any]:
    from openbss.charging import repository as repo
    from openbss.charging import service

    async with rt.db.transaction(tenant) as session:
        ctx = service.system_context(session, tenant, "http://testserver")
        account = await service.get_account(ctx, account_id)
        account["usage"] = await repo.usage_totals(await repo.session_connection(session), account_id)
    money = [b for b in account["buckets"] if b["unit"] == "money"]
    account["money"] = sum(int(b["remaining"]) for b in money)
    account["money_reserved"] = sum(int(b["reserved"]) for b in money)
    return account


def ccr(kind: str, session_id: str, number: int, msisdn: str | None = None, *, context: str = VOICE,
        groups: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"sessionId": session_id, "requestType": kind, "requestNumber": number,
                            "serviceContextId": context, "multipleServicesCreditControl": groups or [], **extra}
    if msisdn:
        body["subscriptionId"] = {"type": "END_USER_E164", "data": msisdn}
    return body


def group(rg: int, requested: int | None = None, used: int | None = None, key: str = "time") -> dict[str, Any]:
    out: dict[str, Any] = {"ratingGroup": rg}
    if requested is not None:
        out["requestedServiceUnit"] = {key: requested}
    if used is not None:
        out["usedServiceUnit"] = {key: used}
    return out
