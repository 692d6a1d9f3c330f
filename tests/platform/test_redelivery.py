"""Every reaction tolerates redelivery: after a realistic flow (a customer orders a mobile and a fiber line, the
order is decomposed, provisioned and completed, then the mobile line is suspended; the account is billed, reminded
by collections, pays and is refunded), every event of the flow is
delivered a second time to every consumer the worker registers (``openbss.cli.register_domain_consumers``) that
wants it, and nothing changes: same rows in every tenant table, no new outbox event, no second hub delivery.

Twice over: as the broker redelivers (the processed-event record recognises the event), and with the handler run
again regardless (``replay --force``, or a redelivery once the processed-event records are purged), which only a
handler that compares with the current state survives. An event delivered again after newer ones (its order
completed since) must not take anything back.

The test covers the consumers that exist when it runs: a domain that adds a reaction is covered without a change
here, as long as the flow emits an event it consumes (the test fails otherwise, naming the consumer).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, text

from openbss.platform.db import Base
from openbss.platform.events.bus import InProcessBus
from openbss.platform.events.consumers import ConsumerRegistry, Event, ProcessedEvent, process
from openbss.platform.events.delivery import Outcome, deliver
from openbss.platform.events.failures import EventFailure, RetryPolicy
from openbss.platform.events.outbox import OutboxEvent
from openbss.platform.events.relay import OutboxRelay
from openbss.platform.tmf.hub import HubDelivery
from openbss.selfcare.events import announce_profile_update
from tests.ordering.helpers import PO, customer, fiber_item, get, mobile_order, run, setup_world

#: the APIs whose hubs get a subscriber, so that the hub fan-out has deliveries to (not) repeat
HUB_APIS = ("/tmf-api/party/v4", "/tmf-api/customerManagement/v4", "/tmf-api/accountManagement/v4",
            "/tmf-api/productOrderingManagement/v4", "/tmf-api/serviceOrdering/v4", "/tmf-api/productInventory/v4",
            "/tmf-api/serviceInventory/v4", "/tmf-api/resourceInventoryManagement/v4")


def worker_consumers(rt: Any) -> ConsumerRegistry:
    """The consumers ``openbss worker`` runs, registered on a runtime of their own."""
    from openbss.cli import register_domain_consumers
    from openbss.platform.runtime import Runtime

    fresh = Runtime.build(rt.settings, db=rt.db)
    register_domain_consumers(fresh)
    registry: ConsumerRegistry = fresh.consumers
    return registry


async def snapshot(rt: Any, tenant: str) -> dict[str, tuple[int, str]]:
    """Row count and a digest of the content of every tenant table, as the tenant sees it."""
    import openbss.models  # noqa: F401  (every domain's tables)

    out: dict[str, tuple[int, str]] = {}
    async with rt.db.transaction(tenant) as session:
        for table in Base.metadata.sorted_tables:
            if "tenant_id" not in table.c:
                continue
            sql = f"""SELECT count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), ''))
                      FROM "{table.name}" x"""  # noqa: S608 (table names from the models' metadata)
            count, digest = (await session.execute(text(sql))).one()
            out[table.name] = (int(count), str(digest))
    return out


async def settle(rt: Any, client: Any, h: dict[str, str], tenant: str, order_id: str, relay: Any) -> str:
    """Run the orchestrator and the relay (and through it every reaction) until the order is done and quiet."""
    state = "?"
    for _ in range(40):
        await run(rt, tenant)
        published = await relay()
        state = (await get(client, h, f"{PO}/{order_id}"))["state"]
        if state in ("completed", "failed", "partial") and published == 0:
            return state
    raise AssertionError(f"order {order_id} still {state}")


async def test_every_event_delivered_twice_to_every_reaction_changes_nothing(
        rt: Any, client: Any, relay: Any) -> None:
    registry = worker_consumers(rt)
    consumers = registry.all()
    assert any(c.name == "hub-fanout" for c in consumers)
    await relay()  # what other tests left, through the session's consumers
    # from here on, the outbox is relayed to exactly the worker's consumers
    worker_relay = OutboxRelay(rt.db, InProcessBus(rt.db, registry, RetryPolicy())).drain

    # --- the flow, with every reaction running as in the worker (embedded mode: the relay dispatches) ---
    w = await setup_world(rt, client)
    tenant, h, offers = w["tenant"], w["h"], w["offers"]
    for base in HUB_APIS:
        r = await client.post(f"{base}/hub", json={"callback": "http://127.0.0.1:9/listener"}, headers=h)
        assert r.status_code == 201, (base, r.text)
    c = await customer(client, h)
    body = mobile_order(c, offers["Mobile M"])
    body["productOrderItem"].append(fiber_item(offers["Fiber 1 Gbps"]))
    r = await client.post(PO, json=body, headers=h)
    assert r.status_code == 201, r.text
    assert await settle(rt, client, h, tenant, r.json()["id"], worker_relay) == "completed"
    products = await get(client, h, "/tmf-api/productInventory/v4/product", **{"relatedParty.id": c["customer"]["id"]})
    mobile = next(p for p in products if p["name"] == "Mobile M")
    r = await client.post(PO, json={"relatedParty": body["relatedParty"], "productOrderItem": [
        {"id": "1", "action": "modify", "product": {"id": mobile["id"], "status": "suspended"}}]}, headers=h)
    assert r.status_code == 201, r.text
    assert await settle(rt, client, h, tenant, r.json()["id"], worker_relay) == "completed"
    # the customer changes their phone number in the self-care portal (announced in the change's transaction)
    async with rt.db.transaction(tenant) as session:
        await announce_profile_update(session, c["customer"]["id"], c["party"]["id"], ["phone"])
    while await worker_relay():
        pass
    # billing heard of the suspension: no recurring fee while suspended
    async with rt.db.transaction(tenant) as session:
        kinds = (await session.execute(text("SELECT kind FROM billing_product_change WHERE product_id = :p"),
                                       {"p": mobile["id"]})).scalars().all()
    assert kinds == ["suspend"], kinds
    # the account is billed (a bill finalized: payments hears of it) and pays part of it in cash
    from datetime import timedelta

    from openbss.platform.db import utcnow
    from openbss.platform.tmf.resource import system_context
    from tests.conftest import session_services

    async with rt.db.transaction(tenant) as session:
        report = await session_services().billing.service.run(
            system_context(tenant, session, "http://testserver"), (utcnow() + timedelta(days=35)).date(),
            finalize=True, account_ids=[c["account"]["id"]])
    assert report.finalized == 1, report.as_dict()
    while await worker_relay():  # payments hears of the bill
        pass
    # the bill goes unpaid past its due date: collections' scheduler sends a reminder (care records it)
    r = await client.post("/api/collections/v1/dunningPolicy", headers=h, json={
        "name": "Standard", "isDefault": True, "dunningStep": [
            {"name": "Reminder", "action": "reminder", "daysPastDue": 1, "channel": ["email"],
             "template": {"en": "Please pay {amount} {currency}"}}]})
    assert r.status_code == 201, r.text
    dunning = await session_services().collections.service.run_tenant(tenant, (utcnow() + timedelta(days=90)).date())
    assert dunning.done == 1, dunning.as_dict()
    while await worker_relay():
        pass
    assert "care.dunning-reminder-interaction" in {c.name for c in consumers}, sorted(c.name for c in consumers)
    cash = await client.post("/tmf-api/paymentMethod/v4/paymentMethod", headers=h, json={
        "@type": "cash", "name": "shop", "account": [{"id": c["account"]["id"]}]})
    assert cash.status_code == 201, cash.text
    paid = await client.post("/tmf-api/paymentManagement/v4/payment", headers=h, json={
        "account": {"id": c["account"]["id"]}, "paymentMethod": {"id": cash.json()["id"]},
        "totalAmount": {"unit": "EUR", "value": 5}})
    assert paid.status_code == 201, paid.text
    # then pays far too much, and 1.00 of the credit is given back (a refund: care records it)
    over = await client.post("/tmf-api/paymentManagement/v4/payment", headers=h, json={
        "account": {"id": c["account"]["id"]}, "paymentMethod": {"id": cash.json()["id"]},
        "totalAmount": {"unit": "EUR", "value": 1000}})
    assert over.status_code == 201, over.text
    refund = await client.post("/tmf-api/paymentManagement/v4/refund", headers=h, json={
        "account": {"id": c["account"]["id"]}, "paymentMethod": {"id": cash.json()["id"]},
        "payment": {"id": over.json()["id"]}, "totalAmount": {"unit": "EUR", "value": 1}})
    assert refund.status_code == 201, refund.text
    # the team rehearses on a test clock (a sandbox tenant): charging follows the clock billing announces
    async with rt.db.transaction(None) as session:
        await session.execute(text("UPDATE tenant SET sandbox = true WHERE id = :t"), {"t": tenant})
    start = utcnow() + timedelta(days=40)
    for path, moment in (("", start), ("/advance", start + timedelta(days=1))):
        r = await client.post(f"/billing/v1/testClock{path}", headers=h,
                              json={"frozenTime": moment.isoformat().replace("+00:00", "Z")})
        assert r.status_code in (200, 201), r.text
    while await worker_relay():  # what the reactions emit is relayed too
        pass

    async with rt.db.transaction(tenant) as session:
        rows = (await session.execute(select(OutboxEvent).order_by(OutboxEvent.id))).scalars().all()
        failures = (await session.execute(select(EventFailure))).scalars().all()
        deliveries = int(await session.scalar(select(func.count()).select_from(HubDelivery)) or 0)
        processed = dict((await session.execute(
            select(ProcessedEvent.consumer, func.count()).group_by(ProcessedEvent.consumer))).tuples().all())
    events = [Event(row.tenant_id, row.api, row.event_type, row.envelope) for row in rows]
    assert all(row.published_at is not None for row in rows)
    assert failures == [], [(f.consumer, f.event_type, f.last_error) for f in failures]
    assert deliveries > 0
    types = {e.event_type for e in events}
    assert {"ProductOrderStateChangeEvent", "ServiceOrderStateChangeEvent"} <= types, sorted(types)
    for consumer in consumers:  # each reaction saw the flow; otherwise extend the flow to emit what it consumes
        wanted = [e for e in events if consumer.wants(e)]
        assert wanted, f"the flow emits no event that {consumer.name} consumes ({sorted(consumer.event_types or [])})"
        assert processed.get(consumer.name) == len(wanted), (consumer.name, processed.get(consumer.name), len(wanted))

    before = await snapshot(rt, tenant)

    # --- 1. the broker delivers every event again: recognised as processed, skipped ---
    policy = RetryPolicy()
    for event in events:
        for consumer in consumers:
            if consumer.wants(event):
                result = await deliver(rt.db, consumer, event, policy, attempt=2, broker_retries=False)
                assert result.outcome is Outcome.SKIPPED, (consumer.name, event.event_type, result)
    assert await snapshot(rt, tenant) == before

    # --- 2. every handler runs again on every event it wants, oldest first, after the newer ones ---
    runs = 0
    for event in events:
        for consumer in consumers:
            if consumer.wants(event):
                assert await process(rt.db, consumer, event, force=True), (consumer.name, event.event_type)
                runs += 1
    assert runs >= len(events)
    after = await snapshot(rt, tenant)
    changed = {name: (before[name], after[name]) for name in before if before[name] != after[name]}
    assert changed == {}, f"tables changed by a second delivery: {sorted(changed)}"
    async with rt.db.transaction(tenant) as session:
        assert int(await session.scalar(select(func.count()).select_from(OutboxEvent)) or 0) == len(events)
        assert int(await session.scalar(select(func.count()).select_from(HubDelivery)) or 0) == deliveries
        assert (await session.execute(select(EventFailure))).scalars().all() == []
