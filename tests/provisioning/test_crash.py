"""Killing the worker (SIGKILL) in the middle of an orchestration: a restarted worker completes the order exactly
once, and the network holds every change once (the in-flight call is replayed by its idempotency key, not
re-applied)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from typing import Any

import pytest
from sqlalchemy import text

from tests.conftest import deliver_all
from tests.ordering.helpers import NET, PO, PRODUCT, customer, get, mobile_order, setup_world

pytestmark = pytest.mark.slow


def start_worker() -> subprocess.Popen[bytes]:
    env = {**os.environ, "OPENBSS_PROVISIONING_STEP_TIMEOUT_SECONDS": "5",
           "OPENBSS_PROVISIONING_LEASE_GRACE_SECONDS": "0.5", "OPENBSS_PROVISIONING_STEP_BACKOFF_SECONDS": "0.05",
           "OPENBSS_PROVISIONING_OCS": "simulator"}  # the simulator plays every element: its calls are recorded
    return subprocess.Popen([sys.executable, "-m", "openbss.cli", "orchestrator"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


async def step_state(rt: Any, tenant: str, name: str) -> tuple[str, int] | None:
    async with rt.db.transaction(tenant) as s:
        row = (await s.execute(text("SELECT state, attempts FROM provisioning_step WHERE name = :n"),
                               {"n": name})).first()
    return (row[0], row[1]) if row else None


async def test_kill_9_mid_orchestration_then_restart_completes_once(rt: Any, client: Any) -> None:
    w = await setup_world(rt, client, numbers=20, sims=20)
    h, tenant = w["h"], w["tenant"]
    c = await customer(client, h)
    # the HSS applies the subscriber, then answers slowly: the worker dies while waiting for the answer
    r = await client.put(f"{NET}/simulator/hss", json={"replyLatencyMs": 3000}, headers=h)
    assert r.status_code == 200
    order = (await client.post(PO, json=mobile_order(c, w["offers"]["Mobile M"]), headers=h)).json()

    worker = start_worker()
    try:
        for _ in range(300):
            calls = await get(client, h, f"{NET}/networkCall", element="hss")
            if any(x["outcome"] == "applied" for x in calls):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the HSS was never called")
        assert await step_state(rt, tenant, "hss:createSubscriber") == ("running", 1)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
    await asyncio.sleep(0.2)
    assert await step_state(rt, tenant, "hss:createSubscriber") == ("running", 1)  # nobody recorded the answer
    await deliver_all(rt)  # (the worker's relay: the order follows its items)
    assert (await get(client, h, f"{PO}/{order['id']}"))["state"] == "inProgress"

    await client.put(f"{NET}/simulator/hss", json={}, headers=h)
    restarted = start_worker()
    try:
        for _ in range(400):
            await deliver_all(rt)
            state = (await get(client, h, f"{PO}/{order['id']}"))["state"]
            if state not in ("acknowledged", "inProgress"):
                break
            await asyncio.sleep(0.05)
    finally:
        restarted.send_signal(signal.SIGTERM)
        try:
            restarted.wait(10)
        except subprocess.TimeoutExpired:
            restarted.kill()
    order = await get(client, h, f"{PO}/{order['id']}")
    assert order["state"] == "completed", (order, restarted.stdout.read() if restarted.stdout else b"")
    assert await step_state(rt, tenant, "hss:createSubscriber") == ("done", 2)
    # exactly once: one product, one subscriber in each element, the HSS change applied once and replayed once
    assert len(await get(client, h, PRODUCT)) == 1
    hss = await get(client, h, f"{NET}/networkCall", element="hss")
    assert [x["outcome"] for x in hss] == ["applied", "replayed"]
    assert hss[0]["idempotencyKey"] == hss[1]["idempotencyKey"]
    applied = [(x["element"], x["operation"]) for x in await get(client, h, f"{NET}/networkCall", outcome="applied")]
    assert sorted(applied) == [("hss", "createSubscriber"), ("ocs", "createAccount"), ("pcrf", "createPolicy")]
    assert len(await get(client, h, f"{NET}/elementState")) == 3
    counts = await get(client, h, "/api/inventory/v1/poolCount")
    assert counts["msisdn"]["inUse"] == 1 and counts["sim"]["inUse"] == 1
