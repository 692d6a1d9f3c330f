"""The ledger against PostgreSQL: append-only, balanced at commit, one entry per (source document, event); and the
property that after any sequence of bills, payments (cash and card) and refunds the trial balance sums to zero,
allocations never exceed a bill, credit and open bills never coexist, receivables in the ledger equal the open
balances."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from openbss.payments import ledger
from openbss.payments.models import PaymentMethod
from openbss.payments.replay import replay
from openbss.payments.service import AccountBalances, PaymentService, received_total
from openbss.platform.db import utcnow
from openbss.platform.errors import DomainError, NotFound
from openbss.platform.tmf.resource import Context, system_context
from openbss.platform.tmf.spec import format_datetime

BASE = "http://testserver"


async def test_the_journal_is_append_only_and_entries_balance(rt: Any, tenant: str) -> None:
    async with rt.db.transaction(tenant) as session:
        assert await ledger.post(session, source_type="CustomerBill", source_id="b1", event="billFinalized",
                                 currency="EUR", description="b1",
                                 postings=ledger.bill_postings(Decimal("120.00"), {"20": Decimal("20.00")}))
        assert not await ledger.post(session, source_type="CustomerBill", source_id="b1", event="billFinalized",
                                     currency="EUR", description="again",
                                     postings=ledger.bill_postings(Decimal("999"), {}))
    with pytest.raises(DomainError, match="differ"):
        async with rt.db.transaction(tenant) as session:
            await ledger.post(session, source_type="X", source_id="x", event="e", currency="EUR", description="",
                              postings=[ledger.Posting("1000", Decimal(1)), ledger.Posting("4000", Decimal(-2))])
    for sql in ("UPDATE ledger_line SET debit = debit + 1", "DELETE FROM ledger_line", "DELETE FROM ledger_entry"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with rt.db.transaction(tenant) as session:
                await session.execute(text(sql))
    # an unbalanced line slipped in by hand is refused at commit (deferred constraint trigger)
    with pytest.raises(DBAPIError, match="does not balance"):
        async with rt.db.transaction(tenant) as session:
            entry = (await session.execute(text(
                "INSERT INTO ledger_entry (source_type, source_id, event, description, currency, accounting_date) "
                "VALUES ('X', 'y', 'e', '', 'EUR', current_date) RETURNING id"))).scalar()
            await session.execute(text("INSERT INTO ledger_line (entry_id, account_code, debit, credit) "
                                       "VALUES (:e, '1000', 5, 0)"), {"e": entry})
    async with rt.db.transaction(tenant) as session:
        rows = await ledger.trial_balance(session)
    assert {r["account"]: r["balance"] for r in rows} == {
        "1200": Decimal("120.00"), "2100": Decimal("-20.00"), "4000": Decimal("-100.00")}
    assert ledger.totals(rows) == {"EUR": Decimal(0)}


# --- the property -------------------------------------------------------------------------------------------------
@dataclass
class Bills:
    """Billing as payments sees it, in memory: issued bills and the states payments gives them."""

    docs: dict[str, dict[str, Any]] = field(default_factory=dict)
    states: dict[str, list[str]] = field(default_factory=dict)
    #: a chargeback is in progress: only it moves a settled bill back
    reopening: bool = False

    async def get_bill(self, ctx: Context, bill_id: str) -> dict[str, Any]:
        if bill_id not in self.docs:
            raise NotFound(bill_id)
        return self.docs[bill_id]

    async def record_payment_state(self, ctx: Context, bill_id: str, state: str) -> None:
        seen = self.states.setdefault(bill_id, [])
        assert self.reopening or not seen or seen[-1] != "settled", f"bill {bill_id} moved from settled to {state}"
        seen.append(state)


@dataclass
class Prepaid:
    """Online charging's prepaid balances, in memory: what was credited, per charging account."""

    credited: dict[str, Decimal] = field(default_factory=dict)

    async def get_account(self, ctx: Context, account_id: str | None = None) -> dict[str, Any]:
        return {"id": account_id, "payment_type": "prepaid", "currency": "EUR"}

    async def topup(self, ctx: Context, account_id: str, amount: int, *, reason: str | None = None,
                    funding: str = "external") -> dict[str, Any]:
        assert funding == "payment"  # what payments credits is a payment's
        self.credited[account_id] = self.credited.get(account_id, Decimal(0)) + Decimal(amount).scaleb(-2)
        return {}

    async def prepaid_usage_totals(self, ctx: Context, since: Any, before: Any) -> dict[str, Decimal]:
        return {}

    async def prepaid_credit_totals(self, ctx: Context, since: Any, before: Any) -> dict[tuple[str, str], Decimal]:
        return {}

    async def take_back(self, ctx: Context, account_id: str, amount: int, *, reason: str | None = None,
                        ) -> dict[str, Any]:
        self.credited[account_id] = self.credited.get(account_id, Decimal(0)) - Decimal(amount).scaleb(-2)
        return {}


class Accounts:
    async def get_billing_account(self, ctx: Context, account_id: str) -> dict[str, Any]:
        return {"id": account_id, "currency": "EUR", "name": "acct"}


cents = st.integers(1, 50_000).map(lambda c: Decimal(c).scaleb(-2))
operation = st.one_of(
    st.tuples(st.just("bill"), cents, st.sampled_from(["0", "5.5", "20"])),
    st.tuples(st.just("cash"), cents, st.none() | st.integers(0, 5)),
    st.tuples(st.just("card"), cents, st.none() | st.integers(0, 5)),
    st.tuples(st.just("refund"), cents, st.integers(0, 5)),
    st.tuples(st.just("note"), cents, st.integers(0, 5)),
    st.tuples(st.just("dispute"), cents, st.integers(0, 5), st.booleans(), st.integers(0, 2000)),
    st.tuples(st.just("writeOff"), cents),
    st.tuples(st.just("topUp"), cents, st.sampled_from(["cash", "tokenizedCard"])),
)
SEQUENCES: list[list[tuple[Any, ...]]] = []


@settings(max_examples=40, deadline=None, database=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(st.lists(operation, min_size=1, max_size=12))
def _draw(ops: list[tuple[Any, ...]]) -> None:
    SEQUENCES.append(ops)


async def test_after_any_sequence_the_trial_balance_is_zero_and_allocations_hold(
        rt: Any, tenant: str, services: Any) -> None:
    SEQUENCES.clear()
    _draw()
    assert len(SEQUENCES) >= 20
    assert any(op[0] == "note" for ops in SEQUENCES for op in ops)
    assert any(op[0] == "dispute" for ops in SEQUENCES for op in ops)
    assert any(op[0] == "writeOff" for ops in SEQUENCES for op in ops)
    assert any(op[0] == "topUp" for ops in SEQUENCES for op in ops)
    prepaid = Prepaid()
    bills = Bills()
    sandbox = services.payments.gateway
    payments = PaymentService(rt.db, BASE, sandbox, bills, Accounts(), services.payments.resources["payment"],
                              services.payments.resources["refund"], prepaid)
    balances = AccountBalances()
    totals: dict[str, Decimal] = {}
    for ops in SEQUENCES:
        account = f"acct-{uuid.uuid4().hex[:8]}"
        async with rt.db.transaction(tenant) as session:
            ctx = system_context(tenant, session, BASE)
            for kind, token in (("cash", "-"), ("tokenizedCard", "tok_instant")):
                session.add(PaymentMethod(id=f"{account}-{kind}", body={"name": kind, "token": token},
                                          billing_account_id=account, kind=kind, status="active"))
        principal = ctx.principal
        issued: list[str] = []
        made: list[str] = []
        carded: list[str] = []
        billed = received = Decimal(0)
        for op in ops:
            if op[0] == "bill":
                _, amount, rate = op
                tax = (amount * Decimal(rate) / (100 + Decimal(rate))).quantize(Decimal("0.01"))
                bill_id = f"bill-{uuid.uuid4().hex[:10]}"
                bills.docs[bill_id] = {
                    "id": bill_id, "state": "validated", "billNo": f"N{len(issued)}",
                    "billDate": format_datetime(utcnow() + timedelta(days=len(issued))),
                    "billingAccount": {"id": account}, "taxIncludedAmount": {"unit": "EUR", "value": amount},
                    "taxItem": [{"taxRate": rate, "taxAmount": {"unit": "EUR", "value": tax}}] if tax else []}
                async with rt.db.transaction(tenant) as session:
                    await payments.bill_issued(system_context(tenant, session, BASE), bills.docs[bill_id])
                issued.append(bill_id)
                billed += amount
            elif op[0] == "note" and issued:  # a credit note of part of an issued bill
                _, amount, which = op
                corrected = issued[which % len(issued)]
                amount = min(amount, Decimal(bills.docs[corrected]["taxIncludedAmount"]["value"]))
                note_id = f"note-{uuid.uuid4().hex[:10]}"
                bills.docs[note_id] = {
                    "id": note_id, "state": "validated", "billNo": f"CN{len(issued)}",
                    "billDate": format_datetime(utcnow()), "billingAccount": {"id": account},
                    "correctedBill": {"id": corrected}, "taxIncludedAmount": {"unit": "EUR", "value": -amount},
                    "taxItem": []}
                async with rt.db.transaction(tenant) as session:
                    await payments.bill_issued(system_context(tenant, session, BASE), bills.docs[note_id])
                billed -= amount
            elif op[0] in ("cash", "card"):
                _, amount, named = op
                kind = "cash" if op[0] == "cash" else "tokenizedCard"
                body: dict[str, Any] = {"account": {"id": account}, "totalAmount": {"unit": "EUR", "value": amount},
                                        "paymentMethod": {"id": f"{account}-{kind}"}}
                if named is not None and issued:
                    body["paymentItem"] = [{"item": {"id": issued[named % len(issued)]}}]
                try:
                    out = await payments.pay(principal, body)
                except DomainError as exc:
                    assert exc.code == "PAYMENT_IN_FLIGHT", exc.message
                    continue
                assert out.resource["status"] == "succeeded"
                made.append(out.resource["id"])
                if kind == "tokenizedCard":
                    carded.append(out.resource["id"])
                received += amount
            elif op[0] == "writeOff":
                async with rt.db.transaction(tenant) as session:
                    owed = Decimal((await session.execute(text(
                        "SELECT coalesce(sum(r.amount - coalesce((SELECT sum(amount) FROM payments_allocation a "
                        "WHERE a.bill_id = r.bill_id), 0)), 0) FROM payments_receivable r "
                        "WHERE r.billing_account_id = :a AND r.amount > 0"), {"a": account})).scalar() or 0)
                amount = min(op[1], owed)
                if amount <= 0:
                    continue
                async with rt.db.transaction(tenant) as session:
                    out = await payments.write_off(system_context(tenant, session, BASE), billing_account_id=account,
                                                   amount=amount, currency="EUR", reason="bad debt",
                                                   reference=f"wo-{uuid.uuid4().hex[:10]}")
                assert sum((Decimal(str(x["amount"]["value"])) for x in out["settled"]), Decimal(0)) == amount
                received += amount
            elif op[0] == "topUp":
                _, amount, kind = op
                line = f"line-{account}"
                before = prepaid.credited.get(line, Decimal(0))
                out = await payments.pay(principal, {
                    "account": {"id": account}, "totalAmount": {"unit": "EUR", "value": amount},
                    "paymentMethod": {"id": f"{account}-{kind}"}, "prepaidTopUp": {"id": line}})
                assert out.resource["status"] == "succeeded"
                assert prepaid.credited[line] == before + amount
            elif op[0] == "dispute":
                if not carded:
                    continue
                _, amount, which, won, fee_cents = op
                disputed = carded[which % len(carded)]
                dispute_id = f"dp-{uuid.uuid4().hex[:10]}"
                bills.reopening = True
                try:
                    async with rt.db.transaction(tenant) as session:
                        ctx = system_context(tenant, session, BASE)
                        fee = Decimal(fee_cents).scaleb(-2)
                        opened = await payments.dispute(ctx, disputed, dispute_id=dispute_id, amount=amount, fee=fee,
                                                        reason="fraudulent", status="open")
                        taken = Decimal((await session.execute(text(
                            "SELECT coalesce(sum(amount), 0) FROM payments_dispute WHERE dispute_id = :d"),
                            {"d": dispute_id})).scalar() or 0)
                        if won:
                            await payments.dispute(ctx, disputed, dispute_id=dispute_id, amount=amount, fee=fee,
                                                   reason="fraudulent", status="won")
                            # replayed: nothing more
                            assert not await payments.dispute(ctx, disputed, dispute_id=dispute_id, amount=amount,
                                                              fee=fee, reason="fraudulent", status="won")
                finally:
                    bills.reopening = False
                if opened and not won:
                    received -= taken
            elif made:
                _, amount, which = op
                body = {"payment": {"id": made[which % len(made)]}, "totalAmount": {"unit": "EUR", "value": amount},
                        "account": {"id": account}, "paymentMethod": {"id": "-"}}
                try:
                    out = await payments.refund(principal, body)
                    if out.resource["status"] == "succeeded":
                        received -= amount
                except DomainError as exc:
                    assert exc.code == "REFUND_REFUSED", exc.message
        async with rt.db.transaction(tenant) as session:
            ctx = system_context(tenant, session, BASE)
            # billing holds none of these bills: the open balance is what was received, negated
            assert await balances.open_balance(ctx, account) == -received
            assert await received_total(session, account) == received
            assert await _billed(session, account) == billed
            over = (await session.execute(text(
                "SELECT r.bill_id FROM payments_receivable r LEFT JOIN payments_allocation a ON a.bill_id = r.bill_id "
                "WHERE r.billing_account_id = :a GROUP BY r.bill_id, r.amount "
                "HAVING coalesce(sum(a.amount), 0) > greatest(r.amount, 0) OR coalesce(sum(a.amount), 0) < 0"),
                {"a": account})).all()
            assert over == []
            negative = (await session.execute(text(
                "SELECT payment_id FROM payments_allocation WHERE billing_account_id = :a AND bill_id IS NULL "
                "GROUP BY payment_id HAVING sum(amount) < 0"), {"a": account})).all()
            assert negative == []
            credit = Decimal((await session.execute(text(
                "SELECT coalesce(sum(amount), 0) FROM payments_allocation WHERE billing_account_id = :a "
                "AND bill_id IS NULL"), {"a": account})).scalar() or 0)
            unpaid = Decimal((await session.execute(text(
                "SELECT coalesce(sum(r.amount - coalesce((SELECT sum(amount) FROM payments_allocation a "
                "WHERE a.bill_id = r.bill_id), 0)), 0) FROM payments_receivable r WHERE r.billing_account_id = :a "
                "AND r.amount > 0"),
                {"a": account})).scalar() or 0)
            assert credit == 0 or unpaid == 0, (credit, unpaid)
            totals = ledger.totals(await ledger.trial_balance(session))
            assert all(v == 0 for v in totals.values()), totals
    async with rt.db.transaction(tenant) as session:
        rows = {r["account"]: r["balance"] for r in await ledger.trial_balance(session)}
        open_total = Decimal((await session.execute(text(
            "SELECT coalesce((SELECT sum(amount) FROM payments_receivable), 0) - "
            "coalesce((SELECT sum(amount) FROM payments_allocation WHERE payment_id NOT LIKE 'creditNote:%'), 0)"
        ))).scalar() or 0)
    assert rows.get("1200", Decimal(0)) == open_total
    # the replay of every source document rebuilds exactly this ledger
    async with rt.db.transaction(tenant) as session:
        rebuilt = await replay(payments, system_context(tenant, session, BASE))
    assert rebuilt["differences"] == [] and rebuilt["lines"] > 0


async def _billed(session: Any, account: str) -> Decimal:
    return Decimal((await session.execute(text(
        "SELECT coalesce(sum(amount), 0) FROM payments_receivable WHERE billing_account_id = :a"),
        {"a": account})).scalar() or 0)


async def test_a_closed_period_takes_nothing_more_and_late_postings_go_to_the_open_one(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    r = await client.post("/payments/v1/ledgerPeriod", json={"period": "2026-10"}, headers=admin_headers)
    assert r.status_code == 201, r.text
    assert (await client.post("/payments/v1/ledgerPeriod", json={"period": "2026-10"},
                              headers=admin_headers)).status_code == 409
    assert (await client.post("/payments/v1/ledgerPeriod", json={"period": "2099-01"},
                              headers=admin_headers)).status_code == 409  # not over
    assert (await client.post("/payments/v1/ledgerPeriod", json={"period": "oct"},
                              headers=admin_headers)).status_code == 400
    async with rt.db.transaction(tenant) as session:
        # a bill dated in the closed month is posted on the first day of the open period
        assert await ledger.post(session, source_type="CustomerBill", source_id="late", event="billFinalized",
                                 currency="EUR", description="late", on=date(2026, 10, 20),
                                 postings=ledger.bill_postings(Decimal("12.00"), {}))
        assert await ledger.post(session, source_type="CustomerBill", source_id="open", event="billFinalized",
                                 currency="EUR", description="open", on=date(2026, 11, 3),
                                 postings=ledger.bill_postings(Decimal("1.00"), {}))
        dates = dict((await session.execute(text("SELECT source_id, accounting_date FROM ledger_entry"))).all())
    assert dates == {"late": date(2026, 11, 1), "open": date(2026, 11, 3)}
    with pytest.raises(DBAPIError, match="closed"):
        async with rt.db.transaction(tenant) as session:
            await session.execute(text(
                "INSERT INTO ledger_entry (source_type, source_id, event, description, currency, accounting_date) "
                "VALUES ('X', 'z', 'e', '', 'EUR', '2026-10-31')"))
    listed = (await client.get("/payments/v1/ledgerPeriod", headers=admin_headers)).json()
    assert [p["period"] for p in listed] == ["2026-10"]
