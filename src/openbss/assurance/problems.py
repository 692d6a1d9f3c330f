"""TMF656 service problems: the alarms grouped on a root managed object, the one trouble ticket a problem opens
through care (noted as its root alarms clear, resolved with its last alarm), and its impact computed from the
inventory: the resources and services affected, the products those services realize (``relatedEntity`` with role
``affectedProduct``) and those products' customers (``relatedParty`` with role ``affectedCustomer``).

A problem's status: ``pending`` (declared by an operator, not worked yet) or ``inProgress`` (its ticket is open),
``acknowledged``, ``held``; then ``resolved`` (its alarms cleared, or an operator), ``closed``, ``cancelled``,
``rejected``. Only an open problem (not resolved, closed, cancelled or rejected) takes alarms.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, ClassVar, Protocol

from sqlalchemy import func, or_, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert

from openbss.assurance.errors import AlarmContention, InvalidProblem
from openbss.assurance.models import Alarm, ServiceProblem
from openbss.assurance.schemas import PROBLEM_EXTENSION, PROBLEM_MANAGED
from openbss.platform.db import utcnow
from openbss.platform.tmf.query import parse_list_query
from openbss.platform.tmf.resource import (
    Context,
    DocumentStore,
    ResourceHooks,
    ResourceService,
    TmfApi,
    TmfDocument,
    TmfResource,
)
from openbss.platform.tmf.spec import format_datetime

PROBLEM_API = "serviceProblemManagement"
OPEN_STATUSES = frozenset({"pending", "acknowledged", "inProgress", "held"})
DONE_STATUSES = frozenset({"resolved", "closed", "cancelled", "rejected"})
PROBLEM_TRANSITIONS: dict[str, set[str]] = {
    "pending": {"acknowledged", "inProgress", "held", "resolved", "cancelled", "rejected"},
    "acknowledged": {"pending", "inProgress", "held", "resolved", "cancelled"},
    "inProgress": {"acknowledged", "held", "resolved", "cancelled"},
    "held": {"inProgress", "resolved", "cancelled"},
    "resolved": {"closed"},
    "closed": set(), "cancelled": set(), "rejected": set(),
}
#: ticket statuses in which a problem's ticket is no longer worked (nothing to resolve)
TICKET_DONE = frozenset({"resolved", "closed", "cancelled", "rejected"})
#: perceived severity → TMF656 priority (1 highest)
PRIORITY = {"critical": 1, "major": 2, "minor": 4, "warning": 6, "indeterminate": 8}
SEVERITY = {"critical": "critical", "major": "major", "minor": "minor", "warning": "minor", "indeterminate": "minor"}
ORIGINATOR = {"id": "OpenBSS", "name": "OpenBSS service assurance", "@referredType": "Organization"}
#: attributes only the server writes
SERVER_KEPT = (*PROBLEM_MANAGED, "troubleTicket", "underlyingAlarm", "firstAlert", "resolutionDate",
               "statusChangeDate", "trackingRecord")


class Tickets(Protocol):
    """Trouble tickets (TMF621), as customer care raises and works them."""

    async def create(self, ctx: Context, doc: dict[str, Any], *, raised_at: datetime | None = None,
                     ) -> dict[str, Any]: ...

    async def get(self, ctx: Context, resource_id: str) -> dict[str, Any]: ...

    async def set_status(self, ctx: Context, ticket_id: str, status: str, reason: str | None = None,
                         ) -> dict[str, Any]: ...

    async def add_note(self, ctx: Context, ticket_id: str, text: str) -> dict[str, Any]: ...


class ManagedObjects(Protocol):
    """The inventory: resources (TMF639), services (TMF638) and products (TMF637)."""

    @property
    def resources(self) -> ResourceService: ...

    @property
    def services(self) -> ResourceService: ...

    @property
    def products(self) -> ResourceService: ...


def _ref(doc: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: doc[k] for k in ("id", "href", "name", *keys) if doc.get(k) is not None}


class ProblemStore(DocumentStore):
    """Problems are stored with their root object and whether they are open; the insert is ``ON CONFLICT DO
    NOTHING`` on the open problems' root objects (one open problem per root object)."""

    async def insert(self, ctx: Context, resource_id: str, doc: dict[str, Any], **columns: Any) -> TmfDocument:
        stored = await self.resource.codec.encode(ctx, resource_id, doc)
        now = utcnow()
        values = {"id": resource_id, "body": stored, "last_update": now, "created_at": now,
                  "is_open": doc.get("status") in OPEN_STATUSES, **columns}
        stmt = (pg_insert(ServiceProblem).values(**values)
                .on_conflict_do_nothing(index_elements=["tenant_id", "root_object"], index_where=text("is_open"))
                .returning(ServiceProblem.id))
        if await ctx.session.scalar(stmt) is None:
            raise AlarmContention(f"a problem on '{columns.get('root_object')}' was opened at the same moment; "
                                  "send the alarm again")
        await self.index.write(ctx, resource_id, doc, replace=False)
        return ServiceProblem(**values)

    async def replace(self, ctx: Context, row: TmfDocument, doc: dict[str, Any]) -> TmfDocument:
        row.is_open = doc.get("status") in OPEN_STATUSES  # type: ignore[attr-defined]
        return await super().replace(ctx, row, doc)


class ProblemRules(ResourceHooks):
    transitions: ClassVar[dict[str, set[str]] | None] = PROBLEM_TRANSITIONS

    async def before_update(self, ctx: Context, current: dict[str, Any], changes: dict[str, Any],
                            merged: dict[str, Any]) -> None:
        for attribute in changes:
            if attribute in SERVER_KEPT:
                raise InvalidProblem(f"'{attribute}' is kept by the server")
        now = format_datetime(utcnow())
        if changes.get("status") not in (None, current.get("status")):
            merged["statusChangeDate"] = now
            if merged["status"] == "resolved":
                merged.setdefault("resolutionDate", now)


class ServiceProblemService(ResourceService):
    """TMF656 service problems: declared by operators or opened by alarms, each with one trouble ticket."""

    #: where the announced events are recorded (TMF656 ``serviceProblemEventRecord``; set by the composition root)
    event_records: Any = None

    def __init__(self, api: TmfApi, resource: TmfResource, objects: ManagedObjects, tickets: Tickets) -> None:
        super().__init__(api, resource)
        self.store = ProblemStore(api, resource)
        self.objects = objects
        self.tickets = tickets

    async def _emit_many(self, ctx: Context, events: list[tuple[str, dict[str, Any]]]) -> None:
        await super()._emit_many(ctx, events)
        await self._record_events(ctx, events)

    async def _emit(self, ctx: Context, event_type: str, rendered: dict[str, Any]) -> None:
        await super()._emit(ctx, event_type, rendered)
        await self._record_events(ctx, [(event_type, rendered)])

    async def _record_events(self, ctx: Context, events: list[tuple[str, dict[str, Any]]]) -> None:
        if self.event_records is not None:
            await self.event_records.add(ctx, [(k, r) for k, r in events if self._announced(k, r)],
                                         self.resource.event_withheld_paths())

    # --- declared by an operator ------------------------------------------------------------------------------
    async def create(self, ctx: Context, doc: dict[str, Any]) -> dict[str, Any]:
        doc = dict(doc)
        for attribute in SERVER_KEPT:
            if attribute in doc:
                raise InvalidProblem(f"'{attribute}' is kept by the server; leave it out")
        status = doc.get("status", "pending")
        if status not in OPEN_STATUSES:
            raise InvalidProblem(f"a problem is declared open ('pending', 'acknowledged', 'inProgress' or 'held'), "
                                 f"not '{status}'")
        priority = doc.get("priority")
        if not isinstance(priority, int) or not 1 <= priority <= 10:
            raise InvalidProblem("'priority' is from 1 (highest) to 10 (lowest)")
        problem_id = str(uuid.uuid4())
        now = format_datetime(utcnow())
        doc.update(id=problem_id, status=status, creationDate=now, lastUpdate=now, statusChangeDate=now)
        await self._impact(ctx, doc, [r["id"] for r in doc.get("affectedResource") or [] if r.get("id")],
                           list(doc.get("affectedService") or []))
        doc.setdefault("name", str(doc.get("description") or "Service problem")[:200])
        severity = "critical" if priority <= 2 else "major" if priority <= 4 else "minor"
        ticket = await self.tickets.create(ctx, self._ticket(ctx, doc, severity))
        doc["troubleTicket"] = [_ref(ticket)]
        PROBLEM_EXTENSION.mark(doc, ctx.base_url)
        return await self.record(ctx, doc, columns={"ticket_id": str(ticket["id"]), "root_object": None})

    # --- opened and fed by alarms -----------------------------------------------------------------------------
    async def open_for(self, ctx: Context, root: str, alarm: dict[str, Any], problem_id: str) -> dict[str, Any]:
        """Open the problem of the root object ``root`` for its first alarm (the caller holds the root's lock
        and found no open problem on it)."""
        obj = alarm["alarmedObject"]
        kind = str(obj.get("@type") or "Resource")
        severity = str(alarm.get("perceivedSeverity"))
        now = format_datetime(utcnow())
        alarm_ref = {"id": str(alarm["id"]), "href": alarm["href"]}
        doc: dict[str, Any] = {
            "id": problem_id, "name": f"Problem on {kind.lower()} {obj['id']}"[:200],
            "description": (f"{alarm.get('alarmType')}, {alarm.get('probableCause')}"
                            + (f" ({alarm['specificProblem']})" if alarm.get("specificProblem") else "")
                            + f" on {kind.lower()} {obj['id']}"
                            + (f": {alarm['alarmDetails']}" if alarm.get("alarmDetails") else "")),
            "category": "system.originated", "priority": PRIORITY.get(severity, 5),
            "reason": str(alarm.get("probableCause") or "unknown"), "originatorParty": dict(ORIGINATOR),
            "originatingSystem": str(alarm.get("sourceSystemId") or "OpenBSS"), "status": "inProgress",
            "creationDate": now, "lastUpdate": now, "statusChangeDate": now,
            "firstAlert": {**alarm_ref, "role": "firstAlert", "@referredType": "Alarm"},
            "underlyingAlarm": [alarm_ref],
        }
        ref = {"id": str(obj["id"]), "href": obj["href"]}
        if kind == "Resource":
            doc["rootCauseResource"] = [ref]
            await self._impact(ctx, doc, [ref["id"]], list(alarm.get("affectedService") or []))
        else:
            doc["rootCauseService"] = [ref]
            await self._impact(ctx, doc, [], [ref])
        ticket = await self.tickets.create(ctx, self._ticket(ctx, doc, SEVERITY.get(severity, "minor"), alarm))
        doc["troubleTicket"] = [_ref(ticket)]
        PROBLEM_EXTENSION.mark(doc, ctx.base_url)
        return await self.record(ctx, doc, columns={"root_object": root, "ticket_id": str(ticket["id"])})

    def _ticket(self, ctx: Context, doc: dict[str, Any], severity: str,
                alarm: dict[str, Any] | None = None) -> dict[str, Any]:
        entities = [{"id": doc["id"], "href": self.store.href(ctx.base_url, doc["id"]), "role": "serviceProblem",
                     "@referredType": "ServiceProblem"}]
        if alarm is not None:
            obj = alarm["alarmedObject"]
            entities += [{"id": str(obj["id"]), "href": obj["href"], "role": "alarmedObject",
                          "@referredType": str(obj.get("@type") or "Resource")},
                         {"id": str(alarm["id"]), "href": alarm["href"], "role": "alarm", "@referredType": "Alarm"}]
        entities += [{"id": str(s["id"]), "href": s.get("href"), "role": "affectedService", "@referredType": "Service"}
                     for s in (doc.get("affectedService") or [])[:50]]
        customers = doc.get("affectedCustomerCount") or 0
        return {"name": doc["name"], "severity": severity, "priority": "high" if severity == "critical" else "medium",
                "ticketType": "networkProblem",
                "description": doc["description"] + (f" Affects {customers} customer(s)." if customers else ""),
                "relatedEntity": [{k: v for k, v in e.items() if v is not None} for e in entities]}

    async def _impact(self, ctx: Context, doc: dict[str, Any], resource_ids: Iterable[str],
                      services: list[dict[str, Any]]) -> bool:
        """Add to ``doc`` the impact of ``resource_ids`` and ``services``: the services the resources support, the
        products realized by the services, the products' customers. True when something was added."""
        resource_ids = [r for r in resource_ids if r]
        have_res = {r["id"] for r in doc.get("affectedResource") or []}
        new_res = [r for r in dict.fromkeys(resource_ids) if r not in have_res]
        if new_res:
            found, _ = await self.objects.resources.list(ctx, parse_list_query(
                f"id={','.join(new_res)}&fields=id,href,name&limit={len(new_res)}",
                self.objects.resources.api.spec, "Resource"))
            doc["affectedResource"] = [*(doc.get("affectedResource") or []), *(_ref(r) for r in found)]
            supported, _ = await self.objects.services.list(ctx, parse_list_query(
                f"supportingResource.id={','.join(new_res)}&fields=id,href,name&limit=1000",
                self.objects.services.api.spec, "Service"))
            services = [*services, *supported]
        have_svc = {s["id"] for s in doc.get("affectedService") or []}
        new_svc = [_ref(s) for s in services if s.get("id") and s["id"] not in have_svc]
        new_svc = list({s["id"]: s for s in new_svc}.values())
        if new_svc:
            doc["affectedService"] = [*(doc.get("affectedService") or []), *new_svc]
            doc["affectedNumberOfServices"] = len(doc["affectedService"])
            products, _ = await self.objects.products.list(ctx, parse_list_query(
                f"realizingService.id={','.join(s['id'] for s in new_svc)}&fields=id,href,name,relatedParty"
                "&limit=1000", self.objects.products.api.spec, "Product"))
            entities = list(doc.get("relatedEntity") or [])
            parties = list(doc.get("relatedParty") or [])
            seen_products = {e["id"] for e in entities if e.get("role") == "affectedProduct"}
            seen_parties = {p["id"] for p in parties}
            for product in products:
                if product["id"] not in seen_products:
                    seen_products.add(product["id"])
                    entities.append({**_ref(product), "role": "affectedProduct", "@referredType": "Product"})
                for party in product.get("relatedParty") or []:
                    is_customer = party.get("role") == "customer" or party.get("@referredType") == "Customer"
                    if is_customer and party.get("id") and party["id"] not in seen_parties:
                        seen_parties.add(party["id"])
                        parties.append({**_ref(party), "role": "affectedCustomer",
                                        "@referredType": party.get("@referredType") or "Customer"})
            if entities:
                doc["relatedEntity"] = entities
            if parties:
                doc["relatedParty"] = parties
        doc["affectedProductCount"] = sum(1 for e in doc.get("relatedEntity") or [] if e.get("role") ==
                                          "affectedProduct")
        doc["affectedCustomerCount"] = sum(1 for p in doc.get("relatedParty") or [] if p.get("role") ==
                                           "affectedCustomer")
        return bool(new_res or new_svc)

    async def alarms_joined(self, ctx: Context, problem_id: str, alarms: list[tuple[dict[str, Any], bool]]) -> None:
        """Alarms joined the problem (``(alarm, root)`` each, in the order they were raised): their objects and
        services widen the impact; a root alarm (not correlated to a parent) is listed in ``underlyingAlarm``.
        One change of the problem for all of them, written only when the problem changes."""
        resources: list[str] = []
        services: list[dict[str, Any]] = []
        for alarm, _ in alarms:
            obj = alarm["alarmedObject"]
            if obj.get("@type") == "Resource":
                resources.append(str(obj["id"]))
                services += list(alarm.get("affectedService") or [])
            elif obj.get("@type") == "Service":
                services.append({"id": str(obj["id"]), "href": obj.get("href")})

        async def widen(doc: dict[str, Any]) -> None:
            if resources or services:
                resource_ids = list(dict.fromkeys(resources))
                for i in range(0, max(len(resource_ids), 1), 50):  # the inventory's queries stay short
                    await self._impact(ctx, doc, resource_ids[i:i + 50], services if i == 0 else [])
            have = {a["id"] for a in doc.get("underlyingAlarm") or []}
            for alarm, root in alarms:
                ref = {"id": str(alarm["id"]), "href": alarm["href"]}
                if root and ref["id"] not in have:
                    have.add(ref["id"])
                    doc["underlyingAlarm"] = [*(doc.get("underlyingAlarm") or []), ref]

        await self.change(ctx, problem_id, widen, action="alarm")

    async def alarm_cleared(self, ctx: Context, problem_id: str, alarm: dict[str, Any], *, root: bool) -> None:
        """An alarm of the problem cleared: the last open one resolves the problem and its ticket; a root alarm
        cleared while others stay open is noted on the ticket."""
        remaining = int(await ctx.session.scalar(select(func.count()).select_from(Alarm).where(
            Alarm.is_open, Alarm.problem_id == problem_id)) or 0)
        row = await ctx.session.get(ServiceProblem, problem_id)
        if row is None or not row.is_open:
            return
        ticket_id = row.ticket_id
        obj = alarm["alarmedObject"]
        if remaining:
            if root and ticket_id:
                await self.tickets.add_note(ctx, ticket_id, f"Alarm {alarm['id']} on {obj['id']} cleared; "
                                                            f"{remaining} alarm(s) of the problem still open.")
            return
        now = format_datetime(utcnow())
        await self.change(ctx, problem_id, lambda doc: doc.update(
            status="resolved", resolutionDate=now, statusChangeDate=now,
            statusChangeReason=f"every alarm of the problem cleared (last: alarm {alarm['id']})"), action="resolve")
        await self._resolve_ticket(ctx, ticket_id, f"Every alarm of problem {problem_id} cleared (last: alarm "
                                                   f"{alarm['id']} on {obj['id']})")

    async def _resolve_ticket(self, ctx: Context, ticket_id: str | None, reason: str) -> None:
        if ticket_id and (await self.tickets.get(ctx, ticket_id)).get("status") not in TICKET_DONE:
            await self.tickets.set_status(ctx, ticket_id, "resolved", reason)

    async def merge(self, ctx: Context, problem_id: str, into: str) -> None:
        """Close a problem left without open alarms because they were correlated into problem ``into``."""
        row = await ctx.session.get(ServiceProblem, problem_id)
        if row is None or not row.is_open:
            return
        remaining = await ctx.session.scalar(select(func.count()).select_from(Alarm).where(
            Alarm.is_open, Alarm.problem_id == problem_id))
        if remaining:
            return
        now = format_datetime(utcnow())
        into_ref = {"id": into, "href": self.store.href(ctx.base_url, into)}
        await self.change(ctx, problem_id, lambda doc: doc.update(
            status="closed" if doc.get("status") == "resolved" else "cancelled", statusChangeDate=now,
            parentProblem=[into_ref], statusChangeReason=f"its alarms were correlated into problem {into}"),
            action="merge")
        await self._resolve_ticket(ctx, row.ticket_id, f"Merged into problem {into}: its alarms have a root cause "
                                                       "there")

    async def open_problem_of(self, ctx: Context, root: str) -> str | None:
        return await ctx.session.scalar(select(ServiceProblem.id).where(ServiceProblem.root_object == root,
                                                                        ServiceProblem.is_open))

    async def customer_problems(self, ctx: Context, customer: dict[str, Any]) -> dict[str, Any]:
        """The customer 360 section: the problems affecting the customer (open first, then the latest)."""
        ids = [i for i in (customer.get("id"), (customer.get("engagedParty") or {}).get("id")) if i]
        if not ids:
            return {"open": 0, "recent": []}
        rows = (await ctx.session.execute(select(ServiceProblem).where(
            or_(*[ServiceProblem.body.contains({"relatedParty": [{"id": i}]}) for i in ids]))
            .order_by(ServiceProblem.is_open.desc(), ServiceProblem.created_at.desc()).limit(20))).scalars().all()
        docs = await self.store.render_all(ctx, list(rows))
        keep = ("id", "href", "name", "status", "priority", "creationDate", "resolutionDate", "description",
                "affectedNumberOfServices", "troubleTicket", "@type")
        return {"open": sum(1 for r in rows if r.is_open),
                "recent": [{k: d[k] for k in keep if k in d} for d in docs]}


__all__ = ["OPEN_STATUSES", "PROBLEM_API", "ManagedObjects", "ServiceProblemService", "Tickets"]
