"""Service assurance's operations: TMF642 alarms raised with deduplication, cleared by key, acknowledged and
commented (one by one or by pattern through the specification's task resources), correlated on the inventory's
topology by the tenant's rules (suppression, root cause, grouping: ``rules.py``) and grouped into TMF656 service
problems (``problems.py``), each with one trouble ticket; flapping problems are marked and their notifications
damped.

What assurance needs from other domains, declared in ``problems.py``:

* ``ManagedObjects`` — the inventory's resources, services and products (``InventoryService`` provides them);
* ``Tickets`` — raising, moving and annotating a trouble ticket (care's ``TicketService``).

Concurrency: every raise and clear first takes transaction-scoped advisory locks on its managed object and the
object's parents, in one order, so that the alarms of one failed node and of the objects depending on it are
correlated one after the other; the open problem is also unique per root object (partial unique index).
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

from sqlalchemy import delete, func, or_, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert

from openbss.assurance import x733
from openbss.assurance.errors import AlarmContention, InvalidAlarm, InvalidPattern
from openbss.assurance.models import Alarm
from openbss.assurance.problems import ManagedObjects, ServiceProblemService, Tickets
from openbss.assurance.rules import RuleBook, Rules
from openbss.assurance.schemas import ALARM_TYPE, MANAGED
from openbss.platform import audit
from openbss.platform.db import insert_rows, json_dumps, utcnow
from openbss.platform.errors import NotFound
from openbss.platform.events.outbox import NOTIFY_CHANNEL, OutboxEvent
from openbss.platform.tmf.query import parse_list_query
from openbss.platform.tmf.references import without
from openbss.platform.tmf.resource import (
    Context,
    DocumentStore,
    ResourceHooks,
    ResourceService,
    TmfApi,
    TmfDocument,
    TmfResource,
)
from openbss.platform.tmf.search import SearchEntry
from openbss.platform.tmf.spec import format_datetime

ALARM_API = "alarm"
SCHEMA_PATH = "/api/assurance/v1/schema/OpenBSSAlarm.json"
#: the attributes that make the reduction key: an open alarm's problem cannot be changed, only cleared
KEY_ATTRIBUTES = ("alarmedObject", "alarmType", "probableCause", "specificProblem")
ALARM_TRANSITIONS: dict[str, set[str]] = {"raised": {"updated", "cleared"}, "updated": {"cleared"}, "cleared": set()}
SYSTEM_ID = "OpenBSS"
#: what a repeat brings to its open alarm besides the count and the time
REPEATED_ATTRIBUTES = ("alarmDetails", "serviceAffecting", "proposedRepairedActions")
#: the repeats of a batch that change only the count, the last occurrence and the details, in one statement (the
#: open alarm of each key with the report's severity, not flapping; rows locked in id order; the keys also as an
#: array, so that the open alarms are found through the index of the open reduction keys)
BULK_REPEAT = """
WITH v AS (SELECT * FROM jsonb_to_recordset(CAST(:items AS jsonb))
           AS x(key text, n int, last text, severity text, extra jsonb)),
old AS (SELECT a.id, a.body, v.n, v.last, v.extra FROM alarm a JOIN v ON a.reduction_key = v.key
        WHERE a.reduction_key = ANY(CAST(:keys AS text[])) AND a.is_open
          AND a.body ->> 'perceivedSeverity' = v.severity AND NOT a.body @> '{"flapping": true}'
        ORDER BY a.id FOR UPDATE OF a)
UPDATE alarm AS a
SET body = a.body || jsonb_build_object(
        'occurrenceCount', COALESCE((a.body ->> 'occurrenceCount')::int, 1) + old.n,
        'lastOccurrenceTime', GREATEST(a.body ->> 'lastOccurrenceTime', old.last),
        'alarmChangedTime', CAST(:now AS text)) || old.extra,
    last_update = now(), revision = a.revision + 1
FROM old WHERE a.id = old.id
RETURNING a.id, a.reduction_key, old.body, a.body
"""


#: an object id that a list query's ``id=a,b,…`` filter can name as it is
_PLAIN_ID = re.compile(r"^[\w.:/@-]+$")


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
    #: the reports this raise stands for (a source that folded repeats), the last of them at ``last``
    count: int = 1
    last: str | None = None

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
                  "reduction_key": doc["reductionKey"], "is_open": doc.get("state") != "cleared",
                  "problem_id": (doc.get("serviceProblem") or {}).get("id")}
        stmt = (pg_insert(Alarm).values(**values)
                .on_conflict_do_nothing(index_elements=["tenant_id", "reduction_key"], index_where=text("is_open"))
                .returning(Alarm.id))
        if await ctx.session.scalar(stmt) is None:
            raise AlarmExists(doc["reductionKey"])
        await self._index(ctx, resource_id, doc, replace=False)
        return Alarm(**values)

    async def insert_many(self, ctx: Context, items: list[tuple[str, dict[str, Any], Mapping[str, Any]]]) -> None:
        """``insert`` for many alarms: one multi-row insert (``ON CONFLICT DO NOTHING`` too: a conflict means
        another transaction raised one of the problems, AlarmContention), one of their search entries. Each row is
        created a microsecond after the one before, so that the open alarms of an object read in creation order
        come in the order they were raised, as one by one."""
        now = utcnow()
        rows = [{"id": resource_id,
                 "body": {**await self.resource.codec.encode(ctx, resource_id, doc), "id": int(resource_id)},
                 "last_update": now, "created_at": now + timedelta(microseconds=i), "revision": 1,
                 "reduction_key": doc["reductionKey"], "is_open": doc.get("state") != "cleared",
                 "problem_id": (doc.get("serviceProblem") or {}).get("id")}
                for i, (resource_id, doc, _) in enumerate(items)]
        got = await insert_rows(ctx.session, Alarm, rows, on_conflict_do_nothing=True, returning=("id",))
        if len(got) != len(rows):
            raise AlarmContention("alarms of this batch were raised at the same moment by another source; send the "
                                  "batch again")
        await self.index.write_many(ctx, [(resource_id, doc) for resource_id, doc, _ in items], replace=False)

    async def _index(self, ctx: Context, resource_id: str, doc: dict[str, Any], *, replace: bool) -> None:
        """The alarm's search entries (none sealed, none unique): one executemany, whose statement is compiled
        once per process — the index's multi-row ``VALUES`` insert is compiled again for every alarm, which cost
        most of a storm's Python time."""
        index = self.index
        if index.needs_key() or not index.side_table:
            await index.write(ctx, resource_id, doc, replace=replace)
            return
        if replace:
            await index.forget(ctx, resource_id)
        rows = index.entries(resource_id, doc, None)
        if rows:
            await ctx.session.execute(pg_insert(SearchEntry).on_conflict_do_nothing(), rows)

    async def replace(self, ctx: Context, row: TmfDocument, doc: dict[str, Any]) -> TmfDocument:
        row.is_open = doc.get("state") != "cleared"  # type: ignore[attr-defined]
        row.problem_id = (doc.get("serviceProblem") or {}).get("id")  # type: ignore[attr-defined]
        # the id in the document is the specification's integer (filters compare it as a number)
        doc = {**doc, "id": int(row.id)}
        row.body = await self.resource.codec.encode(ctx, row.id, doc)
        row.last_update = utcnow()
        row.revision = row.revision + 1
        await ctx.session.flush()  # one UPDATE (before the index's statements would flush part of it)
        await self._index(ctx, row.id, doc, replace=True)
        return row


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
    """TMF642 alarms: raise (deduplicated by reduction key), repeat, clear by key, acknowledge, comment; each
    raise and clear correlated by the tenant's rules and grouped into service problems."""

    def __init__(self, api: TmfApi, resource: TmfResource, objects: ManagedObjects, problems: ServiceProblemService,
                 rules: RuleBook, *, flap_threshold: int = 5, flap_window_seconds: int = 600) -> None:
        super().__init__(api, resource)
        self.store = AlarmStore(api, resource)
        self.objects = objects
        self.problems = problems
        self.rules = rules
        self.flap_threshold = flap_threshold
        self.flap_window = timedelta(seconds=flap_window_seconds)

    # --- the inventory and the locks ---------------------------------------------------------------------------
    async def _lookup(self, ctx: Context, obj: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        """The inventory object an alarm is about: (``Resource``/``Service``, its document), cached for the unit of
        work (a batch of a source names the same objects again and again)."""
        cache: dict[tuple[str, str], tuple[str, dict[str, Any]] | None] = ctx.__dict__.setdefault(
            "_assurance_objects", {})
        object_id = str(obj.get("id") or "")
        referred = str(obj.get("@referredType") or obj.get("@type") or "")
        if (object_id, referred) in cache:
            return cache[(object_id, referred)]
        out: tuple[str, dict[str, Any]] | None = None
        for kind, svc in (("Resource", self.objects.resources), ("Service", self.objects.services)):
            if referred not in ("", kind):
                continue
            try:
                out = (kind, await svc.get(ctx, object_id))
                break
            except NotFound:
                continue
        cache[(object_id, referred)] = out
        return out

    async def _prefetch(self, ctx: Context, objects: Iterable[dict[str, Any]]) -> None:
        """Read the inventory objects of a batch's alarms in one query per kind (rather than one each) into the
        unit of work's cache of ``_lookup``, with the same outcome: a resource first, else a service."""
        cache: dict[tuple[str, str], tuple[str, dict[str, Any]] | None] = ctx.__dict__.setdefault(
            "_assurance_objects", {})
        wanted: dict[tuple[str, str], None] = {}
        for obj in objects:
            pair = (str(obj.get("id") or ""), str(obj.get("@referredType") or obj.get("@type") or ""))
            if pair not in cache and _PLAIN_ID.match(pair[0]) and pair[1] in ("", "Resource", "Service"):
                wanted[pair] = None
        if len(wanted) < 2:
            return
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for kind, svc, type_ in (("Resource", self.objects.resources, "Resource"),
                                 ("Service", self.objects.services, "Service")):
            ids = list(dict.fromkeys(o for o, ref in wanted if ref in ("", kind) and ("Resource", o) not in found))
            for i in range(0, len(ids), 100):
                docs, _ = await svc.list(ctx, parse_list_query(f"id={','.join(ids[i:i + 100])}&limit=100",
                                                               svc.api.spec, type_))
                for d in docs:
                    found[(kind, str(d["id"]))] = d
        for oid, ref in wanted:
            cache[(oid, ref)] = next(((kind, found[(kind, oid)]) for kind in ("Resource", "Service")
                                      if ref in ("", kind) and (kind, oid) in found), None)

    @staticmethod
    def parents(found: dict[str, Any] | None, rules: Rules) -> list[str]:
        """The parents of a resource in the topology: the resources its ``resourceRelationship`` names with one
        of the rules' relationship types."""
        if not found or not rules.topology:
            return []
        types = rules.relationship_types
        return list(dict.fromkeys(str(r["resource"]["id"]) for r in found.get("resourceRelationship") or []
                                  if r.get("relationshipType") in types and (r.get("resource") or {}).get("id")))

    async def lock(self, ctx: Context, objects: Iterable[str]) -> None:
        """Transaction-scoped advisory locks on managed objects of the tenant, always taken in the same order."""
        keys = sorted(set(objects))
        if keys:  # one statement: the locks taken one after the other in the order of the keys
            await ctx.session.execute(text(
                "SELECT count(pg_advisory_xact_lock(hashtextextended("
                "current_setting('openbss.tenant_id', true) || '/assurance/' || k, 0))) "
                "FROM (SELECT k FROM unnest(CAST(:keys AS text[])) WITH ORDINALITY AS u(k, n) ORDER BY n) AS o"),
                {"keys": keys})

    async def lock_for(self, ctx: Context, alarms: Iterable[dict[str, Any]], rules: Rules | None = None) -> Rules:
        """Lock the managed objects of ``alarms`` and their parents before touching any of them (a batch of a
        source locks everything it will need at once, in order); returns the rules in force."""
        rules = rules or await self.rules.in_force(ctx)
        keys: list[str] = []
        alarms = list(alarms)
        if rules.topology:
            await self._prefetch(ctx, [a.get("alarmedObject") or {} for a in alarms])
        for alarm in alarms:
            obj = alarm.get("alarmedObject") or {}
            if not obj.get("id"):
                continue
            keys.append(str(obj["id"]))
            if rules.topology:
                found = await self._lookup(ctx, obj)
                if found and found[0] == "Resource":
                    keys += self.parents(found[1], rules)
        await self.lock(ctx, keys)
        return rules

    # --- raising -----------------------------------------------------------------------------------------------
    async def create(self, ctx: Context, doc: dict[str, Any]) -> dict[str, Any]:
        return (await self.raise_alarm(ctx, doc)).alarm

    async def _attach(self, ctx: Context, doc: dict[str, Any]) -> dict[str, Any] | None:
        """Attach the alarm to its managed object in the inventory (a resource, else a service), when there;
        returns the resource's document (None for a service or an object the inventory does not know)."""
        obj = dict(doc["alarmedObject"])
        object_id = str(obj["id"])
        got = await self._lookup(ctx, obj)
        if got is None:
            return None
        kind, found = got
        obj.setdefault("href", found["href"])
        obj.setdefault("@type", kind)
        doc["alarmedObject"] = obj
        doc.setdefault("alarmedObjectType", str(found.get("@type") or kind))
        if kind == "Resource" and "affectedService" not in doc:
            cache: dict[str, list[dict[str, Any]]] = ctx.__dict__.setdefault("_assurance_supported", {})
            if object_id not in cache:
                q = parse_list_query(f"supportingResource.id={object_id}&fields=id,href&limit=100",
                                     self.objects.services.api.spec, "Service")
                services, _ = await self.objects.services.list(ctx, q)
                cache[object_id] = [{"id": s["id"], "href": s["href"]} for s in services]
            if cache[object_id]:
                doc["affectedService"] = [dict(s) for s in cache[object_id]]
        return found if kind == "Resource" else None

    async def _open_on(self, ctx: Context, object_ids: list[str]) -> list[tuple[str, str | None, str, str, str]]:
        """The open alarms on objects: (id, problem id, object id, severity, raised time). Kept for the unit of
        work (the objects are locked: only this unit of work changes their alarms, and forgets them when it
        does)."""
        cache: dict[str, list[tuple[str, str | None, str, str, str]]] = ctx.__dict__.setdefault(
            "_assurance_open", {})
        missing = [o for o in dict.fromkeys(object_ids) if o not in cache]
        if missing:
            body = Alarm.body
            rows = (await ctx.session.execute(select(
                Alarm.id, Alarm.problem_id, body["alarmedObject"]["id"].astext, body["perceivedSeverity"].astext,
                body["alarmRaisedTime"].astext).where(
                Alarm.is_open, or_(*[body.contains({"alarmedObject": {"id": o}}) for o in missing]),
                ~body.contains({"flapping": True})).order_by(Alarm.created_at, Alarm.id))).all()
            for o in missing:
                cache[o] = []
            for r in rows:
                cache.setdefault(str(r[2]), []).append((str(r[0]), r[1], str(r[2]), str(r[3]), str(r[4])))
        return [a for o in dict.fromkeys(object_ids) for a in cache.get(o, [])]

    @staticmethod
    def _forget(ctx: Context, alarm: dict[str, Any] | None) -> None:
        """An alarm of an object changed: its open alarms are read again."""
        if alarm is not None:
            ctx.__dict__.get("_assurance_open", {}).pop(str((alarm.get("alarmedObject") or {}).get("id")), None)

    def _alarm_ref(self, ctx: Context, alarm_id: str) -> dict[str, Any]:
        return {"id": str(alarm_id), "href": self.store.href(ctx.base_url, alarm_id)}

    async def _correlate(self, ctx: Context, doc: dict[str, Any], parents: list[str], rules: Rules,
                         ) -> list[str | None]:
        """Set ``suppressed``/``parentAlarm``/``isRootCause`` of an alarm from its parents' open alarms; the
        parent alarms' problems."""
        if not parents:
            if rules.root_cause or rules.suppression:
                doc.setdefault("isRootCause", True)
            return []
        open_ = await self._open_on(ctx, parents)
        if rules.suppression:
            down = {p: [a for a in open_ if a[2] == p and a[3] in rules.down_severities] for p in parents}
            if all(down.values()):
                chosen = [alarms[0] for alarms in down.values()]
                doc.update(suppressed=True, isRootCause=False,
                           parentAlarm=[self._alarm_ref(ctx, a[0]) for a in chosen])
                return [a[1] for a in chosen]
        if rules.root_cause:
            at = _parse_time(doc.get("alarmRaisedTime"))
            window = timedelta(seconds=int(rules.root_cause["windowSeconds"]))
            near = [a for a in open_ if at is not None and (t := _parse_time(a[4])) is not None
                    and abs(t - at) <= window]
            if near:
                doc.update(isRootCause=False, parentAlarm=[self._alarm_ref(ctx, a[0]) for a in near[:10]])
                return [a[1] for a in near]
        doc.setdefault("isRootCause", True)
        return []

    async def _problem_for(self, ctx: Context, doc: dict[str, Any], parent_problems: list[str | None],
                           rules: Rules, opened: dict[str, str] | None = None) -> tuple[str, str | None] | None:
        """The problem an alarm joins: (its id, the root object when it is to be opened by this alarm).
        ``opened``: the problems a batch decided to open, by root object (not written yet)."""
        if doc.get("flapping"):
            return None  # damped: a flapping alarm opens and feeds no problem
        if rules.group_by_topology:
            for pid in parent_problems:
                if pid:
                    return pid, None
        obj = doc.get("alarmedObject") or {}
        if doc.get("suppressed") or doc.get("perceivedSeverity") not in rules.problem_severities \
                or obj.get("@type") not in ("Resource", "Service") or not obj.get("href"):
            return None
        root = f"{obj['@type']}:{obj['id']}"
        existing = (opened or {}).get(root) or await self.problems.open_problem_of(ctx, root)
        return (existing, None) if existing else (str(uuid.uuid4()), root)

    async def new_keys(self, ctx: Context, keys: list[str]) -> dict[str, int]:
        """Of ``keys``, those with no open alarm, each with how many alarms of it were raised within the flapping
        window (``_key_state`` for many keys, in one query)."""
        if not keys:
            return {}
        since = utcnow() - self.flap_window
        rows = (await ctx.session.execute(select(
            Alarm.reduction_key, func.count().filter(Alarm.is_open), func.count().filter(Alarm.created_at >= since))
            .where(Alarm.reduction_key.in_(list(dict.fromkeys(keys)))).group_by(Alarm.reduction_key))).all()
        state = {str(r[0]): (int(r[1] or 0), int(r[2] or 0)) for r in rows}
        return {k: state.get(k, (0, 0))[1] for k in keys if not state.get(k, (0, 0))[0]}

    async def _key_state(self, ctx: Context, key: str) -> tuple[str | None, int]:
        """The open alarm of a problem (its id, or None) and how many alarms of it were raised within the flapping
        window, in one query."""
        since = utcnow() - self.flap_window
        row = (await ctx.session.execute(select(
            func.max(Alarm.id).filter(Alarm.is_open), func.count().filter(Alarm.created_at >= since)).where(
            Alarm.reduction_key == key))).one()
        return row[0], int(row[1] or 0)

    async def raise_alarm(self, ctx: Context, given: dict[str, Any], *, system: str | None = None,
                          rules: Rules | None = None, locked: bool = False, occurrences: int = 1,
                          last_seen: str | None = None) -> Raised:
        """Raise an alarm, or count a repeat of the open alarm of the same problem (occurrence count and last
        occurrence time; a new severity makes it ``updated``). Safe under concurrent raises: the insert is
        ``ON CONFLICT DO NOTHING`` on the open alarms' reduction keys, a repeat locks the open alarm, and the
        correlation runs under the advisory locks of the object and its parents. ``occurrences`` reports of the
        problem (the last at ``last_seen``) count at once: a source's batch coalesces its repeats."""
        self._check_raise(given)
        if not (locked and rules):
            rules = await self.lock_for(ctx, [given], rules)
        doc, parents, key = await self._prepare(ctx, given, rules, system=system, occurrences=occurrences,
                                                last_seen=last_seen)
        for _ in range(5):
            open_id, recent = await self._key_state(ctx, key)
            if open_id is None:
                out = await self._raise_new(ctx, dict(doc), key, parents, rules, recent + 1)
                if out is not None:
                    return Raised(out, True)
                continue
            repeated = await self._repeat(ctx, open_id, doc, occurrences)
            if repeated is not None:
                if not repeated.get("serviceProblem") and not repeated.get("flapping"):
                    await self._group(ctx, repeated, rules)
                return Raised(repeated, False)
        raise AlarmContention(f"the alarm '{key}' is raised and cleared too fast to settle; try again")

    @staticmethod
    def _check_raise(doc: dict[str, Any]) -> None:
        """What a raised report may carry (InvalidAlarm otherwise)."""
        for managed in (*MANAGED, "parentAlarm", "isRootCause"):
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

    async def _prepare(self, ctx: Context, given: dict[str, Any], rules: Rules, *, system: str | None,
                       occurrences: int, last_seen: str | None) -> tuple[dict[str, Any], list[str], str]:
        """A checked report made the alarm to raise: attached to its object, the server's attributes set; with its
        object's parents in the topology and its reduction key."""
        doc = dict(given)
        now = format_datetime(utcnow())
        found = await self._attach(ctx, doc)
        parents = self.parents(found, rules)
        key = reduction_key(doc)
        doc.update({"state": "raised", "alarmReportingTime": now, "alarmChangedTime": now,
                    "reductionKey": key, "occurrenceCount": occurrences,
                    "lastOccurrenceTime": max(str(doc["alarmRaisedTime"]), last_seen or ""),
                    "@type": ALARM_TYPE, "@baseType": "Alarm", "@schemaLocation": f"{ctx.base_url}{SCHEMA_PATH}"})
        doc.setdefault("ackState", "unacknowledged")
        doc.setdefault("reportingSystemId", system or SYSTEM_ID)
        return doc, parents, key

    async def _decide_new(self, ctx: Context, doc: dict[str, Any], parents: list[str], rules: Rules, flaps: int,
                          opened: dict[str, str] | None = None) -> tuple[str, str | None] | None:
        """Decide a new alarm in memory: flapping, correlation to its parents' open alarms, the problem it joins
        (or opens); gives it its id. Returns the problem target (see ``_problem_for``)."""
        if flaps > self.flap_threshold:
            doc.update(flapping=True, flapCount=flaps)
        parent_problems = await self._correlate(ctx, doc, parents, rules)
        target = await self._problem_for(ctx, doc, parent_problems, rules, opened)
        if target is not None:
            doc["serviceProblem"] = {"id": target[0], "href": self.problems.store.href(ctx.base_url, target[0])}
        doc["id"] = alarm_id()
        return target

    async def _raise_new(self, ctx: Context, doc: dict[str, Any], key: str, parents: list[str], rules: Rules,
                         flaps: int) -> dict[str, Any] | None:
        target = await self._decide_new(ctx, doc, parents, rules, flaps)
        try:
            out = await self.record(ctx, doc)
        except AlarmExists:
            return None
        self._forget(ctx, out)
        if target is not None:
            pid, root = target
            if root is not None:
                await self.problems.open_for(ctx, root, out, pid)
            else:
                await self._join(ctx, pid, out)
        if await self._adopts(ctx, out, rules):
            await self._adopt_children(ctx, out, rules)
        return out

    async def raise_new_many(self, ctx: Context, items: list[tuple[dict[str, Any], str | None, int, str | None, int]],
                             rules: Rules) -> list[dict[str, Any]]:
        """Raise new alarms of a batch set-based — ``items`` are (report, source, reports, time of the last, alarms
        of its problem raised within the flapping window), each checked (``_check_raise``) and with no open alarm
        of its problem; the caller holds the advisory locks of their objects and parents. The same rules as
        ``raise_alarm`` one by one, decided in memory in order: the alarms decided so far are the open alarms the
        next ones correlate to (the objects' open alarms read once), the problems they open are known by root.
        Written in bulk: one insert of the alarms, of their search entries, audit records and events
        (``record_many``), each problem opened once and widened once with all the alarms joining it. An alarm
        whose object has children with open alarms writes what was decided before it, then adopts them as
        ``raise_alarm`` does. Returns the alarms, in order."""
        prepared = [(*await self._prepare(ctx, given, rules, system=system, occurrences=count, last_seen=last),
                     recent) for given, system, count, last, recent in items]
        objects = [str(doc["alarmedObject"]["id"]) for doc, _, _, _ in prepared]
        await self._open_on(ctx, [*objects, *(p for _, parents, _, _ in prepared for p in parents)])
        opened: dict[str, str] = {}
        pending: list[tuple[dict[str, Any], tuple[str, str | None] | None]] = []
        out: list[dict[str, Any]] = []
        for doc, parents, _key, recent in prepared:
            target = await self._decide_new(ctx, doc, parents, rules, recent + 1, opened)
            if target is not None and target[1] is not None:
                opened[target[1]] = target[0]
            pending.append((doc, target))
            if not doc.get("flapping"):  # the next alarms of the batch see it open (as the database would)
                obj_id = str(doc["alarmedObject"]["id"])
                ctx.__dict__["_assurance_open"].setdefault(obj_id, []).append(
                    (str(doc["id"]), (doc.get("serviceProblem") or {}).get("id"), obj_id,
                     str(doc.get("perceivedSeverity")), str(doc.get("alarmRaisedTime"))))
            if await self._adopts(ctx, doc, rules, unwritten=True):
                written = await self._write_new(ctx, pending)
                out += written
                pending = []
                await self._adopt_children(ctx, written[-1], rules)
        out += await self._write_new(ctx, pending)
        return out

    async def _write_new(self, ctx: Context, pending: list[tuple[dict[str, Any], tuple[str, str | None] | None]],
                         ) -> list[dict[str, Any]]:
        """Write decided new alarms (one ``record_many``), then their problems: each opened by its first alarm,
        then widened once with the others (``_join``'s rule: a correlated alarm on an object already in the
        problem changes nothing)."""
        if not pending:
            return []
        rendered = await self.record_many(ctx, [(doc, None) for doc, _ in pending])
        joins: dict[str, list[tuple[dict[str, Any], bool]]] = {}
        seen: set[tuple[str, str]] = ctx.__dict__.setdefault("_assurance_joined", set())
        for out, (_, target) in zip(rendered, pending, strict=True):
            if target is None:
                continue
            pid, root = target
            if root is not None:
                await self.problems.open_for(ctx, root, out, pid)
                continue
            is_root = not out.get("parentAlarm")
            key = (pid, str(out["alarmedObject"]["id"]))
            if not is_root and key in seen:
                continue
            seen.add(key)
            joins.setdefault(pid, []).append((out, is_root))
        for pid, alarms in joins.items():
            await self.problems.alarms_joined(ctx, pid, alarms)
        return rendered

    async def _join(self, ctx: Context, pid: str, alarm: dict[str, Any]) -> None:
        """The alarm joins problem ``pid``: a correlated alarm on an object the problem already covers (in this
        unit of work) changes nothing on the problem, and is not looked at again."""
        root = not alarm.get("parentAlarm")
        seen: set[tuple[str, str]] = ctx.__dict__.setdefault("_assurance_joined", set())
        key = (pid, str(alarm["alarmedObject"]["id"]))
        if not root and key in seen:
            return
        await self.problems.alarms_joined(ctx, pid, [(alarm, root)])
        seen.add(key)

    async def _group(self, ctx: Context, alarm: dict[str, Any], rules: Rules) -> None:
        """Group an open alarm that has no problem yet (a repeat that became severe enough)."""
        parent_problems: list[str | None] = []
        if alarm.get("parentAlarm"):
            parent_problems = list((await ctx.session.execute(select(Alarm.problem_id).where(
                Alarm.id.in_([str(a["id"]) for a in alarm["parentAlarm"]]), Alarm.is_open))).scalars())
        target = await self._problem_for(ctx, alarm, parent_problems, rules)
        if target is None:
            return
        pid, root = target
        ref = {"id": pid, "href": self.problems.store.href(ctx.base_url, pid)}
        out = await self.change(ctx, str(alarm["id"]), lambda d: d.update(serviceProblem=ref), action="group")
        self._forget(ctx, out)
        if root is not None:
            await self.problems.open_for(ctx, root, out, pid)
        else:
            await self.problems.alarms_joined(ctx, pid, [(out, not out.get("parentAlarm"))])

    async def _children(self, ctx: Context, parent: dict[str, Any], rules: Rules) -> dict[str, list[str]]:
        """The objects depending on a parent alarm's object that it may correlate (with their parents): none when
        no rule lets it adopt alarms."""
        object_id = str(parent["alarmedObject"]["id"])
        severity = parent.get("perceivedSeverity")
        if not (rules.root_cause or (rules.suppression and severity in rules.down_severities)):
            return {}
        cache: dict[str, list[dict[str, Any]]] = ctx.__dict__.setdefault("_assurance_children", {})
        if object_id not in cache:
            cache[object_id], _ = await self.objects.resources.list(ctx, parse_list_query(
                f"resourceRelationship.resource.id={object_id}&fields=id,resourceRelationship&limit=1000",
                self.objects.resources.api.spec, "Resource"))
        by_child = {str(c["id"]): self.parents(c, rules) for c in cache[object_id]}
        return {c: ps for c, ps in by_child.items() if object_id in ps}

    async def _adopts(self, ctx: Context, alarm: dict[str, Any], rules: Rules, *, unwritten: bool = False) -> bool:
        """Whether a new alarm is one that adopts children (``_adopt_children``); ``unwritten``: only when some
        object depending on it has an open alarm (else adopting would change nothing)."""
        if not (rules.topology and not alarm.get("flapping") and alarm["alarmedObject"].get("@type") == "Resource"):
            return False
        if not unwritten:
            return True
        by_child = await self._children(ctx, alarm, rules)
        return bool(by_child) and bool(await self._open_on(ctx, list(by_child)))

    async def _adopt_children(self, ctx: Context, parent: dict[str, Any], rules: Rules) -> None:
        """A parent's alarm arrived after alarms of the objects depending on it: correlate those (suppressed when
        every parent of theirs is down now, or within the root-cause window) and move them into the parent's
        problem; a problem left without open alarms is closed as merged."""
        object_id = str(parent["alarmedObject"]["id"])
        severity = parent.get("perceivedSeverity")
        by_child = await self._children(ctx, parent, rules)
        if not by_child:
            return
        pid = (parent.get("serviceProblem") or {}).get("id")
        at = _parse_time(parent.get("alarmRaisedTime"))
        window = timedelta(seconds=int(rules.root_cause["windowSeconds"])) if rules.root_cause else None
        parent_ref = self._alarm_ref(ctx, str(parent["id"]))
        for alarm_row_id, old_pid, child, _sev, raised in await self._open_on(ctx, list(by_child)):
            current = await self.get(ctx, alarm_row_id)
            if current.get("parentAlarm"):
                continue  # already correlated
            changes: dict[str, Any] = {}
            if rules.suppression and severity in rules.down_severities:
                others = [p for p in by_child[child] if p != object_id]
                down = {a[2] for a in await self._open_on(ctx, others) if a[3] in rules.down_severities}
                if all(p in down for p in others):
                    changes = {"suppressed": True, "isRootCause": False, "parentAlarm": [parent_ref]}
            t = _parse_time(raised)
            if not changes and window is not None and at is not None and t is not None and abs(t - at) <= window:
                changes = {"isRootCause": False, "parentAlarm": [parent_ref]}
            if not changes:
                continue
            moved = bool(pid and rules.group_by_topology and old_pid != pid)
            if moved:
                changes["serviceProblem"] = {"id": pid, "href": self.problems.store.href(ctx.base_url, str(pid))}
            def correlate(doc: dict[str, Any], c: dict[str, Any] = changes) -> None:
                doc.update(c)

            out = await self.change(ctx, alarm_row_id, correlate, action="correlate")
            self._forget(ctx, out)
            if moved and pid:
                await self.problems.alarms_joined(ctx, pid, [(out, False)])
                if old_pid:
                    await self.problems.merge(ctx, old_pid, pid)

    async def _open_id(self, ctx: Context, key: str) -> str | None:
        return await ctx.session.scalar(select(Alarm.id).where(Alarm.reduction_key == key, Alarm.is_open))

    async def _repeat(self, ctx: Context, open_id: str, report: dict[str, Any], occurrences: int = 1,
                      ) -> dict[str, Any] | None:
        gone = False

        def count(doc: dict[str, Any]) -> None:
            nonlocal gone
            if doc.get("state") == "cleared":
                gone = True
                return
            doc["occurrenceCount"] = int(doc.get("occurrenceCount", 1)) + occurrences
            doc["lastOccurrenceTime"] = max(str(doc.get("lastOccurrenceTime") or ""),
                                            str(report["lastOccurrenceTime"]))
            doc["alarmChangedTime"] = report["alarmChangedTime"]
            if report["perceivedSeverity"] != doc.get("perceivedSeverity"):
                doc["perceivedSeverity"] = report["perceivedSeverity"]
                doc["state"] = "updated"
            for attribute in ("alarmDetails", "serviceAffecting", "proposedRepairedActions"):
                if attribute in report:
                    doc[attribute] = report[attribute]

        out = await self.change(ctx, open_id, count, action="repeat")
        self._forget(ctx, out)
        return None if gone else out

    async def repeat_many(self, ctx: Context, items: list[tuple[str, dict[str, Any], int, str | None]],
                          ) -> dict[str, dict[str, Any]]:
        """Count repeats of open alarms in one statement: ``items`` are (reduction key, report, reports, time of
        the last). Only a repeat that changes nothing but the count, the last occurrence and the details is done
        here — the open alarm has the report's severity and is not flapping; the others (a new severity, no open
        alarm) are left to ``raise_alarm``. Each repeat is audited and announced as ``raise_alarm`` does it, with
        one insert of the audit records, of the search entries and of the events for the whole batch. Returns the
        alarms repeated, by reduction key. The caller holds the objects' advisory locks."""
        if not items:
            return {}
        now = format_datetime(utcnow())
        payload = [{"key": key, "n": n, "last": max(str(report.get("alarmRaisedTime") or ""), last or ""),
                    "severity": report.get("perceivedSeverity"),
                    "extra": {a: report[a] for a in REPEATED_ATTRIBUTES if a in report}}
                   for key, report, n, last in items]
        rows = (await ctx.session.execute(text(BULK_REPEAT), {
            "items": json_dumps(payload), "now": now, "keys": [p["key"] for p in payload]})).all()
        if not rows:
            return {}
        index = self.store.index
        entries: list[dict[str, Any]] = []
        stale: list[str] = []  # alarms whose search entries change (a repeat rarely changes an indexed value)
        out: dict[str, dict[str, Any]] = {}
        events: list[OutboxEvent] = []
        records: list[tuple[str, str, dict[str, Any]]] = []
        withheld = self.resource.event_withheld_paths()
        # the top-level attributes the search entries are made of: a repeat that changes none of them keeps its
        # entries (deciding it from the audit's diff costs nothing; computing the entries twice cost ~0.8 ms)
        indexed = {path.split(".")[0] for path in index.attributes} | {"id"}
        for row_id, key, before, after in rows:
            doc = {**after, "id": str(row_id)}
            changes = audit.diff(before, after)
            if index.declaration.unique is not None or not indexed.isdisjoint(changes):
                stale.append(str(row_id))
                entries += index.entries(str(row_id), doc, None)
            rendered = self.store.shape(ctx.base_url, str(row_id), doc)
            out[key] = rendered
            records.append((str(row_id), "repeat", changes))
            event_id = uuid.uuid4()
            events.append(OutboxEvent(
                event_id=event_id, api=self.api.name, event_type=f"{self.resource.type}AttributeValueChangeEvent",
                resource_type=self.resource.type, resource_id=str(row_id), envelope={
                    "eventId": str(event_id), "eventTime": now,
                    "eventType": f"{self.resource.type}AttributeValueChangeEvent",
                    "event": {self.resource.event_key: without(rendered, withheld)}}))
        if stale:
            await ctx.session.execute(delete(SearchEntry).where(SearchEntry.resource_type == index.resource_type,
                                                                SearchEntry.resource_id.in_(stale)))
        if entries:  # executemany: one statement compiled, whatever the number of rows
            await ctx.session.execute(pg_insert(SearchEntry).on_conflict_do_nothing(), entries)
        await audit.record_many(ctx.session, ctx.principal, resource_type=self.resource.type, records=records)
        ctx.session.add_all(events)
        await ctx.session.flush()
        await ctx.session.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))
        for rendered in out.values():
            self._forget(ctx, rendered)
        return out

    # --- clearing ------------------------------------------------------------------------------------------------
    async def clear_by_key(self, ctx: Context, clear_key: str, *, cleared_at: str | None = None,
                           system: str | None = None, user: str | None = None) -> dict[str, Any] | None:
        """Clear the open alarm whose reduction key is ``clear_key`` (None when none is open: a clear that comes
        twice, or for a problem never raised, changes nothing)."""
        open_id = await self._open_id(ctx, clear_key)
        if open_id is None:
            return None
        return await self.clear(ctx, open_id, cleared_at=cleared_at, system=system, user=user)

    async def _lock_alarm(self, ctx: Context, alarm_id: str) -> Rules:
        """Take the advisory locks of an alarm's object (and parents) before its row lock."""
        obj = await ctx.session.scalar(select(Alarm.body["alarmedObject"]).where(Alarm.id == alarm_id))
        return await self.lock_for(ctx, [{"alarmedObject": obj}] if isinstance(obj, dict) else [])

    async def clear(self, ctx: Context, alarm_id: str, *, cleared_at: str | None = None,
                    system: str | None = None, user: str | None = None) -> dict[str, Any] | None:
        """Clear one alarm (None when it was already cleared)."""
        rules = await self._lock_alarm(ctx, alarm_id)
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
        self._forget(ctx, out)
        if not was_open:
            return None
        await self._cleared(ctx, out, rules)
        return out

    async def _cleared(self, ctx: Context, alarm: dict[str, Any], rules: Rules) -> None:
        """After a clear: children it suppressed are released unless every parent of theirs is still down; its
        problem is noted or resolved."""
        if rules.topology:
            await self._release_children(ctx, alarm, rules)
        pid = (alarm.get("serviceProblem") or {}).get("id")
        if pid and not alarm.get("flapping"):
            await self.problems.alarm_cleared(ctx, pid, alarm, root=not alarm.get("parentAlarm"))

    async def _release_children(self, ctx: Context, parent: dict[str, Any], rules: Rules) -> None:
        parent_id = str(parent["id"])
        ids = list((await ctx.session.execute(select(Alarm.id).where(
            Alarm.is_open, Alarm.body.contains({"parentAlarm": [{"id": parent_id}]})))).scalars())
        for child_id in ids:
            current = await self.get(ctx, child_id)
            rest = [a for a in current.get("parentAlarm") or [] if str(a.get("id")) != parent_id]
            still_down = False
            if current.get("suppressed") and rules.suppression:
                found = await self._lookup(ctx, current["alarmedObject"])
                parents = self.parents(found[1] if found and found[0] == "Resource" else None, rules)
                down = {a[2]: a for a in await self._open_on(ctx, parents) if a[3] in rules.down_severities}
                still_down = bool(parents) and all(p in down for p in parents)
                if still_down:
                    rest = [self._alarm_ref(ctx, down[p][0]) for p in parents]

            def release(doc: dict[str, Any], rest: list[dict[str, Any]] = rest, down: bool = still_down) -> None:
                if rest:
                    doc["parentAlarm"] = rest
                else:
                    doc.pop("parentAlarm", None)
                    doc["isRootCause"] = True
                if doc.get("suppressed") and not down:
                    doc["suppressed"] = False

            self._forget(ctx, await self.change(ctx, child_id, release, action="release"))

    async def patch(self, ctx: Context, resource_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        rules = await self._lock_alarm(ctx, resource_id)
        before = (await self.store.documents(ctx, [await self.store.get(ctx, resource_id, for_update=True)]))[0]
        out = await super().patch(ctx, resource_id, changes)
        self._forget(ctx, out)
        if out.get("state") == "cleared" and before.get("state") != "cleared":
            await self._cleared(ctx, out, rules)
        elif out.get("perceivedSeverity") != before.get("perceivedSeverity") and not out.get("serviceProblem") \
                and not out.get("flapping"):
            await self._group(ctx, out, rules)
        return out

    def _announced(self, event_type: str, rendered: dict[str, Any]) -> bool:
        # notifications of a flapping problem are damped: the alarm that starts flapping is announced, the next
        # ones (raised and cleared within the window) only recorded and audited
        return not (rendered.get("flapping") and int(rendered.get("flapCount") or 0) > self.flap_threshold + 1)

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


def _plain_repeat(alarm: dict[str, Any]) -> bool:
    """A report the bulk repeat may take: well-formed (a malformed one goes the full way, to be refused)."""
    try:
        check_vocabulary(alarm)
    except InvalidAlarm:
        return False
    return alarm.get("state", "raised") == "raised" and bool(alarm.get("alarmRaisedTime")) and not any(
        k in alarm for k in (*MANAGED, "parentAlarm", "isRootCause", "alarmClearedTime"))


def _raisable(alarm: dict[str, Any]) -> bool:
    """A report ``raise_new_many`` may take (one ``raise_alarm`` refuses goes the full way, to be refused)."""
    try:
        AlarmService._check_raise(alarm)
    except InvalidAlarm:
        return False
    return bool(alarm.get("alarmRaisedTime"))


def coalesce(signals: list[Signal]) -> list[tuple[Signal, int, str | None]]:
    """A batch's signals with the repeats of a problem folded into its first raise: (signal, reports, time of the
    last report); a signal that already stands for several reports (``count``) counts them all. A clear of the
    problem ends the run: a raise after it counts apart, after the clear."""
    out: list[list[Any]] = []
    pending: dict[str, int] = {}
    for signal in signals:
        key = signal.clear_key
        if signal.action != "raise":
            pending.pop(key, None)
            out.append([signal, 1, None])
            continue
        at = pending.get(key)
        latest = max(str(signal.alarm.get("alarmRaisedTime") or ""), signal.last or "")
        if at is None:
            pending[key] = len(out)
            out.append([signal, signal.count, latest])
        else:
            entry = out[at]
            first = entry[0].alarm
            # the latest report's severity and details win, the first report's raise time stays
            merged = {**signal.alarm, "alarmRaisedTime": first.get("alarmRaisedTime")}
            entry[0] = Signal(action="raise", alarm=merged, source=signal.source)
            entry[1] += signal.count
            entry[2] = max(entry[2] or "", latest)
    return [(s, n, last) for s, n, last in out]


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

    def __init__(self, alarms: AlarmService, problems: ServiceProblemService, rules: RuleBook) -> None:
        self.alarms = alarms
        self.problems = problems
        self.rules = rules

    async def apply(self, ctx: Context, signals: list[Signal]) -> Applied:
        """Apply sources' signals in order, in the caller's transaction (the managed objects of all of them
        locked first, in one order)."""
        out = Applied()
        rules = await self.alarms.lock_for(ctx, [s.alarm for s in signals])
        entries = coalesce(signals)
        clear_keys = {s.clear_key for s, _, _ in entries if s.action != "raise"}
        repeated = await self.alarms.repeat_many(ctx, [
            (s.clear_key, s.alarm, n, last) for s, n, last in entries
            if s.action == "raise" and s.clear_key not in clear_keys and _plain_repeat(s.alarm)])
        # the new alarms of the batch: a raise of a problem with no open alarm (and no clear of it in the batch),
        # well-formed — raised set-based (``raise_new_many``), the others one by one, in the batch's order
        fresh = await self.alarms.new_keys(ctx, [
            s.clear_key for s, _, _ in entries
            if s.action == "raise" and s.clear_key not in clear_keys and s.clear_key not in repeated
            and _raisable(s.alarm)])
        pending: list[tuple[int, Signal, int, str | None]] = []

        async def flush() -> None:
            if not pending:
                return
            raised = await self.alarms.raise_new_many(ctx, [
                (s.alarm, s.source, n, last, fresh[s.clear_key]) for _, s, n, last in pending], rules)
            for (at, _, n, _), alarm in zip(pending, raised, strict=True):
                out.alarms[at] = alarm
                out.raised += 1
                out.repeated += n - 1
            pending.clear()

        for signal, count, last in entries:
            bulk = repeated.get(signal.clear_key) if signal.action == "raise" else None
            if bulk is not None:
                out.alarms.append(bulk)
                out.repeated += count
                continue
            if signal.action == "raise" and signal.clear_key in fresh:
                pending.append((len(out.alarms), signal, count, last))
                out.alarms.append({})  # its place: the alarm once written
                continue
            await flush()
            if signal.action == "raise":
                raised = await self.alarms.raise_alarm(ctx, signal.alarm, system=signal.source, rules=rules,
                                                       locked=True, occurrences=count, last_seen=last)
                out.alarms.append(raised.alarm)
                if raised.new:
                    out.raised += 1
                    out.repeated += count - 1
                else:
                    out.repeated += count
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
        await flush()
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
    "ManagedObjects",
    "Raised",
    "RuleBook",
    "ServiceProblemService",
    "Signal",
    "Tickets",
    "check_vocabulary",
    "coalesce",
    "reduction_key",
]


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
