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


async def test_minor_units_per_currency_three_decimals_and_none(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    """Partial payments in a currency of three decimals (KWD) and of none (JPY), as the billing engines' invoice and
    payment scenarios run them: an amount finer than the currency's minor unit is refused and writes nothing; the
    parts settle the bill to the last fils; a JPY bill credited in three notes credits exactly its tax in yen."""
    from tests.billing.helpers import billing_account, run, sell

    async def bill_in(currency: str, value: str) -> tuple[dict[str, Any], dict[str, Any]]:
        account = await billing_account(client, admin_headers, currency=currency, tz="UTC")
        await sell(rt, tenant, account, "2027-02-01T10:00:00.000Z", [{
            "name": "Activation", "priceType": "oneTime",
            "price": {"dutyFreeAmount": {"unit": currency, "value": value}, "taxRate": "20"},
            "productOfferingPrice": {"id": f"pop-{currency}", "name": "Activation"}}])
        await run(rt, tenant, date(2027, 2, 1), finalize=True, account_ids=[account["id"]])
        [bill] = (await client.get("/tmf-api/customerBillManagement/v4/customerBill",
                                   params={"billingAccount.id": account["id"]}, headers=admin_headers)).json()
        await deliver_all(rt)  # payments heard of the bill
        return account, bill

    async def pay_in(account: dict[str, Any], m: dict[str, Any], currency: str, value: str) -> Any:
        return await client.post(f"{PAY}/payment", headers=admin_headers, json={
            "account": {"id": account["id"]}, "paymentMethod": {"id": m["id"]},
            "totalAmount": {"unit": currency, "value": value}})

    kwd, kwd_bill = await bill_in("KWD", "10.000")  # 12.000 KWD with VAT
    assert Decimal(str(kwd_bill["taxIncludedAmount"]["value"])) == Decimal("12.000")
    m = await method(client, admin_headers, cash(kwd))
    assert (await pay_in(kwd, m, "KWD", "4.001")).status_code == 201
    fine = await pay_in(kwd, m, "KWD", "4.0005")
    assert fine.status_code == 400 and "decimals" in fine.json()["message"], fine.text
    assert await bill_state(rt, tenant, kwd_bill["id"]) == "partiallyPaid"
    assert await paid(rt, tenant, kwd_bill["id"]) == Decimal("4.001")
    assert (await pay_in(kwd, m, "KWD", "7.999")).status_code == 201
    assert await bill_state(rt, tenant, kwd_bill["id"]) == "settled"
    assert await open_balance(rt, tenant, kwd["id"]) == 0 and await credit(rt, tenant, kwd["id"]) == 0
    [(count,)] = await in_tenant(rt, tenant, "SELECT count(*) FROM payments_payment WHERE billing_account_id = :a",
                                 a=kwd["id"])
    assert count == 2  # the refused one wrote nothing

    jpy, jpy_bill = await bill_in("JPY", "1000")  # 1200 JPY with VAT
    m = await method(client, admin_headers, cash(jpy))
    assert (await pay_in(jpy, m, "JPY", "600.5")).status_code == 400
    assert (await pay_in(jpy, m, "JPY", "600")).status_code == 201
    assert await bill_state(rt, tenant, jpy_bill["id"]) == "partiallyPaid"
    notes = []
    for _ in range(3):
        r = await client.post("/billing/v1/creditNote", headers=admin_headers,
                              json={"bill": {"id": jpy_bill["id"]}, "amount": "400", "reason": "Goodwill"})
        assert r.status_code == 201, r.text
        notes.append(r.json())
    taxes = [Decimal(str(n["taxItem"][0]["taxAmount"]["value"])) for n in notes]
    assert sum(taxes) == -200 and all(t == t.to_integral_value() for t in taxes), taxes
    # the notes' credit settles what was left of the bill; the rest is the account's credit
    await deliver_all(rt)
    assert await bill_state(rt, tenant, jpy_bill["id"]) == "settled"
    assert await open_balance(rt, tenant, jpy["id"]) == -600


async def test_credit_settles_a_bill_whose_payment_was_tried_before_its_issue_was_heard_of(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    """A payment naming a bill that payments had not heard of yet records the bill as receivable: the bill-issued
    reaction that follows must still let the account's credit settle it (a declined card settles nothing)."""
    account, first = await issued_bill(client, rt, tenant, admin_headers)
    m = await method(client, admin_headers, cash(account))
    await pay(client, admin_headers, account, m["id"], "200.00", [first["id"]])
    assert await credit(rt, tenant, account["id"]) == Decimal("80.00")
    _, second = await issued_bill(client, rt, tenant, admin_headers, account=account, as_of=date(2027, 3, 1))
    bad = await method(client, admin_headers, card(account, token="tok_chargeDeclined"))
    r = await pay(client, admin_headers, account, bad["id"], "40.00", [second["id"]])  # before the event
    assert r.json()["status"] == "failed"
    await deliver_all(rt)  # the bill-finalized reaction
    assert await paid(rt, tenant, second["id"]) == Decimal("80.00")
    assert await credit(rt, tenant, account["id"]) == Decimal(0)
    assert await bill_state(rt, tenant, second["id"]) == "partiallyPaid"
