"""The transactional outbox, the in-process relay and idempotent consumers (embedded mode)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from openbss.platform.auth import Principal, permissions_for
from openbss.platform.events.consumers import Consumer, Event, ProcessedEvent, process
from openbss.platform.events.outbox import OutboxEvent, emit
from openbss.platform.events.relay import OutboxRelay
from openbss.platform.tmf.resource import Context
from tests.conftest import bearer

INDIVIDUALS = "/tmf-api/party/v4/individual"


class Boom(Exception):
    pass


async def outbox_rows(rt: Any, tenant: str, resource_id: str | None = None) -> list[OutboxEvent]:
    async with rt.db.transaction(tenant) as session:
        stmt = select(OutboxEvent).order_by(OutboxEvent.id)
        if resource_id is not None:
            stmt = stmt.where(OutboxEvent.resource_id == resource_id)
        return list((await session.execute(stmt)).scalars().all())


async def processed(rt: Any, tenant: str, consumer: str, event_id: str) -> int:
    async with rt.db.transaction(tenant) as session:
        return int(await session.scalar(select(func.count()).select_from(ProcessedEvent).where(
            ProcessedEvent.consumer == consumer, ProcessedEvent.event_id == uuid.UUID(event_id))) or 0)


@contextmanager
def recording_consumer(rt: Any, tenant: str, *, fail: bool = False) -> Iterator[tuple[Consumer, list[str]]]:
    """A consumer registered on the session runtime for the duration of a test; records the events of ``tenant``
    it handled (a side effect outside the database, so a re-run would show)."""
    seen: list[str] = []

    async def handler(session: Any, event: Event) -> None:
        if event.tenant_id != tenant:
            return
        if fail:
            raise Boom("handler failed")
        seen.append(event.event_id)

    consumer = Consumer(name=f"test-{uuid.uuid4().hex[:8]}", handler=handler,
                        event_types=frozenset({"IndividualCreateEvent"}))
    rt.consumers.register(consumer)
    try:
        yield consumer, seen
    finally:
        rt.consumers.unregister(consumer.name)


def admin_context(tenant: str, session: Any) -> Context:
    principal = Principal(subject="test", tenant_id=tenant, roles=("admin",), permissions=permissions_for(("admin",)))
    return Context(principal=principal, session=session, base_url="http://testserver")


# --- the outbox is written in the change's transaction -------------------------------------------------------
async def test_rolled_back_transaction_leaves_neither_change_nor_event(rt: Any, services: Any, tenant: str) -> None:
    party_service = services.party.service
    created: dict[str, Any] = {}
    with pytest.raises(Boom):
        async with rt.db.transaction(tenant) as session:
            created = await party_service.create_individual(admin_context(tenant, session),
                                                            {"givenName": "Rolled", "familyName": "Back"})
            # the event is there inside the transaction...
            assert len((await session.execute(select(OutboxEvent).where(
                OutboxEvent.resource_id == created["id"]))).scalars().all()) == 1
            raise Boom("the request failed after the change")
    # ...and gone with it
    assert created["id"]
    assert await outbox_rows(rt, tenant) == []


async def test_event_is_invisible_before_commit(rt: Any, tenant: str) -> None:
    async with rt.db.transaction(tenant) as session:
        row = await emit(session, api="party", event_type="IndividualCreateEvent", resource_key="individual",
                         resource={"id": "x1", "@type": "Individual"})
        assert await outbox_rows(rt, tenant) == []  # another connection sees nothing yet
    rows = await outbox_rows(rt, tenant)
    assert [r.event_id for r in rows] == [row.event_id]
    assert rows[0].published_at is None


async def test_failed_request_leaves_no_event(client: Any, rt: Any, tenant: str) -> None:
    h = bearer(tenant, "admin")
    r = await client.post(INDIVIDUALS, json={"givenName": "A", "familyName": "B", "status": "nonsense"}, headers=h)
    assert r.status_code == 400, r.text
    r = await client.post(INDIVIDUALS, json={"givenName": "A", "familyName": "B"}, headers=h)
    assert r.status_code == 201
    ind = r.json()
    r = await client.patch(f"{INDIVIDUALS}/{ind['id']}", json={"status": "nonsense"}, headers=h)
    assert r.status_code in (400, 409, 422), r.text
    assert [e.event_type for e in await outbox_rows(rt, tenant)] == ["IndividualCreateEvent"]


async def test_committed_create_leaves_exactly_one_create_event(client: Any, rt: Any, tenant: str) -> None:
    r = await client.post(INDIVIDUALS, json={"givenName": "Ada", "familyName": "Lovelace"},
                          headers=bearer(tenant, "admin"))
    assert r.status_code == 201, r.text
    ind = r.json()
    rows = await outbox_rows(rt, tenant)
    assert len(rows) == 1
    row = rows[0]
    assert (row.api, row.event_type, row.resource_type, row.resource_id, row.tenant_id) == (
        "party", "IndividualCreateEvent", "Individual", ind["id"], tenant)
    env = row.envelope
    assert set(env) == {"eventId", "eventTime", "eventType", "event"}
    assert env["eventId"] == str(row.event_id)
    uuid.UUID(env["eventId"])
    assert env["eventType"] == "IndividualCreateEvent"
    assert datetime.fromisoformat(env["eventTime"].replace("Z", "+00:00")).tzinfo is not None
    # the resource as the API rendered it, without its personal values (a consumer reads them by the href)
    assert env["event"]["individual"] == {k: v for k, v in ind.items()
                                          if k not in ("givenName", "familyName", "fullName")}


# --- the relay and the consumers ------------------------------------------------------------------------------
async def test_relay_runs_each_consumer_once(client: Any, rt: Any, tenant: str, relay: Any) -> None:
    while await relay():  # what earlier tests left in the outbox, and what the reactions to it emit
        pass
    with recording_consumer(rt, tenant) as (consumer, seen):
        for name in ("One", "Two"):
            r = await client.post(INDIVIDUALS, json={"givenName": name, "familyName": "X"},
                                  headers=bearer(tenant, "admin"))
            assert r.status_code == 201
        r = await client.patch(f"{INDIVIDUALS}/{r.json()['id']}", json={"givenName": "Changed"},
                               headers=bearer(tenant, "admin"))
        assert r.status_code == 200
        assert seen == []  # nothing runs inside the request: after commit, by the relay
        assert await relay() >= 3
        rows = await outbox_rows(rt, tenant)
        assert all(row.published_at is not None for row in rows)
        creates = [str(row.event_id) for row in rows if row.event_type == "IndividualCreateEvent"]
        assert sorted(seen) == sorted(creates)  # the consumer wanted only the create events, each once
        assert await relay() == 0  # published events are not published again
        assert sorted(seen) == sorted(creates)
        for event_id in creates:
            assert await processed(rt, tenant, consumer.name, event_id) == 1


async def test_process_twice_has_effect_once(rt: Any, tenant: str) -> None:
    with recording_consumer(rt, tenant) as (consumer, seen):
        event_id = str(uuid.uuid4())
        event = Event(tenant, "party", "IndividualCreateEvent", {
            "eventId": event_id, "eventType": "IndividualCreateEvent", "event": {"individual": {"id": "i1"}}})
        assert await process(rt.db, consumer, event) is True
        assert await process(rt.db, consumer, event) is False  # a redelivery: recognised, skipped
        assert seen == [event_id]
        assert await processed(rt, tenant, consumer.name, event_id) == 1
        # replay --force runs it again on purpose
        assert await process(rt.db, consumer, event, force=True) is True
        assert seen == [event_id, event_id]
        # an event the consumer does not want is not recorded
        other = Event(tenant, "party", "IndividualDeleteEvent", {**event.envelope, "eventId": str(uuid.uuid4())})
        assert await process(rt.db, consumer, other) is False
        assert await processed(rt, tenant, consumer.name, other.event_id) == 0


async def test_failed_handler_records_nothing_and_runs_again(rt: Any, tenant: str) -> None:
    event_id = str(uuid.uuid4())
    event = Event(tenant, "party", "IndividualCreateEvent", {"eventId": event_id, "eventType": "IndividualCreateEvent"})
    with recording_consumer(rt, tenant, fail=True) as (consumer, _):
        with pytest.raises(Boom):
            await process(rt.db, consumer, event)
        assert await processed(rt, tenant, consumer.name, event_id) == 0  # effect and record roll back together
        with recording_consumer(rt, tenant) as (fixed, seen):
            fixed = Consumer(consumer.name, fixed.handler, fixed.event_types)
            assert await process(rt.db, fixed, event) is True
            assert seen == [event_id]
            assert await processed(rt, tenant, consumer.name, event_id) == 1


async def test_relay_is_woken_by_notify(client: Any, rt: Any, tenant: str) -> None:
    """A running relay publishes within moments of the commit, without waiting for its (here 60 s) poll."""
    with recording_consumer(rt, tenant) as (_, seen):
        relay = OutboxRelay(rt.db, rt.make_bus(), poll_seconds=60)
        stop = asyncio.Event()
        task = asyncio.create_task(relay.run(stop))
        try:
            await asyncio.sleep(0.3)  # the relay has drained what was there and now waits
            r = await client.post(INDIVIDUALS, json={"givenName": "N", "familyName": "Otify"},
                                  headers=bearer(tenant, "admin"))
            assert r.status_code == 201
            for _ in range(100):
                if seen:
                    break
                await asyncio.sleep(0.05)
            assert len(seen) == 1
        finally:
            stop.set()
            relay._wake.set()
            await asyncio.wait_for(task, 5)


async def test_a_failing_consumer_does_not_hold_back_later_events(rt: Any, tenant: str, relay: Any) -> None:
    """Embedded mode: an event whose consumer raises is published all the same; the failure is recorded for a
    retry of that consumer alone, and the events behind it go through."""
    from sqlalchemy import delete

    from openbss.platform.events.bus import InProcessBus
    from openbss.platform.events.consumers import ConsumerRegistry
    from openbss.platform.events.failures import EventFailure, RetryPolicy

    seen: list[str] = []

    async def handler(session: Any, event: Any) -> None:
        if event.envelope["event"]["thing"]["id"] == "poison":
            raise RuntimeError("cannot handle this one")
        seen.append(event.envelope["event"]["thing"]["id"])

    await relay()  # nothing of other tests left for this test's relay
    registry = ConsumerRegistry()
    registry.register(Consumer(name=f"poison-test-{tenant}", handler=handler, apis=frozenset({f"api-{tenant}"})))
    async with rt.db.transaction(tenant) as session:
        for rid in ("first", "poison", "last"):
            await emit(session, api=f"api-{tenant}", event_type="ThingCreateEvent", resource_key="thing",
                       resource={"id": rid})
    bus = InProcessBus(rt.db, registry, RetryPolicy(max_attempts=3, base_seconds=60))
    relay_ = OutboxRelay(rt.db, bus)
    await relay_.drain()
    assert seen == ["first", "last"]
    async with rt.db.transaction(tenant) as session:
        pending = (await session.execute(
            select(OutboxEvent.resource_id).where(OutboxEvent.api == f"api-{tenant}",
                                                  OutboxEvent.published_at.is_(None)))).scalars().all()
        done = (await session.execute(select(ProcessedEvent.event_id).where(
            ProcessedEvent.consumer == f"poison-test-{tenant}"))).scalars().all()
        failures = (await session.execute(select(EventFailure))).scalars().all()
    assert pending == []  # the relay moved on
    assert len(done) == 2
    assert [(f.consumer, f.envelope["event"]["thing"]["id"],
             f.state, f.attempts) for f in failures] == [(f"poison-test-{tenant}", "poison", "retrying", 1)]
    # within the backoff the failed event is not retried, and the relay has nothing to publish again
    assert await bus.sweeper.run_due() == 0
    assert await relay_.drain() == 0
    assert seen == ["first", "last"]
    async with rt.db.transaction(tenant) as session:  # leave nothing for other tests' relays and retries
        await session.execute(delete(EventFailure))
        await session.execute(delete(OutboxEvent).where(OutboxEvent.api == f"api-{tenant}"))
