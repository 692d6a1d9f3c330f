"""The demo's access network, watched by service assurance: an aggregation node and 20 cell sites relying on it in
the resource inventory (TMF639 ``resourceRelationship`` ``reliesOn``), a service on every site and a product of a
demo customer on each, the correlation rules (suppression, root cause, grouping), a site latency KPI with a TMF649
threshold on every site, and an SLA on the products' offering.

``seed_network`` also records the node's outage of yesterday evening (a resolved service problem) and evaluates
yesterday through the SLA evaluation (once per SLA, product and period): the affected products' accounts carry an
SLA credit from the start. ``run_scenario`` is the generator: the aggregation node fails now — its "node down" and
every site's "S1 link down" sent as RFC 5424 syslog datagrams over loopback to the syslog listener — which
correlates into one service problem with one trouble ticket and the affected customers; then the sites' latency
counters are pushed as measurements, one site's crossing its threshold (a ``thresholdCrossed`` alarm). Both are
idempotent: a second ``openbss demo`` changes nothing."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from openbss.assurance.models import Alarm, ServiceProblem, Sla
from openbss.assurance.performance import Measurement
from openbss.demo.support import admin_context
from openbss.inventory.models import Product, Resource
from openbss.platform.db import Database, utcnow
from openbss.services import Services

AGGREGATION = "demo-agg-1"
#: how a problem names its root object
ROOT = f"Resource:{AGGREGATION}"
SITES = tuple(f"demo-cell-{i:02d}" for i in range(1, 21))
OFFERING = "demo-ran-business"
#: the site KPI with a threshold: round-trip latency (ms), alarm above 150 (major), clears at 130 or below
KPI = "demo-site-rtt"
LIMIT, HYSTERESIS = 150, 20
#: the site whose latency crosses the threshold in the scenario
HOT_SITE = SITES[6]
SLA_NAME = "Business mobile on the demo access network"
CREDIT = "10.00"


def _ts(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def seed_network(services: Services, db: Database, tenant_id: str, base_url: str) -> dict[str, Any] | None:
    """Seed the network once per tenant (nothing when the aggregation node is there already). The products go to the
    customers of existing products with a billing account (one product per site, customers taken in turn); without
    any, the sites carry services only and the SLA has nobody to credit. Returns what was seeded, or None."""
    inv, asr = services.inventory.resources, services.assurance
    async with db.transaction(tenant_id) as session:
        if await session.get(Resource, AGGREGATION) is not None:
            return None
        owners = (await session.execute(
            select(Product.body).where(Product.body["billingAccount"]["id"].is_not(None))
            .order_by(Product.created_at, Product.id).limit(200))).scalars().all()
        ctx = admin_context(tenant_id, session, base_url, subject="demo-network")
        holders: list[tuple[dict[str, Any], dict[str, Any]]] = []
        seen: set[str] = set()
        for body in owners:
            party = next((p for p in body.get("relatedParty") or [] if p.get("role") == "customer"
                          or p.get("@referredType") == "Customer"), None)
            if party and party.get("id") and party["id"] not in seen:
                seen.add(party["id"])
                holders.append(({k: party[k] for k in ("id", "href", "name", "@referredType") if k in party}
                                | {"role": "customer"}, {"id": body["billingAccount"]["id"]}))
        await inv["resource"].record(ctx, {
            "id": AGGREGATION, "name": "agg-1 (Lyon east)", "@type": "PhysicalResource",
            "resourceStatus": "available", "description": "Aggregation router of the demo access network"})
        products = []
        for n, site in enumerate(SITES):
            await inv["resource"].record(ctx, {
                "id": site, "name": site.removeprefix("demo-"), "@type": "PhysicalResource",
                "resourceStatus": "available", "description": "eNodeB cell site",
                "resourceRelationship": [{"relationshipType": "reliesOn", "resource": {"id": AGGREGATION}}]})
            service = await inv["service"].record(ctx, {
                "id": f"svc-{site}", "name": f"Business mobile access on {site.removeprefix('demo-')}",
                "state": "active", "serviceSpecification": {"id": "demo-ran-access"},
                "supportingResource": [{"id": site}]})
            if holders:
                party, account = holders[n % len(holders)]
                products.append(await inv["product"].record(ctx, {
                    "id": f"prod-{site}", "name": f"Business mobile ({site.removeprefix('demo-')})",
                    "status": "active", "productOffering": {"id": OFFERING, "name": "Business mobile, assured"},
                    "billingAccount": account, "relatedParty": [party],
                    "realizingService": [{"id": service["id"]}]}))
        for kind in ("suppression", "rootCause", "grouping"):
            await asr.service.rules.create(ctx, {"name": f"demo {kind}", "kind": kind})
        kpi = await asr.resources["performanceIndicatorSpecification"].create(ctx, {
            "name": KPI, "description": "Round-trip time to the core, per cell site", "indicatorUnit": "ms",
            "indicatorType": "float", "collectionType": "gauge"})
        await asr.resources["measurementCollectionJob"].create(ctx, {
            "fileTransferData": [{"fileFormat": "json"}], "granularity": "g_5mn", "reportingPeriod": "r_1h",
            "performanceIndicatorSpecification": [{"id": kpi["id"]}]})  # what the sites push (no agent polled)
        rule = await asr.resources["thresholdRule"].create(ctx, {
            "@type": "SimpleThresholdRule", "name": "site latency high", "condition": "Raise", "severity": "MAJOR",
            "measurement": {"id": kpi["id"], "@type": "PerformanceMeasurementRef"},
            "conformanceTargetUpper": LIMIT, "conformanceComparatorUpper": "GT", "hysteresis": HYSTERESIS})
        threshold = await asr.resources["threshold"].create(ctx, {
            "@type": "Threshold", "name": "cell site latency",
            "thresholdRule": [{"id": rule["id"], "@type": "ThresholdRuleRef"}]})
        await asr.resources["thresholdJob"].create(ctx, {
            "@type": "ThresholdJob", "granularity": "G_5MN",
            "performanceThreshold": {"id": threshold["id"], "@type": "ThresholdRef"},
            "monitoredObjectsCriteria": [{"monitoredObjectFilter": ",".join(SITES)}]})
        currency = await _currency(session, [a["id"] for _, a in holders])
        sla = await asr.slas.create(ctx, {
            "name": SLA_NAME, "productOffering": {"id": OFFERING}, "period": "day",
            "objectives": {"availabilityPercent": 99.5, "mttrMinutes": 60},
            "credit": {"amount": CREDIT, "currency": currency}})
        # yesterday evening the node was down for 2 h 15 min (resolved): yesterday's SLA period is violated
        yesterday = utcnow().replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
        if products:
            await asr.resources["serviceProblem"].record(ctx, {
                "category": "system.originated", "priority": 1, "reason": "equipmentMalfunction",
                "description": "Aggregation node agg-1 down (power supply), cell sites isolated",
                "originatorParty": {"id": "openbss"}, "status": "resolved",
                "creationDate": _ts(yesterday + timedelta(hours=20, minutes=40)),
                "resolutionDate": _ts(yesterday + timedelta(hours=22, minutes=55)),
                "rootCauseResource": [{"id": AGGREGATION}],
                "affectedService": [{"id": f"svc-{s}"} for s in SITES],
                "relatedEntity": [{"id": p["id"], "role": "affectedProduct", "@referredType": "Product"}
                                  for p in products]})
    async with db.transaction(tenant_id) as session:  # the SLA evaluation of yesterday, as the worker makes it
        ctx = admin_context(tenant_id, session, base_url, subject="demo-network")
        evaluations = await asr.slas.evaluate(ctx, sla["id"], yesterday)
    return {"sla": sla, "products": products, "evaluations": evaluations}


async def _currency(session: Any, accounts: list[str]) -> str:
    from openbss.account.models import BillingAccount

    if not accounts:
        return "EUR"
    rows = (await session.execute(select(BillingAccount.body["currency"].as_string())
                                  .where(BillingAccount.id.in_(accounts)))).scalars().all()
    return next((c for c in rows if c), "EUR")


def syslog_lines(at: datetime) -> list[bytes]:
    """The failure as the devices report it: the node's "node down" (critical, equipment), then every site's S1 link
    loss (critical, communications)."""
    ts = _ts(at)

    def line(host: str, msgid: str, cause: str, kind: str, problem: str, text: str) -> bytes:
        # RFC 5424: <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [STRUCTURED-DATA] MSG (no PROCID: "-")
        return (f"<10>1 {ts} {host} {kind} - {msgid} [alarm@32473 cause=\"{cause}\" problem=\"{problem}\"] "
                f"{text}").encode()

    out = [line(AGGREGATION, "NODE_DOWN", "equipmentMalfunction", "agg-os", "node down",
                "Chassis power supply failure, all line cards down")]
    out += [line(site, "S1_DOWN", "lossOfSignal", "enodeb", "S1 link down", f"S1 link to {AGGREGATION} lost")
            for site in SITES]
    return out


def send_syslog(host: str, port: int, lines: list[bytes]) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for data in lines:
            sock.sendto(data, (host, port))
    finally:
        sock.close()


async def run_scenario(services: Services, db: Database, tenant_id: str, base_url: str, *,
                       syslog_host: str = "127.0.0.1", syslog_port: int = 5514,
                       wait_seconds: float = 60.0) -> dict[str, Any] | None:
    """The aggregation node's failure, once per tenant (nothing when the node already had a live problem). The
    datagrams are sent again (repeats are deduplicated) until the listener has correlated them, at most
    ``wait_seconds``. Returns the problem, or None when skipped."""
    async with db.transaction(tenant_id) as session:
        if await session.get(Resource, AGGREGATION) is None:
            return None
        done = await session.scalar(select(func.count()).select_from(ServiceProblem).where(
            ServiceProblem.root_object == ROOT))
        if done:
            return None
    lines = syslog_lines(utcnow())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    problem = None
    while problem is None:
        await asyncio.to_thread(send_syslog, syslog_host, syslog_port, lines)
        for _ in range(60):  # 15 s before sending again (a datagram lost, or the listener not up yet)
            await asyncio.sleep(0.25)
            problem = await _correlated(db, tenant_id)
            if problem is not None:
                break
        if problem is None and loop.time() > deadline:
            raise TimeoutError(f"the syslog listener on {syslog_host}:{syslog_port} correlated nothing in "
                               f"{wait_seconds:.0f} s")
    await push_counters(services, db, tenant_id, base_url)
    return problem


async def _correlated(db: Database, tenant_id: str) -> dict[str, Any] | None:
    """The node's problem once every alarm of the failure is in the store and has joined it (its impact lists the
    product of every site: the customers are known)."""
    async with db.transaction(tenant_id) as session:
        row = await session.scalar(select(ServiceProblem).where(ServiceProblem.root_object == ROOT))
        alarms = await session.scalar(select(func.count()).select_from(Alarm).where(
            Alarm.body["alarmedObject"]["id"].as_string().in_([AGGREGATION, *SITES])))
    if row is None or (alarms or 0) < 1 + len(SITES) or (row.body.get("affectedProductCount") or 0) < len(SITES):
        return None
    return {"id": row.id, **row.body}


async def push_counters(services: Services, db: Database, tenant_id: str, base_url: str) -> int:
    """The sites' latency of the last 20 minutes (one value per 5 minutes), as a probe pushes them: every site under
    the limit, ``HOT_SITE`` crossing it in the last one (a threshold alarm). Stored and evaluated as
    ``POST /api/assurance/v1/measurement`` does."""
    asr = services.assurance
    now = utcnow().replace(second=0, microsecond=0)
    now -= timedelta(minutes=now.minute % 5)
    measurements = []
    for n, site in enumerate(SITES):
        for step in range(4):
            value = Decimal(18 + (n * 7 + step * 3) % 25)
            if site == HOT_SITE and step == 3:
                value = Decimal("212.5")
            measurements.append(Measurement(site, KPI, now - timedelta(minutes=5 * (3 - step)), value))
    await asr.kpis.ensure_partitions(db, tenant_id, {m.time.date() for m in measurements})
    async with db.transaction(tenant_id) as session:
        ctx = admin_context(tenant_id, session, base_url, subject="demo-probe")
        stored = await asr.kpis.store(ctx.session, measurements)
        if stored:
            for listener in asr.collector.listeners:
                await listener(ctx, measurements)
    return stored


async def sla_id(db: Database, tenant_id: str) -> str | None:
    async with db.transaction(tenant_id) as session:
        return await session.scalar(select(Sla.id).where(Sla.offering_id == OFFERING).limit(1))


async def run_network_scenario(services: Services, db: Database, tenant_id: str, base_url: str, settings: Any,
                               console: Any) -> None:
    """``run_scenario`` against the demo's syslog listener; a failure is reported, the demo goes on."""
    host = settings.assurance_syslog_host
    try:
        problem = await run_scenario(services, db, tenant_id, base_url,
                                     syslog_host="127.0.0.1" if host in ("0.0.0.0", "::") else host,
                                     syslog_port=settings.assurance_syslog_port or 5514)
    except Exception as exc:  # the rest of the demo does not depend on it
        console.print(f"demo network scenario not run: {exc}", style="yellow")
        return
    if problem is not None:
        console.print(f"Demo network: {AGGREGATION} failed — service problem {problem['id']} "
                      f"({problem.get('affectedCustomerCount', 0)} customer(s) affected), trouble ticket "
                      f"{problem['troubleTicket'][0]['id']}; {HOT_SITE} latency above {LIMIT} ms")
