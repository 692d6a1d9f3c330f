"""Background and scheduled work on a PostgreSQL-backed queue (procrastinate).

Tasks get the process's ``Runtime`` from the job context. Retries use exponential backoff; periodic tasks are
declared with cron expressions and run by every ``openbss worker`` (procrastinate makes each run happen once).
"""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta
from typing import Any

import procrastinate
from procrastinate import Blueprint, JobContext, RetryStrategy
from sqlalchemy import delete, func

from openbss.platform.db import Database, libpq_conninfo
from openbss.platform.events.consumers import ProcessedEvent
from openbss.platform.events.outbox import OutboxEvent
from openbss.platform.tmf.hub import DeliveryFailed, attempt_delivery, pending_deliveries
from openbss.settings import get_settings

log = logging.getLogger(__name__)

platform_tasks = Blueprint()
DELIVER_TASK = "openbss.deliver_notification"


def _runtime(context: JobContext) -> Any:
    return context.additional_context["runtime"]


@platform_tasks.task(
    name=DELIVER_TASK, pass_context=True, queue="notifications",
    retry=RetryStrategy(max_attempts=get_settings().hub_max_attempts, exponential_wait=2,
                        retry_exceptions=[DeliveryFailed]),
)
async def deliver_notification(context: JobContext, delivery_id: int) -> str:
    rt = _runtime(context)
    s = rt.settings
    return await attempt_delivery(rt.db, delivery_id, hub_secret=s.hub_secret, timeout=s.hub_timeout_seconds,
                                  max_attempts=s.hub_max_attempts)


async def defer_delivery(app: procrastinate.App, delivery_id: int) -> None:
    with contextlib.suppress(procrastinate.exceptions.AlreadyEnqueued):
        await app.configure_task(f"platform:{DELIVER_TASK}", queueing_lock=f"hub-delivery:{delivery_id}").defer_async(
            delivery_id=delivery_id)


@platform_tasks.periodic(cron="* * * * *", periodic_id="requeue-deliveries")
@platform_tasks.task(name="openbss.requeue_deliveries", pass_context=True, queue="maintenance")
async def requeue_deliveries(context: JobContext, timestamp: int) -> int:
    """Re-queue pending deliveries whose job was lost (e.g. the process died between commit and defer)."""
    rt = _runtime(context)
    ids = await pending_deliveries(rt.db, None, older_than_seconds=60)
    for delivery_id in ids:
        await defer_delivery(rt.jobs, delivery_id)
    return len(ids)


@platform_tasks.periodic(cron="17 * * * *", periodic_id="purge-outbox")
@platform_tasks.task(name="openbss.purge_outbox", pass_context=True, queue="maintenance")
async def purge_outbox(context: JobContext, timestamp: int) -> int:
    """Delete published outbox events and processed-event records past the retention period."""
    rt = _runtime(context)
    keep = timedelta(days=rt.settings.outbox_retention_days)
    async with rt.db.transaction(None, system=True) as session:
        res = await session.execute(
            delete(OutboxEvent).where(OutboxEvent.published_at.is_not(None),
                                      OutboxEvent.published_at < func.now() - keep))
        await session.execute(delete(ProcessedEvent).where(ProcessedEvent.processed_at < func.now() - keep))
    return int(res.rowcount or 0)  # type: ignore[attr-defined]


def make_job_app(db: Database) -> procrastinate.App:
    connector = procrastinate.PsycopgConnector(conninfo=libpq_conninfo(db.url), min_size=1, max_size=4)
    app = procrastinate.App(connector=connector)
    app.add_tasks_from(platform_tasks, namespace="platform")
    return app
