"""Tables of collections (dunning).

* ``collections_dunning_policy`` — the policies (documents of the ``dunningPolicy`` resource). A policy applies to a
  segment, a customer category or to the accounts explicitly assigned to it (``collections_policy_assignment``);
  the tenant's default policy (``isDefault``) to the others. Every change of a policy's steps is a new **version**
  (``collections_policy_version``, immutable): an episode keeps the version it opened with.
* ``collections_episode`` — a billing account in collection: at most one open episode per account (a partial
  unique index), opened by the set-based evaluation when a bill is past its due date and unpaid, closed when the
  overdue amount is cleared (or the account is written off). Its body is the ``dunningEpisode`` document.
* ``collections_step_execution`` — a step of an episode's policy version carried out: ``UNIQUE (episode, step)``
  makes every action happen at most once per episode, whoever runs it; ``claimed`` → ``done`` | ``failed``
  (| ``skipped``). Its id is the idempotency key of what it asks other domains (orders, payments, charges).
* ``collections_exclusion`` — accounts never actioned (VIP, open dispute, deceased, regulatory protection).
* ``collections_promise`` (``promiseToPay``) and ``collections_payment_plan`` (``paymentPlan``): documents; an
  episode with a pending promise or an active plan is paused.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Text,
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


def _doc_indexes(name: str) -> tuple[Any, ...]:
    return (Index(f"ix_{name}_body", "body", postgresql_using="gin", postgresql_ops={"body": "jsonb_path_ops"}),
            Index(f"ix_{name}_recent", "tenant_id", literal_column("created_at DESC"), "id"))


class DunningPolicy(TmfDocument, Base):
    __tablename__ = "collections_dunning_policy"

    version: Mapped[int] = mapped_column(Integer, server_default="1")
    segment: Mapped[str | None] = mapped_column(String(50))
    category: Mapped[str | None] = mapped_column(String(50))
    is_default: Mapped[bool] = mapped_column(Boolean, server_default="false")
    active: Mapped[bool] = mapped_column(Boolean, server_default="true")


class PolicyVersion(TenantScoped, Base):
    """A policy's steps as they were at a version (never changed once written)."""

    __tablename__ = "collections_policy_version"
    __table_args__ = (PrimaryKeyConstraint("policy_id", "version"),)

    policy_id: Mapped[str] = mapped_column(ForeignKey("collections_dunning_policy.id"))
    version: Mapped[int] = mapped_column(Integer)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PolicyAssignment(TenantScoped, Base):
    """An explicit assignment of a billing account to a policy (before any segment or category)."""

    __tablename__ = "collections_policy_assignment"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "billing_account_id"),)

    billing_account_id: Mapped[str] = mapped_column(String(64))
    policy_id: Mapped[str] = mapped_column(ForeignKey("collections_dunning_policy.id"))


class Episode(TmfDocument, Base):
    __tablename__ = "collections_episode"

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        return (*_doc_indexes("collections_episode"),
                Index("uq_collections_episode_open", "tenant_id", "billing_account_id", unique=True,
                      postgresql_where=text("state = 'open'")),
                Index("ix_collections_episode_due", "tenant_id", "next_check",
                      postgresql_where=text("state = 'open'")))

    billing_account_id: Mapped[str] = mapped_column(String(64))
    policy_id: Mapped[str] = mapped_column(String(64))
    policy_version: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(10), server_default="open")  # open | closed
    currency: Mapped[str] = mapped_column(String(3))
    overdue_amount: Mapped[Decimal] = mapped_column(MONEY)
    #: the amount overdue when the episode opened plus any later overdue bills (what was recovered is measured
    #: against it)
    peak_amount: Mapped[Decimal] = mapped_column(MONEY)
    oldest_due_date: Mapped[date] = mapped_column(Date)
    segment: Mapped[str | None] = mapped_column(String(50))
    #: the position in the version's steps of the next step to take (0: the first)
    next_step: Mapped[int] = mapped_column(Integer, server_default="0")
    #: no step before this day (a promise to pay, a payment plan)
    paused_until: Mapped[date | None] = mapped_column(Date)
    #: the earliest time the scheduler looks at the episode again
    next_check: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    close_reason: Mapped[str | None] = mapped_column(String(20))  # paid | writtenOff | excluded


class StepExecution(TenantScoped, Base):
    __tablename__ = "collections_step_execution"
    __table_args__ = (UniqueConstraint("episode_id", "step", name="uq_collections_step_once"),
                      Index("ix_collections_step_claimed", "lease_until", postgresql_where=text("state = 'claimed'")),
                      Index("ix_collections_step_claimed_episode", "episode_id",
                            postgresql_where=text("state = 'claimed'")),
                      Index("ix_collections_step_executed", "tenant_id", "finished_at"))

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    episode_id: Mapped[str] = mapped_column(ForeignKey("collections_episode.id"), index=True)
    step: Mapped[int] = mapped_column(Integer)  # position in the policy version's steps
    action: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(10))  # claimed | done | failed | skipped
    attempts: Mapped[int] = mapped_column(Integer, server_default="1")
    worker: Mapped[str | None] = mapped_column(String(200))
    claimed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    #: a claimed step not finished by then is taken again (its scheduler died; or quiet hours deferred it)
    lease_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    amount: Mapped[Decimal | None] = mapped_column(MONEY)  # overdue when claimed
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # what was done: order ids, payment id, ...
    reason: Mapped[str | None] = mapped_column(Text)


class Exclusion(TmfDocument, Base):
    """``dunningExclusion``: an account flagged out of dunning (vip, dispute, deceased, regulatory)."""

    __tablename__ = "collections_exclusion"

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        return (*_doc_indexes("collections_exclusion"),
                Index("ix_collections_exclusion_account", "tenant_id", "billing_account_id"))

    billing_account_id: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(20))
    valid_until: Mapped[date | None] = mapped_column(Date)


class Promise(TmfDocument, Base):
    """``promiseToPay``: pending → kept | broken | cancelled."""

    __tablename__ = "collections_promise"

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        return (*_doc_indexes("collections_promise"),
                Index("ix_collections_promise_pending", "tenant_id", "promised_date",
                      postgresql_where=text("state = 'pending'")))

    billing_account_id: Mapped[str] = mapped_column(String(64))
    episode_id: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(10), server_default="pending")
    promised_date: Mapped[date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    #: what the account had received (payments) when the promise was made: kept once it grew by ``amount``
    received_before: Mapped[Decimal] = mapped_column(MONEY, server_default="0")


class PaymentPlan(TmfDocument, Base):
    """``paymentPlan``: a debt in instalments (each a date and an amount); active → completed | broken."""

    __tablename__ = "collections_payment_plan"

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        return (*_doc_indexes("collections_payment_plan"),
                Index("ix_collections_payment_plan_active", "tenant_id", "billing_account_id",
                      postgresql_where=text("state = 'active'")))

    billing_account_id: Mapped[str] = mapped_column(String(64))
    episode_id: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(10), server_default="active")
    received_before: Mapped[Decimal] = mapped_column(MONEY, server_default="0")
    next_due_date: Mapped[date | None] = mapped_column(Date)
