"""What is overdue, as one SQL query (what collections' set-based evaluation selects from): per billing account of
the bound tenant, the issued bills past their due date less what was allocated to them (payments and credit notes,
``payments_allocation``), in the bill's currency. Both queries take an optional account: a reaction to one
account's payment reads that account's rows only."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func, select

from openbss.payments.models import Allocation, Receivable


def overdue_select(as_of: date, account_id: str | None = None) -> Any:
    """``(billing_account_id, currency, overdue, oldest_due_date, bills)`` of every account (or of
    ``account_id``) with an unpaid bill whose due date is before ``as_of``."""
    paid_q = select(Allocation.bill_id, func.sum(Allocation.amount).label("paid")).where(
        Allocation.bill_id.is_not(None))
    if account_id is not None:
        paid_q = paid_q.where(Allocation.billing_account_id == account_id)
    paid = paid_q.group_by(Allocation.bill_id).subquery()
    remaining = Receivable.amount - func.coalesce(paid.c.paid, 0)
    stmt = (select(Receivable.billing_account_id.label("billing_account_id"),
                   Receivable.currency.label("currency"),
                   func.sum(remaining).label("overdue"),
                   func.min(Receivable.due_date).label("oldest_due_date"),
                   func.count().label("bills"))
            .select_from(Receivable).outerjoin(paid, paid.c.bill_id == Receivable.bill_id)
            .where(Receivable.due_date < as_of, Receivable.amount > 0, remaining > 0))
    if account_id is not None:
        stmt = stmt.where(Receivable.billing_account_id == account_id)
    return stmt.group_by(Receivable.billing_account_id, Receivable.currency)


def received_select(account_id: str | None = None) -> Any:
    """``(billing_account_id, received)``: what each account (or ``account_id``) paid in (payments less refunds;
    not credit notes, and not write-offs: what was written off was not paid — it keeps no promise and pays no
    instalment)."""
    stmt = (select(Allocation.billing_account_id.label("billing_account_id"),
                   func.sum(Allocation.amount).label("received"))
            .where(Allocation.payment_id.not_like("creditNote:%"), Allocation.payment_id.not_like("writeOff:%")))
    if account_id is not None:
        stmt = stmt.where(Allocation.billing_account_id == account_id)
    return stmt.group_by(Allocation.billing_account_id)


class OverdueQueries:
    """The two queries, as collections asks them (``collections.service.Overdue``)."""

    def overdue_select(self, as_of: date, account_id: str | None = None) -> Any:
        return overdue_select(as_of, account_id)

    def received_select(self, account_id: str | None = None) -> Any:
        return received_select(account_id)
