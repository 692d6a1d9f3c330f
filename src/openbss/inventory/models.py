"""Tables of the inventory domain: the TMF documents of products, services and resources, and the pool items
(MSISDNs, SIM cards, IPv4 addresses, ONTs) that orders allocate."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, Identity, Index, String, UniqueConstraint, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from openbss.platform.db import Base, TenantScoped
from openbss.platform.tmf.resource import TmfDocument


class Product(TmfDocument, Base):
    __tablename__ = "inventory_product"


class Service(TmfDocument, Base):
    __tablename__ = "inventory_service"


class Resource(TmfDocument, Base):
    __tablename__ = "inventory_resource"


class PoolItem(TenantScoped, Base):
    """One allocatable resource. ``status``: available, held (golden numbers, allocated only on request),
    inUse, quarantined (released; available again after ``quarantine_until``), retired."""

    __tablename__ = "inventory_pool_item"
    __table_args__ = (
        UniqueConstraint("tenant_id", "kind", "value"),
        UniqueConstraint("tenant_id", "allocation_key"),
        Index("ix_inventory_pool_item_free", "tenant_id", "kind", "pool", "status", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # msisdn | sim | ipv4 | ont
    pool: Mapped[str] = mapped_column(String(100), server_default="default")
    value: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), server_default="available")
    golden: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    allocation_key: Mapped[str | None] = mapped_column(String(200))
    assigned_to: Mapped[str | None] = mapped_column(String(200))
    quarantine_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
