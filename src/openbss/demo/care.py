"""The demo's customer care: work queues, SLA policies on the operator's business calendar, tickets of the demo
customers in every status (one of them past its SLA, escalated), and a few recorded contacts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from openbss.care.models import CareQueue
from openbss.customer.models import Customer
from openbss.demo.support import admin_context
from openbss.platform.db import Database, utcnow
from openbss.platform.tmf.resource import Context
from openbss.services import Services

OFFICE = {"timeZone": "Europe/Paris", "holidayCountry": "FR",
          "workingHours": {d: [["09:00", "18:00"]] for d in ("monday", "tuesday", "wednesday", "thursday",
                                                              "friday")}}
ALWAYS = {"timeZone": "UTC", "workingHours": {d: [["00:00", "24:00"]] for d in (
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")}}
#: the demo's agents (their tokens: ``openbss token --tenant demo --role csr_agent --subject agent-alice``)
AGENTS = ({"id": "agent-alice", "name": "Alice (first line)"}, {"id": "agent-bob", "name": "Bob (network)"})
#: the demo's care supervisor (``--role care_supervisor --subject supervisor-sam``)
SUPERVISOR = "supervisor-sam"
#: bill adjustments an agent makes alone: every agent 20 EUR, Bob 100 EUR (above: Sam approves)
LIMITS = (("role", "csr_agent", "20.00"), ("agent", "agent-bob", "100.00"))
#: the path of each demo ticket from acknowledged to its status
PATHS: dict[str, list[str]] = {
    "acknowledged": [], "inProgress": ["inProgress"], "pending": ["inProgress", "pending"],
    "held": ["inProgress", "held"], "resolved": ["inProgress", "resolved"],
    "closed": ["inProgress", "resolved", "closed"], "cancelled": ["cancelled"], "rejected": ["rejected"],
}
PROBLEMS = (("network", "No mobile data since this morning", "major"),
            ("billing", "Charged twice for the October bundle", "minor"),
            ("network", "Fibre drops every evening", "major"),
            ("device", "SIM not recognised after swap", "minor"),
            ("billing", "Roaming charges look wrong", "minor"),
            ("network", "No 4G at home", "minor"),
            ("service", "Voicemail does not answer", "minor"),
            ("network", "Cannot call abroad", "major"))


async def seed_care(services: Services, db: Database, tenant_id: str, base_url: str) -> None:
    """Idempotent: seeded once per tenant."""
    care = services.care.service
    async with db.transaction(tenant_id) as session:
        if (await session.scalar(select(func.count()).select_from(CareQueue))) or 0:
            return
        ctx = admin_context(tenant_id, session, base_url, subject=SUPERVISOR)
        for kind, who, amount in LIMITS:
            await services.care.adjustments.set_limit(ctx, kind, who, amount, "EUR")
        first = await care.config.create_queue(ctx, "First line", "Every new ticket")
        network = await care.config.create_queue(ctx, "Network second line", "Radio, core and fixed access")
        await care.config.create_queue(ctx, "Billing", "Charges, bills, payments")
        await care.config.create_policy(ctx, {
            "name": "Standard", "firstResponseMinutes": 4 * 60, "resolutionMinutes": 2 * 9 * 60,
            "calendar": OFFICE, "escalation": [{"target": "resolution", "percent": 75, "action": "notify"}]})
        await care.config.create_policy(ctx, {
            "name": "Network, high priority", "ticketType": "network", "priority": "high",
            "firstResponseMinutes": 30, "resolutionMinutes": 4 * 60, "calendar": ALWAYS, "escalation": [
                {"target": "resolution", "percent": 75, "action": "notify"},
                {"target": "resolution", "percent": 100, "action": "raisePriority"},
                {"target": "resolution", "percent": 150, "action": "reassign", "queue": network["id"]}]})
        await care.config.create_policy(ctx, {
            "name": "Corporate", "segment": "corporate", "firstResponseMinutes": 60, "resolutionMinutes": 8 * 60,
            "calendar": OFFICE})
        customers = (await session.execute(select(Customer.id).order_by(Customer.created_at, Customer.id)
                                           .limit(len(PATHS) + 1))).scalars().all()
    if not customers:
        return
    for i, status in enumerate(PATHS):
        customer = customers[i % len(customers)]
        kind, text, severity = PROBLEMS[i % len(PROBLEMS)]
        agent = AGENTS[i % 2]
        async with db.transaction(tenant_id) as session:
            ctx = admin_context(tenant_id, session, base_url, subject=agent["id"])
            ticket = await care.tickets.create(ctx, {
                "name": text, "description": text, "ticketType": kind, "severity": severity, "priority": "medium",
                "channel": {"id": "phone", "name": "Phone call"},
                "relatedParty": [{"id": customer, "@referredType": "Customer", "role": "customer"}],
                "queue": {"id": first["id"]}, "assignee": agent,
                "note": [{"text": f"Customer called about: {text.lower()}"}]})
            for step in PATHS[status]:
                await care.tickets.set_status(ctx, ticket["id"], step, _reason(step))
            await _interaction(care.interactions, ctx, customer, "phone", text)
    # a high-priority network outage raised six hours ago and still open: past its 4-hour resolution target
    async with db.transaction(tenant_id) as session:
        ctx = admin_context(tenant_id, session, base_url, subject=AGENTS[1]["id"])
        late = await care.tickets.create(ctx, {
            "name": "Whole street without signal", "description": "No signal on the whole street since the storm",
            "ticketType": "network", "severity": "critical", "priority": "high",
            "channel": {"id": "chat", "name": "Chat"},
            "relatedParty": [{"id": customers[-1], "@referredType": "Customer", "role": "customer"}],
            "queue": {"id": first["id"]}, "assignee": AGENTS[1]}, raised_at=utcnow() - timedelta(hours=6))
        await care.tickets.set_status(ctx, late["id"], "inProgress", "site engineer dispatched")
    await services.care.escalation(db).run_once(tenant=tenant_id)  # its steps at 75, 100 and 150 % fire


def _reason(status: str) -> str:
    return {"inProgress": "taken", "pending": "waiting for the customer's answer", "held": "waiting for a field visit",
            "resolved": "fixed", "closed": "customer confirmed", "cancelled": "customer withdrew the request",
            "rejected": "not a fault of our network"}[status]


async def _interaction(interactions: Any, ctx: Context, customer: str, channel: str, text: str) -> None:
    now = utcnow()
    await interactions.create(ctx, {
        "@type": "PartyInteraction", "direction": "inbound", "reason": text, "status": "completed",
        "interactionDate": {"startDateTime": (now - timedelta(minutes=12)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                            "endDateTime": now.strftime("%Y-%m-%dT%H:%M:%SZ")},
        "channel": [{"id": channel, "href": f"{ctx.base_url}/api/care/v1/channel/{channel}"}],
        "relatedParty": [{"id": customer, "href": f"{ctx.base_url}/tmf-api/customerManagement/v4/customer/{customer}",
                          "@referredType": "Customer", "role": "customer"}]})
