"""Provisioning's named actions for the ordering domain: plan an order item (service order + durable steps), hold,
cancel, retry; and the listeners through which ordering learns how its items end."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update

from openbss.platform.db import utcnow
from openbss.platform.errors import NotFound
from openbss.platform.tmf.resource import Context, ResourceService
from openbss.platform.tmf.spec import format_datetime
from openbss.provisioning.decomposition import Plan, PlannedStep, plan_activation, plan_change
from openbss.provisioning.errors import NotRetryable, Undecomposable
from openbss.provisioning.models import ItemRun, Step
from openbss.settings import get_settings

#: the TMF641 service order resource service, set when the router is built
SERVICES: dict[str, ResourceService] = {}

#: (ctx, run, event, product) — event: started, completed, failed, cancelled, retried
Listener = Callable[[Context, ItemRun, str, dict[str, Any] | None], Awaitable[None]]
_listeners: list[Listener] = []


def register_order_listener(listener: Listener) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


@dataclass
class ItemRequest:
    order_id: str
    item_id: str
    action: str  # add | modify | delete
    kind: str  # activate | suspend | resume | change | terminate
    offering: dict[str, Any] = field(default_factory=dict)
    product_spec_id: str | None = None
    characteristics: dict[str, Any] = field(default_factory=dict)
    billing_account_id: str | None = None
    related_party: list[dict[str, Any]] = field(default_factory=list)
    #: add: the product document to record when live; modify: {"product": changes, "offeringName", ...}
    product: dict[str, Any] = field(default_factory=dict)
    product_id: str | None = None
    changes: dict[str, Any] = field(default_factory=dict)
    #: the requested start date: no step runs before
    not_before: datetime | None = None


# --- service orders (TMF641 documents) -------------------------------------------------------------------------
SO_ITEM_STATE = {"running": "inProgress", "completed": "completed", "failed": "failed", "cancelled": "cancelled",
                 "compensating": "inProgress"}


async def _write_service_order(ctx: Context, so_id: str, changes: dict[str, Any]) -> None:
    svc = SERVICES["serviceOrder"]
    row = await svc.store.get(ctx, so_id, for_update=True)
    current = dict(row.body)
    merged = {**current, **changes}
    if merged == current:
        return
    await svc.store.replace(ctx, row, merged)
    rendered = svc.store.shape(ctx.base_url, row.id, merged)
    await svc._emit(ctx, "ServiceOrderAttributeValueChangeEvent", rendered)
    if current.get("state") != merged.get("state"):
        await svc._emit(ctx, "ServiceOrderStateChangeEvent", rendered)


async def service_order_state(ctx: Context, run: ItemRun, state: str, error: str | None = None) -> None:
    if not run.service_order_id:
        return
    svc = SERVICES["serviceOrder"]
    doc = await svc.get(ctx, run.service_order_id)
    items = [{**i, "state": state} for i in doc.get("serviceOrderItem") or []]
    changes: dict[str, Any] = {"state": state, "serviceOrderItem": items}
    now = format_datetime(utcnow())
    if state == "inProgress" and not doc.get("startDate"):
        changes["startDate"] = now
    if state in ("completed", "failed", "cancelled"):
        changes["completionDate"] = now
    if state == "cancelled":
        changes["cancellationDate"] = now
    if error:
        changes["errorMessage"] = [{"@type": "ServiceOrderErrorMessage", "code": "STEP_FAILED", "reason": error[:200],
                                    "message": error, "status": "failed", "timestamp": now}]
    elif "errorMessage" in doc and state != "failed":
        changes["errorMessage"] = []
    await _write_service_order(ctx, run.service_order_id, changes)


async def notify(ctx: Context, run: ItemRun, event: str, product: dict[str, Any] | None = None) -> None:
    so_state = {"started": "inProgress", "retried": "inProgress", "completed": "completed", "failed": "failed",
                "cancelled": "cancelled"}[event]
    await service_order_state(ctx, run, so_state, run.reason if event == "failed" else None)
    for listener in _listeners:
        await listener(ctx, run, event, product)


def _service_order_doc(req: ItemRequest, plan_services: list[dict[str, Any]]) -> dict[str, Any]:
    action = {"add": "add", "modify": "modify", "delete": "delete"}[req.action]
    items = []
    ids = {s["name"]: str(i + 1) for i, s in enumerate(plan_services)}
    for i, s in enumerate(plan_services):
        item: dict[str, Any] = {
            "id": str(i + 1), "action": action, "state": "acknowledged", "@type": "ServiceOrderItem",
            "service": {"@type": "Service", "name": s["name"], "state": "designed" if action == "add" else "active",
                        **({"serviceSpecification": {**s["spec"], "@type": "ServiceSpecificationRef"}}
                           if s.get("spec") else {})}}
        if s.get("parent") in ids:  # a resource-facing service is provisioned before the service relying on it
            item["serviceOrderItemRelationship"] = [{"relationshipType": "dependsOn",
                                                     "orderItem": {"id": ids[s["parent"]],
                                                                   "itemId": ids[s["parent"]],
                                                                   "@referredType": "ServiceOrderItem"}}]
        items.append(item)
    if not items:
        items = [{"id": "1", "action": action, "state": "acknowledged", "@type": "ServiceOrderItem",
                  "service": {"@type": "Service", "name": req.offering.get("name") or "product",
                              "state": "active"}}]
    return {"@type": "ServiceOrder", "state": "acknowledged", "orderDate": format_datetime(utcnow()),
            "externalId": f"{req.order_id}/{req.item_id}",
            "description": f"{req.kind} for product order {req.order_id} item {req.item_id}",
            "relatedParty": [{"@type": "RelatedParty", **{k: v for k, v in p.items()
                                                          if k in ("id", "href", "name", "role", "@referredType")}}
                             for p in req.related_party],
            "serviceOrderItem": items}


async def activation_context(ctx: Context, product_id: str) -> dict[str, Any]:
    run = (await ctx.session.execute(
        select(ItemRun).where(ItemRun.product_id == product_id, ItemRun.action == "add",
                              ItemRun.state == "completed"))).scalars().first()
    if run is None:
        raise NotFound(f"product '{product_id}' has no completed activation", code="NOT_FOUND")
    return dict(run.context)


async def plan_item(ctx: Context, req: ItemRequest) -> dict[str, Any]:
    """Decompose one order item into a service order and its steps (in the order's transaction)."""
    from openbss.catalog.service import product_catalog

    run_id = str(uuid.uuid4())
    context: dict[str, Any] = {"product": req.product, "kind": req.kind}
    services: list[dict[str, Any]]
    if req.kind == "activate":
        if not req.product_spec_id and not req.offering.get("isBundle"):
            raise Undecomposable(f"productOrderItem '{req.item_id}': offering '{req.offering.get('name')}' has no "
                                 "product specification to decompose")
        # a bundle's own product has nothing on the network (its child items do)
        decomposition = (await product_catalog.decomposition(ctx, req.product_spec_id)
                         if req.product_spec_id else {})
        plan: Plan = plan_activation(decomposition, req.characteristics, req.offering, req.billing_account_id)
        steps: list[PlannedStep] = plan.steps
        context |= {"elements": plan.elements, "kinds": plan.kinds, "services": plan.services}
        services = plan.services
    else:
        assert req.product_id
        activation = await activation_context(ctx, req.product_id)
        steps = plan_change(req.kind, activation, req.changes)
        context |= {"activation": activation, "changes": req.changes}
        services = activation.get("services") or []
    so = await SERVICES["serviceOrder"].create(ctx, _service_order_doc(req, services))
    run = ItemRun(id=run_id, product_order_id=req.order_id, order_item_id=req.item_id, service_order_id=so["id"],
                  action=req.action, product_id=req.product_id, state="running", context=context)
    ctx.session.add(run)
    ids = {s.name: str(uuid.uuid4()) for s in steps}
    attempts = get_settings().provisioning_step_attempts
    for seq, s in enumerate(steps):
        ctx.session.add(Step(id=ids[s.name], item_run_id=run_id, seq=seq, name=s.name, adapter=s.adapter,
                             operation=s.operation, params=s.params, depends_on=[ids[d] for d in s.depends_on],
                             phase="forward", state="pending", max_attempts=attempts,
                             next_attempt_at=req.not_before or utcnow()))
    await ctx.session.flush()
    return {"serviceOrder": so, "run": run_id, "steps": [s.name for s in steps]}


async def runs_of(ctx: Context, order_id: str, *, for_update: bool = False) -> list[ItemRun]:
    stmt = select(ItemRun).where(ItemRun.product_order_id == order_id).order_by(ItemRun.created_at,
                                                                                ItemRun.order_item_id)
    if for_update:
        stmt = stmt.with_for_update()
    return list((await ctx.session.execute(stmt)).scalars().all())


async def order_progress(ctx: Context, order_id: str) -> list[dict[str, Any]]:
    """Each item's run with its steps (for operators: which step failed and why)."""
    out = []
    for run in await runs_of(ctx, order_id):
        steps = (await ctx.session.execute(select(Step).where(Step.item_run_id == run.id)
                                           .order_by(Step.phase.desc(), Step.seq))).scalars().all()
        out.append({"orderItemId": run.order_item_id, "action": run.action, "state": run.state,
                    "serviceOrderId": run.service_order_id, "productId": run.product_id,
                    "failedStep": run.failed_step, "reason": run.reason, "generation": run.generation,
                    "held": run.held,
                    "steps": [{"name": s.name, "phase": s.phase, "state": s.state, "attempts": s.attempts,
                               "error": s.error} for s in steps]})
    return out


async def hold_order(ctx: Context, order_id: str, held: bool) -> int:
    res = await ctx.session.execute(update(ItemRun).where(ItemRun.product_order_id == order_id,
                                                          ItemRun.state == "running").values(held=held)
                                    .returning(ItemRun.id))
    return len(res.all())


async def cancel_order(ctx: Context, order_id: str) -> list[str]:
    """Stop every running item of the order and compensate what it already did. Returns the items' states
    (cancelled, or compensating until the compensation steps ran)."""
    from openbss.provisioning.orchestrator import start_compensation

    states = []
    for run in await runs_of(ctx, order_id, for_update=True):
        if run.state == "running":
            run.cancel_requested = True
            run.held = False
            run.reason = "cancelled on request"
            await start_compensation(ctx, run)
        states.append(run.state)
    return states


async def retry_order(ctx: Context, order_id: str) -> int:
    """Run the failed items of an order again from their first step (new idempotency keys: the compensation
    undid what the failed attempt had done)."""
    n = 0
    for run in await runs_of(ctx, order_id, for_update=True):
        if run.state != "failed":
            continue
        open_steps = await ctx.session.scalar(select(Step.id).where(
            Step.item_run_id == run.id, Step.state.in_(("pending", "running"))).limit(1))
        if open_steps:
            continue
        await ctx.session.execute(delete(Step).where(Step.item_run_id == run.id, Step.phase == "compensate"))
        await ctx.session.execute(update(Step).where(Step.item_run_id == run.id).values(
            state="pending", attempts=0, error=None, result=None, lease_until=None, next_attempt_at=utcnow()))
        run.generation += 1
        run.state = "running"
        run.failed_step = None
        run.reason = None
        run.updated_at = utcnow()
        await ctx.session.flush()
        await notify(ctx, run, "retried")
        n += 1
    if n == 0:
        raise NotRetryable(f"product order '{order_id}' has no failed item to retry")
    return n


async def set_simulator_faults(ctx: Context, element: str, config: dict[str, Any]) -> None:
    """Configure a network simulator's fault injection for the tenant (validated like the API's PUT)."""
    from sqlalchemy.dialects.postgresql import insert

    from openbss.provisioning.adapters import check_faults
    from openbss.provisioning.models import SimulatorConfig

    config = check_faults(config)
    await ctx.session.execute(insert(SimulatorConfig).values(element=element, config=config).on_conflict_do_update(
        index_elements=["tenant_id", "element"], set_={"config": config}))
