"""Tables of billing.

* ``billing_customer_bill`` — TMF678 CustomerBill documents, with the columns the rules need: one on-cycle bill
  per account and cycle date (partial unique index), the number unique per tenant once issued, the state, the
  amounts. A database trigger refuses any change to an issued bill but its state (migration).
* ``billing_applied_rate`` — TMF678 AppliedCustomerBillingRate documents (the bill's lines). ``(charge_key,
  period_start)`` is unique per tenant: a charge (a product's price, a usage type of a line) is billed once per
  period, whatever runs. A trigger refuses to add, change or remove a line of an issued bill (a bill issued as it
  is written has its lines inserted just before it, its key to the bill deferred in that transaction).
* ``billing_usage_item`` — which usage record went into which line (unique per usage record): usage is billed once.
* ``billing_number_counter`` — the last number of each series, row-locked by the finalization that takes the next
  one in its own transaction: numbers are gapless (a rolled-back finalization gives its number back).
* ``billing_settings`` — per tenant: proration conventions, numbering, grace period.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Identity,
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
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from openbss.platform.db import Base, TenantScoped
from openbss.platform.tmf.resource import TmfDocument

MONEY = Numeric(20, 6)


class CustomerBill(TmfDocument, Base):
    __tablename__ = "billing_customer_bill"

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        return (
            Index("ix_billing_customer_bill_body", "body", postgresql_using="gin",
                  postgresql_ops={"body": "jsonb_path_ops"}),
            Index("ix_billing_customer_bill_recent", "tenant_id", literal_column("created_at DESC"), "id"),
            Index("uq_billing_customer_bill_cycle", "tenant_id", "billing_account_id", "bill_date", unique=True,
                  postgresql_where=text("run_type = 'onCycle'")),
            Index("uq_billing_customer_bill_number", "tenant_id", "number", unique=True,
                  postgresql_where=text("number IS NOT NULL")),
            Index("ix_billing_customer_bill_account", "billing_account_id", "bill_date"),
        )

    billing_account_id: Mapped[str] = mapped_column(String(64))
    bill_date: Mapped[date] = mapped_column(Date)  # local date of the account's time zone
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    run_type: Mapped[str] = mapped_column(String(10))  # onCycle | offCycle
    state: Mapped[str] = mapped_column(String(20))  # TMF678 stateValue
    number: Mapped[str | None] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[Decimal] = mapped_column(MONEY)  # this bill's charges, tax included
    #: the account's balance once this bill is issued (previous balance + total); null while draft
    balance_after: Mapped[Decimal | None] = mapped_column(MONEY)
    issue_seq: Mapped[int | None] = mapped_column(BigInteger)  # order of issue within the tenant
    corrects_bill_id: Mapped[str | None] = mapped_column(String(64), index=True)  # a credit note's bill


class AppliedRate(TmfDocument, Base):
    __tablename__ = "billing_applied_rate"

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        return (
            Index("ix_billing_applied_rate_recent", "tenant_id", literal_column("created_at DESC"), "id"),
            UniqueConstraint("tenant_id", "charge_key", "period_start"),
            Index("ix_billing_applied_rate_bill", "bill_id"),
            Index("ix_billing_applied_rate_account", "billing_account_id"),
        )

    #: deferrable (checked at once unless a transaction defers it): a bill issued as it is written has its lines
    #: inserted just before it (``BillingService._write_new``)
    bill_id: Mapped[str] = mapped_column(ForeignKey("billing_customer_bill.id", deferrable=True,
                                                    initially="IMMEDIATE"))
    billing_account_id: Mapped[str] = mapped_column(String(64))
    #: what is charged: ``recurring|<product>|<price>``, ``oneTime|<product>|<price>``,
    #: ``credit|<product>|<price>``, ``usage|<product>|<usage type>``
    charge_key: Mapped[str] = mapped_column(String(300))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(MONEY)  # tax excluded


class UsageItem(TenantScoped, Base):
    __tablename__ = "billing_usage_item"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "usage_id"),)

    usage_id: Mapped[str] = mapped_column(String(64))
    line_id: Mapped[str] = mapped_column(ForeignKey("billing_applied_rate.id", ondelete="CASCADE"), index=True)


class NumberCounter(TenantScoped, Base):
    __tablename__ = "billing_number_counter"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "series"),)

    series: Mapped[str] = mapped_column(String(100))
    last_value: Mapped[int] = mapped_column(BigInteger)


class BillingSettings(TenantScoped, Base):
    __tablename__ = "billing_settings"
    __table_args__ = (PrimaryKeyConstraint("tenant_id"),)

    day_count: Mapped[str] = mapped_column(String(10), server_default="actual")
    period_end: Mapped[str] = mapped_column(String(10), server_default="exclusive")
    factor_places: Mapped[int | None] = mapped_column(Integer)
    factor_rounding: Mapped[str] = mapped_column(String(10), server_default="halfUp")
    rounding: Mapped[str] = mapped_column(String(10), server_default="halfUp")
    number_series: Mapped[str] = mapped_column(String(50), server_default="INV")
    number_format: Mapped[str] = mapped_column(String(100), server_default="{series}-{year}-{seq:06d}")
    grace_days: Mapped[int] = mapped_column(Integer, server_default="0")
    tax_inclusive: Mapped[bool] = mapped_column(Boolean, server_default="false")
    tax_country: Mapped[str | None] = mapped_column(String(2))
    credit_note_series: Mapped[str] = mapped_column(String(50), server_default="CN")
    backdate_days: Mapped[int | None] = mapped_column(Integer)  # None: changes may be back-dated without limit
    alignment: Mapped[str] = mapped_column(String(12), server_default="calendar")  # calendar | anniversary
    #: whether a suspension by collections (non-payment) stops the recurring charges: stopsCharges | keepsCharges
    dunning_suspension: Mapped[str] = mapped_column(String(12), server_default="stopsCharges")


class TestClock(TenantScoped, Base):
    """A sandbox tenant's frozen "now" for billing (changes effective immediately, runs, bills on demand), moved
    forward only by an advance that bills what fell due on the way."""

    __tablename__ = "billing_test_clock"
    __table_args__ = (PrimaryKeyConstraint("tenant_id"),)

    now: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class TaxRateRow(TenantScoped, Base):
    """The built-in tax engine's table: a rate per jurisdiction (country, or country-region), category and validity;
    several rows of one jurisdiction and category stack (a VAT and a telecom levy)."""

    __tablename__ = "billing_tax_rate"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    jurisdiction: Mapped[str] = mapped_column(String(10))
    category: Mapped[str] = mapped_column(String(50))
    name: Mapped[str] = mapped_column(String(50))
    rate: Mapped[Decimal] = mapped_column(Numeric(9, 4))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)


class BillOnDemand(TmfDocument, Base):
    """TMF678 CustomerBillOnDemand requests (each with the preview it answered; no bill is written)."""

    __tablename__ = "billing_bill_on_demand"


class BillRun(TenantScoped, Base):
    """A bill run as a job: its partitions are claimed by workers (``FOR UPDATE SKIP LOCKED``), each worked in the
    transaction that holds its lock, so a worker killed mid-partition leaves nothing behind and the partition is
    claimed again."""

    __tablename__ = "billing_run"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    as_of: Mapped[date] = mapped_column(Date)
    finalize: Mapped[bool | None] = mapped_column(Boolean)
    partitions: Mapped[int] = mapped_column(Integer)
    accounts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class BillRunPartition(TenantScoped, Base):
    __tablename__ = "billing_run_partition"
    __table_args__ = (PrimaryKeyConstraint("run_id", "part"),
                      Index("ix_billing_run_partition_pending", "state", postgresql_where=text("state = 'pending'")))

    run_id: Mapped[str] = mapped_column(ForeignKey("billing_run.id"))
    part: Mapped[int] = mapped_column(Integer)
    account_ids: Mapped[list[str]] = mapped_column(JSONB)
    state: Mapped[str] = mapped_column(String(10), server_default="pending")  # pending | done
    worker: Mapped[str | None] = mapped_column(String(200))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    report: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class ProductChange(TenantScoped, Base):
    """A change of a sold product as billing prorates it (upgrade, downgrade, cancel, suspend, resume, transfer),
    effective on a local date of the account: the product's charge timeline (``pricing.changes``). ``body`` keeps
    the new prices, and the product as it was first sold (its account and prices), so a product transferred away
    is still known to the account it left."""

    __tablename__ = "billing_product_change"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    product_id: Mapped[str] = mapped_column(String(64), index=True)
    billing_account_id: Mapped[str] = mapped_column(String(64), index=True)  # the account before the change
    to_account_id: Mapped[str | None] = mapped_column(String(64), index=True)  # a transfer's new account
    kind: Mapped[str] = mapped_column(String(20))
    effective_date: Mapped[date] = mapped_column(Date)
    body: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ManualCharge(TenantScoped, Base):
    """A one-off charge (positive) or adjustment (negative) an agent or another domain (collections' late fee)
    puts on an account's next bill, with its reason code; unique per tenant and reference (idempotent)."""

    __tablename__ = "billing_manual_charge"
    __table_args__ = (UniqueConstraint("tenant_id", "reference", name="uq_billing_manual_charge_reference"),
                      Index("ix_billing_manual_charge_account", "billing_account_id", "charge_date"))

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    billing_account_id: Mapped[str] = mapped_column(String(64))
    amount: Mapped[Decimal] = mapped_column(MONEY)  # tax excluded; negative: a credit
    currency: Mapped[str] = mapped_column(String(3))
    reason_code: Mapped[str] = mapped_column(String(50))
    description: Mapped[str] = mapped_column(String(200))
    reference: Mapped[str] = mapped_column(String(200))
    charge_date: Mapped[date] = mapped_column(Date)  # the account's local day it was added: billed from it on
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
