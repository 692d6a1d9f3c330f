"""Failing reactions in embedded mode: a consumer that raises is retried on its own with exponential backoff, ends
as a dead letter after its last attempt, and an operator replays it (exactly once) after fixing the cause.

Each test uses its own consumer registry and in-process bus, and events of an API named after its tenant, so that
nothing reaches the session's consumers; it publishes directly with ``InProcessBus.publish`` (what the relay
does after commit) or drains the outbox after the session relay emptied it.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import delete, func, select, update

from openbss.platform.events import admin
from openbss.platform.events.bus import InProcessBus
from openbss.platform.events.consumers import Consumer, ConsumerRegistry, Event, ProcessedEvent, subscription
from openbss.platform.events.failures import EventFailure, RetryPolicy
from openbss.platform.events.outbox import OutboxEvent, emit
from openbss.platform.events.relay import OutboxRelay
from openbss.platform.tmf.hub import HubDelivery, HubSubscription
from tests.conftest import bearer

OPENBSS = str(Path(sys.executable).parent / "openbss")


class Broken(Exception):
    pass


class Reaction:
    """A consumer whose handler records when it ran and can be made to fail; its effect is a row the test can
    count (a processed-event record, committed with it)."""

    def __init__(self, name: str, *, fail: int = 0, **options: Any) -> None:
        self.fail = fail  # how many of the next calls raise (-1: all)
        self.calls: list[float] = []
        self.handled: list[str] = []
        self.consumer = Consumer(name=name, handler=self.handle, event_types=frozenset({"ThingCreateEvent"}),
                                 **options)

    async def handle(self, session: Any, event: Event) -> None:
        self.calls.append(time.monotonic())
        if self.fail:
            self.fail -= 1 if self.fail > 0 else 0
            raise Broken(f"{self.consumer.name} cannot handle {event.envelope['event']['thing']['id']}")
        self.handled.append(event.event_id)


def thing_event(tenant: str, thing_id: str = "t1") -> Event:
    event_id = str(uuid.uuid4())
    return Event(tenant, f"api-{tenant}", "ThingCreateEvent", {
        "eventId": event_id, "eventTime": "2026-01-01T00:00:00.000Z", "eventType": "ThingCreateEvent",
        "event": {"thing": {"id": thing_id}}})


async def failures(rt: Any, tenant: str) -> list[EventFailure]:
    async with rt.db.transaction(tenant) as session:
        return list((await session.execute(select(EventFailure).order_by(EventFailure.id))).scalars().all())


async def processed_count(rt: Any, tenant: str, consumer: str) -> int:
    async with rt.db.transaction(tenant) as session:
        return int(await session.scalar(select(func.count()).select_from(ProcessedEvent).where(
            ProcessedEvent.consumer == consumer)) or 0)


def dead_letters_metric(consumer: str) -> float:
    return REGISTRY.get_sample_value("openbss_event_dead_letters_total", {"consumer": consumer}) or 0.0


@pytest.fixture
async def clean(rt: Any, tenant: str) -> AsyncIterator[None]:
    yield
    async with rt.db.transaction(tenant) as session:  # nothing left for other tests' retry drivers
        await session.execute(delete(EventFailure))


async def until(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


# --- retries, backoff, dead letters ----------------------------------------------------------------------------
async def test_failing_consumer_is_retried_with_backoff_then_dead_others_unaffected(
        rt: Any, tenant: str, relay: Any, clean: None) -> None:
    base = 0.3
    bad = Reaction(f"bad-{tenant}", fail=-1, max_attempts=3, retry_base_seconds=base)
    good = Reaction(f"good-{tenant}")
    registry = ConsumerRegistry()
    registry.register(bad.consumer)
    registry.register(good.consumer)
    bus = InProcessBus(rt.db, registry, RetryPolicy(max_attempts=10, base_seconds=60))
    dead_before = dead_letters_metric(bad.consumer.name)

    await relay()  # nothing of other tests left for this test's relay
    async with rt.db.transaction(tenant) as session:
        row = await emit(session, api=f"api-{tenant}", event_type="ThingCreateEvent", resource_key="thing",
                         resource={"id": "t1"})
    assert await OutboxRelay(rt.db, bus).drain() >= 1
    # the relay published the event: the good consumer handled it, the bad one failed once and waits
    async with rt.db.transaction(tenant) as session:
        assert (await session.get(OutboxEvent, row.id)).published_at is not None  # type: ignore[union-attr]
    assert good.handled == [str(row.event_id)] and len(bad.calls) == 1
    [f] = await failures(rt, tenant)
    assert (f.consumer, f.state, f.attempts, f.max_attempts, f.event_id) == (
        bad.consumer.name, "retrying", 1, 3, row.event_id)
    assert f.last_error == f"Broken: {bad.consumer.name} cannot handle t1"
    assert "raise Broken" in (f.last_traceback or "")
    assert f.envelope == row.envelope and f.api == f"api-{tenant}" and f.event_type == "ThingCreateEvent"
    assert f.next_attempt_at is not None
    assert abs((f.next_attempt_at - f.last_failed_at).total_seconds() - base) < 0.05

    # the worker's retry driver runs each attempt when it is due, the bad consumer alone
    stop = asyncio.Event()
    task = asyncio.create_task(bus.run_consumers(stop))
    try:
        async def dead() -> bool:
            return (await failures(rt, tenant))[0].state == "dead"

        await until(dead)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
    assert len(bad.calls) == 3
    gaps = [b - a for a, b in zip(bad.calls, bad.calls[1:], strict=False)]
    assert gaps[0] >= base * 0.9 and gaps[1] >= 2 * base * 0.9, gaps  # exponential: base, then 2 x base
    assert gaps[1] < 2 * base + 1.5, gaps
    [f] = await failures(rt, tenant)
    assert (f.state, f.attempts, f.next_attempt_at) == ("dead", 3, None)
    assert dead_letters_metric(bad.consumer.name) == dead_before + 1
    assert good.handled == [str(row.event_id)]  # never run again
    assert await processed_count(rt, tenant, good.consumer.name) == 1
    assert await processed_count(rt, tenant, bad.consumer.name) == 0  # its effects rolled back every time
    # a dead letter is not retried any more
    assert await bus.sweeper.drain() == 0
    assert len(bad.calls) == 3


async def test_transient_failure_resolves_on_the_next_attempt(rt: Any, tenant: str, clean: None) -> None:
    flaky = Reaction(f"flaky-{tenant}", fail=1, retry_base_seconds=0.05)
    registry = ConsumerRegistry()
    registry.register(flaky.consumer)
    bus = InProcessBus(rt.db, registry, RetryPolicy())
    event = thing_event(tenant)
    await bus.publish(event)
    assert [f.state for f in await failures(rt, tenant)] == ["retrying"]
    await asyncio.sleep(0.1)
    assert await bus.sweeper.drain() == 1
    [f] = await failures(rt, tenant)
    assert (f.state, f.settled_by, f.next_attempt_at) == ("resolved", "retry", None)
    assert f.settled_at is not None
    assert flaky.handled == [event.event_id]
    assert await processed_count(rt, tenant, flaky.consumer.name) == 1


async def test_unknown_consumer_waits_and_unsubscribed_consumer_is_settled(rt: Any, tenant: str,
                                                                           clean: None) -> None:
    broken = Reaction(f"gone-{tenant}", fail=1, retry_base_seconds=0.01)
    registry = ConsumerRegistry()
    registry.register(broken.consumer)
    bus = InProcessBus(rt.db, registry, RetryPolicy())
    await bus.publish(thing_event(tenant))
    await asyncio.sleep(0.05)
    registry.unregister(broken.consumer.name)  # a worker that does not know it: the record waits (and is leased)
    assert await bus.sweeper.run_due() == 1
    [f] = await failures(rt, tenant)
    assert (f.state, f.attempts) == ("retrying", 1) and f.next_attempt_at is not None
    assert (f.next_attempt_at - f.last_failed_at).total_seconds() > 60
    # a consumer that no longer subscribes to the event type: the record is closed, nothing runs
    registry.register(Consumer(name=broken.consumer.name, handler=broken.handle,
                               event_types=frozenset({"OtherEvent"})))
    async with rt.db.transaction(tenant) as session:
        await session.execute(update(EventFailure).values(next_attempt_at=func.now()))
    assert await bus.sweeper.run_due() == 1
    [f] = await failures(rt, tenant)
    assert f.state == "resolved" and "no longer subscribes" in (f.settled_by or "")
    assert len(broken.calls) == 1


# --- replays ---------------------------------------------------------------------------------------------------
async def dead_letter(rt: Any, tenant: str, name: str, thing: str = "t1") -> tuple[Reaction, Event, int]:
    bad = Reaction(name, fail=-1, max_attempts=1)
    registry = ConsumerRegistry()
    registry.register(bad.consumer)
    event = thing_event(tenant, thing)
    await InProcessBus(rt.db, registry, RetryPolicy()).publish(event)
    rows = [f for f in await failures(rt, tenant) if f.event_id == uuid.UUID(event.event_id)]
    assert [(f.state, f.attempts) for f in rows] == [("dead", 1)]
    return bad, event, rows[0].id


async def test_replay_of_a_dead_letter_after_the_fix_runs_exactly_once(rt: Any, tenant: str, clean: None) -> None:
    name = f"replayed-{tenant}"
    _, event, failure_id = await dead_letter(rt, tenant, name)
    fixed = Reaction(name)
    registry = ConsumerRegistry()
    registry.register(fixed.consumer)

    result = await admin.replay_failure(rt.db, registry, failure_id, by="test")
    assert (result.outcome, result.consumer, result.event_id, result.tenant_id) == (
        "replayed", name, event.event_id, tenant)
    assert fixed.handled == [event.event_id]
    [f] = await failures(rt, tenant)
    assert (f.state, f.settled_by) == ("replayed", "replay by test")
    assert await processed_count(rt, tenant, name) == 1
    # replaying again does nothing: the record is settled, and the processed-event record guards the effect
    assert (await admin.replay_failure(rt.db, registry, failure_id)).outcome == "already replayed"
    assert (await admin.replay_failures(rt.db, registry, consumer=name)) == []
    assert fixed.handled == [event.event_id]
    # --force runs the handler again on purpose (the record stays replayed)
    assert (await admin.replay_failure(rt.db, registry, failure_id, force=True)).outcome == "replayed"
    assert fixed.handled == [event.event_id, event.event_id]
    assert await processed_count(rt, tenant, name) == 1


async def test_replay_finds_an_event_handled_meanwhile(rt: Any, tenant: str, clean: None) -> None:
    name = f"meanwhile-{tenant}"
    _, event, failure_id = await dead_letter(rt, tenant, name)
    fixed = Reaction(name)
    registry = ConsumerRegistry()
    registry.register(fixed.consumer)
    async with rt.db.transaction(tenant) as session:  # e.g. a stream replay handled it
        session.add(ProcessedEvent(consumer=name, event_id=uuid.UUID(event.event_id)))
    result = await admin.replay_failure(rt.db, registry, failure_id)
    assert result.outcome == "already processed"
    assert fixed.handled == []
    assert [f.state for f in await failures(rt, tenant)] == ["replayed"]


async def test_replay_that_fails_again_keeps_the_dead_letter(rt: Any, tenant: str, clean: None) -> None:
    name = f"stillbroken-{tenant}"
    bad, _, failure_id = await dead_letter(rt, tenant, name)
    registry = ConsumerRegistry()
    registry.register(bad.consumer)
    bad.fail = 1
    result = await admin.replay_failure(rt.db, registry, failure_id)
    assert result.outcome == "failed" and result.error == f"Broken: {name} cannot handle t1"
    [f] = await failures(rt, tenant)
    assert (f.state, f.attempts) == ("dead", 2)
    assert await processed_count(rt, tenant, name) == 0
    with pytest.raises(admin.UnknownConsumer, match="no consumer named"):
        await admin.replay_failure(rt.db, ConsumerRegistry(), failure_id)
    with pytest.raises(admin.FailureNotFound):
        await admin.replay_failure(rt.db, registry, 10**12)


async def test_replay_all_dead_letters_of_a_consumer(rt: Any, tenant: str, clean: None) -> None:
    name = f"many-{tenant}"
    ids = [(await dead_letter(rt, tenant, name, f"t{i}"))[2] for i in range(3)]
    other = f"other-{tenant}"
    _, _, other_id = await dead_letter(rt, tenant, other)
    fixed = Reaction(name)
    registry = ConsumerRegistry()
    registry.register(fixed.consumer)
    registry.register(Reaction(other).consumer)
    progress: list[tuple[int, int]] = []
    results = await admin.replay_failures(rt.db, registry, consumer=name, tenant=tenant,
                                          on_result=lambda r, total: progress.append((r.failure_id, total)))
    assert [r.outcome for r in results] == ["replayed"] * 3
    assert progress == [(i, 3) for i in ids]
    assert len(fixed.handled) == 3
    states = {f.id: f.state for f in await failures(rt, tenant)}
    assert states == {**dict.fromkeys(ids, "replayed"), other_id: "dead"}  # the other consumer's are left alone
    with pytest.raises(admin.UnknownConsumer):
        await admin.replay_failures(rt.db, registry, consumer="nobody")


async def test_resolve_closes_without_running(rt: Any, tenant: str, clean: None) -> None:
    _, _, failure_id = await dead_letter(rt, tenant, f"resolved-{tenant}")
    row = await admin.resolve_failure(rt.db, failure_id, note="order fixed by hand", by="test")
    assert (row.state, row.settled_by) == ("resolved", "test: order fixed by hand")
    with pytest.raises(ValueError, match="already resolved"):
        await admin.resolve_failure(rt.db, failure_id, note="again")


async def test_failures_are_isolated_per_tenant(rt: Any, tenant: str, other_tenant: str, clean: None) -> None:
    _, _, failure_id = await dead_letter(rt, tenant, f"iso-{tenant}")
    async with rt.db.transaction(other_tenant) as session:
        assert (await session.execute(select(EventFailure))).scalars().all() == []
    rows, total = await admin.list_failures(rt.db, tenant=other_tenant)
    assert (rows, total) == ([], 0)
    rows, total = await admin.list_failures(rt.db, tenant=tenant)
    assert [r.id for r in rows] == [failure_id] and total == 1
    rows, _ = await admin.list_failures(rt.db, consumer=f"iso-{tenant}")  # system scope: every tenant
    assert [r.id for r in rows] == [failure_id]
    rows, _ = await admin.list_failures(rt.db, consumer=f"iso-{tenant}", states=admin.parse_states("replayed"))
    assert rows == []
    with pytest.raises(ValueError, match="unknown state 'zombie'"):
        admin.parse_states("dead,zombie")


# --- declaring a reaction --------------------------------------------------------------------------------------
async def test_subscription_declares_a_domain_reaction() -> None:
    async def handler(session: Any, event: Event) -> None:
        return None

    c = subscription("billing", "start-on-order-completed", handler, on={"ProductOrderStateChangeEvent"},
                     apis={"productOrderingManagement"}, max_attempts=5)
    assert (c.name, c.domain, c.event_types, c.apis, c.max_attempts) == (
        "billing.start-on-order-completed", "billing", frozenset({"ProductOrderStateChangeEvent"}),
        frozenset({"productOrderingManagement"}), 5)
    assert RetryPolicy(10, 1, 600).for_consumer(c) == RetryPolicy(5, 1, 600)
    assert [RetryPolicy(10, 1, 600).delay(n) for n in (1, 2, 3, 10, 11, 100)] == [1, 2, 4, 512, 600, 600]
    with pytest.raises(ValueError, match="name the event types"):
        subscription("billing", "x", handler, on=[])
    with pytest.raises(ValueError, match="letters"):
        subscription("billing", "has space", handler, on={"A"})
    with pytest.raises(ValueError, match="consumer name"):
        Consumer(name="bad name", handler=handler)
    with pytest.raises(ValueError, match="max_attempts"):
        Consumer(name="ok", handler=handler, max_attempts=0)


# --- the commands ----------------------------------------------------------------------------------------------
def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPENBSS_LOG_JSON": "false", "COLUMNS": "250"}
    env.pop("OPENBSS_NATS_URL", None)
    return subprocess.run([OPENBSS, "events", *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
async def test_events_commands_list_inspect_replay_a_dead_hub_fanout(
        client: Any, rt: Any, tenant: str, relay: Any, clean: None) -> None:
    """The operator's path: a real consumer (the hub fan-out) failed on a real event for good; ``openbss events``
    lists it, shows it, replays it once the cause is gone, and a second replay changes nothing."""
    from tests.platform.test_events import INDIVIDUALS

    await relay()
    r = await client.post("/tmf-api/party/v4/hub", json={"callback": "http://127.0.0.1:9/cb"},
                          headers=bearer(tenant, "admin"))
    assert r.status_code == 201
    r = await client.post(INDIVIDUALS, json={"givenName": "Dee", "familyName": "Letter"},
                          headers=bearer(tenant, "admin"))
    assert r.status_code == 201
    async with rt.db.transaction(tenant) as session:
        outbox = (await session.execute(select(OutboxEvent))).scalars().one()
    event = Event(tenant, outbox.api, outbox.event_type, outbox.envelope)

    async def outage(session: Any, event: Event) -> None:
        raise ConnectionError("subscription store unreachable")

    broken = ConsumerRegistry()  # the hub fan-out as it behaved during an outage, with one attempt left
    broken.register(Consumer(name="hub-fanout", handler=outage, max_attempts=1))
    await InProcessBus(rt.db, broken, RetryPolicy()).publish(event)
    [f] = await failures(rt, tenant)
    assert f.state == "dead"
    async with rt.db.transaction(tenant) as session:
        await session.execute(update(OutboxEvent).values(published_at=func.now()))

    try:
        out = cli("failed", "--tenant", tenant)
        assert out.returncode == 0, out.stderr
        assert "hub-fanout" in out.stdout and "dead" in out.stdout and "ConnectionError" in out.stdout, out.stdout
        assert "IndividualCreateEvent" in out.stdout
        out = cli("failed", "--tenant", tenant, "--state", "replayed")
        assert out.returncode == 0 and "hub-fanout" not in out.stdout, out.stdout
        out = cli("failed", "--state", "zombie")
        assert out.returncode == 2 and "unknown state" in out.stderr

        out = cli("inspect", str(f.id))
        assert out.returncode == 0, out.stderr
        for text in ("subscription store unreachable", "IndividualCreateEvent", event.event_id, "Traceback"):
            assert text in out.stdout, out.stdout
        out = cli("inspect", str(f.id), "--json")
        assert out.returncode == 0
        data = json.loads(out.stdout)
        assert (data["state"], data["consumer"], data["event"]) == ("dead", "hub-fanout", event.envelope)
        out = cli("inspect", "999999999")
        assert out.returncode == 1 and "no event failure 999999999" in out.stdout

        out = cli("list")
        assert out.returncode == 0, out.stderr
        assert "hub-fanout" in out.stdout and "every event" in out.stdout and "Embedded mode" in out.stdout

        out = cli("replay", str(f.id))
        assert out.returncode == 0, out.stdout + out.stderr
        assert "replayed" in out.stdout
        async with rt.db.transaction(tenant) as session:
            deliveries = (await session.execute(select(HubDelivery))).scalars().all()
        assert len(deliveries) == 1 and deliveries[0].event_id == uuid.UUID(event.event_id)
        [f] = await failures(rt, tenant)
        assert (f.state, f.settled_by) == ("replayed", "replay by openbss events")

        out = cli("replay", str(f.id))
        assert out.returncode == 0 and "already replayed" in out.stdout, out.stdout
        out = cli("replay", "--all", "--consumer", "hub-fanout", "--tenant", tenant)
        assert out.returncode == 0 and "nothing to replay" in out.stdout, out.stdout
        out = cli("replay")
        assert out.returncode == 2 and "give one of" in out.stderr
        async with rt.db.transaction(tenant) as session:
            assert await session.scalar(select(func.count()).select_from(HubDelivery)) == 1  # exactly once
    finally:
        async with rt.db.transaction(tenant) as session:
            await session.execute(delete(HubSubscription))
