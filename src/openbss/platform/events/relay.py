"""The outbox relay: publishes committed outbox events, in order, and marks them published.

Several relays may run (one per worker process): each claims a batch with ``FOR UPDATE SKIP LOCKED``. A relay
woken by ``NOTIFY`` publishes within milliseconds of the commit; it also polls, so a lost notification only delays.
If a relay dies after publishing and before marking, the event is published again with the same id: JetStream
drops the duplicate (``Nats-Msg-Id``) and consumers are idempotent anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import asyncpg
from sqlalchemy import select, update

from openbss.platform.db import Database, utcnow
from openbss.platform.events.bus import EventBus, Unpublishable
from openbss.platform.events.consumers import Event
from openbss.platform.events.outbox import NOTIFY_CHANNEL, OutboxEvent
from openbss.platform.observability import OUTBOX_DEAD, OUTBOX_LAG, OUTBOX_PUBLISHED

log = logging.getLogger(__name__)


class OutboxRelay:
    def __init__(self, db: Database, bus: EventBus, *, batch_size: int = 200, poll_seconds: float = 0.2) -> None:
        self.db = db
        self.bus = bus
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._retry_at: dict[int, float] = {}  # outbox id -> when to try again (monotonic)
        self._failures: dict[int, int] = {}

    async def publish_pending(self) -> int:
        """Publish one batch; returns how many events were claimed.

        An event whose publication fails (broker down, or in embedded mode a consumer that raises) stays
        unpublished and is retried after an exponential backoff, without holding back the events behind it. An event
        whose publication cannot succeed by retrying (``Unpublishable``: larger than the broker accepts) is a dead
        letter: ``dead_at`` and ``last_error`` set, never claimed again, counted in
        ``openbss_outbox_dead_letters_total`` and logged as an error; ``openbss events outbox`` lists them,
        ``--retry`` hands them back to the relay once the cause is fixed.
        """
        now_mono = time.monotonic()
        waiting = [i for i, t in self._retry_at.items() if t > now_mono]
        async with self.db.transaction(None, system=True) as session:
            stmt = select(OutboxEvent).where(OutboxEvent.published_at.is_(None), OutboxEvent.dead_at.is_(None))
            if waiting:
                stmt = stmt.where(OutboxEvent.id.not_in(waiting))
            rows = (
                await session.execute(
                    stmt.order_by(OutboxEvent.id).limit(self.batch_size).with_for_update(skip_locked=True)
                )
            ).scalars().all()
            if not rows:
                return 0
            now = utcnow()
            published: list[int] = []
            for row in rows:
                try:
                    await self.bus.publish(Event(row.tenant_id, row.api, row.event_type, row.envelope))
                except Unpublishable as exc:
                    self._failures.pop(row.id, None)
                    self._retry_at.pop(row.id, None)
                    row.dead_at = now
                    row.last_error = str(exc)[:2000]
                    OUTBOX_DEAD.inc()
                    log.error("outbox event %s (%s of %s '%s') cannot be published and is a dead letter: %s",
                              row.event_id, row.event_type, row.resource_type, row.resource_id, exc)
                    continue
                except Exception:
                    failures = self._failures.get(row.id, 0) + 1
                    self._failures[row.id] = failures
                    self._retry_at[row.id] = time.monotonic() + min(60.0, 0.5 * 2**failures)
                    log.exception("publishing outbox event %s failed (attempt %d); will retry", row.event_id,
                                  failures)
                    continue
                self._failures.pop(row.id, None)
                self._retry_at.pop(row.id, None)
                published.append(row.id)
                OUTBOX_LAG.observe(max(0.0, (now - row.created_at).total_seconds()))
            if published:
                await session.execute(
                    update(OutboxEvent).where(OutboxEvent.id.in_(published)).values(published_at=now)
                )
        OUTBOX_PUBLISHED.inc(len(published))
        return len(rows)

    async def drain(self) -> int:
        total = 0
        while True:
            n = await self.publish_pending()
            total += n
            if n < self.batch_size:
                return total

    async def run(self, stop: asyncio.Event) -> None:
        listener = await self._listen()
        try:
            while not stop.is_set():
                # cleared before draining: a notification arriving while the batch is published wakes the next
                # round at once (cleared after, it would be lost and the events wait for the poll interval)
                self._wake.clear()
                try:
                    await self.drain()
                except Exception:
                    log.exception("outbox relay batch failed; retrying")
                    await asyncio.sleep(1)
                await self._sleep(stop)
        finally:
            if listener is not None:
                with contextlib.suppress(Exception):
                    await listener.close()

    async def _sleep(self, stop: asyncio.Event) -> None:
        """Until a NOTIFY arrives, the poll interval passes, or the relay is asked to stop."""
        waiters = [asyncio.create_task(self._wake.wait()), asyncio.create_task(stop.wait())]
        try:
            await asyncio.wait(waiters, timeout=self.poll_seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)

    async def _listen(self) -> Any:
        try:
            dsn = self.db.url.set(drivername="postgresql").render_as_string(hide_password=False)
            conn = await asyncpg.connect(dsn)
            await conn.add_listener(NOTIFY_CHANNEL, lambda *_: self._wake.set())
            return conn
        except Exception:
            log.warning("cannot LISTEN for outbox notifications; polling only", exc_info=True)
            return None
