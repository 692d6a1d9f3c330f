"""Killing the dunning scheduler (SIGKILL) while it takes steps: a restarted scheduler finishes the steps left
claimed (after their lease) and every step is taken exactly once — one reminder, one event per step."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
from sqlalchemy import func, select

from openbss.collections.models import StepExecution
from openbss.platform.events.outbox import OutboxEvent
from tests.collections.helpers import accounts, executions, messages, overdue, policy, reminder
from tests.conftest import bearer, make_tenant
from tests.crash import kill_mid_round_then_restart, start_cli

pytestmark = pytest.mark.slow
ACCOUNTS = 40
STEPS = 3


def start_scheduler() -> subprocess.Popen[bytes]:
    # small batches of reminders: the kill lands between two of them, some done, others left claimed
    return start_cli(["collections", "run", "--loop"], {
        "OPENBSS_COLLECTIONS_LEASE_SECONDS": "1", "OPENBSS_COLLECTIONS_LOOP_SECONDS": "0.2",
        "OPENBSS_COLLECTIONS_REMINDER_BATCH": "7"})


async def done(rt: Any, tenant: str) -> int:
    async with rt.db.transaction(tenant) as s:
        return int(await s.scalar(select(func.count()).select_from(StepExecution).where(
            StepExecution.state == "done")) or 0)


async def test_kill_9_mid_round_takes_every_step_exactly_once(rt: Any, client: Any) -> None:
    tenant = await make_tenant(rt, "dcrash")
    await policy(client, bearer(tenant, "billing_ops"), [reminder(0), reminder(2), reminder(4)])
    for a in await accounts(client, tenant, ACCOUNTS):
        await overdue(rt, tenant, a["id"], "25.50", days=10)
    total = ACCOUNTS * STEPS

    async def count() -> int:
        return await done(rt, tenant)

    await kill_mid_round_then_restart(start_scheduler, count, total, first=(1500, 0.01), rest=(3000, 0.02),
                                      nothing="no step taken")
    rows = await executions(rt, tenant)
    assert len(rows) == total and {r.state for r in rows} == {"done"}
    assert len({(r.episode_id, r.step) for r in rows}) == total
    assert any(r.attempts > 1 for r in rows)  # what the dead scheduler had claimed was taken over
    assert await messages(rt, tenant) == total  # one reminder per step: none lost, none twice
    async with rt.db.transaction(tenant) as s:
        events = (await s.execute(select(OutboxEvent.envelope).where(
            OutboxEvent.event_type == "DunningStepExecutedEvent"))).scalars().all()
    ids = [e["event"]["dunningStepExecution"]["id"] for e in events]
    assert len(ids) == len(set(ids)) == total
