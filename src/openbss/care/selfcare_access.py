"""An agent resets a customer's self-care access from the console: the self-care domain does the reset (its
sessions and identity links, a sign-in link sent to the customer, audited with the agent's identity) through the
``SelfcareAccess`` protocol; care records the contact as an interaction of the customer."""

from __future__ import annotations

import uuid
from typing import Any, Protocol

from openbss.care.errors import InvalidAdjustment
from openbss.care.service import Customers, InteractionService, channel_ref
from openbss.platform.db import utcnow
from openbss.platform.tmf.resource import Context
from openbss.platform.tmf.spec import format_datetime

MAX_REASON = 500


class SelfcareAccess(Protocol):
    """What care asks self-care (``selfcare.access.SelfcareAccess``)."""

    async def reset_access(self, ctx: Context, customer_id: str, reason: str | None = None) -> dict[str, Any]: ...


class SelfcareReset:
    def __init__(self, access: SelfcareAccess | None, interactions: InteractionService,
                 customers: Customers) -> None:
        self.access = access
        self.interactions = interactions
        self.customers = customers

    async def reset(self, ctx: Context, customer_id: str, reason: str | None) -> dict[str, Any]:
        if self.access is None:
            raise InvalidAdjustment("self-care is not available", code="SELFCARE_UNAVAILABLE")
        reason = (reason or "").strip() or None
        if reason is not None and len(reason) > MAX_REASON:
            raise InvalidAdjustment(f"'reason' is at most {MAX_REASON} characters", code="INVALID_RESET")
        out = await self.access.reset_access(ctx, customer_id, reason)
        notified = out.get("notified") or {}
        told = f"; sign-in link sent by {notified['channel']} to {notified['to']}" if notified else \
            "; no email or mobile number on file: no sign-in link sent"
        party = await self._party(ctx, customer_id)
        stamp = format_datetime(utcnow())
        interaction = str(uuid.uuid4())
        await self.interactions.record_once(ctx, interaction, {
            "@type": "PartyInteraction", "direction": "inbound", "reason": "Self-care access reset",
            "status": "completed", "description": f"Self-care access reset by {ctx.principal.subject}"
                                                  f"{f' ({reason})' if reason else ''}: {out['sessionsRevoked']} "
                                                  f"session(s) ended, {out['identitiesUnlinked']} sign-in "
                                                  f"identity(ies) unlinked{told}",
            "interactionDate": {"startDateTime": stamp}, "channel": [channel_ref(ctx.base_url, "phone")],
            "relatedParty": [{"id": customer_id, "role": "customer", "@referredType": "Customer"}, *party]})
        return {**out, "interaction": {"id": interaction}}

    async def _party(self, ctx: Context, customer_id: str) -> list[dict[str, Any]]:
        customer = await self.customers.find_customer(ctx, customer_id)
        ref = (customer or {}).get("engagedParty") or {}
        return [{"id": ref["id"], "role": "customer", "@referredType": ref.get("@referredType") or "Individual"}] \
            if ref.get("id") else []


__all__ = ["SelfcareAccess", "SelfcareReset"]
