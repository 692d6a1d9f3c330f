"""Customer care's public operations: trouble tickets (TMF621) with their status life cycle, assignment and SLA
clock; party interactions (TMF683); the queues and SLA policies supervisors configure; the customer 360 sections.

What care needs of the customer domain (a ticket's customer segment chooses its SLA policy) is the ``Customers``
protocol; ``customer.service.CustomerService`` provides it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar, Protocol

from sqlalchemy import delete, func, or_, select
from sqlalchemy.exc import IntegrityError

from openbss.care import sla as sla_clock
from openbss.care.attachments import AttachmentStore
from openbss.care.calendar import BusinessCalendar, CalendarError
from openbss.care.errors import (
    CareNotFound,
    DuplicateQueue,
    DuplicateSlaPolicy,
    InvalidSlaPolicy,
    InvalidTicket,
    UnknownQueue,
)
from openbss.care.models import CareQueue, PartyInteraction, SlaPolicy, SlaStep, TicketSla, TroubleTicket
from openbss.care.schemas import TICKET_TYPE
from openbss.customer.service import SEGMENTS, segment_of
from openbss.platform import audit
from openbss.platform.db import utcnow
from openbss.platform.errors import Forbidden
from openbss.platform.events.outbox import emit
from openbss.platform.tmf.resource import Context, ResourceHooks, ResourceService, TmfApi, TmfResource
from openbss.platform.tmf.spec import format_datetime

TICKET_API = "troubleTicket"
INTERACTION_API = "partyInteraction"
#: TMF621's status life cycle: acknowledged → inProgress ⇄ pending/held → resolved → closed (or reopened);
#: cancelled and rejected end it early
TICKET_TRANSITIONS: dict[str, set[str]] = {
    "acknowledged": {"inProgress", "pending", "held", "resolved", "rejected", "cancelled"},
    "inProgress": {"pending", "held", "resolved", "cancelled"},
    "pending": {"inProgress", "held", "resolved", "cancelled"},
    "held": {"inProgress", "pending", "resolved", "cancelled"},
    "resolved": {"closed", "inProgress"},
    "closed": set(),
    "cancelled": set(),
    "rejected": set(),
}
#: the kinds of relationship between tickets
RELATIONSHIP_TYPES = ("duplicateOf", "causedBy", "relatedTo", "parentOf", "childOf")
#: the contact channels of interactions and tickets (``/api/care/v1/channel``)
CHANNELS = {"phone": "Phone call", "email": "E-mail", "chat": "Chat", "shop": "Shop visit",
            "selfcare": "Self-care portal", "system": "Automatic (system)"}
SCHEMA_PATH = "/api/care/v1/schema/OpenBSSTroubleTicket.json"


class Customers(Protocol):
    """What care asks the customer domain (``CustomerService``)."""

    async def find_customer(self, ctx: Context, customer_id: str) -> dict[str, Any] | None: ...

    async def customers_of_party(self, ctx: Context, party_id: str) -> list[dict[str, Any]]: ...


def channel_ref(base_url: str, channel: str) -> dict[str, Any]:
    return {"id": channel, "href": f"{base_url}/api/care/v1/channel/{channel}", "name": CHANNELS[channel],
            "@referredType": "Channel"}


def _stamp_notes(ctx: Context, current: list[dict[str, Any]], given: list[dict[str, Any]], now: str,
                 ) -> list[dict[str, Any]]:
    """Notes are appended, never edited or removed: the existing ones must come back as they are; new ones get an
    id, and the date and author when the caller gives none (now, the caller; the audit trail names the caller in
    any case)."""
    by_id = {n.get("id"): n for n in current}
    kept = [n for n in given if n.get("id") in by_id]
    if len(kept) != len(current) or any(by_id[n.get("id")] != n for n in kept):
        raise InvalidTicket("'note': notes are only appended; existing notes cannot be changed or removed")
    out = list(current)
    for note in given:
        if note.get("id") in by_id:
            continue
        if not (note.get("text") or "").strip():
            raise InvalidTicket("'note': a note needs a text")
        out.append({**note, "id": str(uuid.uuid4()), "date": note.get("date") or now,
                    "author": note.get("author") or ctx.principal.subject})
    return out


class TicketRules(ResourceHooks):
    transitions: ClassVar[dict[str, set[str]] | None] = TICKET_TRANSITIONS

    def __init__(self, clock: sla_clock.SlaClock, attachments: AttachmentStore) -> None:
        self.clock = clock
        self.attachments = attachments

    async def check_references(self, ctx: Context, ticket_id: str | None, doc: dict[str, Any]) -> None:
        queue = doc.get("queue")
        if queue is not None:
            row = await ctx.session.get(CareQueue, str(queue.get("id")))
            if row is None:
                raise UnknownQueue(f"'queue.id': no queue '{queue.get('id')}'")
            doc["queue"] = {"id": row.id, "name": row.name}
        for i, rel in enumerate(doc.get("troubleTicketRelationship") or []):
            where = f"'troubleTicketRelationship[{i}]'"
            if rel.get("relationshipType") not in RELATIONSHIP_TYPES:
                raise InvalidTicket(f"{where}: relationshipType must be one of {', '.join(RELATIONSHIP_TYPES)}")
            if not rel.get("id"):
                raise InvalidTicket(f"{where}: the related ticket's id is required")
            if rel["id"] == ticket_id:
                raise InvalidTicket(f"{where}: a ticket cannot be related to itself")
            if await ctx.session.get(TroubleTicket, str(rel["id"])) is None:
                raise InvalidTicket(f"{where}: no trouble ticket '{rel['id']}'")
            rel["href"] = f"{ctx.base_url}/tmf-api/{TICKET_API}/v4/troubleTicket/{rel['id']}"

    async def before_delete(self, ctx: Context, current: dict[str, Any]) -> None:
        """A deleted ticket's SLA clock and steps go with it (no escalation of a ticket that is gone)."""
        await ctx.session.execute(delete(SlaStep).where(SlaStep.ticket_id == current["id"]))
        await ctx.session.execute(delete(TicketSla).where(TicketSla.ticket_id == current["id"]))

    async def before_update(self, ctx: Context, current: dict[str, Any], changes: dict[str, Any],
                            merged: dict[str, Any]) -> None:
        now = utcnow()
        stamp = format_datetime(now)
        ticket_id = str(merged["id"])
        if "note" in changes:
            merged["note"] = _stamp_notes(ctx, current.get("note") or [], merged.get("note") or [], stamp)
        if "queue" in changes or "troubleTicketRelationship" in changes:
            await self.check_references(ctx, ticket_id, merged)
        if "attachment" in changes:
            merged["attachment"] = await self.attachments.append(ctx, ticket_id, current.get("attachment") or [],
                                                                 merged.get("attachment") or [])
        old, new = current.get("status"), merged.get("status")
        if old != new:
            history = list(current.get("statusChange") or [])
            entry: dict[str, Any] = {"status": new, "changeDate": stamp}
            if changes.get("statusChangeReason"):
                entry["changeReason"] = changes["statusChangeReason"]
            merged["statusChange"] = [*history, entry]
            merged["statusChangeDate"] = stamp
            if new == "resolved":
                merged["resolutionDate"] = stamp
            elif old == "resolved":
                merged.pop("resolutionDate", None)  # reopened
            described = await self.clock.on_status(ctx, ticket_id, str(old), str(new), now)
            if described is not None:
                merged["sla"] = described
                _expected(merged)
        elif "sla" in current:
            merged["sla"] = current["sla"]


def _expected(doc: dict[str, Any]) -> None:
    """``expectedResolutionDate`` is the SLA's resolution due time while its clock runs."""
    described = doc.get("sla") or {}
    if described.get("status") == "running" and described.get("resolutionDue"):
        doc["expectedResolutionDate"] = described["resolutionDue"]


class TicketService(ResourceService):
    """TMF621 trouble tickets: raised acknowledged with their SLA clock started, worked through the status life
    cycle (each change recorded in ``statusChange`` and moving the clock), assigned to queues and agents."""

    def __init__(self, api: TmfApi, resource: TmfResource, rules: TicketRules, customers: Customers) -> None:
        super().__init__(api, resource)
        self.rules = rules
        self.customers = customers

    async def segment(self, ctx: Context, doc: dict[str, Any]) -> str | None:
        """The segment of the ticket's customer (a related party that is a customer, or whose party is one)."""
        for party in doc.get("relatedParty") or []:
            if party.get("@referredType") == "Customer":
                customer = await self.customers.find_customer(ctx, str(party.get("id")))
                if customer is not None:
                    return segment_of(customer)
        for party in doc.get("relatedParty") or []:
            if party.get("@referredType") in ("Individual", "Organization"):
                for customer in await self.customers.customers_of_party(ctx, str(party.get("id"))):
                    found = segment_of(customer)
                    if found:
                        return found
        return None

    async def create(self, ctx: Context, doc: dict[str, Any], *, raised_at: datetime | None = None,
                     ) -> dict[str, Any]:
        """Raise a ticket (acknowledged, SLA clock started). ``raised_at``: when it was raised, for a ticket taken
        over from another system (its creation date and the start of its SLA clock); default now."""
        doc = dict(doc)
        for managed in ("statusChange", "sla", "statusChangeDate", "resolutionDate"):
            if managed in doc:
                raise InvalidTicket(f"'{managed}' is kept by the server; leave it out")
        if doc.get("status", "acknowledged") != "acknowledged":
            raise InvalidTicket(f"a ticket is raised 'acknowledged', not '{doc['status']}'")
        if ctx.principal.is_customer:
            doc = self._raised_by_customer(ctx, doc)
        now = raised_at or utcnow()
        stamp = format_datetime(now)
        entry = {"status": "acknowledged", "changeDate": stamp}
        if doc.get("statusChangeReason"):
            entry["changeReason"] = doc["statusChangeReason"]
        doc.update({"status": "acknowledged", "creationDate": stamp, "lastUpdate": stamp, "statusChangeDate": stamp,
                    "statusChange": [entry], "@type": TICKET_TYPE, "@baseType": "TroubleTicket",
                    "@schemaLocation": f"{ctx.base_url}{SCHEMA_PATH}"})
        if doc.get("note"):
            doc["note"] = _stamp_notes(ctx, [], doc["note"], stamp)
        ticket_id = self.resource.id_factory()
        await self.rules.check_references(ctx, ticket_id, doc)
        if doc.get("attachment"):
            doc["attachment"] = await self.rules.attachments.append(ctx, ticket_id, [], doc["attachment"])
        facts = sla_clock.TicketFacts(doc.get("ticketType"), doc.get("priority"), await self.segment(ctx, doc))
        described = await self.rules.clock.start(ctx, ticket_id, facts, now)
        if described is not None:
            doc["sla"] = described
            _expected(doc)
        doc["id"] = ticket_id
        return await self.record(ctx, doc)

    @staticmethod
    def _raised_by_customer(ctx: Context, doc: dict[str, Any]) -> dict[str, Any]:
        """A customer raises a ticket for their own party only, through self-care; the operator's fields (queue,
        assignee, relationships, priority) are not theirs to set."""
        for field_ in ("queue", "assignee", "troubleTicketRelationship", "priority"):
            if field_ in doc:
                raise Forbidden(f"'{field_}' is set by the operator, not by the customer", code="CUSTOMER_FORBIDDEN")
        party = ctx.principal.party_id or ""
        others = [p.get("id") for p in doc.get("relatedParty") or [] if p.get("id") != party]
        if others:
            raise Forbidden(f"a customer raises tickets for their own party only, not '{others[0]}'",
                            code="CUSTOMER_FORBIDDEN")
        related = [p for p in doc.get("relatedParty") or [] if p.get("id") == party] or [
            {"id": party, "role": "customer", "@referredType": "Individual"}]
        return {**doc, "relatedParty": related, "channel": {"id": "selfcare", "name": CHANNELS["selfcare"]}}

    async def patch(self, ctx: Context, resource_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        before = (await self.store.documents(ctx, [await self.store.get(ctx, resource_id, for_update=True)]))[0]
        out = await super().patch(ctx, resource_id, changes)
        if out.get("status") == "resolved" and before.get("status") != "resolved":
            await emit(ctx.session, api=self.api.name, event_type="TroubleTicketResolvedEvent",
                       resource_key=self.resource.event_key, resource=out, resource_type=self.resource.type)
        return out

    # --- named actions -----------------------------------------------------------------------------------------
    async def set_status(self, ctx: Context, ticket_id: str, status: str, reason: str | None = None,
                         ) -> dict[str, Any]:
        changes: dict[str, Any] = {"status": status}
        if reason:
            changes["statusChangeReason"] = reason
        return await self.patch(ctx, ticket_id, changes)

    async def assign(self, ctx: Context, ticket_id: str, queue_id: str | None, agent: dict[str, Any] | None,
                     ) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        if queue_id is not None:
            changes["queue"] = {"id": queue_id}
        if agent is not None:
            changes["assignee"] = agent
        return await self.patch(ctx, ticket_id, changes)

    async def add_note(self, ctx: Context, ticket_id: str, text: str) -> dict[str, Any]:
        current = await self.get(ctx, ticket_id)
        return await self.patch(ctx, ticket_id, {"note": [*(current.get("note") or []), {"text": text}]})


class InteractionRules(ResourceHooks):
    async def before_create(self, ctx: Context, doc: dict[str, Any]) -> None:
        stamp = format_datetime(utcnow())
        doc["creationDate"] = stamp
        doc.setdefault("statusChangeDate", stamp)
        if doc.get("note"):
            doc["note"] = _stamp_notes(ctx, [], doc["note"], stamp)
        _check_channels(doc)

    async def before_update(self, ctx: Context, current: dict[str, Any], changes: dict[str, Any],
                            merged: dict[str, Any]) -> None:
        stamp = format_datetime(utcnow())
        if "note" in changes:
            merged["note"] = _stamp_notes(ctx, current.get("note") or [], merged.get("note") or [], stamp)
        if merged.get("status") != current.get("status"):
            merged["statusChangeDate"] = stamp
        merged["creationDate"] = current.get("creationDate")
        merged["direction"] = current.get("direction")
        _check_channels(merged)


def _check_channels(doc: dict[str, Any]) -> None:
    for i, channel in enumerate(doc.get("channel") or []):
        if channel.get("id") not in CHANNELS:
            raise InvalidTicket(f"'channel[{i}].id': '{channel.get('id')}' is not a channel "
                                f"({', '.join(CHANNELS)})", code="INVALID_INTERACTION")


class InteractionService(ResourceService):
    """TMF683 party interactions: every contact with a customer, recorded by agents or by the system."""

    async def record_once(self, ctx: Context, interaction_id: str, doc: dict[str, Any]) -> bool:
        """Record a system-made interaction under a stable id unless it exists (a reaction's redelivery)."""
        if await ctx.session.get(PartyInteraction, interaction_id) is not None:
            return False
        stamp = format_datetime(utcnow())
        await self.record(ctx, {**doc, "id": interaction_id, "creationDate": stamp, "statusChangeDate": stamp})
        return True


# --- supervisors' configuration ------------------------------------------------------------------------------
def render_queue(q: CareQueue) -> dict[str, Any]:
    return {"id": q.id, "name": q.name, "description": q.description}


def render_policy(p: SlaPolicy) -> dict[str, Any]:
    return {"id": p.id, "name": p.name, "ticketType": p.ticket_type, "priority": p.priority, "segment": p.segment,
            "firstResponseMinutes": p.first_response_minutes, "resolutionMinutes": p.resolution_minutes,
            "calendar": p.calendar, "escalation": p.escalations, "active": p.active}


class CareConfiguration:
    """Queues and SLA policies (per tenant), audited."""

    async def create_queue(self, ctx: Context, name: str, description: str | None = None) -> dict[str, Any]:
        if not name.strip():
            raise InvalidSlaPolicy("'name': a queue needs a name", code="INVALID_QUEUE")
        if await ctx.session.scalar(select(CareQueue.id).where(CareQueue.name == name)) is not None:
            raise DuplicateQueue(f"a queue named '{name}' exists")
        q = CareQueue(id=str(uuid.uuid4()), name=name, description=description)
        ctx.session.add(q)
        await ctx.session.flush()
        out = render_queue(q)
        await audit.record(ctx.session, ctx.principal, resource_type="CareQueue", resource_id=q.id,
                           action="create", changes=out)
        return out

    async def queues(self, ctx: Context) -> list[dict[str, Any]]:
        rows = (await ctx.session.execute(select(CareQueue).order_by(CareQueue.name))).scalars().all()
        return [render_queue(q) for q in rows]

    async def queue(self, ctx: Context, queue_id: str) -> dict[str, Any]:
        q = await ctx.session.get(CareQueue, queue_id)
        if q is None:
            raise CareNotFound(f"queue '{queue_id}' not found")
        return render_queue(q)

    async def create_policy(self, ctx: Context, spec: dict[str, Any]) -> dict[str, Any]:
        try:
            calendar = BusinessCalendar.from_json(spec.get("calendar") or {})
        except CalendarError as exc:
            raise InvalidSlaPolicy(f"'calendar': {exc}") from exc
        if spec.get("segment") is not None and spec["segment"] not in SEGMENTS:
            raise InvalidSlaPolicy(f"'segment': '{spec['segment']}' is not one of {', '.join(SEGMENTS)}")
        first, resolution = spec["firstResponseMinutes"], spec["resolutionMinutes"]
        if first > resolution:
            raise InvalidSlaPolicy("'firstResponseMinutes' cannot exceed 'resolutionMinutes'")
        steps, seen = [], set()
        for i, step in enumerate(spec.get("escalation") or []):
            key = (step["target"], step["percent"])
            if key in seen:
                raise InvalidSlaPolicy(f"'escalation[{i}]': a second step at {step['percent']} % of {step['target']}")
            seen.add(key)
            if step["action"] == "reassign":
                if not step.get("queue") or await ctx.session.get(CareQueue, step["queue"]) is None:
                    raise InvalidSlaPolicy(f"'escalation[{i}].queue': reassign needs an existing queue")
            elif step.get("queue"):
                raise InvalidSlaPolicy(f"'escalation[{i}].queue': only a reassign step names a queue")
            steps.append({k: v for k, v in step.items() if v is not None})
        policy = SlaPolicy(id=str(uuid.uuid4()), name=spec["name"], ticket_type=spec.get("ticketType"),
                           priority=spec.get("priority"), segment=spec.get("segment"), first_response_minutes=first,
                           resolution_minutes=resolution, calendar=calendar.to_json(), escalations=steps, active=True,
                           created_at=utcnow())
        try:
            async with ctx.session.begin_nested():
                ctx.session.add(policy)
                await ctx.session.flush()
        except IntegrityError as exc:
            raise DuplicateSlaPolicy("an active policy already covers this ticket type, priority and segment; "
                                     "deactivate it first") from exc
        out = render_policy(policy)
        await audit.record(ctx.session, ctx.principal, resource_type="SlaPolicy", resource_id=policy.id,
                           action="create", changes=out)
        return out

    async def policies(self, ctx: Context) -> list[dict[str, Any]]:
        rows = (await ctx.session.execute(select(SlaPolicy).order_by(SlaPolicy.created_at, SlaPolicy.id))
                ).scalars().all()
        return [render_policy(p) for p in rows]

    async def policy(self, ctx: Context, policy_id: str) -> dict[str, Any]:
        p = await ctx.session.get(SlaPolicy, policy_id)
        if p is None:
            raise CareNotFound(f"SLA policy '{policy_id}' not found")
        return render_policy(p)

    async def deactivate_policy(self, ctx: Context, policy_id: str) -> dict[str, Any]:
        """Running tickets keep the targets they started with; new tickets no longer get this policy."""
        p = await ctx.session.get(SlaPolicy, policy_id, with_for_update=True)
        if p is None:
            raise CareNotFound(f"SLA policy '{policy_id}' not found")
        if p.active:
            p.active = False
            await ctx.session.flush()
            await audit.record(ctx.session, ctx.principal, resource_type="SlaPolicy", resource_id=p.id,
                               action="update", changes={"active": {"before": True, "after": False}})
        return render_policy(p)


# --- the domain's facade ----------------------------------------------------------------------------------------
class CareService:
    """What other domains, the composition root and the console ask of care."""

    def __init__(self, tickets: TicketService, interactions: InteractionService, config: CareConfiguration) -> None:
        self.tickets = tickets
        self.interactions = interactions
        self.config = config

    async def _documents_of(self, ctx: Context, service: ResourceService, table: Any, customer: dict[str, Any],
                            limit: int) -> tuple[list[dict[str, Any]], int]:
        ids = [i for i in dict.fromkeys([customer.get("id"), (customer.get("engagedParty") or {}).get("id")]) if i]
        if not ids:
            return [], 0
        cond = or_(*[table.body.contains({"relatedParty": [{"id": i}]}) for i in ids])
        total = await ctx.session.scalar(select(func.count()).select_from(table).where(cond)) or 0
        rows = (await ctx.session.execute(select(table).where(cond)
                                          .order_by(table.created_at.desc(), table.id).limit(limit))).scalars().all()
        return await service.store.render_all(ctx, list(rows)), int(total)

    async def customer_tickets(self, ctx: Context, customer: dict[str, Any]) -> dict[str, Any]:
        """The customer 360 section: counts (open, SLA breached) and the most recent tickets."""
        items, total = await self._documents_of(ctx, self.tickets, TroubleTicket, customer, 20)
        open_ = [t for t in items if t.get("status") not in ("closed", "cancelled", "rejected", "resolved")]
        breached = [t for t in items if (t.get("sla") or {}).get("resolutionBreached")
                    or (t.get("sla") or {}).get("firstResponseBreached")]
        return {"total": total, "open": len(open_), "slaBreached": len(breached), "recent": items}

    async def customer_interactions(self, ctx: Context, customer: dict[str, Any]) -> dict[str, Any]:
        items, total = await self._documents_of(ctx, self.interactions, PartyInteraction, customer, 20)
        return {"total": total, "recent": items}

    async def record_order_placed(self, ctx: Context, order: dict[str, Any], at: datetime) -> bool:
        """The interaction of an order placed (once per order, whatever the deliveries of its event)."""
        order_id = str(order["id"])
        given = [str(c.get("id")) for c in order.get("channel") or [] if str(c.get("id")) in CHANNELS]
        channel = given[0] if given else "system"
        parties: list[dict[str, Any]] = [
            {k: v for k, v in p.items() if k in ("id", "href", "name", "role", "@referredType")}
            for p in order.get("relatedParty") or [] if p.get("id")]
        for p in parties:
            p.setdefault("@referredType", "Party")
            kind = str(p["@referredType"])
            p.setdefault("href", f"{ctx.base_url}/tmf-api/party/v4/{kind[:1].lower()}{kind[1:]}/{p['id']}")
        doc = {
            "@type": "PartyInteraction", "direction": "inbound", "reason": "Product order placed",
            "status": "completed", "description": f"Product order {order_id} was placed",
            "interactionDate": {"startDateTime": str(order.get("orderDate") or format_datetime(at))},
            "channel": [channel_ref(ctx.base_url, channel)],
            "relatedParty": parties,
            "interactionItem": [{"id": "1", "item": {
                "id": order_id, "href": str(order.get("href") or ""), "role": "placed",
                "@referredType": "ProductOrder"}}],
        }
        return await self.interactions.record_once(ctx, str(uuid.uuid5(uuid.NAMESPACE_URL, f"order:{order_id}")),
                                                   doc)

    async def record_profile_update(self, ctx: Context, update: dict[str, Any], at: datetime) -> bool:
        """The interaction of a customer's change of their own profile in self-care (once per change)."""
        party = update.get("party") or {}
        customer = update.get("customer") or {}
        related = []
        if customer.get("id"):
            related.append({"id": customer["id"], "role": "customer", "@referredType": "Customer",
                            "href": f"{ctx.base_url}/tmf-api/customerManagement/v4/customer/{customer['id']}"})
        if party.get("id"):
            kind = str(party.get("@referredType") or "Individual")
            related.append({"id": party["id"], "role": "self", "@referredType": kind,
                            "href": f"{ctx.base_url}/tmf-api/party/v4/{kind[:1].lower()}{kind[1:]}/{party['id']}"})
        changed = ", ".join(update.get("changed") or []) or "profile"
        doc = {
            "@type": "PartyInteraction", "direction": "inbound", "reason": "Profile updated in self-care",
            "status": "completed", "description": f"The customer changed: {changed}",
            "interactionDate": {"startDateTime": format_datetime(at)},
            "channel": [channel_ref(ctx.base_url, "selfcare")], "relatedParty": related,
        }
        return await self.interactions.record_once(
            ctx, str(uuid.uuid5(uuid.NAMESPACE_URL, f"selfcare-profile:{update['id']}")), doc)


__all__ = ["CHANNELS", "INTERACTION_API", "RELATIONSHIP_TYPES", "TICKET_API", "TICKET_TRANSITIONS",
           "CareConfiguration", "CareService", "Customers", "InteractionRules", "InteractionService",
           "TicketRules", "TicketService", "channel_ref"]
