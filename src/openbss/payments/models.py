"""Tables of payments and of the ledger.

* ``payments_payment_method`` — TMF670 PaymentMethod documents, with the billing account, kind, status and end of
  validity as columns; at most one default method per billing account (partial unique index).
* ``payments_payment`` — TMF676 Payment documents, with the state and the amount as columns. At most one payment
  *in flight* (initiated, pending, unknown) per bill (partial unique index on ``bill_id``); the gateway's reference
  is unique per gateway (a webhook replay finds the same payment).
* ``payments_transition`` — every state transition of a payment (from, to, why, who: api, gateway, webhook,
  janitor).
* ``payments_refund`` — TMF676 Refund documents.
* ``payments_idempotency`` — the ``Idempotency-Key`` of each create, per tenant and resource type, with a hash of
  the request and the resource it created.
* ``payments_webhook_event`` — the gateway events already applied (unique per gateway and event id).
* ``payments_receivable`` — the issued bills as payments see them (from billing's bill-finalized events): amount,
  date; ``payments_allocation`` — which payment settles what: a bill, or the account's credit (``bill_id`` null;
  a negative credit row moves credit onto a later bill).
* ``ledger_account`` — the chart of accounts per tenant; ``ledger_entry`` / ``ledger_line`` — the append-only
  journal: one entry per (source document, event), its lines balanced (checked by a deferred constraint trigger),
  never updated or deleted (triggers).
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
    Numeric,
    PrimaryKeyConstraint,
    String,
    func,
    literal_column,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from openbss.platform.db import Base, TenantScoped
from openbss.platform.tmf.resource import TmfDocument

MONEY = Numeric(20, 6)
IN_FLIGHT = ("initiated", "pending", "unknown")


def _doc_indexes(name: str) -> tuple[Any, ...]:
    return (Index(f"ix_{name}_body", "body", postgresql_using="gin", postgresql_ops={"body": "jsonb_path_ops"}),
            Index(f"ix_{name}_recent", "tenant_id", literal_column("created_at DESC"), "id"))


class PaymentMethod(TmfDocument, Base):
    __tablename__ = "payments_payment_method"

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        return (*_doc_indexes(cls.__tablename__),
                Index("uq_payments_payment_method_default", "tenant_id", "billing_account_id", unique=True,
                      postgresql_where=text("is_default")),
                Index("ix_payments_payment_method_account", "billing_account_id"))

    billing_account_id: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(30))  # card | directDebit | bankTransfer | cash | voucher | wallet
    status: Mapped[str] = mapped_column(String(20))  # active | revoked | expired
    valid_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    is_default: Mapped[bool] = mapped_column(Boolean, server_default="false")


class Payment(TmfDocument, Base):
    __tablename__ = "payments_payment"

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        states = ", ".join(f"'{s}'" for s in IN_FLIGHT)
        return (*_doc_indexes(cls.__tablename__),
                Index("uq_payments_payment_in_flight", "tenant_id", "bill_id", unique=True,
                      postgresql_where=text(f"bill_id IS NOT NULL AND state IN ({states})")),
                Index("uq_payments_payment_gateway_ref", "tenant_id", "gateway", "gateway_ref", unique=True,
                      postgresql_where=text("gateway_ref IS NOT NULL")),
                Index("ix_payments_payment_stale", "state", "last_update",
                      postgresql_where=text(f"state IN ({states})")),
                Index("ix_payments_payment_account", "billing_account_id"))

    billing_account_id: Mapped[str] = mapped_column(String(64))
    method_id: Mapped[str] = mapped_column(String(64))
    #: the first bill the payment names (what the in-flight constraint is about); null: the oldest open bills
    bill_id: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(20))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3))
    gateway: Mapped[str | None] = mapped_column(String(30))
    gateway_ref: Mapped[str | None] = mapped_column(String(100))
    refunded: Mapped[Decimal] = mapped_column(MONEY, server_default="0")


class Transition(TenantScoped, Base):
    __tablename__ = "payments_transition"
    __table_args__ = (Index("ix_payments_transition_payment", "payment_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    payment_id: Mapped[str] = mapped_column(String(64))
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(20))  # api | gateway | webhook | janitor
    reason: Mapped[str | None] = mapped_column(String(300))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Refund(TmfDocument, Base):
    __tablename__ = "payments_refund"

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        return (*_doc_indexes(cls.__tablename__), Index("ix_payments_refund_payment", "payment_id"),
                Index("ix_payments_refund_stale", "state", "last_update",
                      postgresql_where=text("state IN ('pending', 'unknown')")))

    payment_id: Mapped[str] = mapped_column(String(64))
    billing_account_id: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(20))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3))
    gateway_ref: Mapped[str | None] = mapped_column(String(100))


class Dispute(TenantScoped, Base):
    """A chargeback of a succeeded payment, as the gateway reported it (unique per gateway and dispute id): its
    amount is taken back from the payment's allocations while it is open or lost, and given back when it is won."""

    __tablename__ = "payments_dispute"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "gateway", "dispute_id"),
                      Index("ix_payments_dispute_payment", "payment_id"))

    gateway: Mapped[str] = mapped_column(String(30))
    dispute_id: Mapped[str] = mapped_column(String(100))
    payment_id: Mapped[str] = mapped_column(String(64))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    fee: Mapped[Decimal] = mapped_column(MONEY, server_default="0")
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20))  # open | won | lost
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Topup(TenantScoped, Base):
    """A prepaid balance credited by a top-up payment: once per payment (the primary key), written in the
    transaction that credits charging's balance."""

    __tablename__ = "payments_topup"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "payment_id"),)

    payment_id: Mapped[str] = mapped_column(String(64))
    charging_account_id: Mapped[str] = mapped_column(String(64))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3))
    credited_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class WriteOff(TenantScoped, Base):
    """A debt written off: unique per tenant and the caller's reference (collections' write-off of an episode); its
    amount settled the account's oldest open bills (allocations under ``writeOff:<id>``)."""

    __tablename__ = "payments_write_off"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "reference"),
                      Index("ix_payments_write_off_account", "billing_account_id"))

    reference: Mapped[str] = mapped_column(String(100))
    id: Mapped[str] = mapped_column(String(64))
    billing_account_id: Mapped[str] = mapped_column(String(64))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(300))
    created_by: Mapped[str] = mapped_column(String(200))
    settled: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class IdempotencyKey(TenantScoped, Base):
    __tablename__ = "payments_idempotency"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "scope", "key"),)

    scope: Mapped[str] = mapped_column(String(20))  # payment | refund
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class WebhookEvent(TenantScoped, Base):
    __tablename__ = "payments_webhook_event"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "gateway", "event_id"),)

    gateway: Mapped[str] = mapped_column(String(30))
    event_id: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Receivable(TenantScoped, Base):
    __tablename__ = "payments_receivable"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "bill_id"),
                      Index("ix_payments_receivable_account", "billing_account_id", "bill_date", "number"),
                      Index("ix_payments_receivable_number", "number"))

    bill_id: Mapped[str] = mapped_column(String(64))
    billing_account_id: Mapped[str] = mapped_column(String(64))
    number: Mapped[str | None] = mapped_column(String(64))
    bill_date: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[Decimal] = mapped_column(MONEY)  # the bill's own total, tax included


class Allocation(TenantScoped, Base):
    __tablename__ = "payments_allocation"
    __table_args__ = (Index("ix_payments_allocation_payment", "payment_id"),
                      Index("ix_payments_allocation_bill", "bill_id"),
                      Index("ix_payments_allocation_account", "billing_account_id"))

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    payment_id: Mapped[str] = mapped_column(String(64))
    billing_account_id: Mapped[str] = mapped_column(String(64))
    bill_id: Mapped[str | None] = mapped_column(String(64))  # null: the account's credit
    amount: Mapped[Decimal] = mapped_column(MONEY)
    source: Mapped[str] = mapped_column(String(20))  # payment | credit | refund
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


# --- the ledger -----------------------------------------------------------------------------------------------
class LedgerAccount(TenantScoped, Base):
    __tablename__ = "ledger_account"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "code"),)

    code: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(100))
    type: Mapped[str] = mapped_column(String(20))  # asset | liability | equity | revenue | expense


class LedgerEntry(TenantScoped, Base):
    __tablename__ = "ledger_entry"
    __table_args__ = (Index("uq_ledger_entry_source", "tenant_id", "source_type", "source_id", "event",
                            unique=True),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    source_type: Mapped[str] = mapped_column(String(30))  # CustomerBill | Payment | Refund
    source_id: Mapped[str] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(30))  # billFinalized | paymentSucceeded | refundSucceeded
    description: Mapped[str] = mapped_column(String(300))
    currency: Mapped[str] = mapped_column(String(3))
    #: the day the entry counts in: the event's day, or the first open day when its period is closed
    accounting_date: Mapped[date] = mapped_column(Date)
    posted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class LedgerPeriod(TenantScoped, Base):
    """A closed accounting period (a month): nothing posts into it any more (a trigger refuses it)."""

    __tablename__ = "ledger_period"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "period_start"),)

    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)  # exclusive
    closed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    closed_by: Mapped[str] = mapped_column(String(200))


class LedgerLine(TenantScoped, Base):
    __tablename__ = "ledger_line"
    #: the entry index carries the tenant: the balance check at commit, under row-level security, reads one entry's
    #: lines by both (with ``entry_id`` alone it could read the whole tenant's lines for each line)
    __table_args__ = (Index("ix_ledger_line_entry", "entry_id", "tenant_id"),
                      Index("ix_ledger_line_account", "account_code"))

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("ledger_entry.id"))
    account_code: Mapped[str] = mapped_column(String(20))
    debit: Mapped[Decimal] = mapped_column(MONEY, server_default="0")
    credit: Mapped[Decimal] = mapped_column(MONEY, server_default="0")


class LedgerDeferral(TenantScoped, Base):
    """A bill line billed in advance (a recurring charge whose service period ends after the bill date): posted to
    deferred revenue at finalization and recognized day by day over ``[start, end)`` by the recognition job, which
    records here how much and through which day (one journal entry per line and run day)."""

    __tablename__ = "ledger_deferral"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "line_id"),
                      Index("ix_ledger_deferral_open", "start_date", postgresql_where=text("recognized <> amount")))

    line_id: Mapped[str] = mapped_column(String(64))
    bill_id: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)  # exclusive
    revenue_account: Mapped[str] = mapped_column(String(20))
    recognized: Mapped[Decimal] = mapped_column(MONEY, server_default="0")
    recognized_through: Mapped[date | None] = mapped_column(Date)  # exclusive


class LedgerRevenue(TenantScoped, Base):
    """The revenue of an issued bill line as it was posted (what the revenue report reads): the bill's month, the
    product, the tax rate, net and tax amounts. Written once, with the bill's ledger entry."""

    __tablename__ = "ledger_revenue"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "bill_id", "seq"),
                      Index("ix_ledger_revenue_period", "period"))

    bill_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    period: Mapped[date] = mapped_column(Date)  # the bill's date
    product_id: Mapped[str | None] = mapped_column(String(64))
    product_name: Mapped[str | None] = mapped_column(String(200))
    tax_rate: Mapped[str | None] = mapped_column(String(20))
    currency: Mapped[str] = mapped_column(String(3))
    net: Mapped[Decimal] = mapped_column(MONEY)
    tax: Mapped[Decimal] = mapped_column(MONEY)


# --- bank statements ------------------------------------------------------------------------------------------
class StatementLine(TenantScoped, Base):
    """A line of a bank statement, imported once (unique per tenant and the bank's reference)."""

    __tablename__ = "payments_statement_line"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "reference"),)

    reference: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(20))  # collected | returned | transfers | exceptions
    payment_id: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class StatementException(TenantScoped, Base):
    """A statement line nothing matched: the exceptions queue, for a person to resolve."""

    __tablename__ = "payments_statement_exception"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    reference: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(300))
    amount: Mapped[str] = mapped_column(String(40))
    currency: Mapped[str] = mapped_column(String(3))
    line: Mapped[dict[str, Any]] = mapped_column(JSONB)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
