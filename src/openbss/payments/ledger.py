"""The double-entry ledger: an append-only journal in PostgreSQL.

Every financial event posts one entry, unique per (source document, event) — a second posting of the same event
inserts nothing —, whose lines balance (debits = credits: checked here and by a deferred constraint trigger at
commit). Lines and entries are never updated or deleted (triggers); a correction is a new entry.

Postings (account codes of the default chart, created per tenant on first use):

==================  ===========================================  ===========================================
event               debit                                        credit
==================  ===========================================  ===========================================
bill finalized      1200 receivable (tax included)               4000 revenue (tax excluded), 2100 tax payable
                                                                 per rate
payment succeeded   1000 cash (1010 gateway clearing for cards)  1200 receivable
refund succeeded    1200 receivable                              1000 cash (1010 for cards)
==================  ===========================================  ===========================================

A negative amount (a credit bill) swaps the sides.

**Periods.** An entry counts on its ``accounting_date``: the document's local business date in the billing account's
time zone (a bill on its bill date as billing states it — billing gives the instant of local midnight, whose UTC
date is the day before east of Greenwich —, a receipt, refund, chargeback, top-up or write-off on the day it
happened there). A closed month (``ledger_period``)
accepts nothing more (a trigger); a posting dated in it goes to the first day of the open period instead. Closing
takes the tenant's period lock exclusively, postings take it shared: a period never closes under a posting.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from openbss.payments.errors import PeriodRefused, Unbalanced
from openbss.payments.models import LedgerAccount, LedgerEntry, LedgerLine, LedgerPeriod
from openbss.platform.db import BOUND_TENANT, insert_rows, utcnow
from openbss.pricing.money import round_money

CASH = "1000"
CLEARING = "1010"
TOPUP_CLEARING = "1020"
RECEIVABLE = "1200"
TAX_PAYABLE = "2100"
PREPAID = "2300"
DEFERRED = "2400"
REVENUE = "4000"
OTHER_REVENUE = "4900"
FEES = "6100"
BAD_DEBT = "6200"
GOODWILL = "6300"

DEFAULT_CHART: tuple[tuple[str, str, str], ...] = (
    (CASH, "Cash at bank", "asset"),
    (CLEARING, "Card gateway clearing", "asset"),
    (TOPUP_CLEARING, "Top-ups received outside payments (vouchers, retail, partners)", "asset"),
    (RECEIVABLE, "Accounts receivable", "asset"),
    (TAX_PAYABLE, "Tax payable", "liability"),
    (PREPAID, "Prepaid balances", "liability"),
    (DEFERRED, "Deferred revenue", "liability"),
    (REVENUE, "Revenue", "revenue"),
    (OTHER_REVENUE, "Other revenue (late fees, lines without a product)", "revenue"),
    (FEES, "Payment fees (chargebacks)", "expense"),
    (BAD_DEBT, "Bad debt", "expense"),
    (GOODWILL, "Goodwill and promotional credit", "expense"),
)


@dataclass(frozen=True)
class Posting:
    account: str
    amount: Decimal  # positive: debit; negative: credit


def balanced(postings: list[Posting]) -> bool:
    return sum((p.amount for p in postings), Decimal(0)) == 0


async def ensure_chart(session: AsyncSession) -> None:
    """The tenant's default chart (once per transaction)."""
    if session.info.get("ledger.chart"):
        return
    session.info["ledger.chart"] = True
    await session.execute(pg_insert(LedgerAccount).values(
        [{"code": c, "name": n, "type": t} for c, n, t in DEFAULT_CHART]).on_conflict_do_nothing())


def _period_key(tenant: str) -> int:
    return int.from_bytes(hashlib.sha256(f"ledger-period|{tenant}".encode()).digest()[:8], "big", signed=True)


async def open_date(session: AsyncSession, on: date) -> date:
    """``on``, or the first day after the last closed period when ``on`` falls in a closed one (a correction goes
    to the open period). Holds the tenant's period lock shared until the transaction ends: a period cannot close
    under a posting."""
    if "ledger.open" not in session.info:  # once per transaction: the lock is held until it ends
        tenant = session.info.get(BOUND_TENANT)
        if tenant is None:
            tenant = await session.scalar(text("SELECT current_setting('openbss.tenant_id', true)"))
        await session.execute(text("SELECT pg_advisory_xact_lock_shared(:k)"), {"k": _period_key(str(tenant))})
        session.info["ledger.open"] = await session.scalar(select(func.max(LedgerPeriod.period_end)))
    last_end: date | None = session.info["ledger.open"]
    return max(on, last_end) if last_end is not None else on


async def close_period(session: AsyncSession, month: date, closed_by: str) -> dict[str, object]:
    """Close the month of ``month`` (and nothing posts into it any more). Months close in order, once they are
    over; waits for the postings in flight (the period lock, exclusive)."""
    start = month.replace(day=1)
    end = (start + timedelta(days=32)).replace(day=1)
    if end > utcnow().date():
        raise PeriodRefused(f"the period {start:%Y-%m} is not over: it cannot close")
    tenant = await session.scalar(text("SELECT current_setting('openbss.tenant_id', true)"))
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _period_key(str(tenant))})
    last_end = await session.scalar(select(func.max(LedgerPeriod.period_end)))
    if last_end is not None and start < last_end:
        raise PeriodRefused(f"the period {start:%Y-%m} is already closed")
    session.add(LedgerPeriod(period_start=start, period_end=end, closed_by=closed_by[:200]))
    await session.flush()
    return {"period": f"{start:%Y-%m}", "start": start.isoformat(), "end": end.isoformat(), "closedBy": closed_by}


async def periods(session: AsyncSession) -> list[dict[str, object]]:
    rows = (await session.execute(select(LedgerPeriod).order_by(LedgerPeriod.period_start))).scalars().all()
    return [{"period": f"{r.period_start:%Y-%m}", "start": r.period_start.isoformat(),
             "end": r.period_end.isoformat(), "closedBy": r.closed_by, "closedAt": r.closed_at.isoformat()}
            for r in rows]


async def post(session: AsyncSession, *, source_type: str, source_id: str, event: str, currency: str,
               description: str, postings: list[Posting], on: date | None = None) -> bool:
    """Post one balanced entry for (source document, event), once, dated ``on`` (today by default; the open
    period's first day when that is closed). Returns whether it was posted now."""
    lines = [p for p in postings if p.amount != 0]
    if not balanced(lines):
        raise Unbalanced(f"{source_type} {source_id} {event}: debits and credits differ by "
                         f"{sum((p.amount for p in lines), Decimal(0))}")
    await ensure_chart(session)
    day = await open_date(session, on or utcnow().date())
    entry_id = (await session.execute(pg_insert(LedgerEntry).values(
        source_type=source_type, source_id=source_id, event=event, currency=currency, accounting_date=day,
        description=description[:300]).on_conflict_do_nothing().returning(LedgerEntry.id))).scalar()
    if entry_id is None:
        return False
    if lines:
        await session.execute(pg_insert(LedgerLine).values([
            {"entry_id": entry_id, "account_code": p.account, "debit": max(p.amount, Decimal(0)),
             "credit": max(-p.amount, Decimal(0))} for p in lines]))
    return True


@dataclass(frozen=True)
class Entry:
    """One entry to post (``post_many``): what ``post`` takes."""

    source_type: str
    source_id: str
    event: str
    currency: str
    description: str
    postings: list[Posting]
    on: date | None = None


async def post_many(session: AsyncSession, entries: list[Entry]) -> set[tuple[str, str, str]]:
    """``post`` for many entries at once: each checked balanced, dated like ``post``, inserted once per (source
    document, event) — those already posted insert nothing — in multi-row inserts of entries and of their lines.
    Returns the (source type, source id, event) posted now."""
    if not entries:
        return set()
    kept: dict[tuple[str, str, str], tuple[Entry, list[Posting]]] = {}
    for e in entries:
        lines = [p for p in e.postings if p.amount != 0]
        if not balanced(lines):
            raise Unbalanced(f"{e.source_type} {e.source_id} {e.event}: debits and credits differ by "
                             f"{sum((p.amount for p in lines), Decimal(0))}")
        kept.setdefault((e.source_type, e.source_id, e.event), (e, lines))
    await ensure_chart(session)
    today = utcnow().date()
    rows = [{"source_type": e.source_type, "source_id": e.source_id, "event": e.event, "currency": e.currency,
             "accounting_date": await open_date(session, e.on or today), "description": e.description[:300]}
            for e, _ in kept.values()]
    posted: dict[tuple[str, str, str], int] = {}
    got = await insert_rows(session, LedgerEntry, rows, on_conflict_do_nothing=True,
                            returning=("id", "source_type", "source_id", "event"))
    posted.update({(t, s, ev): i for i, t, s, ev in got})
    line_rows = [{"entry_id": entry_id, "account_code": p.account, "debit": max(p.amount, Decimal(0)),
                  "credit": max(-p.amount, Decimal(0))}
                 for key, entry_id in posted.items() for p in kept[key][1]]
    await insert_rows(session, LedgerLine, line_rows)
    return set(posted)


@dataclass(frozen=True)
class Deferred:
    """A bill line billed in advance: recognized day by day over ``[start, end)`` into ``account``."""

    line_id: str
    amount: Decimal
    start: date
    end: date
    account: str


def _day(value: Any, tz: tzinfo = UTC) -> date | None:
    """The local date (in ``tz``, the account's zone) of an instant billing states (a local midnight in UTC)."""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(tz).date()


def split_lines(lines: list[dict[str, Any]], bill_date: date, *, other: str = OTHER_REVENUE, tz: tzinfo = UTC,
                ) -> tuple[dict[str, Decimal], list[Deferred]]:
    """A bill's revenue (tax excluded) per ledger account, from its lines: a line naming a product is revenue
    (4000); a line without one (a late fee, a fee collections added) goes to ``other`` (the tenant's setting,
    4900 by default); a recurring charge whose service period ends after the bill date is billed in advance: it
    goes to deferred revenue (2400) and is returned as a deferral to recognize day by day (its service period in
    local dates of ``tz``, the account's zone)."""
    out: dict[str, Decimal] = defaultdict(Decimal)
    deferred: list[Deferred] = []
    for line in lines:
        value = (line.get("taxExcludedAmount") or {}).get("value")
        if value is None:
            continue
        amount = Decimal(str(value))
        account = REVENUE if (line.get("product") or {}).get("id") else other
        kind = next((c.get("value") for c in line.get("characteristic") or [] if c.get("name") == "chargeType"),
                    None)
        coverage = line.get("periodCoverage") or {}
        start, end = _day(coverage.get("startDateTime"), tz), _day(coverage.get("endDateTime"), tz)
        if kind == "recurringCharge" and line.get("id") and start and end and end > bill_date and end > start:
            deferred.append(Deferred(str(line["id"]), amount, start, end, account))
            account = DEFERRED
        out[account] += amount
    return dict(out), deferred


def revenue_by_account(lines: list[dict[str, Any]], *, other: str = OTHER_REVENUE) -> dict[str, Decimal]:
    """``split_lines`` without deferral (every line earned)."""
    return split_lines(lines, date.max, other=other)[0]


def recognized_by(deferral_amount: Decimal, start: date, end: date, through: date, currency: str) -> Decimal:
    """What of a deferred line is earned for the days before ``through``: pro rata of the days of its service
    period, rounded to the currency; all of it once the period is over (so the rounding never leaves a rest)."""
    total = (end - start).days
    elapsed = min(max((through - start).days, 0), total)
    if elapsed >= total:
        return deferral_amount
    return round_money(deferral_amount * elapsed / total, currency)


def bill_postings(total: Decimal, tax_by_rate: dict[str, Decimal],
                  revenue: dict[str, Decimal] | None = None) -> list[Posting]:
    """Receivable (tax included) against tax payable per rate and revenue — per account when the lines are known
    (``revenue``); what the lines do not explain (rounding) is revenue (4000)."""
    tax = sum(tax_by_rate.values(), Decimal(0))
    net = total - tax
    split = {k: v for k, v in sorted((revenue or {}).items()) if v}
    rest = net - sum(split.values(), Decimal(0))
    out = [Posting(RECEIVABLE, total)]
    out += [Posting(code, -amount) for code, amount in split.items()]
    if rest:
        out.append(Posting(REVENUE, -rest))
    out += [Posting(TAX_PAYABLE, -amount) for _, amount in sorted(tax_by_rate.items())]
    return out


def receipt_postings(amount: Decimal, kind: str) -> list[Posting]:
    cash = CLEARING if kind == "card" else CASH
    return [Posting(cash, amount), Posting(RECEIVABLE, -amount)]


def chargeback_postings(amount: Decimal, fee: Decimal, kind: str) -> list[Posting]:
    """A chargeback: the money received goes back (receivable open again), and the gateway's fee is an expense."""
    cash = CLEARING if kind == "card" else CASH
    return [Posting(RECEIVABLE, amount), Posting(FEES, fee), Posting(cash, -(amount + fee))]


def topup_chargeback_postings(amount: Decimal, fee: Decimal, kind: str) -> list[Posting]:
    """A charged-back prepaid top-up: the prepaid balance is debited by what the gateway took back (the liability
    falls by all of it, even when the line spent it: the line then owes it, a debt in its balance) and the fee is
    an expense."""
    cash = CLEARING if kind == "card" else CASH
    return [Posting(PREPAID, amount), Posting(FEES, fee), Posting(cash, -(amount + fee))]


def topup_postings(amount: Decimal, kind: str) -> list[Posting]:
    """A prepaid top-up: cash received, owed to the customer as prepaid balance until it is used."""
    cash = CLEARING if kind == "card" else CASH
    return [Posting(cash, amount), Posting(PREPAID, -amount)]


def prepaid_credit_postings(amount: Decimal, funding: str) -> list[Posting]:
    """Money credited to prepaid balances that no payment funded (charging's ``charging_prepaid_credit``): owed to
    the customers as prepaid balance, against what funded it — a top-up received outside payments (vouchers, retail,
    partners: 1020) or goodwill and promotions (agents' top-ups, initial balances, adjustments: 6300). Negative:
    taken back."""
    return [Posting(TOPUP_CLEARING if funding == "external" else GOODWILL, amount), Posting(PREPAID, -amount)]


def write_off_postings(amount: Decimal) -> list[Posting]:
    return [Posting(BAD_DEBT, amount), Posting(RECEIVABLE, -amount)]


async def trial_balance(session: AsyncSession) -> list[dict[str, object]]:
    """Per account of the tenant's chart: debits, credits and the balance (debits − credits), by currency."""
    stmt = (select(LedgerLine.account_code, LedgerEntry.currency, func.sum(LedgerLine.debit),
                   func.sum(LedgerLine.credit))
            .join(LedgerEntry, LedgerEntry.id == LedgerLine.entry_id)
            .group_by(LedgerLine.account_code, LedgerEntry.currency)
            .order_by(LedgerLine.account_code, LedgerEntry.currency))
    names = dict((await session.execute(select(LedgerAccount.code, LedgerAccount.name))).all())
    rows = []
    for code, currency, debit, credit in await session.execute(stmt):
        rows.append({"account": code, "name": names.get(code, code), "currency": currency, "debit": debit,
                     "credit": credit, "balance": debit - credit})
    return rows


def totals(rows: list[dict[str, object]]) -> dict[str, Decimal]:
    """The sum of the balances per currency: zero in a balanced ledger."""
    out: dict[str, Decimal] = defaultdict(Decimal)
    for r in rows:
        balance = r["balance"]
        assert isinstance(balance, Decimal)
        out[str(r["currency"])] += balance
    return dict(out)
