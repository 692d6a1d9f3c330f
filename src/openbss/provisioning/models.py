"""Tables of provisioning: TMF641 service orders, the runs of order items and their durable steps, the simulated
network elements (their state and every call they received)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Identity,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from openbss.platform.db import Base, TenantScoped
from openbss.platform.tmf.resource import TmfDocument


class ServiceOrder(TmfDocument, Base):
    __tablename__ = "provisioning_service_order"


class ItemRun(TenantScoped, Base):
    """The orchestration of one product order item. ``state``: running, compensating, completed, failed, cancelled.
    ``generation`` changes when an operator retries, so the retried calls carry new idempotency keys."""

    __tablename__ = "provisioning_item_run"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    product_order_id: Mapped[str] = mapped_column(String(64), index=True)
    order_item_id: Mapped[str] = mapped_column(String(64))
    service_order_id: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(20))
    product_id: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(20), server_default="running", index=True)
    held: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    started: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    cancel_requested: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    generation: Mapped[int] = mapped_column(Integer, server_default="1")
    context: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    failed_step: Mapped[str | None] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Step(TenantScoped, Base):
    """One durable unit of work: claimed with ``FOR UPDATE SKIP LOCKED`` (a lease), executed outside any
    transaction, then recorded. ``phase``: forward or compensate. ``state``: pending, running, done, failed,
    cancelled."""

    __tablename__ = "provisioning_step"
    __table_args__ = (
        Index("ix_provisioning_step_ready", "state", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    item_run_id: Mapped[str] = mapped_column(String(64), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    phase: Mapped[str] = mapped_column(String(20), server_default="forward")
    adapter: Mapped[str] = mapped_column(String(30))
    operation: Mapped[str] = mapped_column(String(60))
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    depends_on: Mapped[list[str]] = mapped_column(ARRAY(String(64)), server_default="{}")
    undoes: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(20), server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    max_attempts: Mapped[int] = mapped_column(Integer, server_default="4")
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SimulatorConfig(TenantScoped, Base):
    """Fault injection of one simulated network element for a tenant (overrides the settings' default)."""

    __tablename__ = "provisioning_simulator"

    __table_args__ = (PrimaryKeyConstraint("tenant_id", "element"),)

    element: Mapped[str] = mapped_column(String(20))
    config: Mapped[dict[str, Any]] = mapped_column(JSONB)


class NetworkCall(TenantScoped, Base):
    """Every call a simulated element received. ``outcome``: applied, replayed (same idempotency key: answered from
    the first call, nothing applied twice), rejected, error, timeout."""

    __tablename__ = "provisioning_network_call"
    __table_args__ = (
        Index("uq_provisioning_network_call_applied", "tenant_id", "element", "idempotency_key", unique=True,
              postgresql_where=text("outcome = 'applied'")),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    element: Mapped[str] = mapped_column(String(20))
    operation: Mapped[str] = mapped_column(String(60))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    subscriber: Mapped[str | None] = mapped_column(String(100))
    request: Mapped[dict[str, Any]] = mapped_column(JSONB)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    outcome: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ElementState(TenantScoped, Base):
    """What a simulated element holds for one subscriber (HSS profile, PCRF policy, RADIUS profile, OCS account)."""

    __tablename__ = "provisioning_element_state"

    __table_args__ = (PrimaryKeyConstraint("tenant_id", "element", "subscriber"),)

    element: Mapped[str] = mapped_column(String(20))
    subscriber: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20))
    profile: Mapped[dict[str, Any]] = mapped_column(JSONB)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
