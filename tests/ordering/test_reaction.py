"""Ordering reacts to provisioning: the product order follows its items through provisioning's
``OrderItemProvisioningStateChangeEvent`` (a durable subscription, not a callback). The reaction runs in its own
transaction and tolerates redelivery: every event delivered twice, or late and out of order, leads to the same
order, written once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from openbss.ordering.events import ITEM_PROVISIONING_CONSUMER
from openbss.platform.events.consumers import Event, process
from openbss.platform.events.outbox import OutboxEvent
from openbss.provisioning import events as provisioning_events
from tests.conftest import deliver_all
from tests.ordering.helpers import NET, PO, customer, fiber_item, get, mobile_order, orchestrator, setup_world


async def item_events(rt: Any, tenant: str, order_id: str) -> list[Event]:
    """Provisioning's item events of the order, as the relay would publish them (in outbox order)."""
    async with rt.db.transaction(tenant) as session:
        rows = (await session.execute(select(OutboxEvent).where(
            OutboxEvent.event_type == provisioning_events.ITEM_EVENT).order_by(OutboxEvent.id))).scalars().all()
    out = [Event(r.tenant_id, r.api, r.event_type, r.envelope) for r in rows]
    return [e for e in out if e.envelope["event"][provisioning_events.ITEM_KEY]["productOrder"]["id"] == order_id]


async def order_events(rt: Any, tenant: str, order_id: str) -> list[str]:
    async with rt.db.transaction(tenant) as session:
        rows = (await session.execute(select(OutboxEvent.event_type).where(
            OutboxEvent.resource_id == order_id).order_by(OutboxEvent.id))).scalars().all()
    return list(rows)


async def test_every_event_twice_and_out_of_order_gives_the_same_order(rt: Any, client: Any) -> None:
    w = await setup_world(rt, client, numbers=10, sims=10)
    h, tenant = w["h"], w["tenant"]
    c = await customer(client, h)
    body = mobile_order(c, w["offers"]["Mobile M"])
    body["productOrderItem"].append(fiber_item(w["offers"]["Fiber 1 Gbps"]))
    order = (await client.post(PO, json=body, headers=h)).json()
    await orchestrator(rt).run_until_idle(tenant)  # provisioning is done; ordering has not heard yet
    assert (await get(client, h, f"{PO}/{order['id']}"))["state"] == "acknowledged"
    events = await item_events(rt, tenant, order["id"])
    states = sorted(e.envelope["event"][provisioning_events.ITEM_KEY]["state"] for e in events)
    assert states == ["completed", "completed", "started", "started"]
    consumer = rt.consumers.get(ITEM_PROVISIONING_CONSUMER)

    # late and out of order: the last event first; then every event again (a redelivery after a crash between
    # commit and acknowledgement), the handler really running again (force: past the processed-event record)
    for event in reversed(events):
        assert await process(rt.db, consumer, event)
    done = await get(client, h, f"{PO}/{order['id']}")
    assert done["state"] == "completed" and {i["state"] for i in done["productOrderItem"]} == {"completed"}
    assert all(i["product"]["@referredType"] == "Product" for i in done["productOrderItem"])
    written = await order_events(rt, tenant, order["id"])
    assert written.count("ProductOrderStateChangeEvent") == 2  # inProgress, then completed
    for event in events:
        assert not await process(rt.db, consumer, event)  # the same delivery again: recorded, skipped
        assert await process(rt.db, consumer, event, force=True)  # the handler itself, again
    assert await get(client, h, f"{PO}/{order['id']}") == done  # the same order...
    assert await order_events(rt, tenant, order["id"]) == written  # ...written once, announced once


async def test_a_failed_item_is_noted_once_however_often_its_events_arrive(rt: Any, client: Any) -> None:
    w = await setup_world(rt, client, numbers=10, sims=10)
    h, tenant = w["h"], w["tenant"]
    c = await customer(client, h)
    assert (await client.put(f"{NET}/simulator/hss", json={"errorRate": 1.0}, headers=h)).status_code == 200
    order = (await client.post(PO, json=mobile_order(c, w["offers"]["Mobile M"]), headers=h)).json()
    await orchestrator(rt, simulator_config_cache_seconds=0.0).run_until_idle(tenant)
    events = await item_events(rt, tenant, order["id"])
    assert [e.envelope["event"][provisioning_events.ITEM_KEY]["state"] for e in events] == ["started", "failed"]
    consumer = rt.consumers.get(ITEM_PROVISIONING_CONSUMER)
    for event in events + events:
        await process(rt.db, consumer, event, force=True)
    failed = await get(client, h, f"{PO}/{order['id']}")
    assert failed["state"] == "failed" and failed["productOrderItem"][0]["state"] == "failed"
    notes = [n for n in failed.get("note") or [] if n["author"] == "orchestrator:1"]
    assert len(notes) == 1 and "hss:createSubscriber" in notes[0]["text"]
    # an operator retry: the note goes, the item runs again and completes (the worker's relay delivers)
    await client.put(f"{NET}/simulator/hss", json={}, headers=h)
    r = await client.post(f"{PO}/{order['id']}/retry", headers=h)
    assert r.status_code == 200 and r.json()["state"] == "inProgress"
    assert not [n for n in r.json().get("note") or [] if n["author"] == "orchestrator:1"]
    await orchestrator(rt, simulator_config_cache_seconds=0.0).run_until_idle(tenant)
    await deliver_all(rt)
    assert (await get(client, h, f"{PO}/{order['id']}"))["state"] == "completed"
