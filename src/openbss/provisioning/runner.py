"""Running the orchestrator: in the worker (a loop next to the job queue), or as a procrastinate periodic sweep
(a safety net when no orchestrator loop runs). ``openbss orchestrator`` runs the loop alone."""

from __future__ import annotations

import asyncio
import logging

from procrastinate import Blueprint, JobContext

from openbss.provisioning.wiring import ProvisioningServices

log = logging.getLogger(__name__)
SWEEP_TASK = "openbss.provisioning_sweep"
SWEEP_SECONDS = 50.0


async def orchestrate(provisioning: ProvisioningServices, stop: asyncio.Event) -> None:
    """The worker loop (to run in ``run_worker`` next to the relay and the job queue)."""
    await provisioning.orchestrator().run(stop)


def provisioning_blueprint(provisioning: ProvisioningServices) -> Blueprint:
    async def sweep(context: JobContext, timestamp: int) -> int:
        """Work through the ready steps for up to 50 s."""
        orch = provisioning.orchestrator()
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

    bp = Blueprint()
    task = bp.task(name=SWEEP_TASK, pass_context=True, queue="provisioning")(sweep)
    bp.periodic(cron="* * * * *", periodic_id="provisioning-sweep")(task)
    return bp
