"""Tables of mediation and batch rating: registered usage files with their reconciled counts, the suspense queue,
the ownership history of numbers (guiding), the allowance consumed per billing period, and the TMF635 usage
specifications. Rated usage itself is TMF635 ``usage`` (online charging's table, written through its service).
Every table is tenant-scoped under row-level security."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Identity,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from openbss.platform.db import Base, TenantScoped
from openbss.platform.tmf.resource import TmfDocument


class UsageFile(TenantScoped, Base):
    """A usage file, registered once by (source, name, SHA-256), with its reconciled counts:
    ``received = rated + duplicate + rejected + suspended``."""

    __tablename__ = "rating_file"
    __table_args__ = (UniqueConstraint("tenant_id", "source", "name", "sha256"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(String(64))
    layout: Mapped[str] = mapped_column(String(10))
    size: Mapped[int] = mapped_column(BigInteger)
    received: Mapped[int] = mapped_column(Integer)
    rated: Mapped[int] = mapped_column(Integer)
    duplicate: Mapped[int] = mapped_column(Integer)
    rejected: Mapped[int] = mapped_column(Integer)
    suspended: Mapped[int] = mapped_column(Integer)
    #: rated amounts by currency, minor units ({"EUR": 1234})
    amounts: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    #: ``rated`` (every record has its outcome) or ``queued`` (submitted to the work queue: chunks still to rate)
    status: Mapped[str] = mapped_column(String(10), server_default="rated")
    chunks: Mapped[int] = mapped_column(Integer, server_default="0")
    chunks_done: Mapped[int] = mapped_column(Integer, server_default="0")


class FileChunk(TenantScoped, Base):
    """A work item of a file submitted to the work queue: the valid records of one partition (by subscriber), in
    event-time order, rated by whichever worker takes the chunk's message; ``done`` once its transaction
    committed (a redelivered message of a done chunk changes nothing), with what became of its records."""

    __tablename__ = "rating_file_chunk"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "file_id", "chunk"),)

    file_id: Mapped[str] = mapped_column(String(64))
    chunk: Mapped[int] = mapped_column(Integer)
    partition: Mapped[int] = mapped_column(Integer)
    #: the normalized records (emptied once done)
    records: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(10), server_default="queued")
    received: Mapped[int] = mapped_column(Integer)
    rated: Mapped[int] = mapped_column(Integer, server_default="0")
    duplicate: Mapped[int] = mapped_column(Integer, server_default="0")
    suspended: Mapped[int] = mapped_column(Integer, server_default="0")
    deliveries: Mapped[int] = mapped_column(Integer, server_default="0")
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SuspendedRecord(TenantScoped, Base):
    """A record that failed validation (``rejected``) or could not be guided or rated (``suspended``), with its
    reason; re-processed (after correction, or once the number's owner is known) or discarded."""

    __tablename__ = "rating_suspense"
    __table_args__ = (
        Index("ix_rating_suspense_pending_key", "tenant_id", "record_key", unique=True,
              postgresql_where=text("status = 'pending' AND record_key IS NOT NULL")),
        Index("ix_rating_suspense_status", "tenant_id", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    file_id: Mapped[str | None] = mapped_column(String(64))
    line: Mapped[int | None] = mapped_column(Integer)
    record_key: Mapped[str | None] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(12))  # rejected | suspended
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(12), server_default="pending")  # pending | rated | duplicate | discarded
    attempts: Mapped[int] = mapped_column(Integer, server_default="1")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class NumberAssignment(TenantScoped, Base):
    """Who used a number when: the charging account (subscription) an MSISDN belonged to from ``valid_from`` until
    ``valid_to`` (exclusive; open while current). Guiding looks the event time up here."""

    __tablename__ = "rating_number_assignment"
    __table_args__ = (Index("ix_rating_number_assignment_msisdn", "tenant_id", "msisdn", "valid_from"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    msisdn: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[str] = mapped_column(String(64))
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    valid_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ImsiAssignment(TenantScoped, Base):
    """Who used a SIM when: the charging account (subscription) an IMSI belonged to from ``valid_from`` until
    ``valid_to`` (exclusive; open while current). A record carrying an IMSI with such history is guided by it."""

    __tablename__ = "rating_imsi_assignment"
    __table_args__ = (Index("ix_rating_imsi_assignment_imsi", "tenant_id", "imsi", "valid_from"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    imsi: Mapped[str] = mapped_column(String(15))
    account_id: Mapped[str] = mapped_column(String(64))
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    valid_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RerateJob(TenantScoped, Base):
    """A re-rate job, run once by its id: the usage of a billing period (of one account, or of the accounts whose
    plan uses a tariff) rated again, with the report of the differences written."""

    __tablename__ = "rating_rerate"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "id"),)

    id: Mapped[str] = mapped_column(String(100))
    period: Mapped[str] = mapped_column(String(7))
    account_id: Mapped[str | None] = mapped_column(String(64))
    tariff_id: Mapped[str | None] = mapped_column(String(64))
    report: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AllowanceConsumption(TenantScoped, Base):
    """Allowance units consumed by batch-rated usage, per account, billing period and allowance."""

    __tablename__ = "rating_allowance"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "account_id", "period", "allowance_key"),)

    account_id: Mapped[str] = mapped_column(String(64))
    period: Mapped[str] = mapped_column(String(7))
    allowance_key: Mapped[str] = mapped_column(String(200))
    consumed: Mapped[int] = mapped_column(BigInteger)


class UsageSpecification(TmfDocument, Base):
    """TMF635 usageSpecification: a kind of usage (voice, SMS, data, roaming data, content) and its
    characteristics; every usage record references one."""

    __tablename__ = "rating_usage_specification"
