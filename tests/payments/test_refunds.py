"""Refunds in two phases against PostgreSQL and the sandbox gateway: recorded pending and committed before the
gateway is called (our refund id its idempotency key), the answer recorded after; a process killed in between is
resolved by the janitor with one refund at the gateway and one recorded; refunds racing for one payment never
exceed what of it is credit; a refund in flight holds its amount."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from tests.billing.helpers import in_tenant
from tests.payments.helpers import PAY, card, issued_bill, method, pay


@pytest.fixture
def sandbox(services: Any) -> Any:
    gw = services.payments.gateway
    gw.timeouts = 0
    return gw


async def _paid_by_card(client: Any, rt: Any, tenant: str, h: dict[str, str], value: str = "150.00",
                        ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A bill of 120.00 paid with ``value`` by card (succeeded at once): 30.00 of it is credit."""
    account, bill = await issued_bill(client, rt, tenant, h)
    m = await method(client, h, card(account, token="tok_instant"))
    payment = (await pay(client, h, account, m["id"], value, [bill["id"]])).json()
    assert payment["status"] == "succeeded"
    return account, m, payment


def _refund_body(account: dict[str, Any], m: dict[str, Any], payment: dict[str, Any], value: str) -> dict[str, Any]:
    return {"account": {"id": account["id"]}, "paymentMethod": {"id": m["id"]}, "payment": {"id": payment["id"]},
            "totalAmount": {"unit": "EUR", "value": value}}


async def _recorded(rt: Any, tenant: str, payment_id: str) -> tuple[int, int, Decimal]:
    """(refunds succeeded, ledger entries of refunds, amount drawn from the payment's credit by refunds)."""
    [(succeeded,)] = await in_tenant(rt, tenant, "SELECT count(*) FROM payments_refund WHERE payment_id = :p "
                                                 "AND state = 'succeeded'", p=payment_id)
    [(posted,)] = await in_tenant(rt, tenant, "SELECT count(*) FROM ledger_entry e JOIN payments_refund r "
                                              "ON r.id = e.source_id WHERE e.source_type = 'Refund' "
                                              "AND r.payment_id = :p", p=payment_id)
    [(drawn,)] = await in_tenant(rt, tenant, "SELECT coalesce(-sum(amount), 0) FROM payments_allocation "
                                             "WHERE payment_id = :p AND source = 'refund'", p=payment_id)
    return int(succeeded), int(posted), Decimal(drawn)


@pytest.mark.parametrize("crash", ["after the gateway call", "before the gateway call"])
async def test_a_crash_around_the_refunds_gateway_call_ends_with_one_refund(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str], services: Any, sandbox: Any,
        monkeypatch: Any, crash: str) -> None:
    account, m, payment = await _paid_by_card(client, rt, tenant, admin_headers)
    payments = services.payments.service

    class Killed(BaseException):
        """What kill -9 does to the request: nothing after this point runs."""

    async def dies(*a: Any, **kw: Any) -> Any:
        raise Killed

    monkeypatch.setattr(payments, "_record_refund" if crash == "after the gateway call" else "_refund_at_gateway",
                        dies)
    with pytest.raises(Killed):
        await client.post(f"{PAY}/refund", json=_refund_body(account, m, payment, "20.00"), headers=admin_headers)
    monkeypatch.undo()
    [(refund_id, state)] = await in_tenant(rt, tenant, "SELECT id, state FROM payments_refund")
    assert state == "pending"  # committed before the gateway was called
    charge = next(c for c in sandbox.charges.values() if c.key == payment["id"])
    assert charge.refunded == (Decimal("20.00") if crash == "after the gateway call" else 0)
    assert await _recorded(rt, tenant, payment["id"]) == (0, 0, Decimal(0))
    # the pending refund holds its amount: the 30.00 of credit has 10.00 left for another refund
    held = await client.post(f"{PAY}/refund", json=_refund_body(account, m, payment, "10.01"), headers=admin_headers)
    assert held.status_code == 409 and "held by refunds in flight" in held.json()["message"]
    assert (await payments.refund_janitor(tenant, timedelta(minutes=5)))["checked"] == 0  # not stale yet
    report = await payments.refund_janitor(None, timedelta(0))  # every tenant's, one query
    assert report["resolved"] >= 1
    assert await in_tenant(rt, tenant, "SELECT state FROM payments_refund") == [("succeeded",)]
    assert charge.refunded == Decimal("20.00")  # one refund at the gateway
    assert [k for k in sandbox.refunds if k == refund_id] == [refund_id]
    assert await _recorded(rt, tenant, payment["id"]) == (1, 1, Decimal("20.00"))  # and one recorded
    assert (await payments.refund_janitor(tenant, timedelta(0)))["checked"] == 0
    got = (await client.get(f"{PAY}/refund/{refund_id}", headers=admin_headers)).json()
    assert got["status"] == "succeeded" and got["authorizationCode"].startswith("re_")


async def test_refunds_racing_for_one_payment_never_exceed_its_credit(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str], sandbox: Any) -> None:
    account, m, payment = await _paid_by_card(client, rt, tenant, admin_headers)  # 30.00 of credit
    results = await asyncio.gather(*[
        client.post(f"{PAY}/refund", json=_refund_body(account, m, payment, "7.00"),
                    headers={**admin_headers, "Idempotency-Key": f"race-{i}"}) for i in range(8)])
    codes = sorted(r.status_code for r in results)
    assert codes == [201] * 4 + [409] * 4, [r.text for r in results]
    assert all(r.json()["code"] == "REFUND_REFUSED" for r in results if r.status_code == 409)
    charge = next(c for c in sandbox.charges.values() if c.key == payment["id"])
    assert charge.refunded == Decimal("28.00")
    assert await _recorded(rt, tenant, payment["id"]) == (4, 4, Decimal("28.00"))
    # the same keys again refund nothing more
    again = await asyncio.gather(*[
        client.post(f"{PAY}/refund", json=_refund_body(account, m, payment, "7.00"),
                    headers={**admin_headers, "Idempotency-Key": f"race-{i}"}) for i in range(8)])
    assert sum(1 for r in again if r.status_code == 201) == 4
    assert charge.refunded == Decimal("28.00")


async def test_a_refund_timing_out_is_pending_and_resolved_by_the_janitor(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str], services: Any, sandbox: Any) -> None:
    account, m, payment = await _paid_by_card(client, rt, tenant, admin_headers)
    sandbox.inject_timeouts(1)
    lost = await client.post(f"{PAY}/refund", json=_refund_body(account, m, payment, "5.00"), headers=admin_headers)
    assert lost.status_code == 504 and "is pending" in lost.json()["message"]
    assert await in_tenant(rt, tenant, "SELECT state FROM payments_refund") == [("unknown",)]
    report = await services.payments.service.refund_janitor(tenant, timedelta(0))
    assert report == {"checked": 1, "resolved": 1}
    assert await _recorded(rt, tenant, payment["id"]) == (1, 1, Decimal("5.00"))
    charge = next(c for c in sandbox.charges.values() if c.key == payment["id"])
    assert charge.refunded == Decimal("5.00")


async def test_a_refund_the_gateway_refuses_is_failed_and_draws_nothing(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str], sandbox: Any) -> None:
    account, m, payment = await _paid_by_card(client, rt, tenant, admin_headers)
    charge = next(c for c in sandbox.charges.values() if c.key == payment["id"])
    charge.refunded = charge.amount  # refunded at the provider's dashboard, unknown to us
    r = await client.post(f"{PAY}/refund", json=_refund_body(account, m, payment, "5.00"), headers=admin_headers)
    assert r.status_code == 201 and r.json()["status"] == "failed"
    assert await _recorded(rt, tenant, payment["id"]) == (0, 0, Decimal(0))
    charge.refunded = Decimal(0)
    ok = await client.post(f"{PAY}/refund", json=_refund_body(account, m, payment, "30.00"), headers=admin_headers)
    assert ok.json()["status"] == "succeeded"  # the failed refund held nothing


async def test_a_refund_draws_on_a_credit_note_once_and_never_more_than_it_left(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    """A credit note on a bill already paid leaves its amount as account credit; refunds naming the credit note
    (racing clients) pay out at most that, each once, and post receivable / cash."""
    from tests.payments.helpers import cash

    account, bill = await issued_bill(client, rt, tenant, admin_headers)  # 120.00
    m = await method(client, admin_headers, cash(account))
    assert (await pay(client, admin_headers, account, m["id"], "120.00", [bill["id"]])).status_code == 201
    r = await client.post("/billing/v1/creditNote", headers=admin_headers,
                          json={"bill": {"id": bill["id"]}, "amount": 24, "reason": "Network outage"})
    assert r.status_code == 201, r.text
    note = r.json()

    def body(value: str, **extra: Any) -> dict[str, Any]:
        return {"account": {"id": account["id"]}, "paymentMethod": {"id": m["id"]},
                "creditNote": {"id": note["id"]}, "totalAmount": {"unit": "EUR", "value": value}, **extra}

    results = await asyncio.gather(*[
        client.post(f"{PAY}/refund", json=body("7.00"), headers={**admin_headers, "Idempotency-Key": f"cn-{i}"})
        for i in range(5)])
    codes = sorted(r.status_code for r in results)
    assert codes == [201] * 3 + [409] * 2, [r.text for r in results]
    done = [r.json() for r in results if r.status_code == 201]
    assert all(d["status"] == "succeeded" and d["creditNote"]["id"] == note["id"] for d in done)
    assert all(d["@type"] == "OpenBSSRefund" for d in done)
    from tests.customer.helpers import assert_valid
    for d in done:
        assert_valid("TMF676-Payment-v4.0.0.swagger.json", "Refund", d)
    assert all(r.json()["code"] == "REFUND_REFUSED" for r in results if r.status_code == 409)
    first = next(i for i, r in enumerate(results) if r.status_code == 201)
    again = await client.post(f"{PAY}/refund", json=body("7.00"),
                              headers={**admin_headers, "Idempotency-Key": f"cn-{first}"})
    assert again.status_code == 201 and again.json()["id"] == results[first].json()["id"]  # nothing more paid
    assert (await client.post(f"{PAY}/refund", json=body("3.01"), headers=admin_headers)).status_code == 409
    [(left,)] = await in_tenant(rt, tenant, "SELECT sum(amount) FROM payments_allocation WHERE payment_id = :p "
                                            "AND bill_id IS NULL", p=f"creditNote:{note['id']}")
    assert Decimal(left) == Decimal("3.00")
    rows = await in_tenant(rt, tenant, "SELECT l.account_code, sum(l.debit - l.credit) FROM ledger_entry e "
                                       "JOIN ledger_line l ON l.entry_id = e.id WHERE e.source_type = 'Refund' "
                                       "GROUP BY 1")
    assert {c: Decimal(v) for c, v in rows} == {"1200": Decimal("21.00"), "1000": Decimal("-21.00")}
    # not a credit note, another account's, both named: refused, nothing written
    assert (await client.post(f"{PAY}/refund", json=body("1.00", creditNote={"id": bill["id"]}),
                              headers=admin_headers)).status_code == 400
    other, _ = await issued_bill(client, rt, tenant, admin_headers)
    wrong = await client.post(f"{PAY}/refund", json={**body("1.00"), "account": {"id": other["id"]}},
                              headers=admin_headers)
    assert wrong.status_code == 400, wrong.text
    both = await client.post(f"{PAY}/refund", json={**body("1.00"), "payment": {"id": "x"}}, headers=admin_headers)
    assert both.status_code == 400, both.text
    [(count,)] = await in_tenant(rt, tenant, "SELECT count(*) FROM payments_refund")
    assert count == 3


async def test_a_credit_note_paid_out_leaves_the_account_credit_it_paid_out(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    """The open balance (what the next bill states as the previous balance) follows a credit note's payout: a
    credit note of 24.00 on a paid bill is 24.00 of credit; 21.00 of it paid out leaves 3.00, not 24.00."""
    from tests.payments.helpers import cash
    from tests.payments.test_allocation import open_balance

    account, bill = await issued_bill(client, rt, tenant, admin_headers)  # 120.00
    m = await method(client, admin_headers, cash(account))
    assert (await pay(client, admin_headers, account, m["id"], "120.00", [bill["id"]])).status_code == 201
    assert await open_balance(rt, tenant, account["id"]) == Decimal("0.00")
    r = await client.post("/billing/v1/creditNote", headers=admin_headers,
                          json={"bill": {"id": bill["id"]}, "amount": 24, "reason": "Network outage"})
    assert r.status_code == 201, r.text
    note = r.json()
    assert await open_balance(rt, tenant, account["id"]) == Decimal("-24.00")
    out = await client.post(f"{PAY}/refund", headers=admin_headers, json={
        "account": {"id": account["id"]}, "paymentMethod": {"id": m["id"]}, "creditNote": {"id": note["id"]},
        "totalAmount": {"unit": "EUR", "value": "21.00"}})
    assert out.status_code == 201, out.text
    assert await open_balance(rt, tenant, account["id"]) == Decimal("-3.00")


async def test_the_next_bill_states_the_credit_a_credit_note_left_after_its_payout(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    """A bill run's issuing asks the open balances of many accounts at once: they follow a credit note's payout as
    the open balance of one account does (24.00 credited, 21.00 paid out: the next bill states 3.00 of credit, not
    24.00 — the 21.00 would be credited twice)."""
    from datetime import date

    from tests.payments.helpers import cash

    account, bill = await issued_bill(client, rt, tenant, admin_headers)  # 120.00
    m = await method(client, admin_headers, cash(account))
    assert (await pay(client, admin_headers, account, m["id"], "120.00", [bill["id"]])).status_code == 201
    r = await client.post("/billing/v1/creditNote", headers=admin_headers,
                          json={"bill": {"id": bill["id"]}, "amount": 24, "reason": "Network outage"})
    assert r.status_code == 201, r.text
    out = await client.post(f"{PAY}/refund", headers=admin_headers, json={
        "account": {"id": account["id"]}, "paymentMethod": {"id": m["id"]}, "creditNote": {"id": r.json()["id"]},
        "totalAmount": {"unit": "EUR", "value": "21.00"}})
    assert out.status_code == 201, out.text
    _, second = await issued_bill(client, rt, tenant, admin_headers, account=account, as_of=date(2027, 3, 1))
    assert second["previousBalance"]["value"] == Decimal("-3.00")
    assert second["amountDue"]["value"] == Decimal("117.00")
