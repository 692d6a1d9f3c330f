"""Background and scheduled work on a PostgreSQL-backed queue (procrastinate).

Tasks get the process's ``Runtime`` from the job context. Retries use exponential backoff; periodic tasks are
declared with cron expressions and run by every ``openbss worker`` (procrastinate makes each run happen once).

The task functions are plain coroutines; ``make_job_app`` binds them to a fresh procrastinate ``App`` each time it
is called. (A procrastinate blueprint is mutated when an app adopts it, so a module-level blueprint could serve one
app per process only: a second app, e.g. an API process's deferring app next to a worker's, got its task names
namespaced twice and could no longer run the jobs the first one deferred.)
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import procrastinate
from procrastinate import Blueprint, JobContext, RetryStrategy
from procrastinate.exceptions import UniqueViolation
from procrastinate.jobs import Status
from sqlalchemy import delete, func

from openbss.platform.callbacks import parse_networks
from openbss.platform.db import Database, libpq_conninfo
from openbss.platform.events.consumers import ProcessedEvent
from openbss.platform.events.failures import purge_settled
from openbss.platform.events.outbox import OutboxEvent
from openbss.platform.tmf.hub import DeliveryFailed, attempt_delivery, pending_deliveries
from openbss.settings import Settings, get_settings

log = logging.getLogger(__name__)

NAMESPACE = "platform"
DELIVER_TASK = "openbss.deliver_notification"
DELIVERY_BACKOFF_SECONDS = 2  # exponential: 2, 4, 8, 16, ... seconds between attempts
REQUEUE_AFTER_SECONDS = 60


def _runtime(context: JobContext) -> Any:
    return context.additional_context["runtime"]


async def deliver_notification(context: JobContext, delivery_id: int) -> str:
    rt = _runtime(context)
    s = rt.settings
    return await attempt_delivery(rt.db, delivery_id, hub_secret=s.hub_secret, http_timeout=s.hub_timeout_seconds,
                                  max_attempts=s.hub_max_attempts, allow=parse_networks(s.hub_callback_allow))


async def defer_delivery(app: procrastinate.App, delivery_id: int) -> None:
    """Queue a delivery attempt. At most one job per delivery waits (``queueing_lock``) and one runs (``lock``), so a
    re-queued delivery is never POSTed by two workers at once."""
    key = f"hub-delivery:{delivery_id}"
    with contextlib.suppress(procrastinate.exceptions.AlreadyEnqueued):
        await app.configure_task(f"{NAMESPACE}:{DELIVER_TASK}", queueing_lock=key, lock=key,
                                 allow_unknown=False).defer_async(delivery_id=delivery_id)


async def requeue_deliveries(context: JobContext, timestamp: int) -> int:
    """Re-queue pending deliveries whose job was lost (e.g. the process died between commit and defer)."""
    rt = _runtime(context)
    ids = await pending_deliveries(rt.db, None, older_than_seconds=REQUEUE_AFTER_SECONDS)
    for delivery_id in ids:
        await defer_delivery(rt.jobs, delivery_id)
    return len(ids)


async def purge_outbox(context: JobContext, timestamp: int) -> int:
    """Delete published outbox events, processed-event records and settled event failures past the retention
    period."""
    rt = _runtime(context)
    keep = timedelta(days=rt.settings.outbox_retention_days)
    async with rt.db.transaction(None, system=True) as session:
        res = await session.execute(
            delete(OutboxEvent).where(OutboxEvent.published_at.is_not(None),
                                      OutboxEvent.published_at < func.now() - keep))
        await session.execute(delete(ProcessedEvent).where(ProcessedEvent.processed_at < func.now() - keep))
        await purge_settled(session, keep)  # replayed and resolved event failures (dead letters stay)
    return int(res.rowcount or 0)


async def retry_stalled_jobs(context: JobContext, timestamp: int) -> int:
    """Put back in the queue the jobs of workers that died (no heartbeat) while running them."""
    manager = context.app.job_manager
    stalled = list(await manager.get_stalled_jobs())
    for job in stalled:
        log.warning("retrying stalled job %s (%s)", job.id, job.task_name)
        try:
            await manager.retry_job(job)
        except UniqueViolation:
            # the same work is queued again already (a job with its queueing lock waits): that one will do it; the
            # stalled one ends as cancelled instead of stopping the sweep of the other stalled jobs
            log.warning("stalled job %s (%s): its work is queued again already; aborted", job.id, job.task_name)
            await manager.finish_job(job, status=Status.ABORTED, delete_job=False)
    return len(stalled)


def platform_blueprint(settings: Settings | None = None) -> Blueprint:
    """The platform's tasks and schedules, bound to a new blueprint."""
    settings = settings or get_settings()
    bp = Blueprint()
    bp.task(name=DELIVER_TASK, pass_context=True, queue="notifications",
            retry=RetryStrategy(max_attempts=settings.hub_max_attempts, exponential_wait=DELIVERY_BACKOFF_SECONDS,
                                retry_exceptions=[DeliveryFailed]))(deliver_notification)
    schedules = [
        ("openbss.requeue_deliveries", requeue_deliveries, "* * * * *", "requeue-deliveries"),
        ("openbss.purge_outbox", purge_outbox, "17 * * * *", "purge-outbox"),
        ("openbss.retry_stalled_jobs", retry_stalled_jobs, "*/5 * * * *", "retry-stalled-jobs"),
    ]
    for name, fn, cron, periodic_id in schedules:
        task = bp.task(name=name, pass_context=True, queue="maintenance")(fn)
        bp.periodic(cron=cron, periodic_id=periodic_id)(task)
    return bp


def make_job_app(db: Database, settings: Settings | None = None,
                 blueprints: Iterable[tuple[str, Blueprint]] = ()) -> procrastinate.App:
    """The job queue app: the platform's tasks plus the domains' blueprints (namespace, blueprint)."""
    connector = procrastinate.PsycopgConnector(conninfo=libpq_conninfo(db.url), min_size=1, max_size=4)
    app = procrastinate.App(connector=connector)
    app.add_tasks_from(platform_blueprint(settings), namespace=NAMESPACE)
    for namespace, blueprint in blueprints:
        app.add_tasks_from(blueprint, namespace=namespace)
    return app
