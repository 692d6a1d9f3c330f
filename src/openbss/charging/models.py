"""Tables of online charging.

The hot columns (``remaining``, ``reserved``, holds, cumulative session counters) are plain integers updated by
the credit-control path; TMF654/TMF635 documents (``body``) hold only what does not change on every request, and
the live values are overlaid when a document is rendered (see ``codecs.py``).

Integer units everywhere: money in minor units of the account currency, data in bytes, voice in seconds, SMS as a
count. Every table is tenant-scoped under row-level security.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from openbss.platform.db import TENANT_GUC, Base, TenantScoped
from openbss.platform.tmf.resource import TmfDocument


class HotPathTenantScoped:
    """``TenantScoped`` without the index on ``tenant_id``, for tables the credit-control path reaches only by a
    more selective key (session id, account, session): with a tenant index available, generic plans intersect it
    with the selective index and read every row of the tenant (measured: 0.3 ms per request, growing with the
    tenant). Row-level security is the same (``tenant_rls_sql`` in the migration)."""

    @declared_attr
    def tenant_id(cls) -> Mapped[str]:
        return mapped_column(String(63), ForeignKey("tenant.id"),
                             server_default=text(f"current_setting('{TENANT_GUC}', true)"))


class ChargingAccount(TenantScoped, Base):
    """The OCS account of one subscription (created at activation): who it is, how it pays, how it is rated."""

    __tablename__ = "charging_account"
    # the lookup column first: the credit-control path finds accounts by subscriber (RLS adds the tenant)
    __table_args__ = (UniqueConstraint("subscriber", "tenant_id"), {"postgresql_with": {"fillfactor": "80"}})

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    subscriber: Mapped[str] = mapped_column(String(32))  # E.164 digits of the MSISDN
    product_id: Mapped[str | None] = mapped_column(String(64), index=True)
    offering_id: Mapped[str | None] = mapped_column(String(64))
    billing_account_id: Mapped[str | None] = mapped_column(String(64), index=True)
    party_id: Mapped[str | None] = mapped_column(String(64), index=True)  # a customer's lines (self-care)
    #: what the party is (Individual or Organization): its buckets and usage records refer to it so
    party_type: Mapped[str] = mapped_column(String(20), server_default="Individual")
    payment_type: Mapped[str] = mapped_column(String(10))  # prepaid | postpaid
    currency: Mapped[str] = mapped_column(String(3))
    time_zone: Mapped[str] = mapped_column(String(64), server_default="UTC")
    status: Mapped[str] = mapped_column(String(20), server_default="active")
    #: services barred while the account stays active (a partial bar: ``outgoingVoice``, ``data``, ... — see
    #: ``service.barring_code``); NULL: nothing barred
    barred: Mapped[list[str] | None] = mapped_column(ARRAY(String(20)))
    plan: Mapped[dict[str, Any]] = mapped_column(JSONB)  # usage type -> rate (see service.compile_plan)
    quota_validity_seconds: Mapped[int] = mapped_column(Integer, server_default="300")
    low_balance_minor: Mapped[int] = mapped_column(BigInteger, server_default="0")
    # bumped by every change of the account's balances: the optimistic credit-control path writes only if the
    # version it decided on is still current
    version: Mapped[int] = mapped_column(BigInteger, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Bucket(TmfDocument, Base):
    """TMF654 bucket: a quantity of money, bytes, seconds or messages, with validity, priority and rollover."""

    __tablename__ = "charging_bucket"

    account_id: Mapped[str] = mapped_column(ForeignKey("charging_account.id"), index=True)
    unit: Mapped[str] = mapped_column(String(10))  # money | data | voice | sms
    remaining: Mapped[int] = mapped_column(BigInteger)
    reserved: Mapped[int] = mapped_column(BigInteger, server_default="0")
    initial: Mapped[int] = mapped_column(BigInteger)
    lower_limit: Mapped[int] = mapped_column(BigInteger, server_default="0")  # -credit limit for postpaid money
    valid_from: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    valid_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    priority: Mapped[int] = mapped_column(Integer, server_default="100")  # lower is consumed first
    source: Mapped[str] = mapped_column(String(20))  # main | allowance | rollover | topup | adjustment
    source_key: Mapped[str | None] = mapped_column(String(200))
    zones: Mapped[list[str] | None] = mapped_column(JSONB)  # destination zones a bucket pays for (None: all)
    services: Mapped[list[str] | None] = mapped_column(JSONB)  # usage types a bucket pays for (None: all)
    bands: Mapped[list[str] | None] = mapped_column(JSONB)  # tariff time bands a bucket pays in (None: all)
    rollover_periods: Mapped[int] = mapped_column(Integer, server_default="0")
    threshold_level: Mapped[int] = mapped_column(SmallInteger, server_default="0")  # 0, 80, 100 notified

    # fillfactor: the balance columns change on every request; room on the page keeps those updates HOT (no new
    # index entries, no dead index entries to wade through before the next vacuum)
    __table_args__ = (
        UniqueConstraint("account_id", "source_key"),
        Index("ix_charging_bucket_body", "body", postgresql_using="gin", postgresql_ops={"body": "jsonb_path_ops"}),
        {"postgresql_with": {"fillfactor": "70"}},
    )


class ChargingSession(HotPathTenantScoped, Base):
    """A credit-control session (Diameter Gy/Ro Session-Id)."""

    __tablename__ = "charging_session"
    __table_args__ = (UniqueConstraint("session_id", "tenant_id"), {"postgresql_with": {"fillfactor": "70"}})

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    session_id: Mapped[str] = mapped_column(String(255))
    account_id: Mapped[str] = mapped_column(ForeignKey("charging_account.id"), index=True)
    state: Mapped[str] = mapped_column(String(12))  # open | closed | expired
    last_request_number: Mapped[int] = mapped_column(Integer)
    service_context: Mapped[str] = mapped_column(String(64))
    info: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Reservation(HotPathTenantScoped, Base):
    """Units held for one rating group of a session (or a TMF654 reserveBalance) until used, released or expired."""

    __tablename__ = "charging_reservation"
    # no index on expires_at: it changes on every UPDATE request, and an indexed column would make every such
    # update a non-HOT one; the expiry sweep reads the (few) open reservations through the partial index
    __table_args__ = (
        Index("ix_charging_reservation_open", "account_id", postgresql_where="state = 'open'"),
        UniqueConstraint("session_pk", "rating_group"),
        {"postgresql_with": {"fillfactor": "70"}},
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("charging_account.id"))
    session_pk: Mapped[int | None] = mapped_column(ForeignKey("charging_session.id"))
    rating_group: Mapped[int | None] = mapped_column(BigInteger)
    usage_type: Mapped[str] = mapped_column(String(10))
    state: Mapped[str] = mapped_column(String(12))  # open | closed | expired
    holds: Mapped[dict[str, int]] = mapped_column(JSONB)  # bucket id -> units held in that bucket
    granted: Mapped[int] = mapped_column(BigInteger, server_default="0")
    used_units: Mapped[int] = mapped_column(BigInteger, server_default="0")  # cumulative reported
    allowance_units: Mapped[int] = mapped_column(BigInteger, server_default="0")  # cumulative from allowances
    money_units: Mapped[int] = mapped_column(BigInteger, server_default="0")  # cumulative rated against money
    rate: Mapped[dict[str, Any]] = mapped_column(JSONB)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ChargingRequest(HotPathTenantScoped, Base):
    """The answer to every processed credit-control request: a repeated request gets it again, charged once."""

    __tablename__ = "charging_request"
    __table_args__ = (PrimaryKeyConstraint("session_id", "request_number", "tenant_id"),)

    session_id: Mapped[str] = mapped_column(String(255))
    request_number: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Usage(TmfDocument, Base):
    """TMF635 usage: one rated record per committed debit (dedup key: session, request number, rating group).

    Unlike other TMF documents, the body has no GIN index: this is the hottest insert of the platform (one row per
    charged request) and a GIN entry per attribute measurably slows it; usage is read by account and date (billing,
    self-care), and attribute filters of the TMF635 API scan the tenant's rows.

    The table is **partitioned by month of ``usage_date``** (the usage's event time; ``charging_usage_YYYYMM``
    partitions, created ahead and dropped after the retention by ``openbss.charging.partitions``, plus a default
    partition so that no write is ever refused): the primary key and the unique key include ``usage_date``, as
    PostgreSQL requires of a partitioned table. The partitions are not in the models (migrations/env.py)."""

    __tablename__ = "charging_usage"

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        return (PrimaryKeyConstraint("id", "usage_date"),
                UniqueConstraint("session_id", "request_number", "rating_group", "tenant_id", "usage_date"),
                Index("ix_charging_usage_account_date", "account_id", "usage_date"),
                {"postgresql_partition_by": "RANGE (usage_date)"})

    account_id: Mapped[str] = mapped_column(ForeignKey("charging_account.id"))
    session_id: Mapped[str] = mapped_column(String(255))
    request_number: Mapped[int] = mapped_column(Integer)
    rating_group: Mapped[int] = mapped_column(BigInteger)
    usage_type: Mapped[str] = mapped_column(String(10))
    units: Mapped[int] = mapped_column(BigInteger)  # reported by the network
    allowance_units: Mapped[int] = mapped_column(BigInteger)  # taken from allowance buckets
    amount_minor: Mapped[int] = mapped_column(BigInteger)  # taken from money
    currency: Mapped[str] = mapped_column(String(3))
    usage_date: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)  # partition key


class TopupBalance(TmfDocument, Base):
    __tablename__ = "charging_topup_balance"

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        return (Index("ix_charging_topup_balance_body", "body", postgresql_using="gin",
                      postgresql_ops={"body": "jsonb_path_ops"}),
                Index("ix_charging_topup_balance_idempotency_key", "tenant_id", text("(body ->> 'idempotencyKey')"),
                      unique=True, postgresql_where=text("body ? 'idempotencyKey'")))


class AdjustBalance(TmfDocument, Base):
    __tablename__ = "charging_adjust_balance"


class TransferBalance(TmfDocument, Base):
    __tablename__ = "charging_transfer_balance"


class ReserveBalance(TmfDocument, Base):
    __tablename__ = "charging_reserve_balance"


class BalanceActionHistory(TmfDocument, Base):
    __tablename__ = "charging_balance_action"


class ChargingSettings(TenantScoped, Base):
    """A tenant's charging conventions (DESIGN §5 rule 15): how a call crossing a time-band change is rated."""

    __tablename__ = "charging_settings"
    __table_args__ = (PrimaryKeyConstraint("tenant_id"),)

    #: ``start``: the whole session in the band at its start; ``split``: each second in the band in force then
    band_change: Mapped[str] = mapped_column(String(10), server_default="start")


class RenewalFee(TenantScoped, Base):
    """The periodic fee of a prepaid line for one period, taken from its money at the renewal of its allowances:
    one row per line (charging account) and period (the unique constraint), ``unpaid`` until the money covers it
    (the period's allowances are not granted meanwhile), then ``paid`` with the usage record of the charge."""

    __tablename__ = "charging_renewal_fee"
    __table_args__ = (UniqueConstraint("account_id", "period_start", "tenant_id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("charging_account.id"))
    product_id: Mapped[str | None] = mapped_column(String(64))
    period_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    period_end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(10))  # unpaid | paid
    usage_id: Mapped[str | None] = mapped_column(String(64))  # the charge's usage record, once paid
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PrepaidCredit(TenantScoped, Base):
    """Money credited to (or taken from) a prepaid line's balance that no payment of payments paid: a top-up
    through TMF654 (vouchers, retail, partners: ``external``), an agent's goodwill top-up or an initial balance
    (``goodwill``), an adjustment (``adjustment``, either sign). Payments posts each day's totals to the ledger
    (the prepaid liability rises with the balances it owes; ``payments.service.post_prepaid_usage``), so that the
    usage these credits pay is not revenue out of a liability nobody funded."""

    __tablename__ = "charging_prepaid_credit"
    __table_args__ = (Index("ix_charging_prepaid_credit_created_at", "created_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("charging_account.id"))
    funding: Mapped[str] = mapped_column(String(20))  # external | goodwill | adjustment
    amount_minor: Mapped[int] = mapped_column(BigInteger)  # negative: taken back
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ChargingShardLease(Base):
    """Who owns a shard of the charging accounts (``node.shards.shard_of``): a charging node holds a shard's
    accounts in memory while its lease runs, renews it by heartbeat, and fences every group commit with the
    shard's ``epoch`` (bumped by each takeover). Not tenant-scoped: shards span tenants."""

    __tablename__ = "charging_shard_lease"

    shard: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str] = mapped_column(String(128))
    address: Mapped[str | None] = mapped_column(String(255))  # where the owner answers credit control
    epoch: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    renewed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
