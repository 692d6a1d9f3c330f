"""TMF676 payments through the sandbox gateway against PostgreSQL: the state machine and its recorded transitions,
Idempotency-Key, one in-flight payment per bill, webhooks twice or out of order, declines, timeouts, and the
janitor resolving what a crash or a timeout left behind."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from openbss.payments.gateway import sign
from tests.billing.helpers import billing_account, in_tenant
from tests.payments.helpers import PAY, card, cash, issued_bill, method, pay


async def states(rt: Any, tenant: str, payment_id: str) -> list[tuple[str | None, str, str]]:
    rows = await in_tenant(rt, tenant, "SELECT from_state, to_state, source FROM payments_transition "
                                       "WHERE payment_id = :p ORDER BY id", p=payment_id)
    return [(r[0], r[1], r[2]) for r in rows]


async def bill_state(rt: Any, tenant: str, bill_id: str) -> str:
    [row] = await in_tenant(rt, tenant, "SELECT state FROM billing_customer_bill WHERE id = :b", b=bill_id)
    return str(row[0])


@pytest.fixture
def sandbox(services: Any) -> Any:
    gw = services.payments.gateway
    gw.timeouts = 0
    return gw


async def test_a_card_payment_settles_asynchronously_and_pays_the_bill(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str], sandbox: Any) -> None:
    account, bill = await issued_bill(client, rt, tenant, admin_headers)  # 120.00 with VAT
    m = await method(client, admin_headers, card(account))
    r = await pay(client, admin_headers, account, m["id"], "120.00", [bill["id"]])
    assert r.status_code == 201, r.text
    payment = r.json()
    assert payment["status"] == "pending" and payment["authorizationCode"].startswith("ch_")
    assert r.headers["Location"].endswith(f"/tmf-api/paymentManagement/v4/payment/{payment['id']}")
    assert await bill_state(rt, tenant, bill["id"]) == "validated"
    await sandbox.settle()  # the provider settles and sends its signed webhook
    got = (await client.get(f"{PAY}/payment/{payment['id']}", headers=admin_headers)).json()
    assert got["status"] == "succeeded"
    assert got["allocation"] == [{"bill": {"id": bill["id"], "@referredType": "CustomerBill"}, "amount": 120.0}]
    assert await bill_state(rt, tenant, bill["id"]) == "settled"
    assert await states(rt, tenant, payment["id"]) == [
        (None, "initiated", "api"), ("initiated", "pending", "gateway"), ("pending", "succeeded", "webhook")]
    history = (await client.get(f"/payments/v1/payment/{payment['id']}/transition", headers=admin_headers)).json()
    assert [h["to"] for h in history] == ["initiated", "pending", "succeeded"]
    position = (await client.get(f"/payments/v1/bill/{bill['id']}", headers=admin_headers)).json()
    assert position["state"] == "settled" and position["remaining"]["value"] == 0


async def test_the_same_idempotency_key_charges_once(client: Any, rt: Any, tenant: str,
                                                     admin_headers: dict[str, str], sandbox: Any) -> None:
    account, bill = await issued_bill(client, rt, tenant, admin_headers)
    m = await method(client, admin_headers, card(account))
    before = len(sandbox.charges)
    first, second = await asyncio.gather(
        pay(client, admin_headers, account, m["id"], "50.00", [bill["id"]], key="order-42"),
        pay(client, admin_headers, account, m["id"], "50.00", [bill["id"]], key="order-42"))
    assert {first.status_code, second.status_code} == {201}
    assert first.json()["id"] == second.json()["id"]
    third = await pay(client, admin_headers, account, m["id"], "50.00", [bill["id"]], key="order-42")
    assert third.json()["id"] == first.json()["id"] and third.headers["Idempotent-Replayed"] == "true"
    assert len(sandbox.charges) == before + 1
    assert len(await in_tenant(rt, tenant, "SELECT id FROM payments_payment")) == 1
    other = await pay(client, admin_headers, account, m["id"], "51.00", [bill["id"]], key="order-42")
    assert other.status_code == 422 and other.json()["code"] == "IDEMPOTENCY_KEY_REUSED"


async def test_one_payment_in_flight_per_bill(client: Any, rt: Any, tenant: str, admin_headers: dict[str, str],
                                              sandbox: Any) -> None:
    account, bill = await issued_bill(client, rt, tenant, admin_headers)
    m = await method(client, admin_headers, card(account))
    results = await asyncio.gather(*[pay(client, admin_headers, account, m["id"], "120.00", [bill["id"]])
                                     for _ in range(2)])
    assert sorted(r.status_code for r in results) == [201, 409]
    refused = next(r for r in results if r.status_code == 409)
    assert refused.json()["code"] == "PAYMENT_IN_FLIGHT"
    await sandbox.settle()
    # once settled, nothing is in flight: a new payment of the bill is accepted (it becomes credit)
    assert (await pay(client, admin_headers, account, m["id"], "1.00", [bill["id"]])).status_code == 201


async def test_a_webhook_twice_or_out_of_order_changes_nothing_more(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str], sandbox: Any, settings: Any) -> None:
    account, bill = await issued_bill(client, rt, tenant, admin_headers)
    m = await method(client, admin_headers, card(account))
    captured: list[bytes] = []

    async def capture(body: bytes, signature: str) -> None:
        captured.append(body)

    real = sandbox.deliver
    sandbox.deliver = capture
    try:
        payment = (await pay(client, admin_headers, account, m["id"], "120.00", [bill["id"]])).json()
        await sandbox.settle()
    finally:
        sandbox.deliver = real
    [body] = [b for b in captured if json.loads(b)["data"]["idempotencyKey"] == payment["id"]]
    url = "/payments/v1/webhook/sandbox"
    secret = settings.payments_sandbox_secret
    first = await client.post(url, content=body, headers={"X-Gateway-Signature": sign(secret, body)})
    assert first.status_code == 200 and first.json()["changed"] is True
    again = await client.post(url, content=body, headers={"X-Gateway-Signature": sign(secret, body)})
    assert again.status_code == 200 and again.json()["changed"] is False
    # an older "pending" report arriving late (another event id) moves nothing back
    stale = json.loads(body)
    stale["id"] = "evt_late"
    stale["data"]["status"] = "pending"
    late = json.dumps(stale).encode()
    r = await client.post(url, content=late, headers={"X-Gateway-Signature": sign(secret, late)})
    assert r.status_code == 200 and r.json()["changed"] is False
    forged = await client.post(url, content=late, headers={"X-Gateway-Signature": sign("wrong", late)})
    assert forged.status_code == 401
    assert [s[1] for s in await states(rt, tenant, payment["id"])] == ["initiated", "pending", "succeeded"]
    allocated = await in_tenant(rt, tenant, "SELECT sum(amount) FROM payments_allocation WHERE bill_id = :b",
                                b=bill["id"])
    assert allocated[0][0] == Decimal("120.00")
    entries = await in_tenant(rt, tenant, "SELECT count(*) FROM ledger_entry WHERE source_id = :p", p=payment["id"])
    assert entries[0][0] == 1


async def test_a_declined_card_fails_and_the_bill_can_be_paid_again(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str], sandbox: Any) -> None:
    account, bill = await issued_bill(client, rt, tenant, admin_headers)
    bad = await method(client, admin_headers, card(account, token="tok_chargeDeclined"))
    r = await pay(client, admin_headers, account, bad["id"], "120.00", [bill["id"]])
    assert r.status_code == 201 and r.json()["status"] == "failed"
    assert r.json()["statusReason"] == "card_declined"
    good = await method(client, admin_headers, card(account, token="tok_instant"))
    retry = await pay(client, admin_headers, account, good["id"], "120.00", [bill["id"]])
    assert retry.json()["status"] == "succeeded"
    assert await bill_state(rt, tenant, bill["id"]) == "settled"


async def test_a_timeout_leaves_the_payment_unknown_until_the_janitor_asks(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str], services: Any, sandbox: Any) -> None:
    account, bill = await issued_bill(client, rt, tenant, admin_headers)
    m = await method(client, admin_headers, card(account, token="tok_instant"))
    sandbox.inject_timeouts(1)
    r = await pay(client, admin_headers, account, m["id"], "120.00", [bill["id"]])
    assert r.json()["status"] == "unknown"
    payments = services.payments.service
    assert (await payments.janitor(tenant, timedelta(minutes=5)))["checked"] == 0  # not stale yet
    report = await payments.janitor(tenant, timedelta(0))
    assert report == {"checked": 1, "resolved": 1, "retried": 0}
    assert [s[1:] for s in await states(rt, tenant, r.json()["id"])][-1] == ("succeeded", "janitor")
    assert await bill_state(rt, tenant, bill["id"]) == "settled"


@pytest.mark.parametrize("crash", ["after the gateway call", "before the gateway call"])
async def test_a_crash_around_the_gateway_call_is_resolved_by_the_janitor_with_one_charge(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str], services: Any, sandbox: Any,
        monkeypatch: Any, crash: str) -> None:
    account, bill = await issued_bill(client, rt, tenant, admin_headers)
    m = await method(client, admin_headers, card(account, token="tok_instant"))
    payments = services.payments.service

    class Killed(BaseException):
        """What kill -9 does to the request: nothing after this point runs."""

    if crash == "after the gateway call":
        async def dies(*a: Any, **kw: Any) -> Any:
            raise Killed
        monkeypatch.setattr(payments, "_record_result", dies)
    else:
        async def dies_first(*a: Any, **kw: Any) -> Any:
            raise Killed
        monkeypatch.setattr(payments, "_charge", dies_first)
    with pytest.raises(Killed):
        await pay(client, admin_headers, account, m["id"], "120.00", [bill["id"]])
    monkeypatch.undo()
    [(payment_id, state)] = await in_tenant(rt, tenant, "SELECT id, state FROM payments_payment")
    assert state == "initiated"
    charged = sum(1 for c in sandbox.charges.values() if c.key == payment_id)
    assert charged == (1 if crash == "after the gateway call" else 0)
    if crash == "after the gateway call":  # the worker's janitor: every tenant's stale payments in one query
        report = await payments.janitor(None, timedelta(0))
        assert report["resolved"] >= 1
    else:
        report = await payments.janitor(tenant, timedelta(0))
        assert report == {"checked": 1, "resolved": 1, "retried": 1}
    assert sum(1 for c in sandbox.charges.values() if c.key == payment_id) == 1
    assert await in_tenant(rt, tenant, "SELECT state FROM payments_payment") == [("succeeded",)]
    assert await bill_state(rt, tenant, bill["id"]) == "settled"
    assert (await payments.janitor(tenant, timedelta(0)))["checked"] == 0


async def test_bad_payment_requests_are_refused_and_nothing_is_written(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    account = await billing_account(client, admin_headers)
    m = await method(client, admin_headers, cash(account))
    base = {"account": {"id": account["id"]}, "paymentMethod": {"id": m["id"]}}
    cases = [
        ({**base, "totalAmount": {"unit": "EUR", "value": -5}}, "positive"),
        ({**base, "totalAmount": {"unit": "EUR", "value": "1.001"}}, "decimals"),
        ({**base, "totalAmount": {"unit": "EUR", "value": "100000000000000"}}, "at most"),
        ({**base, "totalAmount": {"unit": "EUR", "value": 1e30}}, "at most"),
        ({**base, "totalAmount": {"unit": "USD", "value": 5}}, "currency"),
        ({**base, "totalAmount": {"unit": "EUR", "value": 5}, "paymentMethod": {"id": "nope"}}, "does not exist"),
        ({**base, "totalAmount": {"unit": "EUR", "value": 5},
          "paymentItem": [{"item": {"id": "no-such-bill"}}]}, "does not exist"),
        ({"paymentMethod": {"id": m["id"]}, "totalAmount": {"unit": "EUR", "value": 5}}, "account"),
    ]
    for body, word in cases:
        r = await client.post(f"{PAY}/payment", json=body, headers=admin_headers)
        assert r.status_code == 400, (body, r.text)
        assert word in r.json()["message"], (word, r.text)
    assert await in_tenant(rt, tenant, "SELECT id FROM payments_payment") == []
