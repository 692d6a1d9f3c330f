"""The demo's access network: seeded, then the aggregation node's failure sent as real syslog datagrams over
loopback to a syslog listener — one service problem, one trouble ticket, the affected customers listed, one
threshold alarm from the pushed counters, one SLA credit for yesterday — and a second run changes nothing."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from sqlalchemy import func, select, text

from openbss.assurance.models import Alarm, ServiceProblem, SlaEvaluation
from openbss.demo import network
from openbss.inventory.models import Product
from tests.conftest import bearer
from tests.ordering.helpers import customer

BASE = "http://testserver"


async def counts(rt: Any, tenant: str) -> dict[str, Any]:
    async with rt.db.transaction(tenant) as session:
        return {
            "problems": await session.scalar(select(func.count()).select_from(ServiceProblem)),
            "open": await session.scalar(select(func.count()).select_from(ServiceProblem).where(
                ServiceProblem.is_open)),
            "alarms": await session.scalar(select(func.count()).select_from(Alarm)),
            "occurrences": await session.scalar(select(func.sum(Alarm.body["occurrenceCount"].as_integer()))),
            "threshold": await session.scalar(select(func.count()).select_from(Alarm).where(
                Alarm.body["probableCause"].as_string() == "thresholdCrossed")),
            "evaluations": await session.scalar(select(func.count()).select_from(SlaEvaluation)),
            "credits": (await session.execute(text(
                "SELECT billing_account_id, amount FROM billing_manual_charge WHERE reference LIKE 'sla:%' "
                "ORDER BY 1"))).all(),
            "tickets": await session.scalar(text("SELECT count(*) FROM trouble_ticket")),
        }


async def test_the_demo_network_fails_into_one_problem_once(client: httpx.AsyncClient, rt: Any, services: Any,
                                                            tenant: str) -> None:
    h = bearer(tenant, "admin")
    owners = [await customer(client, h, n) for n in (1, 2)]
    async with rt.db.transaction(tenant) as session:  # the customers' existing products, with their accounts
        from openbss.platform.tmf.resource import system_context

        ctx = system_context(tenant, session, BASE, "test")
        for o in owners:
            await services.inventory.resources["product"].record(ctx, {
                "id": f"prod-{uuid.uuid4().hex[:8]}", "name": "Mobile", "status": "active",
                "productOffering": {"id": "mobile-s"}, "billingAccount": {"id": o["account"]["id"]},
                "relatedParty": [{"id": o["customer"]["id"], "role": "customer", "@referredType": "Customer"}]})

    listener = services.assurance.syslog_listener(rt.db, port=0, tenant=tenant)
    stop = asyncio.Event()
    task = asyncio.create_task(listener.run(stop))
    try:
        await listener.ready.wait()
        seeded = await network.seed_network(services, rt.db, tenant, BASE)
        assert seeded is not None and len(seeded["products"]) == len(network.SITES)
        problem = await network.run_scenario(services, rt.db, tenant, BASE, syslog_port=listener.bound_port,
                                             wait_seconds=30)
        assert problem is not None
        first = await counts(rt, tenant)
        # one live problem on the node (plus yesterday's resolved one), one ticket for it
        assert first["problems"] == 2 and first["open"] == 1
        assert problem["rootCauseResource"][0]["id"] == network.AGGREGATION
        assert len(problem["troubleTicket"]) == 1
        customers = {p["id"] for p in problem["relatedParty"] if p["role"] == "affectedCustomer"}
        assert customers == {o["customer"]["id"] for o in owners}
        assert problem["affectedCustomerCount"] == 2 and problem["affectedProductCount"] == len(network.SITES)
        r = await client.get(f"/tmf-api/troubleTicket/v4/troubleTicket/{problem['troubleTicket'][0]['id']}",
                             headers=h)
        assert r.status_code == 200, r.text
        assert first["tickets"] == 1
        # the node's alarm, one per site, and the hot site's threshold alarm
        assert first["alarms"] == 1 + len(network.SITES) + 1 and first["threshold"] == 1
        r = await client.get("/tmf-api/alarm/v4/alarm", params={"probableCause": "thresholdCrossed"}, headers=h)
        [crossing] = r.json()
        assert crossing["alarmedObject"]["id"] == network.HOT_SITE
        assert crossing["crossedThresholdInformation"]["direction"] == "up"
        # the devices' syslog lines are read as they are meant: problem and cause from the alarm's structured data
        r = await client.get("/tmf-api/alarm/v4/alarm", params={"alarmedObject.id": network.AGGREGATION}, headers=h)
        [node] = r.json()
        assert (node["specificProblem"], node["probableCause"]) == ("node down", "equipmentMalfunction"), node
        # yesterday's outage: one evaluation per product, each violated; the customers' accounts credited
        assert first["evaluations"] == len(network.SITES)
        assert all(e["violated"] for e in seeded["evaluations"])
        assert len(first["credits"]) == len(network.SITES)
        assert {a for a, _ in first["credits"]} == {o["account"]["id"] for o in owners}

        # a second demo start: nothing seeded, nothing sent, nothing changed
        assert await network.seed_network(services, rt.db, tenant, BASE) is None
        assert await network.run_scenario(services, rt.db, tenant, BASE, syslog_port=listener.bound_port) is None
        assert await counts(rt, tenant) == first
        async with rt.db.transaction(tenant) as session:
            assert await session.scalar(select(func.count()).select_from(Product)) == 2 + len(network.SITES)
    finally:
        stop.set()
        await task
