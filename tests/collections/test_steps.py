"""The dunning scheduler over overdue bills: episodes open set-based, each step happens once per episode (also
with two schedulers at the same time), excluded accounts are never actioned, promises pause, payments close."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from openbss.collections.models import StepExecution
from openbss.platform.events.outbox import OutboxEvent
from openbss.platform.tmf.hub import HubDelivery
from tests.collections.helpers import (
    API,
    TODAY,
    accounts,
    assert_spec,
    episodes,
    executions,
    messages,
    overdue,
    paid,
    policy,
    reminder,
)
from tests.conftest import bearer, deliver_all, make_tenant, session_services


async def test_two_concurrent_schedulers_take_each_step_once(rt: Any, client: Any) -> None:
    tenant = await make_tenant(rt, "dun")
    h = bearer(tenant, "billing_ops")
    await policy(client, h, [reminder(0), reminder(5), reminder(10), reminder(60)])
    accs = await accounts(client, tenant, 12)
    for a in accs:
        await overdue(rt, tenant, a["id"], "40.00", days=20)
    svc = session_services().collections.service
    reports = await asyncio.gather(*(svc.run_tenant(tenant, worker=f"w{i}", batch=2) for i in range(2)))
    assert sum(r.opened for r in reports) == 12  # one episode per account, whoever opened it
    done = await executions(rt, tenant)
    assert len(done) == 12 * 3 and {e.state for e in done} == {"done"}
    assert {(e.episode_id, e.step) for e in done} == {(ep.id, s) for ep in await episodes(rt, tenant)
                                                      for s in range(3)}  # day 60 not due yet
    assert sum(r.done for r in reports) == 36
    assert await messages(rt, tenant) == 36  # one reminder per step, never two
    # a third round finds nothing more to do
    again = await svc.run_tenant(tenant)
    assert again.claimed == 0 and again.opened == 0
    async with rt.db.transaction(tenant) as s:
        executed = (await s.execute(select(OutboxEvent.envelope).where(
            OutboxEvent.event_type == "DunningStepExecutedEvent"))).scalars().all()
    assert len(executed) == 36
    # the episode shows its steps taken and planned
    ep = (await episodes(rt, tenant))[0]
    r = await client.get(f"{API}/dunningEpisode/{ep.id}", headers=h)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert [s["step"] for s in doc["stepTaken"]] == [0, 1, 2]
    assert [s["daysPastDue"] for s in doc["stepPlanned"]] == [60]
    assert doc["overdueAmount"] == {"unit": "EUR", "value": 40.0}
    assert_spec("DunningEpisode", doc)
    r = await client.get(f"{API}/dunningEpisode", params={"state": "open", "limit": 5, "fields": "state"},
                         headers=h)
    assert r.status_code == 200 and r.headers["X-Total-Count"] == "12" and len(r.json()) == 5
    r = await client.get(f"{API}/report/inCollection", headers=h)
    assert r.json() == [{"nextStep": 3, "stepName": "reminder day 60", "segment": "residential", "currency": "EUR",
                         "accounts": 12, "overdue": 480.0}]
    r = await client.get(f"{API}/report/inCollection", params={"format": "csv"}, headers=h)
    assert r.headers["content-type"].startswith("text/csv") and "reminder day 60" in r.text
    r = await client.get(f"{API}/report/nope", headers=h)
    assert r.status_code == 404 and "inCollection" in r.json()["message"]


async def test_minimum_amount_and_exclusions_hold_steps_back(rt: Any, client: Any) -> None:
    tenant = await make_tenant(rt, "dun")
    h = bearer(tenant, "billing_ops")
    await policy(client, h, [reminder(0, minimumAmount=[{"unit": "EUR", "value": 10}])])
    small, excluded, due = await accounts(client, tenant, 3)
    await overdue(rt, tenant, small["id"], "9.99", days=3)
    await overdue(rt, tenant, excluded["id"], "500", days=3)
    await overdue(rt, tenant, due["id"], "10", days=3)
    r = await client.post(f"{API}/dunningExclusion", json={"billingAccount": {"id": excluded["id"]},
                                                           "reason": "vip"}, headers=h)
    assert r.status_code == 201, r.text
    report = await session_services().collections.service.run_tenant(tenant)
    assert report.opened == 3 and report.done == 1
    [only] = await executions(rt, tenant)
    by_account = {e.id: e.billing_account_id for e in await episodes(rt, tenant)}
    assert by_account[only.episode_id] == due["id"]
    # the exclusion ends: the account is actioned
    r = await client.patch(f"{API}/dunningExclusion/{r.json()['id']}",
                           json={"validUntil": (TODAY - timedelta(days=1)).isoformat()},
                           headers={**h, "Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    await session_services().collections.service.run_tenant(tenant)
    assert {by_account[e.episode_id] for e in await executions(rt, tenant)} == {due["id"], excluded["id"]}


async def test_payment_closes_the_episode_and_a_partial_one_refreshes_it(rt: Any, client: Any) -> None:
    tenant = await make_tenant(rt, "dun")
    h = bearer(tenant, "billing_ops")
    for query in ("eventType=DunningStepExecutedEvent", "eventType=DunningEpisodeClosedEvent"):
        r = await client.post(f"{API}/hub", json={"callback": "http://127.0.0.1:9/cb", "query": query}, headers=h)
        assert r.status_code == 201, r.text
    r = await client.post(f"{API}/hub", json={"callback": "http://127.0.0.1:9/cb", "query": "eventType=Nope"},
                          headers=h)
    assert r.status_code == 400 and "DunningEpisodeClosedEvent" in r.json()["message"]
    await policy(client, h, [reminder(0), reminder(30)])
    [a] = await accounts(client, tenant, 1)
    bill = await overdue(rt, tenant, a["id"], "100", days=2)
    svc = session_services().collections.service
    await svc.run_tenant(tenant)
    await paid(rt, tenant, a["id"], bill, "60")
    await svc.run_tenant(tenant)
    [ep] = await episodes(rt, tenant)
    assert ep.state == "open" and ep.overdue_amount == 40 and ep.peak_amount == 100
    await paid(rt, tenant, a["id"], bill, "40")
    await svc.run_tenant(tenant)
    [ep] = await episodes(rt, tenant)
    assert ep.state == "closed" and ep.close_reason == "paid"
    async with rt.db.transaction(tenant) as s:
        closed = (await s.execute(select(OutboxEvent.envelope).where(
            OutboxEvent.event_type == "DunningEpisodeClosedEvent"))).scalars().all()
    assert [e["event"]["dunningEpisode"]["id"] for e in closed] == [ep.id]
    assert_spec("DunningEpisode", (await client.get(f"{API}/dunningEpisode/{ep.id}", headers=h)).json())
    await deliver_all(rt)  # the hub's subscribers get both events
    async with rt.db.transaction(tenant) as s:
        delivered = (await s.execute(select(HubDelivery.event_type))).scalars().all()
    assert sorted(delivered) == ["DunningEpisodeClosedEvent", "DunningStepExecutedEvent"]
    r = await client.get(f"{API}/report/recoveredByStep", headers=h)
    assert r.json() == [{"lastAction": "reminder", "currency": "EUR", "episodes": 1, "recovered": 100.0}]
    r = await client.get(f"{API}/report/cureRate", headers=h)
    assert r.status_code == 200 and r.json() == [{"opened": 1, "cured": 1, "writtenOff": 0, "stillOpen": 0,
                                                  "cureRate": 1.0}]


async def test_a_step_claimed_before_the_payment_is_skipped(rt: Any, client: Any) -> None:
    """Never bar a customer who paid: a step claimed, then the episode closed, is not taken."""
    tenant = await make_tenant(rt, "dun")
    h = bearer(tenant, "billing_ops")
    await policy(client, h, [reminder(0)])
    [a] = await accounts(client, tenant, 1)
    bill = await overdue(rt, tenant, a["id"], "100", days=2)
    svc = session_services().collections.service
    async with rt.db.transaction(tenant) as s:
        from openbss.platform.tmf.resource import system_context
        await svc.evaluate(system_context(tenant, s, "http://testserver"), TODAY)
    async with rt.db.transaction(tenant) as s:
        [claimed] = await svc.claim(s, tenant, TODAY, "w")
    await paid(rt, tenant, a["id"], bill, "100")
    async with rt.db.transaction(tenant) as s:
        await svc.account_changed(system_context(tenant, s, "http://testserver"), a["id"])
    assert await svc.act(claimed) == "done"
    [ex] = await executions(rt, tenant)
    assert ex.state == "skipped" and await messages(rt, tenant) == 0


async def test_promise_pauses_and_a_broken_one_resumes_at_the_next_step(rt: Any, client: Any) -> None:
    tenant = await make_tenant(rt, "dun")
    h = bearer(tenant, "csr_agent")
    await policy(client, bearer(tenant, "billing_ops"), [reminder(0), reminder(3), reminder(4)])
    [a] = await accounts(client, tenant, 1)
    await overdue(rt, tenant, a["id"], "80", days=3)
    svc = session_services().collections.service
    await svc.run_tenant(tenant, TODAY - timedelta(days=2))  # the first reminder, two days ago
    promised = TODAY + timedelta(days=5)
    r = await client.post(f"{API}/promiseToPay", json={"billingAccount": {"id": a["id"]},
                                                       "amount": {"unit": "EUR", "value": 80},
                                                       "promisedDate": promised.isoformat()}, headers=h)
    assert r.status_code == 201, r.text
    promise = r.json()
    assert promise["state"] == "pending" and promise["dunningEpisode"]["id"]
    assert_spec("PromiseToPay", promise)
    await svc.run_tenant(tenant)  # paused: the day-3 reminder waits
    assert len(await executions(rt, tenant)) == 1
    report = await svc.run_tenant(tenant, promised + timedelta(days=1))  # nothing paid by the date: broken
    assert report.promises_broken == 1
    steps = [e.step for e in await executions(rt, tenant)]
    assert steps == [0, 1, 2]
    r = await client.get(f"{API}/promiseToPay/{promise['id']}", headers=h)
    assert r.json()["state"] == "broken"
    r = await client.get(f"{API}/report/brokenPromises", headers=h)
    assert r.json() == [{"state": "broken", "promises": 1, "amount": 80.0}]


async def test_bad_inputs_are_refused_and_nothing_is_written(rt: Any, client: Any) -> None:
    tenant = await make_tenant(rt, "dun")
    h = bearer(tenant, "billing_ops")
    bad = [
        ({"name": "x", "dunningStep": []}, "at least one step"),
        ({"name": "x", "dunningStep": [{"action": "explode"}]}, "action"),
        ({"name": "x", "dunningStep": [{"action": "reminder", "channel": ["email"]}]}, "template"),
        ({"name": "x", "dunningStep": [reminder(0, template={"en": "pay {nope}"})]}, "placeholder"),
        ({"name": "x", "dunningStep": [reminder(5), reminder(1)]}, "in order"),
        ({"name": "x", "dunningStep": [{"action": "lateFee"}]}, "fee"),
        ({"name": "x", "dunningStep": [{"action": "lateFee", "fee": {"unit": "EUR", "value": 0}}]}, "positive"),
        ({"name": "x", "dunningStep": [reminder(0, quietHours={"start": "25:00", "end": "08:00"})]}, "time"),
        ({"name": "x", "dunningStep": [{"action": "suspend", "minimumAmount": [{"unit": "XXY", "value": 1}]}]},
         "currency"),
        ({"name": "x", "dunningStep": [{"action": "suspend", "daysPastDue": -1}]}, "daysPastDue"),
        ({"name": "x", "isDefault": True, "segment": "sme", "dunningStep": [{"action": "suspend"}]}, "default"),
        ({"name": "x", "dunningStep": [{"action": "suspend"}], "billingAccount": [{"id": "nope"}]},
         "does not exist"),
    ]
    for body, words in bad:
        r = await client.post(f"{API}/dunningPolicy", json=body, headers=h)
        assert r.status_code == 400, (body, r.text)
        assert words in r.json()["message"], (words, r.json()["message"])
    [a] = await accounts(client, tenant, 1)
    for body, words in [
        ({"billingAccount": {"id": a["id"]}, "amount": {"unit": "EUR", "value": 5},
          "promisedDate": (TODAY - timedelta(days=1)).isoformat()}, "in the past"),
        ({"billingAccount": {"id": a["id"]}, "amount": {"unit": "EUR", "value": -5},
          "promisedDate": TODAY.isoformat()}, "positive"),
        ({"billingAccount": {"id": a["id"]}, "amount": {"unit": "USD", "value": 5},
          "promisedDate": TODAY.isoformat()}, "currency"),
        ({"billingAccount": {"id": "nope"}, "amount": {"unit": "EUR", "value": 5},
          "promisedDate": TODAY.isoformat()}, "does not exist"),
    ]:
        r = await client.post(f"{API}/promiseToPay", json=body, headers=h)
        assert r.status_code == 400, (body, r.text)
        assert words in r.json()["message"], (words, r.json()["message"])
    r = await client.post(f"{API}/paymentPlan", json={"billingAccount": {"id": a["id"]}, "instalment": [
        {"dueDate": (TODAY + timedelta(days=10)).isoformat(), "amount": {"unit": "EUR", "value": 5}}]}, headers=h)
    assert r.status_code == 400 and "two instalments" in r.json()["message"]
    r = await client.post(f"{API}/run", json={"asOf": "tomorrow"}, headers=h)
    assert r.status_code == 400 and "asOf" in r.json()["message"]
    for path in ("dunningPolicy", "promiseToPay", "paymentPlan"):
        r = await client.get(f"{API}/{path}", headers=h)
        assert r.json() == [], path
    # a role without collections has no access
    r = await client.get(f"{API}/dunningPolicy", headers=bearer(tenant, "network_ops"))
    assert r.status_code == 403


async def test_an_agent_records_promises_but_neither_edits_policies_nor_runs_the_scheduler(
        rt: Any, client: Any) -> None:
    tenant = await make_tenant(rt, "dun")
    agent, ops = bearer(tenant, "csr_agent"), bearer(tenant, "billing_ops")
    body = {"name": "Agent's", "isDefault": True, "dunningStep": [reminder(0)]}
    r = await client.post(f"{API}/dunningPolicy", json=body, headers=agent)
    assert r.status_code == 403 and "collectionsconfig:write" in r.json()["message"], r.text
    r = await client.post(f"{API}/run", json={}, headers=agent)
    assert r.status_code == 403 and "collectionsconfig:write" in r.json()["message"], r.text
    made = await policy(client, ops, [reminder(0)])
    r = await client.patch(f"{API}/dunningPolicy/{made['id']}", json={"name": "Renamed"},
                           headers={**agent, "Content-Type": "application/merge-patch+json"})
    assert r.status_code == 403, r.text
    assert (await client.get(f"{API}/dunningPolicy/{made['id']}", headers=agent)).json()["name"] == "Standard"
    assert len((await client.get(f"{API}/dunningPolicy", headers=agent)).json()) == 1  # agents still read them
    [a] = await accounts(client, tenant, 1)
    await overdue(rt, tenant, a["id"], "40", days=1)
    assert (await client.post(f"{API}/run", json={}, headers=ops)).status_code == 201
    r = await client.post(f"{API}/promiseToPay", headers=agent, json={
        "billingAccount": {"id": a["id"]}, "amount": {"unit": "EUR", "value": 40},
        "promisedDate": (TODAY + timedelta(days=3)).isoformat()})
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "pending"
    for role in ("care_supervisor", "billing_ops"):
        assert (await client.post(f"{API}/run", json={}, headers=bearer(tenant, role))).status_code == 201, role


async def test_a_payment_plan_pauses_until_an_instalment_is_missed(rt: Any, client: Any) -> None:
    tenant = await make_tenant(rt, "dun")
    h = bearer(tenant, "csr_agent")
    await policy(client, bearer(tenant, "billing_ops"), [reminder(0), reminder(3)])
    [a] = await accounts(client, tenant, 1)
    await overdue(rt, tenant, a["id"], "300", days=1)
    svc = session_services().collections.service
    await svc.run_tenant(tenant)
    first, second = TODAY + timedelta(days=5), TODAY + timedelta(days=35)
    r = await client.post(f"{API}/paymentPlan", headers=h, json={"billingAccount": {"id": a["id"]}, "instalment": [
        {"dueDate": first.isoformat(), "amount": {"unit": "EUR", "value": 150}},
        {"dueDate": second.isoformat(), "amount": {"unit": "EUR", "value": 150}}]})
    assert r.status_code == 201, r.text
    plan = r.json()
    assert_spec("PaymentPlan", plan)
    assert plan["state"] == "active" and plan["totalAmount"] == {"unit": "EUR", "value": 300.0}
    conflict = await client.post(f"{API}/paymentPlan", headers=h, json={"billingAccount": {"id": a["id"]},
                                                                       "instalment": plan["instalment"]})
    assert conflict.status_code == 409
    await paid(rt, tenant, a["id"], None, "150")  # the first instalment, on time (credit: not yet allocated)
    await svc.run_tenant(tenant, first + timedelta(days=1))
    assert [e.step for e in await executions(rt, tenant)] == [0]  # paused while the plan is kept
    kept = (await client.get(f"{API}/paymentPlan/{plan['id']}", headers=h)).json()
    assert kept["state"] == "active" and [i["state"] for i in kept["instalment"]] == ["paid", "due"]
    await svc.run_tenant(tenant, second + timedelta(days=1))  # the second instalment never came
    doc = (await client.get(f"{API}/paymentPlan/{plan['id']}", headers=h)).json()
    assert doc["state"] == "broken"
    assert [i["state"] for i in doc["instalment"]] == ["paid", "missed"]
    assert [e.step for e in await executions(rt, tenant)] == [0, 1]  # the episode went on


async def test_a_step_that_breaks_is_left_claimed_and_taken_again_once(rt: Any, client: Any) -> None:
    """An unexpected error (a domain down) leaves the step claimed without stopping the others; after its lease
    another round takes it, once."""
    tenant = await make_tenant(rt, "dun")
    h = bearer(tenant, "billing_ops")
    await policy(client, h, [reminder(0)])
    broken, fine = await accounts(client, tenant, 2)
    for a in (broken, fine):
        await overdue(rt, tenant, a["id"], "20", days=1)
    svc = session_services().collections.service
    real = svc.accounts

    class Flaky:
        async def get_billing_account(self, ctx: Any, account_id: str) -> dict[str, Any]:
            if account_id == broken["id"]:
                raise RuntimeError("account service unavailable")
            return await real.get_billing_account(ctx, account_id)

    svc.accounts = Flaky()
    try:
        report = await svc.run_tenant(tenant)
    finally:
        svc.accounts = real
    assert report.done == 1 and report.deferred == 1
    assert sorted(e.state for e in await executions(rt, tenant)) == ["claimed", "done"]
    assert (await svc.run_tenant(tenant)).claimed == 0  # within its lease: nobody takes it
    async with rt.db.transaction(tenant) as s:  # the lease runs out
        await s.execute(update(StepExecution).where(StepExecution.state == "claimed").values(
            lease_until=datetime.now(UTC) - timedelta(seconds=1)))
    report = await svc.run_tenant(tenant)
    assert report.claimed == 1 and report.done == 1
    rows = await executions(rt, tenant)
    assert [r.state for r in rows] == ["done", "done"] and sorted(r.attempts for r in rows) == [1, 2]
    assert await messages(rt, tenant) == 2
