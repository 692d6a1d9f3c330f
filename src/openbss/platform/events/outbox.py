"""Transactional outbox: events are rows written in the same transaction as the change they describe.

A relay publishes them after commit (to NATS JetStream, or to in-process consumers in embedded mode).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Identity, Index, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from openbss.platform.db import Base, JsonText, TenantScoped, format_datetime, insert_rows, json_dumps, utcnow
from openbss.platform.errors import PayloadTooLarge

NOTIFY_CHANNEL = "openbss_outbox"


class OutboxEvent(TenantScoped, Base):
    __tablename__ = "outbox_event"
    __table_args__ = (
        Index("ix_outbox_event_unpublished", "id", postgresql_where=text("published_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    api: Mapped[str] = mapped_column(String(100))
    event_type: Mapped[str] = mapped_column(String(150))
    resource_type: Mapped[str] = mapped_column(String(100))
    resource_id: Mapped[str] = mapped_column(String(100))
    envelope: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: set when the relay gave the event up: publishing it cannot succeed by retrying (a dead letter)
    dead_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)


def subject_for(tenant_id: str, api: str, event_type: str, *, prefix: str = "openbss.events") -> str:
    """The broker subject of an event: ``<prefix>.<tenant>.<api>.<eventType>``."""
    return f"{prefix}.{tenant_id}.{api}.{event_type}"


def _envelope(session: AsyncSession, event_id: uuid.UUID, event_type: str, resource_key: str,
              resource: dict[str, Any], resource_type: str | None) -> dict[str, Any]:
    envelope = {
        "eventId": str(event_id),
        "eventTime": format_datetime(utcnow()),
        "eventType": event_type,
        "event": {resource_key: resource},
    }
    limit = session.info.get("event_max_bytes")
    if limit:
        _check_size(len(json_dumps(envelope).encode()), limit, event_type, resource_key, resource, resource_type)
    return envelope


def _check_size(size: int, limit: int, event_type: str, resource_key: str, resource: dict[str, Any],
                resource_type: str | None) -> None:
    if size > limit:
        raise PayloadTooLarge(
            f"{resource_type or resource_key} '{resource.get('id', '')}': its {event_type} would be {size} bytes, "
            f"over the largest publishable event ({limit} bytes, OPENBSS_EVENT_MAX_BYTES): the change is refused "
            "so that no accepted change is left unannounced", code="EVENT_TOO_LARGE")


async def emit_many(session: AsyncSession, *, api: str, resource_key: str,
                    events: list[tuple[str, dict[str, Any]]], resource_type: str | None = None) -> None:
    """``emit`` for many events of one resource type at once (``(event_type, resource)`` each, in order): the
    same envelopes and checks, written in multi-row inserts, the relay woken once. Each envelope is encoded once
    (its size checked on that text), and a resource announced by several events (a change and a state change)
    encoded once for all of them."""
    if not events:
        return
    limit = session.info.get("event_max_bytes")
    encoded: dict[int, str] = {}  # by the resource object (all alive in ``events`` meanwhile)
    key = json_dumps(resource_key)
    rows = []
    for event_type, resource in events:
        event_id = uuid.uuid4()
        body = encoded.get(id(resource))
        if body is None:
            body = encoded[id(resource)] = json_dumps(resource)
        head = json_dumps({"eventId": str(event_id), "eventTime": format_datetime(utcnow()), "eventType": event_type})
        envelope = JsonText(f'{head[:-1]},"event":{{{key}:{body}}}}}')  # the text of json_dumps(_envelope(...))
        if limit:
            _check_size(len(envelope.encode()), limit, event_type, resource_key, resource, resource_type)
        rows.append({"event_id": event_id, "api": api, "event_type": event_type,
                     "resource_type": resource_type or resource_key, "resource_id": str(resource.get("id", "")),
                     "envelope": envelope})
    await insert_rows(session, OutboxEvent, rows)
    await _notify(session)


async def _notify(session: AsyncSession) -> None:
    """Wake the relay at commit: once per transaction (PostgreSQL delivers one notification per channel and
    transaction anyway). Should the savepoint that sent it roll back, the relay's polling still finds the events."""
    if not session.info.get("outbox.notified"):
        session.info["outbox.notified"] = True
        await session.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))


async def emit(session: AsyncSession, *, api: str, event_type: str, resource_key: str,
               resource: dict[str, Any], resource_type: str | None = None, flush: bool = True) -> OutboxEvent:
    """Write a TMF688 event to the outbox of the current transaction. ``flush=False`` (many events written
    together): the row is only added to the session; the caller ends with ``flush_events``."""
    event_id = uuid.uuid4()
    envelope = _envelope(session, event_id, event_type, resource_key, resource, resource_type)
    row = OutboxEvent(
        event_id=event_id, api=api, event_type=event_type, resource_type=resource_type or resource_key,
        resource_id=str(resource.get("id", "")), envelope=envelope,
    )
    session.add(row)
    if flush:
        await flush_events(session)
    return row


async def flush_events(session: AsyncSession) -> None:
    """Write the events added to the session and wake the relay (once per transaction)."""
    await session.flush()
    await _notify(session)
