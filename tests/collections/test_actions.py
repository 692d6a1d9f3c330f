"""The actions of the steps other than reminders and barring: the late fee (billing's manual charge, once), the
agency hand-over file, payment retries (a hard
decline skips the later retries, a soft one does not) and quiet hours."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from openbss.billing.models import ManualCharge
from openbss.collections.service import in_quiet_hours
from openbss.platform.tmf.resource import system_context
from tests.billing.helpers import in_tenant
from tests.collections.helpers import API, accounts, episodes, executions, overdue, policy, reminder
from tests.conftest import bearer, deliver_all, make_tenant, session_services
from tests.payments.helpers import card as pay_card
from tests.payments.helpers import cash as pay_cash
from tests.payments.helpers import issued_bill, method, pay


async def test_late_fee_and_hand_over(rt: Any, client: Any) -> None:
    """(The write-off step, through payments' real write-off, is test_write_off.py's.)"""
    tenant = await make_tenant(rt, "act")
    h = bearer(tenant, "billing_ops")
    await policy(client, h, [{"name": "Late fee", "action": "lateFee", "daysPastDue": 0,
                              "fee": {"unit": "EUR", "value": 7.5}},
                             {"action": "agencyHandover", "daysPastDue": 1}])
    [a] = await accounts(client, tenant, 1)
    await overdue(rt, tenant, a["id"], "123.45", days=5)
    svc = session_services().collections.service
    report = await svc.run_tenant(tenant)
    assert report.done == 2, report.as_dict()
    fee, handover = await executions(rt, tenant)
    async with rt.db.transaction(tenant) as s:
        from sqlalchemy import select
        charges = (await s.execute(select(ManualCharge))).scalars().all()
    assert [(c.amount, c.reason_code, c.reference) for c in charges] == [
        (Decimal("7.5"), "LATE_FEE", f"collections:{fee.id}")]
    assert fee.outcome == {"charge": charges[0].id}
    store = session_services().billing.documents
    csv = (await store.get(handover.outcome["file"])).decode()
    assert a["id"] in csv and "123.45" in csv
    [ep] = await episodes(rt, tenant)
    assert ep.state == "open"  # handed over, still owed


async def test_a_hard_decline_skips_later_retries_a_soft_one_does_not(rt: Any, client: Any) -> None:
    tenant = await make_tenant(rt, "act")
    h = bearer(tenant, "billing_ops")
    await policy(client, h, [{"action": "paymentRetry", "daysPastDue": 0}, {"action": "paymentRetry",
                                                                           "daysPastDue": 1}])
    hard, soft = await accounts(client, tenant, 2)
    for account, token in ((hard, "tok_chargeDeclined"), (soft, "tok_insufficientFunds")):
        r = await client.post("/tmf-api/paymentMethod/v4/paymentMethod", headers=h, json={
            "@type": "tokenizedCard", "name": "card", "account": [{"id": account["id"]}], "isPreferred": True,
            "token": token, "brand": "visa", "lastFourDigits": "4242", "expirationDate": "2031-01-01T00:00:00Z"})
        assert r.status_code == 201, r.text
        await overdue(rt, tenant, account["id"], "30", days=4)
    svc = session_services().collections.service
    await svc.run_tenant(tenant)
    by_episode = {e.id: e.billing_account_id for e in await episodes(rt, tenant)}
    states = {(by_episode[x.episode_id], x.step): x for x in await executions(rt, tenant)}
    assert states[(hard["id"], 0)].state == "failed" and states[(hard["id"], 0)].outcome["hardDecline"] is True
    assert states[(hard["id"], 1)].state == "skipped"
    assert states[(soft["id"], 0)].state == "failed" and states[(soft["id"], 0)].outcome["hardDecline"] is False
    assert states[(soft["id"], 1)].state == "failed"  # retried: a soft decline may pass next time
    payments = (await client.get("/tmf-api/paymentManagement/v4/payment", headers=h)).json()
    assert len(payments) == 3  # one per retry taken, never two


def test_quiet_hours() -> None:
    quiet = {"start": "21:00", "end": "08:00", "timeZone": "Europe/Paris"}
    night = datetime(2026, 12, 4, 22, 30, tzinfo=UTC)  # 23:30 in Paris
    assert in_quiet_hours(quiet, night, None) == datetime(2026, 12, 5, 7, 0, tzinfo=UTC)
    early = datetime(2026, 12, 5, 5, 0, tzinfo=UTC)  # 06:00 in Paris
    assert in_quiet_hours(quiet, early, None) == datetime(2026, 12, 5, 7, 0, tzinfo=UTC)
    assert in_quiet_hours(quiet, datetime(2026, 12, 5, 12, 0, tzinfo=UTC), None) is None
    assert in_quiet_hours({"start": "12:00", "end": "14:00"}, datetime(2026, 12, 5, 13, 0, tzinfo=UTC),
                          None) == datetime(2026, 12, 5, 14, 0, tzinfo=UTC)


async def test_a_reminder_in_quiet_hours_waits_for_their_end(rt: Any, client: Any) -> None:
    tenant = await make_tenant(rt, "act")
    h = bearer(tenant, "billing_ops")
    now = datetime.now(UTC)
    start, end = (now - timedelta(hours=1)).strftime("%H:%M"), (now + timedelta(hours=2)).strftime("%H:%M")
    await policy(client, h, [reminder(0, quietHours={"start": start, "end": end, "timeZone": "UTC"})])
    [a] = await accounts(client, tenant, 1)
    await overdue(rt, tenant, a["id"], "10", days=1)
    report = await session_services().collections.service.run_tenant(tenant)
    assert report.deferred == 1 and report.done == 0
    [ex] = await executions(rt, tenant)
    assert ex.state == "claimed" and ex.lease_until > now + timedelta(hours=1)
    r = await client.get(f"{API}/dunningEpisode", headers=h)
    assert r.json()[0]["stepTaken"][0]["state"] == "claimed"



async def test_a_payment_retry_charges_what_is_still_overdue_when_it_is_taken(rt: Any, client: Any) -> None:
    """A payment received between the claim of a retry and its charge: the card is charged what is still overdue
    (not the amount overdue at the claim), and nothing when all of it was paid."""
    tenant = await make_tenant(rt, "act")
    h = bearer(tenant, "admin")
    await policy(client, h, [{"action": "paymentRetry", "daysPastDue": 0}])
    bills = {}
    for _ in range(2):
        account, bill = await issued_bill(client, rt, tenant, h)  # 120.00 tax included
        card = await method(client, h, {**pay_card(account, token="tok_instant"), "isPreferred": True})
        bills[account["id"]] = (account, bill, card)
    await deliver_all(rt)  # payments hears of the bills
    await in_tenant(rt, tenant, "UPDATE payments_receivable SET due_date = :d RETURNING bill_id",
                    d=date.today() - timedelta(days=4))
    svc = session_services().collections.service
    async with rt.db.transaction(tenant) as s:
        await svc.evaluate(system_context(tenant, s, "http://testserver", "collections"), date.today())
    async with rt.db.transaction(tenant) as s:
        claimed = await svc.claim(s, tenant, date.today(), "w1")
    assert sorted(c.amount for c in claimed) == [Decimal("120.00")] * 2
    (part, part_bill, _), (whole, whole_bill, _) = bills.values()
    for account, bill, value in ((part, part_bill, "70.00"), (whole, whole_bill, "120.00")):  # received meanwhile
        cash = await method(client, h, pay_cash(account))
        assert (await pay(client, h, account, cash["id"], value, [bill["id"]])).json()["status"] == "succeeded"
    states = {c.billing_account_id: await svc.act(c) for c in claimed}
    assert states == {part["id"]: "done", whole["id"]: "skipped"}
    charged = [(p["account"]["id"], Decimal(str(p["totalAmount"]["value"])))
               for p in (await client.get("/tmf-api/paymentManagement/v4/payment",
                                          headers=h)).json() if (p.get("channel") or {}).get("name") == "collections"]
    assert charged == [(part["id"], Decimal("50.00"))]
