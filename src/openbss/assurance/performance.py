"""TMF628 performance management: KPI specifications, measurement collection jobs that poll SNMP counters, pushed
measurements, and the KPI store (day-partitioned samples, 5-minute, hourly and daily rollups, retention).

* ``performanceIndicatorSpecification`` — a KPI. Its ``name`` is the KPI's key (unique per tenant); the extension
  ``OpenBSSPerformanceIndicatorSpecification`` adds ``snmpOid``, the object a collection job reads for it. Its
  ``collectionType`` says how a reading becomes a measurement: ``cumulative`` (an SNMP counter: the increase since
  the previous reading, wrapping at the counter's width), ``gauge``/``status_inspection``/other (the value read).
* ``performanceIndicatorGroupSpecification`` — a named group of KPIs.
* ``measurementCollectionJob`` — what to collect (its KPIs, or a group's), from which device (extension
  ``OpenBSSMeasurementCollectionJob``: ``monitoredObject``, the inventory object the KPIs belong to, and
  ``snmpAgent``, the device's SNMP v2c agent), how often (``granularity``: every 1, 5, 15, 30 minutes, hour or day),
  when (``scheduleDefinition``: start and end time) and how often results are reported (``reportingPeriod``, at
  least the granularity). ``adminState: locked`` pauses it. A job without ``snmpAgent`` only receives pushed
  measurements. The server keeps ``executionState`` (``acknowledged`` → ``inProgress`` → ``completed`` at the
  schedule's end; an operator may set ``cancelled``), ``trackingRecord`` (the latest collections and failures),
  ``lastCollectionTime`` and ``nextCollectionTime``.

Collection happens outside any transaction: due jobs are claimed (``FOR UPDATE SKIP LOCKED``, next run moved on) in
one short transaction, the agents are read, and each job's results are stored in a transaction of their own.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from openbss.assurance import models
from openbss.assurance.errors import InvalidMeasurement, InvalidPerformanceJob, PerformanceConflict
from openbss.platform.db import Database, utcnow
from openbss.platform.personal_data import PersonalDataCodec
from openbss.platform.tmf.extensions import Extension
from openbss.platform.tmf.references import without
from openbss.platform.tmf.resource import (
    Context,
    DocumentStore,
    ResourceHooks,
    ResourceService,
    TmfApi,
    TmfResource,
)
from openbss.platform.tmf.spec import format_datetime, load_spec

log = logging.getLogger("openbss.assurance.performance")

PERF_API = "performance"
PERF_SPEC = "TMF628-Performance-v4.0.0.swagger.json"
INDICATOR_TYPE = "OpenBSSPerformanceIndicatorSpecification"
JOB_TYPE = "OpenBSSMeasurementCollectionJob"

GRANULARITY_SECONDS = {"g_1mn": 60, "g_5mn": 300, "g_15mn": 900, "g_30mn": 1800, "g_1h": 3600, "g_24h": 86400}
REPORTING_SECONDS = {"r_1mn": 60, "r_5mn": 300, "r_15mn": 900, "r_30mn": 1800, "r_1h": 3600, "r_24h": 86400}
ROLLUPS = ("5min", "hour", "day")
ROLLUP_STEP = {"5min": timedelta(minutes=5), "hour": timedelta(hours=1), "day": timedelta(days=1)}
#: the widths of SNMP counters (Counter32, Counter64): a smaller reading than the last one wrapped around
COUNTER_WIDTH = {"Counter32": 2**32, "Counter64": 2**64}
MAX_TRACKING_RECORDS = 20
MAX_MEASUREMENTS = 10_000
_OID = re.compile(r"^\.?[0-2](\.\d+)+$")
#: the SNMPv3 (USM) protocols a job may name; the keys are passphrases of at least 8 characters (RFC 3414)
V3_AUTH_PROTOCOLS = ("SHA", "SHA224", "SHA256", "SHA384", "SHA512", "MD5")
V3_PRIV_PROTOCOLS = ("AES", "AES192", "AES256", "DES")
V3_FIELDS = ("securityName", "authProtocol", "authKey", "privProtocol", "privKey", "contextName")
#: the agent's credentials: sealed at rest with the tenant's data key, withheld from responses, events and audit
AGENT_SECRETS = ("snmpAgent.community", "snmpAgent.authKey", "snmpAgent.privKey")

INDICATOR_EXTENSION_PROPERTIES: dict[str, Any] = {
    "snmpOid": {"type": "string", "description": "The SNMP object a collection job reads for this KPI (dotted OID)"},
}
JOB_EXTENSION_PROPERTIES: dict[str, Any] = {
    "monitoredObject": {
        "type": "object", "description": "The inventory object (resource or service) the KPIs are measured on",
        "required": ["id"],
        "properties": {"id": {"type": "string"}, "href": {"type": "string"}, "@referredType": {"type": "string"}}},
    "snmpAgent": {
        "type": "object", "required": ["address"],
        "description": "The device's SNMP agent the job polls: v2c (a community) or v3 (a USM user, authNoPriv or "
                       "authPriv). The community and the v3 keys are write-only: stored encrypted, never returned",
        "properties": {
            "address": {"type": "string"}, "port": {"type": "integer"},
            "version": {"type": "string", "enum": ["2c", "3"]},
            "community": {"type": "string", "description": "v2c community (write-only)"},
            "securityName": {"type": "string", "description": "v3 USM user name"},
            "authProtocol": {"type": "string", "enum": list(V3_AUTH_PROTOCOLS)},
            "authKey": {"type": "string", "description": "v3 authentication passphrase (write-only)"},
            "privProtocol": {"type": "string", "enum": list(V3_PRIV_PROTOCOLS)},
            "privKey": {"type": "string", "description": "v3 privacy passphrase (write-only)"},
            "contextName": {"type": "string", "description": "v3 context (default: the agent's default)"}}},
    "lastCollectionTime": {"type": "string", "format": "date-time",
                           "description": "When the job last read its agent (read only)"},
    "nextCollectionTime": {"type": "string", "format": "date-time",
                           "description": "When the job reads its agent next (read only)"},
}
JOB_MANAGED = frozenset({"lastCollectionTime", "nextCollectionTime", "trackingRecord", "creationTime",
                         "lastModifiedTime", "jobId"})

INDICATOR_EXTENSION = Extension(
    name=INDICATOR_TYPE, base="PerformanceIndicatorSpecification", spec_file=PERF_SPEC,
    description="A performance indicator with the SNMP object a collection job reads for it (OpenBSS).",
    properties=INDICATOR_EXTENSION_PROPERTIES)
JOB_EXTENSION = Extension(
    name=JOB_TYPE, base="MeasurementCollectionJob", spec_file=PERF_SPEC,
    description="A measurement collection job with the object it measures and the SNMP agent it polls (OpenBSS).",
    properties=JOB_EXTENSION_PROPERTIES)

ON_DEMAND_TYPE = "OpenBSSOnDemandCollection"
ON_DEMAND_EXTENSION_PROPERTIES: dict[str, Any] = {
    k: v for k, v in JOB_EXTENSION_PROPERTIES.items() if k != "nextCollectionTime"}
ON_DEMAND_EXTENSION = Extension(
    name=ON_DEMAND_TYPE, base="OnDemandCollection", spec_file=PERF_SPEC,
    description="A one-off collection with the object it measures and the SNMP agent it reads (OpenBSS).",
    properties=ON_DEMAND_EXTENSION_PROPERTIES)

perf_spec = load_spec(PERF_SPEC)
if JOB_TYPE not in perf_spec.definitions:
    _defs: dict[str, Any] = perf_spec.definitions
    for _ext, _base, _props in (
            (INDICATOR_TYPE, "PerformanceIndicatorSpecification", INDICATOR_EXTENSION_PROPERTIES),
            (JOB_TYPE, "MeasurementCollectionJob", JOB_EXTENSION_PROPERTIES),
            (ON_DEMAND_TYPE, "OnDemandCollection", ON_DEMAND_EXTENSION_PROPERTIES)):
        for _suffix in ("", "_Create", "_Update"):
            _d = _defs[f"{_base}{_suffix}"]
            _defs[f"{_ext}{_suffix}"] = {**_d, "properties": {**_d.get("properties", {}), **_props}}
        _defs[f"{_ext}_Update"].pop("required", None)


def _parse_time(value: Any, what: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidPerformanceJob(f"'{what}' is not a date-time: {value!r}") from exc
    if parsed.tzinfo is None:
        raise InvalidPerformanceJob(f"'{what}' needs a time zone (e.g. 2026-12-04T10:00:00Z)")
    return parsed.astimezone(UTC)


def next_boundary(now: datetime, seconds: int) -> datetime:
    """The next multiple of ``seconds`` since the epoch after ``now`` (collections fall on period boundaries)."""
    epoch = int(now.timestamp())
    return datetime.fromtimestamp((epoch // seconds + 1) * seconds, UTC)


# --- indicator specifications ------------------------------------------------------------------------------------
class IndicatorRules(ResourceHooks):
    async def before_create(self, ctx: Context, doc: dict[str, Any]) -> None:
        name = doc.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise InvalidPerformanceJob("'name' is mandatory (the KPI's key in measurements, at most 200 characters)")
        self._check_oid(doc)
        INDICATOR_EXTENSION.mark_if_extended(doc, ctx.base_url)

    async def before_update(self, ctx: Context, current: dict[str, Any], changes: dict[str, Any],
                            merged: dict[str, Any]) -> None:
        if "name" in changes and changes["name"] != current.get("name"):
            raise InvalidPerformanceJob("'name' is the KPI's key in stored measurements: it cannot change")
        self._check_oid(merged)
        INDICATOR_EXTENSION.mark_if_extended(merged, ctx.base_url)

    async def before_delete(self, ctx: Context, current: dict[str, Any]) -> None:
        ref = {"id": current["id"]}
        for table, condition, what in (
                (models.MeasurementCollectionJob, {"performanceIndicatorSpecification": [ref]}, "collection job"),
                (models.PerformanceIndicatorGroupSpecification, {"performanceIndicatorSpecification": [ref]},
                 "indicator group"),
                (models.ThresholdRule, {"measurement": ref}, "threshold rule")):
            user = await ctx.session.scalar(select(table.id).where(table.body.contains(condition)).limit(1))
            if user is not None:
                raise PerformanceConflict(f"performance indicator '{current['id']}' is used by {what} '{user}'")

    @staticmethod
    def _check_oid(doc: dict[str, Any]) -> None:
        oid = doc.get("snmpOid")
        if oid is not None and (not isinstance(oid, str) or not _OID.match(oid)):
            raise InvalidPerformanceJob(f"'snmpOid' must be a dotted OID such as 1.3.6.1.2.1.2.2.1.10.1, not {oid!r}")


class IndicatorService(ResourceService):
    """KPI specifications: the name is unique per tenant (a unique index; a second one is a 409)."""

    async def record(self, ctx: Context, doc: dict[str, Any], *, columns: Any = None) -> dict[str, Any]:
        existing = await ctx.session.scalar(select(models.PerformanceIndicatorSpecification.id).where(
            models.PerformanceIndicatorSpecification.name == doc["name"]))
        if existing is not None:
            raise PerformanceConflict(f"a performance indicator named '{doc['name']}' exists ({existing})")
        try:
            async with ctx.session.begin_nested():
                return await super().record(ctx, doc, columns={"name": doc["name"], **dict(columns or {})})
        except IntegrityError as exc:
            raise PerformanceConflict(f"a performance indicator named '{doc['name']}' exists") from exc

    async def by_ids(self, ctx: Context, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        table = models.PerformanceIndicatorSpecification
        rows = (await ctx.session.execute(select(table).where(table.id.in_(list(ids))))).scalars().all()
        return {row.id: row.body for row in rows}

    async def names(self, ctx: Context, names: Sequence[str]) -> dict[str, dict[str, Any]]:
        table = models.PerformanceIndicatorSpecification
        rows = (await ctx.session.execute(select(table).where(table.name.in_(list(names))))).scalars().all()
        return {row.name: row.body for row in rows}


class GroupRules(ResourceHooks):
    #: the KPI specifications (set by the composition root once their service is built over the API)
    indicators: IndicatorService

    async def before_create(self, ctx: Context, doc: dict[str, Any]) -> None:
        await self._check(ctx, doc)

    async def before_update(self, ctx: Context, current: dict[str, Any], changes: dict[str, Any],
                            merged: dict[str, Any]) -> None:
        await self._check(ctx, merged)

    async def _check(self, ctx: Context, doc: dict[str, Any]) -> None:
        ids = [str(ref.get("id")) for ref in doc.get("performanceIndicatorSpecification") or []]
        if not ids:
            raise InvalidPerformanceJob("'performanceIndicatorSpecification' names at least one indicator")
        known = await self.indicators.by_ids(ctx, ids)
        missing = [i for i in ids if i not in known]
        if missing:
            raise InvalidPerformanceJob(f"unknown performance indicator specification(s): {', '.join(missing)}")


# --- measurement collection jobs ---------------------------------------------------------------------------------
JOB_TRANSITIONS: dict[str, set[str]] = {
    "acknowledged": {"inProgress", "cancelled", "completed", "failed"},
    "pending": {"inProgress", "cancelled", "completed", "failed"},
    "inProgress": {"completed", "cancelled", "failed"},
    "failed": {"inProgress", "cancelled"},
    "completed": set(), "cancelled": set(), "rejected": set(),
}


class JobRules(ResourceHooks):
    transitions = JOB_TRANSITIONS
    extension = JOB_EXTENSION

    #: the KPI specifications (set by the composition root once their service is built over the API)
    indicators: IndicatorService

    async def before_create(self, ctx: Context, doc: dict[str, Any]) -> None:
        for attribute in JOB_MANAGED:
            if attribute in doc:
                raise InvalidPerformanceJob(f"'{attribute}' is kept by the server; leave it out")
        if doc.get("executionState") not in (None, "acknowledged"):
            raise InvalidPerformanceJob("a job is created 'acknowledged'; leave 'executionState' out")
        now = format_datetime(utcnow())
        doc.update(executionState="acknowledged", creationTime=now, lastModifiedTime=now)
        doc.setdefault("adminState", "unlocked")
        doc["performanceIndicatorSpecification"] = await self._indicators(ctx, doc)
        self._check(doc)
        self.extension.mark_if_extended(doc, ctx.base_url)

    async def before_update(self, ctx: Context, current: dict[str, Any], changes: dict[str, Any],
                            merged: dict[str, Any]) -> None:
        for attribute in changes:
            if attribute in JOB_MANAGED:
                raise InvalidPerformanceJob(f"'{attribute}' is kept by the server")
        if "executionState" in changes and changes["executionState"] not in (current.get("executionState"),
                                                                              "cancelled"):
            raise InvalidPerformanceJob("an operator may only cancel a job ('executionState': 'cancelled'); the "
                                        "server keeps the other states")
        if "performanceIndicatorSpecification" in changes or "performanceIndicatorGroupSpecification" in changes:
            merged["performanceIndicatorSpecification"] = await self._indicators(ctx, merged)
        self._check(merged)
        merged["lastModifiedTime"] = format_datetime(utcnow())
        self.extension.mark_if_extended(merged, ctx.base_url)

    async def _indicators(self, ctx: Context, doc: dict[str, Any]) -> list[dict[str, Any]]:
        """The job's KPIs as references (id, name), its groups' included; each must exist."""
        refs = [dict(r) for r in doc.get("performanceIndicatorSpecification") or []]
        for group in doc.get("performanceIndicatorGroupSpecification") or []:
            refs += [dict(r) for r in group.get("performanceIndicatorSpecification") or []]
        if not refs:
            raise InvalidPerformanceJob("a job collects at least one performance indicator "
                                        "('performanceIndicatorSpecification' or a group's)")
        ids = [str(r.get("id") or "") for r in refs]
        known = await self.indicators.by_ids(ctx, ids)
        missing = [i or "(no id)" for i in ids if i not in known]
        if missing:
            raise InvalidPerformanceJob(f"unknown performance indicator specification(s): {', '.join(missing)}")
        out: dict[str, dict[str, Any]] = {}
        for i in ids:
            out[i] = {"id": i, "name": known[i]["name"]}
        return list(out.values())

    def _check(self, doc: dict[str, Any]) -> None:
        granularity = doc.get("granularity")
        agent = doc.get("snmpAgent")
        if agent is not None:
            if granularity not in GRANULARITY_SECONDS:
                raise InvalidPerformanceJob(f"a job polling an SNMP agent needs a 'granularity' of "
                                            f"{', '.join(GRANULARITY_SECONDS)}, not {granularity!r}")
            if not doc.get("monitoredObject"):
                raise InvalidPerformanceJob("a job polling an SNMP agent names its 'monitoredObject' (the "
                                            "inventory object the KPIs belong to)")
            port = agent.get("port", 161)
            if not isinstance(port, int) or not 0 < port < 65536:
                raise InvalidPerformanceJob(f"'snmpAgent.port' must be 1-65535, not {port!r}")
            check_agent(agent)
        period = doc.get("reportingPeriod")
        if period in REPORTING_SECONDS and granularity in GRANULARITY_SECONDS \
                and REPORTING_SECONDS[period] < GRANULARITY_SECONDS[granularity]:
            raise InvalidPerformanceJob(f"'reportingPeriod' {period} is shorter than the 'granularity' "
                                        f"{granularity}: results cannot be reported before they are collected")
        schedule = doc.get("scheduleDefinition") or {}
        start = schedule.get("scheduleDefinitionStartTime")
        end = schedule.get("scheduleDefinitionEndTime")
        if start and end and _parse_time(end, "scheduleDefinitionEndTime") <= _parse_time(
                start, "scheduleDefinitionStartTime"):
            raise InvalidPerformanceJob("'scheduleDefinitionEndTime' must be after 'scheduleDefinitionStartTime'")


ON_DEMAND_TRANSITIONS: dict[str, set[str]] = {
    "acknowledged": {"inProgress", "cancelled"},
    "inProgress": {"completed", "failed"},
    "completed": set(), "failed": set(), "cancelled": set(), "rejected": set(),
}


class OnDemandRules(JobRules):
    """An on-demand collection reads its agent once: it names the object measured and the agent, and needs no
    granularity nor schedule. It is created ``acknowledged``; the collector takes it (``inProgress``) and ends it
    ``completed`` or ``failed``; an operator may cancel it while it is still ``acknowledged``."""

    transitions = ON_DEMAND_TRANSITIONS

    extension = ON_DEMAND_EXTENSION

    async def before_update(self, ctx: Context, current: dict[str, Any], changes: dict[str, Any],
                            merged: dict[str, Any]) -> None:
        if current.get("executionState") != "acknowledged" and set(changes) - {"executionState"}:
            raise InvalidPerformanceJob(f"an on-demand collection is changed only before it runs; this one is "
                                        f"'{current.get('executionState')}'")
        await super().before_update(ctx, current, changes, merged)

    def _check(self, doc: dict[str, Any]) -> None:
        agent = doc.get("snmpAgent")
        if not agent or not doc.get("monitoredObject"):
            raise InvalidPerformanceJob("an on-demand collection names the 'snmpAgent' it reads and its "
                                        "'monitoredObject' (the inventory object the KPIs belong to)")
        port = agent.get("port", 161)
        if not isinstance(port, int) or not 0 < port < 65536:
            raise InvalidPerformanceJob(f"'snmpAgent.port' must be 1-65535, not {port!r}")
        check_agent(agent)


def check_agent(agent: dict[str, Any]) -> None:
    """An agent is v2c (a community, ``public`` by default) or v3 (a USM user with an authentication key, and a
    privacy key for authPriv); the two are not mixed."""
    version = agent.get("version", "2c")
    given = [f for f in V3_FIELDS if f in agent]
    if version != "3":
        if given:
            raise InvalidPerformanceJob(f"'snmpAgent.{given[0]}' is SNMPv3: set 'snmpAgent.version' to '3' (or "
                                        f"leave the v3 attributes out for v2c)")
        return
    if "community" in agent:
        raise InvalidPerformanceJob("an SNMPv3 agent ('version': '3') has no 'community': it authenticates its "
                                    "'securityName' with 'authKey' (and 'privKey')")
    name = agent.get("securityName")
    if not isinstance(name, str) or not name.strip() or len(name) > 32:
        raise InvalidPerformanceJob("an SNMPv3 agent needs 'snmpAgent.securityName' (the USM user, at most 32 "
                                    "characters)")
    auth, priv = agent.get("authKey"), agent.get("privKey")
    if auth is None:
        raise InvalidPerformanceJob("an SNMPv3 agent needs 'snmpAgent.authKey' (authNoPriv or authPriv; "
                                    "noAuthNoPriv is not accepted)")
    for field, value in (("authKey", auth), ("privKey", priv)):
        if value is not None and (not isinstance(value, str) or not 8 <= len(value) <= 256):
            raise InvalidPerformanceJob(f"'snmpAgent.{field}' is a passphrase of 8 to 256 characters")
    if agent.get("authProtocol", "SHA") not in V3_AUTH_PROTOCOLS:
        raise InvalidPerformanceJob(f"'snmpAgent.authProtocol' is one of {', '.join(V3_AUTH_PROTOCOLS)}")
    if agent.get("privProtocol", "AES") not in V3_PRIV_PROTOCOLS:
        raise InvalidPerformanceJob(f"'snmpAgent.privProtocol' is one of {', '.join(V3_PRIV_PROTOCOLS)}")
    if "privProtocol" in agent and priv is None:
        raise InvalidPerformanceJob("'snmpAgent.privProtocol' is given without 'snmpAgent.privKey'")


def first_run(doc: dict[str, Any], now: datetime) -> datetime | None:
    """When a job's first (or next, after it is unlocked) collection is due; None: it is not polled."""
    if not doc.get("snmpAgent") or doc.get("adminState") == "locked" \
            or doc.get("executionState") in ("completed", "cancelled", "rejected"):
        return None
    seconds = GRANULARITY_SECONDS[doc["granularity"]]
    schedule = doc.get("scheduleDefinition") or {}
    start = schedule.get("scheduleDefinitionStartTime")
    begin = max(now, _parse_time(start, "scheduleDefinitionStartTime")) if start else now
    return next_boundary(begin - timedelta(microseconds=1), seconds) if begin > now else next_boundary(now, seconds)


class JobStore(DocumentStore):
    """The jobs' table: a job is rendered without its agent's credentials (they are sealed at rest by the
    resource's codec and only the collector reads them)."""

    def shape(self, base_url: str, resource_id: str, doc: dict[str, Any]) -> dict[str, Any]:
        return without(super().shape(base_url, resource_id, doc), AGENT_SECRETS)


class JobService(ResourceService):
    """Measurement collection jobs: created and changed through the kit; their next collection kept in
    ``next_run_at``."""

    def __init__(self, api: TmfApi, resource: TmfResource) -> None:
        super().__init__(api, resource)
        self.store = JobStore(api, resource)

    async def agent(self, ctx: Context, job_id: str) -> dict[str, Any]:
        """A job's SNMP agent with its credentials in clear (for the collector only)."""
        row = await self.store.get(ctx, job_id)
        return dict((await self.store.documents(ctx, [row]))[0].get("snmpAgent") or {})

    async def create(self, ctx: Context, doc: dict[str, Any]) -> dict[str, Any]:
        out = await super().create(ctx, doc)
        await self._schedule(ctx, out["id"], out)
        return await self.get(ctx, out["id"])

    async def patch(self, ctx: Context, resource_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        out = await super().patch(ctx, resource_id, changes)
        if {"adminState", "executionState", "granularity", "snmpAgent", "scheduleDefinition"} & set(changes):
            await self._schedule(ctx, resource_id, out)
            out = await self.get(ctx, resource_id)
        return out

    async def _schedule(self, ctx: Context, job_id: str, doc: dict[str, Any]) -> None:
        due = first_run(doc, utcnow())
        table = models.MeasurementCollectionJob
        await ctx.session.execute(update(table).where(table.id == job_id).values(next_run_at=due))
        nxt = format_datetime(due) if due else None
        if doc.get("nextCollectionTime") != nxt:
            def mutate(d: dict[str, Any]) -> None:
                if nxt:
                    d["nextCollectionTime"] = nxt
                else:
                    d.pop("nextCollectionTime", None)
            await self.change(ctx, job_id, mutate, action="schedule")

    #: a one-off collection (on demand) ends with its collection: ``completed`` or ``failed``
    one_off = False
    #: where each collection is also recorded as a TMF628 ``trackingRecord`` (set by the composition root)
    tracking: TrackingRecordService | None = None

    async def collected(self, ctx: Context, job_id: str, now: datetime, outcome: str, *, failed: bool,
                        next_run: datetime | None) -> None:
        """Record a collection on the job: its state, tracking record, last and next collection times."""
        record_id = str(uuid.uuid4())
        record = {"id": record_id, "time": format_datetime(now), "systemId": "openbss", "description": outcome}
        kept = False

        def mutate(doc: dict[str, Any]) -> None:
            nonlocal kept
            state = doc.get("executionState")
            if state in ("completed", "cancelled", "rejected") or (self.one_off and state == "failed"):
                return
            kept = True
            if self.one_off:
                doc["executionState"] = "failed" if failed else "completed"
            else:
                doc["executionState"] = "completed" if next_run is None else ("failed" if failed else "inProgress")
            doc["lastCollectionTime"] = format_datetime(now)
            if next_run is not None:
                doc["nextCollectionTime"] = format_datetime(next_run)
            else:
                doc.pop("nextCollectionTime", None)
            records = list(doc.get("trackingRecord") or [])
            records.append(record)
            doc["trackingRecord"] = records[-MAX_TRACKING_RECORDS:]
        await self.change(ctx, job_id, mutate, action="collect")
        if kept and self.tracking is not None:
            await self.tracking.add(ctx, record, self.resource.type, self.store.href(ctx.base_url, job_id), job_id)


class OnDemandService(JobService):
    """On-demand collections: due as soon as created (unless locked); taken once by the collector."""

    one_off = True

    async def _schedule(self, ctx: Context, job_id: str, doc: dict[str, Any]) -> None:
        due = utcnow() if doc.get("adminState") != "locked" and doc.get("executionState") == "acknowledged" \
            else None
        table = models.OnDemandCollection
        await ctx.session.execute(update(table).where(table.id == job_id).values(next_run_at=due))

    async def start(self, ctx: Context, row: Any) -> None:
        """The collector took the collection: ``inProgress``."""
        await self.change(ctx, row.id, lambda d: d.update(executionState="inProgress"), action="start", locked=row)


class TrackingRecordService(ResourceService):
    """TMF628 tracking records: read-only, one per collection of a job or an on-demand collection (kept with the
    job too, its latest ones); the ``characteristic`` names the collection (``collectionType``, ``collectionId``,
    ``collectionHref``). The specification has no events for them: none is emitted."""

    def _announced(self, event_type: str, rendered: dict[str, Any]) -> bool:
        return False

    async def add(self, ctx: Context, record: dict[str, Any], kind: str, href: str, job_id: str) -> None:
        await self.record(ctx, {**record, "@type": "TrackingRecord", "characteristic": [
            {"name": "collectionType", "valueType": "string", "value": kind},
            {"name": "collectionId", "valueType": "string", "value": job_id},
            {"name": "collectionHref", "valueType": "string", "value": href}]})


# --- the KPI store -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Measurement:
    object_id: str
    indicator: str
    time: datetime
    value: Decimal
    job_id: str | None = None


class KpiStore:
    """Every query of the KPI tables. Samples go to the day partition of their time (made ahead by
    ``ensure_partitions``, in a transaction of its own); the 5-minute rollup is updated in the statement that
    inserts them; ``rollup`` builds hours from 5-minute buckets and days from hours."""

    def __init__(self) -> None:
        self._days: set[date] = set()

    async def ensure_partitions(self, db: Database, tenant_id: str, days: set[date]) -> None:
        """Make the day partitions of ``days`` (and the next day) where missing. A partition is DDL, taken under a
        lock on the parent table: done in a short transaction before the measurements' own."""
        wanted = {d for day in days for d in (day, day + timedelta(days=1))} - self._days
        if not wanted:
            return
        async with db.transaction(tenant_id) as session:
            for day in sorted(wanted):
                await session.execute(text("SELECT assurance_kpi_partition(:day)"), {"day": day})
        self._days |= wanted

    async def store(self, session: AsyncSession, measurements: Sequence[Measurement]) -> int:
        """Insert the measurements (a repeat of an object, indicator and time is ignored) and add the new ones to
        their 5-minute buckets, in one statement. Returns how many were new."""
        if not measurements:
            return 0
        stmt = text("""
            WITH given AS (
                SELECT * FROM unnest(CAST(:objects AS text[]), CAST(:indicators AS text[]),
                                     CAST(:times AS timestamptz[]), CAST(:vals AS numeric[]), CAST(:jobs AS text[]))
                       AS m(object_id, indicator, observed_at, value, job_id)
            ), inserted AS (
                INSERT INTO kpi_sample (object_id, indicator, observed_at, value, job_id)
                SELECT DISTINCT ON (object_id, indicator, observed_at) object_id, indicator, observed_at, value, job_id
                FROM given ORDER BY object_id, indicator, observed_at
                ON CONFLICT DO NOTHING
                RETURNING object_id, indicator, observed_at, value
            ), buckets AS (
                INSERT INTO kpi_rollup (object_id, indicator, granularity, bucket, samples, total, minimum, maximum)
                SELECT object_id, indicator, '5min',
                       date_bin('5 minutes', observed_at, TIMESTAMPTZ '2000-01-01 00:00:00+00'),
                       count(*), sum(value), min(value), max(value)
                FROM inserted GROUP BY 1, 2, 3, 4
                ON CONFLICT (tenant_id, object_id, indicator, granularity, bucket) DO UPDATE SET
                    samples = kpi_rollup.samples + excluded.samples, total = kpi_rollup.total + excluded.total,
                    minimum = least(kpi_rollup.minimum, excluded.minimum),
                    maximum = greatest(kpi_rollup.maximum, excluded.maximum)
                RETURNING 1
            )
            SELECT (SELECT count(*) FROM inserted), (SELECT count(*) FROM buckets)""")
        row = (await session.execute(stmt, {
            "objects": [m.object_id for m in measurements], "indicators": [m.indicator for m in measurements],
            "times": [m.time for m in measurements], "vals": [m.value for m in measurements],
            "jobs": [m.job_id for m in measurements]})).one()
        return int(row[0])

    async def rollup(self, session: AsyncSession, since: datetime, until: datetime) -> dict[str, int]:
        """(Re)build the hourly buckets from the 5-minute ones, then the daily from the hourly, for the buckets
        that start in [since, until) widened to whole hours and days. Idempotent: a bucket is recomputed whole."""
        out = {}
        for finer, coarser in (("5min", "hour"), ("hour", "day")):
            stmt = text("""
                WITH span AS (
                    SELECT date_bin(CAST(:step AS interval), CAST(:since AS timestamptz),
                                    TIMESTAMPTZ '2000-01-01 00:00:00+00') AS lo,
                           CAST(:until AS timestamptz) AS hi
                ), r AS (
                    INSERT INTO kpi_rollup (object_id, indicator, granularity, bucket, samples, total, minimum,
                                            maximum)
                    SELECT object_id, indicator, :coarser,
                           date_bin(CAST(:step AS interval), bucket, TIMESTAMPTZ '2000-01-01 00:00:00+00'),
                           sum(samples), sum(total), min(minimum), max(maximum)
                    FROM kpi_rollup, span
                    WHERE granularity = :finer AND bucket >= span.lo AND bucket < span.hi
                    GROUP BY 1, 2, 3, 4
                    ON CONFLICT (tenant_id, object_id, indicator, granularity, bucket) DO UPDATE SET
                        samples = excluded.samples, total = excluded.total, minimum = excluded.minimum,
                        maximum = excluded.maximum
                    RETURNING 1
                ) SELECT count(*) FROM r""")
            out[coarser] = int(await session.scalar(stmt, {"since": since, "until": until, "finer": finer,
                                                           "coarser": coarser, "step": ROLLUP_STEP[coarser]}) or 0)
        return out

    async def retain(self, session: AsyncSession, now: datetime, keep_days: dict[str, int]) -> dict[str, int]:
        """Drop what is older than its retention: the samples' day partitions (whole, every tenant's: the
        retention is the installation's), and each rollup's old buckets (this tenant's)."""
        cutoff = (now - timedelta(days=keep_days["raw"])).date()
        out = {"partitions": int(await session.scalar(text("SELECT assurance_kpi_drop_partitions(:d)"),
                                                      {"d": cutoff}) or 0)}
        self._days = {d for d in self._days if d >= cutoff}
        await session.execute(text("DELETE FROM kpi_sample_default WHERE observed_at < :t"),
                              {"t": now - timedelta(days=keep_days["raw"])})
        for granularity in ROLLUPS:
            deleted = await session.execute(
                text("DELETE FROM kpi_rollup WHERE granularity = :g AND bucket < :t"),
                {"g": granularity, "t": now - timedelta(days=keep_days[granularity])})
            out[granularity] = int(getattr(deleted, "rowcount", 0) or 0)
        return out

    async def series(self, session: AsyncSession, object_id: str, indicator: str, granularity: str,
                     since: datetime, until: datetime, limit: int) -> list[dict[str, Any]]:
        if granularity == "raw":
            rows = (await session.execute(text(
                "SELECT observed_at, value FROM kpi_sample WHERE object_id = :o AND indicator = :i "
                "AND observed_at >= :s AND observed_at < :u ORDER BY observed_at LIMIT :n"),
                {"o": object_id, "i": indicator, "s": since, "u": until, "n": limit})).all()
            return [{"time": format_datetime(t), "value": v} for t, v in rows]
        rows = (await session.execute(text(
            "SELECT bucket, samples, total, minimum, maximum FROM kpi_rollup WHERE object_id = :o AND indicator = :i "
            "AND granularity = :g AND bucket >= :s AND bucket < :u ORDER BY bucket LIMIT :n"),
            {"o": object_id, "i": indicator, "g": granularity, "s": since, "u": until, "n": limit})).all()
        return [{"time": format_datetime(b), "samples": int(n), "sum": total, "min": lo, "max": hi,
                 "average": (total / n).quantize(Decimal("0.000001")) if n else None}
                for b, n, total, lo, hi in rows]


def parse_measurements(body: Any) -> list[Measurement]:
    """A push: ``{"measurement": [{"monitoredObject": {"id"}, "indicator", "time", "value"}]}``; refused whole
    with the first problem named."""
    items = body.get("measurement") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        raise InvalidMeasurement("the body is {\"measurement\": [{\"monitoredObject\": {\"id\": ...}, "
                                 "\"indicator\": ..., \"time\": ..., \"value\": ...}, ...]}")
    if len(items) > MAX_MEASUREMENTS:
        raise InvalidMeasurement(f"at most {MAX_MEASUREMENTS} measurements per request, not {len(items)}")
    out = []
    for n, item in enumerate(items):
        where = f"measurement[{n}]"
        if not isinstance(item, dict):
            raise InvalidMeasurement(f"{where} is not an object")
        obj = item.get("monitoredObject")
        object_id = obj.get("id") if isinstance(obj, dict) else None
        if not isinstance(object_id, str) or not object_id or len(object_id) > 300:
            raise InvalidMeasurement(f"{where}.monitoredObject.id is mandatory (at most 300 characters)")
        indicator = item.get("indicator")
        if not isinstance(indicator, str) or not indicator:
            raise InvalidMeasurement(f"{where}.indicator names a performance indicator specification")
        value = item.get("value")
        if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
            raise InvalidMeasurement(f"{where}.value must be a number")
        try:
            number = Decimal(str(value))
        except InvalidOperation as exc:
            raise InvalidMeasurement(f"{where}.value must be a number, not {value!r}") from exc
        if not number.is_finite() or abs(number) >= Decimal(10) ** 24:
            raise InvalidMeasurement(f"{where}.value is out of range")
        try:
            when = _parse_time(item.get("time"), f"{where}.time")
        except InvalidPerformanceJob as exc:
            raise InvalidMeasurement(str(exc)) from exc
        out.append(Measurement(object_id, indicator, when, number))
    return out


# --- SNMP collection ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reading:
    value: Decimal
    kind: str  # the SNMP type: Counter32, Counter64, Gauge32, Integer, TimeTicks...


@dataclass(frozen=True)
class V3Credentials:
    """An SNMPv3 USM user a job reads its agent as (authNoPriv without ``priv_key``, else authPriv)."""

    user: str
    auth_key: str
    priv_key: str | None = None
    auth_protocol: str = "SHA"
    priv_protocol: str = "AES"
    context: str = ""

    def __repr__(self) -> str:  # the keys never reach a log or an error message
        return f"V3Credentials(user={self.user!r}, auth={self.auth_protocol}, priv={self.priv_protocol})"

    @classmethod
    def of(cls, agent: dict[str, Any]) -> V3Credentials | None:
        if agent.get("version") != "3":
            return None
        return cls(agent["securityName"], agent["authKey"], agent.get("privKey"),
                   agent.get("authProtocol", "SHA"), agent.get("privProtocol", "AES"), agent.get("contextName", ""))


def _usm(v3: V3Credentials) -> Any:
    from pysnmp.hlapi.v3arch import asyncio as hlapi

    auth = {"SHA": hlapi.USM_AUTH_HMAC96_SHA, "SHA224": hlapi.USM_AUTH_HMAC128_SHA224,
            "SHA256": hlapi.USM_AUTH_HMAC192_SHA256, "SHA384": hlapi.USM_AUTH_HMAC256_SHA384,
            "SHA512": hlapi.USM_AUTH_HMAC384_SHA512, "MD5": hlapi.USM_AUTH_HMAC96_MD5}
    priv = {"AES": hlapi.USM_PRIV_CFB128_AES, "AES192": hlapi.USM_PRIV_CFB192_AES,
            "AES256": hlapi.USM_PRIV_CFB256_AES, "DES": hlapi.USM_PRIV_CBC56_DES}
    return hlapi.UsmUserData(
        v3.user, authKey=v3.auth_key, privKey=v3.priv_key, authProtocol=auth[v3.auth_protocol],
        privProtocol=priv[v3.priv_protocol] if v3.priv_key else hlapi.USM_PRIV_NONE)


async def snmp_get(address: str, port: int, community: str, oids: Sequence[str], wait: float = 2.0,
                   v3: V3Credentials | None = None) -> dict[str, Reading]:
    """Read ``oids`` from an agent in one GET: v2c with ``community``, or v3 as the USM user ``v3``. Raises
    ``OSError`` naming the failure."""
    from pysnmp.hlapi.v3arch.asyncio import (
        CommunityData,
        ContextData,
        ObjectIdentity,
        ObjectType,
        SnmpEngine,
        UdpTransportTarget,
        get_cmd,
    )

    engine = SnmpEngine()
    try:
        target = await UdpTransportTarget.create((address, port), timeout=wait, retries=1)
        security = _usm(v3) if v3 else CommunityData(community, mpModel=1)  # noqa: S508 - v2c devices
        context = ContextData(contextName=v3.context) if v3 and v3.context else ContextData()
        error, status, index, binds = await get_cmd(
            engine, security, target, context, *[ObjectType(ObjectIdentity(oid.lstrip("."))) for oid in oids])
    finally:
        engine.close_dispatcher()
    if error:
        raise OSError(f"SNMP agent {address}:{port}: {error}")
    if status:
        raise OSError(f"SNMP agent {address}:{port}: {status.prettyPrint()} at {index}")
    out = {}
    for oid, value in binds:
        kind = type(value).__name__
        if kind in ("NoSuchObject", "NoSuchInstance", "EndOfMibView"):
            continue
        try:
            out[str(oid)] = Reading(Decimal(int(value)), kind)
        except (TypeError, ValueError):
            try:
                out[str(oid)] = Reading(Decimal(str(value.prettyPrint())), kind)
            except InvalidOperation:
                continue
    return out


@dataclass(frozen=True)
class DueJob:
    tenant_id: str
    id: str
    doc: dict[str, Any]
    next_run: datetime | None
    service: JobService | None = None  # the job's service (None: the collection jobs')


class Collector:
    """Polls the due collection jobs of every tenant."""

    def __init__(self, jobs: JobService, indicators: IndicatorService, store: KpiStore, base_url: str,
                 batch: int = 50) -> None:
        self.jobs = jobs
        self.indicators = indicators
        self.store = store
        self.base_url = base_url
        self.batch = batch
        #: the on-demand collections (taken once, when due)
        self.on_demand: OnDemandService | None = None
        #: what a stored measurement is also handed to (threshold evaluation), in the storing transaction
        self.listeners: list[Any] = []

    async def claim(self, db: Database, tenant_id: str, now: datetime) -> list[DueJob]:
        """The tenant's due jobs, their next run moved on (so another worker does not take them) in one short
        transaction."""
        table = models.MeasurementCollectionJob
        async with db.transaction(tenant_id) as session:
            rows = (await session.execute(
                select(table).where(table.next_run_at.is_not(None), table.next_run_at <= now)
                .order_by(table.next_run_at).limit(self.batch).with_for_update(skip_locked=True))).scalars().all()
            out = []
            for row in rows:
                doc = row.body
                seconds = GRANULARITY_SECONDS.get(doc.get("granularity", ""), 300)
                nxt: datetime | None = next_boundary(now, seconds)
                end = (doc.get("scheduleDefinition") or {}).get("scheduleDefinitionEndTime")
                if end and nxt is not None and nxt > _parse_time(end, "scheduleDefinitionEndTime"):
                    nxt = None
                row.next_run_at = nxt
                out.append(DueJob(tenant_id, row.id, doc, nxt))
            if self.on_demand is not None:
                once = models.OnDemandCollection
                ones = (await session.execute(
                    select(once).where(once.next_run_at.is_not(None), once.next_run_at <= now)
                    .order_by(once.next_run_at).limit(self.batch).with_for_update(skip_locked=True))).scalars().all()
                ctx = Context(principal=_system(tenant_id), session=session, base_url=self.base_url)
                for one in ones:
                    one.next_run_at = None
                    await self.on_demand.start(ctx, one)
                    out.append(DueJob(tenant_id, one.id, one.body, None, self.on_demand))
        return out

    async def collect_due(self, db: Database, tenant_ids: Sequence[str], now: datetime | None = None) -> int:
        """One round: claim every tenant's due jobs, read their agents concurrently, store each job's results in a
        transaction of its own. Returns the number of jobs collected."""
        now = now or utcnow()
        due = [job for tenant in tenant_ids for job in await self.claim(db, tenant, now)]
        if not due:
            return 0
        readings = await asyncio.gather(*[self._read(db, job) for job in due], return_exceptions=True)
        for job, result in zip(due, readings, strict=True):
            await self._record(db, job, now, result)
        return len(due)

    async def _read(self, db: Database, job: DueJob) -> tuple[dict[str, dict[str, Any]], dict[str, Reading]]:
        async with db.transaction(job.tenant_id) as session:
            ctx = Context(principal=_system(job.tenant_id), session=session, base_url=self.base_url)
            specs = await self.indicators.by_ids(ctx, [r["id"] for r in job.doc.get(
                "performanceIndicatorSpecification") or []])
            polled = {i: s for i, s in specs.items() if s.get("snmpOid")}
            agent = await (job.service or self.jobs).agent(ctx, job.id) if polled else {}
        if not polled:
            return polled, {}
        values = await snmp_get(agent["address"], int(agent.get("port", 161)), agent.get("community", "public"),
                                [s["snmpOid"].lstrip(".") for s in polled.values()], v3=V3Credentials.of(agent))
        return polled, values

    async def _record(self, db: Database, job: DueJob, now: datetime, result: Any) -> None:
        failed = isinstance(result, BaseException)
        measurements: list[Measurement] = []
        object_id = (job.doc.get("monitoredObject") or {}).get("id", "")
        async with db.transaction(job.tenant_id) as session:
            ctx = Context(principal=_system(job.tenant_id), session=session, base_url=self.base_url)
            if failed:
                outcome = f"collection failed: {result}"
                log.warning("measurement collection job %s: %s", job.id, result)
            else:
                specs, values = result
                missing = []
                for spec in specs.values():
                    reading = values.get(spec["snmpOid"].lstrip("."))
                    if reading is None:
                        missing.append(spec["name"])
                        continue
                    value = reading.value
                    if spec.get("collectionType") == "cumulative":
                        if job.service is not None and job.service.one_off:
                            missing.append(f"{spec['name']} (a counter: a one-off reading has no increase)")
                            continue
                        value = await self._increase(session, job.id, object_id, spec["name"], reading, now)
                        if value is None:
                            continue
                    measurements.append(Measurement(object_id, spec["name"], now, value, job.id))
                outcome = f"collected {len(measurements)} measurement(s)" + (
                    f"; not collected: {', '.join(missing)}" if missing else "")
            await (job.service or self.jobs).collected(ctx, job.id, now, outcome, failed=failed,
                                                       next_run=job.next_run)
        if measurements:
            await self.store.ensure_partitions(db, job.tenant_id, {now.date()})
            async with db.transaction(job.tenant_id) as session:
                ctx = Context(principal=_system(job.tenant_id), session=session, base_url=self.base_url)
                await self.store.store(session, measurements)
                for listener in self.listeners:
                    await listener(ctx, measurements)

    @staticmethod
    async def _increase(session: AsyncSession, job_id: str, object_id: str, indicator: str, reading: Reading,
                        now: datetime) -> Decimal | None:
        """A counter's increase since the job's previous reading (None on the first reading); a smaller reading
        wrapped at the counter's width (a reset of a counter of unknown width starts over)."""
        row = (await session.execute(text("""
            INSERT INTO kpi_counter (job_id, object_id, indicator, reading, read_at)
            VALUES (:j, :o, :i, :r, :t)
            ON CONFLICT (tenant_id, job_id, object_id, indicator) DO UPDATE SET reading = excluded.reading,
                read_at = excluded.read_at
            RETURNING (SELECT reading FROM kpi_counter k WHERE k.job_id = :j AND k.object_id = :o
                       AND k.indicator = :i)"""),
            {"j": job_id, "o": object_id, "i": indicator, "r": reading.value, "t": now})).one()
        previous = row[0]
        if previous is None:
            return None
        if reading.value >= previous:
            return reading.value - previous
        width = COUNTER_WIDTH.get(reading.kind)
        return reading.value + Decimal(width) - previous if width else None


def _system(tenant_id: str) -> Any:
    from openbss.platform.auth import Principal, permissions_for

    return Principal("performance", tenant_id, ("system",), permissions=permissions_for(("system",)))


def performance_api(indicators_hooks: ResourceHooks, group_hooks: ResourceHooks, job_hooks: ResourceHooks,
                    on_demand_hooks: ResourceHooks | None = None, models_: Any = models) -> TmfApi:
    indicator = TmfResource(
        path="performanceIndicatorSpecification", type="PerformanceIndicatorSpecification",
        table=models_.PerformanceIndicatorSpecification, hooks=indicators_hooks,
        create_definition=f"{INDICATOR_TYPE}_Create", update_definition=f"{INDICATOR_TYPE}_Update",
        read_definition=INDICATOR_TYPE, customer_operations=frozenset())
    group = TmfResource(
        path="performanceIndicatorGroupSpecification", type="PerformanceIndicatorGroupSpecification",
        table=models_.PerformanceIndicatorGroupSpecification, hooks=group_hooks, customer_operations=frozenset())
    job = TmfResource(
        path="measurementCollectionJob", type="MeasurementCollectionJob", table=models_.MeasurementCollectionJob,
        hooks=job_hooks, state_field="executionState", create_definition=f"{JOB_TYPE}_Create",
        update_definition=f"{JOB_TYPE}_Update", read_definition=JOB_TYPE, customer_operations=frozenset(),
        state_change_event="ExecutionStateChange", event_withheld=AGENT_SECRETS,
        codec=PersonalDataCodec("MeasurementCollectionJob", models_.MeasurementCollectionJob, AGENT_SECRETS))
    on_demand = TmfResource(
        path="onDemandCollection", type="OnDemandCollection", table=models_.OnDemandCollection,
        hooks=on_demand_hooks or OnDemandRules(), state_field="executionState",
        create_definition=f"{ON_DEMAND_TYPE}_Create", update_definition=f"{ON_DEMAND_TYPE}_Update",
        read_definition=ON_DEMAND_TYPE, customer_operations=frozenset(),
        state_change_event="ExecutionStateChange", event_withheld=AGENT_SECRETS,
        codec=PersonalDataCodec("OnDemandCollection", models_.OnDemandCollection, AGENT_SECRETS))
    tracking = TmfResource(
        path="trackingRecord", type="TrackingRecord", table=models_.PerformanceTrackingRecord,
        operations=frozenset({"list", "get"}), customer_operations=frozenset(),
        create_definition="TrackingRecord", update_definition="TrackingRecord")
    return TmfApi(name=PERF_API, title="TMF628 Performance Management", spec_file=PERF_SPEC,
                  permission="assurance", resources=[indicator, group, job, on_demand, tracking],
                  extensions=[INDICATOR_EXTENSION, JOB_EXTENSION, ON_DEMAND_EXTENSION])


__all__ = ["Collector", "IndicatorService", "JobService", "KpiStore", "Measurement", "OnDemandRules",
           "OnDemandService", "TrackingRecordService", "V3Credentials",
           "parse_measurements", "performance_api", "snmp_get"]
