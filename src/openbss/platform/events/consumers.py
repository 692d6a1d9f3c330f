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
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, String, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from openbss.platform.db import Base, Database, TenantScoped
from openbss.platform.events.failures import settle_failure

log = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"^\S{1,100}$")  # the broker's durable names replace what NATS does not allow


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
    """A named, idempotent reaction to events.

    ``event_types``/``apis`` select the events (None: all). ``max_attempts`` and the backoff (``retry_base_seconds``
    doubled per attempt, capped at ``retry_max_seconds``) default to the installation's settings
    (``OPENBSS_EVENT_MAX_ATTEMPTS``, ``OPENBSS_EVENT_RETRY_BASE_SECONDS``, ``OPENBSS_EVENT_RETRY_MAX_SECONDS``).
    ``domain`` names the domain that reacts (shown by ``openbss events list``).
    """

    name: str
    handler: Handler
    event_types: frozenset[str] | None = None  # None: every event
    apis: frozenset[str] | None = None
    after_commit: AfterCommit | None = None
    domain: str | None = None
    max_attempts: int | None = None
    retry_base_seconds: float | None = None
    retry_max_seconds: float | None = None

    def __post_init__(self) -> None:
        if not NAME_PATTERN.match(self.name):
            raise ValueError(f"consumer name {self.name!r}: 1 to 100 characters, no spaces")
        if self.event_types is not None and not self.event_types:
            raise ValueError(f"consumer {self.name!r}: event_types is empty (None means every event)")
        if self.apis is not None and not self.apis:
            raise ValueError(f"consumer {self.name!r}: apis is empty (None means every API)")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError(f"consumer {self.name!r}: max_attempts must be at least 1")

    def wants(self, event: Event) -> bool:
        return (self.event_types is None or event.event_type in self.event_types) and (
            self.apis is None or event.api in self.apis
        )


def subscription(domain: str, name: str, handler: Handler, *, on: Iterable[str], apis: Iterable[str] | None = None,
                 after_commit: AfterCommit | None = None, max_attempts: int | None = None,
                 retry_base_seconds: float | None = None, retry_max_seconds: float | None = None) -> Consumer:
    """A domain's reaction to other domains' events: the consumer ``<domain>.<name>`` runs ``handler`` for each
    event whose type is in ``on`` (and whose API is in ``apis``, when given).

    The handler runs in its own transaction, bound to the event's tenant, and must tolerate redelivery: the
    platform skips an event the consumer already processed, but an operator's ``replay --force`` or an old event
    arriving after a newer one must leave the state as it is (compare with the current state, upsert, ignore what
    is stale).
    """
    types = frozenset(on)
    if not types:
        raise ValueError(f"subscription {domain}.{name}: name the event types it consumes")
    for part in (domain, name):
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", part):
            raise ValueError(f"subscription {domain}.{name}: letters, digits, '_' and '-' only")
    return Consumer(name=f"{domain}.{name}", handler=handler, event_types=types,
                    apis=frozenset(apis) if apis is not None else None, after_commit=after_commit, domain=domain,
                    max_attempts=max_attempts, retry_base_seconds=retry_base_seconds,
                    retry_max_seconds=retry_max_seconds)


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
