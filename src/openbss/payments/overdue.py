"""What is overdue, as one SQL query (what collections' set-based evaluation selects from): per billing account of
the bound tenant, the issued bills past their due date less what was allocated to them (payments and credit notes,
``payments_allocation``), in the bill's currency."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func, select

from openbss.payments.models import Allocation, Receivable


def overdue_select(as_of: date) -> Any:
    """``(billing_account_id, currency, overdue, oldest_due_date, bills)`` of every account with an unpaid bill
    whose due date is before ``as_of``."""
    paid = (select(Allocation.bill_id, func.sum(Allocation.amount).label("paid"))
            .where(Allocation.bill_id.is_not(None)).group_by(Allocation.bill_id).subquery())
    remaining = Receivable.amount - func.coalesce(paid.c.paid, 0)
    return (select(Receivable.billing_account_id.label("billing_account_id"),
                   Receivable.currency.label("currency"),
                   func.sum(remaining).label("overdue"),
                   func.min(Receivable.due_date).label("oldest_due_date"),
                   func.count().label("bills"))
            .select_from(Receivable).outerjoin(paid, paid.c.bill_id == Receivable.bill_id)
            .where(Receivable.due_date < as_of, Receivable.amount > 0, remaining > 0)
            .group_by(Receivable.billing_account_id, Receivable.currency))


def received_select() -> Any:
    """``(billing_account_id, received)``: what each account paid in (payments less refunds; not credit notes)."""
    return (select(Allocation.billing_account_id.label("billing_account_id"),
                   func.sum(Allocation.amount).label("received"))
            .where(Allocation.payment_id.not_like("creditNote:%"))
            .group_by(Allocation.billing_account_id))


class OverdueQueries:
    """The two queries, as collections asks them (``collections.service.Overdue``)."""

    def overdue_select(self, as_of: date) -> Any:
        return overdue_select(as_of)

    def received_select(self) -> Any:
        return received_select()
