"""Demo orders of ``openbss demo``: resource pools, a demo customer, and three orders that show the lifecycle — one
completed (a mobile line and a fiber line, live in the inventory and on the simulated network), one that failed
(the HSS was down), was compensated and retried by an operator until completed, and one cancelled.

``seed_orders`` is idempotent: it does nothing when the tenant already has the demo orders. It needs the demo
catalog (seeded here too when missing; ``seed_catalog`` is idempotent).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from openbss.demo.catalog import seed_catalog
from openbss.demo.support import admin_context, settle_orders
from openbss.ordering.models import ProductOrder
from openbss.platform.runtime import Runtime
from openbss.platform.tmf.resource import Context
from openbss.services import Services

DEMO_EXTERNAL_ID = "demo-order-completed"


def _ctx(tenant_id: str, session: Any, base_url: str) -> Context:
    return admin_context(tenant_id, session, base_url, subject="orders-seed")


def _sims(n: int) -> str:
    lines = ["iccid,imsi,ki_ref"] + [f"8933015000{i:010d},20815{i:010d},hsm://demo/ki/{i}" for i in range(n)]
    return "\n".join(lines) + "\n"


async def seed_orders(services: Services, runtime: Runtime, tenant_id: str, base_url: str) -> None:
    db = runtime.db
    inventory, order_service = services.inventory.service, services.ordering.service
    await seed_catalog(services, db, tenant_id, base_url)
    async with db.transaction(tenant_id) as session:
        done = await session.scalar(select(func.count()).select_from(ProductOrder).where(
            ProductOrder.body["externalId"].astext == DEMO_EXTERNAL_ID))
        if done:
            return
        ctx = _ctx(tenant_id, session, base_url)
        counts = await inventory.pool_counts(ctx)
        if not any(sum(v.values()) for v in counts.values()):
            await inventory.add_number_range(ctx, "33612300000", "33612300999")
            await inventory.load_sims(ctx, _sims(500))
            await inventory.add_ipv4_pool(ctx, "198.51.100.0/24")
            await inventory.add_onts(ctx, [f"DEMO{i:08d}" for i in range(200)], model="HG8245H")

    async with db.transaction(tenant_id) as session:
        ctx = _ctx(tenant_id, session, base_url)
        party = await services.party.service.create_individual(ctx, {
            "givenName": "Alan", "familyName": "Turing",
            "contactMedium": [{"mediumType": "email", "characteristic": {"emailAddress": "alan.turing@example.com"}}]})
        customer = await services.customer.service.create_customer(ctx, {
            "name": "Alan Turing", "engagedParty": {"id": party["id"], "@referredType": "Individual"}})
        account = await services.account.service.create_billing_account(ctx, {
            "name": "Alan Turing billing", "state": "active",
            "relatedParty": [{"id": customer["id"], "@referredType": "Customer", "role": "customer",
                              "name": "Alan Turing"}]})
        offers, _ = await services.catalog.service.orderable_offerings(ctx, channel="web",
                                                                       market_segment="consumer")
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
    settings = services.settings.model_copy(update={"provisioning_step_backoff_seconds": 0.05,
                                                    "simulator_config_cache_seconds": 0.0})
    orchestrator = services.provisioning.orchestrator(settings)

    async def place(doc: dict[str, Any]) -> str:
        async with db.transaction(tenant_id) as session:
            return str((await order_service.place(_ctx(tenant_id, session, base_url), doc))["id"])

    async def hss_faults(config: dict[str, Any]) -> None:
        async with db.transaction(tenant_id) as session:
            await services.provisioning.service.set_simulator_faults(_ctx(tenant_id, session, base_url), "hss",
                                                                     config)

    # 1. completed: a mobile line and a fiber line
    await place(order(DEMO_EXTERNAL_ID, mobile, fiber))
    await settle_orders(runtime, orchestrator, tenant_id)
    # 2. failed (the HSS answers errors), compensated, then retried by an operator once the HSS is back
    await hss_faults({"errorRate": 1.0})
    failing = await place(order("demo-order-failed-and-retried", dict(mobile, id="1")))
    await settle_orders(runtime, orchestrator, tenant_id)
    await hss_faults({})
    async with db.transaction(tenant_id) as session:
        await order_service.retry(_ctx(tenant_id, session, base_url), failing)
    await settle_orders(runtime, orchestrator, tenant_id)
    # 3. cancelled before it ran
    cancelled = await place(order("demo-order-cancelled", dict(fiber, id="1")))
    async with db.transaction(tenant_id) as session:
        await services.ordering.cancellations.create(
            _ctx(tenant_id, session, base_url),
            {"productOrder": {"id": cancelled}, "cancellationReason": "customer changed mind"})
    await settle_orders(runtime, orchestrator, tenant_id)
