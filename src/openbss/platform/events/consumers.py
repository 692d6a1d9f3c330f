"""Event consumers: named handlers run at least once and made idempotent by a processed-events record.

A handler runs inside a transaction bound to the event's tenant. Before it runs, the pair (consumer, event id) is
inserted into ``processed_event``; if it was already there, the event was handled before (a redelivery after a
crash between commit and acknowledgement) and the handler is skipped. Effects and the record commit together, so
an event is handled exactly once in effect.

A domain declares its reactions with ``subscription(domain, name, handler, on={...})``: a ``Consumer`` that names
the domain and the event types it consumes. What happens when a handler fails (retries with exponential backoff,
then a dead letter) is in ``delivery.py``; the policy is ``RetryPolicy`` (settings, overridable per consumer).
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from sqlalchemy import DateTime, String, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Mapped, mapped_column

from openbss.platform.db import Base, Database, TenantScoped
from openbss.platform.events.event import AfterCommit, Consumer, Event, Handler, subscription
from openbss.platform.events.failures import settle_failure

__all__ = ["AfterCommit", "Consumer", "ConsumerRegistry", "Event", "Handler", "ProcessedEvent", "process",
           "subscription"]

log = logging.getLogger(__name__)

class ProcessedEvent(TenantScoped, Base):
    __tablename__ = "processed_event"

    consumer: Mapped[str] = mapped_column(String(100), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ConsumerRegistry:
    def __init__(self) -> None:
        self._consumers: dict[str, Consumer] = {}

    def register(self, consumer: Consumer) -> None:
        self._consumers[consumer.name] = consumer

    def unregister(self, name: str) -> None:
        self._consumers.pop(name, None)

    def all(self) -> list[Consumer]:
        return list(self._consumers.values())

    def get(self, name: str) -> Consumer:
        return self._consumers[name]

    def find(self, name: str) -> Consumer | None:
        return self._consumers.get(name)

    def interested(self, event: Event) -> list[Consumer]:
        return [c for c in self._consumers.values() if c.wants(event)]


async def process(db: Database, consumer: Consumer, event: Event, *, force: bool = False,
                  settle: str | None = None, settled_by: str | None = None) -> bool:
    """Run ``consumer`` for ``event`` once in effect. Returns False when it had already been processed.

    ``settle`` (``resolved`` or ``replayed``): close an open failure record of this consumer and event in the same
    transaction (a retry or a replay that succeeds, or finds the event already processed).
    """
    if not consumer.wants(event):
        return False
    async with db.transaction(event.tenant_id) as session:
        stmt = (
            insert(ProcessedEvent)
            .values(consumer=consumer.name, event_id=uuid.UUID(event.event_id))
            .on_conflict_do_nothing()
            .returning(ProcessedEvent.event_id)
        )
        first_time = (await session.execute(stmt)).first() is not None
        ran = first_time or force
        if ran:
            await consumer.handler(session, event)
        if settle is not None:
            await settle_failure(session, consumer.name, event.event_id, settle, settled_by or settle)
    if not ran:
        log.info("event already processed", extra={"consumer": consumer.name, "event_id": event.event_id})
        return False
    if consumer.after_commit is not None:
        try:
            await consumer.after_commit(event)
        except Exception:  # the durable state is committed; the after-commit nudge is best effort
            log.exception("after-commit hook failed", extra={"consumer": consumer.name})
    return True


async def already_processed(db: Database, consumer: Consumer, event: Event) -> bool:
    """Whether ``consumer`` has committed its handling of ``event``."""
    async with db.transaction(event.tenant_id) as session:
        found = await session.scalar(select(ProcessedEvent.event_id).where(
            ProcessedEvent.consumer == consumer.name, ProcessedEvent.event_id == uuid.UUID(event.event_id)))
    return found is not None
