"""Reminders of one claim taken together, a few hundred per transaction: each still exactly once (its message, its
execution and its event written together), a reminder that cannot be sent fails alone, a reminder of an episode
closed meanwhile is skipped, and taking the batch again changes nothing."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import func, select

from openbss.platform.events.outbox import OutboxEvent
from openbss.platform.tmf.resource import system_context
from tests.collections.helpers import TODAY, accounts, executions, messages, overdue, paid, policy, reminder
from tests.conftest import bearer, make_tenant, session_services
from tests.customer.helpers import make_billing_account, make_customer, make_individual


async def _events(rt: Any, tenant: str) -> int:
    async with rt.db.transaction(tenant) as s:
        return int(await s.scalar(select(func.count()).select_from(OutboxEvent).where(
            OutboxEvent.event_type == "DunningStepExecutedEvent")) or 0)


async def test_a_batch_of_reminders_takes_each_once_and_fails_alone(rt: Any, client: Any) -> None:
    tenant = await make_tenant(rt, "dunbatch")
    h = bearer(tenant, "billing_ops")
    await policy(client, h, [reminder(0)])
    reachable = await accounts(client, tenant, 5)
    admin = bearer(tenant, "admin")
    customer = await make_customer(client, admin, await make_individual(client, admin))
    paper = {"presentationMedia": [{"name": "paper", "isRef": False}]}
    silent = await make_billing_account(client, admin, customer, contact=[], billStructure=paper)  # no address
    bills = {a["id"]: await overdue(rt, tenant, a["id"], "30", days=3) for a in [*reachable, silent]}
    svc = session_services().collections.service
    async with rt.db.transaction(tenant) as s:
        await svc.evaluate(system_context(tenant, s, "http://testserver"), TODAY)
    async with rt.db.transaction(tenant) as s:
        claimed = await svc.claim(s, tenant, TODAY, "batch", 100)
    assert len(claimed) == 6
    # one customer pays between the claim and the action: the episode closes, its reminder is skipped
    payer = reachable[0]["id"]
    await paid(rt, tenant, payer, bills[payer], "30")
    async with rt.db.transaction(tenant) as s:
        await svc.account_changed(system_context(tenant, s, "http://testserver"), payer)

    states = await svc.act_reminders(claimed)
    by_account = {c.billing_account_id: st for c, st in zip(claimed, states, strict=True)}
    assert by_account[payer] == "skipped" and by_account[silent["id"]] == "failed"
    assert Counter(states) == {"done": 4, "failed": 1, "skipped": 1}
    rows = {r.id: r for r in await executions(rt, tenant)}
    failed = next(r for r in rows.values() if r.state == "failed")
    assert "no contact" in (failed.reason or "")
    assert await messages(rt, tenant) == 4  # the failed one sent nothing (rolled back to its savepoint)
    assert await _events(rt, tenant) == 6
    # the same batch again (a second scheduler, a redelivery): nothing more
    assert set(await svc.act_reminders(claimed)) == {"done"}
    assert await messages(rt, tenant) == 4 and await _events(rt, tenant) == 6
    assert {r.state for r in await executions(rt, tenant)} == {"done", "failed", "skipped"}


async def test_run_takes_reminders_in_batches(rt: Any, client: Any) -> None:
    tenant = await make_tenant(rt, "dunbatch")
    await policy(client, bearer(tenant, "billing_ops"), [reminder(0), reminder(1)])
    for a in await accounts(client, tenant, 9):
        await overdue(rt, tenant, a["id"], "12", days=5)
    report = await session_services().collections.service.run_tenant(tenant)
    assert report.done == 18 and report.by_action == {"reminder": 18}
    assert await messages(rt, tenant) == 18 and await _events(rt, tenant) == 18
