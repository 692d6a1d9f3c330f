"""Scale-out of batch rating on NATS JetStream: chunks of submitted usage files are work items on a work-queue
stream, rated by any number of ``openbss worker`` processes.

* ``RatingService.submit`` registers a file and cuts its valid records into chunks (``rating_file_chunk``),
  partitioned by subscriber; after the commit, ``WorkQueue.publish`` puts one message per chunk on the stream
  ``<nats_stream>_RATING`` (retention: work queue) under the subject ``<prefix>.p<partition>``, with a
  ``Nats-Msg-Id`` of file and chunk (the broker drops a message published twice within its duplicate window).
* Each partition has one durable pull consumer (``rating-p<N>``) with ``max_ack_pending = 1``: whatever the number
  of workers, one chunk of a partition is in flight at a time, in the order submitted — a subscription's records are
  rated in order by one worker at a time (``RatingService.process`` also locks each account, in case records of one
  account sit in two partitions after a number change).
* A worker rates a chunk in one transaction (``RatingService.rate_chunk``), commits, then acknowledges. Killed
  before the commit, nothing of the chunk stays; killed between the commit and the ack, the chunk is ``done`` and the
  message delivered again changes nothing. Either way the broker delivers the message again after
  ``rating_ack_wait_seconds``, to any worker. Records are keyed (origin and record id), so a record is never rated
  twice even across files.
* A chunk whose message was never published (the submitter died after its commit, or the broker was unreachable
  then) is published again by every worker's loop (``republish_stale``): each ``rating_republish_interval_seconds``
  the chunks still ``queued`` of files registered more than ``rating_republish_after_seconds`` ago are published
  again — idempotent: the broker drops a copy within its duplicate window (same ``Nats-Msg-Id``), a worker
  republishes a chunk at most once per window, and a chunk rated already changes nothing when its message comes.
  ``openbss rating requeue`` does the same at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from typing import Any

from sqlalchemy import text

from openbss.platform.db import Database
from openbss.rating.service import RatingService
from openbss.settings import Settings

log = logging.getLogger(__name__)

#: fault injection for the crash test: die like kill -9 after a chunk's commit, before its ack
FAULT_ENV = "OPENBSS_FAULT_KILL_BEFORE_ACK"
FAULT_NAME = "rating-chunk"
#: the stream's duplicate window (seconds): a message published again within it with the same id is dropped
DUPLICATE_WINDOW = 600.0


class WorkQueue:
    def __init__(self, db: Database | None, settings: Settings, service: RatingService | None = None) -> None:
        if not settings.nats_url:
            raise ValueError("the rating work queue needs NATS (OPENBSS_NATS_URL)")
        self.db = db
        self.settings = settings
        self.service = service
        self.url = settings.nats_url
        self.stream = f"{settings.nats_stream}_RATING"
        self.prefix = f"{settings.nats_stream.lower()}.rating"
        self.partitions = settings.rating_partitions
        self._nc: Any = None
        self._js: Any = None
        #: (tenant, file, chunk) -> when this process last published it again (monotonic seconds)
        self._republished: dict[tuple[str, str, int], float] = {}

    def subject(self, partition: int) -> str:
        return f"{self.prefix}.p{partition}"

    async def connect(self) -> Any:
        if self._js is None:
            import nats
            from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StreamConfig

            servers = [u.strip() for u in (self.url or "").split(",") if u.strip()]
            self._nc = await nats.connect(servers=servers, name=f"openbss-rating-{os.getpid()}",
                                          max_reconnect_attempts=-1)
            js = self._nc.jetstream()
            try:
                await js.add_stream(StreamConfig(name=self.stream, subjects=[f"{self.prefix}.>"],
                                                 retention=RetentionPolicy.WORK_QUEUE,
                                                 duplicate_window=DUPLICATE_WINDOW))
            except Exception:  # exists (perhaps with an operator's settings): keep it
                await js.stream_info(self.stream)
            for p in range(self.partitions):
                config = ConsumerConfig(durable_name=f"rating-p{p}", name=f"rating-p{p}",
                                        filter_subject=self.subject(p), ack_policy=AckPolicy.EXPLICIT,
                                        ack_wait=self.settings.rating_ack_wait_seconds, max_ack_pending=1,
                                        description=f"batch rating, partition {p}: one chunk at a time")
                try:
                    await js.add_consumer(self.stream, config)
                except Exception:
                    await js.consumer_info(self.stream, f"rating-p{p}")
            self._js = js
        return self._js

    async def close(self) -> None:
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()
        self._nc = self._js = None

    async def publish(self, tenant: str, file_id: str, chunks: list[tuple[int, int]]) -> int:
        """Put the chunks of a submitted file on the stream (after the commit of ``submit``)."""
        js = await self.connect()
        for chunk, partition in chunks:
            body = json.dumps({"tenant": tenant, "file": file_id, "chunk": chunk}).encode()
            await js.publish(self.subject(partition % self.partitions), body, stream=self.stream,
                             headers={"Nats-Msg-Id": f"{tenant}:{file_id}:{chunk}"})
        return len(chunks)

    async def submit(self, db: Database, rating: RatingService, tenant: str, name: str, data: bytes, *,
                     source: str, base_url: str, subject: str | None = None) -> dict[str, Any]:
        """Register a received file and cut it into chunks in one transaction, then publish the chunks (the
        watched directory, the bucket prefix and the upload API with NATS); the report's ``status`` is
        ``queued`` until the workers rated every chunk (``rated`` at once for a file without valid records)."""
        from openbss.platform.tmf.resource import system_context

        async with db.transaction(tenant) as session:
            ctx = system_context(tenant, session, base_url, subject=subject or f"rating:{source}")
            report = await rating.submit(ctx, name, data, source=source, partitions=self.partitions,
                                         chunk_records=self.settings.rating_chunk_records)
        return await self.publish_report(tenant, report)

    async def publish_report(self, tenant: str, report: dict[str, Any]) -> dict[str, Any]:
        """Publish the work items of a committed ``RatingService.submit`` report (none for a duplicate file) and
        return the report without them. A publication that fails is logged, not raised: the file is registered and
        its chunks stay ``queued`` until a worker's loop publishes them again (``republish_stale``)."""
        items = report.pop("workItems", [])
        if items:
            try:
                await self.publish(tenant, report["id"], items)
            except Exception:
                log.exception("publishing a file's chunks failed; the workers publish them again",
                              extra={"tenant": tenant, "file": report["id"]})
                await self.close()
        return report

    # --- the consuming side: a loop of every worker ---------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Rate chunks until ``stop`` (one task per partition; the broker hands a partition's next chunk to one
        worker at a time)."""
        delay = 1.0
        while not stop.is_set():
            try:
                await self.connect()
                break
            except Exception:
                log.exception("the rating work queue is unavailable; connecting again in %.0f s", delay)
                await self.close()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, 60.0)
        if stop.is_set():
            await self.close()
            return
        tasks = [asyncio.create_task(self._consume(p, stop), name=f"rating-p{p}") for p in range(self.partitions)]
        tasks.append(asyncio.create_task(self._janitor(stop), name="rating-republish"))
        try:
            await stop.wait()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.close()

    async def republish_stale(self, older_than: float | None = None) -> int:
        """Publish again the chunks still ``queued`` of files registered more than ``older_than`` seconds ago
        (default ``rating_republish_after_seconds``), in every tenant; a chunk this process published again less
        than a duplicate window ago is left alone (its copy would be dropped by the broker anyway). Returns the
        number of chunks published."""
        from openbss.charging.service import system_context

        assert self.db is not None and self.service is not None
        after = self.settings.rating_republish_after_seconds if older_than is None else older_than
        async with self.db.transaction(None) as session:  # the tenant registry has no row-level security
            tenants = [str(t) for t in (await session.execute(
                text("SELECT id FROM tenant WHERE status = 'active' ORDER BY id"))).scalars()]
        now = time.monotonic()
        seen: set[tuple[str, str, int]] = set()
        published = 0
        for tenant in tenants:
            async with self.db.transaction(tenant) as session:
                ctx = system_context(session, tenant, self.settings.public_url.rstrip("/"))
                queued = await self.service.queued_chunks(ctx, older_than=after)
            due: dict[str, list[tuple[int, int]]] = {}
            for file_id, chunk, partition in queued:
                key = (tenant, file_id, chunk)
                seen.add(key)
                last = self._republished.get(key)
                if last is None or now - last >= DUPLICATE_WINDOW:
                    due.setdefault(file_id, []).append((chunk, partition))
            for file_id, items in due.items():  # no transaction open: publishing is a network call
                published += await self.publish(tenant, file_id, items)
                for chunk, _ in items:
                    self._republished[(tenant, file_id, chunk)] = now
                log.info("published again %d queued chunk(s) of a file", len(items),
                            extra={"tenant": tenant, "file": file_id})
        self._republished = {k: v for k, v in self._republished.items() if k in seen}  # rated ones forgotten
        return published

    async def _janitor(self, stop: asyncio.Event) -> None:
        """Every ``rating_republish_interval_seconds``: ``republish_stale``."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.rating_republish_interval_seconds)
            if stop.is_set():
                return
            try:
                await self.republish_stale()
            except Exception:
                log.exception("publishing queued rating chunks again failed; trying at the next interval")

    async def _consume(self, partition: int, stop: asyncio.Event) -> None:
        import nats.errors

        sub = None
        while sub is None and not stop.is_set():
            try:
                js = await self.connect()
                sub = await js.pull_subscribe_bind(durable=f"rating-p{partition}", stream=self.stream)
            except Exception:
                log.exception("cannot bind the rating consumer; trying again", extra={"partition": partition})
                await asyncio.sleep(2.0)
        while sub is not None and not stop.is_set():
            try:
                msgs = await sub.fetch(1, timeout=1.0)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            except Exception:
                log.exception("fetching rating work failed", extra={"partition": partition})
                await asyncio.sleep(1.0)
                continue
            for msg in msgs:
                await self.handle(msg)

    async def handle(self, msg: Any) -> None:
        from openbss.charging.service import system_context

        assert self.db is not None and self.service is not None
        try:
            item = json.loads(msg.data)
            tenant, file_id, chunk = str(item["tenant"]), str(item["file"]), int(item["chunk"])
        except (ValueError, KeyError, TypeError):
            log.error("malformed rating work item; dropped", extra={"subject": msg.subject})
            await msg.term()
            return
        try:
            async with self.db.transaction(tenant) as session:
                ctx = system_context(session, tenant, self.settings.public_url.rstrip("/"))
                result = await self.service.rate_chunk(ctx, file_id, chunk)
        except Exception:
            log.exception("rating a chunk failed; it will be delivered again",
                          extra={"tenant": tenant, "file": file_id, "chunk": chunk})
            await msg.nak(delay=5.0)
            return
        if result is None:
            log.info("chunk already rated (delivered again); acknowledged",
                     extra={"tenant": tenant, "file": file_id, "chunk": chunk})
        if os.environ.get(FAULT_ENV) == FAULT_NAME:
            os.kill(os.getpid(), signal.SIGKILL)
        await msg.ack()
