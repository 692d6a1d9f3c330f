"""Chargebacks against PostgreSQL: a dispute reported by the gateway's signed webhook turns a succeeded payment into
``chargeback`` (recorded in its transitions), takes back what it settled (the bills are open again, the open balance
rises), posts the reversal and the fee once; a dispute won reverses the reversal; webhooks replayed change nothing.
Stripe's dispute events are verified and normalized the same way."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import pytest

from openbss.payments.errors import BadSignature
from openbss.payments.gateway import sign
from openbss.payments.stripe_gateway import StripeGateway
from tests.billing.helpers import in_tenant
from tests.customer.helpers import assert_valid
from tests.payments.helpers import PAY, card, issued_bill, method, pay
from tests.payments.test_allocation import credit, open_balance
from tests.payments.test_payments import bill_state, states

TMF676 = "TMF676-Payment-v4.0.0.swagger.json"
HOOK = "/payments/v1/webhook/sandbox"


@pytest.fixture
def sandbox(services: Any) -> Any:
    gw = services.payments.gateway
    gw.timeouts = 0
    return gw


async def _capture(sandbox: Any) -> list[bytes]:
    """The webhooks the sandbox would deliver now (taken from its queue, for the test to post itself)."""
    bodies = [body for _, body in sandbox.outbox]
    sandbox.outbox = []
    return bodies


async def _post(client: Any, settings: Any, body: bytes) -> Any:
    return await client.post(HOOK, content=body,
                             headers={"X-Gateway-Signature": sign(settings.payments_sandbox_secret, body)})


async def _ledger(rt: Any, tenant: str, dispute_id: str) -> dict[str, dict[str, Decimal]]:
    rows = await in_tenant(rt, tenant, "SELECT e.event, l.account_code, sum(l.debit - l.credit) FROM ledger_entry e "
                                       "JOIN ledger_line l ON l.entry_id = e.id WHERE e.source_type = 'Dispute' "
                                       "AND e.source_id = :d GROUP BY 1, 2", d=dispute_id)
    out: dict[str, dict[str, Decimal]] = {}
    for event, code, amount in rows:
        out.setdefault(event, {})[code] = Decimal(amount)
    return out


async def test_a_chargeback_reopens_the_bills_and_a_dispute_won_settles_them_again(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str], sandbox: Any, settings: Any) -> None:
    account, bill = await issued_bill(client, rt, tenant, admin_headers)  # 120.00
    m = await method(client, admin_headers, card(account, token="tok_instant"))
    payment = (await pay(client, admin_headers, account, m["id"], "150.00", [bill["id"]])).json()
    assert await open_balance(rt, tenant, account["id"]) == Decimal("-30.00")
    dispute_id = sandbox.open_dispute(payment["id"], fee=Decimal("15.00"))
    [opened] = await _capture(sandbox)
    r = await _post(client, settings, opened)
    assert r.status_code == 200 and r.json()["changed"] is True, r.text
    assert (await _post(client, settings, opened)).json()["changed"] is False  # replayed: nothing more
    got = (await client.get(f"{PAY}/payment/{payment['id']}", headers=admin_headers)).json()
    assert got["status"] == "chargeback"
    assert_valid(TMF676, "Payment", got)
    [d] = got["dispute"]
    assert d["id"] == dispute_id and d["status"] == "open" and d["amount"]["value"] == 150
    assert d["fee"]["value"] == 15 and d["bill"] == [{"id": bill["id"], "@referredType": "CustomerBill"}]
    assert (await states(rt, tenant, payment["id"]))[-1] == ("succeeded", "chargeback", "dispute")
    assert await bill_state(rt, tenant, bill["id"]) == "sent"  # open again
    position = (await client.get(f"/payments/v1/bill/{bill['id']}", headers=admin_headers)).json()
    assert position["state"] == "open" and position["remaining"]["value"] == 120
    assert await credit(rt, tenant, account["id"]) == 0
    assert await open_balance(rt, tenant, account["id"]) == Decimal("120.00")  # rose by the 150 taken back
    assert await _ledger(rt, tenant, dispute_id) == {
        "chargeback": {"1200": Decimal("150.00"), "6100": Decimal("15.00"), "1010": Decimal("-165.00")}}
    # a refund of a charged-back payment is refused
    refund = await client.post(f"{PAY}/refund", json={
        "account": {"id": account["id"]}, "paymentMethod": {"id": m["id"]}, "payment": {"id": payment["id"]},
        "totalAmount": {"unit": "EUR", "value": "1.00"}}, headers=admin_headers)
    assert refund.status_code == 409 and "chargeback" in refund.json()["message"]
    # the operator wins the dispute: the money is the payment's again and settles the bill it had settled
    sandbox.close_dispute(dispute_id, won=True)
    [won] = await _capture(sandbox)
    assert (await _post(client, settings, won)).json()["changed"] is True
    assert (await _post(client, settings, won)).json()["changed"] is False
    assert (await _post(client, settings, opened)).json()["changed"] is False  # a very late replay of the opening
    got = (await client.get(f"{PAY}/payment/{payment['id']}", headers=admin_headers)).json()
    assert got["status"] == "succeeded" and got["dispute"][0]["status"] == "won"
    assert (await states(rt, tenant, payment["id"]))[-1] == ("chargeback", "succeeded", "dispute")
    assert await bill_state(rt, tenant, bill["id"]) == "settled"
    assert await open_balance(rt, tenant, account["id"]) == Decimal("-30.00")
    assert (await _ledger(rt, tenant, dispute_id))["disputeWon"] == {"1010": Decimal("150.00"),
                                                                     "1200": Decimal("-150.00")}
    tb = (await client.get("/payments/v1/trialBalance", headers=admin_headers)).json()
    assert all(t["value"] == 0 for t in tb["totals"])


async def test_a_partial_chargeback_lost_takes_the_credit_first_and_stays(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str], sandbox: Any, settings: Any) -> None:
    account, bill = await issued_bill(client, rt, tenant, admin_headers)
    m = await method(client, admin_headers, card(account, token="tok_instant"))
    payment = (await pay(client, admin_headers, account, m["id"], "150.00", [bill["id"]])).json()
    dispute_id = sandbox.open_dispute(payment["id"], amount=Decimal("50.00"), fee=Decimal(0))
    sandbox.close_dispute(dispute_id, won=False)
    bodies = await _capture(sandbox)
    for body in reversed(bodies):  # the closing arrives before the opening
        assert (await _post(client, settings, body)).status_code == 200
    got = (await client.get(f"{PAY}/payment/{payment['id']}", headers=admin_headers)).json()
    assert got["status"] == "chargeback" and got["dispute"][0]["status"] == "lost"
    assert await credit(rt, tenant, account["id"]) == 0  # the 30.00 credit, then 20.00 of the bill
    assert await bill_state(rt, tenant, bill["id"]) == "partiallyPaid"
    assert await open_balance(rt, tenant, account["id"]) == Decimal("20.00")
    assert list(await _ledger(rt, tenant, dispute_id)) == ["chargeback"]


async def test_forged_or_unknown_dispute_webhooks_change_nothing(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str], sandbox: Any, settings: Any) -> None:
    body = json.dumps({"id": "evt_x", "type": "charge.dispute.created", "data": {
        "reference": "ch_nobody", "dispute": {"id": "dp_x", "amount": "5", "fee": "0", "status": "open"}}}).encode()
    assert (await client.post(HOOK, content=body, headers={"X-Gateway-Signature": sign("wrong", body)})
            ).status_code == 401
    assert (await _post(client, settings, body)).json()["changed"] is False
    bad = json.dumps({"id": "evt_y", "type": "charge.dispute.created", "data": {
        "reference": "ch_nobody", "dispute": {"id": "dp_y", "amount": "-5", "status": "open"}}}).encode()
    r = await _post(client, settings, bad)
    assert r.status_code == 400 and "dispute" in r.json()["message"]
    assert await in_tenant(rt, tenant, "SELECT count(*) FROM payments_dispute") == [(0,)]


def test_stripe_dispute_events_are_verified_and_normalized() -> None:
    secret = "whsec_test"
    gateway = StripeGateway("sk_test_local", secret)
    event = {"id": "evt_1", "object": "event", "type": "charge.dispute.closed", "created": int(time.time()),
             "data": {"object": {"id": "dp_1", "object": "dispute", "amount": 12050, "currency": "eur",
                                 "reason": "fraudulent", "status": "won", "payment_intent": "pi_1", "charge": "ch_1",
                                 "balance_transactions": [{"id": "txn_1", "fee": 1500}]}}}
    body = json.dumps(event).encode()
    out = gateway.verify(body, sign(secret, body))
    assert out["data"] == {"reference": "pi_1", "dispute": {
        "id": "dp_1", "amount": "120.50", "fee": "15.00", "currency": "EUR", "reason": "fraudulent",
        "status": "won"}}
    with pytest.raises(BadSignature):
        gateway.verify(body, sign("other", body))
