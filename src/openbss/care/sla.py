"""SLA timers of trouble tickets.

A policy (per tenant) gives the first-response and resolution targets, in business time on its calendar, for the
tickets of a type, priority and customer segment (the most specific active policy wins). When a ticket is raised its
clock starts: the policy's targets and calendar are copied onto the ticket (a later edit of the policy does not move
running tickets), the due times and each escalation step's due time are computed and stored. They are recomputed on
every status change and never on read:

* leaving ``acknowledged`` is the first response (its remaining steps are void);
* ``pending`` (waiting on the customer) and ``resolved`` (until closed or reopened) pause the clock: the business
  time spent paused extends every target, and the steps wait (no due time) until the clock runs again;
* ``closed``, ``cancelled`` and ``rejected`` stop it: remaining steps are void.

Escalation steps (e.g. 75 %, 100 %, 150 % of a target) are rows fired at most once by the scheduler
(``care.escalation``); a target is breached when its 100 % step fires, or when it is met late.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from openbss.care.calendar import BusinessCalendar
from openbss.care.models import SlaPolicy, SlaStep, TicketSla
from openbss.platform.tmf.resource import Context
from openbss.platform.tmf.spec import format_datetime

RUNNING = frozenset({"acknowledged", "inProgress", "held"})
PAUSED = frozenset({"pending", "resolved"})
STOPPED = frozenset({"closed", "cancelled", "rejected"})
TARGETS = ("firstResponse", "resolution")
ACTIONS = ("notify", "reassign", "raisePriority")
#: what ``raisePriority`` climbs (a priority outside the ladder is left as it is)
PRIORITY_LADDER = ("low", "medium", "high", "critical")


@dataclass(frozen=True)
class TicketFacts:
    """What chooses a ticket's policy."""

    ticket_type: str | None
    priority: str | None
    segment: str | None


def specificity(policy: SlaPolicy) -> int:
    return (4 if policy.ticket_type else 0) + (2 if policy.priority else 0) + (1 if policy.segment else 0)


async def choose_policy(ctx: Context, facts: TicketFacts) -> SlaPolicy | None:
    """The most specific active policy matching the ticket (type over priority over segment)."""
    rows = (await ctx.session.execute(select(SlaPolicy).where(SlaPolicy.active.is_(True)))).scalars().all()
    matching = [p for p in rows
                if (p.ticket_type is None or p.ticket_type == facts.ticket_type)
                and (p.priority is None or p.priority == facts.priority)
                and (p.segment is None or p.segment == facts.segment)]
    return max(matching, key=lambda p: (specificity(p), p.created_at, p.id), default=None)


def steps_of(policy: SlaPolicy) -> list[dict[str, Any]]:
    """The policy's escalation steps, with a 100 % step for each target (the breach) when it has none."""
    steps = [dict(s) for s in policy.escalations]
    for target in TARGETS:
        if not any(s["target"] == target and s["percent"] == 100 for s in steps):
            steps.append({"target": target, "percent": 100, "action": "notify"})
    return steps


def _target(sla: TicketSla, target: str) -> timedelta:
    return sla.first_response_target if target == "firstResponse" else sla.resolution_target


def _share(duration: timedelta, percent: int) -> timedelta:
    return timedelta(microseconds=(duration // timedelta(microseconds=1)) * percent // 100)


class SlaClock:
    """Starts, moves and describes tickets' SLA clocks (in the caller's transaction)."""

    async def start(self, ctx: Context, ticket_id: str, facts: TicketFacts, now: datetime) -> dict[str, Any] | None:
        policy = await choose_policy(ctx, facts)
        if policy is None:
            return None
        sla = TicketSla(ticket_id=ticket_id, policy_id=policy.id, policy_name=policy.name, calendar=policy.calendar,
                        started_at=now, first_response_target=timedelta(minutes=policy.first_response_minutes),
                        resolution_target=timedelta(minutes=policy.resolution_minutes), paused=timedelta(0),
                        first_response_breached=False, resolution_breached=False)
        steps = [SlaStep(ticket_id=ticket_id, target=s["target"], percent=int(s["percent"]), action=s["action"],
                         queue_id=s.get("queue")) for s in steps_of(policy)]
        self._schedule(sla, steps)
        ctx.session.add(sla)
        ctx.session.add_all(steps)
        await ctx.session.flush()
        return describe(sla)

    async def on_status(self, ctx: Context, ticket_id: str, old: str, new: str, now: datetime,
                        ) -> dict[str, Any] | None:
        """Move the clock for a status change of the ticket (locked by the caller); the new ``sla`` attribute."""
        sla = await ctx.session.get(TicketSla, ticket_id, with_for_update=True)
        if sla is None or sla.stopped_at is not None:
            return describe(sla) if sla is not None else None
        cal = BusinessCalendar.from_json(sla.calendar)
        steps = list((await ctx.session.execute(
            select(SlaStep).where(SlaStep.ticket_id == ticket_id, SlaStep.outcome.is_(None))
            .with_for_update())).scalars().all())
        if sla.first_response_at is None and old == "acknowledged":
            sla.first_response_at = now
            if sla.first_response_due is not None and now > sla.first_response_due:
                sla.first_response_breached = True
            for step in steps:
                if step.target == "firstResponse":
                    step.outcome, step.due_at = "void", None
        if old not in PAUSED and new in PAUSED | STOPPED and new != "pending" and sla.resolution_due is not None \
                and now > sla.resolution_due:
            sla.resolution_breached = True  # resolved (or closed, cancelled) after the due time
        if sla.paused_since is not None and new not in PAUSED:
            sla.paused += cal.between(sla.paused_since, now)
            sla.paused_since = None
        if new in PAUSED and sla.paused_since is None:
            sla.paused_since = now
        if new in STOPPED:
            sla.stopped_at = now
            for step in steps:
                if step.outcome is None:
                    step.outcome, step.due_at = "void", None
        self._schedule(sla, steps)
        await ctx.session.flush()
        return describe(sla)

    def _schedule(self, sla: TicketSla, steps: list[SlaStep]) -> None:
        """Due times of the targets and of the waiting steps (none while the clock is paused or stopped)."""
        cal = BusinessCalendar.from_json(sla.calendar)
        running = sla.paused_since is None and sla.stopped_at is None
        if running:
            if sla.first_response_at is None:
                sla.first_response_due = cal.add(sla.started_at, sla.first_response_target + sla.paused)
            sla.resolution_due = cal.add(sla.started_at, sla.resolution_target + sla.paused)
        for step in steps:
            if step.outcome is not None:
                continue
            step.due_at = (cal.add(sla.started_at, _share(_target(sla, step.target), step.percent) + sla.paused)
                           if running else None)

    async def mark_breached(self, ctx: Context, ticket_id: str, target: str) -> dict[str, Any] | None:
        values = {"first_response_breached": True} if target == "firstResponse" else {"resolution_breached": True}
        await ctx.session.execute(update(TicketSla).where(TicketSla.ticket_id == ticket_id).values(**values))
        sla = await ctx.session.get(TicketSla, ticket_id, populate_existing=True)
        return describe(sla) if sla is not None else None


def describe(sla: TicketSla) -> dict[str, Any]:
    """The ticket's ``sla`` attribute."""
    status = "stopped" if sla.stopped_at else "paused" if sla.paused_since else "running"
    out: dict[str, Any] = {"policy": {"id": sla.policy_id, "name": sla.policy_name}, "status": status,
                           "firstResponseBreached": bool(sla.first_response_breached),
                           "resolutionBreached": bool(sla.resolution_breached)}
    if sla.first_response_due is not None:
        out["firstResponseDue"] = format_datetime(sla.first_response_due)
    if sla.first_response_at is not None:
        out["firstResponseDate"] = format_datetime(sla.first_response_at)
    if sla.resolution_due is not None:
        out["resolutionDue"] = format_datetime(sla.resolution_due)
    return out


__all__ = ["ACTIONS", "PAUSED", "PRIORITY_LADDER", "RUNNING", "STOPPED", "TARGETS", "SlaClock", "TicketFacts",
           "choose_policy", "describe", "steps_of"]
