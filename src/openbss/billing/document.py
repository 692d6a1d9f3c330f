"""The PDF of an issued bill or credit note: pure (a bill and its lines in, bytes out), the same bytes every time
(ReportLab's invariant mode, the document date taken from the bill date), A4.

Content: the operator's name, the account and bill references, a summary (previous balance, this bill tax
excluded, taxes, tax included, credit applied, amount due and due date), the charges per product and period, the
usage lines with their quantities, the taxes per rate, the payment instructions, the itemized usage of the postpaid
lines (each record billed: local time, type, called party or destination, quantity, amount — appended after the
payment instructions, per product) and "Page n of N" on every page.
Text is set in Helvetica (a standard PDF font: nothing to embed).

Speed (a bill run issues thousands of documents): the styles, table styles and column widths are built once per
process; a table cell is a plain string (drawn directly) unless its text is wider than its column, only then a
wrapping ``Paragraph``; ``render_many`` renders a batch in worker processes. ReportLab's C accelerators
(``rl_accel``, the ``accel`` extra) format numbers, encode streams and measure text: without them the same work
runs in pure Python, about a quarter more CPU per document (4.5 ms instead of 3.5 in ``bench/bill_documents.py``).
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from datetime import datetime, tzinfo
from decimal import Decimal
from functools import cache, partial
from multiprocessing import get_context
from typing import Any, NamedTuple
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, StyleSheet1, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from openbss.pricing.money import round_money

BAND = colors.HexColor("#1f4e79")
CELL_FONT, CELL_SIZE = "Helvetica", 8
COLUMNS = [45 * mm, 40 * mm, 40 * mm, 25 * mm, 25 * mm]  # charge or usage, product, period or quantity, amounts
ITEMIZED = [30 * mm, 15 * mm, 65 * mm, 40 * mm, 25 * mm]  # time, type, called party or destination, quantity, amount
CELL_PADDING = 6  # points left and right of a cell's text (ReportLab's table default is 6 on each side)
BATCH_IN_PROCESS = 16  # ``render_many``: fewer documents than this are rendered in the calling process
RENDER_CHUNK = 8  # documents per task of a worker process

#: what one document is rendered from: the bill, its lines, the operator's name, the account's time zone and the
#: itemized usage (``Itemized``; None: none)
Job = tuple[dict[str, Any], list[dict[str, Any]], str, "tzinfo | None", "Itemized | None"]


class Itemized(NamedTuple):
    """The usage records a bill itemizes (``billing.service.itemized_usage``: plain dicts, in time order) and how
    many the bill billed in all (more than listed when a bill has more than the listing's limit)."""

    records: list[dict[str, Any]]
    total: int


class _NumberedCanvas(Canvas):
    """Keeps the pages until the end so that each can say "Page n of N"."""

    def __init__(self, *args: Any, decorate: Callable[[Canvas, int, int], None], created: str,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._decorate = decorate
        self._pages: list[dict[str, Any]] = []
        self.setDateFormatter(lambda *_: created)

    def showPage(self) -> None:
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for state in self._pages:
            self.__dict__.update(state)
            self._decorate(self, self._pageNumber, total)
            super().showPage()
        super().save()


@cache
def _styles() -> tuple[StyleSheet1, ParagraphStyle]:
    """The sample style sheet and the style of a wrapped table cell (the table's own font and size), once per
    process."""
    styles = getSampleStyleSheet()
    return styles, ParagraphStyle("cell", parent=styles["BodyText"], fontName=CELL_FONT, fontSize=CELL_SIZE,
                                  leading=CELL_SIZE * 1.2, spaceBefore=0, spaceAfter=0)


@cache
def _table_styles() -> tuple[TableStyle, TableStyle]:
    """The summary's table style and the charge and usage tables' (a header band, a grid, amounts right)."""
    summary = TableStyle([("ALIGN", (1, 0), (1, -1), "RIGHT"), ("FONTNAME", (0, -2), (-1, -2), "Helvetica-Bold"),
                          ("LINEABOVE", (0, -2), (-1, -2), 0.5, colors.black)])
    grid = TableStyle([("GRID", (0, 0), (-1, -1), 0.25, colors.grey), ("BACKGROUND", (0, 0), (-1, 0), BAND),
                       ("TEXTCOLOR", (0, 0), (-1, 0), colors.white), ("ALIGN", (3, 1), (-1, -1), "RIGHT"),
                       ("VALIGN", (0, 0), (-1, -1), "TOP"), ("FONTSIZE", (0, 0), (-1, -1), CELL_SIZE),
                       ("LEADING", (0, 0), (-1, -1), CELL_SIZE * 1.2)])
    return summary, grid


@cache
def _fits(text: str, width: float) -> bool:
    return stringWidth(text, CELL_FONT, CELL_SIZE) <= width - 2 * CELL_PADDING


def _cell(text: str, column: int, widths: Sequence[float] = COLUMNS) -> str | Paragraph:
    """A table cell: the plain text when it fits its column on one line, else a paragraph that wraps."""
    if _fits(text, widths[column]):
        return text
    return Paragraph(escape(text), _styles()[1])


def _amount(money: dict[str, Any] | None) -> str:
    if not money:
        return ""
    unit = str(money.get("unit") or "EUR")
    return f"{round_money(Decimal(str(money.get('value', 0))), unit):,} {unit}"


def _day(value: str | None, tz: tzinfo | None = None) -> str:
    """The date of an instant: in ``tz`` (the account's: billing dates are local midnights there) when given."""
    if not value or tz is None:
        return (value or "")[:10]
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(tz).date().isoformat()
    except ValueError:
        return value[:10]


def _quantity(record: dict[str, Any]) -> str:
    """A record's quantity as a customer reads it: minutes and seconds, megabytes, or a count; what an allowance
    paid is said."""
    units, kind = int(record.get("units") or 0), str(record.get("usageType") or "")
    if kind == "voice":
        text = f"{units // 60}:{units % 60:02d} min"
    elif kind == "data":
        text = f"{Decimal(units) / 1048576:,.2f} MB"
    else:
        text = f"{units:,}"
    included = int(record.get("allowanceUnits") or 0)
    if units and included >= units:
        return f"{text}, included"
    if included:
        return f"{text}, part included"
    return text


def _time(value: str | None, tz: tzinfo | None) -> str:
    """Local date and time of an instant (minutes)."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value[:16]
    return (moment.astimezone(tz) if tz is not None else moment).strftime("%Y-%m-%d %H:%M")


def _product_names(lines: list[dict[str, Any]]) -> dict[str, str]:
    """Product id -> name, from the lines whose product reference names it."""
    return {str(ref["id"]): str(ref["name"]) for ln in lines
            if (ref := ln.get("product") or {}).get("id") and ref.get("name")}


def _itemized(itemized: Itemized, lines: list[dict[str, Any]], tz: tzinfo | None,
              heading: ParagraphStyle) -> list[Flowable]:
    """The itemized usage, one table per product (in the order of the products' names)."""
    _, grid = _table_styles()
    names = _product_names(lines)
    by_product: dict[str, list[dict[str, Any]]] = {}
    for r in itemized.records:
        by_product.setdefault(str(r.get("productId") or ""), []).append(r)
    story: list[Flowable] = [Spacer(1, 8 * mm), Paragraph("<b>Itemized usage</b>", heading)]
    if itemized.total > len(itemized.records):
        story.append(Paragraph(f"The first {len(itemized.records):,} of {itemized.total:,} records billed are "
                               "listed; every record is available through your account.", _styles()[0]["Normal"]))
    for product in sorted(by_product, key=lambda p: (names.get(p) or p, p)):
        rows: list[list[Any]] = [["Time", "Type", "Called party, destination", "Quantity", "Tax excl."]]
        rows += [[_time(r.get("usageDate"), tz), str(r.get("usageType") or ""),
                  _cell(str(r.get("detail") or ""), 2, ITEMIZED), _quantity(r),
                  _amount({"value": r.get("amount"), "unit": r.get("currency")})]
                 for r in by_product[product]]
        table = Table(rows, colWidths=ITEMIZED, repeatRows=1)
        table.setStyle(grid)
        story += [Spacer(1, 3 * mm), Paragraph(escape(names.get(product) or product or "Other usage"),
                                               _styles()[0]["Normal"]), Spacer(1, 1.5 * mm), table]
    return story


def render(bill: dict[str, Any], lines: list[dict[str, Any]], *, operator: str, tz: tzinfo | None = None,
           itemized: Itemized | None = None) -> bytes:
    """The PDF of ``bill`` (a rendered TMF678 CustomerBill) with its ``lines`` (appliedCustomerBillingRate) and the
    ``itemized`` usage of its postpaid lines; dates in the account's time zone ``tz``."""
    def day(value: str | None) -> str:
        return _day(value, tz)

    styles, _ = _styles()
    summary_style, grid = _table_styles()
    normal = styles["Normal"]
    credit_note = bill.get("category") == "creditNote"
    title = f"{'Credit note' if credit_note else 'Bill'} {bill.get('billNo', '')}"
    buffer = io.BytesIO()
    created = (bill.get("billDate") or "2000-01-01T00:00:00Z").replace("-", "").replace(":", "")[:15]

    def decorate(canv: Canvas, page: int, total: int) -> None:
        canv.saveState()
        canv.setFillColor(BAND)
        canv.rect(0, A4[1] - 18 * mm, A4[0], 18 * mm, stroke=0, fill=1)
        canv.setFillColor(colors.white)
        canv.setFont("Helvetica-Bold", 14)
        canv.drawString(15 * mm, A4[1] - 12 * mm, operator)
        canv.drawRightString(A4[0] - 15 * mm, A4[1] - 12 * mm, title)
        canv.setFillColor(colors.grey)
        canv.setFont("Helvetica", 8)
        canv.drawString(15 * mm, 10 * mm, f"{operator} · {bill.get('billNo', '')}")
        canv.drawRightString(A4[0] - 15 * mm, 10 * mm, f"Page {page} of {total}")
        canv.restoreState()

    account = bill.get("billingAccount") or {}
    period = bill.get("billingPeriod") or {}
    story: list[Flowable] = [
        Paragraph(f"<b>{escape(title)}</b>", styles["Heading2"]),
        Paragraph(f"Account {escape(str(account.get('name') or ''))} ({escape(str(account.get('id', '')))})",
                  normal),
        Paragraph(f"Bill date {day(bill.get('billDate'))} · period {day(period.get('startDateTime'))} to "
                  f"{day(period.get('endDateTime'))} (end excluded)", normal),
    ]
    if credit_note and bill.get("correctedBill"):
        story.append(Paragraph(f"Corrects bill {escape(str(bill['correctedBill'].get('billNo', '')))}: "
                               f"{escape(str(bill.get('reason', '')))}", normal))
    story.append(Spacer(1, 5 * mm))
    summary = [["Previous balance", _amount(bill.get("previousBalance"))],
               ["This document, tax excluded", _amount(bill.get("taxExcludedAmount"))],
               *[[f"{t.get('taxCategory')} {t.get('taxRate')} %", _amount(t.get("taxAmount"))]
                 for t in bill.get("taxItem") or []],
               ["This document, tax included", _amount(bill.get("taxIncludedAmount"))],
               ["Credit applied", _amount(bill.get("creditApplied"))],
               ["Amount due", _amount(bill.get("amountDue"))],
               ["Due date", day(bill.get("paymentDueDate"))]]
    table = Table(summary, colWidths=[110 * mm, 60 * mm])
    table.setStyle(summary_style)
    story += [table, Spacer(1, 6 * mm), Paragraph("<b>Charges per product and period</b>", styles["Heading3"])]
    names = _product_names(lines)  # a usage line's product reference may carry no name: another line's has it
    rows: list[list[Any]] = [["Charge", "Product", "Period", "Tax excl.", "Tax incl."]]
    usage: list[list[Any]] = [["Usage", "Product", "Quantity", "Records", "Tax excl."]]
    for ln in sorted(lines, key=lambda x: ((x.get("product") or {}).get("id", ""),
                                           (x.get("periodCoverage") or {}).get("startDateTime", ""), x.get("name"))):
        chars = {c.get("name"): c.get("value") for c in ln.get("characteristic") or []}
        name = str(ln.get("name"))
        ref = ln.get("product") or {}
        product = str(ref.get("name") or names.get(str(ref.get("id"))) or ref.get("id") or "")
        cover = ln.get("periodCoverage") or {}
        if chars.get("chargeType") == "usageCharge":
            try:
                quantity = _quantity({"units": int(chars.get("units") or 0), "usageType": chars.get("usageType")})
            except (TypeError, ValueError):
                quantity = str(chars.get("units", ""))
            usage.append([_cell(name, 0), _cell(product, 1),
                          _cell(f"{quantity} ({chars.get('usageType', '')})", 2),
                          str(chars.get("records", "")), _amount(ln.get("taxExcludedAmount"))])
        rows.append([_cell(name, 0), _cell(product, 1),
                     f"{day(cover.get('startDateTime'))} – {day(cover.get('endDateTime'))}",
                     _amount(ln.get("taxExcludedAmount")), _amount(ln.get("taxIncludedAmount"))])
    charges = Table(rows, colWidths=COLUMNS, repeatRows=1)
    charges.setStyle(grid)
    story.append(charges)
    if len(usage) > 1:
        story += [Spacer(1, 6 * mm), Paragraph("<b>Usage</b>", styles["Heading3"])]
        used = Table(usage, colWidths=COLUMNS, repeatRows=1)
        used.setStyle(grid)
        story.append(used)
    story += [Spacer(1, 8 * mm), Paragraph(
        "Nothing to pay: the credit is kept on your account and used by your next bills." if credit_note else
        f"Please pay {_amount(bill.get('amountDue'))} by {day(bill.get('paymentDueDate'))}, quoting "
        f"{escape(str(bill.get('billNo', '')))}.", normal)]
    if itemized is not None and itemized.records:
        story += _itemized(itemized, lines, tz, styles["Heading3"])
    doc = SimpleDocTemplate(buffer, pagesize=A4, topMargin=25 * mm, bottomMargin=18 * mm, leftMargin=15 * mm,
                            rightMargin=15 * mm, invariant=1, title=title, author=operator)
    doc.build(story, canvasmaker=partial(_NumberedCanvas, decorate=decorate, created=created))
    return buffer.getvalue()


def _render_job(job: Job) -> bytes:
    bill, lines, operator, tz, itemized = job
    return render(bill, lines, operator=operator, tz=tz, itemized=itemized)


def render_chunk(jobs: list[Job]) -> list[bytes]:
    """The PDFs of ``jobs`` rendered one after the other (what a worker process runs)."""
    return [_render_job(j) for j in jobs]


_pool: ProcessPoolExecutor | None = None


def pool() -> Executor:
    """The worker processes of ``render_many`` (one per core, started on first use, with ``spawn``: a clean
    interpreter, nothing inherited from an event loop, its connections or threads)."""
    global _pool
    if _pool is None:
        _pool = ProcessPoolExecutor(max_workers=os.cpu_count() or 1, mp_context=get_context("spawn"))
    return _pool


def render_many(jobs: Sequence[Job], *, executor: Executor | None = None, workers: int | None = None) -> list[bytes]:
    """The PDFs of many documents (``(bill, lines, operator, tz, itemized)`` each), in order, byte-identical to
    ``render``'s. A batch of ``BATCH_IN_PROCESS`` or more goes to worker processes (``executor``, else the module's
    ``pool``) in chunks of ``RENDER_CHUNK`` (small chunks keep every worker busy to the end, whichever is slowed
    down); a smaller one, or ``workers=1``, is rendered here."""
    if workers == 1 or len(jobs) < BATCH_IN_PROCESS:
        return [_render_job(j) for j in jobs]
    chunks = [list(jobs[i:i + RENDER_CHUNK]) for i in range(0, len(jobs), RENDER_CHUNK)]
    return [pdf for chunk in (executor or pool()).map(render_chunk, chunks) for pdf in chunk]
