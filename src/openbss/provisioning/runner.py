"""Running the orchestrator: in the worker (a loop next to the job queue), as a procrastinate periodic sweep, or
alone (``python -m openbss.provisioning.runner``, what the crash test kills with SIGKILL)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from procrastinate import Blueprint, JobContext

from openbss.platform.db import Database
from openbss.platform.worker import install_stop_signals
from openbss.provisioning.orchestrator import Orchestrator
from openbss.settings import Settings, get_settings

log = logging.getLogger(__name__)
SWEEP_TASK = "openbss.provisioning_sweep"
SWEEP_SECONDS = 50.0


def load_domains() -> None:
    """The orchestrator records inventory and tells ordering: their services are built with their routers."""
    from openbss.app import domain_routers

    domain_routers()


async def orchestrate(db: Database, settings: Settings, stop: asyncio.Event) -> None:
    """The worker loop (to run in ``run_worker`` next to the relay and the job queue)."""
    load_domains()
    await Orchestrator(db, settings).run(stop)


async def sweep(context: JobContext, timestamp: int) -> int:
    """A periodic safety net when no orchestrator loop runs: work through the ready steps for up to 50 s."""
    rt: Any = context.additional_context["runtime"]
    load_domains()
    orch = Orchestrator(rt.db, rt.settings)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SWEEP_SECONDS
    done = 0
    while loop.time() < deadline:
        n = await orch.run_once()
        if n == 0 and not await orch.busy():
            break
        done += n
        if n == 0:
            await asyncio.sleep(0.2)
    return done


def provisioning_blueprint() -> Blueprint:
    bp = Blueprint()
    task = bp.task(name=SWEEP_TASK, pass_context=True, queue="provisioning")(sweep)
    bp.periodic(cron="* * * * *", periodic_id="provisioning-sweep")(task)
    return bp


async def _main() -> None:
    settings = get_settings()
    db = Database.from_settings(settings)
    stop = asyncio.Event()
    install_stop_signals(stop)
    try:
        print("orchestrator ready", flush=True)
        await orchestrate(db, settings, stop)
    finally:
        await db.dispose()


if __name__ == "__main__":
    asyncio.run(_main())
