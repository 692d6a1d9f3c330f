"""What the demo seeds share: the operator context they act in, and orders driven to their end."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from openbss.platform.auth import Principal, permissions_for
from openbss.platform.events.relay import OutboxRelay
from openbss.platform.runtime import Runtime
from openbss.platform.tmf.resource import Context
from openbss.provisioning.orchestrator import Orchestrator


def admin_context(tenant_id: str, session: AsyncSession, base_url: str, subject: str = "demo-seed") -> Context:
    """An administrator of ``tenant_id`` (what the audit trail of the demo data names)."""
    principal = Principal(subject, tenant_id, ("admin",), permissions=permissions_for(("admin",)))
    return Context(principal=principal, session=session, base_url=base_url.rstrip("/"))


async def settle_orders(runtime: Runtime, orchestrator: Orchestrator, tenant_id: str, *,
                        max_seconds: float = 60.0) -> None:
    """Run ``tenant_id``'s order items to the end and deliver the events they produced (what the worker's
    orchestrator loop and outbox relay do continuously), so that the product orders show how their items ended."""
    relay = OutboxRelay(runtime.db, runtime.make_bus())
    while True:
        await orchestrator.run_until_idle(tenant_id, max_seconds=max_seconds)
        published = 0
        while n := await relay.publish_pending():
            published += n
        if not published and not await orchestrator.busy(tenant_id):
            return
