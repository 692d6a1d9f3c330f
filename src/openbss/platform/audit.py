"""The audit trail: who changed what, when, through which request. Personal data is masked.

The TMF kit records every create, update and delete of a resource (and named state changes) in the same
transaction as the change. Administrators list the trail per resource at ``/audit/v1/auditRecord``.
"""
# No ``from __future__ import annotations``: FastAPI reads the handler's annotations at runtime.

from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import BigInteger, DateTime, Identity, Index, String, func, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from openbss.platform.auth import Principal
from openbss.platform.db import MAX_OFFSET, Base, TenantScoped, format_datetime, insert_rows, json_dumps
from openbss.platform.errors import Forbidden
from openbss.platform.observability import request_id_var
from openbss.platform.runtime import authenticate, runtime

MASK = "***"


class AuditRecord(TenantScoped, Base):
    __tablename__ = "audit_record"
    __table_args__ = (Index("ix_audit_record_resource", "resource_type", "resource_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    resource_type: Mapped[str] = mapped_column(String(100))
    resource_id: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(50))
    actor: Mapped[str] = mapped_column(String(200))
    roles: Mapped[list[str]] = mapped_column(JSONB)
    request_id: Mapped[str | None] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    changes: Mapped[dict[str, Any]] = mapped_column(JSONB)


def diff(before: dict[str, Any] | None, after: dict[str, Any] | None,
         is_personal: Callable[[str], bool] = lambda _: False) -> dict[str, Any]:
    """Changed top-level attributes as {attribute: {"old": ..., "new": ...}}; personal values masked."""
    before = before or {}
    after = after or {}
    out: dict[str, Any] = {}
    for key in sorted(set(before) | set(after)):
        if key in ("href", "lastUpdate"):
            continue
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if is_personal(key):
            out[key] = {"old": MASK if old is not None else None, "new": MASK if new is not None else None}
        else:
            out[key] = {"old": old, "new": new}
    return out


async def record(session: AsyncSession, principal: Principal, *, resource_type: str, resource_id: str,
                 action: str, changes: dict[str, Any]) -> None:
    session.add(AuditRecord(
        resource_type=resource_type, resource_id=resource_id, action=action, actor=principal.subject,
        roles=list(principal.roles), request_id=request_id_var.get(), changes=changes,
    ))


async def record_many(session: AsyncSession, principal: Principal, *, resource_type: str,
                      records: list[tuple[str, str, dict[str, Any]]]) -> None:
    """``record`` for many resources of one type at once (``(resource_id, action, changes)`` each): one
    multi-row insert per batch."""
    rows = [{"resource_type": resource_type, "resource_id": resource_id,
             "action": action, "actor": principal.subject, "roles": list(principal.roles),
             "request_id": request_id_var.get(), "changes": changes} for resource_id, action, changes in records]
    await insert_rows(session, AuditRecord, rows)


def render(rec: AuditRecord) -> dict[str, Any]:
    return {
        "id": str(rec.id), "resourceType": rec.resource_type, "resourceId": rec.resource_id, "action": rec.action,
        "actor": rec.actor, "roles": rec.roles, "requestId": rec.request_id, "at": format_datetime(rec.at),
        "changes": rec.changes,
    }


audit_router = APIRouter(prefix="/audit/v1", tags=["Audit trail"])


@audit_router.get("/auditRecord", summary="The audit trail of a resource (administrators)")
async def list_audit(
    request: Request,
    resourceType: str = Query(..., max_length=100),
    resourceId: str = Query(..., max_length=100),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    limit: int = Query(100, ge=1, le=1000),
    principal: Principal = Depends(authenticate),
) -> Response:
    if "admin" not in principal.roles:
        raise Forbidden("only administrators can read the audit trail", code="ADMIN_ONLY")
    rt = runtime(request)
    async with rt.db.transaction(principal.tenant_id) as session:
        base = select(AuditRecord).where(AuditRecord.resource_type == resourceType,
                                         AuditRecord.resource_id == resourceId)
        total = await session.scalar(select(func.count()).select_from(base.subquery())) or 0
        rows = (await session.execute(base.order_by(AuditRecord.id).offset(offset).limit(limit))).scalars().all()
        items = [render(r) for r in rows]
    return Response(json_dumps(items), media_type="application/json",
                    headers={"X-Total-Count": str(total), "X-Result-Count": str(len(items))})
