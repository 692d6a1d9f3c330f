"""An event that cannot be published is never silently stuck: a change whose event would exceed the largest
publishable event is refused (nothing written), and an outbox event the broker refuses anyway is dead-lettered with
a metric, without holding back the events behind it (against the real NATS JetStream)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from openbss.platform.events.admin import dead_outbox_events, retry_dead_outbox_events
from openbss.platform.events.bus import NatsBus
from openbss.platform.events.consumers import ConsumerRegistry
from openbss.platform.events.outbox import OutboxEvent, emit
from openbss.platform.events.relay import OutboxRelay
from tests.conftest import bearer

OFFERING = "/tmf-api/productCatalogManagement/v4/productOffering"


@pytest.fixture
def stream() -> str:
    return f"TEST_BIG_{uuid.uuid4().hex[:8].upper()}"


async def _outbox(rt: Any, tenant: str) -> int:
    async with rt.db.transaction(tenant) as session:
        return int(await session.scalar(select(func.count()).select_from(OutboxEvent)) or 0)


async def test_a_resource_just_under_the_body_limit_is_refused_or_published(
        app: Any, rt: Any, settings: Any, nats_url: str, stream: str, tenant: str) -> None:
    """The report's case: a body just under the 1 MiB limit. Either the change is refused (413, nothing written)
    or its event reaches the broker; never accepted and then stuck."""
    assert settings.event_max_bytes + 4096 <= 1_048_576  # NATS's default max_payload
    body = {"name": "Big", "description": "x" * (settings.max_body_bytes - 200)}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        r = await client.post(OFFERING, json=body, headers=bearer(tenant, "admin"))
    assert r.status_code in (201, 413), r.text[:300]
    if r.status_code == 413:
        assert r.json()["code"] == "EVENT_TOO_LARGE" and "OPENBSS_EVENT_MAX_BYTES" in r.json()["message"]
        assert await _outbox(rt, tenant) == 0
        return
    bus = NatsBus(rt.db, ConsumerRegistry(), nats_url, stream)
    try:
        await OutboxRelay(rt.db, bus).drain()
        async with rt.db.transaction(tenant) as session:
            assert await session.scalar(select(func.count()).select_from(OutboxEvent).where(
                OutboxEvent.published_at.is_(None))) == 0
    finally:
        await (await bus.connect()).delete_stream(stream)
        await bus.close()


async def test_an_event_over_the_limit_refuses_the_change(client: httpx.AsyncClient, rt: Any, tenant: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    small = async_sessionmaker(rt.db.engine, expire_on_commit=False, autoflush=True,
                               info={"event_max_bytes": 20_000})
    monkeypatch.setattr(rt.db, "sessionmaker", small)
    h = bearer(tenant, "admin")
    r = await client.post(OFFERING, json={"name": "Big", "description": "x" * 30_000}, headers=h)
    assert r.status_code == 413, r.text[:300]
    assert r.json()["code"] == "EVENT_TOO_LARGE" and "20000 bytes" in r.json()["message"]
    r = await client.get(OFFERING, headers=h)
    assert r.json() == [] and await _outbox(rt, tenant) == 0
    r = await client.post(OFFERING, json={"name": "Small", "description": "x" * 1000}, headers=h)
    assert r.status_code == 201, r.text


def _dead_count() -> float:
    return REGISTRY.get_sample_value("openbss_outbox_dead_letters_total") or 0.0


async def test_an_event_the_broker_refuses_is_a_dead_letter_and_blocks_nothing(
        rt: Any, nats_url: str, stream: str, tenant: str) -> None:
    # an event larger than the broker accepts (written before the limit existed, or a broker configured smaller)
    async with rt.db.transaction(tenant) as session:
        event_id = uuid.uuid4()
        big = OutboxEvent(event_id=event_id, api="party", event_type="IndividualCreateEvent",
                          resource_type="Individual", resource_id="big", envelope={
                              "eventId": str(event_id), "eventTime": "2026-12-04T12:00:00.000Z",
                              "eventType": "IndividualCreateEvent",
                              "event": {"individual": {"id": "big", "note": "x" * 1_100_000}}})
        session.add(big)
        await session.flush()
        small = await emit(session, api="party", event_type="IndividualCreateEvent", resource_key="individual",
                           resource={"id": "small"})
        big_id, small_id = big.id, small.id
    before = _dead_count()
    bus = NatsBus(rt.db, ConsumerRegistry(), nats_url, stream)
    try:
        relay = OutboxRelay(rt.db, bus)
        await relay.drain()
        async with rt.db.transaction(tenant) as session:
            rows = {r.id: r for r in (await session.execute(select(OutboxEvent).where(
                OutboxEvent.id.in_([big_id, small_id])))).scalars()}
        assert rows[small_id].published_at is not None  # the one behind it went out
        assert rows[big_id].published_at is None and rows[big_id].dead_at is not None
        assert "max_payload" in (rows[big_id].last_error or "")
        assert _dead_count() == before + 1
        # never claimed again: another drain leaves it alone, counts nothing
        await relay.drain()
        assert _dead_count() == before + 1
        dead = [e for e in await dead_outbox_events(rt.db, limit=1000) if e.id == big_id]
        assert len(dead) == 1
        # the operator shrinks the event (or raises the broker's limit) and hands it back
        async with rt.db.transaction(tenant) as session:
            await session.execute(update(OutboxEvent).where(OutboxEvent.id == big_id).values(
                envelope={**rows[big_id].envelope, "event": {"individual": {"id": "big"}}}))
        assert await retry_dead_outbox_events(rt.db, [str(rows[big_id].event_id)]) == 1
        await relay.drain()
        async with rt.db.transaction(tenant) as session:
            assert (await session.get(OutboxEvent, big_id)).published_at is not None  # type: ignore[union-attr]
    finally:
        await (await bus.connect()).delete_stream(stream)
        await bus.close()
