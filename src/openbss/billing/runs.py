"""Bill runs as jobs split into partitions that workers claim.

``start_run`` lists the tenant's billing accounts into partitions of ``size`` accounts. A worker claims a pending
partition with ``SELECT … FOR UPDATE SKIP LOCKED`` and bills its accounts **in the transaction holding that lock**
(set-based: ``BillingService.bill_accounts``): their bills written, and those due issued (a new bill whose grace
period is over is written once, issued: numbering takes the series' counter once for all of them, row-locked until
that commit), marking the partition done in the same commit. The lock is the lease: a worker killed (even
``kill -9``) in the middle of a partition loses its connection, PostgreSQL rolls its transaction back (no bill of
that partition stays, no number is taken) and releases the lock, and the next worker claims the partition again.
The unique constraints (one line per charge and period, one bill per account and cycle date) hold whatever
happens. An account that fails is parked in the partition's report with its reason and the run goes on.

Given the documents' store, a worker then renders the PDFs of the bills it issued (in worker processes for a
large partition) and stores them write-once, after the issuing transaction (no storage call inside one): the
same keys and bytes as a PDF asked for on its own. A worker that stops in between leaves those bills' PDFs to be
rendered on their first request; a document that cannot be rendered or stored is logged and does not stop the run.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from openbss.billing.archive import documents_due, store_documents
from openbss.billing.errors import InvalidBilling
from openbss.billing.models import BillRun, BillRunPartition, CustomerBill
from openbss.billing.service import BillingService, RunReport
from openbss.platform.db import Database, utcnow
from openbss.platform.errors import NotFound
from openbss.platform.storage import ObjectStore
from openbss.platform.tmf.resource import Context, system_context

log = logging.getLogger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def start_run(ctx: Context, billing: BillingService, as_of: date, *, finalize: bool | None = None,
                    size: int = 500) -> dict[str, Any]:
    """Create a run over every billing account of the tenant, in partitions of ``size`` accounts."""
    if not 1 <= size <= 10_000:
        raise InvalidBilling("'partitionSize' must be between 1 and 10000 accounts")
    run_id = str(uuid.uuid4())
    ids: list[str] = []
    after = ""
    while page := await billing.accounts.billing_account_ids(ctx, after=after):
        ids += page
        after = page[-1]
    parts = [ids[i:i + size] for i in range(0, len(ids), size)]
    ctx.session.add(BillRun(id=run_id, as_of=as_of, finalize=finalize, partitions=len(parts), accounts=len(ids)))
    await ctx.session.flush()
    ctx.session.add_all([BillRunPartition(run_id=run_id, part=i, account_ids=p) for i, p in enumerate(parts)])
    await ctx.session.flush()
    return await run_status(ctx, run_id)


async def work_run(db: Database, tenant_id: str, base_url: str, billing: BillingService, run_id: str | None = None,
                   *, worker: str | None = None,
                   after_account: Callable[[str], Awaitable[None]] | None = None,
                   documents: ObjectStore | None = None) -> int:
    """Claim and bill partitions (of ``run_id``, or of any run of the tenant) until none is pending; returns how
    many partitions this worker completed.

    A partition is claimed with ``FOR UPDATE SKIP LOCKED`` and worked in the transaction holding that lock, which
    marks it ``done``: its accounts' bills are written, and its bills due (its accounts' drafts ``new`` dated on
    or before the run's date whose grace period is over, or all of them when the run finalizes, none when it
    does not) issued, numbered in the order of their bill date, account and id
    (``BillingService.bill_accounts(partition=True)``). A new bill due is written once, issued; the series'
    number counters are taken after the lines are written, and stay row-locked until the commit (numbers are
    gapless; another worker issuing meanwhile waits that long). With ``documents``, their PDFs are then rendered
    and stored. A partition left ``billed`` (drafts written, not issued, by a worker of an earlier version) is
    issued at the end (``_issue``)."""
    done = 0
    name = worker or worker_name()
    while True:
        async with db.transaction(tenant_id) as session:
            stmt = select(BillRunPartition).where(BillRunPartition.state == "pending")
            if run_id is not None:
                stmt = stmt.where(BillRunPartition.run_id == run_id)
            part = (await session.execute(stmt.order_by(BillRunPartition.run_id, BillRunPartition.part).limit(1)
                                          .with_for_update(skip_locked=True))).scalars().first()
            if part is None:
                break
            run = await session.get(BillRun, part.run_id)
            assert run is not None
            ctx = system_context(tenant_id, session, base_url, "billing")
            report = RunReport(run.as_of)
            issued = await billing.bill_accounts(ctx, list(part.account_ids), run.as_of, finalize=run.finalize,
                                                 report=report, after_account=after_account, partition=True)
            part.state = "done"
            part.worker = name
            part.finished_at = utcnow()
            part.report = {k: v for k, v in report.as_dict().items() if k != "asOf"}
        await _documents(db, tenant_id, base_url, billing, documents, issued)
        done += 1
    # partitions billed by a worker that stopped before issuing them
    async with db.transaction(tenant_id) as session:
        billed = select(BillRunPartition.run_id, BillRunPartition.part).where(BillRunPartition.state == "billed")
        if run_id is not None:
            billed = billed.where(BillRunPartition.run_id == run_id)
        left = [(str(r[0]), int(r[1])) for r in await session.execute(billed)]
    for r, p in left:
        await _documents(db, tenant_id, base_url, billing, documents, await _issue(db, tenant_id, base_url, billing,
                                                                                   r, p))
    return done


async def _documents(db: Database, tenant_id: str, base_url: str, billing: BillingService,
                     documents: ObjectStore | None, bill_ids: list[str]) -> None:
    """The PDFs of the bills just issued, read in one transaction, rendered and stored after it."""
    if documents is None or not bill_ids:
        return
    try:
        async with db.transaction(tenant_id) as session:
            due = await documents_due(system_context(tenant_id, session, base_url, "billing"), billing.bills,
                                      bill_ids, billing.accounts, billing.usage)
        await store_documents(documents, due)
    except Exception:  # the bills stand; their PDFs are rendered on first request
        log.exception("bill documents of tenant %s not stored (%d bills): rendered on first request", tenant_id,
                      len(bill_ids))


async def _issue(db: Database, tenant_id: str, base_url: str, billing: BillingService, run_id: str,
                 part_no: int) -> list[str]:
    """Finalize the drafts of a billed partition that are due, in one transaction that marks it done (any number
    of workers may try at once: drafts locked by another are skipped, issued ones are not touched). Each series'
    number counter is taken once for the partition's drafts and row-locked until the commit: numbers stay
    gapless, and another worker issuing meanwhile waits that long only. Returns the ids of the bills issued."""
    async with db.transaction(tenant_id) as session:
        part = await session.get(BillRunPartition, (run_id, part_no), with_for_update=True)
        run = await session.get(BillRun, run_id)
        assert run is not None and part is not None
        as_of, force, accounts = run.as_of, run.finalize, list(part.account_ids)
        ctx = system_context(tenant_id, session, base_url, "billing")
        settings = await billing.tenant_settings(ctx)
        drafts = list(await session.execute(
            select(CustomerBill.id, CustomerBill.bill_date).where(CustomerBill.billing_account_id.in_(accounts),
                                                                 CustomerBill.state == "new",
                                                                 CustomerBill.bill_date <= as_of)
            .order_by(CustomerBill.bill_date, CustomerBill.billing_account_id, CustomerBill.id)
            .with_for_update(skip_locked=True)))
        due = [bill_id for bill_id, bill_date in drafts
               if not (force is False or (force is None and as_of < bill_date + timedelta(days=settings.grace_days)))]
        issued = await billing.finalize_many(ctx, due)
        if part.state == "billed":
            part.state = "done"
            part.finished_at = utcnow()
        part.report = {**(part.report or {}), "finalized": int((part.report or {}).get("finalized", 0))
                       + len(issued)}
    return list(issued)


async def run_status(ctx: Context, run_id: str) -> dict[str, Any]:
    run = await ctx.session.get(BillRun, run_id)
    if run is None:
        raise NotFound(f"bill run '{run_id}' not found", code="NOT_FOUND")
    parts = (await ctx.session.execute(select(BillRunPartition).where(BillRunPartition.run_id == run_id)
                                       .order_by(BillRunPartition.part))).scalars().all()
    totals: dict[str, Decimal] = {}
    counts = {"billed": 0, "finalized": 0, "skipped": 0}
    failed: list[dict[str, Any]] = []
    for p in parts:
        if p.report is None:
            continue
        for k in counts:
            counts[k] += int(p.report.get(k, 0))
        failed += p.report.get("failed", [])
        for t in p.report.get("totals", []):
            totals[t["unit"]] = totals.get(t["unit"], Decimal(0)) + Decimal(str(t["value"]))
    finished = sum(1 for p in parts if p.state == "done")
    accounts_done = sum(len(p.account_ids) for p in parts if p.state in ("billed", "done"))
    billed = sum(1 for p in parts if p.state in ("billed", "done"))
    return {"id": run_id, "asOf": run.as_of.isoformat(), "finalize": run.finalize, "accounts": run.accounts,
            "accountsDone": accounts_done, "partitions": run.partitions, "partitionsBilled": billed,
            "partitionsDone": finished,
            "state": "done" if finished == len(parts) else "inProgress", **counts, "failed": failed,
            "totals": [{"unit": u, "value": v} for u, v in sorted(totals.items())]}


async def pending_runs(db: Database) -> list[tuple[str, str]]:
    """(tenant, run) of every run with a pending partition, across tenants (system scope)."""
    async with db.transaction(None, system=True) as session:
        rows = await session.execute(select(BillRunPartition.tenant_id, BillRunPartition.run_id)
                                     .where(BillRunPartition.state == "pending").distinct())
        return [(r[0], r[1]) for r in rows]


async def billing_loop(db: Database, base_url: str, billing: BillingService, stop: asyncio.Event,
                       poll_seconds: float = 2.0, documents: ObjectStore | None = None) -> None:
    """The worker loop: work the pending partitions of every tenant's runs, then wait."""
    worker = worker_name()
    while not stop.is_set():
        for tenant_id, run_id in await pending_runs(db):
            await work_run(db, tenant_id, base_url, billing, run_id, worker=worker, documents=documents)
        try:
            await asyncio.wait_for(stop.wait(), poll_seconds)
        except TimeoutError:
            pass
