"""Interactions recorded by the system from other domains' events about money: a payment received or failed, a
refund issued or failed, a dunning reminder sent (collections' ``DunningStepExecutedEvent`` of a reminder step
done) — and, in the same way, any domain's event that is a contact with the customer (add an ``InteractionRule``).

A rule names the events it reads (API, event types, the resource's key in the payload) and says, from the resource
in the event, whether it is a contact and what it is (``Contact``); the consumer finds the customer (the resource's
related parties, and those of the billing account it names), and records the interaction under an id derived from
the rule and the contact's key, so a redelivered or replayed event — or the same state announced by two event
types — records one interaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from openbss.care.service import CHANNELS, CareService, channel_ref
from openbss.collections import events as collections
from openbss.payments import events as payments
from openbss.platform.errors import NotFound
from openbss.platform.events.consumers import Consumer, Event, subscription
from openbss.platform.tmf.resource import Context, system_context
from openbss.platform.tmf.spec import format_datetime

DOMAIN = "care"


class BillingAccounts(Protocol):
    """What care asks the account domain (``account.service.AccountService``)."""

    async def get_billing_account(self, ctx: Context, account_id: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Contact:
    """What an event says happened with the customer."""

    key: str  # unique per contact: e.g. "payment:<id>:succeeded"
    reason: str
    description: str
    direction: str  # inbound (from the customer) | outbound (to the customer)
    item: dict[str, Any]  # the entity it was about: {id, href, @referredType}
    role: str  # the item's role in the interaction
    billing_account: str | None = None
    parties: list[dict[str, Any]] = field(default_factory=list)
    channel: str = "system"
    date: str | None = None


@dataclass(frozen=True)
class InteractionRule:
    name: str  # the consumer's name, and the namespace of the interactions' ids
    api: str
    event_types: frozenset[str]
    resource_key: str  # the resource's key in the event payload
    contact: Callable[[dict[str, Any]], Contact | None]


def _money(m: dict[str, Any] | None) -> str:
    m = m or {}
    return f"{m.get('value')} {m.get('unit') or ''}".strip()


def _account(doc: dict[str, Any]) -> str | None:
    return str((doc.get("account") or {}).get("id") or "") or None


def payment_contact(doc: dict[str, Any]) -> Contact | None:
    status = doc.get("status")
    if status not in ("succeeded", "failed") or not doc.get("id"):
        return None
    ok = status == "succeeded"
    return Contact(
        key=f"payment:{doc['id']}:{status}", reason="Payment received" if ok else "Payment failed",
        description=f"Payment of {_money(doc.get('totalAmount'))} {'received' if ok else 'failed'}"
                    + (f" ({(doc.get('paymentMethod') or {}).get('name')})"
                       if (doc.get("paymentMethod") or {}).get("name") else ""),
        direction="inbound", role="payment",
        item={"id": doc["id"], "href": doc.get("href"), "@referredType": "Payment"},
        billing_account=_account(doc), date=doc.get("statusDate") or doc.get("paymentDate"))


def refund_contact(doc: dict[str, Any]) -> Contact | None:
    status = doc.get("status")
    if status not in ("succeeded", "failed") or not doc.get("id"):
        return None
    ok = status == "succeeded"
    return Contact(
        key=f"refund:{doc['id']}:{status}", reason="Refund issued" if ok else "Refund failed",
        description=f"Refund of {_money(doc.get('totalAmount'))} {'issued' if ok else 'failed'}",
        direction="outbound", role="refund",
        item={"id": doc["id"], "href": doc.get("href"), "@referredType": "Refund"},
        billing_account=_account(doc), date=doc.get("statusDate") or doc.get("refundDate"))


def reminder_contact(doc: dict[str, Any]) -> Contact | None:
    """A reminder step of a dunning episode that was done (sent): one interaction per step execution (a step is
    taken once per episode, so a redelivery or a replay records nothing more). Other steps, and reminders that
    failed or were skipped, are no contact with the customer."""
    if doc.get("action") != "reminder" or doc.get("state") != "done" or not doc.get("id"):
        return None
    episode = doc.get("dunningEpisode") or {}
    name = doc.get("name") or f"step {doc.get('step')}"
    return Contact(
        key=f"dunningStep:{doc['id']}", reason="Payment reminder",
        description=f"Dunning reminder '{name}' sent: {_money(doc.get('overdueAmount'))} overdue",
        direction="outbound", role="dunningEpisode",
        item={"id": episode.get("id") or doc["id"], "href": episode.get("href"), "@referredType": "DunningEpisode"},
        billing_account=str((doc.get("billingAccount") or {}).get("id") or "") or None,
        date=doc.get("executionDate"))


PAYMENT_RULES = (
    InteractionRule("payment-interaction", payments.API,
                    frozenset({"PaymentCreateEvent", "PaymentStateChangeEvent"}), "payment", payment_contact),
    InteractionRule("refund-interaction", payments.API,
                    frozenset({"RefundCreateEvent", "RefundStateChangeEvent"}), "refund", refund_contact),
)
DUNNING_RULES = (
    InteractionRule("dunning-reminder-interaction", collections.API, frozenset({collections.STEP_EXECUTED}),
                    "dunningStepExecution", reminder_contact),
)


def _party_refs(ctx: Context, refs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for p in refs:
        if not p.get("id"):
            continue
        kind = str(p.get("@referredType") or "Party")
        path = "customerManagement/v4/customer" if kind == "Customer" else \
            f"party/v4/{kind[:1].lower()}{kind[1:]}"
        out.setdefault(str(p["id"]), {"id": str(p["id"]), "role": p.get("role") or "customer",
                                      "@referredType": kind, "href": f"{ctx.base_url}/tmf-api/{path}/{p['id']}"})
    return list(out.values())


async def record_contact(care: CareService, accounts: BillingAccounts, ctx: Context, rule: InteractionRule,
                         contact: Contact, at: datetime) -> bool:
    parties = list(contact.parties)
    if contact.billing_account:
        try:
            account = await accounts.get_billing_account(ctx, contact.billing_account)
        except NotFound:
            account = {}
        parties += account.get("relatedParty") or []
    item = {k: v for k, v in contact.item.items() if v}
    item.setdefault("href", f"{ctx.base_url}/tmf-api/{rule.api}/v4/{rule.resource_key}/{item['id']}")
    doc = {
        "@type": "PartyInteraction", "direction": contact.direction, "reason": contact.reason,
        "status": "completed", "description": contact.description,
        "interactionDate": {"startDateTime": contact.date or format_datetime(at)},
        "channel": [channel_ref(ctx.base_url, contact.channel if contact.channel in CHANNELS else "system")],
        "relatedParty": _party_refs(ctx, parties),
        "interactionItem": [{"id": "1", "item": {**item, "role": contact.role}}],
    }
    return await care.interactions.record_once(
        ctx, str(uuid.uuid5(uuid.NAMESPACE_URL, f"{rule.name}:{contact.key}")), doc)


def interaction_consumer(care: CareService, accounts: BillingAccounts, rule: InteractionRule,
                         base_url: str) -> Consumer:
    async def handle(session: AsyncSession, event: Event) -> None:
        doc = (event.envelope.get("event") or {}).get(rule.resource_key) or {}
        contact = rule.contact(doc)
        if contact is None:
            return
        at = datetime.fromisoformat(str(event.envelope["eventTime"]).replace("Z", "+00:00"))
        ctx = system_context(event.tenant_id, session, base_url, subject="care")
        await record_contact(care, accounts, ctx, rule, contact, at)

    return subscription(DOMAIN, rule.name, handle, on=set(rule.event_types), apis={rule.api})


__all__ = ["DUNNING_RULES", "PAYMENT_RULES", "BillingAccounts", "Contact", "InteractionRule", "interaction_consumer",
           "payment_contact", "record_contact", "refund_contact", "reminder_contact"]
