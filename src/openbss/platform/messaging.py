"""Messages to customers (one-time codes, confirmations) through an SMS or email channel.

A message is a row of ``outbound_message`` written in the caller's transaction (a rolled-back request sends
nothing). What happens next depends on ``OPENBSS_MESSAGING_CHANNEL``:

* ``simulator`` (demo, tests, staging): the row is the delivery. Administrators read the messages at
  ``/api/messaging/v1/message``; they are deleted after ``OPENBSS_MESSAGING_RETENTION_HOURS``.
* ``webhook``: the worker delivers each message after commit to the operator's SMS/email gateway
  (``OPENBSS_MESSAGING_WEBHOOK_URL``): a JSON POST signed with HMAC-SHA256 (``X-OpenBSS-Signature``), retried with
  backoff. Once delivered, the text is erased from the row (a one-time code must not outlive its use).
"""
# No ``from __future__ import annotations``: FastAPI reads the handler's annotations at runtime.

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import httpx
from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import BigInteger, DateTime, Identity, Index, SmallInteger, String, Text, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from openbss.platform.auth import Principal
from openbss.platform.db import Base, Database, TenantScoped, format_datetime, utcnow
from openbss.platform.runtime import authenticate, runtime
from openbss.settings import Settings

log = logging.getLogger(__name__)

SMS, EMAIL = "sms", "email"
RECORDED, PENDING, SENT, FAILED = "recorded", "pending", "sent", "failed"
ERASED = "[delivered]"
LEASE = timedelta(seconds=30)
MAX_ATTEMPTS = 6


class OutboundMessage(TenantScoped, Base):
    __tablename__ = "outbound_message"
    __table_args__ = (Index("ix_outbound_message_pending", "next_attempt_at", postgresql_where="status = 'pending'"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    channel: Mapped[str] = mapped_column(String(10))  # sms | email
    recipient: Mapped[str] = mapped_column(String(254), index=True)
    subject: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    purpose: Mapped[str] = mapped_column(String(50))  # e.g. selfcare-link
    status: Mapped[str] = mapped_column(String(10), server_default=RECORDED)
    attempts: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


async def send(session: AsyncSession, channel: str, recipient: str, body: str, *, purpose: str,
               subject: str | None = None, settings: Settings | None = None, flush: bool = True) -> None:
    """Queue ``body`` to ``recipient`` (E.164 number or email address) in the current transaction (``flush=False``:
    added to the session, written by its next flush — many messages queued together)."""
    from openbss.settings import get_settings

    if channel not in (SMS, EMAIL):
        raise ValueError(f"unknown channel '{channel}'")
    mode = (settings or get_settings()).messaging_channel
    queued = mode == "webhook"
    session.add(OutboundMessage(channel=channel, recipient=recipient, subject=subject, body=body, purpose=purpose,
                                status=PENDING if queued else RECORDED, next_attempt_at=utcnow() if queued else None))
    if flush:
        await session.flush()


async def messages_to(session: AsyncSession, recipients: Iterable[str]) -> list[dict[str, Any]]:
    """The messages kept for ``recipients`` (a party's GDPR export): what was sent, when, for what; bodies are
    erased once sent."""
    wanted = sorted({r for r in recipients if r})
    if not wanted:
        return []
    rows = (await session.execute(select(OutboundMessage).where(OutboundMessage.recipient.in_(wanted))
                                  .order_by(OutboundMessage.id))).scalars().all()
    return [{"channel": r.channel, "to": r.recipient, "subject": r.subject, "purpose": r.purpose,
             "status": r.status, "text": r.body, "createdAt": r.created_at.isoformat(),
             "sentAt": r.sent_at.isoformat() if r.sent_at else None} for r in rows]


async def forget_messages(session: AsyncSession, recipients: Iterable[str]) -> int:
    """Delete the messages kept for ``recipients`` (a party's erasure)."""
    wanted = sorted({r for r in recipients if r})
    if not wanted:
        return 0
    result = await session.execute(delete(OutboundMessage).where(OutboundMessage.recipient.in_(wanted)))
    return int(getattr(result, "rowcount", 0) or 0)


def signature(secret: str, payload: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


async def deliver_pending(db: Database, settings: Settings, http: httpx.AsyncClient, batch: int = 50) -> int:
    """Deliver due messages to the webhook (claimed with SKIP LOCKED and a lease, posted outside any transaction,
    then marked). Returns how many were delivered."""
    now = utcnow()
    async with db.transaction(None, system=True) as session:
        rows = (await session.execute(
            select(OutboundMessage).where(OutboundMessage.status == PENDING, OutboundMessage.next_attempt_at <= now)
            .order_by(OutboundMessage.next_attempt_at).limit(batch).with_for_update(skip_locked=True))).scalars().all()
        claimed = [(r.id, r.tenant_id, r.attempts + 1, {
            "id": str(r.id), "tenant": r.tenant_id, "channel": r.channel, "to": r.recipient, "subject": r.subject,
            "text": r.body, "purpose": r.purpose}) for r in rows]
        for r in rows:
            r.attempts += 1
            r.next_attempt_at = now + LEASE  # a worker that dies mid-delivery leaves it to the next one
    delivered = 0
    for row_id, _tenant, attempt, message in claimed:
        payload = json.dumps(message, separators=(",", ":")).encode()
        ok = False
        try:
            response = await http.post(str(settings.messaging_webhook_url), content=payload, headers={
                "Content-Type": "application/json",
                "X-OpenBSS-Signature": signature(settings.messaging_webhook_secret, payload)})
            ok = response.is_success
        except httpx.HTTPError as exc:
            log.warning("message %s not delivered (attempt %d): %s", row_id, attempt, type(exc).__name__)
        async with db.transaction(None, system=True) as session:
            if ok:
                values: dict[str, Any] = {"status": SENT, "sent_at": utcnow(), "body": ERASED,
                                          "next_attempt_at": None}
                delivered += 1
            elif attempt >= MAX_ATTEMPTS:
                values = {"status": FAILED, "body": ERASED, "next_attempt_at": None}
            else:
                values = {"next_attempt_at": utcnow() + timedelta(seconds=2 ** attempt)}
            await session.execute(update(OutboundMessage).where(OutboundMessage.id == row_id).values(**values))
    return delivered


async def purge_recorded(db: Database, settings: Settings) -> int:
    """Delete recorded (simulator) and finished messages older than the retention."""
    before = utcnow() - timedelta(hours=settings.messaging_retention_hours)
    async with db.transaction(None, system=True) as session:
        result = await session.execute(delete(OutboundMessage).where(
            OutboundMessage.created_at < before, OutboundMessage.status != PENDING))
    return int(getattr(result, "rowcount", 0) or 0)


async def messaging_loop(db: Database, settings: Settings, stop: asyncio.Event, interval: float = 1.0) -> None:
    """The worker's delivery loop (webhook channel) and the hourly clean-up of old messages."""
    last_purge = 0.0
    loop = asyncio.get_running_loop()
    async with httpx.AsyncClient(timeout=settings.hub_timeout_seconds) as http:
        while not stop.is_set():
            try:
                if settings.messaging_channel == "webhook" and settings.messaging_webhook_url:
                    await deliver_pending(db, settings, http)
                if loop.time() - last_purge > 3600:
                    await purge_recorded(db, settings)
                    last_purge = loop.time()
            except Exception:
                log.exception("message delivery failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)


def render(row: OutboundMessage) -> dict[str, Any]:
    return {"id": str(row.id), "channel": row.channel, "to": row.recipient, "subject": row.subject,
            "text": row.body, "purpose": row.purpose, "status": row.status,
            "sentAt": format_datetime(row.sent_at or row.created_at)}


messaging_router = APIRouter(prefix="/api/messaging/v1", tags=["Messaging (simulator)"])


@messaging_router.get("/message", summary="Messages of the tenant (newest first): the SMS/email simulator's inbox")
async def list_messages(request: Request, to: str | None = Query(None, max_length=254),
                        channel: str | None = Query(None, pattern="^(sms|email)$"),
                        limit: int = Query(20, ge=1, le=200),
                        principal: Principal = Depends(authenticate)) -> list[dict[str, Any]]:
    principal.require("messaging", "read")
    stmt = select(OutboundMessage).order_by(OutboundMessage.id.desc()).limit(limit)
    if to:
        stmt = stmt.where(OutboundMessage.recipient == to)
    if channel:
        stmt = stmt.where(OutboundMessage.channel == channel)
    async with runtime(request).db.transaction(principal.tenant_id) as session:
        rows = (await session.execute(stmt)).scalars().all()
        return [render(r) for r in rows]
