"""Background and scheduled work on the PostgreSQL-backed queue (procrastinate)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from procrastinate import RetryStrategy
from procrastinate.jobs import Job
from sqlalchemy import delete, func, select, text, update

from openbss.platform.db import utcnow
from openbss.platform.events.consumers import ProcessedEvent
from openbss.platform.events.failures import EventFailure
from openbss.platform.events.outbox import OutboxEvent, emit
from openbss.platform.jobs import (
    DELIVER_TASK,
    defer_delivery,
    make_job_app,
    purge_outbox,
    requeue_deliveries,
    retry_stalled_jobs,
)
from openbss.platform.tmf.hub import DeliveryFailed, HubDelivery, HubSubscription
from tests.conftest import bearer
from tests.platform.callback_server import callback_server

TASK = f"platform:{DELIVER_TASK}"


@pytest.fixture
async def job_app(rt: Any) -> AsyncIterator[Any]:
    app = make_job_app(rt.db)
    async with app.open_async():
        yield app


def job_context(rt: Any, app: Any) -> Any:
    """What a task sees of its ``JobContext``: the app and the worker's additional context (the runtime)."""
    runtime = SimpleNamespace(db=rt.db, settings=rt.settings, jobs=app)
    return SimpleNamespace(app=app, additional_context={"runtime": runtime})


def job_after(attempts: int) -> Job:
    return Job(queue="notifications", lock=None, queueing_lock=None, task_name=TASK, attempts=attempts)


async def jobs_for(rt: Any, delivery_id: int) -> list[dict[str, Any]]:
    async with rt.db.transaction(None, system=True) as session:
        rows = await session.execute(text(
            "SELECT id, status, queue_name, queueing_lock, lock, args FROM procrastinate_jobs "
            "WHERE task_name = :task AND (args->>'delivery_id')::bigint = :d ORDER BY id"),
            {"task": TASK, "d": delivery_id})
        return [dict(r._mapping) for r in rows]


async def delete_jobs(rt: Any, job_ids: list[int]) -> None:
    if job_ids:
        async with rt.db.transaction(None, system=True) as session:
            await session.execute(text("DELETE FROM procrastinate_jobs WHERE id = ANY(:ids)"), {"ids": job_ids})


def test_tasks_and_periodic_schedules_are_registered(rt: Any, settings: Any) -> None:
    app = make_job_app(rt.db)
    periodic = {p.periodic_id: p for p in app.periodic_registry.periodic_tasks.values()}
    assert {"requeue-deliveries", "purge-outbox", "retry-stalled-jobs"} <= set(periodic)
    assert periodic["requeue-deliveries"].cron == "* * * * *"
    assert periodic["requeue-deliveries"].task.name == "platform:openbss.requeue_deliveries"
    assert periodic["purge-outbox"].task.name == "platform:openbss.purge_outbox"
    deliver = app.tasks[TASK]
    assert deliver.queue == "notifications"
    retry = deliver.retry_strategy
    assert isinstance(retry, RetryStrategy)
    assert retry.max_attempts == settings.hub_max_attempts
    assert list(retry.retry_exceptions or []) == [DeliveryFailed]
    # exponential backoff: 2 s, 4 s, 8 s, ...
    waits = []
    for n in range(3):
        decision = retry.get_retry_decision(exception=DeliveryFailed("x"), job=job_after(n))
        assert decision is not None and decision.retry_at is not None
        waits.append(round((decision.retry_at - utcnow()).total_seconds()))
    assert waits == [2, 4, 8]
    # only a failed delivery is retried; and not past the last attempt
    assert retry.get_retry_decision(exception=ValueError("x"), job=job_after(0)) is None
    assert retry.get_retry_decision(exception=DeliveryFailed("x"), job=job_after(settings.hub_max_attempts)) is None


def test_several_apps_in_one_process_know_the_same_tasks(rt: Any) -> None:
    """An API process defers, a worker in the same process runs: both apps must name the tasks alike."""
    first, second = make_job_app(rt.db), make_job_app(rt.db)
    for app in (first, second):
        assert TASK in app.tasks
        assert app.configure_task(TASK, allow_unknown=False).job.queue == "notifications"
        assert app.tasks[TASK].blueprint is app


async def test_purge_outbox_keeps_recent_and_unpublished(rt: Any, settings: Any, tenant: str, job_app: Any) -> None:
    now = utcnow()
    keep_days = settings.outbox_retention_days
    ids: dict[str, uuid.UUID] = {}
    async with rt.db.transaction(tenant) as session:
        for name in ("old_published", "recent_published", "old_unpublished"):
            row = await emit(session, api="party", event_type="IndividualCreateEvent", resource_key="individual",
                             resource={"id": name})
            ids[name] = row.event_id
        old = now - timedelta(days=keep_days + 1)
        await session.execute(update(OutboxEvent).where(OutboxEvent.event_id == ids["old_published"])
                              .values(created_at=old, published_at=old))
        await session.execute(update(OutboxEvent).where(OutboxEvent.event_id == ids["recent_published"])
                              .values(created_at=now - timedelta(days=1), published_at=now - timedelta(days=1)))
        await session.execute(update(OutboxEvent).where(OutboxEvent.event_id == ids["old_unpublished"])
                              .values(created_at=old))
        session.add_all([
            ProcessedEvent(consumer="purge-test", event_id=ids["old_published"], processed_at=old),
            ProcessedEvent(consumer="purge-test", event_id=ids["recent_published"]),
        ])
        # event failures: settled long ago (purged), settled recently, and dead long ago (kept: an operator's)
        envelope = {"eventId": str(ids["old_published"]), "eventType": "IndividualCreateEvent"}
        for consumer, state, settled in (("old-replayed", "replayed", old), ("old-resolved", "resolved", old),
                                         ("new-replayed", "replayed", now), ("old-dead", "dead", None)):
            session.add(EventFailure(consumer=consumer, event_id=ids["old_published"], api="party",
                                     event_type="IndividualCreateEvent", envelope=envelope, state=state, attempts=1,
                                     max_attempts=1, last_error="x", first_failed_at=old, last_failed_at=old,
                                     settled_at=settled))
    purged = await purge_outbox(job_context(rt, job_app), timestamp=0)
    assert purged >= 1
    async with rt.db.transaction(tenant) as session:
        left = set((await session.execute(select(OutboxEvent.event_id))).scalars().all())
        records = set((await session.execute(select(ProcessedEvent.event_id).where(
            ProcessedEvent.consumer == "purge-test"))).scalars().all())
    assert left == {ids["recent_published"], ids["old_unpublished"]}  # never purge what was not published
    assert records == {ids["recent_published"]}
    async with rt.db.transaction(tenant) as session:
        failures = set((await session.execute(select(EventFailure.consumer))).scalars().all())
        await session.execute(delete(EventFailure))
    assert failures == {"new-replayed", "old-dead"}


async def test_requeue_deliveries_redefers_a_lost_job(client: Any, rt: Any, tenant: str, relay: Any,
                                                      job_app: Any) -> None:
    with callback_server() as server:
        r = await client.post("/tmf-api/party/v4/hub", json={"callback": server.base_url},
                              headers=bearer(tenant, "admin"))
        assert r.status_code == 201
        created = []
        for name in ("Lost", "Recent"):
            r = await client.post("/tmf-api/party/v4/individual", json={"givenName": name, "familyName": "J"},
                                  headers=bearer(tenant, "admin"))
            assert r.status_code == 201
            created.append(r.json()["id"])
        await relay()  # fan-out without a job queue (rt.jobs is None): the deliveries' jobs are "lost"
        async with rt.db.transaction(tenant) as session:
            rows = (await session.execute(select(HubDelivery).order_by(HubDelivery.id))).scalars().all()
            lost, recent = rows[0], rows[1]
            await session.execute(update(HubDelivery).where(HubDelivery.id == lost.id)
                                  .values(created_at=func.now() - timedelta(minutes=2)))
        job_ids: list[int] = []
        try:
            assert await jobs_for(rt, lost.id) == []
            ctx = job_context(rt, job_app)
            assert await requeue_deliveries(ctx, timestamp=0) >= 1
            jobs = await jobs_for(rt, lost.id)
            job_ids = [j["id"] for j in jobs]
            assert [(j["status"], j["queue_name"], j["queueing_lock"], j["lock"]) for j in jobs] == [
                ("todo", "notifications", f"hub-delivery:{lost.id}", f"hub-delivery:{lost.id}")]
            assert await jobs_for(rt, recent.id) == []  # younger than a minute: its own job may still come
            # requeued again (next minute) or deferred again: still one waiting job per delivery
            await requeue_deliveries(ctx, timestamp=0)
            await defer_delivery(job_app, lost.id)
            assert [j["id"] for j in await jobs_for(rt, lost.id)] == job_ids
            # a worker that drains the queue delivers it
            await job_app.run_worker_async(queues=["notifications"], wait=False, install_signal_handlers=False,
                                           additional_context={"runtime": ctx.additional_context["runtime"]},
                                           delete_jobs="successful")
            assert await jobs_for(rt, lost.id) == []
            async with rt.db.transaction(tenant) as session:
                status = await session.scalar(select(HubDelivery.status).where(HubDelivery.id == lost.id))
            assert status == "delivered"
            assert [req.json()["event"]["individual"]["id"] for req in server.received()] == created[:1]
        finally:
            await delete_jobs(rt, job_ids)
            async with rt.db.transaction(tenant) as session:
                await session.execute(delete(HubSubscription))


async def test_retry_stalled_jobs_requeues_jobs_of_dead_workers(rt: Any, job_app: Any) -> None:
    delivery_id = -int(uuid.uuid4().int % 1_000_000) - 1  # no such delivery: the job would find it gone
    await defer_delivery(job_app, delivery_id)
    [job] = await jobs_for(rt, delivery_id)
    try:
        async with rt.db.transaction(None, system=True) as session:
            worker = await session.scalar(text(
                "INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now() - interval '10 minutes') "
                "RETURNING id"))
            await session.execute(text("UPDATE procrastinate_jobs SET status = 'doing', worker_id = :w "
                                       "WHERE id = :id"), {"w": worker, "id": job["id"]})
        assert await retry_stalled_jobs(job_context(rt, job_app), timestamp=0) >= 1
        [again] = await jobs_for(rt, delivery_id)
        assert (again["id"], again["status"]) == (job["id"], "todo")
    finally:
        await delete_jobs(rt, [job["id"]])
        async with rt.db.transaction(None, system=True) as session:
            await session.execute(text("DELETE FROM procrastinate_workers WHERE id = :w"), {"w": worker})


async def test_a_stalled_job_whose_work_is_queued_again_is_aborted_and_the_sweep_goes_on(rt: Any,
                                                                                          job_app: Any) -> None:
    """A dead worker's job whose queueing lock is taken by a newer job of the same work (queued while it stalled):
    retrying it would violate the lock; it is aborted, and the sweep still retries the other stalled jobs."""
    first_id = -int(uuid.uuid4().int % 1_000_000) - 1
    other_id = first_id - 1_000_000
    await defer_delivery(job_app, first_id)
    await defer_delivery(job_app, other_id)
    [stalled] = await jobs_for(rt, first_id)
    [other] = await jobs_for(rt, other_id)
    worker = None
    try:
        async with rt.db.transaction(None, system=True) as session:
            worker = await session.scalar(text(
                "INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now() - interval '10 minutes') "
                "RETURNING id"))
            await session.execute(text("UPDATE procrastinate_jobs SET status = 'doing', worker_id = :w "
                                       "WHERE id = ANY(:ids)"), {"w": worker, "ids": [stalled["id"], other["id"]]})
        await defer_delivery(job_app, first_id)  # the same delivery queued again while the first job stalled
        assert await retry_stalled_jobs(job_context(rt, job_app), timestamp=0) >= 2
        states = {(j["id"], j["status"]) for j in await jobs_for(rt, first_id)}
        assert (stalled["id"], "aborted") in states and len(states) == 2
        assert {j["status"] for j in await jobs_for(rt, first_id)} == {"aborted", "todo"}
        [again] = await jobs_for(rt, other_id)
        assert (again["id"], again["status"]) == (other["id"], "todo")
    finally:
        await delete_jobs(rt, [j["id"] for d in (first_id, other_id) for j in await jobs_for(rt, d)])
        if worker is not None:
            async with rt.db.transaction(None, system=True) as session:
                await session.execute(text("DELETE FROM procrastinate_workers WHERE id = :w"), {"w": worker})
