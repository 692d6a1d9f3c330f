"""The orchestrator: runs the durable steps of order items.

A step is *claimed* in a short transaction (``FOR UPDATE SKIP LOCKED``; state running, attempt counted, a lease
until which no one else takes it), *executed* outside any transaction (the network call, bounded by a timeout),
then *recorded* in a second transaction fenced on (state running, same attempt), so a late answer from a worker
whose lease expired changes nothing. A worker killed mid-step leaves the step running with a lease that expires;
another worker (or the same one restarted) claims it again and calls the element with the same idempotency key,
which the element answers without applying the change twice.

Local steps (allocate/release a pool item, record the inventory) execute and record in one transaction: exactly
once. A step that keeps failing (or is rejected) fails its item: pending steps are cancelled and the done ones are
compensated in reverse order (delete what was created, give back what was allocated, restore the status or
profile an element had before a modify step changed it), themselves as durable steps. The inventory is written by
the item's last step, so a failed modify leaves the product as it was.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, text

from openbss.platform.db import Database, utcnow
from openbss.platform.errors import DomainError
from openbss.platform.tmf.resource import Context, system_context
from openbss.provisioning.adapters import SUBSCRIBER_PARAM, AdapterError, NetworkAdapter
from openbss.provisioning.models import ItemRun, Step
from openbss.provisioning.service import ProductInventory, ProvisioningService
from openbss.settings import Settings

log = logging.getLogger(__name__)

CLAIM_SQL = text("""
UPDATE provisioning_step s
   SET state = 'running', attempts = s.attempts + 1, updated_at = now(),
       lease_until = now() + make_interval(secs => :lease)
 WHERE s.id IN (
       SELECT st.id FROM provisioning_step st
         JOIN provisioning_item_run r ON r.id = st.item_run_id
        WHERE r.state IN ('running', 'compensating') AND NOT r.held
          AND st.phase = CASE WHEN r.state = 'compensating' THEN 'compensate' ELSE 'forward' END
          AND ((st.state = 'pending' AND st.next_attempt_at <= now())
               OR (st.state = 'running' AND st.lease_until < now()))
          AND NOT EXISTS (SELECT 1 FROM provisioning_step d
                           WHERE d.id = ANY(st.depends_on) AND d.state <> 'done')
        ORDER BY st.next_attempt_at, st.seq
        LIMIT :limit
          FOR UPDATE OF st SKIP LOCKED)
RETURNING s.id, s.tenant_id, s.item_run_id, s.name, s.adapter, s.operation, s.params, s.depends_on, s.attempts,
          s.max_attempts, s.phase,
          (SELECT generation FROM provisioning_item_run r WHERE r.id = s.item_run_id) AS generation,
          (SELECT jsonb_object_agg(substr(d.name, 10), d.result -> 'response') FROM provisioning_step d
            WHERE d.item_run_id = s.item_run_id AND d.state = 'done' AND d.phase = 'forward'
              AND d.name LIKE 'allocate:%') AS allocated
""")


@dataclass(frozen=True)
class Claimed:
    id: str
    tenant_id: str
    item_run_id: str
    name: str
    adapter: str
    operation: str
    params: dict[str, Any]
    depends_on: list[str]
    attempts: int
    max_attempts: int
    phase: str
    generation: int = 1
    allocated: dict[str, Any] | None = None


def _context(tenant_id: str, session: Any, base_url: str) -> Context:
    return system_context(tenant_id, session, base_url, subject="provisioning")


class Orchestrator:
    """Runs the steps of every tenant's order items. Built by ``ProvisioningServices.orchestrator``: the
    provisioning service (outcomes, compensation), the inventory (local steps) and the network adapters."""

    def __init__(self, db: Database, settings: Settings, provisioning: ProvisioningService,
                 inventory: ProductInventory, adapters: dict[str, NetworkAdapter],
                 worker_id: str | None = None) -> None:
        self.db = db
        self.settings = settings
        self.provisioning = provisioning
        self.inventory = inventory
        self.adapters = adapters
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.base_url = settings.public_url.rstrip("/")
        self.timeout = settings.provisioning_step_timeout_seconds

    # --- claim / execute / record ----------------------------------------------------------------------------
    async def claim(self, limit: int = 32) -> list[Claimed]:
        async with self.db.transaction(None, system=True) as session:
            lease = self.timeout + self.settings.provisioning_lease_grace_seconds
            rows = (await session.execute(CLAIM_SQL, {"lease": lease, "limit": limit})).all()
        return [Claimed(r.id, r.tenant_id, r.item_run_id, r.name, r.adapter, r.operation, dict(r.params or {}),
                        list(r.depends_on or []), r.attempts, r.max_attempts, r.phase, r.generation or 1,
                        dict(r.allocated or {})) for r in rows]

    async def run_once(self, limit: int = 32) -> int:
        claimed = await self.claim(limit)
        if claimed:
            await asyncio.gather(*(self._guarded(c) for c in claimed))
        return len(claimed)

    async def _guarded(self, c: Claimed) -> None:
        try:
            await self.execute(c)
        except Exception:  # the lease expires and the step is claimed again
            log.exception("step %s (%s) crashed", c.id, c.name)

    async def execute(self, c: Claimed) -> None:
        if c.adapter in ("pool", "inventory"):
            await self._execute_local(c)
            return
        adapter = self.adapters[c.adapter]
        params = self.resolve(c)
        key = f"{c.id}:{c.generation}"
        response: dict[str, Any] | None = None
        error: str | None = None
        retryable = True
        try:
            response = await asyncio.wait_for(adapter.call(c.tenant_id, c.operation, key, params), self.timeout)
        except AdapterError as exc:
            error, retryable = str(exc), exc.retryable
        except TimeoutError:
            error = f"{c.adapter}: {c.operation} timed out after {self.timeout:g} s"
        except Exception as exc:  # an adapter bug or a broken connection: retry
            error = f"{c.adapter}: {type(exc).__name__}: {exc}"
        async with self.db.transaction(c.tenant_id) as session:
            ctx = _context(c.tenant_id, session, self.base_url)
            fenced = await self._fence(session, c)
            if fenced is None:
                return
            run, step = fenced
            if error is None:
                await self._done(ctx, run, step, {"request": params, "response": response})
            else:
                await self._failed(ctx, run, step, error, retryable)

    async def _fence(self, session: Any, c: Claimed) -> tuple[ItemRun, Step] | None:
        """Lock the run, then the step (always in this order); None when the claim is no longer ours."""
        run = (await session.execute(select(ItemRun).where(ItemRun.id == c.item_run_id).with_for_update())
               ).scalars().first()
        step = (await session.execute(select(Step).where(Step.id == c.id).with_for_update())).scalars().first()
        if run is None or step is None or step.state != "running" or step.attempts != c.attempts:
            return None
        return run, step

    @staticmethod
    def resolve(c: Claimed) -> dict[str, Any]:
        """Replace ``$kind.field`` references with what the item's allocation steps took (read with the claim)."""
        results: dict[str, dict[str, Any]] = {k: v or {} for k, v in (c.allocated or {}).items()}
        out: dict[str, Any] = {}
        for k, v in c.params.items():
            if isinstance(v, str) and v.startswith("$"):
                ref, _, attr = v[1:].partition(".")
                value = results.get(ref, {}).get(attr)
                if value is not None:
                    out[k] = value
            elif v is not None:
                out[k] = v
        return out

    async def _execute_local(self, c: Claimed) -> None:
        async with self.db.transaction(c.tenant_id) as session:
            ctx = _context(c.tenant_id, session, self.base_url)
            fenced = await self._fence(session, c)
            if fenced is None:
                return
            run, step = fenced
            try:
                async with session.begin_nested():
                    result = await self._local(ctx, run, step)
            except DomainError as exc:
                await self._failed(ctx, run, step, f"{c.name}: {exc.message}", retryable=False)
                return
            await self._done(ctx, run, step, result)

    async def _local(self, ctx: Context, run: ItemRun, step: Step) -> dict[str, Any]:
        s = self.settings
        inventory = self.inventory
        if step.adapter == "pool" and step.operation == "allocate":
            key = f"{step.id}:{run.generation}"
            got = await inventory.allocate_resource(ctx, step.params["kind"], key,
                                                    f"{run.product_order_id}/{run.order_item_id}",
                                                    value=step.params.get("value"))
            return {"request": {"kind": step.params["kind"], "key": key}, "response": got}
        if step.adapter == "pool" and step.operation == "release":
            mode = step.params.get("mode", "free")
            days = None
            if mode == "quarantine":
                kind = step.name.split(":", 1)[-1]
                days = s.msisdn_quarantine_days if kind == "msisdn" else s.ip_quarantine_days
            released = await inventory.release_resource(ctx, step.params["key"], quarantine_days=days,
                                                        retire=mode == "retire")
            return {"request": step.params, "response": {"released": released}}
        if step.operation == "activate":
            product = await self._record_activation(ctx, run, inventory)
            return {"request": {}, "response": {"productId": product["id"]}}
        if step.operation == "status":
            product = await inventory.set_product_status(ctx, run.product_id or "", step.params["status"])
            if step.params.get("changes"):  # a resume that also lifts a bar: the characteristics with the status
                product = await inventory.change_product(ctx, run.product_id or "", step.params["changes"])
            await self._complete(ctx, run, product)
            return {"request": step.params, "response": {"productId": product["id"], "status": product["status"]}}
        if step.operation == "change":
            product = await inventory.change_product(ctx, run.product_id or "", step.params.get("changes") or {})
            await self._complete(ctx, run, product)
            return {"request": step.params, "response": {"productId": product["id"]}}
        raise ValueError(f"unknown local step {step.adapter}:{step.operation}")

    async def _record_activation(self, ctx: Context, run: ItemRun, inventory: ProductInventory) -> dict[str, Any]:
        rows = (await ctx.session.execute(select(Step).where(Step.item_run_id == run.id, Step.phase == "forward",
                                                             Step.state == "done"))).scalars().all()
        allocations, subscribers = [], {}
        answers: dict[str, dict[str, Any]] = {}
        resources = []
        for st in rows:
            res = st.result or {}
            if st.adapter == "pool" and st.operation == "allocate":
                got = res.get("response") or {}
                allocations.append({"kind": got.get("kind"), "key": res["request"]["key"], "value": got.get("value")})
                chars = [{"name": k, "value": v, "valueType": "string"} for k, v in got.items()
                         if k in ("value", "iccid", "imsi", "kiRef", "model", "prefixLength") and v is not None]
                names = {"msisdn": "MSISDN", "sim": "SIM card", "ipv4": "Static IPv4 address", "ont": "ONT"}
                kind = str(got.get("kind"))
                resources.append({"name": f"{names.get(kind, kind)} {got.get('value')}",
                                  "category": got.get("kind"), "resourceCharacteristic": chars})
            elif st.adapter in ("hss", "pcrf", "aaa", "ocs"):
                subscribers[st.adapter] = (res.get("request") or {}).get(SUBSCRIBER_PARAM[st.adapter])
                answers[st.adapter] = res.get("response") or {}
        context = dict(run.context)
        services = []
        kinds_of = {"hss": ["msisdn", "sim"], "aaa": ["ont", "ipv4"]}
        for s in context.get("services") or []:
            doc: dict[str, Any] = {"name": s["name"], "serviceType": "CFS" if s.get("parent") is None else "RFS",
                                   "category": s.get("element") or "customerFacing"}
            if s.get("spec"):
                doc["serviceSpecification"] = {**s["spec"], "@type": "ServiceSpecificationRef"}
            else:
                doc["serviceSpecification"] = {"id": "unknown", "name": s["name"]}
            if s.get("element") in kinds_of:
                doc["_resources"] = kinds_of[s["element"]]
            services.append(doc)
        product = await inventory.record_subscription(ctx, dict(context.get("product") or {}), services, resources)
        run.product_id = product["id"]
        # an element that keeps the product it serves learns it now, in this transaction (online charging: the
        # line's account names its product — what billing asks to tell prepaid lines, what usage records name)
        for element, answer in sorted(answers.items()):
            recorded = getattr(self.adapters.get(element), "product_recorded", None)
            if recorded is not None:
                await recorded(ctx, answer, product)
        context |= {"allocations": allocations, "subscribers": subscribers}
        run.context = context
        await self._complete(ctx, run, product)
        return dict(product)

    async def _complete(self, ctx: Context, run: ItemRun, product: dict[str, Any]) -> None:
        await self._started(ctx, run)
        run.state = "completed"
        run.updated_at = utcnow()
        await ctx.session.flush()
        await self.provisioning.announce(ctx, run, "completed", product)

    # --- outcomes ------------------------------------------------------------------------------------------
    async def _started(self, ctx: Context, run: ItemRun) -> None:
        if not run.started:
            run.started = True
            await ctx.session.flush()
            await self.provisioning.announce(ctx, run, "started")

    async def _done(self, ctx: Context, run: ItemRun, step: Step, result: dict[str, Any]) -> None:
        step.state = "done"
        step.result = result
        step.error = None
        step.lease_until = None
        step.updated_at = utcnow()
        await ctx.session.flush()
        if run.state == "running":
            await self._started(ctx, run)
        if step.phase == "forward" and run.state == "compensating":
            # finished in flight after the item began compensating
            await self.provisioning.add_undo(ctx, run, step, after=None)
        await self.provisioning.finish_if_compensated(ctx, run)

    async def _failed(self, ctx: Context, run: ItemRun, step: Step, error: str, retryable: bool) -> None:
        step.error = error[:2000]
        step.lease_until = None
        step.updated_at = utcnow()
        if step.phase == "forward" and run.state != "running":
            # the item is already being compensated (cancelled, or another step failed): stop here
            step.state = "cancelled"
            await ctx.session.flush()
            await self.provisioning.finish_if_compensated(ctx, run)
            return
        if retryable and step.attempts < step.max_attempts:
            step.state = "pending"
            wait = self.settings.provisioning_step_backoff_seconds * (2 ** (step.attempts - 1))
            step.next_attempt_at = utcnow() + timedelta(seconds=wait)
            await ctx.session.flush()
            return
        step.state = "failed"
        await ctx.session.flush()
        if step.phase == "compensate":
            run.state = "failed"
            run.reason = f"compensation step {step.name} failed: {error} (needs an operator)"
            await ctx.session.flush()
            await self.provisioning.announce(ctx, run, "failed")
            return
        run.failed_step = step.name
        run.reason = error[:2000]
        await self._started(ctx, run)
        await self.provisioning.start_compensation(ctx, run)

    # --- loops --------------------------------------------------------------------------------------------
    async def busy(self, tenant_id: str | None = None) -> bool:
        """Whether some step of a live item is still to run (now or after its backoff)."""
        async with self.db.transaction(tenant_id, system=tenant_id is None) as session:
            n = await session.scalar(
                select(func.count()).select_from(Step).join(ItemRun, ItemRun.id == Step.item_run_id)
                .where(ItemRun.state.in_(("running", "compensating")), ItemRun.held.is_(False),
                       Step.state.in_(("pending", "running"))))
        return bool(n)

    async def run_until_idle(self, tenant_id: str | None = None, *, max_seconds: float = 60.0,
                             poll: float = 0.02) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_seconds
        while loop.time() < deadline:
            if await self.run_once() == 0:
                if not await self.busy(tenant_id):
                    return
                await asyncio.sleep(poll)
        raise TimeoutError("orchestration still busy")

    async def run(self, stop: asyncio.Event, *, poll: float = 0.2, concurrency: int = 32) -> None:
        """The worker loop: claim and run steps until ``stop`` is set."""
        while not stop.is_set():
            try:
                n = await self.run_once(concurrency)
            except Exception:
                log.exception("orchestrator claim failed")
                n = 0
            if n == 0:
                try:
                    await asyncio.wait_for(stop.wait(), poll)
                except TimeoutError:
                    pass
