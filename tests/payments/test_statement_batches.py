"""Bank statements matched as sets of lines against PostgreSQL: for any statement, importing it in batches gives the
same outcome as importing it line by line (the same report, allocations, bill states, exceptions and ledger, whose
trial balance is zero), and a second import changes nothing; two imports of overlapping files at once record each
bank line once (one payment per line, each bill paid once) without deadlocking."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from openbss.payments import bank, ledger
from openbss.payments.service import PaymentService
from openbss.platform.tmf.resource import Context, system_context
from tests.conftest import make_tenant
from tests.payments.test_bank import entry, statement

BASE = "http://testserver"


@dataclass
class Bills:
    """Billing as payments sees it, in memory: the last state payments gave each bill, and every call."""

    states: dict[str, str] = field(default_factory=dict)
    calls: int = 0

    async def get_bill(self, ctx: Context, bill_id: str) -> dict[str, Any]:
        raise AssertionError("a statement reads no bill from billing")

    async def record_payment_state(self, ctx: Context, bill_id: str, state: str) -> None:
        assert self.states.get(bill_id) != "settled", f"bill {bill_id} moved from settled to {state}"
        self.states[bill_id] = state
        self.calls += 1

    async def record_payment_states(self, ctx: Context, states: dict[str, str]) -> None:
        for bill_id, state in states.items():
            await self.record_payment_state(ctx, bill_id, state)


class Accounts:
    async def get_billing_account(self, ctx: Context, account_id: str) -> dict[str, Any]:
        return {"id": account_id, "currency": "EUR", "billCycle": {"timeZone": "Europe/Berlin"}}

    async def get_billing_accounts(self, ctx: Context, account_ids: list[str]) -> dict[str, dict[str, Any]]:
        return {a: await self.get_billing_account(ctx, a) for a in account_ids}


def service(rt: Any, services: Any, bills: Bills) -> PaymentService:
    return PaymentService(rt.db, BASE, services.payments.gateway, bills, Accounts(),
                          services.payments.resources["payment"], services.payments.resources["refund"])


async def issue(rt: Any, payments: PaymentService, tenant: str, bills: list[tuple[int, Decimal]]) -> None:
    """Bills ``B<i>`` of accounts ``acct-<a>`` (dated in issue order), as the bill-finalized reaction records them."""
    async with rt.db.transaction(tenant) as session:
        ctx = system_context(tenant, session, BASE)
        for i, (account, amount) in enumerate(bills):
            await payments.bill_issued(ctx, {
                "id": f"bill-{i}", "state": "validated", "billNo": f"B{i}",
                "billDate": f"2027-01-{1 + i % 28:02d}T00:00:00Z",
                "billingAccount": {"id": f"acct-{account}"}, "taxIncludedAmount": {"unit": "EUR", "value": amount},
                "taxItem": []})


async def state(rt: Any, tenant: str) -> dict[str, Any]:
    """What an import leaves, comparable across tenants (payments by the bank's reference, not their ids)."""
    async with rt.db.transaction(tenant) as session:
        refs = dict((await session.execute(text(
            "SELECT id, body->>'correlatorId' FROM payments_payment"))).all())
        allocations = [(refs.get(p, p), a, b, Decimal(amt), s) for p, a, b, amt, s in (await session.execute(text(
            "SELECT payment_id, billing_account_id, bill_id, amount, source FROM payments_allocation ORDER BY id"
        ))).all()]
        payments = sorted((str(r), a, Decimal(amt), st_, body) for r, a, amt, st_, body in (await session.execute(
            text("SELECT body->>'correlatorId', billing_account_id, amount, state, "
                 "body->'allocation' FROM payments_payment"))).all())
        entries = sorted((t, refs.get(s, s), e, c, d, Decimal(dr), Decimal(cr)) for t, s, e, c, d, dr, cr in (
            await session.execute(text(
                "SELECT e.source_type, e.source_id, e.event, e.currency, e.accounting_date, sum(l.debit), "
                "sum(l.credit) FROM ledger_entry e JOIN ledger_line l ON l.entry_id = e.id "
                "GROUP BY e.id"))).all())
        lines = sorted((r, o, refs.get(p, p)) for r, o, p in (await session.execute(text(
            "SELECT reference, outcome, payment_id FROM payments_statement_line"))).all())
        exceptions = [tuple(r) for r in (await session.execute(text(
            "SELECT reference, reason, amount, currency FROM payments_statement_exception ORDER BY id"))).all()]
        transitions = sorted((refs.get(p, p), f, t, s, r) for p, f, t, s, r in (await session.execute(text(
            "SELECT payment_id, from_state, to_state, source, reason FROM payments_transition"))).all())
        audits = (await session.execute(text(
            "SELECT count(*) FROM audit_record WHERE resource_type = 'Payment' AND action = 'create'"))).scalar()
        events = (await session.execute(text(
            "SELECT count(*) FROM outbox_event WHERE event_type = 'PaymentCreateEvent'"))).scalar()
        search = (await session.execute(text(
            "SELECT count(*) FROM search_entry WHERE resource_type = 'Payment'"))).scalar()
        totals = ledger.totals(await ledger.trial_balance(session))
    return {"allocations": allocations, "payments": payments, "entries": entries, "lines": lines,
            "exceptions": exceptions, "transitions": transitions, "audits": audits, "events": events,
            "search": search, "totals": totals}


cents = st.integers(1, 30_000).map(lambda c: Decimal(c).scaleb(-2))
line = st.one_of(
    st.tuples(st.just("pay"), st.integers(0, 9), cents),  # a transfer naming bill B<n> (it may not exist)
    st.tuples(st.just("pay"), st.integers(0, 9), cents),
    st.tuples(st.just("pay"), st.integers(0, 9), cents),
    st.tuples(st.just("anonymous"), cents),  # no bill number: the exceptions queue
    st.tuples(st.just("debit"), st.integers(0, 9), cents),  # a debit that is no direct debit of ours
    st.tuples(st.just("dollars"), st.integers(0, 9), cents),  # a bill in EUR paid in USD
    st.tuples(st.just("again"), st.integers(0, 30)),  # a line of the statement a second time (same reference)
)
CASES: list[tuple[list[tuple[int, Decimal]], list[tuple[Any, ...]], int]] = []


@settings(max_examples=25, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(st.integers(0, 3), cents), min_size=1, max_size=8), st.lists(line, min_size=1, max_size=25),
       st.integers(1, 6))
def _draw(bills: list[tuple[int, Decimal]], lines: list[tuple[Any, ...]], batch: int) -> None:
    CASES.append((bills, lines, batch))


def camt(lines: list[tuple[Any, ...]]) -> bytes:
    entries: list[str] = []
    for i, ln in enumerate(lines):
        if ln[0] == "again" and entries:
            entries.append(entries[ln[1] % len(entries)])
        elif ln[0] == "pay":
            entries.append(entry(f"R{i}", str(ln[2]), "CRDT", remittance=f"Invoice B{ln[1]} thanks"))
        elif ln[0] == "anonymous":
            entries.append(entry(f"R{i}", str(ln[1]), "CRDT", remittance="for you"))
        elif ln[0] == "debit":
            entries.append(entry(f"R{i}", str(ln[2]), "DBIT", remittance=f"B{ln[1]}"))
        elif ln[0] == "dollars":
            entries.append(entry(f"R{i}", str(ln[2]), "CRDT", remittance=f"B{ln[1]}").replace(
                'Ccy="EUR"', 'Ccy="USD"'))
    return statement(entries)


async def test_a_statement_imported_in_batches_is_imported_as_line_by_line(rt: Any, services: Any) -> None:
    CASES.clear()
    _draw()
    assert len(CASES) >= 20
    for bills, lines, batch in CASES:
        body = camt(lines)
        outcomes = []
        for size in (0, batch):  # 0: line by line
            tenant = await make_tenant(rt, "s")
            billing = Bills()
            payments = service(rt, services, billing)
            await issue(rt, payments, tenant, bills)
            async with rt.db.transaction(tenant) as session:
                report = await bank.import_statement(payments, system_context(tenant, session, BASE), body,
                                                     "stmt.xml", batch=size)
            async with rt.db.transaction(tenant) as session:  # a second import changes nothing
                again = await bank.import_statement(payments, system_context(tenant, session, BASE), body,
                                                    "stmt.xml", batch=size)
            assert again["alreadyImported"] == again["lines"] == report["lines"]
            outcome = await state(rt, tenant)
            assert outcome["totals"] in ({}, {"EUR": Decimal(0)})
            assert outcome["audits"] == outcome["events"] == report["transfers"] == len(outcome["payments"])
            outcomes.append((report, billing.states, outcome))
        (by_line, states_by_line, outcome_by_line), (batched, states_batched, outcome_batched) = outcomes
        assert batched == by_line, (bills, lines, batch)
        assert states_batched == states_by_line, (bills, lines, batch)
        for key in outcome_by_line:
            assert outcome_batched[key] == outcome_by_line[key], (key, bills, lines, batch)


async def test_two_imports_of_overlapping_files_at_once_record_each_line_once(rt: Any, services: Any) -> None:
    tenant = await make_tenant(rt, "c")
    billing = Bills()
    payments = service(rt, services, billing)
    n = 120
    await issue(rt, payments, tenant, [(i % 40, Decimal("10.00")) for i in range(n)])
    entries = [entry(f"R{i}", "10.00", "CRDT", remittance=f"B{i}") for i in range(n)]
    first, second = statement(entries[:80]), statement(list(reversed(entries[40:])))  # lines 40..79 in both

    async def one(body: bytes, source: str) -> dict[str, Any]:
        async with rt.db.transaction(tenant) as session:
            return await bank.import_statement(payments, system_context(tenant, session, BASE), body, source,
                                               batch=7)

    reports = await asyncio.gather(one(first, "first.xml"), one(second, "second.xml"))
    assert sum(r["transfers"] for r in reports) == n
    assert sum(r["alreadyImported"] for r in reports) == 40
    async with rt.db.transaction(tenant) as session:
        counts = (await session.execute(text(
            "SELECT (SELECT count(*) FROM payments_statement_line), (SELECT count(*) FROM payments_payment), "
            "(SELECT count(DISTINCT body->>'correlatorId') FROM payments_payment), "
            "(SELECT count(*) FROM ledger_entry WHERE source_type = 'Payment')"))).one()
        paid = dict((await session.execute(text(
            "SELECT bill_id, sum(amount) FROM payments_allocation WHERE bill_id IS NOT NULL GROUP BY bill_id"
        ))).all())
        totals = ledger.totals(await ledger.trial_balance(session))
    assert tuple(counts) == (n, n, n, n)
    assert paid == {f"bill-{i}": Decimal("10.00") for i in range(n)}
    assert billing.states == {f"bill-{i}": "settled" for i in range(n)}
    assert totals == {"EUR": Decimal(0)}
