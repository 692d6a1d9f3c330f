"""The write-off step end to end, through payments' real ``write_off``: a bill issued by billing and known to
payments goes overdue, the scheduler's writeOff step settles it (shown as written off, nothing left open), the
ledger posts bad debt / receivable once, and later runs add nothing."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from tests.billing.helpers import in_tenant
from tests.collections.helpers import API, episodes, executions, policy, reminder
from tests.conftest import bearer, deliver_all, session_services
from tests.payments.helpers import issued_bill
from tests.payments.test_allocation import open_balance
from tests.payments.test_payments import bill_state


async def _bad_debt(rt: Any, tenant: str) -> list[tuple[str, Decimal]]:
    rows = await in_tenant(rt, tenant, "SELECT l.account_code, l.debit - l.credit FROM ledger_entry e "
                                       "JOIN ledger_line l ON l.entry_id = e.id WHERE e.source_type = 'WriteOff' "
                                       "ORDER BY 1")
    return [(str(c), Decimal(v)) for c, v in rows]


async def test_the_write_off_step_settles_the_bill_and_posts_bad_debt_once(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    ops = bearer(tenant, "billing_ops")
    await policy(client, ops, [reminder(0), {"name": "Write off", "action": "writeOff", "daysPastDue": 30}])
    account, bill = await issued_bill(client, rt, tenant, admin_headers, as_of=date(2027, 2, 1))  # 120.00
    await deliver_all(rt)  # payments heard of the bill: a receivable
    due = date.fromisoformat(bill["paymentDueDate"][:10])
    assert await open_balance(rt, tenant, account["id"]) == Decimal("120.00")
    svc = session_services().collections.service

    report = await svc.run_tenant(tenant, due + timedelta(days=5))  # the reminder only
    assert report.done == 1, report.as_dict()
    assert await _bad_debt(rt, tenant) == []
    assert await bill_state(rt, tenant, bill["id"]) != "settled"

    report = await svc.run_tenant(tenant, due + timedelta(days=31))
    assert report.done == 1, report.as_dict()
    reminded, written = await executions(rt, tenant)
    assert (reminded.state, written.state) == ("done", "done")
    [ep] = await episodes(rt, tenant)
    assert ep.state == "closed" and ep.close_reason == "writtenOff"
    assert await bill_state(rt, tenant, bill["id"]) == "settled"
    position = (await client.get(f"/payments/v1/bill/{bill['id']}", headers=admin_headers)).json()
    assert position["state"] == "writtenOff" and position["writtenOff"] == {"unit": "EUR", "value": 120}, position
    assert await open_balance(rt, tenant, account["id"]) == Decimal("0")
    assert await _bad_debt(rt, tenant) == [("1200", Decimal("-120.00")), ("6200", Decimal("120.00"))]
    got = await client.get(f"/payments/v1/writeOff/collections:{written.id}", headers=admin_headers)
    assert got.status_code == 200, got.text
    assert got.json()["amount"] == {"unit": "EUR", "value": 120}
    episode = (await client.get(f"{API}/dunningEpisode/{ep.id}", headers=ops)).json()
    assert episode["state"] == "closed"

    await deliver_all(rt)  # the settlement's events: nothing reopens
    for later in (31, 60):
        report = await svc.run_tenant(tenant, due + timedelta(days=later))
        assert report.done == 0, report.as_dict()
    assert len(await executions(rt, tenant)) == 2 and len(await episodes(rt, tenant)) == 1
    assert await _bad_debt(rt, tenant) == [("1200", Decimal("-120.00")), ("6200", Decimal("120.00"))]
    assert await open_balance(rt, tenant, account["id"]) == Decimal("0")


async def test_a_write_off_keeps_no_promise_and_pays_no_instalment(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    """What is written off was not paid: a promise to pay 40.00 is not kept, and a plan's instalment of 40.00 not
    paid, by a write-off of 40.00 (they stay pending and active); a payment of 40.00 keeps and pays them."""
    from tests.collections.helpers import TODAY, paid

    await policy(client, bearer(tenant, "billing_ops"), [reminder(0)])
    promised, _ = await issued_bill(client, rt, tenant, admin_headers)  # 120.00 each
    planned, _ = await issued_bill(client, rt, tenant, admin_headers)
    await deliver_all(rt)  # payments heard of the bills
    svc = session_services().collections.service
    r = await client.post(f"{API}/promiseToPay", headers=admin_headers, json={
        "billingAccount": {"id": promised["id"]}, "amount": {"unit": "EUR", "value": 40},
        "promisedDate": (TODAY + timedelta(days=10)).isoformat()})
    assert r.status_code == 201, r.text
    promise = r.json()
    r = await client.post(f"{API}/paymentPlan", headers=admin_headers, json={
        "billingAccount": {"id": planned["id"]}, "instalment": [
            {"amount": {"unit": "EUR", "value": 40}, "dueDate": (TODAY + timedelta(days=10)).isoformat()},
            {"amount": {"unit": "EUR", "value": 80}, "dueDate": (TODAY + timedelta(days=40)).isoformat()}]})
    assert r.status_code == 201, r.text
    plan = r.json()
    for i, a in enumerate((promised, planned)):
        w = await client.post("/payments/v1/writeOff", headers=admin_headers, json={
            "billingAccount": {"id": a["id"]}, "amount": {"unit": "EUR", "value": "40.00"},
            "reason": "Goodwill", "reference": f"goodwill-{i}"})
        assert w.status_code == 201, w.text
    await svc.run_tenant(tenant)
    assert (await client.get(f"{API}/promiseToPay/{promise['id']}", headers=admin_headers)).json()["state"] \
        == "pending"
    got = (await client.get(f"{API}/paymentPlan/{plan['id']}", headers=admin_headers)).json()
    assert got["state"] == "active" and [i["state"] for i in got["instalment"]] == ["due", "due"], got
    for a in (promised, planned):
        await paid(rt, tenant, a["id"], None, "40.00")
    await svc.run_tenant(tenant)
    assert (await client.get(f"{API}/promiseToPay/{promise['id']}", headers=admin_headers)).json()["state"] \
        == "kept"
    got = (await client.get(f"{API}/paymentPlan/{plan['id']}", headers=admin_headers)).json()
    assert [i["state"] for i in got["instalment"]] == ["paid", "due"], got


async def test_the_write_off_step_writes_off_what_is_still_overdue_not_a_bill_not_yet_due(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    """A payment received between the claim of the write-off step and its execution: what is still overdue is
    written off, not the claim's amount (whose rest would settle the account's next bill, not due yet)."""
    from openbss.platform.tmf.resource import system_context
    from tests.payments.helpers import cash, method, pay

    await policy(client, bearer(tenant, "billing_ops"), [{"name": "Write off", "action": "writeOff",
                                                          "daysPastDue": 1}])
    account, old = await issued_bill(client, rt, tenant, admin_headers, as_of=date(2027, 2, 1))  # 120.00
    due = date.fromisoformat(old["paymentDueDate"][:10])
    _, new = await issued_bill(client, rt, tenant, admin_headers, account=account, as_of=date(2027, 3, 1))
    await deliver_all(rt)
    assert date.fromisoformat(new["paymentDueDate"][:10]) > due + timedelta(days=2)
    svc = session_services().collections.service
    as_of = due + timedelta(days=2)
    async with rt.db.transaction(tenant) as s:
        await svc.evaluate(system_context(tenant, s, "http://testserver", "collections"), as_of)
    async with rt.db.transaction(tenant) as s:
        [claimed] = await svc.claim(s, tenant, as_of, "w1")
    assert claimed.amount == Decimal("120.00")
    m = await method(client, admin_headers, cash(account))
    assert (await pay(client, admin_headers, account, m["id"], "70.00", [old["id"]])).status_code == 201
    assert await svc.act(claimed) == "done"
    assert await _bad_debt(rt, tenant) == [("1200", Decimal("-50.00")), ("6200", Decimal("50.00"))]
    assert await bill_state(rt, tenant, old["id"]) == "settled"
    assert await bill_state(rt, tenant, new["id"]) != "partiallyPaid"
