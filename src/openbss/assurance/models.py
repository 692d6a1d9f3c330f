"""Service assurance's tables: TMF642 alarms (documents plus the columns deduplication needs), the operation tasks
(acknowledge, unacknowledge, clear, comment) and the problems that open trouble tickets."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Index, String, func, literal_column, text
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

    __table_args__ = (
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


class AlarmProblem(TenantScoped, Base):
    """A problem on a managed object: opened by its first critical alarm, with the one trouble ticket it raised;
    resolved when the object's last open alarm of the problem clears. At most one open problem per object
    (partial unique index), so concurrent critical alarms open one ticket."""

    __tablename__ = "alarm_problem"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    object_type: Mapped[str] = mapped_column(String(20))
    object_id: Mapped[str] = mapped_column(String(256))
    ticket_id: Mapped[str | None] = mapped_column(String(64))
    is_open: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("uq_alarm_problem_open_object", "tenant_id", "object_type", "object_id", unique=True,
              postgresql_where=text("is_open")),
    )
