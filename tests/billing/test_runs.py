"""Bill runs as partitioned jobs: a worker killed with SIGKILL in the middle of a partition leaves nothing, the
partition is claimed again, and every account ends with exactly one bill; concurrent workers share the partitions."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

from openbss.billing.runs import run_status, start_run, work_run
from openbss.platform.tmf.resource import system_context
from tests.billing.helpers import billing_account, in_tenant, recurring, sell
from tests.conftest import session_services

ROOT = Path(__file__).resolve().parents[2]


async def _accounts(client: Any, rt: Any, tenant: str, h: dict[str, str], n: int) -> list[dict[str, Any]]:
    out = []
    for _ in range(n):
        a = await billing_account(client, h, tz="UTC")
        await sell(rt, tenant, a, "2027-01-01T00:00:00Z", [recurring("10.00", rate="0")])
        out.append(a)
    return out


async def _start(rt: Any, tenant: str, size: int) -> dict[str, Any]:
    async with rt.db.transaction(tenant) as session:
        ctx = system_context(tenant, session, "http://testserver")
        return await start_run(ctx, session_services().billing.service, date(2027, 1, 1), finalize=True, size=size)


async def _status(rt: Any, tenant: str, run_id: str) -> dict[str, Any]:
    async with rt.db.transaction(tenant) as session:
        return await run_status(system_context(tenant, session, "http://testserver"), run_id)


async def test_a_worker_killed_mid_partition_loses_nothing_and_bills_nothing_twice(
        client: Any, rt: Any, tenant: str, admin_headers: dict[str, str]) -> None:
    accounts = await _accounts(client, rt, tenant, admin_headers, 6)
    run = await _start(rt, tenant, size=3)
    assert (run["partitions"], run["accounts"], run["state"]) == (2, 6, "inProgress")
    proc = subprocess.Popen([sys.executable, "-m", "tests.billing.crash_worker", tenant, run["id"], "2"], cwd=ROOT,
                            env={**os.environ}, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 60)
        assert line.startswith("STOPPED"), line
        # the doomed worker holds the first partition, two of its accounts billed but not committed
        other = await work_run(rt.db, tenant, "http://testserver", session_services().billing.service, run["id"],
                               worker="survivor")
        assert other == 1  # the other partition (billed and issued); the locked one was skipped
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (await _status(rt, tenant, run["id"]))["partitionsDone"] == 1
    await asyncio.sleep(0.5)  # the server notices the dead connection and rolls its transaction back
    for _ in range(50):
        done = await work_run(rt.db, tenant, "http://testserver", session_services().billing.service, run["id"],
                              worker="survivor")
        if done:
            break
        await asyncio.sleep(0.2)
    status = await _status(rt, tenant, run["id"])
    assert (status["state"], status["billed"], status["finalized"], status["failed"]) == ("done", 6, 6, [])
    assert status["totals"] == [{"unit": "EUR", "value": 60}]
    counts = await in_tenant(rt, tenant, "SELECT billing_account_id, count(*) FROM billing_customer_bill "
                                         "GROUP BY billing_account_id")
    assert sorted(c[1] for c in counts) == [1] * 6 and {c[0] for c in counts} == {a["id"] for a in accounts}
    numbers = sorted(r[0] for r in await in_tenant(rt, tenant, "SELECT number FROM billing_customer_bill"))
    assert numbers == [f"INV-2027-{i:06d}" for i in range(1, 7)]  # gapless
    workers = await in_tenant(rt, tenant, "SELECT DISTINCT worker FROM billing_run_partition WHERE run_id = :r",
                              r=run["id"])
    assert [w[0] for w in workers] == ["survivor"]


async def test_concurrent_workers_share_the_partitions(client: Any, rt: Any, tenant: str,
                                                       admin_headers: dict[str, str]) -> None:
    await _accounts(client, rt, tenant, admin_headers, 8)
    run = await _start(rt, tenant, size=2)
    billing = session_services().billing.service
    done = await asyncio.gather(*[work_run(rt.db, tenant, "http://testserver", billing, run["id"], worker=f"w{i}")
                                  for i in range(3)])
    assert sum(done) == 4
    status = await _status(rt, tenant, run["id"])
    assert (status["state"], status["billed"]) == ("done", 8)
    r = await client.get(f"/billing/v1/billRun/{run['id']}", headers=admin_headers)
    assert r.status_code == 200 and r.json()["partitionsDone"] == 4


async def test_a_run_stores_the_pdfs_of_the_bills_it_issues(client: Any, rt: Any, tenant: str,
                                                            admin_headers: dict[str, str], tmp_path: Any) -> None:
    import hashlib

    from openbss.platform.storage import FilesystemObjectStore

    await _accounts(client, rt, tenant, admin_headers, 3)
    run = await _start(rt, tenant, size=2)
    store = FilesystemObjectStore(tmp_path)
    done = await work_run(rt.db, tenant, "http://testserver", session_services().billing.service, run["id"],
                          worker="w", documents=store)
    assert done == 2
    bills = await in_tenant(rt, tenant, "SELECT id, number FROM billing_customer_bill ORDER BY number")
    assert len(bills) == 3
    for bill_id, number in bills:
        stored = await store.head(f"billing/{tenant}/{bill_id}.pdf")
        assert stored is not None and stored.metadata.get("bill-no") == number
        # the bytes served for the bill (rendered on their own) are the ones the run stored
        served = await client.get(f"/billing/v1/customerBill/{bill_id}/document.pdf", headers=admin_headers)
        assert served.status_code == 200
        assert hashlib.sha256(served.content).hexdigest() == stored.sha256
