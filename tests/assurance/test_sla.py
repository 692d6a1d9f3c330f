"""SLA management: definitions on a product offering, evaluation of a closed period from the outages (service
problems affecting the product) and KPIs, business hours and planned outages, a violation credited through billing
exactly once per SLA, product and period (also under concurrent evaluations), and the report per customer."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from openbss.assurance.models import SlaEvaluation
from openbss.assurance.sla import counted_time
from openbss.platform.events.outbox import OutboxEvent
from openbss.platform.tmf.resource import system_context
from tests.assurance.helpers import ok
from tests.assurance.test_performance import PUSH, indicator, m
from tests.conftest import bearer
from tests.ordering.helpers import customer

SLA = "/api/assurance/v1/sla"
REPORT = "/api/assurance/v1/slaReport"


def sla_body(offering: str, **extra: Any) -> dict[str, Any]:
    return {"name": "Business fibre gold", "productOffering": {"id": offering}, "period": "month",
            "objectives": {"availabilityPercent": 99.9, "mttrMinutes": 60},
            "credit": {"amount": "5.00", "currency": "EUR"}, **extra}


async def world(client: httpx.AsyncClient, rt: Any, services: Any, tenant: str, outages: list[tuple[str, str]],
                n: int = 1) -> dict[str, Any]:
    """A customer with a billing account, a product of offering ``offer-…`` realized by a service, and resolved
    service problems affecting the product (``outages``: (start, end))."""
    c = await customer(client, bearer(tenant, "admin"), n)
    offering = f"offer-{uuid.uuid4().hex[:8]}"
    async with rt.db.transaction(tenant) as session:
        ctx = system_context(tenant, session, "http://testserver", "test")
        svc = await services.inventory.resources["service"].record(ctx, {
            "id": f"svc-{uuid.uuid4().hex[:10]}", "name": "Fibre", "state": "active",
            "serviceSpecification": {"id": "fibre"}})
        product = await services.inventory.resources["product"].record(ctx, {
            "id": f"prod-{uuid.uuid4().hex[:10]}", "name": "Fibre gold", "status": "active",
            "productOffering": {"id": offering}, "billingAccount": {"id": c["account"]["id"]},
            "relatedParty": [{"id": c["customer"]["id"], "role": "customer", "@referredType": "Customer"}],
            "realizingService": [{"id": svc["id"]}]})
        for start, end in outages:
            await services.assurance.resources["serviceProblem"].record(ctx, {
                "category": "system.originated", "priority": 1, "description": "fibre cut", "reason": "lossOfSignal",
                "originatorParty": {"id": "openbss"}, "status": "resolved", "creationDate": start,
                "resolutionDate": end, "affectedService": [{"id": svc["id"]}],
                "relatedEntity": [{"id": product["id"], "role": "affectedProduct", "@referredType": "Product"}]})
    return {"customer": c["customer"], "account": c["account"], "offering": offering, "product": product,
            "service": svc}


async def test_bad_sla_definitions_are_refused(client: httpx.AsyncClient, tenant: str) -> None:
    h = bearer(tenant, "network_ops")
    for body, needle in [
        ({**sla_body("o"), "name": ""}, "name"),
        ({**sla_body("o"), "productOffering": {}}, "productOffering"),
        (sla_body("o", period="year"), "period"),
        (sla_body("o", objectives={}), "objectives"),
        (sla_body("o", objectives={"availabilityPercent": 120}), "availabilityPercent"),
        (sla_body("o", objectives={"latency": {"indicator": "x"}}), "latency"),
        (sla_body("o", credit={"amount": "-5", "currency": "EUR"}), "credit"),
        (sla_body("o", credit={"amount": "1.005", "currency": "EUR"}), "credit.amount"),
        (sla_body("o", credit={"amount": "1.5", "currency": "JPY"}), "credit.amount"),
        (sla_body("o", credit={"amount": "5", "currency": "EURO"}), "credit.currency"),
        (sla_body("o", credit={"amount": "1e20", "currency": "EUR"}), "credit.amount"),
        (sla_body("o", businessHours={"timeZone": "Mars/Olympus", "start": "08:00", "end": "18:00"}),
         "businessHours"),
        (sla_body("o", plannedOutages=[{"start": "2026-11-02T02:00:00Z", "end": "2026-11-02T01:00:00Z"}]),
         "plannedOutages"),
    ]:
        r = await client.post(SLA, json=body, headers=h)
        assert r.status_code == 400, (body, r.text)
        assert needle in r.json()["message"], (needle, r.text)
    assert await ok(await client.get(SLA, headers=h)) == []
    created = await ok(await client.post(SLA, json=sla_body("o"), headers=h), 201)
    assert await ok(await client.get(f"{SLA}/{created['id']}", headers=h)) == created
    assert (await client.post(SLA, json=sla_body("o"), headers=bearer(tenant, "csr_agent"))).status_code == 403
    r = await client.post(f"{SLA}/{created['id']}/evaluate", json={"periodStart": "2026-11-15T00:00:00Z"},
                          headers=h)
    assert r.status_code == 400 and "first of a month" in r.json()["message"]
    r = await client.post(f"{SLA}/{created['id']}/evaluate", json={"periodStart": "2099-01-01T00:00:00Z"},
                          headers=h)
    assert r.status_code == 400 and "not over" in r.json()["message"]


async def test_a_violated_period_is_credited_exactly_once(client: httpx.AsyncClient, rt: Any, services: Any,
                                                          tenant: str) -> None:
    h = bearer(tenant, "network_ops")
    w = await world(client, rt, services, tenant, [("2026-11-10T10:00:00Z", "2026-11-10T12:00:00Z")])
    sla = await ok(await client.post(SLA, json=sla_body(w["offering"]), headers=h), 201)
    url = f"{SLA}/{sla['id']}/evaluate"
    results = await asyncio.gather(*[client.post(url, json={"periodStart": "2026-11-01T00:00:00Z"}, headers=h)
                                     for _ in range(4)])
    bodies = [await ok(r) for r in results]
    first = bodies[0][0]
    assert all(b[0]["id"] == first["id"] for b in bodies)  # one evaluation, whoever won
    assert sorted(first["violated"]) == ["availabilityPercent", "mttrMinutes"]
    assert Decimal(str(first["measured"]["availabilityPercent"])) == Decimal("99.722")  # 120 of 43,200 minutes
    assert Decimal(str(first["measured"]["mttrMinutes"])) == Decimal(120)
    assert first["credit"]["amount"] == {"amount": "5.00", "currency": "EUR"}
    async with rt.db.transaction(tenant) as session:
        evaluations = await session.scalar(select(func.count()).select_from(SlaEvaluation))
        charges = (await session.execute(text(
            "SELECT amount, reason_code, billing_account_id FROM billing_manual_charge WHERE reference LIKE 'sla:%'")
        )).all()
        events = await session.scalar(select(func.count()).select_from(OutboxEvent).where(
            OutboxEvent.event_type == "SlaViolationEvent"))
    assert evaluations == 1 and events == 1
    assert [(Decimal(a), r, b) for a, r, b in charges] == [(Decimal("-5.00"), "SERVICE_CREDIT", w["account"]["id"])]
    # evaluating again later returns the same result, credits nothing more
    again = await ok(await client.post(url, json={"periodStart": "2026-11-01T00:00:00Z"}, headers=h))
    assert again[0]["id"] == first["id"]
    report = await ok(await client.get(f"{REPORT}/{w['customer']['id']}", headers=h))
    [credited] = report["credited"]
    assert report["violations"] == 1 and credited["currency"] == "EUR" and Decimal(str(credited["amount"])) == 5
    assert [e["id"] for e in report["evaluations"]] == [first["id"]]
    # a period without outage is met
    met = await ok(await client.post(url, json={"periodStart": "2026-10-01T00:00:00Z"}, headers=h))
    assert met[0]["violated"] == [] and "credit" not in met[0]


async def test_business_hours_and_planned_outages_are_not_counted(client: httpx.AsyncClient, rt: Any,
                                                                  services: Any, tenant: str) -> None:
    h = bearer(tenant, "network_ops")
    # Tuesday 3 November 2026: a night outage (outside business hours), a planned one, and 30 minutes in hours
    w = await world(client, rt, services, tenant, [("2026-11-03T01:00:00Z", "2026-11-03T03:00:00Z"),
                                                   ("2026-11-03T12:00:00Z", "2026-11-03T12:30:00Z")], n=2)
    hours = {"timeZone": "UTC", "days": [1, 2, 3, 4, 5], "start": "08:00", "end": "18:00"}
    planned = [{"start": "2026-11-03T12:00:00Z", "end": "2026-11-03T12:20:00Z"}]
    sla = await ok(await client.post(SLA, json=sla_body(w["offering"], period="day", businessHours=hours,
                                                        plannedOutages=planned,
                                                        objectives={"availabilityPercent": 99}), headers=h), 201)
    [day] = await ok(await client.post(f"{SLA}/{sla['id']}/evaluate", json={"periodStart": "2026-11-03T00:00:00Z"},
                                       headers=h))
    # counted: 10 h less the 20 planned minutes = 580 min; down: the 10 unplanned minutes in hours
    assert Decimal(str(day["measured"]["countedMinutes"])) == Decimal(580)
    assert Decimal(str(day["measured"]["outageMinutes"])) == Decimal(10)
    assert Decimal(str(day["measured"]["availabilityPercent"])) == Decimal("98.276")  # 570 of 580 minutes
    assert day["violated"] == ["availabilityPercent"]
    start = datetime(2026, 11, 7, tzinfo=UTC)  # a Saturday: nothing counted
    assert counted_time({"businessHours": hours}, start, start + timedelta(days=1)) == []


async def test_latency_and_throughput_from_kpis(client: httpx.AsyncClient, rt: Any, services: Any,
                                                tenant: str) -> None:
    h = bearer(tenant, "network_ops")
    w = await world(client, rt, services, tenant, [], n=3)
    await indicator(client, h, "rtt", indicatorUnit="ms")
    await indicator(client, h, "downlink", indicatorUnit="Mbit/s")
    svc = w["service"]["id"]
    await ok(await client.post(PUSH, json={"measurement": [
        m(svc, "rtt", "2026-11-04T10:00:00Z", 30), m(svc, "rtt", "2026-11-04T11:00:00Z", 50),
        m(svc, "downlink", "2026-11-04T10:00:00Z", 900), m(svc, "downlink", "2026-11-04T11:00:00Z", 700)]},
        headers=h))
    sla = await ok(await client.post(SLA, json=sla_body(w["offering"], period="day", objectives={
        "latency": {"indicator": "rtt", "max": 35}, "throughput": {"indicator": "downlink", "min": 500}}),
        headers=h), 201)
    [day] = await ok(await client.post(f"{SLA}/{sla['id']}/evaluate", json={"periodStart": "2026-11-04T00:00:00Z"},
                                       headers=h))
    assert Decimal(str(day["measured"]["latency"])) == Decimal(40)
    assert Decimal(str(day["measured"]["throughput"])) == Decimal(800)
    assert day["violated"] == ["latency"]


async def test_the_worker_evaluates_closed_periods_once(client: httpx.AsyncClient, rt: Any, services: Any,
                                                        tenant: str) -> None:
    h = bearer(tenant, "network_ops")
    w = await world(client, rt, services, tenant, [("2026-11-30T20:00:00Z", "2026-11-30T23:00:00Z")], n=4)
    await ok(await client.post(SLA, json=sla_body(w["offering"], period="day"), headers=h), 201)
    now = datetime(2026, 12, 1, 0, 5, tzinfo=UTC)
    await services.assurance.roll_up(rt.db, [tenant], now=now)
    await services.assurance.roll_up(rt.db, [tenant], now=now + timedelta(minutes=5))
    report = await ok(await client.get(f"{REPORT}/{w['customer']['id']}", headers=h))
    [evaluation] = report["evaluations"]
    assert evaluation["period"]["startDateTime"] == "2026-11-30T00:00:00.000Z" and evaluation["violated"]


@settings(max_examples=60, deadline=None)
@given(outages=st.lists(st.tuples(st.integers(0, 24 * 60 * 8), st.integers(1, 24 * 60)), max_size=6),
       planned=st.lists(st.tuples(st.integers(0, 24 * 60 * 8), st.integers(1, 600)), max_size=3),
       hours=st.booleans())
def test_counted_time_and_outages_stay_within_the_period(outages: list[tuple[int, int]],
                                                         planned: list[tuple[int, int]], hours: bool) -> None:
    """Whatever the outages, planned outages and business hours: the counted time is within the period, the outage
    within the counted time, so availability is between 0 and 100 %."""
    from openbss.assurance.sla import _intersect, _seconds

    start = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
    end = start + timedelta(days=7)
    sla: dict[str, Any] = {"plannedOutages": [
        {"start": (start + timedelta(minutes=s)).isoformat(), "end": (start + timedelta(minutes=s + d)).isoformat()}
        for s, d in planned]}
    if hours:
        sla["businessHours"] = {"timeZone": "Europe/Paris", "days": [1, 2, 3, 4, 5], "start": "08:00", "end": "18:00"}
    counted = counted_time(sla, start, end)
    assert all(start <= s < e <= end for s, e in counted)
    assert all(counted[i][1] <= counted[i + 1][0] for i in range(len(counted) - 1))  # disjoint, in order
    down = _intersect([(start + timedelta(minutes=s), start + timedelta(minutes=s + d)) for s, d in outages], counted)
    total, lost = _seconds(counted), _seconds(down)
    assert 0 <= lost <= total <= Decimal(7 * 86400)
    if hours and not planned:
        assert total == Decimal(5 * 10 * 3600)


async def test_a_changed_definition_applies_from_the_next_period(client: httpx.AsyncClient, rt: Any,
                                                                 services: Any, tenant: str) -> None:
    """A change is a new version; a period is evaluated against the version valid at its start; an evaluated
    period keeps its result and its single credit."""
    h = bearer(tenant, "network_ops")
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=2)

    def at(d: datetime, hour: int) -> str:
        return (d + timedelta(hours=hour)).strftime("%Y-%m-%dT%H:%M:%SZ")
    days = [day, day + timedelta(days=1), day + timedelta(days=2)]
    # a 2-hour outage on 10 November and on each of the three coming days: 91.667% availability each
    w = await world(client, rt, services, tenant, [("2026-11-10T10:00:00Z", "2026-11-10T12:00:00Z"),
                                                   *[(at(d, 10), at(d, 12)) for d in days]])
    sla = await ok(await client.post(SLA, json=sla_body(w["offering"], period="day",
                                                        objectives={"availabilityPercent": 99}), headers=h), 201)
    assert sla["version"] == 1
    url = f"{SLA}/{sla['id']}"
    [first] = await ok(await client.post(f"{url}/evaluate", json={"periodStart": "2026-11-10T00:00:00Z"}, headers=h))
    assert first["violated"] == ["availabilityPercent"] and first["sla"]["version"] == 1

    # bad changes are refused, changing nothing
    for body, needle in (({"productOffering": {"id": "other"}}, "productOffering"), ({"period": "month"}, "period"),
                         ({"objectives": {"availabilityPercent": 120}}, "availabilityPercent"),
                         ({"validFrom": "2026-01-01T00:00:00Z", "name": "x"}, "validFrom"),
                         ({"version": 7}, "version"), ({}, "merge patch")):
        r = await client.patch(url, json=body, headers=h)
        assert r.status_code == 400 and needle in r.json()["message"], (body, r.text)
    assert (await client.patch(f"{SLA}/nope", json={"name": "x"}, headers=h)).status_code == 404
    assert (await client.patch(url, json={"name": "x"}, headers=bearer(tenant, "csr_agent"))).status_code == 403
    assert (await ok(await client.get(url, headers=h)))["version"] == 1

    # version 2 from now: 90%
    v2 = await ok(await client.patch(url, json={"objectives": {"availabilityPercent": 90}}, headers=h))
    assert v2["version"] == 2 and v2["objectives"] == {"availabilityPercent": 90}
    assert [(p["version"], p["objectives"]) for p in v2["previousVersions"]] == [(1, {"availabilityPercent": 99})]
    assert (await ok(await client.patch(url, json={"objectives": {"availabilityPercent": 90}}, headers=h))
            )["version"] == 2  # no change, no version
    # version 3 from the middle of the second coming day: 95% (that day keeps version 2)
    v3 = await ok(await client.patch(url, json={"objectives": {"availabilityPercent": 95},
                                                "validFrom": at(days[1], 12)}, headers=h))
    assert v3["version"] == 3 and v3["validFrom"] == at(days[1], 12).replace("Z", ".000Z")

    # the evaluated period stands, credited once; a past period not evaluated yet uses the version of its start
    [again] = await ok(await client.post(f"{url}/evaluate", json={"periodStart": "2026-11-10T00:00:00Z"}, headers=h))
    assert again["id"] == first["id"] and again["sla"]["version"] == 1
    [past] = await ok(await client.post(f"{url}/evaluate", json={"periodStart": "2026-11-11T00:00:00Z"}, headers=h))
    assert past["sla"]["version"] == 1
    results = []
    async with rt.db.transaction(tenant) as session:
        ctx = system_context(tenant, session, "http://testserver", "test")
        for d in days:
            [r] = await services.assurance.slas.evaluate(ctx, sla["id"], d, now=d + timedelta(days=1, hours=1))
            results.append(r)
    assert [(r["sla"]["version"], r["violated"]) for r in results] == [
        (2, []), (2, []), (3, ["availabilityPercent"])]
    async with rt.db.transaction(tenant) as session:
        charges = (await session.execute(text(
            "SELECT reference FROM billing_manual_charge WHERE reference LIKE :r ORDER BY reference"),
            {"r": f"sla:{sla['id']}:%"})).scalars().all()
    assert charges == [f"sla:{sla['id']}:{w['product']['id']}:20261110",
                       f"sla:{sla['id']}:{w['product']['id']}:{days[2]:%Y%m%d}"]


async def test_a_credit_billing_refuses_is_reported_and_blocks_nothing(client: httpx.AsyncClient, rt: Any,
                                                                     services: Any, tenant: str) -> None:
    h = bearer(tenant, "network_ops")
    w = await world(client, rt, services, tenant, [("2026-11-10T10:00:00Z", "2026-11-10T12:00:00Z")])
    # a credit in dollars for a customer billed in euros: billing refuses it
    sla = await ok(await client.post(SLA, json=sla_body(w["offering"], credit={"amount": "5.00", "currency": "USD"}),
                                     headers=h), 201)
    url = f"{SLA}/{sla['id']}/evaluate"
    [result] = await ok(await client.post(url, json={"periodStart": "2026-11-01T00:00:00Z"}, headers=h))
    assert sorted(result["violated"]) == ["availabilityPercent", "mttrMinutes"]
    assert result["credit"] is None and "USD" in result["creditRefused"], result
    async with rt.db.transaction(tenant) as session:
        charges = (await session.execute(text(
            "SELECT amount FROM billing_manual_charge WHERE reference LIKE 'sla:%'"))).all()
        events = await session.scalar(select(func.count()).select_from(OutboxEvent).where(
            OutboxEvent.event_type == "SlaViolationEvent"))
    assert charges == [] and events == 1  # the violation is announced, no money moved
    again = await ok(await client.post(url, json={"periodStart": "2026-11-01T00:00:00Z"}, headers=h))
    assert again[0]["id"] == result["id"] and again[0]["creditRefused"] == result["creditRefused"]
    # the next period is evaluated as usual
    met = await ok(await client.post(url, json={"periodStart": "2026-10-01T00:00:00Z"}, headers=h))
    assert met[0]["violated"] == []
