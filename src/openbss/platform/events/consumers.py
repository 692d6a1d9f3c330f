"""Event consumers: named handlers run at least once and made idempotent by a processed-events record.

A handler runs inside a transaction bound to the event's tenant. Before it runs, the pair (consumer, event id) is
inserted into ``processed_event``; if it was already there, the event was handled before (a redelivery after a
crash between commit and acknowledgement) and the handler is skipped. Effects and the record commit together, so
an event is handled exactly once in effect.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, String, func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from openbss.platform.db import Base, Database, TenantScoped

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    tenant_id: str
    api: str
    event_type: str
    envelope: dict[str, Any]

    @property
    def event_id(self) -> str:
        return str(self.envelope["eventId"])


Handler = Callable[[AsyncSession, Event], Awaitable[None]]
AfterCommit = Callable[[Event], Awaitable[None]]


@dataclass(frozen=True)
class Consumer:
    name: str
    handler: Handler
    event_types: frozenset[str] | None = None  # None: every event
    apis: frozenset[str] | None = None
    after_commit: AfterCommit | None = None

    def wants(self, event: Event) -> bool:
        return (self.event_types is None or event.event_type in self.event_types) and (
            self.apis is None or event.api in self.apis
        )


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


async def process(db: Database, consumer: Consumer, event: Event, *, force: bool = False) -> bool:
    """Run ``consumer`` for ``event`` once in effect. Returns False when it had already been processed."""
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
        if not first_time and not force:
            log.info("event already processed", extra={"consumer": consumer.name, "event_id": event.event_id})
            return False
        await consumer.handler(session, event)
    if consumer.after_commit is not None:
        try:
            await consumer.after_commit(event)
        except Exception:  # the durable state is committed; the after-commit nudge is best effort
            log.exception("after-commit hook failed", extra={"consumer": consumer.name})
    return True
