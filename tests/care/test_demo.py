"""The demo's care data: queues, policies, tickets of the demo customers in every status, one past its SLA and
escalated; seeding twice changes nothing."""

from __future__ import annotations

from typing import Any

import httpx

from openbss.demo.care import seed_care
from openbss.demo.customers import seed_customers
from tests.care.helpers import CFG, PI, TMF621, TT, ok
from tests.conftest import bearer, make_tenant, session_services
from tests.customer.helpers import assert_valid


async def test_the_demo_has_tickets_in_every_status_and_one_breach(client: httpx.AsyncClient, rt: Any) -> None:
    tenant = await make_tenant(rt, "demo")
    services = session_services()
    await seed_customers(services, rt.db, tenant, "http://testserver")
    await seed_care(services, rt.db, tenant, "http://testserver")
    await seed_care(services, rt.db, tenant, "http://testserver")
    h = bearer(tenant, "csr_agent")
    tickets = await ok(await client.get(TT, params={"limit": "100"}, headers=h))
    for t in tickets:
        assert_valid(TMF621, "TroubleTicket", t)
    assert {t["status"] for t in tickets} == {"acknowledged", "inProgress", "pending", "held", "resolved", "closed",
                                               "cancelled", "rejected"}
    assert len(tickets) == 9
    [late] = [t for t in tickets if t["sla"]["resolutionBreached"]]
    assert late["priority"] == "critical"  # raised from high at 100 %
    assert late["queue"]["name"] == "Network second line"  # reassigned at 150 %
    breached = await ok(await client.get(TT, params={"sla.resolutionBreached": "true"}, headers=h))
    assert [t["id"] for t in breached] == [late["id"]]
    assert len(await ok(await client.get(f"{CFG}/queue", headers=h))) == 3
    assert len(await ok(await client.get(f"{CFG}/slaPolicy", headers=h))) == 3
    assert len(await ok(await client.get(PI, headers=h))) == 8
