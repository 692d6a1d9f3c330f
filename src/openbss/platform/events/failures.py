"""Failed deliveries of events to consumers: the retry policy and the durable failure record (dead letters).

When a consumer's handler raises, its transaction rolls back (effects and processed-event record together) and
the failure is recorded in ``event_failure``, one row per (consumer, event), holding the event's envelope, the
number of attempts, the last error and its traceback:

- ``retrying``: another attempt will come after an exponential backoff (embedded mode: at ``next_attempt_at``,
  driven by the worker; JetStream: the message was negatively acknowledged with that delay);
- ``dead``: the last attempt failed; nothing retries it any more. An operator inspects it and replays it
  (``openbss events replay <id>``) once the cause is fixed, or closes it (``openbss events resolve <id>``);
- ``replayed``: an operator's replay succeeded (or found the event already processed);
- ``resolved``: a later attempt succeeded on its own, or an operator closed the record without replaying.

Settled records (replayed, resolved) are purged with the outbox, after ``OPENBSS_OUTBOX_RETENTION_DAYS``.
"""

from __future__ import annotations

import traceback
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Identity,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    delete,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from openbss.platform.db import Base, Database, TenantScoped, utcnow

if TYPE_CHECKING:
    from openbss.platform.events.event import Consumer, Event
    from openbss.settings import Settings

RETRYING, DEAD, REPLAYED, RESOLVED = "retrying", "dead", "replayed", "resolved"
STATES = (RETRYING, DEAD, REPLAYED, RESOLVED)
OPEN_STATES = (RETRYING, DEAD)

DEAD_LETTERS = Counter("openbss_event_dead_letters_total",
                       "Events a consumer gave up on after its last attempt (dead letters)", ["consumer"])
HANDLER_FAILURES = Counter("openbss_event_handler_failures_total",
                           "Failed attempts of a consumer on an event (each is retried or dead-lettered)", ["consumer"])

MAX_ERROR_CHARS = 2000
MAX_TRACEBACK_CHARS = 16000


@dataclass(frozen=True)
class RetryPolicy:
    """How often a consumer tries an event, and how long it waits in between: ``base * 2^(attempt-1)`` seconds
    after the attempt that failed, at most ``max_seconds``. After ``max_attempts`` failed attempts the event is
    dead-lettered."""

    max_attempts: int = 10
    base_seconds: float = 1.0
    max_seconds: float = 600.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(settings.event_max_attempts, settings.event_retry_base_seconds, settings.event_retry_max_seconds)

    def for_consumer(self, consumer: Consumer) -> RetryPolicy:
        return RetryPolicy(
            consumer.max_attempts or self.max_attempts,
            consumer.retry_base_seconds if consumer.retry_base_seconds is not None else self.base_seconds,
            consumer.retry_max_seconds if consumer.retry_max_seconds is not None else self.max_seconds,
        )

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return float(min(self.max_seconds, self.base_seconds * 2 ** max(0, min(attempt - 1, 60))))


class EventFailure(TenantScoped, Base):
    __tablename__ = "event_failure"
    __table_args__ = (
        UniqueConstraint("consumer", "event_id"),
        CheckConstraint("state IN ('retrying', 'dead', 'replayed', 'resolved')", name="state"),
        Index("ix_event_failure_due", "next_attempt_at",
              postgresql_where=text("state = 'retrying' AND next_attempt_at IS NOT NULL")),
        Index("ix_event_failure_state_consumer", "state", "consumer"),
        {"comment": "a consumer that failed to handle an event: retrying, dead-lettered, replayed or resolved"},
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    consumer: Mapped[str] = mapped_column(String(100))
    event_id: Mapped[uuid.UUID] = mapped_column()
    api: Mapped[str] = mapped_column(String(100))
    event_type: Mapped[str] = mapped_column(String(150))
    envelope: Mapped[dict[str, Any]] = mapped_column(JSONB)
    state: Mapped[str] = mapped_column(String(10))
    attempts: Mapped[int] = mapped_column(Integer)
    max_attempts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str] = mapped_column(Text)
    last_traceback: Mapped[str | None] = mapped_column(Text)
    #: the event's position in the JetStream stream (scaled mode)
    stream_seq: Mapped[int | None] = mapped_column(BigInteger)
    first_failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    #: embedded mode: when the worker tries again; NULL when the broker redelivers or nothing will
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    settled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    settled_by: Mapped[str | None] = mapped_column(String(200))

    def event(self) -> Event:
        from openbss.platform.events.event import Event

        return Event(self.tenant_id, self.api, self.event_type, self.envelope)


def describe_error(error: BaseException) -> tuple[str, str]:
    """The error's one-line description and its (tail-truncated) traceback."""
    line = f"{type(error).__name__}: {error}"[:MAX_ERROR_CHARS]
    tb = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return line, tb[-MAX_TRACEBACK_CHARS:]


@dataclass(frozen=True)
class Recorded:
    id: int
    state: str
    attempts: int
    #: this call moved the record to ``dead`` (counted once, even when several workers record the same end)
    newly_dead: bool


async def record_failure(db: Database, consumer: str, event: Event, *, attempt: int, max_attempts: int,
                         error: BaseException | str, retry_in: float | None,
                         stream_seq: int | None = None, only_if_open: bool = False) -> Recorded:
    """Record failed attempt number ``attempt`` of ``consumer`` on ``event`` (in its own transaction, the
    handler's having rolled back). The record is dead when ``attempt >= max_attempts``; otherwise it is retrying,
    with ``next_attempt_at`` in ``retry_in`` seconds (None: the broker redelivers).

    ``only_if_open``: leave a record that is already dead or settled as it is (a broker's report that arrives
    after the worker recorded the end itself).
    """
    if isinstance(error, BaseException):
        message, tb = describe_error(error)
    else:
        message, tb = error[:MAX_ERROR_CHARS], None
    event_uuid = uuid.UUID(event.event_id)
    dead = attempt >= max_attempts
    now = utcnow()
    async with db.transaction(event.tenant_id) as session:
        where = (EventFailure.consumer == consumer, EventFailure.event_id == event_uuid)
        row = (await session.execute(select(EventFailure).where(*where).with_for_update())).scalar_one_or_none()
        if row is None:
            # (ON CONFLICT: another worker recorded it at the same moment; then its row is updated below)
            await session.execute(
                insert(EventFailure).values(
                    consumer=consumer, event_id=event_uuid, api=event.api, event_type=event.event_type,
                    envelope=event.envelope, state=RETRYING, attempts=0, max_attempts=max_attempts,
                    last_error=message, stream_seq=stream_seq, first_failed_at=now, last_failed_at=now,
                ).on_conflict_do_nothing())
            row = (await session.execute(select(EventFailure).where(*where).with_for_update())).scalar_one()
        if only_if_open and row.state != RETRYING:
            return Recorded(row.id, row.state, row.attempts, False)
        was_dead = row.state == DEAD
        state = DEAD if dead else RETRYING
        await session.execute(update(EventFailure).where(EventFailure.id == row.id).values(
            state=state, attempts=attempt,
            max_attempts=max_attempts, last_error=message, last_traceback=tb, last_failed_at=now,
            next_attempt_at=None if dead or retry_in is None else now + timedelta(seconds=retry_in),
            stream_seq=stream_seq if stream_seq is not None else row.stream_seq, settled_at=None, settled_by=None,
        ))
        result = Recorded(row.id, state, attempt, dead and not was_dead)
    HANDLER_FAILURES.labels(consumer).inc()
    if result.newly_dead:
        DEAD_LETTERS.labels(consumer).inc()
    return result


async def settle_failure(session: AsyncSession, consumer: str, event_id: str, state: str, by: str) -> int:
    """Close the open failure record of ``consumer`` on ``event_id`` (in the caller's transaction)."""
    res = await session.execute(
        update(EventFailure)
        .where(EventFailure.consumer == consumer, EventFailure.event_id == uuid.UUID(event_id),
               EventFailure.state.in_(OPEN_STATES))
        .values(state=state, settled_at=utcnow(), settled_by=by[:200], next_attempt_at=None)
    )
    return int(getattr(res, "rowcount", 0) or 0)


async def record_replay_failure(db: Database, failure_id: int, tenant_id: str, error: BaseException) -> None:
    """An operator's replay failed: count the attempt and keep the error; the record stays as it was (dead)."""
    message, tb = describe_error(error)
    async with db.transaction(tenant_id) as session:
        await session.execute(update(EventFailure).where(EventFailure.id == failure_id).values(
            attempts=EventFailure.attempts + 1, last_error=message, last_traceback=tb, last_failed_at=utcnow()))


async def claim_due(db: Database, *, limit: int = 50, lease_seconds: float = 120.0) -> list[EventFailure]:
    """Embedded mode: take the retrying records whose time has come (``SKIP LOCKED``: several workers share them),
    pushing their ``next_attempt_at`` by a lease so that a worker that dies mid-retry only delays them."""
    async with db.transaction(None, system=True) as session:
        due = (
            select(EventFailure.id)
            .where(EventFailure.state == RETRYING, EventFailure.next_attempt_at.is_not(None),
                   EventFailure.next_attempt_at <= func.now())
            .order_by(EventFailure.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = (await session.execute(
            update(EventFailure)
            .where(EventFailure.id.in_(due.scalar_subquery()))
            .values(next_attempt_at=func.now() + timedelta(seconds=lease_seconds))
            .returning(EventFailure)
        )).scalars().all()
        return list(rows)


async def next_due_in(db: Database) -> float | None:
    """Seconds until the next embedded-mode retry is due (0 if overdue), None when none is scheduled."""
    async with db.transaction(None, system=True) as session:
        at = await session.scalar(
            select(func.min(EventFailure.next_attempt_at))
            .where(EventFailure.state == RETRYING, EventFailure.next_attempt_at.is_not(None)))
    if at is None:
        return None
    return max(0.0, (at - utcnow()).total_seconds())


async def purge_settled(session: AsyncSession, keep: timedelta) -> int:
    """Delete replayed and resolved records settled more than ``keep`` ago (system scope)."""
    res = await session.execute(delete(EventFailure).where(
        EventFailure.state.in_((REPLAYED, RESOLVED)), EventFailure.settled_at < func.now() - keep))
    return int(getattr(res, "rowcount", 0) or 0)
