"""SEPA direct debits and bank statements.

**The direct-debit batch** (pain.008, generated with ``sepaxml``): every open bill of an account whose default
payment method is an active SEPA mandate becomes a payment in flight (``pending``, gateway ``sepa``, its end-to-end
id the payment id without dashes) and one transaction of the file. The partial unique index of payments allows one
payment in flight per bill, so a second batch before the bank answered collects nothing twice.

**The bank statement** (camt.053, parsed with ``pycamt``, or MT940, parsed with ``mt-940``): each line is matched
once (``payments_statement_line``, unique per tenant and the bank's reference):

* a credit whose end-to-end id is a SEPA payment in flight: the debit was collected — the payment succeeds (and is
  allocated and posted);
* a debit whose end-to-end id is a SEPA payment in flight: the debit was returned — the payment fails;
* a credit whose remittance information names a bill number: an incoming transfer — a ``bankAccountTransfer``
  payment of the bill's account, succeeded, settling that bill first;
* anything else goes to the exceptions queue (``payments_statement_exception``) with the reason, for a person.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import mt940
from pycamt.parser import Camt053ParseError, Camt053Parser
from sepaxml import SepaDD
from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from openbss.payments import ledger
from openbss.payments.errors import InvalidPayment
from openbss.payments.models import (
    Allocation,
    Payment,
    PaymentMethod,
    Receivable,
    StatementException,
    StatementLine,
    Transition,
)
from openbss.payments.service import PAYMENT_TYPE, AllocationRequest, PaymentService
from openbss.platform.db import insert_rows, utcnow
from openbss.platform.errors import Conflict
from openbss.platform.tmf.resource import Context
from openbss.platform.tmf.spec import format_datetime
from openbss.pricing.money import is_currency, round_money, to_decimal
from openbss.settings import DEV_SEPA_CREDITOR_IBAN, Settings

SEPA = "sepa"


def sepa_creditor(settings: Settings) -> dict[str, str]:
    """The creditor of the tenant's SEPA direct-debit batches (``OPENBSS_PAYMENTS_SEPA_CREDITOR_*``). The built-in
    example creditor is refused outside demo mode: a batch would collect in the name of an account that is not
    the operator's."""
    if not settings.demo_mode and settings.payments_sepa_creditor_iban == DEV_SEPA_CREDITOR_IBAN:
        raise Conflict("the SEPA creditor is the built-in example (DE89370400440532013000): set "
                       "OPENBSS_PAYMENTS_SEPA_CREDITOR_NAME, _IBAN, _BIC and _ID to the operator's own",
                       code="SEPA_CREDITOR_NOT_CONFIGURED")
    return {"name": settings.payments_sepa_creditor_name, "iban": settings.payments_sepa_creditor_iban,
            "bic": settings.payments_sepa_creditor_bic, "creditor_id": settings.payments_sepa_creditor_id}


def end_to_end(payment_id: str) -> str:
    return payment_id.replace("-", "")


async def direct_debit_batch(payments: PaymentService, ctx: Context, creditor: dict[str, str],
                             collection_date: date) -> tuple[bytes, list[str]]:
    """The pain.008 file collecting every open bill payable by SEPA mandate, and the payments it made."""
    sepa = SepaDD({"name": creditor["name"], "IBAN": creditor["iban"], "BIC": creditor["bic"], "batch": True,
                   "creditor_id": creditor["creditor_id"], "currency": "EUR"}, schema="pain.008.001.02")
    paid = func.coalesce(select(func.sum(Allocation.amount)).where(Allocation.bill_id == Receivable.bill_id)
                         .correlate(Receivable).scalar_subquery(), 0)
    in_flight = select(Payment.bill_id).where(Payment.state.in_(("initiated", "pending", "unknown")),
                                              Payment.bill_id.is_not(None))
    rows = (await ctx.session.execute(
        select(Receivable, Receivable.amount - paid, PaymentMethod)
        .join(PaymentMethod, (PaymentMethod.billing_account_id == Receivable.billing_account_id)
              & PaymentMethod.is_default & (PaymentMethod.kind == "directDebit") & (PaymentMethod.status == "active"))
        .where(Receivable.amount - paid > 0, Receivable.currency == "EUR", Receivable.bill_id.not_in(in_flight))
        .order_by(Receivable.bill_date, Receivable.number))).all()
    made: list[str] = []
    for receivable, due, method in rows:
        mandate = method.body
        amount = Decimal(due)
        payment_id = str(uuid.uuid4())
        now = format_datetime(utcnow())
        doc = {"id": payment_id, "@type": PAYMENT_TYPE, "@baseType": "Payment",
               "@schemaLocation": f"{ctx.base_url}/payments/v1/schema/{PAYMENT_TYPE}.json",
               "account": {"id": receivable.billing_account_id, "@referredType": "BillingAccount"},
               "paymentMethod": {"id": method.id, "name": mandate.get("name"), "@referredType": "directDebit"},
               "totalAmount": {"unit": "EUR", "value": amount}, "amount": {"unit": "EUR", "value": amount},
               "paymentItem": [{"item": {"id": receivable.bill_id, "@referredType": "CustomerBill"}}],
               "correlatorId": end_to_end(payment_id), "paymentDate": now, "status": "pending", "statusDate": now,
               "description": f"SEPA direct debit of bill {receivable.number or receivable.bill_id}"}
        await payments.payments.record(ctx, doc, columns={
            "billing_account_id": receivable.billing_account_id, "method_id": method.id,
            "bill_id": receivable.bill_id, "state": "pending", "amount": amount, "currency": "EUR",
            "gateway": SEPA, "gateway_ref": end_to_end(payment_id)})
        await payments._transition(ctx.session, payment_id, None, "pending", "sepa-batch", "pain.008")
        signed = str(mandate.get("signatureDate", ""))[:10]
        sepa.add_payment({
            "name": str(mandate.get("owner") or "Debtor")[:70], "IBAN": str(mandate["accountNumber"]),
            "BIC": str(mandate.get("BIC") or "NOTPROVIDED"), "amount": int(amount.scaleb(2)),
            "type": "RCUR", "collection_date": collection_date,
            "mandate_id": str(mandate["mandateId"]), "mandate_date": date.fromisoformat(signed),
            "description": f"Bill {receivable.number or receivable.bill_id}",
            "endtoend_id": end_to_end(payment_id)})
        made.append(payment_id)
    if not made:
        return b"", []
    return bytes(sepa.export(validate=True)), made


async def import_statement(payments: PaymentService, ctx: Context, body: bytes, source: str, *,
                           batch: int | None = None) -> dict[str, Any]:
    """Match the lines of a bank statement — camt.053 (XML) or MT940 (SWIFT text), told apart by their first
    characters — to payments and bills (each line once); the rest is queued. The lines are matched as sets of
    ``batch`` lines (``BATCH_LINES`` by default; 0: line by line, the same outcome)."""
    stripped = body.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"<"):
        lines = camt053_lines(body)
        kind = "camt.053"
    elif stripped.startswith((b":20:", b"{1:", b":940:")) or b"\n:61:" in body or b"\n:60F:" in body:
        lines = mt940_lines(body, source)
        kind = "MT940"
    else:
        raise InvalidPayment("the statement is neither a camt.053 file (XML) nor an MT940 file (':20:' ...)")
    report: dict[str, Any] = {"format": kind, "lines": 0, "collected": 0, "returned": 0, "transfers": 0,
                              "exceptions": 0, "alreadyImported": 0}
    # the bills the remittance texts may name, found in one query for the whole file (not per word and line)
    words = {w for line in lines for w in _words(line)}
    bills: dict[str, Receivable] = {}
    for start in range(0, len(words), 5000):
        chunk = sorted(words)[start:start + 5000]
        for r in (await ctx.session.execute(select(Receivable).where(Receivable.number.in_(chunk)))).scalars():
            bills.setdefault(str(r.number), r)
    refs = _references(lines, source)
    if batch is None:
        batch = BATCH_LINES
    if batch <= 0:  # line by line (the reference behaviour the batches reproduce)
        for line, ref in zip(lines, refs, strict=True):
            report["lines"] += 1
            fresh = (await ctx.session.execute(pg_insert(StatementLine).values(
                reference=ref, source=source[:200], outcome="pending").on_conflict_do_nothing()
                .returning(StatementLine.reference))).scalar()
            if fresh is None:
                report["alreadyImported"] += 1
                continue
            outcome, payment_id = await _match(payments, ctx, line, ref, source, bills)
            report[outcome] += 1
            await ctx.session.execute(update(StatementLine).where(StatementLine.reference == ref)
                                      .values(outcome=outcome, payment_id=payment_id))
        return report
    # Every lock the import needs is taken first, each set in one statement and a fixed order: the lines (claimed in
    # reference order: a concurrent import of an overlapping file waits here for this one to commit, and then finds
    # those lines imported), then the accounts the lines may pay (in lock-key order). Two imports at once therefore
    # never deadlock, whatever their files and batches.
    session = ctx.session
    claimed = {str(r[0]) for r in await insert_rows(
        session, StatementLine, [{"reference": r, "source": source[:200], "outcome": "pending"}
                                 for r in sorted(set(refs))], on_conflict_do_nothing=True, returning=("reference",))}
    e2es = sorted({str(line["EndToEndId"]) for line in lines if line.get("EndToEndId")})
    debits: dict[str, str] = {}
    for start in range(0, len(e2es), 5000):
        debits.update({str(r): str(a) for r, a in (await session.execute(
            select(Payment.gateway_ref, Payment.billing_account_id).where(
                Payment.gateway == SEPA, Payment.gateway_ref.in_(e2es[start:start + 5000])))).all()})
    await payments.lock_accounts(ctx, [*{r.billing_account_id for r in bills.values()}, *debits.values()])
    seen: set[str] = set()
    for start in range(0, len(lines), batch):
        await _import_chunk(payments, ctx, lines[start:start + batch], refs[start:start + batch], source, bills,
                            report, seen, claimed, debits)
    return report


#: the statement lines matched per set of statements (``import_statement``'s ``batch``)
BATCH_LINES = 1000


def _references(lines: list[dict[str, Any]], source: str) -> list[str]:
    """The bank's reference of each line (what makes it imported once, whatever file carries it): MT940's line id;
    for camt.053, the entry's reference (``AcctSvcrRef``) with the transaction's end-to-end id, or else its rank
    among the transactions of that entry (an entry may hold several) — not the line's position in the file, so the
    same bank transaction in two files is one line; the file and position only for a line the bank gave no
    reference."""
    out: list[str] = []
    ranks: dict[str, int] = {}
    for index, line in enumerate(lines):
        ref = str(line.get("StatementLineId") or "")
        if not ref:
            bank_ref = str(line.get("TransactionID") or line.get("EndToEndId") or f"{source}#{index}")
            rank = ranks[bank_ref] = ranks.get(bank_ref, -1) + 1
            ref = f"{bank_ref}|{line.get('EndToEndId') or rank}"
        out.append(ref[:200])
    return out


@dataclass
class _Transfer:
    payment_id: str
    ref: str
    line: dict[str, Any]
    receivable: Receivable
    amount: Decimal
    currency: str


async def _import_chunk(payments: PaymentService, ctx: Context, lines: list[dict[str, Any]], refs: list[str],
                        source: str, bills: dict[str, Receivable], report: dict[str, Any], seen: set[str],
                        claimed: set[str], debits: dict[str, str]) -> None:
    """Match a chunk of lines as a set (those this import claimed; a line claimed elsewhere is already imported):
    the transfers allocated, posted and recorded together (``_transfers``); a line of a direct debit of ours
    (``debits``: end-to-end id → account) goes through ``_match`` in its turn, after the transfers before it."""
    session = ctx.session
    report["lines"] += len(lines)
    outcomes: list[tuple[str, str, str | None]] = []
    pending: list[_Transfer] = []
    for line, ref in zip(lines, refs, strict=True):
        if ref in seen or ref not in claimed:
            report["alreadyImported"] += 1
            continue
        seen.add(ref)
        outcome: str
        payment_id: str | None = None
        unusable = _unusable(line)
        amount = to_decimal(line.get("Amount")) if unusable is None else Decimal(0)
        currency = str(line.get("Currency") or "EUR")
        receivable = next((bills[w] for w in _words(line) if w in bills), None)
        if unusable is not None:
            outcome = _queue(ctx, line, ref, source, unusable)
        elif line.get("EndToEndId") and str(line["EndToEndId"]) in debits:
            await _transfers(payments, ctx, pending)
            outcome, payment_id = await _match(payments, ctx, line, ref, source, bills)
        elif line.get("CreditDebitIndicator") != "CRDT":
            outcome = _queue(ctx, line, ref, source, "a debit that is no direct debit of ours")
        elif receivable is None:
            outcome = _queue(ctx, line, ref, source, "no bill number in the remittance information")
        elif receivable.currency != currency:
            outcome = _queue(ctx, line, ref, source, f"{currency} for a bill in {receivable.currency}")
        else:
            payment_id = str(uuid.uuid4())
            pending.append(_Transfer(payment_id, ref, line, receivable, amount, currency))
            outcome = "transfers"
        report[outcome] += 1
        outcomes.append((ref, outcome, payment_id))
    await _transfers(payments, ctx, pending)
    await session.flush()  # the exceptions queued
    if outcomes:
        await session.execute(text(
            "UPDATE payments_statement_line s SET outcome = v.o, payment_id = v.p FROM unnest("
            "CAST(:r AS varchar[]), CAST(:o AS varchar[]), CAST(:p AS varchar[])) AS v(r, o, p) "
            "WHERE s.reference = v.r"),
            {"r": [o[0] for o in outcomes], "o": [o[1] for o in outcomes], "p": [o[2] for o in outcomes]})


async def _transfers(payments: PaymentService, ctx: Context, pending: list[_Transfer]) -> None:
    """Incoming transfers as a set (then ``pending`` is emptied): receipts the bank already holds, each allocated
    to the bill it names first (``allocate_many``), posted (``ledger.post_many``) and recorded ``succeeded`` with
    one transition (the kit's ``record_many``) — what ``_match`` does for one line."""
    if not pending:
        return
    session = ctx.session
    await payments.prefetch_zones(ctx, [t.receivable.billing_account_id for t in pending])
    allocations = await payments.allocate_many(ctx, [
        AllocationRequest(t.receivable.billing_account_id, t.payment_id, t.amount, [t.receivable.bill_id])
        for t in pending])
    await ledger.post_many(session, [
        ledger.Entry("Payment", t.payment_id, "paymentSucceeded", t.currency,
                     f"payment {t.payment_id} by bankAccountTransfer",
                     ledger.receipt_postings(t.amount, "bankAccountTransfer"),
                     await payments.local_day(ctx, t.receivable.billing_account_id)) for t in pending])
    now = format_datetime(utcnow())
    await payments.payments.record_many(ctx, [
        (_transfer_doc(ctx, t.payment_id, t.receivable, t.amount, t.currency, t.ref, t.line, now, allocation),
         {"billing_account_id": t.receivable.billing_account_id, "method_id": "bank-statement", "bill_id": None,
          "state": "succeeded", "amount": t.amount, "currency": t.currency, "gateway": None})
        for t, allocation in zip(pending, allocations, strict=True)])
    await insert_rows(session, Transition, [
        {"payment_id": t.payment_id, "from_state": None, "to_state": "succeeded", "source": "statement",
         "reason": t.ref[:300]} for t in pending])
    pending.clear()


def _transfer_doc(ctx: Context, payment_id: str, receivable: Receivable, amount: Decimal, currency: str, ref: str,
                  line: dict[str, Any], now: str, allocation: list[dict[str, Any]]) -> dict[str, Any]:
    """The TMF676 document of an incoming transfer: a ``bankAccountTransfer`` payment, succeeded."""
    return {"id": payment_id, "@type": PAYMENT_TYPE, "@baseType": "Payment",
            "@schemaLocation": f"{ctx.base_url}/payments/v1/schema/{PAYMENT_TYPE}.json",
            "account": {"id": receivable.billing_account_id, "@referredType": "BillingAccount"},
            "paymentMethod": {"id": "bank-statement", "name": "bank transfer", "@referredType": "bankAccountTransfer"},
            "totalAmount": {"unit": currency, "value": amount}, "amount": {"unit": currency, "value": amount},
            "paymentItem": [{"item": {"id": receivable.bill_id, "@referredType": "CustomerBill"}}],
            "correlatorId": ref, "paymentDate": now, "status": "succeeded", "statusDate": now,
            "allocation": allocation, "description": str(line.get("DebtorName") or "incoming transfer")[:200]}


class _Camt053Parser(Camt053Parser):
    """``pycamt``'s parser, its statement-level lookups done once per statement: it looks the statement's account
    up again for every entry (``.//Acct//Id//IBAN`` under the whole statement), which made a file's parsing
    quadratic in its lines (4,000 lines: 6.4 s; now linear)."""

    def __init__(self, xml: bytes) -> None:
        super().__init__(xml)
        #: (id of the statement element, path) → (the element, kept so that its id stays its own; the text)
        self._statement_texts: dict[tuple[int, str], tuple[Any, str | None]] = {}

    def _find_text(self, element: Any, xpath: str) -> str | None:
        if element is None or not str(getattr(element, "tag", "")).endswith(("}Stmt", "}Rpt", "Stmt", "Rpt")):
            return super()._find_text(element, xpath)
        key = (id(element), xpath)
        if key not in self._statement_texts:
            self._statement_texts[key] = (element, super()._find_text(element, xpath))
        return self._statement_texts[key][1]


def camt053_lines(xml: bytes) -> list[dict[str, Any]]:
    """The entries of a camt.053 statement (``pycamt``'s shape: Amount, Currency, CreditDebitIndicator, EndToEndId,
    RemittanceInformation, TransactionID, DebtorName, AdditionalEntryInformation)."""
    head = xml[:4096].upper()
    if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
        raise InvalidPayment("a statement with a DOCTYPE or entities is refused (camt.053 has none)")
    try:
        return list(_Camt053Parser(xml).get_transactions())
    except (Camt053ParseError, ValueError, SyntaxError) as exc:
        raise InvalidPayment(f"the statement is not a camt.053 file: {exc}") from exc


#: MT940 ``:86:`` values that mean "no reference"
_NO_REFERENCE = {"", "NONREF", "NOTPROVIDED"}


def mt940_lines(body: bytes, source: str) -> list[dict[str, Any]]:
    """The ``:61:`` lines of an MT940 statement (parsed by ``mt-940``, with the German ``:86:`` structure — EREF,
    SVWZ, the payer's name — where the bank fills it), in the shape camt.053 lines have. A line is identified by
    the account, the statement number and the bank's reference (or its position)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = body.decode("latin-1")
    processors: dict[str, list[Callable[..., dict[str, Any]]]] = {
        "pre_statement": [mt940.processors.date_fixup_pre_processor],
        "post_transaction_details": [mt940.processors.transaction_details_post_processor]}
    statement = mt940.models.Transactions(processors=processors)
    try:
        statement.parse(text)
    except Exception as exc:  # the library raises what its parsing meets (ValueError, KeyError, RuntimeError...)
        raise InvalidPayment(f"the statement is not an MT940 file: {exc}") from exc
    if not statement.data.get("account_identification") and not statement.transactions:
        raise InvalidPayment("the statement is not an MT940 file: no account (':25:') and no lines (':61:')")
    account = str(statement.data.get("account_identification") or "")
    number = str(statement.data.get("statement_number") or "")
    out: list[dict[str, Any]] = []
    for index, transaction in enumerate(statement.transactions):
        data = transaction.data
        money = data.get("amount")
        if money is None:
            raise InvalidPayment(f"MT940 line {index + 1} has no amount")
        status = str(data.get("status") or "")
        e2e = str(data.get("end_to_end_reference") or "").strip()
        bank_ref = str(data.get("bank_reference") or data.get("customer_reference") or "").strip()
        purpose = " ".join(str(data.get(k) or "") for k in ("purpose", "additional_purpose")).strip()
        reason = data.get("return_debit_notes") or data.get("posting_text")
        out.append({
            "Amount": str(abs(Decimal(str(money.amount)))), "Currency": str(data.get("currency") or money.currency),
            # C: credit, RD: reversal of a debit (money in); D: debit, RC: reversal of a credit (money out)
            "CreditDebitIndicator": "CRDT" if status in ("C", "RD") else "DBIT",
            "EndToEndId": None if e2e.upper() in _NO_REFERENCE else e2e,
            "TransactionID": None if bank_ref.upper() in _NO_REFERENCE else bank_ref,
            "RemittanceInformation": purpose, "DebtorName": data.get("applicant_name"),
            "AdditionalEntryInformation": reason, "BookingDate": str(data.get("date") or ""),
            "StatementLineId": f"mt940|{account}|{number}|{index if bank_ref.upper() in _NO_REFERENCE else bank_ref}",
        })
    return out


def _words(line: dict[str, Any]) -> list[str]:
    """The words of a line's remittance information (where a payer writes the bill number)."""
    remittance = " ".join(str(line.get(k) or "") for k in ("RemittanceInformationFull", "RemittanceInformation"))
    return [w.strip(".;") for w in remittance.replace(",", " ").split() if w.strip(".;")]


def _unusable(line: dict[str, Any]) -> str | None:
    """Why a line's amount is no money to match (unreadable, zero or negative, finer than its currency's minor
    unit, in no currency), or None."""
    try:
        amount = to_decimal(line.get("Amount"))
    except ValueError:
        return "the line has no readable amount"
    currency = str(line.get("Currency") or "EUR")
    if not is_currency(currency):
        return f"'{currency}' is not an ISO 4217 currency"
    if amount <= 0 or round_money(amount, currency) != amount:
        return f"{amount} {currency} is not a positive amount in {currency}'s minor units"
    return None


async def _match(payments: PaymentService, ctx: Context, line: dict[str, Any], ref: str, source: str,
                 bills: dict[str, Receivable]) -> tuple[str, str | None]:
    unusable = _unusable(line)
    if unusable is not None:
        return await _exception(ctx, line, ref, source, unusable), None
    amount = to_decimal(line.get("Amount"))
    currency = str(line.get("Currency") or "EUR")
    credit = line.get("CreditDebitIndicator") == "CRDT"
    e2e = line.get("EndToEndId")
    if e2e:
        payment = (await ctx.session.execute(select(Payment).where(
            Payment.gateway == SEPA, Payment.gateway_ref == e2e))).scalars().first()
        if payment is not None:
            if payment.state != "pending":
                return await _exception(ctx, line, ref, source,
                                        f"direct debit {e2e} is already {payment.state}"), payment.id
            if payment.amount != amount:
                return await _exception(ctx, line, ref, source,
                                        f"direct debit {e2e} was {payment.amount}, the bank says {amount}"), None
            if credit:
                await payments._move(ctx, payment.id, "succeeded", "statement", None)
                return "collected", payment.id
            reason = line.get("AdditionalEntryInformation") or "returned by the debtor's bank"
            await payments._move(ctx, payment.id, "failed", "statement", str(reason))
            return "returned", payment.id
    if credit:
        receivable = next((bills[w] for w in _words(line) if w in bills), None)
        if receivable is None:
            return await _exception(ctx, line, ref, source, "no bill number in the remittance information"), None
        if receivable.currency != currency:
            return await _exception(ctx, line, ref, source, f"{currency} for a bill in {receivable.currency}"), None
        payment_id = str(uuid.uuid4())
        now = format_datetime(utcnow())
        # a receipt the bank already holds: allocated, posted and recorded ``succeeded`` at once (one document
        # write and one transition, not a create and a state change)
        allocation = await payments.allocate(ctx, receivable.billing_account_id, payment_id, amount,
                                             [receivable.bill_id])
        await ledger.post(ctx.session, source_type="Payment", source_id=payment_id, event="paymentSucceeded",
                          currency=currency, description=f"payment {payment_id} by bankAccountTransfer",
                          postings=ledger.receipt_postings(amount, "bankAccountTransfer"),
                          on=await payments.local_day(ctx, receivable.billing_account_id))
        doc = _transfer_doc(ctx, payment_id, receivable, amount, currency, ref, line, now, allocation)
        await payments.payments.record(ctx, doc, columns={
            "billing_account_id": receivable.billing_account_id, "method_id": "bank-statement",
            "bill_id": None, "state": "succeeded", "amount": amount, "currency": currency, "gateway": None})
        await payments._transition(ctx.session, payment_id, None, "succeeded", "statement", ref)
        return "transfers", payment_id
    return await _exception(ctx, line, ref, source, "a debit that is no direct debit of ours"), None


def _queue(ctx: Context, line: dict[str, Any], ref: str, source: str, reason: str) -> str:
    """Queue a line nothing matched (written with the session's next flush)."""
    ctx.session.add(StatementException(reference=ref, source=source[:200], reason=reason[:300],
                                       amount=str(line.get("Amount") or ""), currency=str(line.get("Currency") or ""),
                                       line={k: str(v) for k, v in line.items()}))
    return "exceptions"


async def _exception(ctx: Context, line: dict[str, Any], ref: str, source: str, reason: str) -> str:
    _queue(ctx, line, ref, source, reason)
    await ctx.session.flush()
    return "exceptions"


async def exceptions(ctx: Context) -> list[dict[str, Any]]:
    rows = (await ctx.session.execute(select(StatementException).order_by(StatementException.id))).scalars().all()
    return [{"id": r.id, "reference": r.reference, "source": r.source, "reason": r.reason, "amount": r.amount,
             "currency": r.currency, "line": r.line, "at": format_datetime(r.at)} for r in rows]
