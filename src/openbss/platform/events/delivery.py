"""One attempt of one consumer on one event, and what follows a failure: a retry after a backoff, or a dead letter.

Both buses use ``deliver``: the in-process bus (embedded mode) for the first attempt, right after the relay reads
the committed event, and ``RetrySweeper`` for the next ones at their ``next_attempt_at``; the NATS bus for every
delivery JetStream makes (it then naks with the delay, or terms the message once the record is dead). A failing
consumer is retried on its own: the other consumers of the same event are not run again and the relay is not
held back.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from dataclasses import dataclass

from openbss.platform.db import Database
from openbss.platform.events.consumers import Consumer, ConsumerRegistry, Event, process
from openbss.platform.events.failures import (
    DEAD,
    RESOLVED,
    RetryPolicy,
    claim_due,
    next_due_in,
    record_failure,
    settle_failure,
)

log = logging.getLogger(__name__)


class Outcome(enum.Enum):
    DONE = "done"  # the handler ran and committed
    SKIPPED = "skipped"  # already processed, or not an event this consumer wants
    RETRY = "retry"  # failed; another attempt follows after ``retry_in`` seconds
    DEAD = "dead"  # failed for the last time; dead-lettered


@dataclass(frozen=True)
class Delivery:
    outcome: Outcome
    retry_in: float | None = None
    failure_id: int | None = None


async def deliver(db: Database, consumer: Consumer, event: Event, policy: RetryPolicy, *, attempt: int,
                  broker_retries: bool, stream_seq: int | None = None) -> Delivery:
    """Attempt number ``attempt`` (1-based) of ``consumer`` on ``event``.

    A failure is recorded (retrying or dead) and reported in the result, never raised; only a failure to record
    it (the database is unreachable) raises, so that the caller retries the whole delivery later.
    ``broker_retries``: the broker schedules the next attempt (JetStream), not ``next_attempt_at``.
    """
    p = policy.for_consumer(consumer)
    try:
        ran = await process(db, consumer, event, settle=RESOLVED if attempt > 1 else None, settled_by="retry")
    except Exception as exc:
        delay = p.delay(attempt)
        rec = await record_failure(db, consumer.name, event, attempt=attempt, max_attempts=p.max_attempts,
                                   error=exc, retry_in=None if broker_retries else delay, stream_seq=stream_seq)
        if rec.state == DEAD:
            log.error("consumer %s failed on event %s for the last time (attempt %d of %d): dead letter %d",
                      consumer.name, event.event_id, attempt, p.max_attempts, rec.id, exc_info=exc)
            return Delivery(Outcome.DEAD, None, rec.id)
        log.warning("consumer %s failed on event %s (attempt %d of %d); next attempt in %.1f s",
                    consumer.name, event.event_id, attempt, p.max_attempts, delay, exc_info=exc)
        return Delivery(Outcome.RETRY, delay, rec.id)
    return Delivery(Outcome.DONE if ran else Outcome.SKIPPED)


class RetrySweeper:
    """Embedded mode's retry driver: runs the retrying failures whose ``next_attempt_at`` has come.

    Several workers may run it: each claims its records with ``SKIP LOCKED`` and a lease.
    """

    def __init__(self, db: Database, registry: ConsumerRegistry, policy: RetryPolicy, *, batch_size: int = 50,
                 poll_seconds: float = 1.0, lease_seconds: float = 120.0) -> None:
        self.db = db
        self.registry = registry
        self.policy = policy
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.lease_seconds = lease_seconds

    async def run_due(self) -> int:
        """Run one batch of due retries; returns how many were claimed."""
        rows = await claim_due(self.db, limit=self.batch_size, lease_seconds=self.lease_seconds)
        for row in rows:
            event = row.event()
            consumer = self.registry.find(row.consumer)
            if consumer is None:  # another version of the worker knows it; or it was removed (an operator resolves)
                log.warning("no consumer named %s in this process; failure %d waits", row.consumer, row.id)
                continue
            if not consumer.wants(event):
                async with self.db.transaction(row.tenant_id) as session:
                    await settle_failure(session, consumer.name, event.event_id, RESOLVED,
                                         "retry: the consumer no longer subscribes to this event")
                continue
            try:
                await deliver(self.db, consumer, event, self.policy, attempt=row.attempts + 1, broker_retries=False)
            except Exception:  # not even recorded (database trouble): the lease brings it back
                log.exception("retry of failure %d could not be recorded", row.id)
        return len(rows)

    async def drain(self) -> int:
        total = 0
        while True:
            n = await self.run_due()
            total += n
            if n < self.batch_size:
                return total

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            wait = self.poll_seconds
            try:
                await self.drain()
                due = await next_due_in(self.db)
                if due is not None:
                    wait = min(wait, max(0.01, due))
            except Exception:
                log.exception("retrying failed event deliveries failed; trying again")
            try:
                await asyncio.wait_for(stop.wait(), wait)
            except TimeoutError:
                pass
