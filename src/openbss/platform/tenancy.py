"""Tenants: the operators (or brands) sharing one OpenBSS installation, isolated by row-level security."""

from __future__ import annotations

import re
import time
from datetime import datetime

from sqlalchemy import Boolean, DateTime, String, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from openbss.platform.db import Base, Database
from openbss.platform.errors import BadRequest, Conflict

TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


class Tenant(Base):
    """Not tenant-scoped itself: the registry of tenants, readable by the application role."""

    __tablename__ = "tenant"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="active", server_default="active")
    #: a sandbox tenant rehearses (test clocks of billing); a production tenant (the default) refuses them
    sandbox: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


def tenant_id_from_name(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:63]
    return slug


async def create_tenant(session: AsyncSession, name: str, tenant_id: str | None = None, *,
                        sandbox: bool = False) -> Tenant:
    tid = tenant_id or tenant_id_from_name(name)
    if not TENANT_ID.match(tid):
        raise BadRequest(f"tenant id '{tid}' must be 2-63 characters of a-z, 0-9 and '-'", code="INVALID_TENANT")
    if await session.get(Tenant, tid) is not None:
        raise Conflict(f"tenant '{tid}' already exists", code="TENANT_EXISTS")
    tenant = Tenant(id=tid, name=name, sandbox=sandbox)
    session.add(tenant)
    await session.flush()
    return tenant


async def ensure_tenant(session: AsyncSession, tenant_id: str, name: str) -> Tenant:
    existing = await session.get(Tenant, tenant_id)
    if existing is not None:
        return existing
    return await create_tenant(session, name, tenant_id)


class TenantDirectory:
    """Which tenants exist and are active, cached for a few seconds per process."""

    def __init__(self, db: Database, ttl_seconds: float = 10.0) -> None:
        self.db = db
        self.ttl = ttl_seconds
        self._cache: dict[str, tuple[bool, float]] = {}

    async def is_active(self, tenant_id: str) -> bool:
        hit = self._cache.get(tenant_id)
        now = time.monotonic()
        if hit and hit[1] > now:
            return hit[0]
        async with self.db.transaction(None) as session:
            status = await session.scalar(select(Tenant.status).where(Tenant.id == tenant_id))
        active = status == "active"
        self._cache[tenant_id] = (active, now + self.ttl)
        return active
