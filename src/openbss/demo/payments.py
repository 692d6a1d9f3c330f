"""Demo data of payments and the ledger: five billing accounts with a bill each, and what happened to them —

* paid in full in cash at a shop;
* partially paid (half of it);
* a card declined, then the bill paid with another card (failed, then retried);
* paid by card with 20.00 too much, the 20.00 refunded to the card;
* a SEPA direct debit: collected by a pain.008 batch, then reported by the bank's camt.053 statement, whose other
  line (a transfer nobody can match) waits in the exceptions queue;

and last month's ledger period closed. The reports (trial balance, aging, cash receipts, revenue) have content.
Seeded once per tenant (an ``Idempotency-Key`` marks it)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from openbss.demo.support import admin_context
from openbss.payments import bank, ledger
from openbss.payments.errors import PeriodRefused
from openbss.payments.models import IdempotencyKey
from openbss.platform.db import Database, utcnow
from openbss.platform.tmf.spec import format_datetime
from openbss.services import Services

MARK = "demo-payments"
CARD: dict[str, Any] = {"@type": "tokenizedCard", "brand": "visa", "lastFourDigits": "4242",
                        "expirationDate": "2031-12-31T23:59:59Z"}


def _camt(lines: list[tuple[str, str, str | None, str | None]]) -> bytes:
    entries = []
    for ref, amount, e2e, remittance in lines:
        refs = f"<Refs><EndToEndId>{e2e}</EndToEndId></Refs>" if e2e else ""
        rmt = f"<RmtInf><Ustrd>{remittance}</Ustrd></RmtInf>" if remittance else ""
        entries.append(
            f"<Ntry><Amt Ccy=\"EUR\">{amount}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>"
            f"<BookgDt><Dt>{date.today()}</Dt></BookgDt><AcctSvcrRef>{ref}</AcctSvcrRef>"
            f"<NtryDtls><TxDtls>{refs}<Amt Ccy=\"EUR\">{amount}</Amt>"
            f"<RltdPties><Dbtr><Nm>Demo payer</Nm></Dbtr></RltdPties>{rmt}</TxDtls></NtryDtls></Ntry>")
    return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
            "<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.053.001.02\"><BkToCstmrStmt>"
            "<GrpHdr><MsgId>DEMO-STMT</MsgId><CreDtTm>2027-01-01T00:00:00</CreDtTm></GrpHdr>"
            "<Stmt><Id>DEMO</Id><CreDtTm>2027-01-01T00:00:00</CreDtTm><Acct><Id><IBAN>DE89370400440532013000</IBAN>"
            "</Id></Acct>" + "".join(entries) + "</Stmt></BkToCstmrStmt></Document>").encode()


async def seed_payments(services: Services, db: Database, tenant_id: str, base_url: str) -> dict[str, Any]:
    """Seed the demo's payments (once). Returns what was made (empty when it was seeded before)."""
    async with db.transaction(tenant_id) as session:
        seeded = (await session.execute(select(IdempotencyKey.key).where(
            IdempotencyKey.scope == "payment", IdempotencyKey.key == MARK))).scalar()
    if seeded:
        return {}
    today = utcnow().date()
    start = format_datetime(utcnow() - timedelta(days=1))
    payments = services.payments.service
    people = (("Grace", "Hopper", "40.00"), ("Ada", "Lovelace", "80.00"), ("Linus", "Pauling", "25.00"),
              ("Marie", "Curie", "55.00"), ("Emmy", "Noether", "30.00"))
    accounts: list[str] = []
    bills: list[dict[str, Any]] = []
    async with db.transaction(tenant_id) as session:
        ctx = admin_context(tenant_id, session, base_url, subject="payments-seed")
        customers = []
        for n, (given, family, value) in enumerate(people):
            name = f"{given} {family}"
            party = await services.party.service.create_individual(ctx, {"givenName": given, "familyName": family})
            customer = await services.customer.service.create_customer(ctx, {
                "name": name, "engagedParty": {"id": party["id"], "@referredType": "Individual"}})
            account = await services.account.service.create_billing_account(ctx, {
                "name": f"{name} billing", "currency": "EUR", "paymentTermsDays": 14,
                "billCycle": {"billingDay": min(today.day, 28), "frequency": "monthly", "timeZone": "UTC"},
                "relatedParty": [{"id": customer["id"], "@referredType": "Customer", "name": name,
                                  "role": "customer"}]})
            await services.inventory.service.products.record(ctx, {
                "@type": "Product", "name": "Handset instalment", "status": "active", "startDate": start,
                "billingAccount": {"id": account["id"]},
                "relatedParty": [*account["relatedParty"],
                                 {"id": party["id"], "role": "owner", "@referredType": "Individual"}],
                "productPrice": [{"name": "Handset instalment", "priceType": "oneTime",
                                  "price": {"dutyFreeAmount": {"unit": "EUR", "value": value}, "taxRate": "20"},
                                  "productOfferingPrice": {"id": f"demo-pop-{n}", "name": "Handset instalment"}}]})
            accounts.append(account["id"])
            customers.append(customer)
        await services.billing.service.run(ctx, today, finalize=True, account_ids=accounts)
        for account_id, customer in zip(accounts, customers, strict=True):
            found = [b for b in await services.billing.service.customer_bills(ctx, customer)
                     if (b.get("billingAccount") or {}).get("id") == account_id]
            if not found:
                return {}  # billing issued nothing (a bill cycle that does not fall today): nothing to pay
            bills.append(await services.billing.service.get_bill(ctx, found[0]["id"]))
            await payments.bill_issued(ctx, bills[-1])  # what payments' reaction to billing's event does
        methods = {}
        for key, account_id, body in (
                ("cash", accounts[0], {"@type": "cash", "name": "Cash at the shop"}),
                ("cash2", accounts[1], {"@type": "cash", "name": "Cash at the shop"}),
                ("declined", accounts[2], {**CARD, "name": "Visa (declined)", "token": "tok_chargeDeclined"}),
                ("card", accounts[2], {**CARD, "name": "Visa ending 4242", "token": "tok_instant"}),
                ("card2", accounts[3], {**CARD, "name": "Visa ending 4242", "token": "tok_instant"}),
                ("mandate", accounts[4], {"@type": "directDebit", "name": "SEPA mandate", "mandateType": "recurrent",
                                          "owner": "Emmy Noether", "bank": "Demo bank",
                                          "firstDebitDate": "2027-01-05T00:00:00Z",
                                          "accountNumber": "DE89370400440532013000", "mandateId": "DEMO-MDT-1",
                                          "signatureDate": "2026-11-02T00:00:00Z", "isPreferred": True})):
            methods[key] = (await services.payments.methods["paymentMethod"].create(
                ctx, {**body, "account": [{"id": account_id}]}))["id"]
        principal = ctx.principal

    def paying(n: int, method: str, value: Decimal) -> dict[str, Any]:
        return {"account": {"id": accounts[n]}, "paymentMethod": {"id": methods[method]},
                "totalAmount": {"unit": "EUR", "value": value},
                "paymentItem": [{"item": {"id": bills[n]["id"], "@referredType": "CustomerBill"}}]}

    def due(n: int) -> Decimal:
        return Decimal(str(bills[n]["taxIncludedAmount"]["value"]))

    made = {"paid": await payments.pay(principal, paying(0, "cash", due(0)), MARK),
            "partiallyPaid": await payments.pay(principal, paying(1, "cash2", (due(1) / 2).quantize(Decimal("0.01")))),
            "failed": await payments.pay(principal, paying(2, "declined", due(2))),
            "retried": await payments.pay(principal, paying(2, "card", due(2))),
            "refunded": await payments.pay(principal, paying(3, "card2", due(3) + 20))}
    await payments.refund(principal, {"payment": {"id": made["refunded"].resource["id"]},
                                      "totalAmount": {"unit": "EUR", "value": Decimal("20.00")},
                                      "description": "overpaid: 20.00 back to the card"}, f"{MARK}-refund")
    async with db.transaction(tenant_id) as session:
        ctx = admin_context(tenant_id, session, base_url, subject="payments-seed")
        creditor = bank.sepa_creditor(services.settings)
        _, debits = await bank.direct_debit_batch(payments, ctx, creditor, today + timedelta(days=5))
    async with db.transaction(tenant_id) as session:
        ctx = admin_context(tenant_id, session, base_url, subject="payments-seed")
        statement = _camt([(f"DEMO-{i}", str(due(4)), bank.end_to_end(p), None) for i, p in enumerate(debits)]
                          + [("DEMO-UNMATCHED", "17.50", None, "gift from grandma")])
        report = await bank.import_statement(payments, ctx, statement, "demo-statement.xml")
    async with db.transaction(tenant_id) as session:
        last_month = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
        try:
            async with session.begin_nested():
                await ledger.close_period(session, last_month, "payments-seed")
        except PeriodRefused:
            pass  # closed already
    return {"accounts": accounts, "bills": [b["id"] for b in bills], "statement": report,
            **{k: v.resource["id"] for k, v in made.items()}}
