"""Provisioning's named actions for the ordering domain: plan an order item (service order + durable steps), hold,
cancel, retry, and what each item's provisioning has done; the compensation of an item; and the outcomes it
announces (``events.ITEM_EVENT``), to which ordering reacts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert

# the services a partial bar names (a modify item's ``barring``): charging's
from openbss.charging.service import BARRABLE_SERVICES as BARRABLE_SERVICES
from openbss.platform.db import utcnow
from openbss.platform.errors import NotFound
from openbss.platform.events.outbox import emit
from openbss.platform.tmf.resource import Context, ResourceService
from openbss.platform.tmf.spec import format_datetime
from openbss.provisioning import events
from openbss.provisioning.adapters import check_faults
from openbss.provisioning.decomposition import Plan, PlannedStep, plan_activation, plan_change, undo_of
from openbss.provisioning.errors import NotRetryable, Undecomposable
from openbss.provisioning.models import ItemRun, SimulatorConfig, Step
from openbss.settings import Settings


class ProductDecomposition(Protocol):
    """What provisioning asks the catalog: the services and resources a product specification decomposes into."""

    async def decomposition(self, ctx: Context, product_spec_id: str) -> dict[str, Any]: ...


class ProductInventory(Protocol):
    """What the orchestrator's local steps do in the inventory: allocate and release pool items, record the live
    product with its services and resources, change its status or plan."""

    async def allocate_resource(self, ctx: Context, kind: str, key: str, assigned_to: str, *,
                                value: str | None = None, pool: str | None = None) -> dict[str, Any]: ...

    async def release_resource(self, ctx: Context, key: str, *, quarantine_days: float | None = None,
                               retire: bool = False) -> bool: ...

    async def record_subscription(self, ctx: Context, product: dict[str, Any], services: list[dict[str, Any]],
                                  resources: list[dict[str, Any]]) -> dict[str, Any]: ...

    async def set_product_status(self, ctx: Context, product_id: str, status: str) -> dict[str, Any]: ...

    async def change_product(self, ctx: Context, product_id: str, changes: dict[str, Any]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ItemProgress:
    """Where the provisioning of one product order item stands (the state of record ordering follows)."""

    order_item_id: str
    state: str  # running, compensating, completed, failed, cancelled
    started: bool
    product_id: str | None
    failed_step: str | None
    reason: str | None
    generation: int


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


SO_ITEM_STATE = {"running": "inProgress", "completed": "completed", "failed": "failed", "cancelled": "cancelled",
                 "compensating": "inProgress"}
OUTCOME_SO_STATE = {"started": "inProgress", "retried": "inProgress", "completed": "completed", "failed": "failed",
                    "cancelled": "cancelled"}


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
                                                          if k in ("id", "href", "role", "@referredType")}}
                             for p in req.related_party],
            "serviceOrderItem": items}


class ProvisioningService:
    """Provisioning's public operations. ``service_orders`` is the TMF641 resource's service (every change of a
    service order is audited and announced through it)."""

    def __init__(self, service_orders: ResourceService, catalog: ProductDecomposition, settings: Settings) -> None:
        self.service_orders = service_orders
        self.catalog = catalog
        self.settings = settings

    # --- what an item's provisioning announces -------------------------------------------------------------
    async def announce(self, ctx: Context, run: ItemRun, outcome: str, product: dict[str, Any] | None = None,
                       ) -> None:
        """The item's service order follows, and ``events.ITEM_EVENT`` tells ordering (in this transaction)."""
        assert outcome in events.ITEM_STATES, outcome
        await self._service_order_state(ctx, run, OUTCOME_SO_STATE[outcome],
                                        run.reason if outcome == "failed" else None)
        body: dict[str, Any] = {
            "id": run.id, "@type": "OrderItemProvisioning", "state": outcome,
            "productOrder": {"id": run.product_order_id, "@referredType": "ProductOrder"},
            "productOrderItem": {"id": run.order_item_id}, "generation": run.generation,
        }
        if run.service_order_id:
            body["serviceOrder"] = {"id": run.service_order_id,
                                    "href": self.service_orders.store.href(ctx.base_url, run.service_order_id)}
        product_id = (product or {}).get("id") or run.product_id
        if product_id:
            body["product"] = {"id": product_id, "@referredType": "Product"}
        if outcome == "failed":
            body["failedStep"], body["reason"] = run.failed_step, run.reason
        await emit(ctx.session, api=events.ITEM_API, event_type=events.ITEM_EVENT, resource_key=events.ITEM_KEY,
                   resource=body, resource_type="OrderItemProvisioning")

    async def _service_order_state(self, ctx: Context, run: ItemRun, state: str, error: str | None = None) -> None:
        if not run.service_order_id:
            return
        now = format_datetime(utcnow())

        def mutate(doc: dict[str, Any]) -> None:
            doc["state"] = state
            doc["serviceOrderItem"] = [{**i, "state": state} for i in doc.get("serviceOrderItem") or []]
            if state == "inProgress" and not doc.get("startDate"):
                doc["startDate"] = now
            if state in ("completed", "failed", "cancelled"):
                doc["completionDate"] = now
            if state == "cancelled":
                doc["cancellationDate"] = now
            if error:
                doc["errorMessage"] = [{"@type": "ServiceOrderErrorMessage", "code": "STEP_FAILED",
                                        "reason": error[:200], "message": error, "status": "failed",
                                        "timestamp": now}]
            elif "errorMessage" in doc and state != "failed":
                doc["errorMessage"] = []

        await self.service_orders.change(ctx, run.service_order_id, mutate)

    async def activation_context(self, ctx: Context, product_id: str) -> dict[str, Any]:
        run = (await ctx.session.execute(
            select(ItemRun).where(ItemRun.product_id == product_id, ItemRun.action == "add",
                                  ItemRun.state == "completed"))).scalars().first()
        if run is None:
            raise NotFound(f"product '{product_id}' has no completed activation", code="NOT_FOUND")
        return dict(run.context)


    async def plan_item(self, ctx: Context, req: ItemRequest) -> dict[str, Any]:
        """Decompose one order item into a service order and its steps (in the order's transaction)."""
        run_id = str(uuid.uuid4())
        context: dict[str, Any] = {"product": req.product, "kind": req.kind}
        services: list[dict[str, Any]]
        if req.kind == "activate":
            if not req.product_spec_id and not req.offering.get("isBundle"):
                raise Undecomposable(f"productOrderItem '{req.item_id}': offering '{req.offering.get('name')}' has no "
                                     "product specification to decompose")
            # a bundle's own product has nothing on the network (its child items do)
            decomposition = (await self.catalog.decomposition(ctx, req.product_spec_id)
                             if req.product_spec_id else {})
            plan: Plan = plan_activation(decomposition, req.characteristics, req.offering, req.billing_account_id,
                                         (req.product or {}).get("productPrice"))
            steps: list[PlannedStep] = plan.steps
            context |= {"elements": plan.elements, "kinds": plan.kinds, "services": plan.services}
            services = plan.services
        else:
            assert req.product_id
            activation = await self.activation_context(ctx, req.product_id)
            steps = plan_change(req.kind, activation, req.changes)
            context |= {"activation": activation, "changes": req.changes}
            services = activation.get("services") or []
        so = await self.service_orders.create(ctx, _service_order_doc(req, services))
        run = ItemRun(id=run_id, product_order_id=req.order_id, order_item_id=req.item_id, service_order_id=so["id"],
                      action=req.action, product_id=req.product_id, state="running", context=context)
        ctx.session.add(run)
        ids = {s.name: str(uuid.uuid4()) for s in steps}
        attempts = self.settings.provisioning_step_attempts
        for seq, s in enumerate(steps):
            ctx.session.add(Step(id=ids[s.name], item_run_id=run_id, seq=seq, name=s.name, adapter=s.adapter,
                                 operation=s.operation, params=s.params, depends_on=[ids[d] for d in s.depends_on],
                                 phase="forward", state="pending", max_attempts=attempts,
                                 next_attempt_at=req.not_before or utcnow()))
        await ctx.session.flush()
        return {"serviceOrder": so, "run": run_id, "steps": [s.name for s in steps]}


    async def runs_of(self, ctx: Context, order_id: str, *, for_update: bool = False) -> list[ItemRun]:
        stmt = select(ItemRun).where(ItemRun.product_order_id == order_id).order_by(ItemRun.created_at,
                                                                                    ItemRun.order_item_id)
        if for_update:
            stmt = stmt.with_for_update()
        return list((await ctx.session.execute(stmt)).scalars().all())


    async def order_progress(self, ctx: Context, order_id: str) -> list[dict[str, Any]]:
        """Each item's run with its steps (for operators: which step failed and why)."""
        out = []
        for run in await self.runs_of(ctx, order_id):
            steps = (await ctx.session.execute(select(Step).where(Step.item_run_id == run.id)
                                               .order_by(Step.phase.desc(), Step.seq))).scalars().all()
            out.append({"orderItemId": run.order_item_id, "action": run.action, "state": run.state,
                        "serviceOrderId": run.service_order_id, "productId": run.product_id,
                        "failedStep": run.failed_step, "reason": run.reason, "generation": run.generation,
                        "held": run.held,
                        "steps": [{"name": s.name, "phase": s.phase, "state": s.state, "attempts": s.attempts,
                                   "error": s.error} for s in steps]})
        return out


    async def hold_order(self, ctx: Context, order_id: str, held: bool) -> int:
        res = await ctx.session.execute(update(ItemRun).where(ItemRun.product_order_id == order_id,
                                                              ItemRun.state == "running").values(held=held)
                                        .returning(ItemRun.id))
        return len(res.all())


    async def cancel_order(self, ctx: Context, order_id: str) -> list[str]:
        """Stop every running item of the order and compensate what it already did. Returns the items' states
        (cancelled, or compensating until the compensation steps ran)."""
        states = []
        for run in await self.runs_of(ctx, order_id, for_update=True):
            if run.state == "running":
                run.cancel_requested = True
                run.held = False
                run.reason = "cancelled on request"
                await self.start_compensation(ctx, run)
            states.append(run.state)
        return states


    async def retry_order(self, ctx: Context, order_id: str) -> int:
        """Run the failed items of an order again from their first step (new idempotency keys: the compensation
        undid what the failed attempt had done)."""
        n = 0
        for run in await self.runs_of(ctx, order_id, for_update=True):
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
            await self.announce(ctx, run, "retried")
            n += 1
        if n == 0:
            raise NotRetryable(f"product order '{order_id}' has no failed item to retry")
        return n


    async def set_simulator_faults(self, ctx: Context, element: str, config: dict[str, Any]) -> None:
        """Configure a network simulator's fault injection for the tenant (validated like the API's PUT)."""
        config = check_faults(config)
        await ctx.session.execute(insert(SimulatorConfig).values(element=element, config=config).on_conflict_do_update(
            index_elements=["tenant_id", "element"], set_={"config": config}))

    async def item_progress(self, ctx: Context, order_id: str) -> list[ItemProgress]:
        """Where the provisioning of each item of a product order stands."""
        return [ItemProgress(run.order_item_id, run.state, run.started, run.product_id, run.failed_step, run.reason,
                             run.generation) for run in await self.runs_of(ctx, order_id)]

    # --- compensation ----------------------------------------------------------------------------------------
    async def add_undo(self, ctx: Context, run: ItemRun, step: Step, after: str | None) -> str | None:
        res = step.result or {}
        undo = undo_of(step.adapter, step.operation, res.get("request") or {}, res.get("response"))
        if undo is None:
            return after
        operation, params = undo
        sid = str(uuid.uuid4())
        ctx.session.add(Step(id=sid, item_run_id=run.id, seq=1000 + step.seq, name=f"undo:{step.name}",
                             adapter=step.adapter, operation=operation, params=params, undoes=step.id,
                             depends_on=[after] if after else [], phase="compensate", state="pending",
                             max_attempts=step.max_attempts + 2))
        await ctx.session.flush()
        return sid

    async def start_compensation(self, ctx: Context, run: ItemRun) -> None:
        """The item failed (or is cancelled): cancel what has not run, undo what has, in reverse order."""
        run.state = "compensating"
        run.updated_at = utcnow()
        await ctx.session.execute(update(Step).where(Step.item_run_id == run.id, Step.phase == "forward",
                                                     Step.state == "pending").values(state="cancelled"))
        done = (await ctx.session.execute(select(Step).where(Step.item_run_id == run.id, Step.phase == "forward",
                                                             Step.state == "done").order_by(Step.seq.desc())
                                          )).scalars().all()
        after: str | None = None
        for step in done:
            after = await self.add_undo(ctx, run, step, after)
        await ctx.session.flush()
        await self.finish_if_compensated(ctx, run)

    async def finish_if_compensated(self, ctx: Context, run: ItemRun) -> None:
        if run.state != "compensating":
            return
        open_steps = await ctx.session.scalar(select(func.count()).select_from(Step).where(
            Step.item_run_id == run.id, Step.state.in_(("pending", "running"))))
        if open_steps:
            return
        run.state = "cancelled" if run.cancel_requested else "failed"
        run.updated_at = utcnow()
        await ctx.session.flush()
        await self.announce(ctx, run, run.state)
