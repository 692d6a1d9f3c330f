"""Ledger replay: the journal rebuilt from the source documents into a scratch table, and compared.

Every entry of the journal is a function of a source document as payments and billing hold it: an issued bill
(billing's document and lines), a payment that succeeded (a top-up or not), a refund that succeeded, a dispute
(opened; won), a write-off, a deferred line's recognition (what was recognized of it in all), a day of prepaid usage
(charging's totals of that day). ``replay`` recomputes the postings of each into ``ledger_replay`` (a temporary
table, dropped at the end of the transaction) and compares them, per (source, event, currency, account), with the
journal: no difference means the ledger is exactly what the sources say. Amounts are compared, not dates (a
posting dated in a closed period went to the open one).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, func, select, text

from openbss.payments import ledger
from openbss.payments.models import (
    Dispute,
    LedgerDeferral,
    LedgerEntry,
    LedgerLine,
    Payment,
    PaymentMethod,
    Receivable,
    Refund,
    Topup,
    Transition,
    WriteOff,
)
from openbss.platform.tmf.resource import Context
from openbss.pricing.money import to_decimal

if TYPE_CHECKING:
    from openbss.payments.service import PaymentService

Key = tuple[str, str, str, str]  # source type, source id, event, currency


def _cash_kind(kind: str | None) -> str:
    return "card" if kind == "tokenizedCard" else kind or ""


async def expected(payments: PaymentService, ctx: Context) -> dict[Key, list[ledger.Posting]]:
    """The postings every source document of the tenant calls for."""
    session = ctx.session
    out: dict[Key, list[ledger.Posting]] = {}
    for bill_id, currency, amount, bill_date in (await session.execute(select(
            Receivable.bill_id, Receivable.currency, Receivable.amount, Receivable.bill_date))).all():
        bill = await payments.bills.get_bill(ctx, bill_id)
        postings, _ = await payments.bill_postings(ctx, bill, Decimal(amount), bill_date)
        out[("CustomerBill", bill_id, "billFinalized", currency)] = postings
    kind = Payment.body["paymentMethod"]["@referredType"].astext
    succeeded = select(Transition.payment_id).where(
        Transition.to_state == "succeeded",
        (Transition.from_state.is_(None)) | (Transition.from_state != "chargeback"))
    topups = set((await session.execute(select(Topup.payment_id))).scalars().all())
    kinds: dict[str, str] = {}
    for payment_id, currency, amount, method in (await session.execute(select(
            Payment.id, Payment.currency, Payment.amount, kind).where(Payment.id.in_(succeeded)))).all():
        kinds[payment_id] = _cash_kind(method)
        if payment_id in topups:
            out[("Payment", payment_id, "topUpSucceeded", currency)] = ledger.topup_postings(
                Decimal(amount), kinds[payment_id])
        else:
            out[("Payment", payment_id, "paymentSucceeded", currency)] = ledger.receipt_postings(
                Decimal(amount), kinds[payment_id])
    for refund_id, currency, amount, method_kind in (await session.execute(
            select(Refund.id, Refund.currency, Refund.amount, PaymentMethod.kind)
            .outerjoin(Payment, Payment.id == Refund.payment_id)  # none: a refund drawing on a credit note
            .outerjoin(PaymentMethod, PaymentMethod.id == Payment.method_id)
            .where(Refund.state == "succeeded"))).all():
        out[("Refund", refund_id, "refundSucceeded", currency)] = [
            ledger.Posting(p.account, -p.amount) for p in ledger.receipt_postings(
                Decimal(amount), "card" if method_kind == "tokenizedCard" else "")]
    for dispute_id, payment_id, currency, amount, fee, status, method in (await session.execute(
            select(Dispute.dispute_id, Dispute.payment_id, Dispute.currency, Dispute.amount, Dispute.fee,
                   Dispute.status, kind)
            .join(Payment, Payment.id == Dispute.payment_id))).all():
        prepaid = payment_id in topups
        out[("Dispute", dispute_id, "chargeback", currency)] = (
            ledger.topup_chargeback_postings if prepaid else ledger.chargeback_postings)(
            Decimal(amount), Decimal(fee), _cash_kind(method))
        if status == "won":
            out[("Dispute", dispute_id, "disputeWon", currency)] = (
                ledger.topup_postings if prepaid else ledger.receipt_postings)(Decimal(amount), _cash_kind(method))
    for write_off_id, currency, amount in (await session.execute(
            select(WriteOff.id, WriteOff.currency, WriteOff.amount))).all():
        out[("WriteOff", write_off_id, "writtenOff", currency)] = ledger.write_off_postings(Decimal(amount))
    for line_id, currency, recognized, account in (await session.execute(select(
            LedgerDeferral.line_id, LedgerDeferral.currency, LedgerDeferral.recognized,
            LedgerDeferral.revenue_account))).all():
        out[("Deferral", line_id, "*", currency)] = [ledger.Posting(ledger.DEFERRED, Decimal(recognized)),
                                                     ledger.Posting(account, -Decimal(recognized))]
    if payments.prepaid is not None:
        days = (await session.execute(select(LedgerEntry.source_id).where(
            LedgerEntry.source_type == "PrepaidUsage"))).scalars().all()
        for source_id in days:
            day_text, _, currency = source_id.partition("/")
            day = date.fromisoformat(day_text)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            totals = await payments.prepaid.prepaid_usage_totals(ctx, start, start + timedelta(days=1))
            used = to_decimal(totals.get(currency, 0))
            out[("PrepaidUsage", source_id, "usageRecognized", currency)] = [
                ledger.Posting(ledger.PREPAID, used), ledger.Posting(ledger.REVENUE, -used)]
        credited = (await session.execute(select(LedgerEntry.source_id).where(
            LedgerEntry.source_type == "PrepaidCredit"))).scalars().all()
        for source_id in credited:
            day_text, currency, funding = source_id.split("/", 2)
            day = date.fromisoformat(day_text)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            credits = await payments.prepaid.prepaid_credit_totals(ctx, start, start + timedelta(days=1))
            out[("PrepaidCredit", source_id, "creditGranted", currency)] = ledger.prepaid_credit_postings(
                to_decimal(credits.get((currency, funding), 0)), funding)
    return out


def _rows(entries: dict[Key, list[ledger.Posting]]) -> Iterable[dict[str, Any]]:
    for (source_type, source_id, event, currency), postings in entries.items():
        per_account: dict[str, Decimal] = {}
        for p in postings:
            per_account[p.account] = per_account.get(p.account, Decimal(0)) + p.amount
        for account, amount in per_account.items():
            if amount:
                yield {"t": source_type, "s": source_id, "e": event, "c": currency, "a": account, "v": amount}


async def replay(payments: PaymentService, ctx: Context) -> dict[str, Any]:
    """Rebuild the tenant's journal from its sources into ``ledger_replay`` and compare. Returns the number of
    rebuilt lines and the differences (source, event, currency, account, journal amount, rebuilt amount)."""
    session = ctx.session
    await session.execute(text(
        "CREATE TEMPORARY TABLE IF NOT EXISTS ledger_replay (source_type text, source_id text, event text, "
        "currency text, account text, amount numeric) ON COMMIT DROP"))
    await session.execute(text("TRUNCATE ledger_replay"))
    rows = list(_rows(await expected(payments, ctx)))
    if rows:
        await session.execute(text("INSERT INTO ledger_replay VALUES (:t, :s, :e, :c, :a, :v)"), rows)
    event = case((LedgerEntry.source_type == "Deferral", "*"), else_=LedgerEntry.event)
    journal = (select(LedgerEntry.source_type, LedgerEntry.source_id, event.label("event"), LedgerEntry.currency,
                      LedgerLine.account_code, func.sum(LedgerLine.debit - LedgerLine.credit).label("amount"))
               .join(LedgerLine, LedgerLine.entry_id == LedgerEntry.id)
               .group_by(LedgerEntry.source_type, LedgerEntry.source_id, event, LedgerEntry.currency,
                         LedgerLine.account_code)
               .having(func.sum(LedgerLine.debit - LedgerLine.credit) != 0))
    compiled = journal.compile(compile_kwargs={"literal_binds": True})
    diff = await session.execute(text(
        f"WITH j AS ({compiled}) SELECT coalesce(j.source_type, r.source_type), "  # noqa: S608 - no input in it
        "coalesce(j.source_id, r.source_id), coalesce(j.event, r.event), coalesce(j.currency, r.currency), "
        "coalesce(j.account_code, r.account), j.amount, r.amount FROM j FULL OUTER JOIN ledger_replay r "
        "ON r.source_type = j.source_type AND r.source_id = j.source_id AND r.event = j.event "
        "AND r.currency = j.currency AND r.account = j.account_code "
        "WHERE j.amount IS DISTINCT FROM r.amount ORDER BY 1, 2, 3, 5"))
    differences = [{"source": f"{t}/{s}", "event": e, "currency": c, "account": a,
                    "journal": j, "rebuilt": r} for t, s, e, c, a, j, r in diff.all()]
    return {"lines": len(rows), "differences": differences}
