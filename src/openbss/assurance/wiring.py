"""How service assurance is put together: TMF642 alarms and their tasks, the correlation rules, TMF656 service
problems (trouble tickets through care, impact from the inventory), the sources (Alertmanager webhook, syslog and
SNMP trap listeners), built once per process by the composition root."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from openbss.assurance import models
from openbss.assurance.ingest import Sink, SyslogListener
from openbss.assurance.performance import (
    Collector,
    GroupRules,
    IndicatorRules,
    IndicatorService,
    JobRules,
    JobService,
    KpiStore,
    OnDemandRules,
    OnDemandService,
    TrackingRecordService,
    performance_api,
)
from openbss.assurance.problem_events import ProblemEventRecords, event_record_resource
from openbss.assurance.problem_tasks import PROBLEM_TASKS, ProblemTaskService
from openbss.assurance.problems import PROBLEM_API, ManagedObjects, ProblemRules, ServiceProblemService, Tickets
from openbss.assurance.rules import RuleBook
from openbss.assurance.schemas import ALARM_SPEC, ALARM_TYPE, PROBLEM_EXTENSION, PROBLEM_SPEC, PROBLEM_TYPE
from openbss.assurance.service import (
    ALARM_API,
    TASKS,
    AlarmRules,
    AlarmService,
    AlarmTaskService,
    AssuranceService,
    Signal,
    alarm_id,
)
from openbss.assurance.sla import Credits, SlaService
from openbss.assurance.snmp import SnmpTrapListener, V3User
from openbss.assurance.thresholds import (
    JobRules as ThresholdJobRules,
)
from openbss.assurance.thresholds import (
    RuleRules,
    ThresholdEngine,
    ThresholdRules,
    threshold_api,
    threshold_services,
)
from openbss.platform.crypto import tenant_ids
from openbss.platform.db import Database, utcnow
from openbss.platform.tmf.resource import (
    ResourceService,
    TmfApi,
    TmfDocument,
    TmfResource,
    resource_services,
    system_context,
)
from openbss.platform.tmf.search import Indexed, Searchable
from openbss.settings import Settings

log = logging.getLogger("openbss.assurance")
PROBLEM_TASK_TABLES: dict[str, type[TmfDocument]] = {
    "problemAcknowledgement": models.ProblemAcknowledgement,
    "problemUnacknowledgement": models.ProblemUnacknowledgement,
    "problemGroup": models.ProblemGroup, "problemUngroup": models.ProblemUngroup}

TASK_OPERATIONS = frozenset({"create", "list", "get"})
TASK_TABLES: dict[str, type[TmfDocument]] = {"ackAlarms": models.AckAlarms, "unAckAlarms": models.UnAckAlarms,
               "clearAlarms": models.ClearAlarms, "commentAlarms": models.CommentAlarms}


@dataclass(frozen=True)
class AssuranceServices:
    service: AssuranceService
    api: TmfApi
    problem_api: TmfApi
    resources: dict[str, ResourceService]  # alarm, the four tasks, serviceProblem and the TMF628 resources
    settings: Settings
    performance_api: TmfApi
    threshold_api: TmfApi
    collector: Collector
    kpis: KpiStore
    slas: SlaService

    @property
    def apis(self) -> list[TmfApi]:
        return [self.api, self.problem_api, self.performance_api, self.threshold_api]

    def retention_days(self) -> dict[str, int]:
        s = self.settings
        return {"raw": s.assurance_kpi_raw_days, "5min": s.assurance_kpi_5min_days,
                "hour": s.assurance_kpi_hour_days, "day": s.assurance_kpi_day_days}

    def services_of(self, api: TmfApi) -> dict[str, ResourceService]:
        return {r.path: self.resources[r.path] for r in api.resources}

    def performance_loop(self, db: Database) -> Callable[[asyncio.Event], Coroutine[Any, Any, None]]:
        """The worker's TMF628 loop: every ``assurance_collection_interval_seconds`` it collects the due jobs of
        every tenant; every 5 minutes it rolls the last two days' KPIs up (hours, days); every hour it applies the
        retention."""
        async def run(stop: asyncio.Event) -> None:
            last_rollup = last_retention = 0.0
            while not stop.is_set():
                try:
                    tenants = await tenant_ids(db)
                    await self.collector.collect_due(db, tenants)
                    clock = time.monotonic()
                    if clock - last_rollup >= 300:
                        last_rollup = clock
                        await self.roll_up(db, tenants, retain=clock - last_retention >= 3600)
                        if clock - last_retention >= 3600:
                            last_retention = clock
                except Exception:
                    log.exception("performance management round failed")
                try:
                    await asyncio.wait_for(stop.wait(), self.settings.assurance_collection_interval_seconds)
                except TimeoutError:
                    pass

        return run

    async def roll_up(self, db: Database, tenants: list[str], *, retain: bool = False,
                      now: datetime | None = None) -> None:
        """Roll the last two days' KPIs of ``tenants`` up (one transaction per tenant); with ``retain``, drop what
        is past its retention too. Then evaluate the SLAs whose last period closed (a transaction per tenant)."""
        now = now or utcnow()
        for tenant in tenants:
            async with db.transaction(tenant) as session:
                await self.kpis.rollup(session, now - timedelta(days=2), now)
                if retain:
                    await self.kpis.retain(session, now, self.retention_days())
            async with db.transaction(tenant) as session:
                await self.slas.evaluate_closed(system_context(tenant, session, self.settings.public_url, "sla"),
                                                now)

    def syslog_listener(self, db: Database, port: int | None = None, tenant: str | None = None, *,
                        window: float = 0.1, reuse_port: bool = False) -> SyslogListener:
        """The syslog listener of ``tenant`` (default: the settings'), applying each batch in one transaction;
        repeats folded over ``window`` seconds; ``reuse_port`` to share the port with other listener processes."""
        s = self.settings
        sink = self._sink(db, tenant or s.assurance_syslog_tenant, "syslog")
        chosen = port if port is not None else s.assurance_syslog_port
        return SyslogListener(sink, s.assurance_syslog_host, 5514 if chosen is None else chosen,
                              s.assurance_syslog_batch, window=window, reuse_port=reuse_port)

    def snmp_listener(self, db: Database, port: int | None = None, tenant: str | None = None, *,
                      window: float = 0.1, reuse_port: bool = False) -> SnmpTrapListener:
        """The SNMP trap listener of ``tenant`` (default: the settings' syslog tenant)."""
        s = self.settings
        chosen = port if port is not None else s.assurance_snmp_port
        users = tuple(V3User(name=u["name"], engine_id=u["engineId"], auth_key=u.get("authKey"),
                             priv_key=u.get("privKey"), auth_protocol=u.get("authProtocol", "SHA"),
                             priv_protocol=u.get("privProtocol", "AES")) for u in s.assurance_snmp_v3_users)
        return SnmpTrapListener(self._sink(db, tenant or s.assurance_syslog_tenant, "snmp"),
                                s.assurance_syslog_host, 1162 if chosen is None else chosen,
                                s.assurance_syslog_batch, tuple(s.assurance_snmp_communities), users,
                                window=window, reuse_port=reuse_port)

    def _sink(self, db: Database, tenant_id: str, subject: str) -> Sink:
        async def sink(signals: list[Signal]) -> None:
            async with db.transaction(tenant_id) as session:
                await self.service.apply(system_context(tenant_id, session, self.settings.public_url, subject),
                                         signals)

        return sink


def build(settings: Settings, objects: ManagedObjects, tickets: Tickets, credits: Credits | None = None,
          ) -> AssuranceServices:
    alarm = TmfResource(
        path="alarm", type="Alarm", table=models.Alarm, hooks=AlarmRules(), state_field="state",
        initial_state="raised", create_definition=f"{ALARM_TYPE}_Create", update_definition=f"{ALARM_TYPE}_Update",
        read_definition=ALARM_TYPE, customer_operations=frozenset(), id_factory=alarm_id,
        searchable=Searchable(include=(Indexed("alarmedObject.id"), Indexed("reductionKey"),
                                       Indexed("serviceProblem.id"), "suppressed", "flapping")))
    tasks = [TmfResource(path=path, type=type_, table=TASK_TABLES[path], operations=TASK_OPERATIONS,
                         update_definition=f"{type_}_Create",  # tasks are not updated
                         customer_operations=frozenset())
             for path, (type_, _) in TASKS.items()]
    api = TmfApi(name=ALARM_API, title="TMF642 Alarm Management", spec_file=ALARM_SPEC, permission="assurance",
                 resources=[alarm, *tasks])
    problem = TmfResource(
        path="serviceProblem", type="ServiceProblem", table=models.ServiceProblem, hooks=ProblemRules(),
        state_field="status", initial_state="pending", create_definition=f"{PROBLEM_TYPE}_Create",
        update_definition=f"{PROBLEM_TYPE}_Update", read_definition=PROBLEM_TYPE,
        operations=frozenset({"create", "list", "get", "patch"}), customer_operations=frozenset(),
        searchable=Searchable(include=(Indexed("relatedParty.id"), Indexed("affectedResource.id"),
                                       Indexed("affectedService.id"), Indexed("underlyingAlarm.id"))))
    problem_tasks = [TmfResource(path=path, type=type_, table=PROBLEM_TASK_TABLES[path], operations=TASK_OPERATIONS,
                                 update_definition=f"{type_}_Create", customer_operations=frozenset())
                     for path, (type_, _) in PROBLEM_TASKS.items()]
    event_records = event_record_resource(models.ServiceProblemEventRecord)
    problem_api = TmfApi(name=PROBLEM_API, title="TMF656 Service Problem Management", spec_file=PROBLEM_SPEC,
                         permission="assurance", resources=[problem, *problem_tasks, event_records],
                         extensions=[PROBLEM_EXTENSION])
    problems = ServiceProblemService(problem_api, problem, objects, tickets)
    problems.event_records = ProblemEventRecords(problem_api, event_records)
    rules = RuleBook()
    alarms = AlarmService(api, alarm, objects, problems, rules, flap_threshold=settings.assurance_flap_threshold,
                          flap_window_seconds=settings.assurance_flap_window_seconds)
    resources = resource_services(api, {"alarm": alarms,
                                        **{t.path: AlarmTaskService(api, t, alarms) for t in tasks}})
    resources.update(resource_services(problem_api, {
        "serviceProblem": problems, "serviceProblemEventRecord": problems.event_records,
        **{t.path: ProblemTaskService(problem_api, t, problems) for t in problem_tasks}}))
    # TMF628: the hooks need the indicator service, which needs the API: built in two steps
    group_rules, job_rules = GroupRules(), JobRules()
    perf_api = performance_api(IndicatorRules(), group_rules, job_rules)
    indicators = IndicatorService(perf_api, perf_api.resource("performanceIndicatorSpecification"))
    group_rules.indicators = job_rules.indicators = indicators
    jobs = JobService(perf_api, perf_api.resource("measurementCollectionJob"))
    on_demand = OnDemandService(perf_api, perf_api.resource("onDemandCollection"))
    tracking = TrackingRecordService(perf_api, perf_api.resource("trackingRecord"))
    jobs.tracking = on_demand.tracking = tracking
    cast(OnDemandRules, perf_api.resource("onDemandCollection").hooks).indicators = indicators
    resources.update(resource_services(perf_api, {"performanceIndicatorSpecification": indicators,
                                                  "measurementCollectionJob": jobs,
                                                  "onDemandCollection": on_demand, "trackingRecord": tracking}))
    kpis = KpiStore()
    collector = Collector(jobs, indicators, kpis, settings.public_url)
    collector.on_demand = on_demand
    service = AssuranceService(alarms, problems, rules)
    # TMF649: every stored measurement is evaluated against the active threshold jobs
    thr_api = threshold_api(RuleRules(), ThresholdRules(), ThresholdJobRules())
    resources.update(threshold_services(thr_api, indicators))
    collector.listeners.append(ThresholdEngine(service, indicators).evaluate)
    return AssuranceServices(service=service, api=api, problem_api=problem_api, resources=resources,
                             settings=settings, performance_api=perf_api, threshold_api=thr_api,
                             collector=collector, kpis=kpis, slas=SlaService(objects, credits))
