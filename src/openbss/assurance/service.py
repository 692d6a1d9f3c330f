"""Service assurance's operations: TMF642 alarms raised with deduplication, cleared by key, acknowledged and
commented (one by one or by pattern through the specification's task resources), and their impact: an alarm on a
resource or service of the inventory is attached to it, and a critical alarm opens one trouble ticket per problem
on that object, resolved when the object's last critical alarm clears.

What assurance needs from other domains, declared here:

* ``ManagedObjects`` — the inventory's resources and services (``InventoryService`` provides them);
* ``Tickets`` — raising, moving and annotating a trouble ticket (care's ``TicketService``).
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert

from openbss.assurance import x733
from openbss.assurance.errors import AlarmContention, InvalidAlarm, InvalidPattern
from openbss.assurance.models import Alarm, AlarmProblem
from openbss.assurance.schemas import ALARM_TYPE, MANAGED
from openbss.platform.db import utcnow
from openbss.platform.errors import NotFound
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

ALARM_API = "alarm"
SCHEMA_PATH = "/api/assurance/v1/schema/OpenBSSAlarm.json"
#: the attributes that make the reduction key: an open alarm's problem cannot be changed, only cleared
KEY_ATTRIBUTES = ("alarmedObject", "alarmType", "probableCause", "specificProblem")
ALARM_TRANSITIONS: dict[str, set[str]] = {"raised": {"updated", "cleared"}, "updated": {"cleared"}, "cleared": set()}
#: ticket statuses in which a problem's ticket is no longer worked (nothing to resolve)
TICKET_DONE = frozenset({"resolved", "closed", "cancelled", "rejected"})
SYSTEM_ID = "OpenBSS"


class ManagedObjects(Protocol):
    """The inventory's resources (TMF639) and services (TMF638), where alarmed objects are found."""

    @property
    def resources(self) -> ResourceService: ...

    @property
    def services(self) -> ResourceService: ...


class Tickets(Protocol):
    """Trouble tickets (TMF621), as customer care raises and works them."""

    async def create(self, ctx: Context, doc: dict[str, Any], *, raised_at: datetime | None = None,
                     ) -> dict[str, Any]: ...

    async def get(self, ctx: Context, resource_id: str) -> dict[str, Any]: ...

    async def set_status(self, ctx: Context, ticket_id: str, status: str, reason: str | None = None,
                         ) -> dict[str, Any]: ...

    async def add_note(self, ctx: Context, ticket_id: str, text: str) -> dict[str, Any]: ...


def reduction_key(doc: dict[str, Any]) -> str:
    """The problem on its managed object: object id, event type, probable cause, specific problem."""
    obj = doc.get("alarmedObject") or {}
    return "|".join(str(v) for v in (obj.get("id", ""), doc.get("alarmType", ""), doc.get("probableCause", ""),
                                      doc.get("specificProblem") or ""))


def check_vocabulary(doc: dict[str, Any]) -> None:
    """X.733 event type, probable cause and perceived severity; TMF642 states; a managed object with an id."""
    checks = (("alarmType", x733.ALARM_TYPES), ("probableCause", x733.PROBABLE_CAUSES),
              ("perceivedSeverity", x733.SEVERITIES), ("state", x733.STATES), ("ackState", x733.ACK_STATES))
    for attribute, allowed in checks:
        value = doc.get(attribute)
        if value is not None and value not in allowed:
            hint = ", ".join(sorted(allowed)) if len(allowed) <= 12 else "see X.733 / 3GPP TS 32.111-2 Annex B"
            raise InvalidAlarm(f"'{attribute}' '{value}' is not a known value ({hint})")
    obj = doc.get("alarmedObject")
    if not isinstance(obj, dict) or not str(obj.get("id") or "").strip():
        raise InvalidAlarm("'alarmedObject.id' is required: the managed object the alarm is about")


def alarm_id() -> str:
    """TMF642 alarm ids are integers: a random positive one that JSON clients read exactly (below 2**53)."""
    return str(secrets.randbelow(2**53 - 2) + 1)


@dataclass(frozen=True)
class Signal:
    """A source's report: raise ``alarm``, or clear the open alarm of its problem (its clear key is the
    reduction key the same report would raise)."""

    action: str  # "raise" | "clear"
    alarm: dict[str, Any]
    source: str

    @property
    def clear_key(self) -> str:
        return reduction_key(self.alarm)


class AlarmExists(Exception):
    """An open alarm already has this reduction key (the insert did nothing)."""


class AlarmStore(DocumentStore):
    """Alarms are stored with their reduction key and whether they are open; the insert is ``ON CONFLICT DO
    NOTHING`` on the partial unique index of open alarms, so concurrent raises of one problem make one alarm."""

    async def documents(self, ctx: Context, rows: list[TmfDocument]) -> list[dict[str, Any]]:
        # stored with the integer id; the kit works with the row's (string) id
        return [{**doc, "id": str(doc["id"])} if "id" in doc else doc for doc in await super().documents(ctx, rows)]

    def shape(self, base_url: str, resource_id: str, doc: dict[str, Any]) -> dict[str, Any]:
        out = super().shape(base_url, resource_id, doc)
        out["id"] = int(resource_id)
        return out

    async def insert(self, ctx: Context, resource_id: str, doc: dict[str, Any], **columns: Any) -> TmfDocument:
        stored = {**await self.resource.codec.encode(ctx, resource_id, doc), "id": int(resource_id)}
        now = utcnow()
        values = {"id": resource_id, "body": stored, "last_update": now, "created_at": now,
                  "reduction_key": doc["reductionKey"], "is_open": doc.get("state") != "cleared"}
        stmt = (pg_insert(Alarm).values(**values)
                .on_conflict_do_nothing(index_elements=["tenant_id", "reduction_key"], index_where=text("is_open"))
                .returning(Alarm.id))
        if await ctx.session.scalar(stmt) is None:
            raise AlarmExists(doc["reductionKey"])
        await self.index.write(ctx, resource_id, doc, replace=False)
        return Alarm(**values)

    async def replace(self, ctx: Context, row: TmfDocument, doc: dict[str, Any]) -> TmfDocument:
        row.is_open = doc.get("state") != "cleared"  # type: ignore[attr-defined]
        # the id in the document is the specification's integer (filters compare it as a number)
        return await super().replace(ctx, row, {**doc, "id": int(row.id)})


class AlarmRules(ResourceHooks):
    transitions: ClassVar[dict[str, set[str]] | None] = ALARM_TRANSITIONS

    async def before_update(self, ctx: Context, current: dict[str, Any], changes: dict[str, Any],
                            merged: dict[str, Any]) -> None:
        for attribute in changes:
            if attribute in MANAGED:
                raise InvalidAlarm(f"'{attribute}' is kept by the server")
            if attribute in KEY_ATTRIBUTES and changes[attribute] != current.get(attribute):
                raise InvalidAlarm(f"'{attribute}' names the alarm's problem and cannot change; clear the alarm "
                                   "and raise another")
        if current.get("state") == "cleared":
            raise InvalidAlarm("a cleared alarm cannot be changed")
        check_vocabulary(merged)
        now = format_datetime(utcnow())
        merged["alarmChangedTime"] = now
        if merged.get("state") == "cleared" or merged.get("perceivedSeverity") == "cleared":
            merged.update(state="cleared", perceivedSeverity="cleared")
            merged.setdefault("alarmClearedTime", now)
        elif changes.get("perceivedSeverity") not in (None, current.get("perceivedSeverity")):
            merged["state"] = "updated"
        if "ackState" in changes and changes["ackState"] != current.get("ackState"):
            merged.setdefault("ackUserId", ctx.principal.subject)


@dataclass(frozen=True)
class Raised:
    alarm: dict[str, Any]
    new: bool


class AlarmService(ResourceService):
    """TMF642 alarms: raise (deduplicated by reduction key), repeat, clear by key, acknowledge, comment."""

    def __init__(self, api: TmfApi, resource: TmfResource, objects: ManagedObjects, impact: Impact) -> None:
        super().__init__(api, resource)
        self.store = AlarmStore(api, resource)
        self.objects = objects
        self.impact = impact

    # --- raising -----------------------------------------------------------------------------------------------
    async def create(self, ctx: Context, doc: dict[str, Any]) -> dict[str, Any]:
        return (await self.raise_alarm(ctx, doc)).alarm

    async def _attach(self, ctx: Context, doc: dict[str, Any]) -> None:
        """Attach the alarm to its managed object in the inventory (a resource, else a service), when there."""
        obj = dict(doc["alarmedObject"])
        object_id = str(obj["id"])
        for kind, svc in (("Resource", self.objects.resources), ("Service", self.objects.services)):
            referred = obj.get("@referredType") or obj.get("@type")
            if referred not in (None, kind):
                continue
            try:
                found = await svc.get(ctx, object_id)
            except NotFound:
                continue
            obj.setdefault("href", found["href"])
            obj.setdefault("@type", kind)
            doc["alarmedObject"] = obj
            doc.setdefault("alarmedObjectType", str(found.get("@type") or kind))
            if kind == "Resource" and "affectedService" not in doc:
                q = parse_list_query(f"supportingResource.id={object_id}&fields=id,href&limit=100",
                                     self.objects.services.api.spec, "Service")
                services, _ = await self.objects.services.list(ctx, q)
                if services:
                    doc["affectedService"] = [{"id": s["id"], "href": s["href"]} for s in services]
            return

    async def raise_alarm(self, ctx: Context, given: dict[str, Any], *, system: str | None = None) -> Raised:
        """Raise an alarm, or count a repeat of the open alarm of the same problem (occurrence count and last
        occurrence time; a new severity makes it ``updated``). Safe under concurrent raises: the insert is
        ``ON CONFLICT DO NOTHING`` on the open alarms' reduction keys, and a repeat locks the open alarm."""
        doc = dict(given)
        for managed in MANAGED:
            if managed in doc:
                raise InvalidAlarm(f"'{managed}' is kept by the server; leave it out")
        for server in ("alarmClearedTime", "clearUserId", "clearSystemId"):
            if server in doc:
                raise InvalidAlarm(f"'{server}' is set when the alarm is cleared; leave it out")
        check_vocabulary(doc)
        if doc.get("state", "raised") != "raised":
            raise InvalidAlarm(f"an alarm is raised with state 'raised', not '{doc['state']}'")
        if doc.get("perceivedSeverity") == "cleared":
            raise InvalidAlarm("an alarm is raised with a severity other than 'cleared'; clear it instead")
        now = format_datetime(utcnow())
        await self._attach(ctx, doc)
        key = reduction_key(doc)
        doc.update({"state": "raised", "alarmReportingTime": now, "alarmChangedTime": now,
                    "reductionKey": key, "occurrenceCount": 1, "lastOccurrenceTime": doc["alarmRaisedTime"],
                    "@type": ALARM_TYPE, "@baseType": "Alarm", "@schemaLocation": f"{ctx.base_url}{SCHEMA_PATH}"})
        doc.setdefault("ackState", "unacknowledged")
        doc.setdefault("reportingSystemId", system or SYSTEM_ID)
        for _ in range(5):
            try:
                out = await self.record(ctx, {**doc, "id": alarm_id()})
            except AlarmExists:
                repeated = await self._repeat(ctx, key, doc)
                if repeated is None:  # cleared in between: raise it anew
                    continue
                await self.impact.alarm_raised(ctx, repeated, new=False)
                return Raised(repeated, False)
            await self.impact.alarm_raised(ctx, out, new=True)
            return Raised(out, True)
        raise AlarmContention(f"the alarm '{key}' is raised and cleared too fast to settle; try again")

    async def _open_id(self, ctx: Context, key: str) -> str | None:
        return await ctx.session.scalar(select(Alarm.id).where(Alarm.reduction_key == key, Alarm.is_open))

    async def _repeat(self, ctx: Context, key: str, report: dict[str, Any]) -> dict[str, Any] | None:
        open_id = await self._open_id(ctx, key)
        if open_id is None:
            return None
        gone = False

        def count(doc: dict[str, Any]) -> None:
            nonlocal gone
            if doc.get("state") == "cleared":
                gone = True
                return
            doc["occurrenceCount"] = int(doc.get("occurrenceCount", 1)) + 1
            doc["lastOccurrenceTime"] = max(str(doc.get("lastOccurrenceTime") or ""), str(report["alarmRaisedTime"]))
            doc["alarmChangedTime"] = report["alarmChangedTime"]
            if report["perceivedSeverity"] != doc.get("perceivedSeverity"):
                doc["perceivedSeverity"] = report["perceivedSeverity"]
                doc["state"] = "updated"
            for attribute in ("alarmDetails", "serviceAffecting", "proposedRepairedActions"):
                if attribute in report:
                    doc[attribute] = report[attribute]

        out = await self.change(ctx, open_id, count, action="repeat")
        return None if gone else out

    # --- clearing ------------------------------------------------------------------------------------------------
    async def clear_by_key(self, ctx: Context, clear_key: str, *, cleared_at: str | None = None,
                           system: str | None = None, user: str | None = None) -> dict[str, Any] | None:
        """Clear the open alarm whose reduction key is ``clear_key`` (None when none is open: a clear that comes
        twice, or for a problem never raised, changes nothing)."""
        open_id = await self._open_id(ctx, clear_key)
        if open_id is None:
            return None
        return await self.clear(ctx, open_id, cleared_at=cleared_at, system=system, user=user)

    async def clear(self, ctx: Context, alarm_id: str, *, cleared_at: str | None = None,
                    system: str | None = None, user: str | None = None) -> dict[str, Any] | None:
        """Clear one alarm (None when it was already cleared)."""
        was_open = True

        def clear(doc: dict[str, Any]) -> None:
            nonlocal was_open
            if doc.get("state") == "cleared":
                was_open = False
                return
            now = format_datetime(utcnow())
            doc.update(state="cleared", perceivedSeverity="cleared", alarmClearedTime=cleared_at or now,
                       alarmChangedTime=now, clearSystemId=system or SYSTEM_ID,
                       clearUserId=user or ctx.principal.subject)

        out = await self.change(ctx, alarm_id, clear, action="clear")
        if not was_open:
            return None
        await self.impact.alarm_cleared(ctx, out)
        return out

    async def patch(self, ctx: Context, resource_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        before = (await self.store.documents(ctx, [await self.store.get(ctx, resource_id, for_update=True)]))[0]
        out = await super().patch(ctx, resource_id, changes)
        if out.get("state") == "cleared" and before.get("state") != "cleared":
            await self.impact.alarm_cleared(ctx, out)
        elif out.get("perceivedSeverity") != before.get("perceivedSeverity"):
            await self.impact.alarm_raised(ctx, out, new=False)
        return out

    # --- acknowledging, commenting ---------------------------------------------------------------------------
    async def acknowledge(self, ctx: Context, alarm_id: str, state: str, *, system: str, user: str) -> bool:
        changed = False

        def ack(doc: dict[str, Any]) -> None:
            nonlocal changed
            if doc.get("ackState") != state:
                changed = True
                doc.update(ackState=state, ackSystemId=system, ackUserId=user,
                           alarmChangedTime=format_datetime(utcnow()))

        await self.change(ctx, alarm_id, ack, action="acknowledge" if state == "acknowledged" else "unacknowledge")
        return changed

    async def comment(self, ctx: Context, alarm_id: str, comment: dict[str, Any]) -> bool:
        entry = {"time": format_datetime(utcnow()), "userId": ctx.principal.subject, **comment}
        await self.change(ctx, alarm_id, lambda doc: doc.update(comment=[*(doc.get("comment") or []), entry],
                                                                  alarmChangedTime=entry["time"]),
                          action="comment")
        return True

    async def match(self, ctx: Context, patterns: list[dict[str, Any]], limit: int = 1000) -> list[str]:
        """The ids of the alarms matching any pattern (every attribute of a pattern equal to the alarm's)."""
        if not patterns:
            raise InvalidPattern("'alarmPattern' needs at least one pattern")
        found: dict[str, None] = {}
        for pattern in patterns:
            if not pattern:
                raise InvalidPattern("an empty pattern would match every alarm; name at least one attribute")
            wanted = dict(pattern)
            if "id" in wanted:
                wanted["id"] = int(wanted["id"])
            stmt = (select(Alarm.id).where(Alarm.body.op("@>")(wanted))
                    .order_by(Alarm.created_at).limit(limit))
            for row_id in (await ctx.session.execute(stmt)).scalars():
                found[row_id] = None
        return list(found)

    def ref(self, ctx: Context, alarm_id: str) -> dict[str, Any]:
        return {"id": int(alarm_id), "href": self.store.href(ctx.base_url, alarm_id)}


class Impact:
    """A problem per managed object of the inventory: its first critical alarm opens one trouble ticket (a repeat,
    or another critical alarm on the object, opens none: the open problem is unique per object); each clear of a
    critical alarm is noted on the ticket, and the last one resolves it."""

    def __init__(self, tickets: Tickets) -> None:
        self.tickets = tickets

    @staticmethod
    def _object(alarm: dict[str, Any]) -> tuple[str, str] | None:
        obj = alarm.get("alarmedObject") or {}
        kind = obj.get("@type")
        if kind not in ("Resource", "Service") or not obj.get("href"):
            return None  # not attached to the inventory
        return str(kind), str(obj["id"])

    async def _problem(self, ctx: Context, kind: str, object_id: str) -> AlarmProblem | None:
        return (await ctx.session.execute(select(AlarmProblem).where(
            AlarmProblem.object_type == kind, AlarmProblem.object_id == object_id, AlarmProblem.is_open,
        ).with_for_update())).scalars().first()

    async def alarm_raised(self, ctx: Context, alarm: dict[str, Any], *, new: bool) -> None:
        attached = self._object(alarm)
        if attached is None or alarm.get("perceivedSeverity") != "critical":
            return
        kind, object_id = attached
        problem_id = str(uuid.uuid4())
        opened = await ctx.session.scalar(
            pg_insert(AlarmProblem).values(id=problem_id, object_type=kind, object_id=object_id, is_open=True)
            .on_conflict_do_nothing(index_elements=["tenant_id", "object_type", "object_id"],
                                    index_where=text("is_open"))
            .returning(AlarmProblem.id))
        if opened is None:
            return  # the object's problem is open: its ticket covers this alarm too
        obj = alarm["alarmedObject"]
        ticket = await self.tickets.create(ctx, {
            "name": f"Network problem on {kind.lower()} {object_id}"[:200],
            "description": (f"Critical alarm {alarm['id']} on {kind.lower()} {object_id}: {alarm.get('alarmType')}"
                            f", {alarm.get('probableCause')}"
                            + (f" ({alarm['specificProblem']})" if alarm.get("specificProblem") else "")
                            + (f". {alarm['alarmDetails']}" if alarm.get("alarmDetails") else "")),
            "severity": "critical", "priority": "high", "ticketType": "networkProblem",
            "relatedEntity": [
                {"id": object_id, "href": obj["href"], "role": "alarmedObject", "@referredType": kind},
                {"id": str(alarm["id"]), "href": alarm["href"], "role": "alarm", "@referredType": "Alarm"},
                *({"id": str(s["id"]), "href": s.get("href"), "role": "affectedService", "@referredType": "Service"}
                  for s in alarm.get("affectedService") or []),
            ],
        })
        problem = await ctx.session.get(AlarmProblem, problem_id)
        assert problem is not None
        problem.ticket_id = str(ticket["id"])
        await ctx.session.flush()

    async def alarm_cleared(self, ctx: Context, alarm: dict[str, Any]) -> None:
        attached = self._object(alarm)
        if attached is None:
            return
        kind, object_id = attached
        problem = await self._problem(ctx, kind, object_id)  # locked: concurrent clears count one after the other
        if problem is None:
            return
        remaining = await ctx.session.scalar(select(func.count()).select_from(Alarm).where(
            Alarm.is_open, Alarm.body.op("@>")({"alarmedObject": {"id": object_id}, "perceivedSeverity": "critical"})))
        ticket_id = problem.ticket_id
        if remaining:
            if ticket_id:
                await self.tickets.add_note(ctx, ticket_id, f"Alarm {alarm['id']} cleared; {remaining} critical "
                                                            f"alarm(s) still open on {kind.lower()} {object_id}.")
            return
        problem.is_open = False
        problem.resolved_at = utcnow()
        await ctx.session.flush()
        if ticket_id and (await self.tickets.get(ctx, ticket_id)).get("status") not in TICKET_DONE:
            await self.tickets.set_status(ctx, ticket_id, "resolved",
                                          f"Every critical alarm on {kind.lower()} {object_id} cleared "
                                          f"(last: alarm {alarm['id']})")

    async def problems(self, ctx: Context, object_id: str | None = None) -> list[dict[str, Any]]:
        stmt = select(AlarmProblem).order_by(AlarmProblem.opened_at.desc()).limit(200)
        if object_id is not None:
            stmt = stmt.where(AlarmProblem.object_id == object_id)
        return [{"id": p.id, "objectType": p.object_type, "objectId": p.object_id, "troubleTicketId": p.ticket_id,
                 "open": p.is_open, "openedAt": format_datetime(p.opened_at),
                 "resolvedAt": format_datetime(p.resolved_at) if p.resolved_at else None}
                for p in (await ctx.session.execute(stmt)).scalars()]


@dataclass
class Applied:
    raised: int = 0
    repeated: int = 0
    cleared: int = 0
    unmatched: int = 0
    alarms: list[dict[str, Any]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {"raised": self.raised, "repeated": self.repeated, "cleared": self.cleared,
                "unmatchedClears": self.unmatched}


class AssuranceService:
    """Service assurance's public operations: alarms, their sources' signals, problems."""

    def __init__(self, alarms: AlarmService, impact: Impact) -> None:
        self.alarms = alarms
        self.impact = impact

    async def apply(self, ctx: Context, signals: list[Signal]) -> Applied:
        """Apply sources' signals in order, in the caller's transaction."""
        out = Applied()
        for signal in signals:
            if signal.action == "raise":
                raised = await self.alarms.raise_alarm(ctx, signal.alarm, system=signal.source)
                out.alarms.append(raised.alarm)
                if raised.new:
                    out.raised += 1
                else:
                    out.repeated += 1
            else:
                check_vocabulary(signal.alarm)
                cleared = await self.alarms.clear_by_key(
                    ctx, signal.clear_key, cleared_at=signal.alarm.get("alarmClearedTime"), system=signal.source,
                    user=ctx.principal.subject)
                if cleared is None:
                    out.unmatched += 1
                else:
                    out.cleared += 1
                    out.alarms.append(cleared)
        return out


#: the operation tasks of TMF642: path, type, the attribute listing the alarms they changed
TASKS = {"ackAlarms": ("AckAlarms", "ackedAlarm"), "unAckAlarms": ("UnAckAlarms", "unAckedAlarm"),
         "clearAlarms": ("ClearAlarms", "clearedAlarm"), "commentAlarms": ("CommentAlarms", "commentedAlarm")}


class AlarmTaskService(ResourceService):
    """A TMF642 operation task: applies its operation to the alarms its patterns match, records the task (state
    ``done``) with the alarms it changed."""

    def __init__(self, api: TmfApi, resource: TmfResource, alarms: AlarmService) -> None:
        super().__init__(api, resource)
        self.alarms = alarms
        self.result = TASKS[resource.path][1]

    async def create(self, ctx: Context, doc: dict[str, Any]) -> dict[str, Any]:
        doc = dict(doc)
        if self.result in doc:
            raise InvalidPattern(f"'{self.result}' is the task's result; leave it out")
        if doc.get("state") not in (None, "done"):
            raise InvalidPattern(f"a task is carried out at once: its state is 'done', not '{doc['state']}'")
        now = format_datetime(utcnow())
        ids = await self.alarms.match(ctx, list(doc.get("alarmPattern") or []))
        done: list[dict[str, Any]] = []
        path = self.resource.path
        for alarm_id in ids:
            if path in ("ackAlarms", "unAckAlarms"):
                state = "acknowledged" if path == "ackAlarms" else "unacknowledged"
                doc.setdefault("ackTime", now)
                changed = await self.alarms.acknowledge(ctx, alarm_id, state, system=doc["ackSystemId"],
                                                        user=doc["ackUserId"])
            elif path == "clearAlarms":
                changed = await self.alarms.clear(ctx, alarm_id, cleared_at=doc["alarmClearedTime"],
                                                  system=doc["clearSystemId"], user=doc["clearUserId"]) is not None
            else:
                changed = await self.alarms.comment(ctx, alarm_id, doc["comment"])
            if changed:
                done.append(self.alarms.ref(ctx, alarm_id))
        doc.update({"state": "done", self.result: done, "id": self.resource.id_factory()})
        return await self.record(ctx, doc)


__all__ = [
    "ALARM_API",
    "AlarmService",
    "AlarmTaskService",
    "Applied",
    "AssuranceService",
    "Impact",
    "ManagedObjects",
    "Raised",
    "Signal",
    "Tickets",
    "check_vocabulary",
    "reduction_key",
]
