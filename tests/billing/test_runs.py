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


async def test_a_partition_issues_its_bills_as_drafting_then_issuing_them_did(client: Any, rt: Any) -> None:
    """A run's partition writes a bill due once, already issued, in the transaction that bills it — and leaves
    exactly what writing the draft and issuing it in a second transaction left (what a partition left ``billed``
    by a worker of an earlier version still goes through): the same bills, numbers, balances, lines, audit records
    and events (the draft's ``CustomerBillCreateEvent``, then the issued bill's attribute and state changes); the
    older drafts of its accounts issued with them, all numbered in the order of bill date, account and id."""
    from sqlalchemy import update

    from openbss.billing.models import BillRunPartition
    from tests.billing.test_partition_equivalence import _state
    from tests.conftest import bearer, make_tenant

    billing = session_services().billing.service
    at_once, in_two = await make_tenant(rt, "rn"), await make_tenant(rt, "ro")
    ids: dict[str, list[str]] = {}
    for t in (at_once, in_two):
        ids[t] = []
        for n, day in enumerate((3, 1, 5, 2)):  # one bill date per account: the same numbering order in both
            account = await billing_account(client, bearer(t, "admin"), day=day, tz="UTC")
            await sell(rt, t, account, "2026-12-20T00:00:00Z", [recurring(f"{10 + n}.00", price_id=f"pop-{n}")])
            ids[t].append(account["id"])
        async with rt.db.transaction(t) as session:  # January's bills left as drafts
            await billing.run(system_context(t, session, "http://testserver"), date(2027, 1, 6), finalize=False,
                              account_ids=ids[t])
        async with rt.db.transaction(t) as session:
            run = await start_run(system_context(t, session, "http://testserver"), billing, date(2027, 2, 6),
                                  finalize=None, size=10)
        if t == in_two:  # the earlier workers: drafts in the partition's transaction, issued in another
            async with rt.db.transaction(t) as session:
                await billing.run(system_context(t, session, "http://testserver"), date(2027, 2, 6), finalize=False,
                                  account_ids=ids[t])
                await session.execute(update(BillRunPartition).where(BillRunPartition.run_id == run["id"])
                                      .values(state="billed"))
        assert await work_run(rt.db, t, "http://testserver", billing, run["id"], worker="w") == (t == at_once)
        status = await _status(rt, t, run["id"])
        assert (status["state"], status["finalized"]) == ("done", 8)
    got, expected = await _state(rt, at_once, ids[at_once]), await _state(rt, in_two, ids[in_two])
    for part in expected:
        assert got[part] == expected[part], part
    numbers = await in_tenant(rt, at_once, "SELECT number, state, revision FROM billing_customer_bill "
                                            "ORDER BY bill_date, billing_account_id, id")
    assert [n[0] for n in numbers] == [f"INV-2027-{i:06d}" for i in range(1, 9)]
    assert {(n[1], n[2]) for n in numbers} == {("validated", 2)}
    events = await in_tenant(rt, at_once, "SELECT e.event_type, e.envelope FROM outbox_event e "
                                           "JOIN billing_customer_bill b ON b.id = e.resource_id "
                                           "WHERE b.bill_date = '2027-02-03' ORDER BY e.id")
    assert [e[0] for e in events] == ["CustomerBillCreateEvent", "CustomerBillAttributeValueChangeEvent",
                                      "CustomerBillStateChangeEvent"]
    drafted, *issued = [e[1]["event"]["customerBill"] for e in events]
    assert drafted["state"] == "new" and "billNo" not in drafted
    assert [(b["state"], b["billNo"]) for b in issued] == [("validated", "INV-2027-000007")] * 2
    actions = await in_tenant(rt, at_once, "SELECT a.action FROM audit_record a JOIN billing_customer_bill b "
                                            "ON b.id = a.resource_id WHERE b.bill_date = '2027-02-03' ORDER BY a.id")
    assert [a[0] for a in actions] == ["create", "finalize"]
