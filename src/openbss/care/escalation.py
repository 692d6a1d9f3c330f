"""The escalation scheduler: fires the SLA escalation steps that have fallen due, each exactly once.

Workers run it as a background loop (any number of them). A round finds the tenants with due steps (system scope,
read only), then for each tenant claims a batch of due steps *together with their tickets*
(``FOR UPDATE OF step, ticket SKIP LOCKED``: a step whose ticket an agent is changing is left for the next round,
so the scheduler never waits on, nor deadlocks with, a request), performs each step's action on the ticket and
records the step ``fired`` — all in one transaction. A worker killed at any point (kill -9) leaves either nothing
(the transaction is rolled back and the step claimed again by the next round) or everything (the action and the
record): a step runs at most once, and a due step is not lost.

Actions: every step adds a note to the ticket and announces ``TroubleTicketSlaEscalationEvent``; ``reassign``
moves the ticket to the step's queue, ``raisePriority`` climbs one level (low → medium → high → critical); a step at
100 % or more marks its target breached.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text

from openbss.care.models import CareQueue, SlaStep
from openbss.care.service import TICKET_API, TicketService
from openbss.care.sla import PRIORITY_LADDER, SlaClock
from openbss.platform.db import Database, utcnow
from openbss.platform.events.outbox import emit
from openbss.platform.tmf.resource import Context, system_context
from openbss.platform.tmf.spec import format_datetime

log = logging.getLogger(__name__)
ACTOR = "care-sla"
ESCALATION_EVENT = "TroubleTicketSlaEscalationEvent"

DUE_TENANTS = text("""
SELECT DISTINCT tenant_id FROM care_sla_step WHERE outcome IS NULL AND due_at <= :now
""")
CLAIM = text("""
SELECT s.id FROM care_sla_step s JOIN trouble_ticket t ON t.id = s.ticket_id
 WHERE s.outcome IS NULL AND s.due_at <= :now
 ORDER BY s.due_at, s.id
 LIMIT :limit
   FOR UPDATE OF s, t SKIP LOCKED
""")


@dataclass
class EscalationScheduler:
    db: Database
    tickets: TicketService
    clock: SlaClock
    base_url: str
    batch: int = 50
    interval: float = 5.0

    async def run_once(self, now: datetime | None = None, tenant: str | None = None) -> int:
        """One round: fire every step due at ``now`` (default: this moment), of every tenant or of ``tenant``.
        Returns how many fired."""
        moment = now or utcnow()
        if tenant is not None:
            tenants = [tenant]
        else:
            async with self.db.transaction(None, system=True) as session:
                tenants = [r[0] for r in (await session.execute(DUE_TENANTS, {"now": moment})).all()]
        fired = 0
        for tenant in tenants:
            # until a claim finds nothing: a short batch may only mean that other schedulers hold some due steps
            # (or their tickets) right now; whoever holds them claims again after committing
            while n := await self._tenant_batch(tenant, moment):
                fired += n
        return fired

    async def _tenant_batch(self, tenant: str, now: datetime) -> int:
        async with self.db.transaction(tenant) as session:
            ids = [r[0] for r in (await session.execute(CLAIM, {"now": now, "limit": self.batch})).all()]
            ctx = system_context(tenant, session, self.base_url, subject=ACTOR)
            for step_id in ids:
                step = await session.get(SlaStep, step_id)
                assert step is not None
                await self.fire(ctx, step, now)
        return len(ids)

    async def fire(self, ctx: Context, step: SlaStep, now: datetime) -> None:
        """Perform a claimed step's action and record it fired (in the caller's transaction)."""
        described = await self.clock.mark_breached(ctx, step.ticket_id, step.target) if step.percent >= 100 else None
        queue: dict[str, Any] | None = None
        if step.action == "reassign" and step.queue_id:
            row = await ctx.session.get(CareQueue, step.queue_id)
            if row is not None:
                queue = {"id": row.id, "name": row.name}
        label = "first response" if step.target == "firstResponse" else "resolution"
        text_ = f"SLA escalation: {step.percent} % of the {label} target reached ({step.action})"

        def mutate(doc: dict[str, Any]) -> None:
            doc["note"] = [*(doc.get("note") or []), {"id": f"sla-step-{step.id}", "author": ACTOR,
                                                       "date": format_datetime(now), "text": text_}]
            if described is not None:
                doc["sla"] = described
            if queue is not None:
                doc["queue"] = queue
            if step.action == "raisePriority" and doc.get("priority") in PRIORITY_LADDER[:-1]:
                doc["priority"] = PRIORITY_LADDER[PRIORITY_LADDER.index(doc["priority"]) + 1]

        ticket = await self.tickets.change(ctx, step.ticket_id, mutate, action="escalate")
        await emit(ctx.session, api=TICKET_API, event_type=ESCALATION_EVENT, resource_key="slaEscalation",
                   resource={"id": str(step.id), "target": step.target, "percent": step.percent,
                             "action": step.action, "dueDate": format_datetime(step.due_at or now),
                             "troubleTicket": {"id": ticket["id"], "href": ticket["href"],
                                               "priority": ticket.get("priority"), "queue": ticket.get("queue")}},
                   resource_type="SlaEscalation")
        step.outcome, step.fired_at = "fired", utcnow()
        await ctx.session.flush()

    async def run(self, stop: asyncio.Event) -> None:
        """The worker loop: a round every ``interval`` seconds until ``stop``."""
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception:  # a failed round is retried next round; its transaction was rolled back
                log.exception("SLA escalation round failed")
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.interval)
            except TimeoutError:
                pass


__all__ = ["ESCALATION_EVENT", "EscalationScheduler"]
