"""Finance reports over payments' receivables and the ledger, as rows (JSON) or CSV.

* ``trialBalance`` — per ledger account and currency: debits, credits, balance (the sum of balances is zero);
* ``arAging`` — what is still owed on issued bills, by currency, in buckets of days past the due date (current,
  1–30, 31–60, 61–90, 90+) as of a date;
* ``cashReceipts`` — succeeded payments less refunds, by payment method type and currency, over a period;
* ``deferredRevenue`` — the roll-forward of deferred revenue (2400) over a period, per currency: opening, billed
  in advance, recognized, closing (opening + billed − recognized = the account's balance at the end);
* ``revenue`` — billed revenue by month (of the bill date), product and tax rate, per currency: net and tax;
* ``arAgingBySegment`` — the aging above per customer segment (the segment of the customer the billing account
  belongs to; ``unknown`` when it has none) and currency;
* ``gatewayReconciliation`` — what the gateway says it settled over a period against the payments recorded: per
  payment, the gateway's and our amounts and refunds and a status (``matched``, ``amountDiffers``,
  ``refundDiffers``, ``notRecorded``: settled at the gateway, not succeeded here; ``notSettled``: succeeded here,
  no settlement at the gateway), the differences first.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from openbss.payments import ledger
from openbss.payments.gateway import Settlement
from openbss.payments.models import (
    Allocation,
    LedgerEntry,
    LedgerLine,
    LedgerRevenue,
    Payment,
    Receivable,
    Refund,
)
from openbss.pricing.money import round_money

BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")
REPORTS = ("trialBalance", "arAging", "cashReceipts", "deferredRevenue", "revenue", "arAgingBySegment",
           "gatewayReconciliation")
#: reports that need more than the tenant's tables (the accounts' segments; the gateway's settlements)
SERVICE_REPORTS = ("arAgingBySegment", "gatewayReconciliation")


def bucket(days_past_due: int) -> str:
    if days_past_due <= 0:
        return "current"
    if days_past_due <= 30:
        return "1-30"
    if days_past_due <= 60:
        return "31-60"
    if days_past_due <= 90:
        return "61-90"
    return "90+"


async def ar_aging(session: AsyncSession, as_of: date) -> list[dict[str, Any]]:
    paid = func.coalesce(select(func.sum(Allocation.amount)).where(Allocation.bill_id == Receivable.bill_id)
                         .correlate(Receivable).scalar_subquery(), 0)
    rows = await session.execute(select(Receivable.currency, Receivable.due_date, Receivable.amount - paid)
                                 .where(Receivable.amount - paid > 0, Receivable.bill_date <= as_of))
    totals: dict[str, dict[str, Decimal]] = defaultdict(lambda: {b: Decimal(0) for b in BUCKETS})
    counts: dict[str, int] = defaultdict(int)
    for currency, due, remaining in rows:
        totals[currency][bucket((as_of - due).days)] += Decimal(remaining)
        counts[currency] += 1
    return [{"currency": c, "bills": counts[c], **{b: v for b, v in totals[c].items()},
             "total": sum(totals[c].values(), Decimal(0))} for c in sorted(totals)]


async def ar_aging_by_segment(session: AsyncSession, as_of: date,
                              segment_of: Callable[[str], Awaitable[str]]) -> list[dict[str, Any]]:
    """The aging per customer segment and currency; ``segment_of`` gives a billing account's segment."""
    paid = func.coalesce(select(func.sum(Allocation.amount)).where(Allocation.bill_id == Receivable.bill_id)
                         .correlate(Receivable).scalar_subquery(), 0)
    rows = await session.execute(select(Receivable.billing_account_id, Receivable.currency, Receivable.due_date,
                                        Receivable.amount - paid)
                                 .where(Receivable.amount - paid > 0, Receivable.bill_date <= as_of))
    totals: dict[tuple[str, str], dict[str, Decimal]] = defaultdict(lambda: {b: Decimal(0) for b in BUCKETS})
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for account_id, currency, due, remaining in rows.all():
        key = (await segment_of(str(account_id)), str(currency))
        totals[key][bucket((as_of - due).days)] += Decimal(remaining)
        counts[key] += 1
    return [{"segment": k[0], "currency": k[1], "bills": counts[k], **dict(totals[k].items()),
             "total": sum(totals[k].values(), Decimal(0))} for k in sorted(totals)]


def window(start: date, end: date) -> tuple[datetime, datetime]:
    """``[start, end]`` as UTC instants ``[start 00:00, the day after end 00:00)``."""
    return (datetime.combine(start, time(0), tzinfo=UTC),
            datetime.combine(end + timedelta(days=1), time(0), tzinfo=UTC))


async def gateway_reconciliation(session: AsyncSession, gateway: str, settlements: Sequence[Settlement],
                                 start: date, end: date) -> list[dict[str, Any]]:
    """The gateway's settlements of ``[start, end]`` (of this tenant: the caller filters) against the payments
    recorded through that gateway (succeeded or charged back, created in the period or settled in it)."""
    lo, hi = window(start, end)
    keys = [s.idempotency_key for s in settlements]
    ours = {r.id: r for r in (await session.execute(select(Payment).where(
        Payment.gateway == gateway, Payment.state.in_(("succeeded", "chargeback")),
        Payment.id.in_(keys) | ((Payment.created_at >= lo) & (Payment.created_at < hi))))).scalars().all()}
    rows: list[dict[str, Any]] = []
    for s in settlements:
        p = ours.pop(s.idempotency_key, None)
        status = "notRecorded" if p is None else "amountDiffers" if p.amount != s.amount else \
            "refundDiffers" if Decimal(p.refunded) != s.refunded else "matched"
        rows.append({"payment": s.idempotency_key, "reference": s.reference, "currency": s.currency,
                     "gatewayAmount": s.amount, "recordedAmount": p.amount if p else None,
                     "gatewayRefunded": s.refunded, "recordedRefunded": Decimal(p.refunded) if p else None,
                     "settledAt": s.settled_at.isoformat(), "status": status})
    for p in ours.values():
        rows.append({"payment": p.id, "reference": p.gateway_ref or "", "currency": p.currency,
                     "gatewayAmount": None, "recordedAmount": p.amount, "gatewayRefunded": None,
                     "recordedRefunded": Decimal(p.refunded), "settledAt": None, "status": "notSettled"})
    rows.sort(key=lambda r: (r["status"] == "matched", r["payment"]))
    return rows


async def cash_receipts(session: AsyncSession, start: date, end: date) -> list[dict[str, Any]]:
    """Receipts of [start, end) (UTC dates)."""
    lo = datetime.combine(start, time(0), tzinfo=ZoneInfo("UTC"))
    hi = datetime.combine(end, time(0), tzinfo=ZoneInfo("UTC"))
    kind = Payment.body["paymentMethod"]["@referredType"].astext
    received = await session.execute(
        select(kind, Payment.currency, func.count(), func.sum(Payment.amount))
        .where(Payment.state == "succeeded", Payment.last_update >= lo, Payment.last_update < hi)
        .group_by(kind, Payment.currency))
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for method, currency, count, amount in received:
        out[(method or "unknown", currency)] = {"method": method or "unknown", "currency": currency,
                                                "payments": count, "received": Decimal(amount),
                                                "refunded": Decimal(0)}
    refunded = await session.execute(
        select(kind, Refund.currency, func.sum(Refund.amount)).join(Payment, Payment.id == Refund.payment_id)
        .where(Refund.state == "succeeded", Refund.created_at >= lo, Refund.created_at < hi)
        .group_by(kind, Refund.currency))
    for method, currency, amount in refunded:
        row = out.setdefault((method or "unknown", currency), {
            "method": method or "unknown", "currency": currency, "payments": 0, "received": Decimal(0),
            "refunded": Decimal(0)})
        row["refunded"] = Decimal(amount)
    for row in out.values():
        row["net"] = row["received"] - row["refunded"]
    return [out[k] for k in sorted(out)]


async def deferred_revenue(session: AsyncSession, start: date, end: date) -> list[dict[str, Any]]:
    """Deferred revenue over ``[start, end]`` by accounting date, per currency (amounts as the liability: credit
    positive): opening balance, billed in advance (bill finalizations), recognized (the recognition job), closing."""
    net = func.sum(LedgerLine.credit - LedgerLine.debit)
    base = (select(LedgerEntry.currency, net).join(LedgerEntry, LedgerEntry.id == LedgerLine.entry_id)
            .where(LedgerLine.account_code == ledger.DEFERRED).group_by(LedgerEntry.currency))
    opening = dict((await session.execute(base.where(LedgerEntry.accounting_date < start))).all())
    period = base.where(LedgerEntry.accounting_date >= start, LedgerEntry.accounting_date <= end)
    recognized = dict((await session.execute(period.where(LedgerEntry.source_type == "Deferral"))).all())
    billed = dict((await session.execute(period.where(LedgerEntry.source_type != "Deferral"))).all())
    out = []
    for currency in sorted(set(opening) | set(recognized) | set(billed)):
        o, b, r = (Decimal(d.get(currency) or 0) for d in (opening, billed, recognized))
        out.append({"currency": currency, "start": start.isoformat(), "end": end.isoformat(), "opening": o,
                    "billed": b, "recognized": -r, "closing": o + b + r})
    return out


async def revenue(session: AsyncSession, start: date, end: date) -> list[dict[str, Any]]:
    """Billed revenue of the bills dated in ``[start, end]``, by month, product and tax rate."""
    month = func.to_char(LedgerRevenue.period, "YYYY-MM")
    rows = await session.execute(
        select(month, LedgerRevenue.product_id, func.max(LedgerRevenue.product_name), LedgerRevenue.tax_rate,
               LedgerRevenue.currency, func.sum(LedgerRevenue.net), func.sum(LedgerRevenue.tax))
        .where(LedgerRevenue.period >= start, LedgerRevenue.period <= end)
        .group_by(month, LedgerRevenue.product_id, LedgerRevenue.tax_rate, LedgerRevenue.currency)
        .order_by(month, LedgerRevenue.currency, LedgerRevenue.product_id, LedgerRevenue.tax_rate))
    return [{"period": p, "product": product or "", "productName": name or "", "taxRate": rate or "",
             "currency": currency, "net": Decimal(net), "tax": Decimal(tax)}
            for p, product, name, rate, currency, net, tax in rows]


def revenue_svg(rows: list[dict[str, Any]], start: date, end: date) -> str:
    """Billed revenue (net) by month as a bar chart (SVG drawn here), one bar per month and currency."""
    width, height, left, bottom, top = 640, 320, 70, 40, 40
    per: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for r in rows:
        per[(str(r["period"]), str(r["currency"]))] += Decimal(r["net"])
    values = sorted((k, round_money(v, k[1])) for k, v in per.items())
    currencies = {c for _, c in per}
    peak = max((abs(v) for _, v in values), default=Decimal(0)) or Decimal(1)
    slot = (width - left - 20) / max(len(values), 1)
    title = escape(f"Revenue by month, {start} to {end}")
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{title}">', f"<title>{title}</title>",
             f'<text x="{width / 2}" y="22" text-anchor="middle" font-family="sans-serif" font-size="15">'
             f"{title}</text>",
             f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" stroke="#333"/>']
    plot = height - bottom - top
    for i, ((month, currency), value) in enumerate(values):
        h = float(max(value, Decimal(0)) / peak) * plot
        x = left + i * slot + slot * 0.15
        y = height - bottom - h
        label = escape(f"{month} {currency}" if len(currencies) > 1 else month)
        parts += [f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" fill="#3a6ea5">'
                  f"<title>{label}: {value}</title></rect>",
                  f'<text x="{x + slot * 0.35:.1f}" y="{y - 4:.1f}" text-anchor="middle" font-family="sans-serif" '
                  f'font-size="11">{value}</text>',
                  f'<text x="{x + slot * 0.35:.1f}" y="{height - bottom + 16}" text-anchor="middle" '
                  f'font-family="sans-serif" font-size="11">{label}</text>']
    if not values:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" font-family="sans-serif">'
                     "no revenue billed</text>")
    parts.append("</svg>")
    return "\n".join(parts)


def aging_svg(rows: list[dict[str, Any]], as_of: date) -> str:
    """The accounts-receivable aging as a bar chart (SVG drawn here: no script, no external resource), one group
    of bars per currency."""
    width, height, left, bottom, top = 640, 320, 70, 40, 40
    values = [(r["currency"], b, Decimal(r[b])) for r in rows for b in BUCKETS]
    peak = max((v for _, _, v in values), default=Decimal(0)) or Decimal(1)
    slot = (width - left - 20) / max(len(values), 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="Receivables aging as of {as_of}">',
             f'<title>Receivables aging as of {as_of}</title>',
             f'<text x="{width / 2}" y="22" text-anchor="middle" font-family="sans-serif" font-size="15">'
             f'Receivables aging as of {as_of}</text>',
             f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" stroke="#333"/>']
    colours = {"current": "#4c9f70", "1-30": "#c8b02f", "31-60": "#e08a2c", "61-90": "#d2552b", "90+": "#9b1d20"}
    plot = height - bottom - top
    for i, (currency, name, value) in enumerate(values):
        h = float(value / peak) * plot
        x = left + i * slot + slot * 0.15
        y = height - bottom - h
        label = escape(f"{name} {currency}" if len(rows) > 1 else name)
        parts += [f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" '
                  f'fill="{colours[name]}"><title>{label}: {value}</title></rect>',
                  f'<text x="{x + slot * 0.35:.1f}" y="{y - 4:.1f}" text-anchor="middle" font-family="sans-serif" '
                  f'font-size="11">{value}</text>',
                  f'<text x="{x + slot * 0.35:.1f}" y="{height - bottom + 16}" text-anchor="middle" '
                  f'font-family="sans-serif" font-size="11">{label}</text>']
    if not values:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" font-family="sans-serif">'
                     'nothing is owed</text>')
    parts.append("</svg>")
    return "\n".join(parts)


async def report(session: AsyncSession, name: str, as_of: date, start: date | None = None, *,
                 segment_of: Callable[[str], Awaitable[str]] | None = None, gateway: str | None = None,
                 settlements: Sequence[Settlement] = ()) -> list[dict[str, Any]]:
    """A report's rows. ``arAgingBySegment`` needs ``segment_of``; ``gatewayReconciliation`` the gateway's name
    and its settlements of the period (asked before the transaction: a network call)."""
    if name == "trialBalance":
        return await ledger.trial_balance(session)
    if name == "arAging":
        return await ar_aging(session, as_of)
    if name == "cashReceipts":
        return await cash_receipts(session, start or as_of.replace(day=1), as_of + timedelta(days=1))
    if name == "revenue":
        return await revenue(session, start or as_of.replace(day=1), as_of)
    if name == "deferredRevenue":
        return await deferred_revenue(session, start or as_of.replace(day=1), as_of)
    if name == "arAgingBySegment" and segment_of is not None:
        return await ar_aging_by_segment(session, as_of, segment_of)
    if name == "gatewayReconciliation" and gateway is not None:
        return await gateway_reconciliation(session, gateway, settlements, start or as_of.replace(day=1), as_of)
    raise KeyError(name)


def to_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()
