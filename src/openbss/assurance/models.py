"""Service assurance's tables: TMF642 alarms (documents plus the columns deduplication and grouping need), the
operation tasks (acknowledge, unacknowledge, clear, comment), the tenant's correlation rules and the TMF656 service
problems that group alarms and open trouble tickets."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Index,
    Integer,
    Numeric,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
    func,
    literal_column,
    text,
)
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


class ProblemAcknowledgement(TmfDocument, Base):
    __tablename__ = "problem_ack_task"


class ProblemUnacknowledgement(TmfDocument, Base):
    __tablename__ = "problem_unack_task"


class ProblemGroup(TmfDocument, Base):
    __tablename__ = "problem_group_task"


class ProblemUngroup(TmfDocument, Base):
    __tablename__ = "problem_ungroup_task"


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


# --- TMF628 performance management -------------------------------------------------------------------------------
class PerformanceIndicatorSpecification(TmfDocument, Base):
    """A TMF628 performance indicator (KPI) specification. ``name`` is the KPI's key in the measurements: unique
    per tenant."""

    __tablename__ = "performance_indicator_spec"
    name: Mapped[str] = mapped_column(String(200))

    __table_args__ = (
        Index("ix_performance_indicator_spec_body", "body", postgresql_using="gin",
              postgresql_ops={"body": "jsonb_path_ops"}),
        Index("ix_performance_indicator_spec_recent", "tenant_id", literal_column("created_at DESC"), "id"),
        Index("uq_performance_indicator_spec_name", "tenant_id", "name", unique=True),
    )


class PerformanceIndicatorGroupSpecification(TmfDocument, Base):
    __tablename__ = "performance_indicator_group_spec"


class MeasurementCollectionJob(TmfDocument, Base):
    """A TMF628 measurement collection job. ``next_run_at`` is when its next SNMP collection is due (None: not
    polled — locked, finished, or a job that only receives pushed measurements)."""

    __tablename__ = "measurement_collection_job"
    next_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_measurement_collection_job_body", "body", postgresql_using="gin",
              postgresql_ops={"body": "jsonb_path_ops"}),
        Index("ix_measurement_collection_job_recent", "tenant_id", literal_column("created_at DESC"), "id"),
        Index("ix_measurement_collection_job_due", "tenant_id", "next_run_at",
              postgresql_where=text("next_run_at IS NOT NULL")),
    )


class OnDemandCollection(TmfDocument, Base):
    """A TMF628 on-demand (one-off) collection. ``next_run_at`` is when it is due (None once taken, or locked)."""

    __tablename__ = "on_demand_collection"
    next_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_on_demand_collection_body", "body", postgresql_using="gin",
              postgresql_ops={"body": "jsonb_path_ops"}),
        Index("ix_on_demand_collection_recent", "tenant_id", literal_column("created_at DESC"), "id"),
        Index("ix_on_demand_collection_due", "tenant_id", "next_run_at",
              postgresql_where=text("next_run_at IS NOT NULL")),
    )


class PerformanceTrackingRecord(TmfDocument, Base):
    """A TMF628 tracking record: one collection (or failure) of a collection job or an on-demand collection."""

    __tablename__ = "performance_tracking_record"


class ServiceProblemEventRecord(TmfDocument, Base):
    """A TMF656 service problem event record: an event announced for a service problem."""

    __tablename__ = "service_problem_event_record"


class KpiSample(TenantScoped, Base):
    """One measurement of a KPI on a managed object, as collected or pushed (a cumulative counter's increase over
    the collection interval). Range-partitioned by day on ``observed_at`` (``kpi_sample_pYYYYMMDD``, created ahead
    by ``assurance_kpi_partition``; old days dropped whole by the retention); a repeat of a measurement (same
    object, indicator and time) is ignored."""

    __tablename__ = "kpi_sample"
    object_id: Mapped[str] = mapped_column(String(300))
    indicator: Mapped[str] = mapped_column(String(200))
    observed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    value: Mapped[Decimal] = mapped_column(Numeric(30, 6))
    job_id: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "object_id", "indicator", "observed_at"),
        {"postgresql_partition_by": "RANGE (observed_at)"},
    )


class KpiRollup(TenantScoped, Base):
    """The aggregate of a KPI on an object over one bucket: ``5min`` (from the samples, as they arrive), ``hour``
    (from the 5-minute buckets) and ``day`` (from the hours, UTC days)."""

    __tablename__ = "kpi_rollup"
    object_id: Mapped[str] = mapped_column(String(300))
    indicator: Mapped[str] = mapped_column(String(200))
    granularity: Mapped[str] = mapped_column(String(8))
    bucket: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    samples: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[Decimal] = mapped_column(Numeric(38, 6))
    minimum: Mapped[Decimal] = mapped_column(Numeric(30, 6))
    maximum: Mapped[Decimal] = mapped_column(Numeric(30, 6))

    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "object_id", "indicator", "granularity", "bucket"),
        Index("ix_kpi_rollup_age", "granularity", "bucket"),
    )


class KpiCounter(TenantScoped, Base):
    """The last reading of a cumulative SNMP counter by a collection job: the next reading's increase is measured
    from it (wrapping at the counter's width)."""

    __tablename__ = "kpi_counter"
    job_id: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str] = mapped_column(String(300))
    indicator: Mapped[str] = mapped_column(String(200))
    reading: Mapped[Decimal] = mapped_column(Numeric(30, 0))
    read_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (PrimaryKeyConstraint("tenant_id", "job_id", "object_id", "indicator"),)


# --- TMF649 thresholds -------------------------------------------------------------------------------------------
class ThresholdRule(TmfDocument, Base):
    __tablename__ = "threshold_rule"


class Threshold(TmfDocument, Base):
    __tablename__ = "threshold"


class ThresholdJob(TmfDocument, Base):
    __tablename__ = "threshold_job"


class ThresholdState(TenantScoped, Base):
    """Where a threshold job's rule stands on one object: whether its alarm is raised, the crossings counted in
    the rule's tolerance window, the last value evaluated."""

    __tablename__ = "threshold_state"
    job_id: Mapped[str] = mapped_column(String(64))
    rule_id: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str] = mapped_column(String(300))
    raised: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    crossings: Mapped[list[Any]] = mapped_column(JSONB, default=list, server_default=text("'[]'::jsonb"))
    last_value: Mapped[Decimal | None] = mapped_column(Numeric(30, 6))
    last_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (PrimaryKeyConstraint("tenant_id", "job_id", "rule_id", "object_id"),)


# --- SLA management ----------------------------------------------------------------------------------------------
class Sla(TenantScoped, Base):
    """An SLA definition attached to a product offering (``assurance/sla.py``): objectives, period, credit."""

    __tablename__ = "sla"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    offering_id: Mapped[str] = mapped_column(String(64))
    body: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SlaEvaluation(TenantScoped, Base):
    """The evaluation of one period of an SLA for one product: what was measured, which objectives were missed,
    the credit. Unique per SLA, product and period: a period is evaluated, and credited, once."""

    __tablename__ = "sla_evaluation"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    sla_id: Mapped[str] = mapped_column(String(64))
    product_id: Mapped[str] = mapped_column(String(64))
    period_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    customer_id: Mapped[str | None] = mapped_column(String(64))
    violated: Mapped[bool] = mapped_column(Boolean)
    body: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        UniqueConstraint("tenant_id", "sla_id", "product_id", "period_start", name="uq_sla_evaluation_period"),
        Index("ix_sla_evaluation_customer", "tenant_id", "customer_id", "period_start"),
    )
