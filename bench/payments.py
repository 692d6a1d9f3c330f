"""Payments benchmark: a bank statement's transfers matched, allocated and posted; API payment creation through the
sandbox gateway at a steady rate.

    createdb -h 127.0.0.1 -U postgres openbss_bench_payments
    OPENBSS_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/openbss_bench_payments \\
        .venv/bin/python bench/payments.py --lines 10000 --rate 50 --seconds 20

1. **Statement.** ``--lines`` issued bills (one per billing account: receivable + ledger entry, written in bulk —
   ``--slow-setup``: through the bill-finalized reaction one by one; billing's own tables are not involved, bill
   states go to an in-memory stand-in, in one batch per set of lines), then camt.053 files of ``--chunk`` lines,
   a transfer per bill naming its number, each imported in one transaction (``bank.import_statement``: parse,
   claim the lines, match, allocate, post, record — as sets of 1,000 lines). Reports lines/s and the load average
   before and after (``--profile``: cProfile of the import).
2. **API.** ``--rate`` payments per second for ``--seconds`` through the HTTP app in process (httpx ASGI transport:
   no socket), each a TMF676 create with a card (sandbox ``tok_instant``: the gateway answers at once) and an
   ``Idempotency-Key``; reports p50/p95/p99 latency and what was achieved.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import insert, text
from support import percentile

from openbss.app import create_app
from openbss.cli import upgrade_database
from openbss.payments import bank, ledger
from openbss.payments.models import Receivable
from openbss.payments.service import PaymentService
from openbss.platform.auth import issue_token
from openbss.platform.db import core_table
from openbss.platform.runtime import Runtime
from openbss.platform.tenancy import create_tenant
from openbss.platform.tmf.resource import Context, system_context
from openbss.services import build_services
from openbss.settings import get_settings

BASE = "http://bench"


@dataclass
class Bills:
    states: dict[str, str] = field(default_factory=dict)

    async def get_bill(self, ctx: Context, bill_id: str) -> dict[str, Any]:
        raise KeyError(bill_id)

    async def record_payment_state(self, ctx: Context, bill_id: str, state: str) -> None:
        self.states[bill_id] = state

    async def record_payment_states(self, ctx: Context, states: dict[str, str]) -> None:
        self.states.update(states)


class Accounts:
    async def get_billing_account(self, ctx: Context, account_id: str) -> dict[str, Any]:
        return {"id": account_id, "currency": "EUR"}


def camt(entries: list[tuple[str, Decimal, str]]) -> bytes:
    rows = "".join(
        f"<Ntry><Amt Ccy=\"EUR\">{amount}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>"
        f"<BookgDt><Dt>2027-02-10</Dt></BookgDt><AcctSvcrRef>{ref}</AcctSvcrRef>"
        f"<NtryDtls><TxDtls><Amt Ccy=\"EUR\">{amount}</Amt><RmtInf><Ustrd>{number}</Ustrd></RmtInf></TxDtls>"
        f"</NtryDtls></Ntry>" for ref, amount, number in entries)
    return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:"
            "camt.053.001.02\"><BkToCstmrStmt><GrpHdr><MsgId>B</MsgId><CreDtTm>2027-02-10T18:00:00</CreDtTm>"
            "</GrpHdr><Stmt><Id>S</Id><Acct><Id><IBAN>DE89370400440532013000</IBAN></Id></Acct>"
            + rows + "</Stmt></BkToCstmrStmt></Document>").encode()


async def issue_bills(rt: Runtime, payments: PaymentService, tenant: str, lines: int, chunk: int,
                      slow: bool) -> list[tuple[str, Decimal, str]]:
    """One issued bill per billing account, as payments records them: by the bill-finalized reaction one by one
    (``--slow-setup``), else in bulk (receivables and their ledger entries as multi-row inserts: the same rows)."""
    entries = []
    chunk = min(chunk, 2000)
    for start in range(0, lines, chunk):
        if start in (chunk, 10 * chunk):
            await analyze(rt)
        async with rt.db.transaction(tenant) as session:
            ctx = system_context(tenant, session, BASE)
            receivables, posts = [], []
            for i in range(start, min(start + chunk, lines)):
                bill_id = str(uuid.uuid4())
                amount = Decimal(10 + i % 90) + Decimal("0.99")
                day = datetime(2027, 1, 1, tzinfo=UTC) + timedelta(minutes=i)
                entries.append((f"REF-{i:07d}", amount, f"B-{i:07d}"))
                if slow:
                    await payments.bill_issued(ctx, {
                        "id": bill_id, "state": "validated", "billNo": f"B-{i:07d}", "billDate": day.isoformat(),
                        "billingAccount": {"id": f"acct-{i}"},
                        "taxIncludedAmount": {"unit": "EUR", "value": amount},
                        "taxItem": [{"taxRate": 20, "taxAmount": {"unit": "EUR", "value": Decimal("1.00")}}]})
                    continue
                receivables.append({"bill_id": bill_id, "billing_account_id": f"acct-{i}", "number": f"B-{i:07d}",
                                    "bill_date": day.date(), "due_date": day.date(), "currency": "EUR",
                                    "amount": amount})
                posts.append(ledger.Entry("CustomerBill", bill_id, "billFinalized", "EUR", f"bill B-{i:07d}",
                                          ledger.bill_postings(amount, {"20": Decimal("1.00")}), day.date()))
            if receivables:
                await session.execute(insert(core_table(Receivable)), receivables)
                await ledger.post_many(session, posts)
    return entries


async def analyze(rt: Runtime) -> None:
    """Statistics of the tables the import reads and writes, as a database in service has them (a fresh bench
    database has none: PostgreSQL then plans the ledger's balance check, run per line at commit, as a scan)."""
    async with rt.db.engine.connect() as conn:
        await conn.execute(text("ANALYZE ledger_entry, ledger_line, payments_receivable, payments_allocation, "
                                "payments_payment, search_entry, payments_statement_line, audit_record, "
                                "outbox_event"))
        await conn.commit()


async def statement(rt: Runtime, services: Any, tenant: str, lines: int, chunk: int, slow: bool,
                    profile: bool) -> None:
    bills = Bills()
    payments = PaymentService(rt.db, BASE, services.payments.gateway, bills, Accounts(),
                              services.payments.resources["payment"], services.payments.resources["refund"])
    t0 = time.perf_counter()
    entries = await issue_bills(rt, payments, tenant, lines, chunk, slow)
    await analyze(rt)
    print(f"{lines} bills issued in {time.perf_counter() - t0:.1f} s ({'one by one' if slow else 'in bulk'})")
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    load = open("/proc/loadavg").read().split()[0]
    t0 = time.perf_counter()
    totals: dict[str, int] = {}
    for start in range(0, lines, chunk):
        xml = camt(entries[start:start + chunk])
        async with rt.db.transaction(tenant) as session:
            report = await bank.import_statement(payments, system_context(tenant, session, BASE), xml,
                                                 f"bench-{start}")
        for k, v in report.items():
            if isinstance(v, int):  # counts (the file's format is a string)
                totals[k] = totals.get(k, 0) + v
    elapsed = time.perf_counter() - t0
    if profiler is not None:
        import pstats

        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
    print(f"statement: {lines} lines matched, allocated and posted in {elapsed:.1f} s = {lines / elapsed:,.0f} "
          f"lines/s ({totals}); load average {load} before, {open('/proc/loadavg').read().split()[0]} after")
    assert totals.get("transfers") == lines, totals
    assert set(bills.states.values()) == {"settled"} and len(bills.states) == lines


async def api(rt: Runtime, services: Any, tenant: str, rate: float, seconds: float) -> None:
    app = create_app(get_settings(), services=services, runtime=rt)
    h = {"Authorization": f"Bearer {issue_token(tenant, ['billing_ops'])}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE, timeout=30) as client:
        admin = {"Authorization": f"Bearer {issue_token(tenant, ['admin'])}"}
        party = (await client.post("/tmf-api/party/v4/individual", headers=admin, json={
            "givenName": "Bench", "familyName": "Payer"})).json()
        customer = (await client.post("/tmf-api/customerManagement/v4/customer", headers=admin, json={
            "name": "Bench Payer", "engagedParty": {"id": party["id"], "@referredType": "Individual"}})).json()
        account = (await client.post("/tmf-api/accountManagement/v4/billingAccount", headers=admin, json={
            "name": "Bench", "currency": "EUR", "relatedParty": [
                {"id": customer["id"], "@referredType": "Customer", "role": "customer",
                 "name": "Bench Payer"}]})).json()
        if "id" not in account:
            raise SystemExit(f"could not create a billing account: {account}")
        method = (await client.post("/tmf-api/paymentMethod/v4/paymentMethod", headers=h, json={
            "@type": "tokenizedCard", "name": "card", "token": "tok_instant", "brand": "visa",
            "lastFourDigits": "4242", "expirationDate": "2031-01-01T00:00:00Z",
            "account": [{"id": account["id"]}]})).json()
        latencies: list[float] = []
        statuses: dict[int, int] = {}

        async def one() -> None:
            body = {"account": {"id": account["id"]}, "paymentMethod": {"id": method["id"]},
                    "totalAmount": {"unit": "EUR", "value": "9.99"}}
            t = time.perf_counter()
            r = await client.post("/tmf-api/paymentManagement/v4/payment", json=body,
                                  headers={**h, "Idempotency-Key": str(uuid.uuid4())})
            latencies.append((time.perf_counter() - t) * 1000)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

        total = int(rate * seconds)
        tasks = []
        start = time.perf_counter()
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    print(f"API: {total} payments in {elapsed:.1f} s ({total / elapsed:.1f}/s asked {rate}/s), statuses {statuses}, "
          f"latency p50 {percentile(latencies, 50):.1f} ms, p95 {percentile(latencies, 95):.1f} ms, "
          f"p99 {percentile(latencies, 99):.1f} ms")


async def main(args: argparse.Namespace) -> None:
    settings = get_settings()
    upgrade_database()
    rt = Runtime.build(settings)
    services = build_services(settings, rt)
    tenant = f"bench-pay-{uuid.uuid4().hex[:8]}"
    async with rt.db.transaction(None) as session:
        await create_tenant(session, "Payments benchmark", tenant)
    try:
        if args.lines:
            await statement(rt, services, tenant, args.lines, args.chunk, args.slow_setup, args.profile)
        if args.rate and args.seconds:
            await api(rt, services, tenant, args.rate, args.seconds)
    finally:
        await rt.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--chunk", type=int, default=1_000)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--profile", action="store_true", help="cProfile the statement import (cumulative top 45)")
    parser.add_argument("--slow-setup", action="store_true",
                        help="issue the bills through the bill-finalized reaction one by one (else in bulk)")
    asyncio.run(main(parser.parse_args()))
