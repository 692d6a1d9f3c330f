"""Scale-out on the JetStream work queue: a submitted file is cut into chunks by subscriber, rated by any number of
``openbss worker`` processes; a chunk delivered again changes nothing; workers killed with kill -9 mid-file lose
nothing and double nothing (received = rated + duplicate + rejected + suspended, each record rated once)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from openbss.rating.service import partition_of
from tests.charging.helpers import open_account
from tests.conftest import session_services
from tests.rating.helpers import MB, at, call, csv_file, ctx_of, rec, reconciles

OPENBSS = str(Path(sys.executable).parent / "openbss")
ACK_WAIT = 4.0


async def submit(rt: Any, tenant: str, name: str, data: bytes, **kw: Any) -> dict[str, Any]:
    async with rt.db.transaction(tenant) as session:
        return await session_services().rating.service.submit(ctx_of(session, tenant), name, data, **kw)


async def stored(rt: Any, tenant: str) -> list[tuple[str, int]]:
    """(record key, rows) of the batch-rated usage of the tenant."""
    async with rt.db.transaction(tenant) as session:
        rows = (await session.execute(text(
            "SELECT session_id, count(*) FROM charging_usage WHERE session_id LIKE 'cdr:%' GROUP BY session_id"))).all()
    return [(r[0], int(r[1])) for r in rows]


async def file_of(rt: Any, tenant: str, file_id: str) -> dict[str, Any]:
    return next(f for f in await call(rt, tenant, "files") if f["id"] == file_id)


async def test_chunks_rated_in_any_order_and_again_change_nothing(rt: Any, tenant: str) -> None:
    accounts = [await open_account(rt, tenant, payment_type="postpaid", balance="0") for _ in range(3)]
    records = [rec(f"r{a}-{i}", acc["msisdn"], at(3, 1 + i), quantity=MB) for a, acc in enumerate(accounts)
               for i in range(7)]
    records += [rec("bad", accounts[0]["msisdn"], at(3), quantity=-1), rec("lost", "+33699999998", at(3)),
                rec("r0-0", accounts[0]["msisdn"], at(3, 1), quantity=MB)]  # twice in the file
    report = await submit(rt, tenant, "q.csv", csv_file(records), partitions=2, chunk_records=4)
    assert report["status"] == "queued" and report["rejected"] == 1 and report["received"] == 24
    items = report["workItems"]
    assert len(items) == report["chunks"] >= 6
    # one subscriber's records are in one partition, in event-time order
    async with rt.db.transaction(tenant) as session:
        rows = (await session.execute(text("SELECT chunk, partition, records FROM rating_file_chunk "
                                           "WHERE file_id = :f ORDER BY chunk"), {"f": report["id"]})).all()
    for acc in accounts:
        number = acc["msisdn"].lstrip("+")
        mine = [(r.partition, x["eventTime"]) for r in rows for x in r.records if x["msisdn"] == number]
        assert len(mine) == 7 + (acc is accounts[0])
        assert {p for p, _ in mine} == {partition_of(number, 2)}
        assert [t for _, t in mine] == sorted(t for _, t in mine)
    # rate the chunks in reverse order, then every one again (a redelivered message)
    for chunk, _ in reversed(items):
        assert await call(rt, tenant, "rate_chunk", report["id"], chunk) is not None
    for chunk, _ in items:
        assert await call(rt, tenant, "rate_chunk", report["id"], chunk) is None
    done = await file_of(rt, tenant, report["id"])
    assert done["status"] == "rated" and done["chunksDone"] == done["chunks"]
    assert (done["received"], done["rated"], done["duplicate"], done["rejected"], done["suspended"]) == \
        (24, 21, 1, 1, 1)
    assert reconciles(done)
    assert all(n == 1 for _, n in await stored(rt, tenant)) and len(await stored(rt, tenant)) == 21
    # the same file submitted again: a duplicate, no work
    again = await submit(rt, tenant, "q.csv", csv_file(records), partitions=2, chunk_records=4)
    assert again["duplicateFile"] is True and again["workItems"] == []


# --- kill -9 of workers mid-file ----------------------------------------------------------------------------------
@pytest.fixture
async def work_stream(nats_url: str) -> AsyncIterator[str]:
    import nats
    import nats.js.errors

    name = f"T{uuid.uuid4().hex[:12].upper()}"
    yield name
    nc = await nats.connect(nats_url)
    for stream in (name, f"{name}_RATING"):
        with suppress(nats.js.errors.NotFoundError):
            await nc.jetstream().delete_stream(stream)
    await nc.close()


def start_worker(nats_url: str, stream: str, log: Path, *, fault: bool = False) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OPENBSS_NATS_URL": nats_url, "OPENBSS_NATS_STREAM": stream,
           "OPENBSS_RATING_ACK_WAIT_SECONDS": str(ACK_WAIT), "OPENBSS_RATING_PARTITIONS": "4",
           "OPENBSS_LOG_JSON": "false", "PYTHONUNBUFFERED": "1"}
    env.pop("OPENBSS_FAULT_KILL_BEFORE_ACK", None)
    if fault:
        env["OPENBSS_FAULT_KILL_BEFORE_ACK"] = "rating-chunk"
    return subprocess.Popen([OPENBSS, "worker"], env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)


async def until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
async def test_workers_killed_mid_file_lose_and_double_nothing(rt: Any, settings: Any, tenant: str, nats_url: str,
                                                               work_stream: str, tmp_path: Path) -> None:
    from openbss.rating.queue import WorkQueue

    accounts = [await open_account(rt, tenant, payment_type="postpaid", balance="0") for _ in range(8)]
    records = [rec(f"k{a}-{i}", acc["msisdn"], at(1 + i % 27, i % 24), quantity=MB)
               for a, acc in enumerate(accounts) for i in range(60)]
    records += [rec("k0-0", accounts[0]["msisdn"], at(1, 0), quantity=MB), rec("lost", "+33699999997", at(2)),
                rec("bad", accounts[1]["msisdn"], at(2), quantity="x")]
    report = await submit(rt, tenant, "big.csv", csv_file(records), partitions=4, chunk_records=15)
    assert report["chunks"] >= 32
    queue = WorkQueue(rt.db, settings.model_copy(update={"nats_url": nats_url, "nats_stream": work_stream,
                                                         "rating_partitions": 4,
                                                         "rating_ack_wait_seconds": ACK_WAIT}))
    try:
        assert await queue.publish(tenant, report["id"], report["workItems"]) == report["chunks"]
        assert await queue.publish(tenant, report["id"], report["workItems"][:3]) == 3  # deduplicated by the broker
    finally:
        await queue.close()

    log = tmp_path / "workers.log"
    procs = [start_worker(nats_url, work_stream, log, fault=True), start_worker(nats_url, work_stream, log)]
    try:
        async def chunks_done() -> int:
            return int((await file_of(rt, tenant, report["id"]))["chunksDone"])

        # 1. the first worker dies (SIGKILL) right after its first chunk's commit, before the ack
        deadline = time.monotonic() + 90
        while procs[0].poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert procs[0].returncode == -signal.SIGKILL, log.read_text()[-3000:]
        # 2. a third worker; the second is killed with kill -9 mid-file, while it rates
        procs.append(start_worker(nats_url, work_stream, log))
        seen = await chunks_done()
        await until(lambda: _grew(chunks_done, seen + 3), 120, "progress of the second worker")
        assert await chunks_done() < report["chunks"], "the file was rated before the kill: make it larger"
        procs[1].send_signal(signal.SIGKILL)
        procs[1].wait(10)

        async def rated() -> bool:
            return (await file_of(rt, tenant, report["id"]))["status"] == "rated"

        await until(rated, 180, "the whole file rated by the remaining worker")
        await asyncio.sleep(ACK_WAIT + 1)  # time for a wrong second delivery to show up
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            with suppress(subprocess.TimeoutExpired):
                p.wait(20)
            if p.poll() is None:
                p.kill()
    done = await file_of(rt, tenant, report["id"])
    assert reconciles(done), done
    assert (done["received"], done["rated"], done["duplicate"], done["rejected"], done["suspended"]) == \
        (483, 480, 1, 1, 1)
    assert done["chunksDone"] == done["chunks"]
    keys = await stored(rt, tenant)
    assert len(keys) == 480 and all(n == 1 for _, n in keys)  # every record once
    assert "already rated" in log.read_text()  # the chunk committed by the first worker was delivered again
    # allowances and money: 480 MB at 0.01 EUR/MB, each record once
    assert done["amounts"] == {"EUR": "4.80"}


async def _grew(count: Any, target: int) -> bool:
    return bool(await count() >= target)


async def test_submit_requeue_and_a_worker_loop(rt: Any, settings: Any, tenant: str, nats_url: str, work_stream: str,
                                                tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from openbss.rating.queue import WorkQueue
    from openbss.settings import get_settings
    from tests.rating.test_cli import invoke

    acc = await open_account(rt, tenant, payment_type="postpaid", balance="0", data_allowance_mb=10)
    f = tmp_path / "pgw-7.csv"
    f.write_bytes(csv_file([rec(f"q{i}", acc["msisdn"], at(3, i), quantity=3 * MB) for i in range(5)]))
    out = await invoke("rating", "submit", str(f), "--tenant", tenant)
    assert out.exit_code == 1 and "needs NATS" in out.output  # without NATS: use ingest

    monkeypatch.setenv("OPENBSS_NATS_URL", nats_url)
    monkeypatch.setenv("OPENBSS_NATS_STREAM", work_stream)
    monkeypatch.setenv("OPENBSS_RATING_CHUNK_RECORDS", "2")
    get_settings.cache_clear()
    try:
        out = await invoke("rating", "submit", str(f), "--tenant", tenant, "--no-wait")
        assert out.exit_code == 0 and "pgw-7.csv: queued in 3 chunk(s)" in out.output, out.output
        out = await invoke("rating", "requeue", "--tenant", tenant)  # on the stream already: not queued twice
        assert out.exit_code == 0 and "3 chunk(s) published" in out.output, out.output
        # a worker's loop rates the three chunks in order; the file is then rated
        queue = WorkQueue(rt.db, get_settings(), session_services().rating.service)
        stop = asyncio.Event()
        loop = asyncio.create_task(queue.run(stop))
        try:
            async def rated() -> bool:
                return (await file_of(rt, tenant, (await call(rt, tenant, "files"))[0]["id"]))["status"] == "rated"

            await until(rated, 60, "the chunks rated by the loop")
        finally:
            stop.set()
            await asyncio.wait_for(loop, 10)
        [report] = await call(rt, tenant, "files")
        assert (report["received"], report["rated"], report["chunks"], report["chunksDone"]) == (5, 5, 3, 3)
        assert report["amounts"] == {"EUR": "0.05"}  # 15 MB: 10 in the allowance, 5 at 0.01 — in event order
        out = await invoke("rating", "requeue", "--tenant", tenant)
        assert "0 chunk(s) published" in out.output
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


async def test_chunks_of_a_failed_publication_are_published_again_by_the_workers(
        rt: Any, settings: Any, tenant: str, nats_url: str, work_stream: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from openbss.rating.queue import WorkQueue

    acc = await open_account(rt, tenant, payment_type="postpaid", balance="0", data_allowance_mb=10)
    records = [rec(f"lost{i}", acc["msisdn"], at(3, i), quantity=3 * MB) for i in range(5)]
    queue = WorkQueue(rt.db, settings.model_copy(update={
        "nats_url": nats_url, "nats_stream": work_stream, "rating_partitions": 2,
        "rating_republish_after_seconds": 0.0, "rating_republish_interval_seconds": 0.3}),
        session_services().rating.service)

    async def broker_down(*args: Any, **kw: Any) -> int:
        raise ConnectionError("no route to the broker")

    # the file is registered and cut into chunks, then its publication fails: logged, the chunks stay queued
    report = await submit(rt, tenant, "unpublished.csv", csv_file(records), partitions=2, chunk_records=2)
    with monkeypatch.context() as m:
        m.setattr(queue, "publish", broker_down)
        assert (await queue.publish_report(tenant, report))["status"] == "queued"
    assert len(await call(rt, tenant, "queued_chunks")) == report["chunks"] == 3
    assert await call(rt, tenant, "queued_chunks", older_than=3600.0) == []  # registered just now: not stale
    try:
        # published again once: a second pass within the broker's duplicate window publishes nothing
        assert await queue.republish_stale() >= 3
        assert await queue.republish_stale() == 0
        # a worker's loop rates them (and its own republishing pass finds nothing to do once they are rated)
        stop = asyncio.Event()
        loop = asyncio.create_task(queue.run(stop))
        try:
            async def rated() -> bool:
                return (await file_of(rt, tenant, report["id"]))["status"] == "rated"

            await until(rated, 60, "the chunks published again and rated")
            await asyncio.sleep(1.0)  # a few republishing passes of the loop
        finally:
            stop.set()
            await asyncio.wait_for(loop, 10)
    finally:
        await queue.close()
    done = await file_of(rt, tenant, report["id"])
    assert (done["received"], done["rated"], done["chunksDone"]) == (5, 5, 3) and reconciles(done)
    assert all(n == 1 for _, n in await stored(rt, tenant)) and len(await stored(rt, tenant)) == 5
    assert done["amounts"] == {"EUR": "0.05"}  # 15 MB: 10 in the allowance, 5 at 0.01 — each record once
    assert await call(rt, tenant, "queued_chunks") == []
