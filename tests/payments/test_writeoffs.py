"""Write-offs against PostgreSQL: ``PaymentService.write_off`` (the method collections calls) and
``POST /payments/v1/writeOff`` settle the open bills oldest first, post bad debt / receivable once, are idempotent per
reference (a unique constraint; concurrent calls too), and refuse bad input with nothing written. Bill lines without
a product (late fees) are posted to the configured other-revenue account."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from openbss.payments.service import PaymentService
from openbss.platform.tmf.resource import system_context
from tests.billing.helpers import billing_account, in_tenant
from tests.conftest import bearer, deliver_all
from tests.payments.helpers import issued_bill
from tests.payments.test_allocation import open_balance
from tests.payments.test_ledger import Accounts, Bills
from tests.payments.test_payments import bill_state

URL = "/payments/v1/writeOff"


def _body(account_id: str, value: Any, reference: str, **extra: Any) -> dict[str, Any]:
    return {"billingAccount": {"id": account_id}, "amount": {"unit": "EUR", "value": value},
            "reason": "uncollectible after dunning", "reference": reference, **extra}


async def _entries(rt: Any, tenant: str) -> dict[str, Decimal]:
    rows = await in_tenant(rt, tenant, "SELECT l.account_code, sum(l.debit - l.credit) FROM ledger_entry e "
                                       "JOIN ledger_line l ON l.entry_id = e.id WHERE e.source_type = 'WriteOff' "
                                       "GROUP BY 1")
    return {str(c): Decimal(v) for c, v in rows}


async def test_a_write_off_settles_the_oldest_bills_once_and_posts_bad_debt(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    account, older = await issued_bill(client, rt, tenant, admin_headers, as_of=date(2027, 2, 1))  # 120.00
    _, newer = await issued_bill(client, rt, tenant, admin_headers, "50.00", account=account,
                                 as_of=date(2027, 3, 1))  # 60.00
    await deliver_all(rt)
    assert await open_balance(rt, tenant, account["id"]) == Decimal("180.00")
    r = await client.post(URL, json=_body(account["id"], "150.00", "episode-7"), headers=admin_headers)
    assert r.status_code == 201, r.text
    out = r.json()
    assert r.headers["Location"].endswith(f"{URL}/episode-7") and "Idempotent-Replayed" not in r.headers
    assert out["settled"] == [{"bill": {"id": older["id"], "@referredType": "CustomerBill"},
                               "amount": {"unit": "EUR", "value": 120}},
                              {"bill": {"id": newer["id"], "@referredType": "CustomerBill"},
                               "amount": {"unit": "EUR", "value": 30}}]
    assert (await bill_state(rt, tenant, older["id"]), await bill_state(rt, tenant, newer["id"])) == (
        "settled", "partiallyPaid")
    position = (await client.get(f"/payments/v1/bill/{older['id']}", headers=admin_headers)).json()
    assert position["state"] == "writtenOff" and position["writtenOff"]["value"] == 120
    assert await open_balance(rt, tenant, account["id"]) == Decimal("30.00")
    assert await _entries(rt, tenant) == {"6200": Decimal("150.00"), "1200": Decimal("-150.00")}
    again = await client.post(URL, json=_body(account["id"], "150.00", "episode-7"), headers=admin_headers)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == out["id"]
    other = await client.post(URL, json=_body(account["id"], "10.00", "episode-7"), headers=admin_headers)
    assert other.status_code == 422 and other.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert await _entries(rt, tenant) == {"6200": Decimal("150.00"), "1200": Decimal("-150.00")}
    got = await client.get(f"{URL}/episode-7", headers=admin_headers)
    assert got.status_code == 200 and got.json()["id"] == out["id"]
    tb = (await client.get("/payments/v1/trialBalance", headers=admin_headers)).json()
    assert all(t["value"] == 0 for t in tb["totals"])


async def test_concurrent_write_offs_with_one_reference_write_off_once(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str], services: Any) -> None:
    account, bill = await issued_bill(client, rt, tenant, admin_headers)
    await deliver_all(rt)  # payments heard of the bill
    payments: PaymentService = services.payments.service

    async def call() -> dict[str, Any]:  # what collections does, in its own transaction
        async with rt.db.transaction(tenant) as session:
            ctx = system_context(tenant, session, "http://testserver", "collections")
            return await payments.write_off(ctx, billing_account_id=account["id"], amount=Decimal("120.00"),
                                            currency="EUR", reason="written off", reference="race")

    results = await asyncio.gather(*[call() for _ in range(4)])
    assert len({r["id"] for r in results}) == 1
    assert sorted(r["replayed"] for r in results) == [False, True, True, True]
    assert await bill_state(rt, tenant, bill["id"]) == "settled"
    assert await _entries(rt, tenant) == {"6200": Decimal("120.00"), "1200": Decimal("-120.00")}
    assert await in_tenant(rt, tenant, "SELECT count(*) FROM payments_write_off") == [(1,)]


async def test_bad_write_offs_are_refused_and_nothing_is_written(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    account, _ = await issued_bill(client, rt, tenant, admin_headers)  # owes 120.00
    await deliver_all(rt)
    empty = await billing_account(client, admin_headers)
    cases = [
        (_body(account["id"], "-5", "a"), 400, "positive"),
        (_body(account["id"], "1.001", "a"), 400, "decimals"),
        ({**_body(account["id"], "5", "a"), "amount": {"unit": "XXY", "value": 5}}, 400, "currency"),
        ({**_body(account["id"], "5", "a"), "reason": " "}, 400, "reason"),
        ({**_body(account["id"], "5", "a"), "reference": ""}, 400, "reference"),
        (_body("no-such-account", "5", "a"), 400, "does not exist"),
        (_body(account["id"], "120.01", "a"), 409, "owes 120"),
        (_body(empty["id"], "1.00", "a"), 409, "owes 0"),
        (_body(account["id"], "5", "a", note="x"), 400, "note"),
        ({"billingAccount": {"id": account["id"]}, "reason": "r", "reference": "a"}, 400, "amount"),
    ]
    for body, status, word in cases:
        r = await client.post(URL, json=body, headers=admin_headers)
        assert r.status_code == status, (body, r.text)
        assert word in r.json()["message"], (word, r.text)
    assert (await client.post(URL, json=_body(account["id"], "5", "a"),
                              headers=bearer(tenant, "csr_agent"))).status_code == 403
    assert await in_tenant(rt, tenant, "SELECT count(*) FROM payments_write_off") == [(0,)]
    assert await _entries(rt, tenant) == {}


@dataclass
class BillsWithLines(Bills):
    lines: dict[str, list[dict[str, Any]]] | None = None

    async def bill_lines(self, ctx: Any, bill_id: str) -> list[dict[str, Any]]:
        return (self.lines or {}).get(bill_id, [])


async def test_bill_lines_without_a_product_post_to_other_revenue(rt: Any, tenant: str, services: Any) -> None:
    bill_id = f"bill-{uuid.uuid4().hex[:8]}"
    bills = BillsWithLines(lines={bill_id: [
        {"taxExcludedAmount": {"unit": "EUR", "value": 100}, "product": {"id": "p1"}},
        {"taxExcludedAmount": {"unit": "EUR", "value": 10}, "name": "Late fee"}]})
    bills.docs[bill_id] = {"id": bill_id, "state": "validated", "billNo": "N1", "billDate": "2027-02-01T00:00:00Z",
                           "billingAccount": {"id": "acct"}, "taxIncludedAmount": {"unit": "EUR", "value": 132},
                           "taxItem": [{"taxRate": 20, "taxAmount": {"unit": "EUR", "value": 22}}]}
    payments = PaymentService(rt.db, "http://testserver", services.payments.gateway, bills, Accounts(),
                              services.payments.resources["payment"], services.payments.resources["refund"],
                              other_revenue="4910")
    async with rt.db.transaction(tenant) as session:
        await payments.bill_issued(system_context(tenant, session, "http://testserver"), bills.docs[bill_id])
    rows = await in_tenant(rt, tenant, "SELECT l.account_code, l.debit - l.credit FROM ledger_entry e JOIN ledger_line "
                                       "l ON l.entry_id = e.id WHERE e.source_id = :b ORDER BY 1", b=bill_id)
    assert [(c, Decimal(v)) for c, v in rows] == [
        ("1200", Decimal("132")), ("2100", Decimal("-22")), ("4000", Decimal("-100")), ("4910", Decimal("-10"))]


async def test_a_write_off_racing_a_payment_for_one_bill_never_over_settles_it(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    from tests.payments.helpers import cash, method, pay

    account, bill = await issued_bill(client, rt, tenant, admin_headers)  # 120.00
    await deliver_all(rt)
    m = await method(client, admin_headers, cash(account))
    written, paid = await asyncio.gather(
        client.post(URL, json=_body(account["id"], "120.00", "race-with-payment"), headers=admin_headers),
        pay(client, admin_headers, account, m["id"], "120.00", [bill["id"]]))
    assert paid.status_code == 201 and written.status_code in (201, 409), written.text
    [(allocated,)] = await in_tenant(rt, tenant, "SELECT sum(amount) FROM payments_allocation WHERE bill_id = :b",
                                     b=bill["id"])
    assert Decimal(allocated) == Decimal("120.00")
    # the payment that came second (if the write-off won) is the account's credit
    expected = Decimal("-120.00") if written.status_code == 201 else Decimal(0)
    assert await open_balance(rt, tenant, account["id"]) == expected
