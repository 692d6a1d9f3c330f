"""Prepaid top-ups through payments against PostgreSQL: a payment marked ``prepaidTopUp`` credits the prepaid line's
charging balance exactly once when it succeeds — a webhook replayed, the janitor or a second credit attempt never
credit twice —, and posts cash / prepaid liability; a day's prepaid usage is recognized (liability → revenue) once."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from openbss.payments.gateway import sign
from openbss.payments.models import Payment
from openbss.platform.tmf.resource import system_context
from tests.billing.helpers import billing_account, in_tenant
from tests.charging.helpers import account_state, open_account
from tests.payments.helpers import PAY, card, method

BASE = "http://testserver"


@pytest.fixture
def sandbox(services: Any) -> Any:
    gw = services.payments.gateway
    gw.timeouts = 0
    return gw


def _topup(account: dict[str, Any], method_id: str, line: str, value: str, **extra: Any) -> dict[str, Any]:
    return {"account": {"id": account["id"]}, "paymentMethod": {"id": method_id},
            "totalAmount": {"unit": "EUR", "value": value}, "prepaidTopUp": {"id": line}, **extra}


async def _lines(rt: Any, tenant: str, source: str) -> dict[str, Decimal]:
    rows = await in_tenant(rt, tenant, "SELECT l.account_code, sum(l.debit - l.credit) FROM ledger_entry e "
                                       "JOIN ledger_line l ON l.entry_id = e.id WHERE e.source_id = :s GROUP BY 1",
                           s=source)
    return {str(c): Decimal(v) for c, v in rows}


async def test_a_top_up_credits_the_prepaid_balance_once(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str], services: Any, sandbox: Any,
        settings: Any) -> None:
    account = await billing_account(client, admin_headers)
    line = await open_account(rt, tenant, balance="1.00")
    before = (await account_state(rt, tenant, line["id"]))["money"]
    m = await method(client, admin_headers, card(account))  # settles asynchronously
    captured: list[bytes] = []

    async def capture(body: bytes, signature: str) -> None:
        captured.append(body)

    real = sandbox.deliver
    sandbox.deliver = capture
    try:
        r = await client.post(f"{PAY}/payment", json=_topup(account, m["id"], line["id"], "20.00"),
                              headers={**admin_headers, "Idempotency-Key": "topup-1"})
        assert r.status_code == 201 and r.json()["status"] == "pending", r.text
        assert r.json()["prepaidTopUp"] == {"id": line["id"], "@referredType": "ChargingAccount"}
        assert (await account_state(rt, tenant, line["id"]))["money"] == before  # not before it succeeds
        await sandbox.settle()
    finally:
        sandbox.deliver = real
    payment_id = r.json()["id"]
    [body] = [b for b in captured if json.loads(b)["data"]["idempotencyKey"] == payment_id]
    secret = settings.payments_sandbox_secret
    for _ in range(3):  # delivered, then replayed twice
        await client.post("/payments/v1/webhook/sandbox", content=body,
                          headers={"X-Gateway-Signature": sign(secret, body)})
    again = await client.post(f"{PAY}/payment", json=_topup(account, m["id"], line["id"], "20.00"),
                              headers={**admin_headers, "Idempotency-Key": "topup-1"})
    assert again.json()["id"] == payment_id
    payments = services.payments.service
    await payments.janitor(tenant, timedelta(0))
    async with rt.db.transaction(tenant) as session:  # a second credit attempt of the same payment
        row = await session.get(Payment, payment_id)
        assert row is not None
        assert not await payments._credit_topup(system_context(tenant, session, BASE), row, line["id"])
    assert (await account_state(rt, tenant, line["id"]))["money"] == before + 2000  # 20.00 once, in cents
    got = (await client.get(f"{PAY}/payment/{payment_id}", headers=admin_headers)).json()
    assert got["status"] == "succeeded" and "allocation" not in got
    assert await _lines(rt, tenant, payment_id) == {"1010": Decimal("20.00"), "2300": Decimal("-20.00")}
    assert await in_tenant(rt, tenant, "SELECT count(*) FROM payments_allocation") == [(0,)]  # no bills paid


async def test_bad_top_ups_are_refused_and_nothing_is_written(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str], services: Any) -> None:
    account = await billing_account(client, admin_headers)
    prepaid = await open_account(rt, tenant)
    postpaid = await open_account(rt, tenant, payment_type="postpaid")
    closed = await open_account(rt, tenant)
    async with rt.db.transaction(tenant) as session:  # its line was terminated
        await services.charging.service.set_status(system_context(tenant, session, BASE), closed["id"], "closed")
    m = await method(client, admin_headers, card(account, token="tok_instant"))
    cases = [
        (_topup(account, m["id"], "no-such-line", "5.00"), "does not exist"),
        (_topup(account, m["id"], postpaid["id"], "5.00"), "not prepaid"),
        (_topup(account, m["id"], closed["id"], "5.00"), f"charging account '{closed['id']}' is closed"),
        ({**_topup(account, m["id"], prepaid["id"], "5.00"), "prepaidTopUp": {}}, "prepaidTopUp.id"),
        (_topup(account, m["id"], prepaid["id"], "5.00", paymentItem=[{"item": {"id": "b"}}]), "pays no bills"),
    ]
    for body, word in cases:
        r = await client.post(f"{PAY}/payment", json=body, headers=admin_headers)
        assert r.status_code == 400, (body, r.text)
        assert word in r.json()["message"], (word, r.text)
    assert await in_tenant(rt, tenant, "SELECT count(*) FROM payments_payment") == [(0,)]
    # nor through TMF654, nor by an agent: 409, the balance unchanged
    from tests.charging.test_action_states import _bucket, _eur

    bucket = await _bucket(client, admin_headers, closed)
    r = await client.post("/tmf-api/prepayBalanceManagement/v4/topupBalance", headers=admin_headers, json={
        "amount": _eur("5.00"), "usageType": "monetary", "bucket": {"id": bucket["id"]},
        "partyAccount": bucket["partyAccount"]})
    assert r.status_code == 409 and r.json()["code"] == "CHARGING_ACCOUNT_CLOSED", r.text
    assert (await account_state(rt, tenant, closed["id"]))["money"] == 1000


async def test_a_days_prepaid_usage_is_recognized_once(rt: Any, tenant: str, services: Any) -> None:
    line = await open_account(rt, tenant)
    day = datetime(2027, 1, 10, 12, tzinfo=UTC)
    async with rt.db.transaction(tenant) as session:  # two rated usage records of the prepaid line that day
        for i, cents in enumerate((250, 125)):
            await session.execute(text(
                "INSERT INTO charging_usage (id, body, account_id, session_id, request_number, rating_group, "
                "usage_type, units, allowance_units, amount_minor, currency, usage_date) "
                "VALUES (:id, '{}', :a, :s, :n, 1, 'voice', 60, 0, :c, 'EUR', :d)"),
                {"id": str(uuid.uuid4()), "a": line["id"], "s": f"s-{uuid.uuid4().hex}", "n": i, "c": cents,
                 "d": day})
    payments = services.payments.service
    assert await payments.recognize_prepaid_usage([tenant], day.date()) == 1
    assert await payments.recognize_prepaid_usage([tenant], day.date()) == 0  # once
    assert await payments.recognize_prepaid_usage([tenant], day.date() + timedelta(days=1)) == 0  # no usage
    assert await _lines(rt, tenant, "2027-01-10/EUR") == {"2300": Decimal("3.75"), "4000": Decimal("-3.75")}


async def test_a_voucher_top_up_credits_at_once_and_once(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    account = await billing_account(client, admin_headers)
    line = await open_account(rt, tenant, balance="1.00")
    before = (await account_state(rt, tenant, line["id"]))["money"]
    voucher = await method(client, admin_headers, {
        "@type": "voucher", "name": "Scratch card 10", "code": "VCH-0001", "value": {"amount": 10, "units": "EUR"},
        "expirationDate": "2031-12-31T23:59:59Z", "account": [{"id": account["id"]}]})
    body = _topup(account, voucher["id"], line["id"], "10.00")
    first = await client.post(f"{PAY}/payment", json=body, headers={**admin_headers, "Idempotency-Key": "vch-1"})
    assert first.status_code == 201 and first.json()["status"] == "succeeded", first.text
    again = await client.post(f"{PAY}/payment", json=body, headers={**admin_headers, "Idempotency-Key": "vch-1"})
    assert again.json()["id"] == first.json()["id"]
    assert (await account_state(rt, tenant, line["id"]))["money"] == before + 1000
    assert await _lines(rt, tenant, first.json()["id"]) == {"1000": Decimal("10.00"), "2300": Decimal("-10.00")}


async def test_a_charged_back_top_up_is_taken_back_from_the_balance_once_and_a_dispute_won_gives_it_again(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str], services: Any, sandbox: Any,
        settings: Any) -> None:
    from openbss.payments.replay import replay
    from tests.payments.test_disputes import _capture, _ledger, _post

    account = await billing_account(client, admin_headers)
    line = await open_account(rt, tenant, balance="1.00")
    before = (await account_state(rt, tenant, line["id"]))["money"]
    m = await method(client, admin_headers, card(account, token="tok_instant"))
    r = await client.post(f"{PAY}/payment", json=_topup(account, m["id"], line["id"], "20.00"), headers=admin_headers)
    assert r.status_code == 201 and r.json()["status"] == "succeeded", r.text
    payment_id = r.json()["id"]
    assert (await account_state(rt, tenant, line["id"]))["money"] == before + 2000
    dispute_id = sandbox.open_dispute(payment_id, fee=Decimal("15.00"))
    [opened] = await _capture(sandbox)
    assert (await _post(client, settings, opened)).json()["changed"] is True
    assert (await _post(client, settings, opened)).json()["changed"] is False  # replayed: nothing more
    assert (await account_state(rt, tenant, line["id"]))["money"] == before  # the 20.00 the gateway took back
    assert await _ledger(rt, tenant, dispute_id) == {
        "chargeback": {"2300": Decimal("20.00"), "6100": Decimal("15.00"), "1010": Decimal("-35.00")}}
    sandbox.close_dispute(dispute_id, won=True)
    [won] = await _capture(sandbox)
    assert (await _post(client, settings, won)).json()["changed"] is True
    assert (await _post(client, settings, won)).json()["changed"] is False
    assert (await _post(client, settings, opened)).json()["changed"] is False
    assert (await account_state(rt, tenant, line["id"]))["money"] == before + 2000  # credited again, once
    assert (await _ledger(rt, tenant, dispute_id))["disputeWon"] == {"1010": Decimal("20.00"),
                                                                     "2300": Decimal("-20.00")}
    async with rt.db.transaction(tenant) as session:
        assert (await replay(services.payments.service, system_context(tenant, session, BASE)))["differences"] == []


async def test_a_top_up_charged_back_after_it_was_spent_leaves_a_debt_on_the_line(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str], services: Any, sandbox: Any,
        settings: Any) -> None:
    """The balance no longer holds the money: the main money bucket goes below zero by what is missing (a debt the
    line's next top-ups repay; only a chargeback does this), and the prepaid liability is debited in full."""
    from openbss.charging import service as charging
    from tests.payments.test_disputes import _capture, _ledger, _post

    account = await billing_account(client, admin_headers)
    line = await open_account(rt, tenant, balance="0.00")
    m = await method(client, admin_headers, card(account, token="tok_instant"))
    r = await client.post(f"{PAY}/payment", json=_topup(account, m["id"], line["id"], "20.00"), headers=admin_headers)
    payment_id = r.json()["id"]
    state = await account_state(rt, tenant, line["id"])
    [bucket] = [b for b in state["buckets"] if b["unit"] == "money"]
    async with rt.db.transaction(tenant) as session:  # 15.00 of it spent
        await charging.adjust(system_context(tenant, session, BASE), line["id"], bucket["id"], -1500)
    dispute_id = sandbox.open_dispute(payment_id, fee=Decimal("0"))
    [opened] = await _capture(sandbox)
    assert (await _post(client, settings, opened)).json()["changed"] is True
    assert (await _post(client, settings, opened)).json()["changed"] is False
    assert (await account_state(rt, tenant, line["id"]))["money"] == -1500  # owed by the line
    assert await _ledger(rt, tenant, dispute_id) == {"chargeback": {"2300": Decimal("20.00"),
                                                                    "1010": Decimal("-20.00")}}


async def test_credits_no_payment_funded_are_owed_in_the_prepaid_liability(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str], services: Any) -> None:
    """Money credited to a prepaid line without a payment of payments — an initial balance, a TMF654 top-up from
    outside (a partner, a retail shop), an adjustment, a cancelled top-up — is posted with the day's prepaid usage:
    the liability (2300) then holds what the balances owe, against 1020 (received outside payments) or 6300
    (goodwill and promotions). Only usage paid by a payment was in the liability before: usage paid by free credit
    was recognized as revenue out of a liability nobody had funded, which went below what the balances owed."""
    from openbss.payments.replay import replay
    from tests.charging.test_action_states import _bucket, _eur, _post

    h = admin_headers
    line = await open_account(rt, tenant, balance="5.00")  # an initial balance: goodwill
    bucket = await _bucket(client, h, line)
    owner = bucket["partyAccount"]
    await _post(client, h, "topupBalance", {"amount": _eur("10.00"), "usageType": "monetary",
                                            "bucket": {"id": bucket["id"]}, "partyAccount": owner})
    cancelled = await _post(client, h, "topupBalance", {"amount": _eur("2.50"), "usageType": "monetary",
                                                        "bucket": {"id": bucket["id"]}, "partyAccount": owner})
    r = await client.patch(f"/tmf-api/prepayBalanceManagement/v4/topupBalance/{cancelled['id']}",
                           json={"status": "cancelled", "reason": "voucher void"}, headers=h)
    assert r.status_code == 200, r.text
    await _post(client, h, "adjustBalance", {"amount": _eur("-1.00"), "usageType": "monetary",
                                             "bucket": {"id": bucket["id"]}})
    assert (await account_state(rt, tenant, line["id"]))["money"] == 1400  # 5 + 10 + 2.50 - 2.50 - 1
    today = datetime.now(UTC).date()
    payments = services.payments.service
    assert await payments.recognize_prepaid_usage([tenant], today) == 3  # credits: goodwill, external, adjustment
    assert await payments.recognize_prepaid_usage([tenant], today) == 0  # once
    day = today.isoformat()
    assert await _lines(rt, tenant, f"{day}/EUR/goodwill") == {"6300": Decimal("5.00"), "2300": Decimal("-5.00")}
    assert await _lines(rt, tenant, f"{day}/EUR/external") == {"1020": Decimal("10.00"), "2300": Decimal("-10.00")}
    assert await _lines(rt, tenant, f"{day}/EUR/adjustment") == {"6300": Decimal("-1.00"), "2300": Decimal("1.00")}
    rows = await in_tenant(rt, tenant, "SELECT sum(l.credit - l.debit) FROM ledger_line l WHERE l.account_code = "
                                       "'2300'")
    assert Decimal(rows[0][0]) == Decimal("14.00")  # the liability is what the balance owes
    async with rt.db.transaction(tenant) as session:
        report = await replay(payments, system_context(tenant, session, BASE))
    assert report["differences"] == [], report
