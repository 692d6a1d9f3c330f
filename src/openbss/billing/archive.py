"""The PDFs of many issued bills at once (a bill run's, or a backlog's), rendered in worker processes and stored
write-once in the object store, under the keys, with the bytes and metadata ``service.bill_pdf`` gives one bill
asked on its own (``billing/<tenant>/<bill id>.pdf``): whichever comes first, the other finds it stored.

Two steps, so that no object-store call is made inside a database transaction:

* ``documents_due(ctx, …, bill_ids)`` reads, in the caller's transaction, what the documents need — the issued
  bills among ``bill_ids`` (drafts have no document), all their lines in one query, the tenant's name once, the
  time zone of each account once;
* ``store_documents(store, due)`` then skips those already stored, renders the others (a large batch in worker
  processes, in chunks of ``document.RENDER_CHUNK``) and writes each chunk as soon as it is rendered, while the
  next ones render (a durable write-once put waits on the disk: two ``fsync`` per object on the filesystem store,
  a round trip on S3); one written meanwhile by a request for the same bill keeps its first copy (same bytes:
  rendering is deterministic).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from sqlalchemy import select

from openbss.billing import document
from openbss.billing.models import AppliedRate, CustomerBill
from openbss.billing.service import DRAFT_STATES, BillingAccounts, RatedUsageSource, cycle_of, itemized_usage
from openbss.platform.errors import DomainError
from openbss.platform.storage import ObjectExists, ObjectStore, StoredObject
from openbss.platform.tenancy import Tenant
from openbss.platform.tmf.resource import Context, ResourceService, system_context

#: object-store writes in flight at once
CONCURRENT_WRITES = 16


@dataclass(frozen=True)
class DueDocument:
    """What one bill's PDF needs: its key in the store, its metadata and the arguments of ``document.render``."""

    key: str
    metadata: dict[str, str]
    job: document.Job


async def documents_due(ctx: Context, bills: ResourceService, bill_ids: Sequence[str],
                        accounts: BillingAccounts | None = None, usage: RatedUsageSource | None = None,
                        ) -> list[DueDocument]:
    """The documents of the issued bills among ``bill_ids`` (in that order), read in five queries plus one per
    distinct account (its time zone); drafts and unknown ids are left out. With ``usage``, the usage records of
    the postpaid lines are itemized."""
    ids = list(dict.fromkeys(bill_ids))
    if not ids:
        return []
    rows = {str(r.id): r for r in (await ctx.session.execute(
        select(CustomerBill.id, CustomerBill.state, CustomerBill.number, CustomerBill.billing_account_id)
        .where(CustomerBill.id.in_(ids)))).all() if r.state not in DRAFT_STATES}
    if not rows:
        return []
    table = bills.store.table
    stmt = select(table).where(table.id.in_(list(rows)))
    owner = bills.store.owner_condition(ctx.principal)
    if owner is not None:  # customers: only their own bills
        stmt = stmt.where(owner)
    docs = {str(d["id"]): d for d in await bills.store.render_all(
        ctx, list((await ctx.session.execute(stmt)).scalars().all()))}
    lines: dict[str, list[dict[str, Any]]] = {}
    for bill_id, body in await ctx.session.execute(select(AppliedRate.bill_id, AppliedRate.body).where(
            AppliedRate.bill_id.in_(list(docs))).order_by(AppliedRate.id)):
        lines.setdefault(str(bill_id), []).append(body)
    tenant = await ctx.session.get(Tenant, ctx.principal.tenant_id)
    operator = tenant.name if tenant else ctx.principal.tenant_id
    zones: dict[str, tzinfo | None] = {}
    if accounts is not None:  # dates on the document: local dates of the account
        system = system_context(ctx.principal.tenant_id, ctx.session, ctx.base_url, "billing")
        for account_id in sorted({str(rows[b].billing_account_id) for b in docs}):
            try:
                zones[account_id] = cycle_of(await accounts.get_billing_account(system, account_id))[2]
            except DomainError:
                zones[account_id] = None
    itemized = await itemized_usage(ctx, usage, list(docs))
    out = []
    for bill_id in ids:
        if bill_id not in docs:
            continue
        row = rows[bill_id]
        out.append(DueDocument(
            key=f"billing/{ctx.principal.tenant_id}/{bill_id}.pdf",
            metadata={"bill-no": str(row.number or ""), "tenant": ctx.principal.tenant_id},
            job=(docs[bill_id], lines.get(bill_id, []), operator, zones.get(str(row.billing_account_id)),
                 itemized.get(bill_id))))
    return out


async def store_documents(store: ObjectStore, due: Sequence[DueDocument], *,
                          executor: Executor | None = None) -> list[StoredObject]:
    """Render the documents of ``due`` not stored yet and store them write-once; the stored objects of all of
    ``due``, in order. No database session is used."""
    gate = asyncio.Semaphore(CONCURRENT_WRITES)

    async def head(d: DueDocument) -> StoredObject | None:
        async with gate:
            return await store.head(d.key)

    found = await asyncio.gather(*(head(d) for d in due))
    todo = [d for d, f in zip(due, found, strict=True) if f is None]

    async def put(d: DueDocument, data: bytes) -> StoredObject:
        async with gate:
            try:
                return await store.put(d.key, data, content_type="application/pdf", metadata=d.metadata)
            except ObjectExists:  # stored meanwhile by a request for the same bill: the first copy stands
                stored = await store.head(d.key)
                assert stored is not None
                return stored

    loop = asyncio.get_running_loop()

    async def chunk(part: list[DueDocument], pool: Executor | None) -> list[StoredObject]:
        pdfs = await loop.run_in_executor(pool, document.render_chunk, [d.job for d in part])
        return await asyncio.gather(*(put(d, data) for d, data in zip(part, pdfs, strict=True)))

    if len(todo) < document.BATCH_IN_PROCESS:  # a few: rendered in a thread of this process
        parts, pool = [todo], None
    else:  # chunks rendered in worker processes, each stored as soon as it is rendered while others render
        size = document.RENDER_CHUNK
        parts, pool = [todo[i:i + size] for i in range(0, len(todo), size)], executor or document.pool()
    written = {d.key: s for part, done in zip(parts, await asyncio.gather(*(chunk(p, pool) for p in parts if p)),
                                              strict=False)
               for d, s in zip(part, done, strict=True)}
    return [f if f is not None else written[d.key] for d, f in zip(due, found, strict=True)]
