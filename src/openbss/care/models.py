"""Customer care's tables: TMF621 trouble tickets and TMF683 party interactions (documents), the queues and SLA
policies supervisors configure, each ticket's SLA clock and its escalation steps."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    DateTime,
    Identity,
    Index,
    Integer,
    Interval,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
    literal_column,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from openbss.platform.db import Base, TenantScoped
from openbss.platform.tmf.resource import TmfDocument


class TroubleTicket(TmfDocument, Base):
    """A TMF621 ticket. Its queue and status are also typed columns that PostgreSQL generates from the document (no
    code keeps them in step): a queue's work list (``queue.id`` and ``status`` filters, newest first, counted) is an
    index range scan under row-level security, where the search entries of a large queue were intersected."""

    __tablename__ = "trouble_ticket"

    queue_id: Mapped[str | None] = mapped_column(String(64), Computed("(body -> 'queue') ->> 'id'", persisted=True))
    status: Mapped[str | None] = mapped_column(String(20), Computed("body ->> 'status'", persisted=True))


# a queue's tickets newest first (the work list's page), and per status (its count)
Index("ix_trouble_ticket_queue_recent", TroubleTicket.__table__.c.tenant_id, TroubleTicket.__table__.c.queue_id,
      literal_column("created_at DESC"), TroubleTicket.__table__.c.id)
Index("ix_trouble_ticket_queue_status", TroubleTicket.__table__.c.tenant_id, TroubleTicket.__table__.c.queue_id,
      TroubleTicket.__table__.c.status)


class PartyInteraction(TmfDocument, Base):
    __tablename__ = "party_interaction"


class CareQueue(TenantScoped, Base):
    """A work queue (a team) tickets are assigned to."""

    __tablename__ = "care_queue"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SlaPolicy(TenantScoped, Base):
    """First-response and resolution targets (business time on the policy's calendar) and escalation steps, for
    the tickets of a type, priority and customer segment (each None: any)."""

    __tablename__ = "care_sla_policy"
    __table_args__ = (
        Index("uq_care_sla_policy_match", "tenant_id", text("coalesce(ticket_type, '')"),
              text("coalesce(priority, '')"), text("coalesce(segment, '')"), unique=True,
              postgresql_where=text("active")),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    ticket_type: Mapped[str | None] = mapped_column(String(100))
    priority: Mapped[str | None] = mapped_column(String(50))
    segment: Mapped[str | None] = mapped_column(String(100))
    first_response_minutes: Mapped[int] = mapped_column(Integer)
    resolution_minutes: Mapped[int] = mapped_column(Integer)
    #: ``BusinessCalendar.to_json()``
    calendar: Mapped[dict[str, Any]] = mapped_column(JSONB)
    #: [{"target": "resolution", "percent": 75, "action": "notify" | "reassign" | "raisePriority", "queue": id?}]
    escalations: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class TicketSla(TenantScoped, Base):
    """A ticket's SLA clock: the policy's targets and calendar as they were when the ticket was raised, the
    business time spent paused, and the due times (computed on each status change, never on read)."""

    __tablename__ = "care_ticket_sla"

    ticket_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    policy_id: Mapped[str] = mapped_column(String(64))
    policy_name: Mapped[str] = mapped_column(String(100))
    calendar: Mapped[dict[str, Any]] = mapped_column(JSONB)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    first_response_target: Mapped[timedelta] = mapped_column(Interval)
    resolution_target: Mapped[timedelta] = mapped_column(Interval)
    paused_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: business time spent paused (pending on the customer, resolved before a reopening)
    paused: Mapped[timedelta] = mapped_column(Interval, server_default=text("interval '0'"))
    first_response_due: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolution_due: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    first_response_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    first_response_breached: Mapped[bool] = mapped_column(Boolean, server_default="false")
    resolution_breached: Mapped[bool] = mapped_column(Boolean, server_default="false")


class SlaStep(TenantScoped, Base):
    """One escalation step of one ticket (e.g. resolution at 75 %). Fired at most once: the scheduler claims due
    steps with their ticket (``FOR UPDATE SKIP LOCKED``) and records ``fired_at`` in the transaction of the
    action."""

    __tablename__ = "care_sla_step"
    __table_args__ = (
        UniqueConstraint("ticket_id", "target", "percent"),
        CheckConstraint("target IN ('firstResponse', 'resolution')", name="target"),
        CheckConstraint("outcome IS NULL OR outcome IN ('fired', 'void')", name="outcome"),
        Index("ix_care_sla_step_due", "due_at", postgresql_where=text("outcome IS NULL AND due_at IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    ticket_id: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(20))
    percent: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(20))
    queue_id: Mapped[str | None] = mapped_column(String(64))
    #: when it falls due; None while the clock is paused
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: None (waiting), 'fired', or 'void' (the target was met first, or the ticket closed)
    outcome: Mapped[str | None] = mapped_column(String(10))
    fired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AdjustmentLimit(TenantScoped, Base):
    """How much an agent may credit on a bill without a supervisor's approval: for a role, or for one agent (their
    user id; it wins over their roles' limits)."""

    __tablename__ = "care_adjustment_limit"
    __table_args__ = (
        UniqueConstraint("tenant_id", "kind", "principal"),
        CheckConstraint("kind IN ('role', 'agent')", name="kind"),
        CheckConstraint("amount >= 0", name="amount"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    principal: Mapped[str] = mapped_column(String(200))
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    currency: Mapped[str] = mapped_column(String(3))


class AgentCredit(TenantScoped, Base):
    """A credit an agent made on their own authority (a bill adjustment or a prepaid top-up within their limit):
    what they credited in the last 24 hours counts against their limit, so that a credit cannot be split into
    pieces below it."""

    __tablename__ = "care_agent_credit"
    __table_args__ = (Index("ix_care_agent_credit_agent", "tenant_id", "agent", "created_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(30))  # billAdjustment | topUp
    reference: Mapped[str] = mapped_column(String(64))  # the credit note, or the line's MSISDN
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CareApproval(TenantScoped, Base):
    """An agent's action above their limit, waiting for (or decided by) a supervisor: a bill adjustment
    (``billAdjustment``: the bill) or a prepaid top-up (``topUp``: the line's MSISDN)."""

    __tablename__ = "care_approval"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'approved', 'rejected')", name="status"),
        CheckConstraint("(kind = 'billAdjustment' AND bill_id IS NOT NULL) OR (kind = 'topUp' AND subscriber IS NOT "
                        "NULL)", name="target"),
        Index("ix_care_approval_status", "tenant_id", "status", "requested_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(10))
    bill_id: Mapped[str | None] = mapped_column(String(64))
    subscriber: Mapped[str | None] = mapped_column(String(40))
    customer_id: Mapped[str | None] = mapped_column(String(64))
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(String(200))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    requester_limit: Mapped[Decimal | None] = mapped_column(Numeric(18, 4))
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    credit_note_id: Mapped[str | None] = mapped_column(String(64))
