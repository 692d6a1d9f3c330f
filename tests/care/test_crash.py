"""Killing the escalation scheduler (SIGKILL) while it fires steps: nothing is fired twice and nothing is lost.
Each step's action and its record commit together; a step claimed by a dead process is claimed again."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from openbss.care.models import SlaStep
from openbss.platform.db import utcnow
from openbss.platform.events.outbox import OutboxEvent
from openbss.platform.tmf.resource import system_context
from tests.care.helpers import ALWAYS, TT, ok
from tests.conftest import bearer, make_tenant, session_services
from tests.crash import kill_mid_round_then_restart, start_cli

pytestmark = pytest.mark.slow
TICKETS = 60


def start_scheduler() -> subprocess.Popen[bytes]:
    return start_cli(["escalations"], {"OPENBSS_CARE_ESCALATION_BATCH": "3",
                                       "OPENBSS_CARE_ESCALATION_INTERVAL_SECONDS": "0.05"})


async def fired(rt: Any, tenant: str) -> int:
    async with rt.db.transaction(tenant) as s:
        return int(await s.scalar(select(func.count()).select_from(SlaStep).where(SlaStep.outcome == "fired")) or 0)


async def test_kill_9_mid_round_fires_every_step_exactly_once(rt: Any, client: Any) -> None:
    tenant = await make_tenant(rt, "crash")
    care = session_services().care.service
    async with rt.db.transaction(tenant) as session:
        ctx = system_context(tenant, session, "http://testserver", "test")
        await care.config.create_policy(ctx, {
            "name": "Tight", "firstResponseMinutes": 10, "resolutionMinutes": 60, "calendar": ALWAYS,
            "escalation": [{"target": "resolution", "percent": p, "action": "notify"} for p in (50, 75, 150)]})
        for i in range(TICKETS):  # raised a day ago: every step is due
            await care.tickets.create(ctx, {"description": f"fault {i}", "severity": "minor", "ticketType": "x"},
                                      raised_at=utcnow() - timedelta(days=1))
    total = TICKETS * 5  # first response 100 %, resolution 50/75/100/150

    async def count() -> int:
        return await fired(rt, tenant)

    await kill_mid_round_then_restart(start_scheduler, count, total, first=(600, 0.02), rest=(1500, 0.02),
                                      nothing="no step fired")
    assert await fired(rt, tenant) == total
    async with rt.db.transaction(tenant) as s:
        events = (await s.execute(select(OutboxEvent.envelope).where(
            OutboxEvent.event_type == "TroubleTicketSlaEscalationEvent"))).scalars().all()
    step_ids = [e["event"]["slaEscalation"]["id"] for e in events]
    assert len(step_ids) == len(set(step_ids)) == total  # one announcement per step
    h = bearer(tenant, "csr_agent")
    for t in await ok(await client.get(TT, params={"limit": "1000"}, headers=h)):
        notes = [n["id"] for n in t["note"]]
        assert len(notes) == len(set(notes)) == 5
