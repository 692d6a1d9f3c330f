"""The event backbone on NATS JetStream: the relay publishes (de-duplicated by event id), durable consumers handle
each event once in effect, a worker killed between commit and acknowledgement does not handle twice, and a replay
from a stream position re-runs nothing already done.

Each test uses its own stream (and so its own subjects, ``<stream>.events.>``), deleted afterwards: tests never
collide with each other or with a developer's running worker on the default ``OPENBSS`` stream.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select

from openbss.platform.events.bus import NatsBus
from openbss.platform.events.consumers import Consumer, ConsumerRegistry, Event, ProcessedEvent
from openbss.platform.events.outbox import OutboxEvent
from openbss.platform.events.relay import OutboxRelay
from openbss.platform.tmf.hub import HubDelivery, HubSubscription
from tests.conftest import bearer
from tests.platform.callback_server import callback_server

OPENBSS = str(Path(sys.executable).parent / "openbss")
ACK_WAIT = 2.0


@pytest.fixture
async def stream(nats_url: str) -> AsyncIterator[str]:
    import nats
    import nats.js.errors

    name = f"T{uuid.uuid4().hex[:12].upper()}"
    yield name
    nc = await nats.connect(nats_url)
    for stream in (name, f"{name}_RATING"):  # the worker's batch rating work queue too
        with suppress(nats.js.errors.NotFoundError):  # never created
            await nc.jetstream().delete_stream(stream)
    await nc.close()


@pytest.fixture
async def js(nats_url: str) -> AsyncIterator[Any]:
    import nats

    nc = await nats.connect(nats_url)
    yield nc.jetstream()
    await nc.close()


@pytest.fixture
def nats_settings(settings: Any, nats_url: str, stream: str) -> Any:
    return settings.model_copy(update={"nats_url": nats_url, "nats_stream": stream})


@contextmanager
def recorder(tenant: str, *, fail_first: int = 0) -> Iterator[tuple[Consumer, list[str]]]:
    seen: list[str] = []
    failures = {"left": fail_first}

    async def handler(session: Any, event: Event) -> None:
        if event.tenant_id != tenant:
            return
        if failures["left"] > 0:
            failures["left"] -= 1
            raise RuntimeError("transient failure")
        seen.append(event.event_id)

    yield Consumer(name=f"rec-{uuid.uuid4().hex[:8]}", handler=handler), seen


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 15, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def create_individual(client: Any, tenant: str, given: str) -> dict[str, Any]:
    r = await client.post("/tmf-api/party/v4/individual", json={"givenName": given, "familyName": "Nats"},
                          headers=bearer(tenant, "admin"))
    assert r.status_code == 201, r.text
    return dict(r.json())


async def event_id_of(rt: Any, tenant: str, resource_id: str) -> str:
    async with rt.db.transaction(tenant) as session:
        return str(await session.scalar(select(OutboxEvent.event_id).where(OutboxEvent.resource_id == resource_id)))


def sample_event(tenant: str) -> Event:
    event_id = str(uuid.uuid4())
    return Event(tenant, "party", "IndividualCreateEvent", {
        "eventId": event_id, "eventTime": "2026-01-01T00:00:00.000Z", "eventType": "IndividualCreateEvent",
        "event": {"individual": {"id": "n1"}}})


# --- publishing ----------------------------------------------------------------------------------------------
async def test_publish_is_deduplicated_by_event_id(rt: Any, nats_url: str, stream: str, js: Any,
                                                   tenant: str) -> None:
    bus = NatsBus(rt.db, ConsumerRegistry(), nats_url, stream)
    try:
        event = sample_event(tenant)
        await bus.publish(event)
        await bus.publish(event)  # a relay that died after publishing and before marking publishes again
        await bus.publish(sample_event(tenant))
        info = await js.stream_info(stream)
        assert info.state.messages == 2
        assert info.config.subjects == [f"{stream.lower()}.events.>"]
        msg = await js.get_msg(stream, 1)
        assert msg.subject == f"{stream.lower()}.events.{tenant}.party.IndividualCreateEvent"
        assert msg.headers["Nats-Msg-Id"] == event.event_id
        assert await bus.healthy()
    finally:
        await bus.close()


async def test_relay_publishes_and_durable_consumer_handles_each_event_once(
        client: Any, rt: Any, nats_url: str, stream: str, js: Any, tenant: str) -> None:
    with recorder(tenant, fail_first=1) as (consumer, seen):
        registry = ConsumerRegistry()
        registry.register(consumer)
        bus = NatsBus(rt.db, registry, nats_url, stream, ack_wait_seconds=ACK_WAIT)
        stop = asyncio.Event()
        task = asyncio.create_task(bus.run_consumers(stop))
        try:
            a = await create_individual(client, tenant, "Ana")
            b = await create_individual(client, tenant, "Ben")
            relay = OutboxRelay(rt.db, bus)
            assert await relay.drain() >= 2
            ids = {await event_id_of(rt, tenant, a["id"]), await event_id_of(rt, tenant, b["id"])}

            async def both_seen() -> bool:
                return set(seen) == ids

            # the first delivery fails (nak), is redelivered, then handled: at least once
            await eventually(both_seen, what="both events handled")
            # the same events published again are dropped by JetStream; processed events are not run again
            async with rt.db.transaction(tenant) as session:
                rows = (await session.execute(select(OutboxEvent).where(
                    OutboxEvent.event_id.in_([uuid.UUID(i) for i in ids])))).scalars().all()
            before = (await js.stream_info(stream)).state.messages
            for row in rows:
                await bus.publish(Event(row.tenant_id, row.api, row.event_type, row.envelope))
            assert (await js.stream_info(stream)).state.messages == before

            async def all_acked() -> bool:
                info = await js.consumer_info(stream, consumer.name)
                return bool(info.num_ack_pending == 0 and info.num_pending == 0)

            await eventually(all_acked, what="every message acknowledged")
            await asyncio.sleep(0.3)
            assert sorted(seen) == sorted(ids)  # each once
            async with rt.db.transaction(tenant) as session:
                n = await session.scalar(select(func.count()).select_from(ProcessedEvent).where(
                    ProcessedEvent.consumer == consumer.name))
            assert n == 2
            info = await js.consumer_info(stream, consumer.name)
            assert info.config.durable_name == consumer.name
            assert info.config.ack_wait == ACK_WAIT
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
            await bus.close()


# --- one durable consumer per reaction and event type ------------------------------------------------------------
def typed_event(tenant: str, api: str, event_type: str) -> Event:
    return Event(tenant, api, event_type, {
        "eventId": str(uuid.uuid4()), "eventTime": "2026-01-01T00:00:00.000Z", "eventType": event_type,
        "event": {"thing": {"id": "x"}}})


@contextmanager
def running(bus: NatsBus) -> Iterator[asyncio.Event]:
    """Run the bus's consumers in the background for the block."""
    stop = asyncio.Event()
    task = asyncio.get_running_loop().create_task(bus.run_consumers(stop))
    try:
        yield stop
    finally:
        stop.set()
        task.cancel()


async def stop_bus(bus: NatsBus) -> None:
    await asyncio.sleep(0)
    await bus.close()


def test_lane_names_and_subjects(rt: Any) -> None:
    from openbss.platform.events.bus import durable_name, lanes_of

    async def handler(session: Any, event: Event) -> None:
        return None

    assert durable_name("billing.start-on-order") == "billing-start-on-order"
    assert durable_name("ordering:item state", "ServiceOrderStateChangeEvent") == (
        "ordering-item-state_ServiceOrderStateChangeEvent")
    long_a, long_b = durable_name("x" * 200, "A"), durable_name("x" * 200, "B")
    assert len(long_a) == 120 and long_a != long_b
    typed = Consumer("c", handler, event_types=frozenset({"B", "A"}), apis=frozenset({"p", "q"}))
    assert [(lane.durable, lane.filter_subject("s.events")) for lane in lanes_of(typed)] == [
        ("c_A", "s.events.*.*.A"), ("c_B", "s.events.*.*.B")]
    per_api = Consumer("d", handler, apis=frozenset({"q", "p"}))
    assert [(lane.durable, lane.filter_subject("s.events")) for lane in lanes_of(per_api)] == [
        ("d_p", "s.events.*.p.>"), ("d_q", "s.events.*.q.>")]
    registry = ConsumerRegistry()
    registry.register(Consumer("a.b", handler))
    registry.register(Consumer("a-b", handler))
    with pytest.raises(ValueError, match="would share the durable consumer 'a-b'"):
        NatsBus(rt.db, registry, "nats://127.0.0.1:1").lanes()


async def test_each_reaction_gets_a_durable_consumer_per_event_type(
        rt: Any, nats_url: str, stream: str, js: Any, tenant: str) -> None:
    from openbss.platform.events.consumers import subscription

    seen: dict[str, list[str]] = {"typed": [], "all": []}

    def recording(key: str) -> Any:
        async def handler(session: Any, event: Event) -> None:
            if event.tenant_id == tenant:
                seen[key].append(event.event_type)
        return handler

    typed = subscription("billing", "on-party", recording("typed"),
                         on={"IndividualCreateEvent", "IndividualDeleteEvent"}, apis={"party"}, max_attempts=4)
    every = Consumer(name=f"all-{tenant}", handler=recording("all"))
    registry = ConsumerRegistry()
    registry.register(typed)
    registry.register(every)
    bus = NatsBus(rt.db, registry, nats_url, stream, ack_wait_seconds=ACK_WAIT)
    try:
        await bus.connect()
        with running(bus):
            async def lanes_ready() -> bool:
                return len(await js.consumers_info(stream)) == 3

            await eventually(lanes_ready, what="three durable consumers")
            for event_type in ("IndividualCreateEvent", "IndividualDeleteEvent", "IndividualAttributeValueChangeEvent"):
                await bus.publish(typed_event(tenant, "party", event_type))
            await bus.publish(typed_event(tenant, "customer", "IndividualCreateEvent"))  # same type, other API

            async def all_seen() -> bool:
                return len(seen["all"]) == 4 and len(seen["typed"]) == 2

            await eventually(all_seen, what="every lane's events")
        prefix = f"{stream.lower()}.events"
        infos = {i.name: i.config for i in await js.consumers_info(stream)}
        assert set(infos) == {"billing-on-party_IndividualCreateEvent", "billing-on-party_IndividualDeleteEvent",
                              f"all-{tenant}"}
        for event_type in ("IndividualCreateEvent", "IndividualDeleteEvent"):
            assert infos[f"billing-on-party_{event_type}"].filter_subject == f"{prefix}.*.party.{event_type}"
        assert infos[f"all-{tenant}"].filter_subject == f"{prefix}.>"
        assert infos["billing-on-party_IndividualCreateEvent"].max_deliver == 4  # the reaction's max_attempts
        assert infos[f"all-{tenant}"].max_deliver == bus.policy.max_attempts
        assert infos["billing-on-party_IndividualCreateEvent"].durable_name == "billing-on-party_IndividualCreateEvent"
        assert sorted(seen["typed"]) == ["IndividualCreateEvent", "IndividualDeleteEvent"]

        # what `openbss events list` shows: the lanes with their counts
        from openbss.platform.events.admin import describe_consumers
        from openbss.platform.events.failures import RetryPolicy

        reports, broker = await describe_consumers(rt.db, registry, RetryPolicy(), bus)
        assert broker is not None and broker.stream == stream and broker.messages == 4 and broker.orphaned == []
        by_name = {r.name: r for r in reports}
        lanes = by_name["billing.on-party"].lanes
        assert [(lane.durable, lane.exists, lane.pending, lane.ack_pending) for lane in lanes] == [
            ("billing-on-party_IndividualCreateEvent", True, 0, 0),
            ("billing-on-party_IndividualDeleteEvent", True, 0, 0)]
        assert by_name["billing.on-party"].domain == "billing"
        registry.unregister(every.name)
        _, broker = await describe_consumers(rt.db, registry, RetryPolicy(), bus)
        assert broker is not None and broker.orphaned == [f"all-{tenant}"]
    finally:
        await stop_bus(bus)


async def test_failing_reaction_on_jetstream_backs_off_dies_and_replays_once_others_unaffected(
        rt: Any, nats_url: str, stream: str, js: Any, tenant: str) -> None:
    """Three reactions to the same event type: one always fails, one is slow, one is quick. The quick one is held
    back by neither; the failing one is redelivered after growing delays, dead-lettered after its last attempt
    (the message terminated), and replayed exactly once after the fix."""
    from prometheus_client import REGISTRY

    from openbss.platform.events import admin
    from openbss.platform.events.failures import EventFailure

    base = 0.3
    calls: dict[str, list[float]] = {"bad": [], "slow": [], "quick": []}
    handled: dict[str, list[str]] = {"bad": [], "slow": [], "quick": []}

    def reaction(key: str, *, fail: bool = False, sleep: float = 0.0) -> Any:
        async def handler(session: Any, event: Event) -> None:
            if event.tenant_id != tenant:
                return
            calls[key].append(time.monotonic())
            if sleep and not handled[key]:
                await asyncio.sleep(sleep)
            if fail:
                raise RuntimeError("the ledger is closed")
            handled[key].append(event.event_id)
        return handler

    kind = frozenset({"IndividualCreateEvent"})
    bad = Consumer(name=f"bad-{tenant}", handler=reaction("bad", fail=True), event_types=kind, max_attempts=3,
                   retry_base_seconds=base)
    registry = ConsumerRegistry()
    registry.register(bad)
    registry.register(Consumer(name=f"slow-{tenant}", handler=reaction("slow", sleep=1.5), event_types=kind))
    registry.register(Consumer(name=f"quick-{tenant}", handler=reaction("quick"), event_types=kind))
    bus = NatsBus(rt.db, registry, nats_url, stream, ack_wait_seconds=ACK_WAIT)
    dead_before = REGISTRY.get_sample_value("openbss_event_dead_letters_total", {"consumer": bad.name}) or 0.0
    first, second = sample_event(tenant), sample_event(tenant)
    try:
        with running(bus):
            started = time.monotonic()
            await bus.publish(first)
            await bus.publish(second)

            async def quick_done() -> bool:
                return len(handled["quick"]) == 2

            await eventually(quick_done, what="the quick reaction")
            assert time.monotonic() - started < 1.2  # not behind the slow one (1.5 s) nor the failing one

            async def dead() -> bool:
                async with rt.db.transaction(tenant) as session:
                    states = (await session.execute(select(EventFailure.state).where(
                        EventFailure.consumer == bad.name))).scalars().all()
                return sorted(states) == ["dead", "dead"]

            await eventually(dead, what="two dead letters")
            lane = f"bad-{tenant}_IndividualCreateEvent"

            async def settled() -> bool:
                info = await js.consumer_info(stream, lane)
                return bool(info.num_ack_pending == 0 and info.num_pending == 0)

            await eventually(settled, what="terminated messages")  # terminated: nothing left to redeliver
            await asyncio.sleep(3 * base)
            assert len(calls["bad"]) == 6  # 3 attempts per event, no more
            assert len(handled["slow"]) == 2 and len(handled["quick"]) == 2
        per_event = sorted(calls["bad"])
        firsts = per_event[:2]
        assert firsts[1] - firsts[0] < base  # both first attempts straight away
        later = sorted(per_event[2:])
        assert later[0] - firsts[0] >= base * 0.9 and later[-1] - firsts[0] >= 3 * base * 0.9  # base, then 2 x base
        assert (REGISTRY.get_sample_value("openbss_event_dead_letters_total", {"consumer": bad.name})
                == dead_before + 2)
        async with rt.db.transaction(tenant) as session:
            rows = (await session.execute(select(EventFailure).where(EventFailure.consumer == bad.name)
                                          .order_by(EventFailure.stream_seq))).scalars().all()
        assert [(r.event_id, r.attempts, r.max_attempts, r.stream_seq, r.next_attempt_at) for r in rows] == [
            (uuid.UUID(first.event_id), 3, 3, 1, None), (uuid.UUID(second.event_id), 3, 3, 2, None)]
        assert rows[0].last_error == "RuntimeError: the ledger is closed"

        # the ledger reopens: replay every dead letter of the reaction, exactly once
        fixed = ConsumerRegistry()
        fixed.register(Consumer(name=bad.name, handler=reaction("quick"), event_types=kind))
        results = await admin.replay_failures(rt.db, fixed, consumer=bad.name)
        assert [r.outcome for r in results] == ["replayed", "replayed"]
        assert sorted(handled["quick"]) == sorted([first.event_id, second.event_id] * 2)
        assert await admin.replay_failures(rt.db, fixed, consumer=bad.name) == []
        assert len(handled["quick"]) == 4
        async with rt.db.transaction(tenant) as session:
            n = await session.scalar(select(func.count()).select_from(ProcessedEvent).where(
                ProcessedEvent.consumer == bad.name))
        assert n == 2
    finally:
        await stop_bus(bus)
        async with rt.db.transaction(tenant) as session:
            await session.execute(delete(EventFailure))


async def test_a_worker_dying_on_the_last_delivery_leaves_a_dead_letter(
        rt: Any, nats_url: str, stream: str, js: Any, tenant: str) -> None:
    """The server stops delivering after ``max_deliver`` unacknowledged deliveries and says so (advisory); the
    workers record the dead letter nobody else could."""
    from openbss.platform.events.bus import Lane
    from openbss.platform.events.failures import EventFailure

    async def never_called(session: Any, event: Event) -> None:
        raise AssertionError("the lane is read by the test, as by workers that die")

    consumer = Consumer(name=f"dies-{tenant}", handler=never_called, event_types=frozenset({"IndividualCreateEvent"}),
                        max_attempts=2)
    registry = ConsumerRegistry()
    registry.register(consumer)
    bus = NatsBus(rt.db, registry, nats_url, stream, ack_wait_seconds=1.0)
    stop = asyncio.Event()
    watcher = asyncio.create_task(bus.watch_max_deliveries(stop))
    try:
        lane = Lane(consumer, "IndividualCreateEvent")
        await bus.ensure_lane(lane)
        event = sample_event(tenant)
        await bus.publish(event)
        sub = await js.pull_subscribe_bind(durable=lane.durable, stream=stream)
        delivered = 0
        deadline = time.monotonic() + 15

        async def recorded() -> list[EventFailure]:
            async with rt.db.transaction(tenant) as session:
                return list((await session.execute(select(EventFailure))).scalars().all())

        while not await recorded() and time.monotonic() < deadline:
            with suppress(Exception):
                delivered += len(await sub.fetch(1, timeout=1.2))  # taken, never acknowledged
        [f] = await recorded()
        assert delivered == 2
        assert (f.consumer, f.state, f.attempts, f.stream_seq, f.event_id) == (
            consumer.name, "dead", 2, 1, uuid.UUID(event.event_id))
        assert "without an acknowledgement" in f.last_error
        # an advisory for an event whose last attempt had committed records nothing
        async with rt.db.transaction(tenant) as session:
            await session.execute(delete(EventFailure))
            session.add(ProcessedEvent(consumer=consumer.name, event_id=uuid.UUID(event.event_id)))
        advisory = {"stream": stream, "consumer": lane.durable, "stream_seq": 1, "deliveries": 2}
        assert await bus.record_max_deliveries(advisory) is None
        assert await bus.record_max_deliveries({**advisory, "consumer": "someone-else"}) is None
        assert await recorded() == []
    finally:
        stop.set()
        await asyncio.wait_for(watcher, 5)
        await bus.close()


# --- the crash test --------------------------------------------------------------------------------------------
def start_worker(nats_url: str, stream: str, log: Path, *, fault: bool) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OPENBSS_NATS_URL": nats_url, "OPENBSS_NATS_STREAM": stream,
           "OPENBSS_NATS_ACK_WAIT_SECONDS": str(ACK_WAIT), "OPENBSS_LOG_JSON": "false", "PYTHONUNBUFFERED": "1"}
    env.pop("OPENBSS_FAULT_KILL_BEFORE_ACK", None)
    if fault:
        env["OPENBSS_FAULT_KILL_BEFORE_ACK"] = "hub-fanout"
    out = log.open("ab")
    return subprocess.Popen([OPENBSS, "worker"], env=env, stdout=out, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)


async def wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    if proc.returncode is None:
        raise AssertionError(f"worker {proc.pid} still running after {timeout} s")
    return proc.returncode


@pytest.mark.slow
async def test_worker_killed_between_commit_and_ack_handles_once(
        client: Any, rt: Any, nats_url: str, stream: str, js: Any, tenant: str, relay: Any,
        tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    await relay()  # leave nothing else in the outbox: the worker's first event is this test's
    procs: list[subprocess.Popen[bytes]] = []
    with callback_server() as server:
        # No query: `openbss worker` does not load the domain APIs yet, and without them a query cannot be
        # evaluated (the fan-out then refuses, rather than deliver unfiltered).
        r = await client.post("/tmf-api/party/v4/hub", json={"callback": server.base_url},
                              headers=bearer(tenant, "admin"))
        assert r.status_code == 201
        try:
            # 1. a worker that kills itself (SIGKILL) after the hub fan-out committed, before the ack
            procs.append(start_worker(nats_url, stream, log, fault=True))
            ind = await create_individual(client, tenant, "Crash")
            event_id = await event_id_of(rt, tenant, ind["id"])
            code = await wait_exit(procs[0], 30)
            assert code == -signal.SIGKILL, log.read_text()

            async with rt.db.transaction(tenant) as session:
                processed = (await session.execute(select(ProcessedEvent.consumer).where(
                    ProcessedEvent.event_id == uuid.UUID(event_id)))).scalars().all()
                deliveries = (await session.execute(select(HubDelivery).where(
                    HubDelivery.event_id == uuid.UUID(event_id)))).scalars().all()
            assert processed == ["hub-fanout"]  # the handler's effect committed...
            assert len(deliveries) == 1
            info = await js.consumer_info(stream, "hub-fanout")
            assert info.num_ack_pending == 1  # ...and the message was never acknowledged
            assert info.ack_floor.stream_seq == 0

            # 2. a worker without the fault: the message is redelivered, recognised as processed, acknowledged
            procs.append(start_worker(nats_url, stream, log, fault=False))

            async def redelivered_and_acked() -> bool:
                i = await js.consumer_info(stream, "hub-fanout")
                return bool(i.num_ack_pending == 0 and i.ack_floor.stream_seq >= 1
                            and i.delivered.consumer_seq >= 2)

            await eventually(redelivered_and_acked, timeout=30, what="redelivery and ack")
            info = await js.consumer_info(stream, "hub-fanout")
            assert info.delivered.stream_seq == 1 and info.delivered.consumer_seq == 2  # delivered twice

            async def delivered() -> bool:
                async with rt.db.transaction(tenant) as session:
                    status = await session.scalar(select(HubDelivery.status).where(
                        HubDelivery.event_id == uuid.UUID(event_id)))
                return status == "delivered"

            # the notification job deferred by the dead worker is run by the new one
            await eventually(delivered, timeout=20, what="the notification")
            await asyncio.sleep(ACK_WAIT + 0.5)  # time for a wrong second delivery to show up
            async with rt.db.transaction(tenant) as session:
                n = await session.scalar(select(func.count()).select_from(HubDelivery).where(
                    HubDelivery.event_id == uuid.UUID(event_id)))
            assert n == 1  # handled exactly once in effect
            assert len(server.for_event(event_id)) == 1
            assert "event already processed" in log.read_text()

            # 3. a clean stop
            procs[1].send_signal(signal.SIGTERM)
            assert await wait_exit(procs[1], 20) == 0, log.read_text()[-3000:]

            # 4. replaying the stream from the start re-runs nothing
            env = {**os.environ, "OPENBSS_NATS_URL": nats_url, "OPENBSS_NATS_STREAM": stream,
                   "OPENBSS_LOG_JSON": "false", "COLUMNS": "200"}
            out = subprocess.run([OPENBSS, "events", "replay", "--from-seq", "1"], env=env, capture_output=True,
                                 text=True, timeout=60)
            assert out.returncode == 0, out.stderr
            assert "replayed 1 events; 0 handler runs" in out.stdout, out.stdout + out.stderr
            # 5. the operator's view: the durable consumer, nothing pending, nothing failed
            out = subprocess.run([OPENBSS, "events", "list"], env=env, capture_output=True, text=True, timeout=60)
            assert out.returncode == 0, out.stderr
            assert f"JetStream stream {stream}: 1 events" in out.stdout, out.stdout
            row = next(line for line in out.stdout.splitlines() if line.startswith("│ hub-fanout"))
            assert [c.strip() for c in row.strip("│").split("│")][-4:] == ["hub-fanout", "0", "0", "0"], row
            async with rt.db.transaction(tenant) as session:
                n = await session.scalar(select(func.count()).select_from(HubDelivery).where(
                    HubDelivery.event_id == uuid.UUID(event_id)))
            assert n == 1
            assert len(server.for_event(event_id)) == 1
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(10)
            async with rt.db.transaction(tenant) as session:
                await session.execute(delete(HubSubscription))
