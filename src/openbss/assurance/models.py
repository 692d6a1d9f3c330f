"""Service assurance's tables: TMF642 alarms (documents plus the columns deduplication and grouping need), the
operation tasks (acknowledge, unacknowledge, clear, comment), the tenant's correlation rules and the TMF656 service
problems that group alarms and open trouble tickets."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, DateTime, Index, Integer, String, func, literal_column, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from openbss.platform.db import Base, TenantScoped
from openbss.platform.tmf.resource import TmfDocument


class Alarm(TmfDocument, Base):
    """A TMF642 alarm. ``reduction_key`` names the managed object and the problem; while the alarm is open (not
    cleared) it is unique per tenant, so a repeat of the same problem finds the open alarm instead of raising a
    second one (``INSERT ... ON CONFLICT`` on the partial unique index)."""

    __tablename__ = "alarm"
    reduction_key: Mapped[str] = mapped_column(String(512))
    is_open: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    #: the service problem the alarm is grouped into (None: none)
    problem_id: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_alarm_problem", "tenant_id", "problem_id", postgresql_where=text("is_open")),
        # the alarms of a problem (open or cleared) in the flapping window
        Index("ix_alarm_reduction_key", "tenant_id", "reduction_key", "created_at"),
        Index("ix_alarm_body", "body", postgresql_using="gin", postgresql_ops={"body": "jsonb_path_ops"}),
        Index("ix_alarm_recent", "tenant_id", literal_column("created_at DESC"), "id"),
        Index("uq_alarm_open_reduction_key", "tenant_id", "reduction_key", unique=True,
              postgresql_where=text("is_open")),
    )


class AckAlarms(TmfDocument, Base):
    __tablename__ = "alarm_ack_task"


class UnAckAlarms(TmfDocument, Base):
    __tablename__ = "alarm_unack_task"


class ClearAlarms(TmfDocument, Base):
    __tablename__ = "alarm_clear_task"


class CommentAlarms(TmfDocument, Base):
    __tablename__ = "alarm_comment_task"


class ServiceProblem(TmfDocument, Base):
    """A TMF656 service problem: alarms grouped on a root managed object (``root_object``), the one trouble
    ticket it opened, its impact. At most one open problem per root object and tenant (partial unique index), so a
    storm of alarms from one failed node, raised concurrently, makes one problem."""

    __tablename__ = "service_problem"
    root_object: Mapped[str | None] = mapped_column(String(300))
    ticket_id: Mapped[str | None] = mapped_column(String(64))
    is_open: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")

    __table_args__ = (
        Index("ix_service_problem_body", "body", postgresql_using="gin", postgresql_ops={"body": "jsonb_path_ops"}),
        Index("ix_service_problem_recent", "tenant_id", literal_column("created_at DESC"), "id"),
        Index("uq_service_problem_open_root", "tenant_id", "root_object", unique=True,
              postgresql_where=text("is_open")),
    )


class CorrelationRule(TenantScoped, Base):
    """A tenant's correlation rule (data, managed through the API): ``suppression``, ``rootCause`` or
    ``grouping``, with its parameters (``assurance/correlation.py``)."""

    __tablename__ = "correlation_rule"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    params: Mapped[dict[str, Any]] = mapped_column(JSONB)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    priority: Mapped[int] = mapped_column(Integer, default=100, server_default="100")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
