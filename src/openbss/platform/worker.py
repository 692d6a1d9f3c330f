"""The worker: outbox relay, event consumers (NATS or in-process) and the background job queue."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Iterable

from openbss.platform.events.consumers import Event
from openbss.platform.events.relay import OutboxRelay
from openbss.platform.jobs import defer_delivery, make_job_app
from openbss.platform.runtime import Runtime
from openbss.platform.startup import check_secrets
from openbss.platform.tmf.hub import hub_consumer, pending_deliveries
from openbss.platform.tmf.resource import TmfApi

log = logging.getLogger(__name__)


def install_stop_signals(stop: asyncio.Event) -> None:
    """SIGINT and SIGTERM set ``stop`` (a graceful shutdown of the API, the worker and the orchestrator)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        if sys.platform == "win32":  # the event loop has no signal handlers there
            signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stop.set))
        else:
            loop.add_signal_handler(sig, stop.set)


def register_platform_consumers(rt: Runtime, apis: Iterable[TmfApi]) -> None:
    """The platform's own consumer: notification hubs (``apis``: every TMF API the process serves)."""

    async def defer_new_deliveries(event: Event) -> None:
        if rt.jobs is None:
            return
        for delivery_id in await pending_deliveries(rt.db, event.tenant_id, event_id=event.event_id):
            await defer_delivery(rt.jobs, delivery_id)

    rt.consumers.register(hub_consumer(apis, after_commit=defer_new_deliveries))


async def run_worker(rt: Runtime, stop: asyncio.Event, *, jobs: bool = True, relay: bool = True,
                     consumers: bool = True, on_ready: Callable[[], None] | None = None,
                     job_poll_seconds: float = 1.0) -> None:
    """Run until ``stop`` is set.

    ``job_poll_seconds`` bounds how late a job scheduled for later (a retry after its backoff) starts: new jobs
    wake the worker by ``NOTIFY``, scheduled ones are found by polling.
    """
    check_secrets(rt.settings)  # outside demo mode: no built-in secret, no generated key
    bus = rt.make_bus()
    app = make_job_app(rt.db, rt.settings, rt.job_blueprints) if jobs else None
    tasks: list[asyncio.Task[None]] = []
    async with contextlib.AsyncExitStack() as stack:
        if app is not None:
            await stack.enter_async_context(app.open_async())
            rt.jobs = app
            stack.callback(setattr, rt, "jobs", None)
            tasks.append(asyncio.create_task(app.run_worker_async(
                concurrency=4, install_signal_handlers=False,
                additional_context={"runtime": rt}, delete_jobs="successful",
                fetch_job_polling_interval=job_poll_seconds, shutdown_graceful_timeout=10,
            ), name="jobs"))
        if consumers:
            tasks.append(asyncio.create_task(bus.run_consumers(stop), name="consumers"))
        if relay:
            tasks.append(asyncio.create_task(OutboxRelay(
                rt.db, bus, batch_size=rt.settings.relay_batch_size, poll_seconds=rt.settings.relay_poll_seconds,
            ).run(stop), name="relay"))
        for i, loop in enumerate(rt.background_loops):
            tasks.append(asyncio.create_task(loop(stop), name=f"loop-{i}"))
        if on_ready:
            on_ready()
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        for t in done:
            if t is not stopper and not t.cancelled() and t.exception() is not None:
                log.error("worker component %s stopped", t.get_name(), exc_info=t.exception())
        stop.set()
        stopper.cancel()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, stopper, return_exceptions=True)
