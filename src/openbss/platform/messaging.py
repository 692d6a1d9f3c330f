"""Messages to customers (one-time codes, verification links) through an SMS or email channel.

The ``simulator`` channel records each message in ``outbound_message`` (demo, tests, and an operator's staging):
administrators read them at ``/api/messaging/v1/message``. A message is written in the caller's transaction, so a
rolled-back request sends nothing.
"""
# No ``from __future__ import annotations``: FastAPI reads the handler's annotations at runtime.

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import BigInteger, DateTime, Identity, String, Text, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from openbss.platform.auth import Principal
from openbss.platform.db import Base, TenantScoped
from openbss.platform.runtime import authenticate, runtime
from openbss.platform.tmf.spec import format_datetime

SMS, EMAIL = "sms", "email"


class OutboundMessage(TenantScoped, Base):
    __tablename__ = "outbound_message"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    channel: Mapped[str] = mapped_column(String(10))  # sms | email
    recipient: Mapped[str] = mapped_column(String(254), index=True)
    subject: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    purpose: Mapped[str] = mapped_column(String(50))  # e.g. selfcare-link-otp
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


async def send(session: AsyncSession, channel: str, recipient: str, body: str, *, purpose: str,
               subject: str | None = None) -> None:
    """Queue ``body`` to ``recipient`` (E.164 number or email address) in the current transaction."""
    if channel not in (SMS, EMAIL):
        raise ValueError(f"unknown channel '{channel}'")
    session.add(OutboundMessage(channel=channel, recipient=recipient, subject=subject, body=body, purpose=purpose))
    await session.flush()


def render(row: OutboundMessage) -> dict[str, Any]:
    return {"id": str(row.id), "channel": row.channel, "to": row.recipient, "subject": row.subject,
            "text": row.body, "purpose": row.purpose, "sentAt": format_datetime(row.created_at)}


messaging_router = APIRouter(prefix="/api/messaging/v1", tags=["Messaging (simulator)"])


@messaging_router.get("/message", summary="Messages the simulator channel recorded (newest first)")
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
