"""Killing the escalation scheduler (SIGKILL) while it fires steps: nothing is fired twice and nothing is lost.
Each step's action and its record commit together; a step claimed by a dead process is claimed again."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
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

pytestmark = pytest.mark.slow
TICKETS = 60


def start_scheduler() -> subprocess.Popen[bytes]:
    env = {**os.environ, "OPENBSS_CARE_ESCALATION_BATCH": "3", "OPENBSS_CARE_ESCALATION_INTERVAL_SECONDS": "0.05"}
    return subprocess.Popen([sys.executable, "-m", "openbss.cli", "escalations"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


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
    scheduler = start_scheduler()
    try:
        for _ in range(600):
            if 0 < await fired(rt, tenant):
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError(scheduler.stdout.read() if scheduler.stdout else "no step fired")
        os.kill(scheduler.pid, signal.SIGKILL)
        scheduler.wait(10)
    finally:
        if scheduler.poll() is None:
            scheduler.kill()
    partial = await fired(rt, tenant)
    assert 0 < partial < total, partial  # killed in the middle of the work
    restarted = start_scheduler()
    try:
        for _ in range(1500):
            if await fired(rt, tenant) == total:
                break
            await asyncio.sleep(0.02)
    finally:
        restarted.send_signal(signal.SIGTERM)
        try:
            restarted.wait(10)
        except subprocess.TimeoutExpired:
            restarted.kill()
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
