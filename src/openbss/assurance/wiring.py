"""How service assurance is put together: TMF642 alarms and their tasks, the correlation rules, TMF656 service
problems (trouble tickets through care, impact from the inventory), the sources (Alertmanager webhook, syslog and
SNMP trap listeners), built once per process by the composition root."""

from __future__ import annotations

from dataclasses import dataclass

from openbss.assurance import models
from openbss.assurance.ingest import Sink, SyslogListener
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
from openbss.assurance.snmp import SnmpTrapListener, V3User
from openbss.platform.db import Database
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

TASK_OPERATIONS = frozenset({"create", "list", "get"})
TASK_TABLES: dict[str, type[TmfDocument]] = {"ackAlarms": models.AckAlarms, "unAckAlarms": models.UnAckAlarms,
               "clearAlarms": models.ClearAlarms, "commentAlarms": models.CommentAlarms}


@dataclass(frozen=True)
class AssuranceServices:
    service: AssuranceService
    api: TmfApi
    problem_api: TmfApi
    resources: dict[str, ResourceService]  # alarm, the four tasks and serviceProblem
    settings: Settings

    @property
    def apis(self) -> list[TmfApi]:
        return [self.api, self.problem_api]

    def services_of(self, api: TmfApi) -> dict[str, ResourceService]:
        return {r.path: self.resources[r.path] for r in api.resources}

    def syslog_listener(self, db: Database, port: int | None = None, tenant: str | None = None) -> SyslogListener:
        """The syslog listener of ``tenant`` (default: the settings'), applying each batch in one transaction."""
        s = self.settings
        sink = self._sink(db, tenant or s.assurance_syslog_tenant, "syslog")
        chosen = port if port is not None else s.assurance_syslog_port
        return SyslogListener(sink, s.assurance_syslog_host, 5514 if chosen is None else chosen,
                              s.assurance_syslog_batch)


    def snmp_listener(self, db: Database, port: int | None = None, tenant: str | None = None) -> SnmpTrapListener:
        """The SNMP trap listener of ``tenant`` (default: the settings' syslog tenant)."""
        s = self.settings
        chosen = port if port is not None else s.assurance_snmp_port
        users = tuple(V3User(name=u["name"], engine_id=u["engineId"], auth_key=u.get("authKey"),
                             priv_key=u.get("privKey"), auth_protocol=u.get("authProtocol", "SHA"),
                             priv_protocol=u.get("privProtocol", "AES")) for u in s.assurance_snmp_v3_users)
        return SnmpTrapListener(self._sink(db, tenant or s.assurance_syslog_tenant, "snmp"),
                                s.assurance_syslog_host, 1162 if chosen is None else chosen,
                                s.assurance_syslog_batch, tuple(s.assurance_snmp_communities), users)

    def _sink(self, db: Database, tenant_id: str, subject: str) -> Sink:
        async def sink(signals: list[Signal]) -> None:
            async with db.transaction(tenant_id) as session:
                await self.service.apply(system_context(tenant_id, session, self.settings.public_url, subject),
                                         signals)

        return sink


def build(settings: Settings, objects: ManagedObjects, tickets: Tickets) -> AssuranceServices:
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
    problem_api = TmfApi(name=PROBLEM_API, title="TMF656 Service Problem Management", spec_file=PROBLEM_SPEC,
                         permission="assurance", resources=[problem], extensions=[PROBLEM_EXTENSION])
    problems = ServiceProblemService(problem_api, problem, objects, tickets)
    rules = RuleBook()
    alarms = AlarmService(api, alarm, objects, problems, rules, flap_threshold=settings.assurance_flap_threshold,
                          flap_window_seconds=settings.assurance_flap_window_seconds)
    resources = resource_services(api, {"alarm": alarms,
                                        **{t.path: AlarmTaskService(api, t, alarms) for t in tasks}})
    resources.update(resource_services(problem_api, {"serviceProblem": problems}))
    return AssuranceServices(service=AssuranceService(alarms, problems, rules), api=api, problem_api=problem_api,
                             resources=resources, settings=settings)
