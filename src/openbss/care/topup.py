"""An agent's top-up of a prepaid line's main balance (TMF654's top-up, done by online charging through the
``PrepaidBalances`` protocol), audited with the agent's identity and recorded as an interaction. Whether the agent
may top up that much alone, or needs a supervisor's approval, is decided by ``adjustments.Adjustments``."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any, Protocol

from openbss.care.errors import InvalidAdjustment
from openbss.care.service import InteractionService, channel_ref
from openbss.platform import audit
from openbss.platform.db import utcnow
from openbss.platform.errors import Conflict
from openbss.platform.tmf.resource import Context
from openbss.platform.tmf.spec import format_datetime
from openbss.pricing.money import MINOR_UNITS
from openbss.pricing.usage import to_minor


class PrepaidBalances(Protocol):
    """What care asks online charging (``charging.service.ChargingService``)."""

    async def get_account(self, ctx: Context, account_id: str | None = None, *, subscriber: str | None = None,
                          product_id: str | None = None) -> dict[str, Any]: ...

    async def topup(self, ctx: Context, account_id: str, amount: int, *, bucket_id: str | None = None,
                    reason: str | None = None, base_url: str | None = None, funding: str = "external",
                    ) -> dict[str, Any]: ...


class PrepaidTopUp:
    def __init__(self, balances: PrepaidBalances, interactions: InteractionService) -> None:
        self.balances = balances
        self.interactions = interactions

    async def line(self, ctx: Context, subscriber: str, amount: Decimal) -> dict[str, Any]:
        """The prepaid charging account of the line, checked: prepaid, and ``amount`` fits its currency."""
        account = await self.balances.get_account(ctx, subscriber=subscriber)
        if account.get("payment_type") != "prepaid":
            raise Conflict(f"line '{subscriber}' is {account.get('payment_type')}: only a prepaid line is topped up",
                           code="NOT_PREPAID")
        currency = str(account.get("currency") or "EUR")
        if currency not in MINOR_UNITS or amount != amount.quantize(Decimal(1).scaleb(-MINOR_UNITS[currency])):
            raise InvalidAdjustment(f"'amount': {amount} has more decimals than {currency} allows")
        return account

    async def top_up(self, ctx: Context, subscriber: str, amount: Decimal, reason: str | None, *,
                     requested_by: str | None = None, approval_id: str | None = None) -> dict[str, Any]:
        """Credit the line's main balance now. ``requested_by``/``approval_id``: an agent's top-up a supervisor
        (the caller) approved."""
        account = await self.line(ctx, subscriber, amount)
        currency = str(account.get("currency") or "EUR")
        amount = amount.quantize(Decimal(1).scaleb(-MINOR_UNITS[currency]))  # 25.0000 (an approval's) -> 25.00
        done = await self.balances.topup(ctx, str(account["id"]), to_minor(amount, currency),
                                         reason=reason or "agent top-up", funding="goodwill")
        after = await self.balances.get_account(ctx, subscriber=subscriber)
        agent = requested_by or ctx.principal.subject
        out: dict[str, Any] = {"subscriber": subscriber, "amount": {"value": str(amount), "unit": currency},
                               "balance": {"value": str(after.get("balance")), "unit": currency},
                               "bucket": done.get("bucket"), "agent": agent}
        if approval_id:
            out.update({"approvedBy": ctx.principal.subject, "approval": {"id": approval_id}})
        await audit.record(ctx.session, ctx.principal, resource_type="PrepaidTopUp", resource_id=str(account["id"]),
                           action="create", changes={"topUp": {"old": None, "new": out}})
        stamp = format_datetime(utcnow())
        by = agent if not approval_id else f"{agent}, approved by {ctx.principal.subject}"
        await self.interactions.record_once(ctx, str(uuid.uuid4()), {
            "@type": "PartyInteraction", "direction": "inbound", "reason": "Prepaid top-up by an agent",
            "status": "completed", "description": f"{amount} {currency} added to {subscriber} by {by}",
            "interactionDate": {"startDateTime": stamp}, "channel": [channel_ref(ctx.base_url, "phone")],
            "relatedParty": [{"id": str(account["party_id"]), "role": "customer",
                              "@referredType": str(account.get("party_type") or "Individual")}]
            if account.get("party_id") else []})
        return out


__all__ = ["PrepaidBalances", "PrepaidTopUp"]
