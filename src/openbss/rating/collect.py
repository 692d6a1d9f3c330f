"""Collection of usage files from a watched directory (embedded deployments) or an object-store prefix (an
S3-compatible bucket, scaled deployments): every file that is not hidden and not being written (``.tmp``/``.part``
suffix) is ingested in its own transaction, then moved to ``processed/`` (or to ``failed/``, with the reason, when
it cannot be read). A file is registered once by (source, name, SHA-256), so a file collected twice — a crash between
commit and move, or a copy dropped again — is reported as a duplicate and changes nothing.

With NATS (a ``WorkQueue`` handed as ``queue``), a collected file is not rated here: it is registered and cut into
chunks (``RatingService.submit``), the chunks are published on the work queue and rated by the ``openbss worker``
processes; the file's report says ``queued`` and its counts reconcile once the workers are done."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openbss.platform.db import Database
from openbss.platform.errors import DomainError
from openbss.platform.storage import ObjectExists, ObjectStore
from openbss.platform.tmf.resource import system_context
from openbss.rating.queue import WorkQueue
from openbss.rating.service import RatingService

IN_PROGRESS = (".tmp", ".part", ".partial")


@dataclass(frozen=True)
class Collected:
    path: Path
    report: dict[str, Any] | None
    error: str | None = None


def pending_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir()
                  if p.is_file() and not p.name.startswith(".") and not p.name.endswith(IN_PROGRESS))


async def ingest_bytes(db: Database, rating: RatingService, tenant_id: str, name: str, data: bytes, *,
                       source: str, base_url: str, queue: WorkQueue | None = None) -> dict[str, Any]:
    """Rate a received file in this process, or — with a work queue — submit it to the workers (``queued``)."""
    if queue is not None:
        return await queue.submit(db, rating, tenant_id, name, data, source=source, base_url=base_url)
    async with db.transaction(tenant_id) as session:
        ctx = system_context(tenant_id, session, base_url, subject=f"rating:{source}")
        return await rating.ingest(ctx, name, data, source=source)


async def ingest_path(db: Database, rating: RatingService, tenant_id: str, path: Path, *, source: str,
                      base_url: str, queue: WorkQueue | None = None) -> dict[str, Any]:
    data = await asyncio.to_thread(path.read_bytes)
    return await ingest_bytes(db, rating, tenant_id, path.name, data, source=source, base_url=base_url, queue=queue)


async def collect_store(db: Database, rating: RatingService, tenant_id: str, store: ObjectStore, *,
                        incoming: str = "incoming/", source: str, base_url: str,
                        on_file: Callable[[Collected], None] | None = None,
                        queue: WorkQueue | None = None) -> list[Collected]:
    """Ingest (or submit, with ``queue``) every object waiting under ``incoming`` (named by its key below it), then
    move it under ``processed/`` (or ``failed/``, with a ``.reason`` object) of the same store."""
    out = []
    for key in await store.keys(incoming):
        name = key[len(incoming):]
        if not name or name.rsplit("/", 1)[-1].startswith(".") or name.endswith(IN_PROGRESS):
            continue
        data = await store.get(key)
        try:
            got = Collected(Path(name), await ingest_bytes(db, rating, tenant_id, name, data, source=source,
                                                           base_url=base_url, queue=queue))
            target = f"processed/{name}"
        except DomainError as exc:
            got = Collected(Path(name), None, exc.message)
            target = f"failed/{name}"
        for archive, body in ((target, data), *(((f"{target}.reason", (got.error + "\n").encode()),)
                                                if got.error else ())):
            try:
                await store.put(archive, body, content_type="application/octet-stream")
            except ObjectExists:  # collected before (a crash between the commit and the move): already archived
                pass
        await store.delete(key)
        out.append(got)
        if on_file is not None:
            on_file(got)
    return out


async def collect_once(db: Database, rating: RatingService, tenant_id: str, directory: Path, *, source: str,
                       base_url: str, on_file: Callable[[Collected], None] | None = None,
                       queue: WorkQueue | None = None) -> list[Collected]:
    """Ingest (or submit, with ``queue``) every file waiting in ``directory`` and move it out of the way."""
    out = []
    for path in pending_files(directory):
        try:
            got = Collected(path, await ingest_path(db, rating, tenant_id, path, source=source, base_url=base_url,
                                                     queue=queue))
            target = directory / "processed"
        except DomainError as exc:
            got = Collected(path, None, exc.message)
            target = directory / "failed"
        target.mkdir(exist_ok=True)
        if got.error is not None:
            (target / f"{path.name}.reason").write_text(got.error + "\n")
        shutil.move(str(path), target / path.name)
        out.append(got)
        if on_file is not None:
            on_file(got)
    return out


async def watch(db: Database, rating: RatingService, tenant_id: str, directory: Path, *, source: str,
                base_url: str, stop: asyncio.Event, interval: float = 2.0,
                on_file: Callable[[Collected], None] | None = None, queue: WorkQueue | None = None) -> None:
    """Collect until ``stop`` is set, looking into the directory every ``interval`` seconds."""
    while not stop.is_set():
        await collect_once(db, rating, tenant_id, directory, source=source, base_url=base_url, on_file=on_file,
                           queue=queue)
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except TimeoutError:
            pass
