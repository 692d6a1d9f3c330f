"""Demo orders of ``openbss demo``: resource pools, a demo customer, and three orders that show the lifecycle — one
completed (a mobile line and a fiber line, live in the inventory and on the simulated network), one that failed
(the HSS was down), was compensated and retried by an operator until completed, and one cancelled.

``seed_orders`` is idempotent: it does nothing when the tenant already has the demo orders. It needs the demo
catalog (seeded here too when missing; ``seed_catalog`` is idempotent).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from openbss.platform.auth import Principal, permissions_for
from openbss.platform.db import Database
from openbss.platform.tmf.resource import Context
from openbss.settings import get_settings

DEMO_EXTERNAL_ID = "demo-order-completed"


def _ctx(tenant_id: str, session: Any, base_url: str) -> Context:
    principal = Principal("orders-seed", tenant_id, ("admin",), permissions=permissions_for(("admin",)))
    return Context(principal=principal, session=session, base_url=base_url)


def _sims(n: int) -> str:
    lines = ["iccid,imsi,ki_ref"] + [f"8933015000{i:010d},20815{i:010d},hsm://demo/ki/{i}" for i in range(n)]
    return "\n".join(lines) + "\n"


async def seed_orders(db: Database, tenant_id: str, base_url: str) -> None:
    from openbss.app import domain_routers
    from openbss.catalog.seed import seed_catalog
    from openbss.inventory.service import load_demo_pools, pools_are_empty
    from openbss.ordering.api import cancel_service, order_service
    from openbss.ordering.models import ProductOrder
    from openbss.provisioning.orchestrator import Orchestrator
    from openbss.provisioning.service import set_simulator_faults

    domain_routers()
    await seed_catalog(db, tenant_id, base_url)
    async with db.transaction(tenant_id) as session:
        done = await session.scalar(select(func.count()).select_from(ProductOrder).where(
            ProductOrder.body["externalId"].astext == DEMO_EXTERNAL_ID))
        if done:
            return
        ctx = _ctx(tenant_id, session, base_url)
        if await pools_are_empty(ctx):
            await load_demo_pools(ctx, first_msisdn="33612300000", last_msisdn="33612300999", sims_csv=_sims(500),
                                  ipv4_cidr="198.51.100.0/24", ont_serials=[f"DEMO{i:08d}" for i in range(200)],
                                  ont_model="HG8245H")

    from openbss.account.api import account_service
    from openbss.catalog.service import product_catalog
    from openbss.customer.service import get_customer_service
    from openbss.party.service import get_party_service

    async with db.transaction(tenant_id) as session:
        ctx = _ctx(tenant_id, session, base_url)
        party = await get_party_service().create_individual(ctx, {
            "givenName": "Alan", "familyName": "Turing",
            "contactMedium": [{"mediumType": "email", "characteristic": {"emailAddress": "alan.turing@example.com"}}]})
        customer = await get_customer_service().create_customer(ctx, {
            "name": "Alan Turing", "engagedParty": {"id": party["id"], "@referredType": "Individual"}})
        account = await account_service.create_billing_account(ctx, {
            "name": "Alan Turing billing", "state": "active",
            "relatedParty": [{"id": customer["id"], "@referredType": "Customer", "role": "customer",
                              "name": "Alan Turing"}]})
        offers, _ = await product_catalog.orderable_offerings(ctx, channel="web", market_segment="consumer")
        by_name = {o["name"]: o for o in offers}

    def order(external_id: str, *items: dict[str, Any]) -> dict[str, Any]:
        return order_service.validate_create({
            "externalId": external_id, "channel": [{"id": "web", "name": "Web shop"}],
            "billingAccount": {"id": account["id"]},
            "relatedParty": [{"id": customer["id"], "@referredType": "Customer", "role": "customer"}],
            "productOrderItem": list(items)})

    mobile = {"id": "1", "action": "add", "productOffering": {"id": by_name["Mobile M"]["id"]},
              "product": {"productCharacteristic": [{"name": "simType", "value": "eSIM"}]}}
    fiber = {"id": "2", "action": "add", "productOffering": {"id": by_name["Fiber 1 Gbps"]["id"]},
             "product": {"productCharacteristic": [{"name": "staticIp", "value": True}]}}
    settings = get_settings().model_copy(update={"provisioning_step_backoff_seconds": 0.05,
                                                 "simulator_config_cache_seconds": 0.0})
    orchestrator = Orchestrator(db, settings)

    async def place(doc: dict[str, Any]) -> str:
        async with db.transaction(tenant_id) as session:
            return str((await order_service.place(_ctx(tenant_id, session, base_url), doc))["id"])

    async def hss_faults(config: dict[str, Any]) -> None:
        async with db.transaction(tenant_id) as session:
            await set_simulator_faults(_ctx(tenant_id, session, base_url), "hss", config)

    # 1. completed: a mobile line and a fiber line
    await place(order(DEMO_EXTERNAL_ID, mobile, fiber))
    await orchestrator.run_until_idle(tenant_id)
    # 2. failed (the HSS answers errors), compensated, then retried by an operator once the HSS is back
    await hss_faults({"errorRate": 1.0})
    failing = await place(order("demo-order-failed-and-retried", dict(mobile, id="1")))
    await orchestrator.run_until_idle(tenant_id)
    await hss_faults({})
    async with db.transaction(tenant_id) as session:
        await order_service.retry(_ctx(tenant_id, session, base_url), failing)
    await orchestrator.run_until_idle(tenant_id)
    # 3. cancelled before it ran
    cancelled = await place(order("demo-order-cancelled", dict(fiber, id="1")))
    async with db.transaction(tenant_id) as session:
        await cancel_service.create(_ctx(tenant_id, session, base_url),
                                    {"productOrder": {"id": cancelled}, "cancellationReason": "customer changed mind"})
    await orchestrator.run_until_idle(tenant_id)
