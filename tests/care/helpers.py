"""Shared helpers of the care tests."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from openbss.platform.events.outbox import OutboxEvent
from tests.customer.helpers import assert_valid

TT = "/tmf-api/troubleTicket/v4/troubleTicket"
PI = "/tmf-api/partyInteraction/v4/partyInteraction"
CFG = "/api/care/v1"
TMF621 = "TMF621-TroubleTicket-v4.0.0.swagger.json"
TMF683 = "TMF683-PartyInteraction-v4.0.0.swagger.json"
WEEK = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
ALWAYS = {"timeZone": "UTC", "workingHours": {d: [["00:00", "24:00"]] for d in WEEK}}


def ticket_body(**extra: Any) -> dict[str, Any]:
    return {"description": "No mobile data since this morning", "severity": "major", "ticketType": "network",
            **extra}


async def ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json()


async def raise_ticket(client: httpx.AsyncClient, h: dict[str, str], **extra: Any) -> dict[str, Any]:
    out = await ok(await client.post(TT, json=ticket_body(**extra), headers=h), 201)
    assert_valid(TMF621, "TroubleTicket", out)
    return out  # type: ignore[no-any-return]


async def move(client: httpx.AsyncClient, h: dict[str, str], ticket_id: str, status: str,
               reason: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"status": status}
    if reason:
        body["statusChangeReason"] = reason
    out = await ok(await client.patch(f"{TT}/{ticket_id}", json=body, headers=h))
    assert_valid(TMF621, "TroubleTicket", out)
    return out  # type: ignore[no-any-return]


async def make_queue(client: httpx.AsyncClient, h: dict[str, str], name: str) -> dict[str, Any]:
    return await ok(await client.post(f"{CFG}/queue", json={"name": name}, headers=h), 201)  # type: ignore[no-any-return]


async def make_policy(client: httpx.AsyncClient, h: dict[str, str], **extra: Any) -> dict[str, Any]:
    body = {"name": "Standard", "firstResponseMinutes": 60, "resolutionMinutes": 480, "calendar": ALWAYS, **extra}
    return await ok(await client.post(f"{CFG}/slaPolicy", json=body, headers=h), 201)  # type: ignore[no-any-return]


async def events_of(rt: Any, tenant: str, resource_id: str) -> list[str]:
    async with rt.db.transaction(tenant) as session:
        rows = (await session.execute(select(OutboxEvent.event_type).where(
            OutboxEvent.resource_id == resource_id).order_by(OutboxEvent.id))).scalars().all()
    return list(rows)
