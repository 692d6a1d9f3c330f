"""The demo orders: completed, failed-and-retried, cancelled; seeding twice changes nothing."""

from __future__ import annotations

from typing import Any

from tests.conftest import bearer, make_tenant, session_services
from tests.ordering.helpers import PO, get


async def test_seed_orders(rt: Any, client: Any) -> None:
    from openbss.demo.orders import seed_orders

    tenant = await make_tenant(rt, "demo")
    await seed_orders(session_services(), rt, tenant, "http://testserver")
    await seed_orders(session_services(), rt, tenant, "http://testserver")
    h = bearer(tenant, "admin")
    orders = {o["externalId"]: o for o in await get(client, h, PO)}
    assert len(orders) == 3
    assert orders["demo-order-completed"]["state"] == "completed"
    assert orders["demo-order-cancelled"]["state"] == "cancelled"
    retried = orders["demo-order-failed-and-retried"]
    assert retried["state"] == "completed"
    progress = await get(client, h, f"{PO}/{retried['id']}/progress")
    assert progress["productOrderItem"][0]["generation"] == 2
