"""An event as consumers see it, and the declaration of a consumer (a domain's reaction to events)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

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
