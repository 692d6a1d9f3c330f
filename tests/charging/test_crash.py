"""kill -9 of the charging process after an answered debit loses nothing; the reservations it left open are
released after their validity time (lazily on the account's next request, or by the sweep)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.charging.helpers import OCS, account_state, ccr, group, open_account
from tests.conftest import bearer, session_services

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
async def test_kill_9_after_answered_debit(rt: Any, tenant: str) -> None:
    acc = await open_account(rt, tenant, balance="10.00", validity=2)
    port = free_port()
    exe = Path(sys.executable).parent / "openbss"
    proc = subprocess.Popen([str(exe), "serve", "--port", str(port)], cwd=ROOT, env={**os.environ},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if (await http.get("/health/live")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the charging process did not start"
                await asyncio.sleep(0.1)
            h = bearer(tenant, "system")
            r = await http.post(OCS, headers=h, json=ccr("INITIAL_REQUEST", "k1", 0, acc["msisdn"],
                                                         groups=[group(1, 100)]))
            assert r.json().get("resultCode") == 2001, r.text
            r = await http.post(OCS, headers=h, json=ccr("UPDATE_REQUEST", "k1", 1, groups=[group(1, 100, used=40)]))
            answer = r.json()
            assert answer["resultCode"] == 2001
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    # the answered debit is committed: its usage record and the balance
    st = await account_state(rt, tenant, acc["id"])
    assert st["money"] == 1000 - 40 and st["usage"] == {"n": 1, "amount": 40, "allowance": 0, "units": 40}
    assert st["money_reserved"] == 100 and st["openReservations"] == 1  # held by the dead process's session
    await asyncio.sleep(2.2)
    from openbss.charging.service import release_expired

    assert await release_expired(rt.db, tenant) == 1
    st = await account_state(rt, tenant, acc["id"])
    assert st["money"] == 960 and st["money_reserved"] == 0 and st["openReservations"] == 0
    # the network element retries the answered request on another node: same answer, charged once
    from openbss.charging.schemas import CreditControlRequest

    again = await session_services().charging.service.credit_control(rt.db, tenant, CreditControlRequest.model_validate(
        ccr("UPDATE_REQUEST", "k1", 1, groups=[group(1, 100, used=40)])), "http://testserver")
    assert again == answer
    assert (await account_state(rt, tenant, acc["id"]))["money"] == 960
