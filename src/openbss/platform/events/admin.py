"""What an operator does with the event backbone (``openbss events ...``): see every consumer and its lanes on the
broker, list and inspect failed deliveries, replay dead letters (idempotently) or close them, replay the stream.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, func, select, update

from openbss.platform.db import Database, utcnow
from openbss.platform.events.bus import EventBus, NatsBus, lanes_of
from openbss.platform.events.consumers import Consumer, ConsumerRegistry, Event, process
from openbss.platform.events.failures import (
    DEAD,
    OPEN_STATES,
    REPLAYED,
    RESOLVED,
    STATES,
    EventFailure,
    RetryPolicy,
    describe_error,
    record_replay_failure,
)
from openbss.platform.events.outbox import OutboxEvent


class FailureNotFound(LookupError):
    pass


class UnknownConsumer(LookupError):
    pass


# --- consumers and lanes ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LaneState:
    durable: str
    event_type: str | None
    api: str | None
    filter_subject: str | None = None
    exists: bool | None = None  # None: embedded mode (no broker)
    pending: int | None = None  # messages not yet delivered to the lane
    ack_pending: int | None = None  # delivered, not yet acknowledged (in a handler, or waiting for a retry)
    redelivered: int | None = None  # of those unacknowledged, delivered more than once
    max_deliver: int | None = None


@dataclass(frozen=True)
class ConsumerReport:
    name: str
    domain: str | None
    event_types: tuple[str, ...] | None
    apis: tuple[str, ...] | None
    policy: RetryPolicy
    lanes: list[LaneState]
    failures: dict[str, int] = field(default_factory=dict)  # open failures per state


@dataclass(frozen=True)
class BrokerReport:
    stream: str
    messages: int
    first_seq: int
    last_seq: int
    #: durable consumers on the stream that no registered consumer uses any more (delete them when sure)
    orphaned: list[str]


async def failure_counts(db: Database) -> dict[str, dict[str, int]]:
    """Open failures (retrying, dead) per consumer and state, every tenant."""
    async with db.transaction(None, system=True) as session:
        rows = (await session.execute(
            select(EventFailure.consumer, EventFailure.state, func.count())
            .where(EventFailure.state.in_(OPEN_STATES))
            .group_by(EventFailure.consumer, EventFailure.state))).tuples().all()
    out: dict[str, dict[str, int]] = {}
    for consumer, state, n in rows:
        out.setdefault(consumer, {})[state] = int(n)
    return out


async def describe_consumers(db: Database, registry: ConsumerRegistry, policy: RetryPolicy,
                             bus: EventBus | None = None) -> tuple[list[ConsumerReport], BrokerReport | None]:
    """Every registered consumer with its event types, retry policy, open failures and, on JetStream, the state of
    each of its durable consumers (read only: lanes are created by the workers)."""
    counts = await failure_counts(db)
    nats = bus if isinstance(bus, NatsBus) else None
    infos: dict[str, Any] = {}
    broker: BrokerReport | None = None
    if nats is not None:
        js = await nats.connect()
        stream = await js.stream_info(nats.stream)
        for info in await js.consumers_info(nats.stream):
            infos[info.name] = info
        known = {lane.durable for c in registry.all() for lane in lanes_of(c)}
        broker = BrokerReport(nats.stream, int(stream.state.messages), int(stream.state.first_seq),
                              int(stream.state.last_seq),
                              sorted(n for n, i in infos.items() if n not in known and i.config.durable_name))
    reports = []
    for consumer in sorted(registry.all(), key=lambda c: c.name):
        lanes = []
        for lane in lanes_of(consumer):
            if nats is None:
                lanes.append(LaneState(lane.durable, lane.event_type, lane.api))
                continue
            info = infos.get(lane.durable)
            subject = lane.filter_subject(nats.subject_prefix)
            if info is None:
                lanes.append(LaneState(lane.durable, lane.event_type, lane.api, subject, exists=False))
                continue
            lanes.append(LaneState(
                lane.durable, lane.event_type, lane.api, info.config.filter_subject or subject, exists=True,
                pending=int(info.num_pending or 0), ack_pending=int(info.num_ack_pending or 0),
                redelivered=int(info.num_redelivered or 0), max_deliver=info.config.max_deliver))
        reports.append(ConsumerReport(
            consumer.name, consumer.domain,
            tuple(sorted(consumer.event_types)) if consumer.event_types is not None else None,
            tuple(sorted(consumer.apis)) if consumer.apis is not None else None,
            policy.for_consumer(consumer), lanes, counts.get(consumer.name, {})))
    return reports, broker


# --- failures --------------------------------------------------------------------------------------------------
def parse_states(state: str | None) -> tuple[str, ...]:
    """``open`` (default: retrying and dead), ``all``, or one or more states separated by commas."""
    if state in (None, "", "open"):
        return OPEN_STATES
    if state == "all":
        return STATES
    states = tuple(s.strip() for s in state.split(",") if s.strip())
    bad = [s for s in states if s not in STATES]
    if bad:
        raise ValueError(f"unknown state '{bad[0]}': use open, all, or {', '.join(STATES)}")
    return states


async def list_failures(db: Database, *, consumer: str | None = None, tenant: str | None = None,
                        states: Sequence[str] = OPEN_STATES, limit: int = 100,
                        offset: int = 0) -> tuple[list[EventFailure], int]:
    """Failures matching the filters, most recent first, and how many match in all."""
    conditions: list[ColumnElement[bool]] = [EventFailure.state.in_(tuple(states))]
    if consumer:
        conditions.append(EventFailure.consumer == consumer)
    if tenant:
        conditions.append(EventFailure.tenant_id == tenant)
    async with db.transaction(tenant, system=tenant is None) as session:
        total = int(await session.scalar(select(func.count()).select_from(EventFailure).where(*conditions)) or 0)
        rows = (await session.execute(
            select(EventFailure).where(*conditions)
            .order_by(EventFailure.last_failed_at.desc(), EventFailure.id.desc())
            .limit(limit).offset(offset))).scalars().all()
    return list(rows), total


async def get_failure(db: Database, failure_id: int) -> EventFailure:
    async with db.transaction(None, system=True) as session:
        row = await session.get(EventFailure, failure_id)
    if row is None:
        raise FailureNotFound(f"no event failure {failure_id}")
    return row


@dataclass(frozen=True)
class ReplayResult:
    failure_id: int
    consumer: str
    tenant_id: str
    event_id: str
    #: replayed (the handler ran and committed) · already processed (nothing to do; the record is closed) ·
    #: already settled (the record was replayed or resolved before; nothing done) · failed (the handler raised;
    #: the record stays as it was, with the new error) · not subscribed (the consumer no longer wants the event)
    outcome: str
    error: str | None = None


async def replay_failure(db: Database, registry: ConsumerRegistry, failure_id: int, *, force: bool = False,
                         by: str = "operator") -> ReplayResult:
    """Run the consumer of failure ``failure_id`` on its event again, now. Idempotent: the processed-event record
    guards the effects (a second replay, or a replay of an event that was handled meanwhile, does nothing) unless
    ``force``. On success the record becomes ``replayed`` in the handler's transaction."""
    row = await get_failure(db, failure_id)

    def result(outcome: str, error: str | None = None) -> ReplayResult:
        return ReplayResult(row.id, row.consumer, row.tenant_id, str(row.event_id), outcome, error)

    if row.state not in OPEN_STATES and not force:
        return result(f"already {row.state}")
    consumer = registry.find(row.consumer)
    if consumer is None:
        known = ", ".join(sorted(c.name for c in registry.all())) or "none"
        raise UnknownConsumer(f"no consumer named '{row.consumer}' is registered (known: {known})")
    event = row.event()
    if not consumer.wants(event):
        return result("not subscribed")
    try:
        ran = await process(db, consumer, event, force=force, settle=REPLAYED, settled_by=f"replay by {by}")
    except Exception as exc:
        await record_replay_failure(db, row.id, row.tenant_id, exc)
        return result("failed", describe_error(exc)[0])
    return result("replayed" if ran else "already processed")


async def _settle(db: Database, row: EventFailure, state: str, by: str) -> None:
    async with db.transaction(row.tenant_id) as session:
        await session.execute(update(EventFailure).where(EventFailure.id == row.id).values(
            state=state, settled_at=utcnow(), settled_by=by[:200], next_attempt_at=None))


async def replay_failures(db: Database, registry: ConsumerRegistry, *, consumer: str | None = None,
                          tenant: str | None = None, states: Sequence[str] = (DEAD,), force: bool = False,
                          by: str = "operator",
                          on_result: Callable[[ReplayResult, int], None] | None = None) -> list[ReplayResult]:
    """Replay every failure matching the filters (dead letters by default), oldest first, one by one.
    ``on_result(result, total)`` is called after each (progress)."""
    if consumer is not None and registry.find(consumer) is None:
        known = ", ".join(sorted(c.name for c in registry.all())) or "none"
        raise UnknownConsumer(f"no consumer named '{consumer}' is registered (known: {known})")
    conditions: list[ColumnElement[bool]] = [EventFailure.state.in_(tuple(states))]
    if consumer:
        conditions.append(EventFailure.consumer == consumer)
    if tenant:
        conditions.append(EventFailure.tenant_id == tenant)
    async with db.transaction(tenant, system=tenant is None) as session:
        ids = list((await session.execute(
            select(EventFailure.id).where(*conditions).order_by(EventFailure.id))).scalars().all())
    results = []
    for failure_id in ids:
        result = await replay_failure(db, registry, failure_id, force=force, by=by)
        results.append(result)
        if on_result is not None:
            on_result(result, len(ids))
    return results


async def resolve_failure(db: Database, failure_id: int, *, note: str, by: str = "operator") -> EventFailure:
    """Close an open failure without running the consumer (the operator handled it otherwise)."""
    row = await get_failure(db, failure_id)
    if row.state not in OPEN_STATES:
        raise ValueError(f"event failure {failure_id} is already {row.state}")
    await _settle(db, row, RESOLVED, f"{by}: {note}")
    return await get_failure(db, failure_id)


# --- the stream ------------------------------------------------------------------------------------------------
@dataclass
class StreamReplay:
    seen: int = 0
    handled: int = 0
    failed: list[tuple[int, str, str]] = field(default_factory=list)  # (stream sequence, consumer, error)


async def replay_stream(db: Database, bus: NatsBus, targets: Sequence[Consumer], *, from_seq: int,
                        to_seq: int | None = None, force: bool = False) -> StreamReplay:
    """Read the stream from ``from_seq`` through ``targets`` (idempotently unless ``force``). A handler that
    fails is reported, not retried; the others go on."""
    out = StreamReplay()

    async def handle(event: Event, seq: int) -> None:
        for consumer in targets:
            try:
                if await process(db, consumer, event, force=force, settle=RESOLVED, settled_by="stream replay"):
                    out.handled += 1
            except Exception as exc:
                out.failed.append((seq, consumer.name, describe_error(exc)[0]))

    out.seen = await bus.replay(from_seq, handle, to_seq)
    return out


def event_of(row: EventFailure) -> dict[str, Any]:
    """A failure as data (``openbss events inspect --json``)."""
    return {
        "id": row.id, "state": row.state, "consumer": row.consumer, "tenant": row.tenant_id,
        "eventId": str(row.event_id), "api": row.api, "eventType": row.event_type, "attempts": row.attempts,
        "maxAttempts": row.max_attempts, "lastError": row.last_error, "traceback": row.last_traceback,
        "streamSequence": row.stream_seq, "firstFailedAt": _iso(row.first_failed_at),
        "lastFailedAt": _iso(row.last_failed_at), "nextAttemptAt": _iso(row.next_attempt_at),
        "settledAt": _iso(row.settled_at), "settledBy": row.settled_by, "event": row.envelope,
    }


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


__all__ = ["BrokerReport", "ConsumerReport", "FailureNotFound", "LaneState", "ReplayResult", "StreamReplay",
           "UnknownConsumer", "describe_consumers", "event_of", "get_failure", "list_failures", "parse_states",
           "replay_failure", "replay_failures", "replay_stream", "resolve_failure"]


# --- the relay's dead letters: outbox events that could not be published ---------------------------------------
async def dead_outbox_events(db: Database, *, limit: int = 100) -> list[OutboxEvent]:
    """The outbox events the relay gave up (oldest first): what could not be published, and why."""
    async with db.transaction(None, system=True) as session:
        return list((await session.execute(
            select(OutboxEvent).where(OutboxEvent.dead_at.is_not(None), OutboxEvent.published_at.is_(None))
            .order_by(OutboxEvent.id).limit(limit))).scalars().all())


async def retry_dead_outbox_events(db: Database, event_ids: Sequence[str] | None = None) -> int:
    """Hand dead outbox events back to the relay (all, or those of ``event_ids``), once their cause is fixed (e.g.
    the broker's max_payload raised); returns how many."""
    async with db.transaction(None, system=True) as session:
        stmt = (update(OutboxEvent).where(OutboxEvent.dead_at.is_not(None), OutboxEvent.published_at.is_(None))
                .values(dead_at=None))
        if event_ids:
            stmt = stmt.where(OutboxEvent.event_id.in_([uuid.UUID(e) for e in event_ids]))
        result = await session.execute(stmt)
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
