"""Allocation of payments to bills against PostgreSQL: named bills, else the oldest open ones; partial payments;
overpayment as credit settling the next bill when billing issues it (the bill-finalized reaction, delivered twice);
the open balance; refunds; payments racing for one bill."""

from __future__ import annotations

import asyncio
from datetime import date
from decimal import Decimal
from typing import Any

from openbss.payments.events import BILL_ISSUED_CONSUMER
from openbss.platform.events.consumers import process
from openbss.platform.events.event import Event
from openbss.platform.tmf.resource import system_context
from tests.billing.helpers import in_tenant
from tests.conftest import deliver_all, session_services
from tests.payments.helpers import PAY, card, cash, issued_bill, method, pay
from tests.payments.test_payments import bill_state


async def open_balance(rt: Any, tenant: str, account_id: str) -> Decimal:
    async with rt.db.transaction(tenant) as session:
        ctx = system_context(tenant, session, "http://testserver")
        return Decimal(await session_services().billing.balances.open_balance(ctx, account_id))


async def paid(rt: Any, tenant: str, bill_id: str) -> Decimal:
    [row] = await in_tenant(rt, tenant, "SELECT coalesce(sum(amount), 0) FROM payments_allocation WHERE bill_id = :b",
                            b=bill_id)
    return Decimal(row[0])


async def credit(rt: Any, tenant: str, account_id: str) -> Decimal:
    [row] = await in_tenant(rt, tenant, "SELECT coalesce(sum(amount), 0) FROM payments_allocation "
                                        "WHERE billing_account_id = :a AND bill_id IS NULL", a=account_id)
    return Decimal(row[0])


async def test_partial_payments_then_settled_and_the_open_balance_follows(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    account, bill = await issued_bill(client, rt, tenant, admin_headers)
    m = await method(client, admin_headers, cash(account))
    assert await open_balance(rt, tenant, account["id"]) == Decimal("120.00")
    r = await pay(client, admin_headers, account, m["id"], "50.00", [bill["id"]])
    assert r.status_code == 201 and r.json()["status"] == "succeeded"
    assert await bill_state(rt, tenant, bill["id"]) == "partiallyPaid"
    assert await open_balance(rt, tenant, account["id"]) == Decimal("70.00")
    await pay(client, admin_headers, account, m["id"], "70.00", [bill["id"]])
    assert await bill_state(rt, tenant, bill["id"]) == "settled"
    assert await open_balance(rt, tenant, account["id"]) == Decimal(0)
    # the account can be closed now: nothing is owed (the account domain asks the same provider)
    position = (await client.get(f"/payments/v1/bill/{bill['id']}", headers=admin_headers)).json()
    assert position["paid"]["value"] == 120 and position["state"] == "settled"


async def test_an_unnamed_payment_settles_the_oldest_open_bills_first(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    account, older = await issued_bill(client, rt, tenant, admin_headers, as_of=date(2027, 2, 1))
    _, newer = await issued_bill(client, rt, tenant, admin_headers, "50.00", account=account, as_of=date(2027, 3, 1))
    await deliver_all(rt)  # payments hears of both bills
    m = await method(client, admin_headers, cash(account))
    r = await pay(client, admin_headers, account, m["id"], "150.00")
    assert r.json()["allocation"] == [
        {"bill": {"id": older["id"], "@referredType": "CustomerBill"}, "amount": 120.0},
        {"bill": {"id": newer["id"], "@referredType": "CustomerBill"}, "amount": 30.0}]
    assert (await bill_state(rt, tenant, older["id"]), await bill_state(rt, tenant, newer["id"])) == (
        "settled", "partiallyPaid")
    # a payment naming the newer bill goes to it first
    r = await pay(client, admin_headers, account, m["id"], "10.00", [newer["id"]])
    assert await paid(rt, tenant, newer["id"]) == Decimal("40.00")


async def test_an_overpayment_is_credit_that_settles_the_next_bill_once(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    account, first = await issued_bill(client, rt, tenant, admin_headers)
    m = await method(client, admin_headers, cash(account))
    await pay(client, admin_headers, account, m["id"], "200.00", [first["id"]])
    assert await credit(rt, tenant, account["id"]) == Decimal("80.00")
    assert await open_balance(rt, tenant, account["id"]) == Decimal("-80.00")
    _, second = await issued_bill(client, rt, tenant, admin_headers, account=account, as_of=date(2027, 3, 1))
    # billing issued it against the balance the payments made: a credit of 80 applied, 40 due
    assert second["previousBalance"]["value"] == Decimal("-80.00")
    assert second["amountDue"]["value"] == Decimal("40.00")
    assert await bill_state(rt, tenant, second["id"]) == "validated"
    await deliver_all(rt)  # the bill-finalized reaction: the credit settles what it can
    assert await paid(rt, tenant, second["id"]) == Decimal("80.00")
    assert await bill_state(rt, tenant, second["id"]) == "partiallyPaid"
    assert await credit(rt, tenant, account["id"]) == Decimal(0)
    # the same event again (a redelivery, an operator's forced replay) changes nothing
    [row] = await in_tenant(rt, tenant, "SELECT envelope FROM outbox_event WHERE event_type = "
                                        "'CustomerBillStateChangeEvent' AND resource_id = :b ORDER BY id LIMIT 1",
                            b=second["id"])
    event = Event(tenant, "customerBillManagement", "CustomerBillStateChangeEvent", row[0])
    consumer = rt.consumers.get(BILL_ISSUED_CONSUMER)
    assert not await process(rt.db, consumer, event)
    assert await process(rt.db, consumer, event, force=True)
    assert await paid(rt, tenant, second["id"]) == Decimal("80.00")
    entries = await in_tenant(rt, tenant, "SELECT count(*) FROM ledger_entry WHERE source_id = :b", b=second["id"])
    assert entries == [(1,)]
    assert await open_balance(rt, tenant, account["id"]) == Decimal("40.00")


async def test_cash_payments_racing_for_one_bill_allocate_it_exactly_once(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    account, bill = await issued_bill(client, rt, tenant, admin_headers)
    m = await method(client, admin_headers, cash(account))
    results = await asyncio.gather(*[pay(client, admin_headers, account, m["id"], "100.00", [bill["id"]])
                                     for _ in range(4)])
    assert [r.status_code for r in results] == [201] * 4
    assert await paid(rt, tenant, bill["id"]) == Decimal("120.00")
    assert await credit(rt, tenant, account["id"]) == Decimal("280.00")
    assert await bill_state(rt, tenant, bill["id"]) == "settled"
    assert await open_balance(rt, tenant, account["id"]) == Decimal("-280.00")


async def test_a_refund_draws_on_the_payments_credit_only(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str], services: Any) -> None:
    account, bill = await issued_bill(client, rt, tenant, admin_headers)
    m = await method(client, admin_headers, card(account, token="tok_instant"))
    payment = (await pay(client, admin_headers, account, m["id"], "150.00", [bill["id"]])).json()
    assert payment["status"] == "succeeded"
    body = {"account": {"id": account["id"]}, "paymentMethod": {"id": m["id"]}, "payment": {"id": payment["id"]},
            "totalAmount": {"unit": "EUR", "value": "20.00"}}
    r = await client.post(f"{PAY}/refund", json=body, headers={**admin_headers, "Idempotency-Key": "rf-1"})
    assert r.status_code == 201 and r.json()["status"] == "succeeded", r.text
    again = await client.post(f"{PAY}/refund", json=body, headers={**admin_headers, "Idempotency-Key": "rf-1"})
    assert again.json()["id"] == r.json()["id"]
    assert await credit(rt, tenant, account["id"]) == Decimal("10.00")
    too_much = await client.post(f"{PAY}/refund", json={**body, "totalAmount": {"unit": "EUR", "value": "10.01"}},
                                 headers=admin_headers)
    assert too_much.status_code == 409 and too_much.json()["code"] == "REFUND_REFUSED"
    assert await open_balance(rt, tenant, account["id"]) == Decimal("-10.00")
    charge = next(c for c in services.payments.gateway.charges.values() if c.key == payment["id"])
    assert charge.refunded == Decimal("20.00")
    refunds = await in_tenant(rt, tenant, "SELECT count(*) FROM payments_refund")
    assert refunds == [(1,)]


async def test_a_refund_whose_answer_was_lost_is_refunded_once_when_sent_again(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str], services: Any) -> None:
    """The gateway refunds but its answer is lost (504): the same request with the same Idempotency-Key reaches the
    gateway with the same idempotency key, so the card is refunded once, not twice."""
    account, bill = await issued_bill(client, rt, tenant, admin_headers)
    m = await method(client, admin_headers, card(account, token="tok_instant"))
    payment = (await pay(client, admin_headers, account, m["id"], "150.00", [bill["id"]])).json()
    body = {"account": {"id": account["id"]}, "paymentMethod": {"id": m["id"]}, "payment": {"id": payment["id"]},
            "totalAmount": {"unit": "EUR", "value": "20.00"}}
    gateway = services.payments.gateway
    gateway.inject_timeouts(1)
    lost = await client.post(f"{PAY}/refund", json=body, headers={**admin_headers, "Idempotency-Key": "rf-lost"})
    assert lost.status_code == 504 and lost.json()["code"] == "GATEWAY_TIMEOUT", lost.text
    charge = next(c for c in gateway.charges.values() if c.key == payment["id"])
    assert charge.refunded == Decimal("20.00")  # the gateway did refund
    r = await client.post(f"{PAY}/refund", json=body, headers={**admin_headers, "Idempotency-Key": "rf-lost"})
    assert r.status_code == 201 and r.json()["status"] == "succeeded", r.text
    assert charge.refunded == Decimal("20.00")  # once
    assert await credit(rt, tenant, account["id"]) == Decimal("10.00")
    assert await in_tenant(rt, tenant, "SELECT count(*) FROM payments_refund") == [(1,)]


async def test_finance_reports_aging_receipts_and_trial_balance(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    account, bill = await issued_bill(client, rt, tenant, admin_headers)  # due 14 days after 1 February 2027
    await issued_bill(client, rt, tenant, admin_headers, "50.00")
    await deliver_all(rt)
    m = await method(client, admin_headers, cash(account))
    await pay(client, admin_headers, account, m["id"], "20.00", [bill["id"]])
    r = await client.get("/payments/v1/report/arAging", params={"asOf": "2027-03-20"}, headers=admin_headers)
    assert r.status_code == 200, r.text
    [row] = r.json()
    assert row["currency"] == "EUR" and row["bills"] == 2
    assert row["31-60"] == 160 and row["current"] == 0 and row["total"] == 160  # 100 + 60, 34 days past due
    current = (await client.get("/payments/v1/report/arAging", params={"asOf": "2027-02-05"},
                                headers=admin_headers)).json()
    assert current[0]["current"] == 160
    receipts = (await client.get("/payments/v1/report/cashReceipts", params={"start": "2000-01-01"},
                                 headers=admin_headers)).json()
    assert [(x["method"], x["net"]) for x in receipts] == [("cash", 20)]
    tb = await client.get("/payments/v1/report/trialBalance", params={"format": "csv"}, headers=admin_headers)
    assert tb.headers["content-type"].startswith("text/csv")
    lines = tb.text.splitlines()
    assert lines[0] == "account,name,currency,debit,credit,balance"
    balances = {ln.split(",")[0]: Decimal(ln.split(",")[-1]) for ln in lines[1:]}
    assert balances["1200"] == Decimal("160.00") and sum(balances.values()) == 0
    assert (await client.get("/payments/v1/report/nope", headers=admin_headers)).status_code == 404
    assert (await client.get("/payments/v1/report/arAging", params={"asOf": "x"},
                             headers=admin_headers)).status_code == 400
