"""With NATS, every way a usage file arrives goes through the work queue: the watched directory, the bucket prefix and
the upload API register the file once by (source, name, SHA-256), submit it as chunks and answer ``queued``; a
worker's loop rates the chunks and the file's counts reconcile. A file received again is a duplicate: no chunk, no
message, nothing changes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from tests.charging.helpers import open_account
from tests.conftest import bearer, session_services
from tests.rating.helpers import MB, at, call, csv_file, rec, reconciles
from tests.rating.test_queue import file_of, stored, until, work_stream

__all__ = ["work_stream"]  # the fixture, used by name below


@pytest.fixture
async def queues(rt: Any, settings: Any, nats_url: str, work_stream: str) -> AsyncIterator[tuple[Any, Any]]:
    """(the publishing queue of a receiving process, the consuming loop's queue) on a stream of the test's own,
    the loop running like an ``openbss worker``'s."""
    from openbss.rating.queue import WorkQueue

    s = settings.model_copy(update={"nats_url": nats_url, "nats_stream": work_stream, "rating_partitions": 2,
                                    "rating_chunk_records": 2, "rating_ack_wait_seconds": 5.0})
    intake = WorkQueue(None, s)
    worker = WorkQueue(rt.db, s, session_services().rating.service)
    stop = asyncio.Event()
    loop = asyncio.create_task(worker.run(stop))
    try:
        yield intake, worker
    finally:
        stop.set()
        await asyncio.wait_for(loop, 15)
        await intake.close()


async def chunk_rows(rt: Any, tenant: str) -> int:
    async with rt.db.transaction(tenant) as session:
        return int((await session.execute(text("SELECT count(*) FROM rating_file_chunk"))).scalar_one())


async def rated(rt: Any, tenant: str, file_id: str) -> None:
    async def done() -> bool:
        return bool((await file_of(rt, tenant, file_id))["status"] == "rated")

    await until(done, 60, "the file rated by the worker loop")


async def test_watched_directory_and_bucket_go_through_the_work_queue(rt: Any, tenant: str, tmp_path: Path,
                                                                     queues: tuple[Any, Any]) -> None:
    from openbss.platform.storage import FilesystemObjectStore
    from openbss.rating.collect import collect_once, collect_store

    intake, _ = queues
    rating = session_services().rating.service
    accounts = [await open_account(rt, tenant, payment_type="postpaid", balance="0", data_allowance_mb=2)
                for _ in range(2)]
    records = [rec(f"w{a}-{i}", acc["msisdn"], at(3, 1 + i), quantity=MB) for a, acc in enumerate(accounts)
               for i in range(5)]
    records += [rec("w0-0", accounts[0]["msisdn"], at(3, 1), quantity=MB),  # twice in the file
                rec("bad", accounts[0]["msisdn"], at(3), quantity=-1), rec("lost", "+33699999996", at(3))]
    data = csv_file(records)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "pgw-9.csv").write_bytes(data)

    [got] = await collect_once(rt.db, rating, tenant, inbox, source="inbox", base_url="http://testserver",
                               queue=intake)
    report = got.report
    assert report is not None and got.error is None
    assert report["status"] == "queued" and report["duplicateFile"] is False and "workItems" not in report
    assert report["received"] == 13 and report["rejected"] == 1 and report["chunks"] >= 5
    assert (inbox / "processed" / "pgw-9.csv").exists() and not (inbox / "pgw-9.csv").exists()

    await rated(rt, tenant, report["id"])
    done = await file_of(rt, tenant, report["id"])
    assert reconciles(done), done
    assert (done["received"], done["rated"], done["duplicate"], done["rejected"], done["suspended"]) == \
        (13, 10, 1, 1, 1)
    assert done["chunksDone"] == done["chunks"] == report["chunks"]
    # 2 MB of each account in the allowance, in event-time order; 3 MB each at 0.01 EUR/MB
    assert done["amounts"] == {"EUR": "0.06"}
    keys = await stored(rt, tenant)
    assert len(keys) == 10 and all(n == 1 for _, n in keys)

    # the same file dropped again: a duplicate, no chunk, nothing changes
    chunks = await chunk_rows(rt, tenant)
    (inbox / "pgw-9.csv").write_bytes(data)
    [again] = await collect_once(rt.db, rating, tenant, inbox, source="inbox", base_url="http://testserver",
                                 queue=intake)
    assert again.report is not None and again.report["duplicateFile"] is True
    assert again.report["id"] == report["id"] and again.report["status"] == "rated"
    assert await chunk_rows(rt, tenant) == chunks
    assert await stored(rt, tenant) == keys
    assert len(await call(rt, tenant, "files")) == 1

    # an object-store prefix: the same way through the queue
    store = FilesystemObjectStore(tmp_path / "bucket")
    more = csv_file([rec(f"s{i}", accounts[1]["msisdn"], at(9, i), quantity=MB) for i in range(3)])
    await store.put("incoming/sgw/1.csv", more, content_type="text/csv")
    [obj] = await collect_store(rt.db, rating, tenant, store, source="s3://cdr/x", base_url="http://testserver",
                                queue=intake)
    assert obj.report is not None and obj.report["status"] == "queued"
    assert await store.keys("processed/") == ["processed/sgw/1.csv"]
    await rated(rt, tenant, obj.report["id"])
    assert (await file_of(rt, tenant, obj.report["id"]))["rated"] == 3
    await store.put("incoming/sgw/1.csv", more, content_type="text/csv")
    [dup] = await collect_store(rt.db, rating, tenant, store, source="s3://cdr/x", base_url="http://testserver",
                                queue=intake)
    assert dup.report is not None and dup.report["duplicateFile"] is True
    assert len(await stored(rt, tenant)) == 13


async def test_an_unreadable_file_is_failed_not_queued(rt: Any, tenant: str, tmp_path: Path,
                                                       queues: tuple[Any, Any]) -> None:
    from openbss.rating.collect import collect_once

    intake, _ = queues
    (tmp_path / "broken.csv").write_bytes(b"\xff\xfe")
    [got] = await collect_once(rt.db, session_services().rating.service, tenant, tmp_path, source="inbox",
                               base_url="http://testserver", queue=intake)
    assert got.report is None and "not UTF-8" in (got.error or "")
    assert (tmp_path / "failed" / "broken.csv.reason").exists()
    assert await call(rt, tenant, "files") == [] and await chunk_rows(rt, tenant) == 0


async def test_upload_api_with_nats_answers_queued(client: Any, rt: Any, tenant: str, services: Any,
                                                   queues: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    intake, _ = queues
    monkeypatch.setattr(services.rating, "queue", intake)
    h = {**bearer(tenant, "admin"), "Content-Type": "text/csv"}
    acc = await open_account(rt, tenant, payment_type="postpaid", balance="0")
    data = csv_file([rec(f"u{i}", acc["msisdn"], at(4, i), quantity=MB) for i in range(5)]
                    + [rec("nobody", "+33699999995", at(4))])
    r = await client.post("/rating/v1/usageFile", params={"name": "up.csv", "source": "pgw2"}, content=data,
                          headers=h)
    assert r.status_code == 202, r.text
    report = r.json()
    assert report["status"] == "queued" and report["duplicateFile"] is False and "workItems" not in report
    assert report["received"] == 6 and report["rated"] == 0 and report["chunks"] >= 3

    await rated(rt, tenant, report["id"])
    r = await client.get("/rating/v1/usageFile", headers=h)
    [done] = [f for f in r.json() if f["id"] == report["id"]]
    assert reconciles(done) and (done["rated"], done["suspended"]) == (5, 1) and done["amounts"] == {"EUR": "0.05"}

    # uploaded again: 200, a duplicate with the first upload's counts; no chunk, nothing rated twice
    chunks, keys = await chunk_rows(rt, tenant), await stored(rt, tenant)
    r = await client.post("/rating/v1/usageFile", params={"name": "up.csv", "source": "pgw2"}, content=data,
                          headers=h)
    assert r.status_code == 200 and r.json()["duplicateFile"] is True, r.text
    assert {k: r.json()[k] for k in ("id", "status", "rated", "suspended")} == \
        {"id": report["id"], "status": "rated", "rated": 5, "suspended": 1}
    assert await chunk_rows(rt, tenant) == chunks and await stored(rt, tenant) == keys
    # an unreadable file: 4xx naming the problem, nothing registered
    r = await client.post("/rating/v1/usageFile", params={"name": "x.csv"}, content=b"\xff\xfe", headers=h)
    assert 400 <= r.status_code < 500 and "not UTF-8" in r.text
    assert len(await call(rt, tenant, "files")) == 1


async def test_upload_api_without_nats_still_rates_in_process(client: Any, rt: Any, tenant: str,
                                                              services: Any) -> None:
    assert services.rating.queue is None  # the test process has no NATS in its settings
    acc = await open_account(rt, tenant, payment_type="postpaid", balance="0")
    r = await client.post("/rating/v1/usageFile", params={"name": "local.csv"},
                          content=csv_file([rec("l1", acc["msisdn"], at(5))]),
                          headers={**bearer(tenant, "admin"), "Content-Type": "text/csv"})
    assert r.status_code == 201 and r.json()["status"] == "rated" and r.json()["rated"] == 1, r.text


async def test_collect_command_with_nats_reports_queued(rt: Any, tenant: str, nats_url: str, work_stream: str,
                                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from openbss.settings import get_settings
    from tests.rating.test_cli import invoke

    acc = await open_account(rt, tenant, payment_type="postpaid", balance="0")
    (tmp_path / "c.csv").write_bytes(csv_file([rec(f"c{i}", acc["msisdn"], at(6, i)) for i in range(3)]))
    monkeypatch.setenv("OPENBSS_NATS_URL", nats_url)
    monkeypatch.setenv("OPENBSS_NATS_STREAM", work_stream)
    monkeypatch.setenv("OPENBSS_RATING_CHUNK_RECORDS", "2")
    get_settings.cache_clear()
    try:
        out = await invoke("rating", "collect", str(tmp_path), "--tenant", tenant)
        assert out.exit_code == 0 and "c.csv: queued in 2 chunk(s)" in out.output, out.output
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert (tmp_path / "processed" / "c.csv").exists()
    [f] = await call(rt, tenant, "files")
    assert (f["status"], f["chunks"], f["chunksDone"], f["rated"]) == ("queued", 2, 0, 0)
    assert await chunk_rows(rt, tenant) == 2
