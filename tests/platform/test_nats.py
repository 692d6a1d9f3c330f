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
    with suppress(nats.js.errors.NotFoundError):  # never created
        await nc.jetstream().delete_stream(name)
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
