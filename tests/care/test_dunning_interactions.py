"""Collections' reminders recorded as TMF683 interactions of the customer: one per reminder step done, none for the
other steps, and nothing more on a redelivery or a replay of the ``DunningStepExecutedEvent``."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from openbss.care.events import DOMAIN
from openbss.care.reactions import DUNNING_RULES, reminder_contact
from openbss.platform.events.consumers import Event, process
from openbss.platform.events.outbox import OutboxEvent
from tests.care.helpers import PI, TMF683, ok
from tests.collections.helpers import accounts, episodes, executions, overdue, policy, reminder
from tests.conftest import bearer, session_services
from tests.customer.helpers import assert_valid


async def test_each_reminder_taken_is_one_interaction(
        client: httpx.AsyncClient, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    await policy(client, bearer(tenant, "billing_ops"), [
        reminder(0, name="Friendly"), {"action": "agencyHandover", "daysPastDue": 1}, reminder(3, name="Second")])
    [a] = await accounts(client, tenant, 1)
    customer_id = next(p["id"] for p in a["relatedParty"] if p.get("@referredType") == "Customer")
    await overdue(rt, tenant, a["id"], "42.50", days=5)
    report = await session_services().collections.service.run_tenant(tenant)
    assert report.done == 3, report.as_dict()
    async with rt.db.transaction(tenant) as session:
        rows = (await session.execute(select(OutboxEvent).where(OutboxEvent.event_type == "DunningStepExecutedEvent")
                                      .order_by(OutboxEvent.id))).scalars().all()
    events = [Event(tenant, r.api, r.event_type, r.envelope) for r in rows]
    assert len(events) == 3
    [rule] = DUNNING_RULES
    consumer = rt.consumers.get(f"{DOMAIN}.{rule.name}")
    for event in events:
        assert consumer.wants(event)
        await process(rt.db, consumer, event)
        assert not await process(rt.db, consumer, event)  # redelivered: skipped
        await process(rt.db, consumer, event, force=True)  # replayed: nothing more recorded

    found = await ok(await client.get(f"{PI}?relatedParty.id={customer_id}", headers=admin_headers))
    assert len(found) == 2, found  # the two reminders; the hand-over is no contact
    [ep] = await episodes(rt, tenant)
    names = {ex.step: ex for ex in await executions(rt, tenant)}
    assert sorted(i["description"] for i in found) == [
        "Dunning reminder 'Friendly' sent: 42.5 EUR overdue", "Dunning reminder 'Second' sent: 42.5 EUR overdue"]
    for i in found:
        assert_valid(TMF683, "PartyInteraction", i)
        assert i["reason"] == "Payment reminder" and i["direction"] == "outbound"
        item = i["interactionItem"][0]["item"]
        assert (item["id"], item["@referredType"]) == (ep.id, "DunningEpisode")
    assert names[1].action == "agencyHandover"


def test_only_a_reminder_done_is_a_contact() -> None:
    base = {"id": "x", "dunningEpisode": {"id": "e"}, "billingAccount": {"id": "a"}, "step": 0,
            "overdueAmount": {"unit": "EUR", "value": 5}}
    assert reminder_contact({**base, "action": "reminder", "state": "done"}) is not None
    for action, state in (("reminder", "failed"), ("reminder", "skipped"), ("suspend", "done"),
                          ("writeOff", "done")):
        assert reminder_contact({**base, "action": action, "state": state}) is None, (action, state)
